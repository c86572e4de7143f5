//! `Idempotency-Key` on `POST /v1/holds`: a retry with the same key returns the same hold,
//! whatever happened in between (the first answer lost on the way, a confirmation meanwhile).
//!
//! Only successes are remembered: an error changed nothing, so a retry after one runs again.
//! Keys are remembered for the book's hold time (a hold outlives no retry of its own making),
//! at most [`MAX_KEYS`] at once (the oldest forgotten first); per gate process (on Redis, a
//! retry that reaches another node is answered by the book's own rule: a reservation by an
//! applicant who already holds that slot returns that same hold).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use surgegate::Hold;

/// The most keys remembered at once.
pub const MAX_KEYS: usize = 100_000;
/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// What a remembered key says about a new request with it.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// Not remembered: run the request.
    New,
    /// The same request: its hold.
    Same(Hold),
    /// Another request under the same key.
    Conflict,
}

#[derive(Default)]
struct Inner {
    by_key: HashMap<String, (String, Hold, Instant)>,
    order: VecDeque<(Instant, String)>,
}

/// The remembered keys.
pub struct Keys {
    ttl: Duration,
    inner: Mutex<Inner>,
}

impl Keys {
    /// Keys remembered for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Keys {
            ttl,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Whether `key` is usable: 1 to [`MAX_KEY_LEN`] visible ASCII characters.
    pub fn valid(key: &str) -> bool {
        (1..=MAX_KEY_LEN).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
    }

    /// What `key` says about the request `fingerprint`.
    pub fn check(&self, key: &str, fingerprint: &str) -> Seen {
        let mut inner = self.inner.lock();
        Self::expire(&mut inner, self.ttl);
        match inner.by_key.get(key) {
            None => Seen::New,
            Some((f, hold, _)) if f == fingerprint => Seen::Same(*hold),
            Some(_) => Seen::Conflict,
        }
    }

    /// Remembers the hold `key` gave.
    pub fn remember(&self, key: &str, fingerprint: &str, hold: Hold) {
        let mut inner = self.inner.lock();
        let now = Instant::now();
        Self::expire(&mut inner, self.ttl);
        while inner.by_key.len() >= MAX_KEYS {
            let Some((_, oldest)) = inner.order.pop_front() else {
                break;
            };
            inner.by_key.remove(&oldest);
        }
        if inner
            .by_key
            .insert(key.to_owned(), (fingerprint.to_owned(), hold, now))
            .is_none()
        {
            inner.order.push_back((now, key.to_owned()));
        }
    }

    fn expire(inner: &mut Inner, ttl: Duration) {
        while let Some((at, _)) = inner.order.front() {
            if at.elapsed() < ttl {
                break;
            }
            if let Some((_, key)) = inner.order.pop_front() {
                inner.by_key.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use surgegate::{ApplicantId, BranchId, HoldToken};

    fn hold(n: u128) -> Hold {
        let token: HoldToken = format!("{n:032x}").parse().unwrap();
        Hold {
            token,
            branch: BranchId(1),
            slot: 2,
            applicant: ApplicantId(3),
            expires_at: Duration::from_secs(9),
        }
    }

    #[test]
    fn a_key_returns_its_hold_and_refuses_another_request() {
        let keys = Keys::new(Duration::from_secs(60));
        assert_eq!(keys.check("k", "a"), Seen::New);
        keys.remember("k", "a", hold(1));
        assert_eq!(keys.check("k", "a"), Seen::Same(hold(1)));
        assert_eq!(keys.check("k", "b"), Seen::Conflict);
        assert_eq!(keys.check("other", "a"), Seen::New);
        let gone = Keys::new(Duration::ZERO);
        gone.remember("k", "a", hold(1));
        assert_eq!(gone.check("k", "a"), Seen::New, "forgotten after the ttl");
    }

    #[test]
    fn keys_are_checked_for_shape() {
        assert!(Keys::valid("retry-7f3a"));
        assert!(!Keys::valid(""));
        assert!(!Keys::valid("has space"));
        assert!(!Keys::valid(&"k".repeat(MAX_KEY_LEN + 1)));
        assert!(!Keys::valid("é"));
    }
}
