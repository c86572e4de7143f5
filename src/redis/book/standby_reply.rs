//! Reading the standby scripts' replies and the applicant's stored request. A reply of any
//! other shape is `BackendError::Reply`, never a panic.

use redis::Value;

use super::reply::{held, int, is_text, items, text, u32_of, u64_of};
use crate::backend::BackendError;
use crate::book::{ApplicantId, BranchId, Hold, HoldToken, SlotIndex, StandbyRequest};

type Reply<T> = Result<T, BackendError>;

/// A standby request as its applicant's shard keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Request {
    /// Its token: the applicant's count stands under it while it waits; its top 32 bits name
    /// its first branch, whose fence ends it.
    pub(super) token: HoldToken,
    pub(super) number: u64,
    pub(super) first: SlotIndex,
    pub(super) last: SlotIndex,
    /// Without repeats, in the order given; never empty.
    pub(super) branches: Vec<BranchId>,
}

impl Request {
    /// What `line` stores after the token: `number first last branch...`.
    pub(super) fn text(&self) -> String {
        let mut out = format!("{} {} {}", self.number, self.first, self.last);
        for b in &self.branches {
            out.push_str(&format!(" {}", b.0));
        }
        out
    }

    pub(super) fn public(&self, applicant: ApplicantId) -> StandbyRequest {
        StandbyRequest {
            applicant,
            number: self.number,
            branches: self.branches.clone(),
            first: self.first,
            last: self.last,
        }
    }
}

/// The applicant's stored request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Stored {
    /// It waits in the lines of its branches.
    Waiting(Request),
    /// It was given the hold `hold`; `left`: the lines of its other branches were left.
    Given {
        hold: HoldToken,
        request: Request,
        left: bool,
    },
}

/// `w RT number first last branch...`, `g T RT ...` or `h T RT ...`; `''` for none.
pub(super) fn stored(v: &Value) -> Reply<Option<Stored>> {
    let t = text(v)?;
    if t.is_empty() {
        return Ok(None);
    }
    let mut words = t.split(' ');
    let state = words.next().ok_or(BackendError::Reply)?;
    let held = if state == "w" {
        None
    } else {
        Some(parse_token(words.next())?)
    };
    let request = Request {
        token: parse_token(words.next())?,
        number: parse(words.next())?,
        first: parse(words.next())?,
        last: parse(words.next())?,
        branches: words
            .map(|w| parse(Some(w)).map(BranchId))
            .collect::<Reply<_>>()?,
    };
    if request.branches.is_empty() || request.first > request.last {
        return Err(BackendError::Reply);
    }
    match (state, held) {
        ("w", None) => Ok(Some(Stored::Waiting(request))),
        ("g" | "h", Some(hold)) => Ok(Some(Stored::Given {
            hold,
            request,
            left: state == "h",
        })),
        _ => Err(BackendError::Reply),
    }
}

fn parse<T: std::str::FromStr>(word: Option<&str>) -> Reply<T> {
    word.and_then(|w| w.parse().ok()).ok_or(BackendError::Reply)
}

fn parse_token(word: Option<&str>) -> Reply<HoldToken> {
    word.and_then(|w| w.parse().ok()).ok_or(BackendError::Reply)
}

/// The applicant script's `line`.
pub(super) enum Lined {
    Ok,
    /// A request was there already.
    Has,
    /// The count taken for it ran out first.
    Gone,
}

pub(super) fn lined(v: &Value) -> Reply<Lined> {
    match items(v)? {
        [tag] if is_text(tag, "ok") => Ok(Lined::Ok),
        [tag] if is_text(tag, "gone") => Ok(Lined::Gone),
        [tag, _] if is_text(tag, "has") => Ok(Lined::Has),
        _ => Err(BackendError::Reply),
    }
}

/// The branch script's `join`.
pub(super) enum Joined {
    /// Waiting here, with this many requests (itself included).
    Waiting(usize),
    /// Given a unit here already.
    Offered,
    Free(SlotIndex),
    Full,
    Stale,
}

