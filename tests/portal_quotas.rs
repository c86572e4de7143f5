//! The example portal opens what the channels left unused on time: the quotas of the windows
//! that start within a day become bookable by everyone, the later ones stay kept.
#![cfg(all(
    feature = "http",
    feature = "redis",
    feature = "serde",
    feature = "hijri",
    not(loom)
))]

#[path = "support/portal_client.rs"]
#[allow(dead_code)]
mod portal_client;
#[path = "../examples/portal/server/mod.rs"]
#[allow(dead_code)]
mod server;

use std::time::Duration;

use portal_client::{book, settings};
use server::State;
use server::quotas::{FIRST_WINDOW_HOUR, open_due};
use surgegate::{BranchId, Channel};

const DAY: Duration = Duration::from_secs(86_400);

#[tokio::test]
async fn quotas_open_a_day_before_their_window_and_not_sooner() {
    let dir = tempfile::tempdir().unwrap();
    let state = State::open(settings(dir.path(), 100)).unwrap();
    let windows = state.calendar.windows_per_day();
    // The calendar's second day: its first window, and the first window of the day after.
    let (soon, later) = (windows, 2 * windows);
    for slot in [soon, later] {
        book(&state)
            .set_channel_quota(BranchId(1), slot, Channel(2), 1)
            .unwrap();
    }
    let kept = |slot| book(&state).slot(BranchId(1), slot).unwrap().remaining();
    let (soon_before, later_before) = (kept(soon), kept(later));
    // The first day at 08:00 UTC: the second day's first window starts in exactly 24 h.
    let first_day = state.calendar.first_day().days_since_unix_epoch();
    let now = first_day * 86_400 + FIRST_WINDOW_HOUR * 3_600;
    // A second earlier, nothing it keeps is due yet (the first day's windows keep no quota).
    assert_eq!(open_due(&state, now - 1, DAY).await.unwrap(), 0);
    assert_eq!(kept(soon), soon_before);
    let opened = open_due(&state, now, DAY).await.unwrap();
    assert_eq!(
        opened, 1,
        "the one slot with a quota that starts within a day"
    );
    assert_eq!(
        kept(soon),
        soon_before + 1,
        "the unused unit is open to all"
    );
    assert_eq!(
        kept(later),
        later_before,
        "a window two days out keeps its quota"
    );
    let quotas = book(&state).channel_quotas(BranchId(1), later).unwrap();
    assert_eq!(quotas.channels[0].quota, 1);
    // Again: nothing more to open; the same call is harmless.
    assert_eq!(open_due(&state, now, DAY).await.unwrap(), 0);
    book(&state).check_invariants().unwrap();
}
