//! The appointment modes the launch surge runs side by side, and the figures of each (see
//! `booking` for what each mode does).

use serde::Serialize;

/// The appointment modes, side by side.
pub const MODES: usize = 4;

/// How applicants get appointments; see `booking`'s module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Mode {
    Single,
    Among,
    Round,
    Standby,
}

impl Mode {
    pub const ALL: [Mode; MODES] = [Mode::Single, Mode::Among, Mode::Round, Mode::Standby];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Single => "one branch",
            Mode::Among => "alternatives",
            Mode::Round => "round",
            Mode::Standby => "standby",
        }
    }

    /// The mode of a `--modes` word: `one`, `alternatives`, `round` or `standby`.
    pub fn parse(word: &str) -> Option<Mode> {
        match word {
            "one" => Some(Mode::Single),
            "alternatives" => Some(Mode::Among),
            "round" => Some(Mode::Round),
            "standby" => Some(Mode::Standby),
            _ => None,
        }
    }
}

/// One mode's outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ModeReport {
    pub mode: &'static str,
    /// Whether this mode ran (`--modes`); the figures of one that did not are zeros.
    pub ran: bool,
    /// Confirmed and not cancelled at the end.
    pub bookings: u64,
    /// Of those, held by fast clients.
    pub fast_bookings: u64,
    pub cancelled: u64,
    /// Asked for an appointment and never got a hold (fast clients: not even by retrying).
    pub no_slot: u64,
    pub holds_granted: u64,
    /// Granted and never confirmed: they lapsed and gave their unit back.
    pub holds_expired: u64,
    /// Slots whose bookings (counted from the simulation's own records) exceed their capacity.
    pub overbooked: u64,
    /// Appointments offered and not booked at the end.
    pub unused_capacity: u64,
    /// Units given back: by a cancellation, or by a hold that lapsed.
    pub given_back: u64,
    /// Of those, units somebody was granted a hold on again (the unit's next taker counted once).
    pub given_back_taken: u64,
    /// Of those, taken again by a fast client.
    pub fast_given_back: u64,
}
