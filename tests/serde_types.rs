//! The public result types through serde (feature `serde`): tokens as their text, entries tagged
//! by status, and every value back unchanged.
#![cfg(all(feature = "serde", not(loom)))]

use std::time::Duration;

use serde_json::{Value, json};
use surgegate::{
    ApplicantId, BranchId, Entry, HoldToken, ManualClock, SlotBook, TicketToken, VisitorId,
    WaitingRoom,
};

fn round_trip<T>(value: &T) -> Value
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let text = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&text).unwrap();
    assert_eq!(&back, value, "{text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn book_results_round_trip_with_tokens_as_text() {
    let book = SlotBook::builder()
        .hold_ttl(Duration::from_secs(60))
        .clock(ManualClock::new())
        .build();
    book.set_capacity(BranchId(3), 7, 2).unwrap();
    let hold = book.reserve(BranchId(3), 7, ApplicantId(9)).unwrap();
    let json = round_trip(&hold);
    assert_eq!(json["token"], hold.token.to_string());
    assert_eq!(json["branch"], 3);
    assert_eq!(json["applicant"], 9);
    let booking = book.confirm(hold.token).unwrap();
    round_trip(&booking);
    let state = book.slot(BranchId(3), 7).unwrap();
    assert_eq!(
        round_trip(&state),
        json!({"capacity": 2, "held": 0, "booked": 1})
    );
}

#[test]
fn room_results_round_trip_tagged_by_status() {
    let room = WaitingRoom::builder()
        .rate_per_second(1)
        .burst(1)
        .clock(ManualClock::new())
        .build();
    let admitted = room.join(VisitorId(1)).unwrap();
    let waiting = room.join(VisitorId(2)).unwrap();
    assert_eq!(round_trip(&admitted)["status"], "admitted");
    let json = round_trip(&waiting);
    assert_eq!(json["status"], "waiting");
    assert_eq!(json["position"], 1);
    let Entry::Waiting(ticket) = waiting else {
        panic!()
    };
    round_trip(&ticket);
    let stats = room.stats();
    let text = serde_json::to_string(&stats).unwrap();
    assert!(text.contains("\"waiting\":1"), "{text}");
}

#[test]
fn tokens_refuse_anything_but_their_text() {
    let token: TicketToken = serde_json::from_str("\"0123456789abcdef0123456789ABCDEF\"").unwrap();
    assert_eq!(token.to_string(), "0123456789abcdef0123456789abcdef");
    for bad in [
        "\"\"",
        "\"xyz\"",
        "42",
        "null",
        "\"0123456789abcdef0123456789abcdef0\"",
    ] {
        assert!(serde_json::from_str::<HoldToken>(bad).is_err(), "{bad}");
    }
}
