//! A small honest example: a handful of applicants race for three appointments.
use std::time::Duration;

use surgegate::{ApplicantId, BranchId, ManualClock, SlotBook};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = ManualClock::new();
    let book = SlotBook::builder()
        .hold_ttl(Duration::from_secs(600))
        .clock(clock.clone())
        .build();
    book.set_capacity(BranchId(1), 0, 3)?;
    let mut booked = 0;
    for a in 0..10 {
        match book.reserve_earliest(BranchId(1), 0..1, ApplicantId(a)) {
            Ok(hold) => {
                book.confirm(hold.token)?;
                booked += 1;
            }
            Err(e) => println!("applicant {a}: {e}"),
        }
    }
    println!("booked {booked} of 3: {:?}", book.slot(BranchId(1), 0));
    Ok(())
}
