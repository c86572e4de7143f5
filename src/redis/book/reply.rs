//! Reading the book scripts' replies. A reply of any other shape is `BackendError::Reply`, never
//! a panic: the store may not be what it claims, or something else may write under the
//! namespace.

use std::time::Duration;

use redis::Value;

use crate::backend::BackendError;
use crate::book::{
    ApplicantId, Booking, BranchId, CapacityError, Channel, ChannelState, ConfirmError, Hold,
    HoldToken, ReserveError, SlotIndex, SlotQuotas, SlotState,
};

type Reply<T> = Result<T, BackendError>;

pub(super) fn int(v: &Value) -> Reply<i64> {
    match v {
        Value::Int(n) => Ok(*n),
        _ => Err(BackendError::Reply),
    }
}

pub(super) fn u32_of(v: &Value) -> Reply<u32> {
    u32::try_from(int(v)?).map_err(|_| BackendError::Reply)
}

pub(super) fn u64_of(v: &Value) -> Reply<u64> {
    u64::try_from(int(v)?).map_err(|_| BackendError::Reply)
}

pub(super) fn text(v: &Value) -> Reply<&str> {
    match v {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).map_err(|_| BackendError::Reply),
        Value::SimpleString(s) => Ok(s),
        _ => Err(BackendError::Reply),
    }
}

pub(super) fn items(v: &Value) -> Reply<&[Value]> {
    match v {
        Value::Array(items) => Ok(items),
        _ => Err(BackendError::Reply),
    }
}

fn applicant(v: &Value) -> Reply<ApplicantId> {
    text(v)?
        .parse()
        .map(ApplicantId)
        .map_err(|_| BackendError::Reply)
}

fn token(v: &Value) -> Reply<HoldToken> {
    text(v)?.parse().map_err(|_| BackendError::Reply)
}

/// `{capacity, held, booked}` or `{}`.
pub(crate) fn slot_state(v: &Value) -> Reply<Option<SlotState>> {
    match items(v)? {
        [] => Ok(None),
        [capacity, held, booked] => Ok(Some(SlotState {
            capacity: u32_of(capacity)?,
            held: u32_of(held)?,
            booked: u32_of(booked)?,
        })),
        _ => Err(BackendError::Reply),
    }
}

pub(super) fn is_text(v: &Value, want: &str) -> bool {
    matches!(text(v), Ok(t) if t == want)
}

/// The capacity script's changes: `{capacity, held, booked}`, `{'err', 'unknown_slot'}` or
/// `{'err', 'quotas', sum, capacity}`.
pub(crate) fn capacity_change(v: &Value) -> Reply<Result<SlotState, CapacityError>> {
    match items(v)? {
        [tag, reason] if is_text(tag, "err") && is_text(reason, "unknown_slot") => {
            Ok(Err(CapacityError::UnknownSlot))
        }
        [tag, reason, quotas, capacity] if is_text(tag, "err") && is_text(reason, "quotas") => {
            Ok(Err(CapacityError::QuotasAboveCapacity {
                quotas: u64_of(quotas)?,
                capacity: u32_of(capacity)?,
            }))
        }
        _ => slot_state(v)?.map(Ok).ok_or(BackendError::Reply),
    }
}

/// The capacity script's `open_range`: `{opened, next}`.
pub(crate) fn opened(v: &Value) -> Reply<(u32, u64)> {
    match items(v)? {
        [opened, next] => Ok((u32_of(opened)?, u64_of(next)?)),
        _ => Err(BackendError::Reply),
    }
}

/// The read script's `quotas`: `{capacity, channel, quota, from_quota, taken, ...}` or `{}`.
pub(crate) fn quotas(v: &Value) -> Reply<Option<SlotQuotas>> {
    let items = items(v)?;
    let Some((capacity, channels)) = items.split_first() else {
        return Ok(None);
    };
    if !channels.len().is_multiple_of(4) {
        return Err(BackendError::Reply);
    }
    let channels = channels
        .chunks(4)
        .map(|c| {
            Ok(ChannelState {
                channel: Channel(u8::try_from(int(&c[0])?).map_err(|_| BackendError::Reply)?),
                quota: u32_of(&c[1])?,
                from_quota: u32_of(&c[2])?,
                taken: u32_of(&c[3])?,
            })
        })
        .collect::<Reply<Vec<_>>>()?;
    Ok(Some(SlotQuotas {
        capacity: u32_of(capacity)?,
        channels,
    }))
}

