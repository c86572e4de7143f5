//! The invariants, checked through the traits alone after every step of the suite: for the
//! book, every slot's `held` and `booked` equal the live holds and bookings the applicants are
//! told of (conservation), `held + booked <= capacity` unless a capacity was cut below it, no
//! applicant over its limit or shown another's records, no expired hold shown; for the room,
//! the waiting visitors' positions exactly `1..=waiting`, live passes exactly `active` and
//! within `max_active`, ETAs nondecreasing in position.
//!
//! A check reads the backend twice around its readings and starts again if anything moved in
//! between (a hold lapsing, an admission falling due on a real clock), so what it verifies is
//! one state.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use surgegate::{
    ApplicantId, BookBackend, Booking, BranchId, Entry, Hold, RoomBackend, SlotIndex, SlotState,
    TicketToken,
};

use super::Backends;

/// What the suite knows of a book under test.
#[derive(Clone, Debug, Default)]
pub struct BookWatch {
    pub branches: Vec<BranchId>,
    pub slots: Range<SlotIndex>,
    pub applicants: Vec<ApplicantId>,
    pub limit: u32,
    /// Slots whose capacity was cut below what they held and booked.
    pub lowered: Vec<(BranchId, SlotIndex)>,
    /// Slots closed with `close_slot` (absent from readings, their records still live).
    pub closed: Vec<(BranchId, SlotIndex)>,
}

type Slots = Vec<(BranchId, Vec<(SlotIndex, SlotState)>)>;

async fn slots<K: BookBackend>(book: &K, w: &BookWatch) -> Slots {
    let mut out = Vec::new();
    for &branch in &w.branches {
        let open = book.availability(branch, w.slots.clone()).await;
        out.push((branch, open.expect("availability")));
    }
    out
}

async fn records<K: BookBackend>(
    book: &K,
    w: &BookWatch,
) -> Vec<(ApplicantId, Vec<Hold>, Vec<Booking>)> {
    let mut out = Vec::new();
    for &a in &w.applicants {
        let holds = book.holds_of(a).await.expect("holds_of");
        let bookings = book.bookings_of(a).await.expect("bookings_of");
        out.push((a, holds, bookings));
    }
    out
}

/// Checks every invariant of the book; panics with `step` on a violation.
pub async fn book<B: Backends>(b: &B, book: &B::Book, w: &BookWatch, step: &str) {
    for _ in 0..8 {
        let before = slots(book, w).await;
        let now = book.now_unix();
        let seen = records(book, w).await;
        if slots(book, w).await == before {
            verify_book(b, &before, &seen, now, w, step);
            b.audit_book(book);
            return;
        }
    }
    panic!(
        "{}: {step}: the book never held still for a check",
        b.name()
    );
}

fn verify_book<B: Backends>(
    b: &B,
    slots: &Slots,
    seen: &[(ApplicantId, Vec<Hold>, Vec<Booking>)],
    now_unix: Duration,
    w: &BookWatch,
    step: &str,
) {
    let at = |what: String| format!("{}: {step}: {what}", b.name());
    let mut held: HashMap<(BranchId, SlotIndex), u32> = HashMap::new();
    let mut booked: HashMap<(BranchId, SlotIndex), u32> = HashMap::new();
    for (a, holds, bookings) in seen {
        let n = holds.len() + bookings.len();
        assert!(
            n as u32 <= w.limit,
            "{}",
            at(format!("{a:?} has {n} > {}", w.limit))
        );
        for h in holds {
            assert_eq!(h.applicant, *a, "{}", at("another's hold shown".into()));
            assert!(
                h.expires_at + b.slack() > now_unix,
                "{}",
                at(format!("an expired hold shown: {h:?} at {now_unix:?}"))
            );
            *held.entry((h.branch, h.slot)).or_default() += 1;
        }
        for k in bookings {
            assert_eq!(k.applicant, *a, "{}", at("another's booking shown".into()));
            *booked.entry((k.branch, k.slot)).or_default() += 1;
        }
    }
    for (branch, open) in slots {
        for (slot, s) in open {
            let key = (*branch, *slot);
            let (h, k) = (
                held.remove(&key).unwrap_or(0),
                booked.remove(&key).unwrap_or(0),
            );
            assert_eq!(
                (s.held, s.booked),
                (h, k),
                "{}",
                at(format!("{key:?}: {s:?}"))
            );
            assert_eq!(s.remaining(), s.capacity.saturating_sub(s.held + s.booked));
            assert!(
                s.held + s.booked <= s.capacity || w.lowered.contains(&key),
                "{}",
                at(format!("overbooked {key:?}: {s:?}"))
            );
        }
    }
    // Records on slots that readings do not show: only on closed slots.
    for key in held.keys().chain(booked.keys()) {
        assert!(
            w.closed.contains(key),
            "{}",
            at(format!("a record on {key:?}, no slot"))
        );
    }
}

/// The room's counts that change only when the line or the passes do.
fn counts(s: &surgegate::RoomStats) -> [u64; 5] {
    [
        s.waiting,
        s.active,
        s.admitted_total,
        s.dropped_total,
        s.left_total,
    ]
}

/// Checks every invariant of the room over `tokens` (every ticket the suite was given);
/// `max_active` unless it was lowered below the live passes.
pub async fn room<B: Backends>(
    b: &B,
    room: &B::Room,
    tokens: &[TicketToken],
    max_active: Option<u32>,
    step: &str,
) {
    for _ in 0..8 {
        let before = room.stats().await.expect("stats");
        let mut entries = Vec::new();
        for &t in tokens {
            entries.push(room.peek(t).await);
        }
        let waiting = room.waiting().await.expect("waiting");
        let after = room.stats().await.expect("stats");
        if counts(&before) == counts(&after) && waiting == before.waiting {
            let at = |what: String| format!("{}: {step}: {what}", b.name());
            let mut places: Vec<(u64, Duration)> = entries
                .iter()
                .filter_map(|e| match e {
                    Ok(Entry::Waiting(t)) => Some((t.position, t.eta)),
                    _ => None,
                })
                .collect();
            places.sort();
            let positions: Vec<u64> = places.iter().map(|p| p.0).collect();
            let exact: Vec<u64> = (1..=before.waiting).collect();
            assert_eq!(positions, exact, "{}", at("positions".into()));
            assert!(
                places.windows(2).all(|w| w[0].1 <= w[1].1),
                "{}",
                at(format!("ETA decreasing in position: {places:?}"))
            );
            let live = entries
                .iter()
                .filter(|e| matches!(e, Ok(Entry::Admitted(_))))
                .count() as u64;
            assert_eq!(live, before.active, "{}", at("live passes".into()));
            if let Some(max) = max_active {
                assert!(
                    live <= u64::from(max),
                    "{}",
                    at(format!("{live} > {max} active"))
                );
            }
            b.audit_room(room);
            return;
        }
    }
    panic!(
        "{}: {step}: the room never held still for a check",
        b.name()
    );
}
