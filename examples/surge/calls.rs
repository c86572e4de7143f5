//! The book calls of one (mode, city) group in one tick, on one thread, in a fixed order:
//! cancellations, confirmations, standby checks, then reservations. Under the standby mode a
//! reservation that finds nothing joins the standby line over the same branches and days, and a
//! fast client's retry first asks for its standby offer.

use surgegate::{
    AllocationRound, ApplicantId, BranchId, HoldToken, ManualClock, ReserveError, SlotBook,
    StandbyError,
};

use crate::booking::{MODES, Mode, Seat, Work};
use crate::sim::Plan;

/// A hold as the simulation records it: its token, branch and slot.
pub type Held = (HoldToken, u32, u32);

/// What one book call (or one short sequence of them for one visitor) gave.
pub enum Outcome {
    Cancelled(bool),
    Confirmed(Option<u32>),
    Reserved(Result<Held, ReserveError>),
    /// Found nothing and joined the standby line.
    Standing,
    /// Found nothing, and the standby line refused the request (it is full).
    Refused,
    /// A standby check: the hold standby gave, if any.
    Offered(Option<Held>),
    /// Left the standby line after waiting its time, with nothing (or, if an offer came just
    /// before, with that hold).
    Left(Option<Held>),
}

/// Calls to try a reservation again when `standby` finds a unit free (a race within the tick
/// cannot happen on one thread; the bound only keeps a surprise from looping).
const STANDBY_ATTEMPTS: u32 = 3;

/// One group's book calls in one tick: `work.checks` ask for a standby offer, `work.leaves` are
/// standby requests whose waiting time is over.
pub fn group_work(
    book: &SlotBook<ManualClock>,
    seats: &[[Seat; MODES]],
    plans: &[Plan],
    slots_per_branch: u32,
    mode: Mode,
    work: &Work,
) -> Vec<(u32, Outcome)> {
    let seat = |v: u32| seats[v as usize][mode as usize];
    let mut out = Vec::new();
    for &v in &work.cancels {
        let hold = seat(v).hold.expect("a booking to cancel");
        out.push((v, Outcome::Cancelled(book.release(hold).is_ok())));
    }
    for &v in &work.confirms {
        let hold = seat(v).hold.expect("a hold to confirm");
        let slot = book.confirm(hold).map(|b| b.slot).ok();
        out.push((v, Outcome::Confirmed(slot)));
    }
    for &v in &work.checks {
        out.push((v, Outcome::Offered(offer(book, v))));
    }
    for &v in &work.leaves {
        let applicant = ApplicantId(u64::from(v));
        // `false`: an offer came before the request could leave; the hold is the applicant's.
        let left = book.leave_standby(applicant);
        out.push((v, Outcome::Left(if left { None } else { offer(book, v) })));
    }
    for &v in &work.reserves {
        let p = &plans[v as usize];
        let r = match mode {
            Mode::Standby => reserve_or_stand(book, p, v, slots_per_branch, seat(v)),
            _ => Outcome::Reserved(reserve(book, p, v, slots_per_branch, mode)),
        };
        out.push((v, r));
    }
    out
}

/// The hold standby gave `v`, if any.
fn offer(book: &SlotBook<ManualClock>, v: u32) -> Option<Held> {
    book.standby_offer(ApplicantId(u64::from(v)))
        .map(|h| (h.token, h.branch.0, h.slot))
}

/// One reservation: the own branch (one branch mode), or the earliest slot among the acceptable
/// ones (every other mode).
fn reserve(
    book: &SlotBook<ManualClock>,
    p: &Plan,
    v: u32,
    slots_per_branch: u32,
    mode: Mode,
) -> Result<Held, ReserveError> {
    let applicant = ApplicantId(u64::from(v));
    let r = match mode {
        Mode::Single => {
            book.reserve_earliest(BranchId(p.branches[0]), 0..slots_per_branch, applicant)
        }
        Mode::Among | Mode::Round | Mode::Standby => {
            book.reserve_earliest_among(&acceptable(p), 0..slots_per_branch, applicant)
        }
    };
    r.map(|h| (h.token, h.branch.0, h.slot))
}

/// The standby mode's request: an offer already made (a fast client's retry), else the
/// earliest slot among the acceptable branches, else a place in the standby line over them.
fn reserve_or_stand(
    book: &SlotBook<ManualClock>,
    p: &Plan,
    v: u32,
    slots_per_branch: u32,
    seat: Seat,
) -> Outcome {
    if seat.standby_until_ns > 0
        && let Some(held) = offer(book, v)
    {
        return Outcome::Offered(Some(held));
    }
    for _ in 0..STANDBY_ATTEMPTS {
        match reserve(book, p, v, slots_per_branch, Mode::Standby) {
            Ok(held) => {
                if seat.standby_until_ns > 0 {
                    // A fast client's retry found a unit no request covered: its own request
                    // ends here.
                    book.leave_standby(ApplicantId(u64::from(v)));
                }
                return Outcome::Reserved(Ok(held));
            }
            Err(ReserveError::NoneAvailable) if seat.standby_until_ns > 0 => {
                return Outcome::Reserved(Err(ReserveError::NoneAvailable));
            }
            Err(ReserveError::NoneAvailable) => {}
            Err(e) => return Outcome::Reserved(Err(e)),
        }
        let applicant = ApplicantId(u64::from(v));
        match book.standby(applicant, &acceptable(p), 0..slots_per_branch) {
            Ok(_) => return Outcome::Standing,
            Err(StandbyError::UnitFree { .. }) => continue,
            Err(StandbyError::LineFull { .. }) => return Outcome::Refused,
            Err(e) => panic!("standby: {e}"),
        }
    }
    panic!("standby kept finding a free unit the reservation did not")
}

fn acceptable(p: &Plan) -> Vec<BranchId> {
    p.acceptable().iter().map(|&b| BranchId(b)).collect()
}

/// Puts a visitor's acceptable branches, over every slot, into a round as ranked preferences.
pub fn request(round: &mut AllocationRound, p: &Plan, v: u32, slots_per_branch: u32) {
    let prefs: Vec<_> = p
        .acceptable()
        .iter()
        .map(|&b| (BranchId(b), 0..slots_per_branch))
        .collect();
    round
        .request(ApplicantId(u64::from(v)), &prefs)
        .expect("1-4 preferences with non-empty ranges");
}
