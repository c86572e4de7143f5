//! Reading the room script's answers. An answer of any other shape is `BackendError::Reply`,
//! never a panic: the store may not be what it claims, or something else may write under the
//! namespace.

use std::time::Duration;

use redis::Value;

use crate::backend::BackendError;
use crate::room::{Entry, Pass, PollError, RoomStats, Ticket, TicketToken, VisitorId};

type Reply<T> = Result<T, BackendError>;

/// What a room call answered.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Answer {
    /// An entry, with its sequence number in the line while it waits.
    Entry(Entry, Option<u64>),
    /// A refusal: its reason, and the microseconds to wait before retrying (0 if none).
    Refused(String, u64),
    /// The change was made.
    Done,
    /// No such visitor in the room (`entry_of`).
    Absent,
}

fn int(v: &Value) -> Reply<i64> {
    match v {
        Value::Int(n) => Ok(*n),
        _ => Err(BackendError::Reply),
    }
}

fn text(v: &Value) -> Reply<&str> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).map_err(|_| BackendError::Reply),
        Value::SimpleString(s) => Ok(s),
        _ => Err(BackendError::Reply),
    }
}

fn unsigned(v: &Value) -> Reply<u64> {
    u64::try_from(int(v)?).map_err(|_| BackendError::Reply)
}

fn u32_of(v: &Value) -> Reply<u32> {
    u32::try_from(unsigned(v)?).map_err(|_| BackendError::Reply)
}

fn flag(v: &Value) -> Reply<bool> {
    match unsigned(v)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(BackendError::Reply),
    }
}

fn token(v: &Value) -> Reply<TicketToken> {
    text(v)?.parse().map_err(|_| BackendError::Reply)
}

/// An entry (`{'admitted', token, visitor, lapses_us, claimed}` or `{'waiting', token,
/// position, eta_us, seq}`), `{'err', reason [, retry_us]}`, `{'done'}` or `{'none'}`.
pub(super) fn answer(v: &Value) -> Reply<Answer> {
    let Value::Array(items) = v else {
        return Err(BackendError::Reply);
    };
    Ok(match items.as_slice() {
        [tag, t, visitor, lapses_us, _claimed] if text(tag)? == "admitted" => {
            let pass = Pass {
                token: token(t)?,
                visitor: VisitorId(text(visitor)?.parse().map_err(|_| BackendError::Reply)?),
                expires_at: Duration::from_micros(unsigned(lapses_us)?),
            };
            Answer::Entry(Entry::Admitted(pass), None)
        }
        [tag, t, position, eta_us, seq] if text(tag)? == "waiting" => {
            let ticket = Ticket {
                token: token(t)?,
                position: unsigned(position)?,
                eta: Duration::from_micros(unsigned(eta_us)?),
            };
            Answer::Entry(Entry::Waiting(ticket), Some(unsigned(seq)?))
        }
        [tag, reason] if text(tag)? == "err" => Answer::Refused(text(reason)?.to_owned(), 0),
        [tag, reason, retry_us] if text(tag)? == "err" => {
            Answer::Refused(text(reason)?.to_owned(), unsigned(retry_us)?)
        }
        [tag] if text(tag)? == "done" => Answer::Done,
        [tag] if text(tag)? == "none" => Answer::Absent,
        _ => return Err(BackendError::Reply),
    })
}

/// A refusal of a poll or a finish.
pub(super) fn poll_error(reason: &str) -> PollError {
    match reason {
        "expired" => PollError::Expired,
        "unknown" => PollError::UnknownToken,
        _ => PollError::Backend(BackendError::Reply),
    }
}

/// The number waiting.
pub(super) fn waiting(v: &Value) -> Reply<u64> {
    unsigned(v)
}