/// The read script's range: `{slot, capacity, held, booked, ...}`.
pub(crate) fn slot_states(v: &Value) -> Reply<Vec<(SlotIndex, SlotState)>> {
    let items = items(v)?;
    if !items.len().is_multiple_of(4) {
        return Err(BackendError::Reply);
    }
    items
        .chunks(4)
        .map(|c| {
            let state = SlotState {
                capacity: u32_of(&c[1])?,
                held: u32_of(&c[2])?,
                booked: u32_of(&c[3])?,
            };
            Ok((u32_of(&c[0])?, state))
        })
        .collect()
}

/// The read script's `first`: the lowest slot with room in a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum First {
    /// The branch has no slot at all.
    Unknown,
    /// No slot of the range has room.
    Full,
    /// This one.
    Slot(SlotIndex),
}

/// `{'slot', s}`, `{'none'}` or `{'unknown'}`.
pub(crate) fn first(v: &Value) -> Reply<First> {
    match items(v)? {
        [tag, slot] if text(tag)? == "slot" => Ok(First::Slot(u32_of(slot)?)),
        [tag] if text(tag)? == "none" => Ok(First::Full),
        [tag] if text(tag)? == "unknown" => Ok(First::Unknown),
        _ => Err(BackendError::Reply),
    }
}

/// `SSCAN` of the branch registry: `[cursor, [branch, ...]]`.
pub(crate) fn registry_page(v: &Value) -> Reply<(String, Vec<BranchId>)> {
    match items(v)? {
        [cursor, members] => {
            let branches = items(members)?
                .iter()
                .map(|m| {
                    text(m)?
                        .parse()
                        .map(BranchId)
                        .map_err(|_| BackendError::Reply)
                })
                .collect::<Reply<Vec<_>>>()?;
            Ok((text(cursor)?.to_owned(), branches))
        }
        _ => Err(BackendError::Reply),
    }
}

/// The tokens counted against an applicant (`ZRANGE` of its key).
pub(crate) fn tokens(v: &Value) -> Reply<Vec<HoldToken>> {
    items(v)?.iter().map(token).collect()
}

/// The applicant script's `take`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Taken, counting until this time (ms since the Unix epoch).
    Until(u64),
    /// At the limit; these counted tokens may stand for nothing and are worth settling.
    Limit(Vec<HoldToken>),
}

/// The applicant script's `take`: `{1, until_ms}` or `{0, token...}`.
pub(crate) fn taken(v: &Value) -> Reply<Taken> {
    match items(v)? {
        [one, until] if int(one)? == 1 => Ok(Taken::Until(u64_of(until)?)),
        [zero, tokens @ ..] if int(zero)? == 0 => Ok(Taken::Limit(
            tokens.iter().map(token).collect::<Reply<_>>()?,
        )),
        _ => Err(BackendError::Reply),
    }
}

/// What the settle script found for a counted token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    /// A live hold.
    Hold,
    /// A booking.
    Booking,
    /// Neither (the token is now fenced: no hold is made under it).
    Gone,
}

/// The settle script: `'hold'`, `'booking'` or `'gone'`.
pub(crate) fn settled(v: &Value) -> Reply<Settled> {
    match text(v)? {
        "hold" => Ok(Settled::Hold),
        "booking" => Ok(Settled::Booking),
        "gone" => Ok(Settled::Gone),
        _ => Err(BackendError::Reply),
    }
}

pub(crate) fn is_one(v: &Value) -> bool {
    matches!(v, Value::Int(1))
}

/// The reserve script: `{'held', token, slot, expires_ms}` or `{'err', reason}`.
/// A hold from the `token, slot, expires_ms` of a `{'held', ...}` reply.
pub(super) fn held(
    t: &Value,
    slot: &Value,
    expires: &Value,
    branch: BranchId,
    who: ApplicantId,
) -> Reply<Hold> {
    Ok(Hold {
        token: token(t)?,
        branch,
        slot: u32_of(slot)?,
        applicant: who,
        expires_at: Duration::from_millis(u64_of(expires)?),
    })
}

