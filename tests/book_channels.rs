//! Channel quotas beyond the model: durability (a journal of the previous format still opens;
//! quotas and the parts of bookings survive a reopen, from the journal and from a checkpoint),
//! and threads racing plain and channel reservations for the last units.

use std::path::Path;
use std::time::Duration;

use surgegate::{
    ApplicantId, BranchId, CapacityError, Channel, ManualClock, ReserveError, SlotBook, SlotState,
};

fn open(dir: &Path) -> SlotBook<ManualClock> {
    SlotBook::builder()
        .shards(4)
        .hold_ttl(Duration::from_secs(600))
        .max_active_per_applicant(4)
        .clock(ManualClock::new())
        .open(dir)
        .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// `tests/fixtures/journal_v3` was written by the format before channels (version 3): a
/// checkpoint and a journal segment after it, with capacities, a close, bookings and a
/// cancellation. This build reads it as it was, and writes on in its own format.
#[test]
fn a_journal_of_the_previous_format_opens_with_every_capacity_and_booking() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/journal_v3");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path());
    let book = open(dir.path());
    let slot = |b, s| book.slot(BranchId(b), s);
    assert_eq!(
        slot(7, 3),
        Some(SlotState {
            capacity: 6,
            held: 0,
            booked: 1
        })
    );
    assert_eq!(slot(7, 4), None, "closed in the old journal");
    assert_eq!(
        slot(9, 0),
        Some(SlotState {
            capacity: 1,
            held: 0,
            booked: 0
        })
    );
    let b1 = book
        .booking("8fd14f1330ce6c8484a1745c00000000".parse().unwrap())
        .unwrap();
    assert_eq!(
        (b1.branch, b1.slot, b1.applicant),
        (BranchId(7), 3, ApplicantId(1))
    );
    let b2 = book
        .booking("a1ab1c8c062762df0dac72b200000003".parse().unwrap())
        .unwrap();
    assert_eq!(
        (b2.branch, b2.slot, b2.applicant),
        (BranchId(7), 4, ApplicantId(2))
    );
    assert_eq!(book.check_invariants().unwrap().bookings, 2);
    // The old bookings are plain: releasing one gives its unit to everyone.
    book.release(b1.token).unwrap();
    book.set_channel_quota(BranchId(7), 3, Channel(1), 2)
        .unwrap();
    drop(book);
    let book = open(dir.path());
    assert_eq!(book.slot(BranchId(7), 3).unwrap().remaining(), 4);
    assert_eq!(
        book.channel_quotas(BranchId(7), 3).unwrap().channels[0].quota,
        2
    );
    book.check_invariants().unwrap();
}

/// Quotas, openings and bookings taken on a channel come back after a reopen, from the journal
/// and from a checkpoint, and a booking from a quota still returns to it when released.
#[test]
fn quotas_and_the_parts_of_bookings_survive_a_reopen() {
    for checkpoint in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let book = open(dir.path());
        let (b, s) = (BranchId(3), 10);
        book.set_capacity(b, s, 6).unwrap();
        book.set_capacity(b, s + 1, 6).unwrap();
        book.set_channel_quota(b, s, Channel(1), 2).unwrap();
        book.set_channel_quota(b, s, Channel(2), 1).unwrap();
        book.set_channel_quota(b, s + 1, Channel(1), 3).unwrap();
        book.open_channel_quotas(b, s + 1).unwrap();
        let counter = book.reserve_on(Channel(1), b, s, ApplicantId(1)).unwrap();
        let counter = book.confirm(counter.token).unwrap();
        let web = book.reserve(b, s, ApplicantId(2)).unwrap();
        book.confirm(web.token).unwrap();
        let before = (book.slot(b, s), book.channel_quotas(b, s));
        let after_open = (book.slot(b, s + 1), book.channel_quotas(b, s + 1));
        if checkpoint {
            book.checkpoint().unwrap();
        }
        drop(book);

        let book = open(dir.path());
        assert_eq!((book.slot(b, s), book.channel_quotas(b, s)), before);
        assert_eq!(
            (book.slot(b, s + 1), book.channel_quotas(b, s + 1)),
            after_open
        );
        assert_eq!(
            book.slot(b, s).unwrap().remaining(),
            2,
            "6 - 2 booked - 2 kept"
        );
        book.check_invariants().unwrap();
        // The counter's booking goes back to the counters' quota, not to the web.
        book.release(counter.token).unwrap();
        assert_eq!(book.slot(b, s).unwrap().remaining(), 2);
        let q = book.channel_quotas(b, s).unwrap();
        assert_eq!((q.channels[0].from_quota, q.channels[0].taken), (0, 0));
        book.check_invariants().unwrap();
    }
}