/// The stats: `{waiting, active, admitted_total, dropped_total, left_total, paused, closed,
/// now_us, rate, burst, max_active, max_waiting, back_of_line_eta_us}`.
pub(super) fn stats(v: &Value) -> Reply<RoomStats> {
    let Value::Array(v) = v else {
        return Err(BackendError::Reply);
    };
    let [
        waiting,
        active,
        admitted,
        dropped,
        left,
        paused,
        closed,
        _now,
        rate,
        burst,
        max_active,
        max_waiting,
        back_eta_us,
    ] = v.as_slice()
    else {
        return Err(BackendError::Reply);
    };
    Ok(RoomStats {
        waiting: unsigned(waiting)?,
        prequeued: 0,
        active: unsigned(active)?,
        admitted_total: unsigned(admitted)?,
        dropped_total: unsigned(dropped)?,
        left_total: unsigned(left)?,
        rate_per_second: u32_of(rate)?,
        burst: u32_of(burst)?,
        max_active: u32_of(max_active)?,
        max_waiting: u32_of(max_waiting)?,
        paused: flag(paused)?,
        closed: flag(closed)?,
        opens_at: None,
        prequeue_seed: None,
        back_of_line_eta: Duration::from_micros(unsigned(back_eta_us)?),
    })
}

/// The settings in force, from the setup script: the check-in timeout.
pub(super) fn checkin_timeout(v: &Value) -> Reply<Duration> {
    match v {
        Value::Array(v) if v.len() == 7 => match unsigned(&v[4])? {
            0 => Err(BackendError::Reply),
            us => Ok(Duration::from_micros(us)),
        },
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
        let token = "00112233445566778899aabbccddeeff";
        let wrong = [
            Value::Nil,
            Value::Int(3),
            bulk("done"),
            Value::Array(vec![]),
            Value::Array(vec![
                bulk("waiting"),
                bulk(token),
                Value::Int(-1),
                Value::Int(0),
                Value::Int(1),
            ]),
            Value::Array(vec![
                bulk("admitted"),
                bulk("zz"),
                bulk("1"),
                Value::Int(1),
                Value::Int(0),
            ]),
            Value::Array(vec![
                bulk("admitted"),
                bulk(token),
                bulk("-1"),
                Value::Int(1),
                Value::Int(0),
            ]),
            Value::Array(vec![bulk("err"), Value::Int(5)]),
            Value::Array(vec![bulk("maybe")]),
        ];
        for v in &wrong {
            assert_eq!(answer(v), Err(BackendError::Reply), "{v:?}");
            assert_eq!(stats(v), Err(BackendError::Reply), "{v:?}");
            assert_eq!(checkin_timeout(v), Err(BackendError::Reply), "{v:?}");
        }
        let mut numbers: Vec<Value> = (0..13).map(|_| Value::Int(1)).collect();
        assert!(stats(&Value::Array(numbers.clone())).is_ok());
        numbers[5] = Value::Int(2); // a flag that is neither 0 nor 1
        assert_eq!(
            stats(&Value::Array(numbers.clone())),
            Err(BackendError::Reply)
        );
        numbers[5] = Value::Int(0);
        numbers[8] = Value::Int(1 << 40); // a rate beyond u32
        assert_eq!(stats(&Value::Array(numbers)), Err(BackendError::Reply));
    }

    #[test]
    fn good_shapes_read_back() {
        let token = "00112233445566778899aabbccddeeff";
        let waiting = Value::Array(vec![
            bulk("waiting"),
            bulk(token),
            Value::Int(3),
            Value::Int(250_000),
            Value::Int(17),
        ]);
        let Answer::Entry(Entry::Waiting(t), Some(17)) = answer(&waiting).unwrap() else {
            panic!("a waiting entry");
        };
        assert_eq!((t.position, t.eta), (3, Duration::from_millis(250)));
        let full = Value::Array(vec![bulk("err"), bulk("full"), Value::Int(2_000_000)]);
        assert_eq!(answer(&full), Ok(Answer::Refused("full".into(), 2_000_000)));
        assert_eq!(
            answer(&Value::Array(vec![bulk("none")])),
            Ok(Answer::Absent)
        );
        assert_eq!(poll_error("expired"), PollError::Expired);
        assert_eq!(poll_error("what"), PollError::Backend(BackendError::Reply));
    }
}