pub(crate) fn hold(
    v: &Value,
    branch: BranchId,
    who: ApplicantId,
) -> Reply<Result<Hold, ReserveError>> {
    match items(v)? {
        [tag, t, slot, expires] if text(tag)? == "held" => {
            Ok(Ok(held(t, slot, expires, branch, who)?))
        }
        [tag, reason] if text(tag)? == "err" => Ok(Err(match text(reason)? {
            "unknown_slot" => ReserveError::UnknownSlot,
            "full" => ReserveError::Full,
            "none_available" | "none" => ReserveError::NoneAvailable,
            // The branch's clock ran past the applicant count's margin: a call that slow is a
            // timeout; retrying is safe.
            "stale" => ReserveError::Backend(BackendError::Timeout),
            _ => return Err(BackendError::Reply),
        })),
        _ => Err(BackendError::Reply),
    }
}

/// The confirm script: `{'booked', slot, applicant}` or `{'err', 'expired' | 'unknown'}`.
pub(crate) fn booking(
    v: &Value,
    branch: BranchId,
    t: HoldToken,
) -> Reply<Result<Booking, ConfirmError>> {
    match items(v)? {
        [tag, slot, who] if text(tag)? == "booked" => Ok(Ok(Booking {
            token: t,
            branch,
            slot: u32_of(slot)?,
            applicant: applicant(who)?,
        })),
        [tag, reason] if text(tag)? == "err" => match text(reason)? {
            "expired" => Ok(Err(ConfirmError::Expired)),
            "unknown" => Ok(Err(ConfirmError::UnknownToken)),
            _ => Err(BackendError::Reply),
        },
        _ => Err(BackendError::Reply),
    }
}

/// The read script's hold: `{slot, applicant, expires_ms}` or `{}`.
pub(crate) fn hold_record(v: &Value) -> Reply<Option<(SlotIndex, ApplicantId, u64)>> {
    match items(v)? {
        [] => Ok(None),
        [slot, who, expires] => Ok(Some((u32_of(slot)?, applicant(who)?, u64_of(expires)?))),
        _ => Err(BackendError::Reply),
    }
}

/// The read script's booking: `{slot, applicant}` or `{}`.
pub(crate) fn booking_record(v: &Value, branch: BranchId, t: HoldToken) -> Reply<Option<Booking>> {
    match items(v)? {
        [] => Ok(None),
        [slot, who] => Ok(Some(Booking {
            token: t,
            branch,
            slot: u32_of(slot)?,
            applicant: applicant(who)?,
        })),
        _ => Err(BackendError::Reply),
    }
}

