//! The part of every window an authority keeps for its counters and call centre: a quota on
//! channel 1 of `counter_share` of each slot's capacity, which web reservations cannot take,
//! opened to everyone `counter_open_secs` before the slot starts (what the counters left unused
//! then becomes bookable on the web, and under standby goes to the line first).
//!
//! Slots start on the simulated clock: day `d` (from 0) begins 24 h after the opening plus `d`
//! days, and its windows are an hour apart, so window `w` of day `d` starts at
//! `(d + 1) × 24 h + w × 1 h`. With the default 24 h, the first day's windows open one an hour
//! from the opening on; later days open after the simulated time is over.

use surgegate::{BranchId, Channel, ManualClock, SlotBook};

use crate::sim::Config;

/// The channel the counters book on.
pub const COUNTERS: Channel = Channel(1);

const DAY_NS: u64 = 86_400_000_000_000;
const HOUR_NS: u64 = 3_600_000_000_000;

/// The counters' quotas and when they open.
pub struct Counters {
    /// The quota of each branch's slots.
    quota: Vec<u32>,
    /// (when, slot) for every slot that keeps a quota, by time.
    openings: Vec<(u64, u32)>,
    /// The next opening still due.
    next: usize,
    /// Units in quotas not opened yet (each book the same).
    pub kept: u64,
    /// Units opened to everyone so far.
    pub opened: u64,
}

impl Counters {
    pub fn new(cfg: &Config, caps: &[u32]) -> Self {
        let quota: Vec<u32> = caps
            .iter()
            .map(|&c| (f64::from(c) * cfg.counter_share).floor() as u32)
            .collect();
        let open_before_ns = (cfg.counter_open_secs * 1e9) as u64;
        let mut openings: Vec<(u64, u32)> = (0..cfg.days)
            .flat_map(|d| (0..cfg.windows_per_day).map(move |w| (d, w)))
            .map(|(d, w)| {
                let start_ns = (u64::from(d) + 1) * DAY_NS + u64::from(w) * HOUR_NS;
                let slot = d * cfg.windows_per_day + w;
                (start_ns.saturating_sub(open_before_ns), slot)
            })
            .collect();
        openings.sort_unstable();
        let slots = u64::from(cfg.days * cfg.windows_per_day);
        let kept = quota.iter().map(|&q| u64::from(q) * slots).sum();
        Self {
            quota,
            openings,
            next: 0,
            kept,
            opened: 0,
        }
    }

    /// Sets the quotas of one branch's slot in `book`; returns the library calls made.
    pub fn keep(&self, book: &SlotBook<ManualClock>, branch: u32, slot: u32) -> u64 {
        let q = self.quota[branch as usize];
        if q == 0 {
            return 0;
        }
        book.set_channel_quota(BranchId(branch), slot, COUNTERS, q)
            .expect("a quota below the slot's capacity");
        1
    }

    /// When the next quotas open, while some are still kept.
    pub fn due_ns(&self) -> Option<u64> {
        self.openings.get(self.next).map(|&(at_ns, _)| at_ns)
    }

    /// Opens, in every book given, the quotas of every slot whose time has come by `now`;
    /// returns the library calls made.
    pub fn open_due(&mut self, now: u64, books: &[&SlotBook<ManualClock>]) -> u64 {
        let mut calls = 0;
        while let Some(&(at_ns, slot)) = self.openings.get(self.next) {
            if at_ns > now {
                break;
            }
            self.next += 1;
            for (b, &q) in self.quota.iter().enumerate() {
                if q == 0 {
                    continue;
                }
                for book in books {
                    book.open_channel_quotas(BranchId(b as u32), slot)
                        .expect("an open slot");
                    calls += 1;
                }
                self.kept -= u64::from(q);
                self.opened += u64::from(q);
            }
        }
        calls
    }
}