#[test]
fn quotas_never_exceed_the_capacity_and_errors_change_nothing() {
    let book = SlotBook::builder().build();
    let (b, s) = (BranchId(1), 0);
    assert_eq!(
        book.set_channel_quota(b, s, Channel(1), 1),
        Err(CapacityError::UnknownSlot)
    );
    book.set_capacity(b, s, 4).unwrap();
    book.set_channel_quota(b, s, Channel(1), 3).unwrap();
    let before = (book.slot(b, s), book.channel_quotas(b, s));
    assert_eq!(
        book.set_channel_quota(b, s, Channel(2), 2),
        Err(CapacityError::QuotasAboveCapacity {
            quotas: 5,
            capacity: 4
        })
    );
    assert_eq!(
        book.set_capacity(b, s, 2),
        Err(CapacityError::QuotasAboveCapacity {
            quotas: 3,
            capacity: 2
        })
    );
    assert!(matches!(
        book.set_channel_quota(b, s, Channel(1), u32::MAX),
        Err(CapacityError::CapacityTooLarge { .. })
    ));
    assert_eq!((book.slot(b, s), book.channel_quotas(b, s)), before);
    book.close_slot(b, s).unwrap();
    assert_eq!(
        book.set_channel_quota(b, s, Channel(1), 1),
        Err(CapacityError::UnknownSlot)
    );
    assert_eq!(
        book.reserve_on(Channel(1), b, s, ApplicantId(1)),
        Err(ReserveError::UnknownSlot)
    );
    // Reopened: the quota holds again.
    book.set_capacity(b, s, 4).unwrap();
    assert_eq!(book.slot(b, s).unwrap().remaining(), 1);
    book.check_invariants().unwrap();
}

/// Threads on two channels and on the web race for a slot's units: nobody ever gets more than
/// its part, the slot is never overbooked, and the book's own check holds throughout.
#[test]
fn racing_channels_and_plain_reservations_never_take_more_than_their_parts() {
    for round in 0..50u64 {
        let book = SlotBook::builder().max_active_per_applicant(1).build();
        let (b, s) = (BranchId(1), 7);
        book.set_capacity(b, s, 5).unwrap();
        book.set_channel_quota(b, s, Channel(1), 2).unwrap();
        book.set_channel_quota(b, s, Channel(2), 1).unwrap();
        let won = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for t in 0..6u64 {
                let (book, won) = (&book, &won);
                scope.spawn(move || {
                    for i in 0..4u64 {
                        let applicant = ApplicantId(round * 1_000 + t * 10 + i);
                        let got = match t % 3 {
                            0 => book.reserve(b, s, applicant),
                            1 => book.reserve_on(Channel(1), b, s, applicant),
                            _ => book.reserve_on(Channel(2), b, s, applicant),
                        };
                        if let Ok(hold) = got {
                            won.lock().unwrap().push((t % 3, hold));
                        }
                        book.check_invariants().unwrap();
                    }
                });
            }
        });
        let won = won.into_inner().unwrap();
        let count = |k| won.iter().filter(|(c, _)| *c == k).count();
        assert_eq!(won.len(), 5, "every unit taken: {won:?}");
        assert!(count(0) <= 2, "the web took more than the open part");
        assert!(
            count(1) >= 2 && count(2) >= 1,
            "a quota was taken by others"
        );
        let q = book.channel_quotas(b, s).unwrap();
        assert_eq!(q.channels[0].from_quota + q.channels[1].from_quota, 3);
        book.check_invariants().unwrap();
    }
}
