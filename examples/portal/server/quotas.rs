//! Opening on time what the channels left unused: once a minute, for every branch, the quotas
//! of the windows that start within `open_quotas_before` (default 24 h) open to everyone
//! (`BookBackend::open_channel_quotas_in`), the way an authority releases the counters' and the
//! call centre's unused appointments the day before. Windows are hours from 08:00 UTC (as the
//! pages show them), day after day from the calendar's first.

use std::ops::Range;
use std::time::Duration;

use surgegate::calendar::Calendar;
use surgegate::{BookBackend, RoomBackend, SlotIndex};

use super::State;

/// The hour (UTC) the first window of a day starts; window `w` starts `w` hours later.
pub const FIRST_WINDOW_HOUR: i64 = 8;
/// The most windows a day: window `w` starts `w` hours after the day's first, so with more
/// than 24 a day's last windows would start after the next day's first, and
/// [`starting_within`]'s prefix of slots would open them early.
pub const MAX_WINDOWS_PER_DAY: u32 = 24;
/// How often the portal opens the quotas that fell due.
pub const OPEN_EVERY: Duration = Duration::from_secs(60);

const DAY_SECS: i64 = 86_400;
const HOUR_SECS: i64 = 3_600;

/// The slots whose window starts at or before `now_unix_secs + before`: always `0..n` (every
/// earlier slot too: opening a slot whose quotas are already open changes nothing).
pub fn starting_within(
    calendar: &Calendar,
    now_unix_secs: i64,
    before: Duration,
) -> Range<SlotIndex> {
    let before_secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
    let horizon = now_unix_secs.saturating_add(before_secs);
    let first_window =
        calendar.first_day().days_since_unix_epoch() * DAY_SECS + FIRST_WINDOW_HOUR * HOUR_SECS;
    let since = horizon.saturating_sub(first_window);
    if since < 0 {
        return 0..0;
    }
    let windows = i64::from(calendar.windows_per_day());
    let started_today = (since % DAY_SECS / HOUR_SECS + 1).min(windows);
    let started = (since / DAY_SECS)
        .saturating_mul(windows)
        .saturating_add(started_today);
    0..started.min(i64::from(calendar.slots())) as SlotIndex
}

/// Opens, at every branch, the quotas of the windows that start within `before` of now.
/// Returns how many slots it opened; a branch the book refuses is named in the error, and the
/// next call goes on where this one stopped.
///
/// # Cancel safety
/// Cancelling between branches leaves those before opened; each branch's call is one backend
/// call, which opens whole slots.
pub async fn open_due<B: BookBackend, R: RoomBackend>(
    state: &State<B, R>,
    now_unix_secs: i64,
    before: Duration,
) -> Result<u32, String> {
    let slots = starting_within(&state.calendar, now_unix_secs, before);
    if slots.is_empty() {
        return Ok(0);
    }
    let mut opened = 0;
    for branch in state.branch_ids() {
        opened += state
            .book
            .open_channel_quotas_in(branch, slots.clone())
            .await
            .map_err(|e| format!("opening the quotas of {branch}: {e}"))?;
    }
    Ok(opened)
}

/// Runs [`open_due`] every [`OPEN_EVERY`] until the process ends; a failure is logged and
/// tried again at the next tick.
pub async fn keep_opening<B: BookBackend, R: RoomBackend>(
    state: std::sync::Arc<State<B, R>>,
    before: Duration,
) {
    let mut every = tokio::time::interval(OPEN_EVERY);
    loop {
        every.tick().await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        match open_due(&state, now, before).await {
            Ok(0) => {}
            Ok(n) => eprintln!("opened the channels' unused quotas of {n} slots"),
            Err(e) => eprintln!("{e}; trying again in a minute"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use surgegate::calendar::Date;

    fn calendar() -> Calendar {
        Calendar::new(Date::new(2026, 3, 1).unwrap(), 3, 8).unwrap()
    }

    /// 2026-03-01 08:00 UTC.
    fn first_window() -> i64 {
        Date::new(2026, 3, 1).unwrap().days_since_unix_epoch() * DAY_SECS + 8 * HOUR_SECS
    }

    #[test]
    fn windows_open_a_day_before_they_start() {
        let c = calendar();
        let day = Duration::from_secs(86_400);
        // Two days before the first window: nothing.
        assert_eq!(
            starting_within(&c, first_window() - 2 * DAY_SECS, day),
            0..0
        );
        // A second short of a day before: still nothing; exactly a day before: the first.
        assert_eq!(
            starting_within(&c, first_window() - DAY_SECS - 1, day),
            0..0
        );
        assert_eq!(starting_within(&c, first_window() - DAY_SECS, day), 0..1);
        // At the first window's start: the whole first day (eight windows) and the next day's
        // first, which starts in exactly 24 h.
        assert_eq!(starting_within(&c, first_window(), day), 0..9);
        // Late on a day: its windows are all started, the next day's not yet.
        let evening = first_window() + 14 * HOUR_SECS - DAY_SECS;
        assert_eq!(starting_within(&c, evening, day), 0..8);
        // Past the calendar's end: every slot, never more.
        assert_eq!(
            starting_within(&c, first_window() + 10 * DAY_SECS, day),
            0..24
        );
        assert_eq!(starting_within(&c, i64::MAX, Duration::MAX), 0..24);
        assert_eq!(starting_within(&c, i64::MIN, Duration::ZERO), 0..0);
    }

    #[test]
    fn a_day_of_the_most_windows_opens_them_in_order_across_midnight() {
        let c = Calendar::new(Date::new(2026, 3, 1).unwrap(), 2, MAX_WINDOWS_PER_DAY).unwrap();
        let now = first_window();
        // The first day's last window starts at 07:00 the next morning, an hour before the
        // second day's first: it is due then, the second day's first not yet.
        assert_eq!(
            starting_within(&c, now + 23 * HOUR_SECS, Duration::ZERO),
            0..24
        );
        assert_eq!(
            starting_within(&c, now + 24 * HOUR_SECS - 1, Duration::ZERO),
            0..24
        );
        assert_eq!(
            starting_within(&c, now + 24 * HOUR_SECS, Duration::ZERO),
            0..25
        );
        // Hours far beyond the calendar (a huge --open-quotas-hours): every slot, never more.
        let forever = Duration::from_secs(u64::MAX);
        assert_eq!(starting_within(&c, now, forever), 0..48);
    }
}
