//! The report of a failed whole-structure consistency check.

use thiserror::Error;

/// A broken invariant found by `check_invariants` on a [`SlotBook`](crate::SlotBook) or a
/// [`WaitingRoom`](crate::WaitingRoom). Seeing one is a bug in surgegate: please report it with
/// the message.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("surgegate invariant violated: {0}")]
pub struct InvariantViolation(pub String);

/// Returns `Err(InvariantViolation)` with a formatted message when `cond` is false.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::invariant::InvariantViolation(format!($($fmt)+)));
        }
    };
}
pub(crate) use ensure;