pub(super) fn joined(v: &Value) -> Reply<Joined> {
    match items(v)? {
        [tag, n] if is_text(tag, "joined") => Ok(Joined::Waiting(usize_of(n)?)),
        [tag] if is_text(tag, "offered") => Ok(Joined::Offered),
        [tag, reason] if is_text(tag, "err") => match text(reason)? {
            "full" => Ok(Joined::Full),
            "stale" => Ok(Joined::Stale),
            _ => Err(BackendError::Reply),
        },
        [tag, reason, slot] if is_text(tag, "err") && is_text(reason, "free") => {
            Ok(Joined::Free(u32_of(slot)?))
        }
        _ => Err(BackendError::Reply),
    }
}

fn usize_of(v: &Value) -> Reply<usize> {
    usize::try_from(int(v)?).map_err(|_| BackendError::Reply)
}

/// The branch script's `peek`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Peeked {
    Waiting(usize),
    Offer { expires_ms: u64 },
    Gone,
}

pub(super) fn peeked(v: &Value) -> Reply<Peeked> {
    match items(v)? {
        [tag, n] if is_text(tag, "waiting") => Ok(Peeked::Waiting(usize_of(n)?)),
        [tag, slot, expires] if is_text(tag, "offer") => {
            u32_of(slot)?;
            Ok(Peeked::Offer {
                expires_ms: u64_of(expires)?,
            })
        }
        [tag] if is_text(tag, "gone") => Ok(Peeked::Gone),
        _ => Err(BackendError::Reply),
    }
}

/// The branch script's `claim`.
pub(super) enum Claimed {
    Held(Hold),
    Booked,
    Gone,
}

pub(super) fn claimed(v: &Value, branch: BranchId, who: ApplicantId) -> Reply<Claimed> {
    match items(v)? {
        [tag, t, slot, expires] if is_text(tag, "held") => {
            Ok(Claimed::Held(held(t, slot, expires, branch, who)?))
        }
        [tag] if is_text(tag, "booked") => Ok(Claimed::Booked),
        [tag] if is_text(tag, "gone") => Ok(Claimed::Gone),
        _ => Err(BackendError::Reply),
    }
}

/// The applicant script's `swap`: 1 swapped (or before), 0 the stored request is not this
/// one waiting, -1 its count is gone.
pub(super) enum Swapped {
    Done,
    Changed,
    CountGone,
}

pub(super) fn swapped(v: &Value) -> Reply<Swapped> {
    match int(v)? {
        1 => Ok(Swapped::Done),
        0 => Ok(Swapped::Changed),
        -1 => Ok(Swapped::CountGone),
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
    fn a_stored_request_reads_back_in_each_state() {
        let request = Request {
            token: HoldToken::from_u128(7 << 96 | 5),
            number: 3,
            first: 2,
            last: 9,
            branches: vec![BranchId(7), BranchId(1)],
        };
        let w = format!("w {} {}", request.token, request.text());
        assert_eq!(
            stored(&bulk(&w)),
            Ok(Some(Stored::Waiting(request.clone())))
        );
        let hold = HoldToken::from_u128(1 << 96 | 4);
        let h = format!("h {hold} {} {}", request.token, request.text());
        let want = Stored::Given {
            hold,
            request,
            left: true,
        };
        assert_eq!(stored(&bulk(&h)), Ok(Some(want)));
        assert_eq!(stored(&bulk("")), Ok(None));
    }

    #[test]
    fn a_stored_request_of_another_shape_is_a_reply_error() {
        for bad in [
            "w",
            "w 1 2 3 4",
            "x 1 1 2 3 4 5",
            "w 1 2 9 3 4",
            "g 1 2 3 4 5",
            "w 1 2 3 4 x",
        ] {
            assert_eq!(stored(&bulk(bad)), Err(BackendError::Reply), "{bad}");
        }
        assert_eq!(stored(&Value::Int(3)), Err(BackendError::Reply));
    }
}