/// The release script: `{'released', 'hold' | 'booking', applicant}` (whether it was a booking)
/// or `{'err', 'unknown'}` (`None`).
pub(crate) fn released(v: &Value) -> Reply<Option<(bool, ApplicantId)>> {
    match items(v)? {
        [tag, kind, who] if text(tag)? == "released" => {
            let was_booking = match text(kind)? {
                "booking" => true,
                "hold" => false,
                _ => return Err(BackendError::Reply),
            };
            Ok(Some((was_booking, applicant(who)?)))
        }
        [tag, reason] if text(tag)? == "err" && text(reason)? == "unknown" => Ok(None),
        _ => Err(BackendError::Reply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn every_wrong_shape_is_a_reply_error() {
        let wrong = [
            Value::Nil,
            Value::Int(-1),
            bulk("held"),
            Value::Array(vec![bulk("held")]),
            Value::Array(vec![bulk("held"), bulk("zz"), Value::Int(1), Value::Int(2)]),
            Value::Array(vec![bulk("err"), bulk("no such reason")]),
            Value::Array(vec![Value::Int(1), Value::Int(-5), Value::Int(0)]),
            Value::Array(vec![Value::Int(1 << 40), Value::Int(0), Value::Int(0)]),
        ];
        let b = BranchId(1);
        let t = HoldToken::from_u128(1);
        for v in &wrong {
            assert_eq!(
                hold(v, b, ApplicantId(1)).err(),
                Some(BackendError::Reply),
                "{v:?}"
            );
            assert_eq!(booking(v, b, t).err(), Some(BackendError::Reply), "{v:?}");
            assert_eq!(released(v).err(), Some(BackendError::Reply), "{v:?}");
            assert!(
                slot_state(v).is_err() || matches!(v, Value::Array(a) if a.is_empty()),
                "{v:?}"
            );
            assert!(taken(v).is_err(), "{v:?}");
            assert!(capacity_change(v).is_err(), "{v:?}");
            assert!(quotas(v).is_err(), "{v:?}");
            assert!(settled(v).is_err(), "{v:?}");
            assert!(first(v).is_err(), "{v:?}");
            assert!(
                registry_page(v).is_err() || matches!(v, Value::Array(a) if a.len() == 2),
                "{v:?}"
            );
        }
    }

    #[test]
    fn good_shapes_read_back() {
        let state = Value::Array(vec![Value::Int(5), Value::Int(1), Value::Int(2)]);
        assert_eq!(
            slot_state(&state),
            Ok(Some(SlotState {
                capacity: 5,
                held: 1,
                booked: 2
            }))
        );
        assert_eq!(slot_state(&Value::Array(vec![])), Ok(None));
        let t = HoldToken::from_u128(7);
        let held = Value::Array(vec![
            bulk("held"),
            bulk(&t.to_string()),
            Value::Int(3),
            Value::Int(9000),
        ]);
        let h = hold(&held, BranchId(2), ApplicantId(4)).unwrap().unwrap();
        assert_eq!(
            (h.token, h.slot, h.expires_at),
            (t, 3, Duration::from_secs(9))
        );
        let full = Value::Array(vec![bulk("err"), bulk("full")]);
        assert_eq!(
            hold(&full, BranchId(2), ApplicantId(4)),
            Ok(Err(ReserveError::Full))
        );
        let rel = Value::Array(vec![
            bulk("released"),
            bulk("booking"),
            bulk("18446744073709551615"),
        ]);
        assert_eq!(released(&rel), Ok(Some((true, ApplicantId(u64::MAX)))));
        let limit = Value::Array(vec![Value::Int(0), bulk(&t.to_string())]);
        assert_eq!(taken(&limit), Ok(Taken::Limit(vec![t])));
        let bad = Value::Array(vec![Value::Int(0), bulk("x")]);
        assert_eq!(taken(&bad), Err(BackendError::Reply));
        let until = Value::Array(vec![Value::Int(1), Value::Int(5)]);
        assert_eq!(taken(&until), Ok(Taken::Until(5)));
        let at = Value::Array(vec![bulk("slot"), Value::Int(12)]);
        assert_eq!(first(&at), Ok(First::Slot(12)));
        assert_eq!(first(&Value::Array(vec![bulk("none")])), Ok(First::Full));
        let page = Value::Array(vec![bulk("0"), Value::Array(vec![bulk("3"), bulk("9")])]);
        assert_eq!(
            registry_page(&page),
            Ok(("0".to_owned(), vec![BranchId(3), BranchId(9)]))
        );
        let bad = Value::Array(vec![bulk("0"), Value::Array(vec![bulk("-3")])]);
        assert_eq!(registry_page(&bad), Err(BackendError::Reply));
    }

    #[test]
    fn quota_replies_read_back_and_junk_is_refused() {
        let over = Value::Array(vec![
            bulk("err"),
            bulk("quotas"),
            Value::Int(7),
            Value::Int(5),
        ]);
        assert_eq!(
            capacity_change(&over),
            Ok(Err(CapacityError::QuotasAboveCapacity {
                quotas: 7,
                capacity: 5
            }))
        );
        let unknown = Value::Array(vec![bulk("err"), bulk("unknown_slot")]);
        assert_eq!(
            capacity_change(&unknown),
            Ok(Err(CapacityError::UnknownSlot))
        );
        assert_eq!(
            capacity_change(&Value::Array(vec![])),
            Err(BackendError::Reply)
        );
        let q = Value::Array([5, 2, 3, 1, 1].map(Value::Int).to_vec());
        let read = quotas(&q).unwrap().unwrap();
        assert_eq!(read.capacity, 5);
        assert_eq!(
            read.channels,
            vec![ChannelState {
                channel: Channel(2),
                quota: 3,
                from_quota: 1,
                taken: 1
            }]
        );
        assert_eq!(quotas(&Value::Array(vec![])), Ok(None));
        for bad in [vec![5, 256, 1, 0, 0], vec![5, 2, 3], vec![5, 2, -1, 0, 0]] {
            let v = Value::Array(bad.into_iter().map(Value::Int).collect());
            assert_eq!(quotas(&v), Err(BackendError::Reply), "{v:?}");
        }
        assert_eq!(
            opened(&Value::Array(vec![Value::Int(2), Value::Int(9)])),
            Ok((2, 9))
        );
    }
}
