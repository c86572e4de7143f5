//! `Idempotency-Key` on `POST /v1/holds`: a retry with the same key returns the same hold,
//! whatever happened in between (the first answer lost on the way, a confirmation meanwhile).
//!
//! Only successes are remembered: an error changed nothing, so a retry after one runs again.
//! Keys are remembered for the book's hold time (a hold outlives no retry of its own making),
//! at most [`MAX_KEYS`] at once (the oldest forgotten first); per gate process (on Redis, a
//! retry that reaches another node is answered by the book's own rule: a reservation by an
//! applicant who already holds that slot returns that same hold).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use parking_lot::Mutex;
use surgegate::{Clock, Hold, SystemClock};

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

/// The remembered keys, each with its request's fingerprint, its hold and when it was
/// remembered (an instant of the clock); `order` lists the keys oldest first.
#[derive(Default)]
struct Inner {
    by_key: HashMap<String, (String, Hold, Duration)>,
    order: VecDeque<(Duration, String)>,
}

/// The remembered keys, on the clock `C`.
pub struct Keys<C: Clock = SystemClock> {
    ttl: Duration,
    clock: C,
    inner: Mutex<Inner>,
}

impl Keys {
    /// Keys remembered for `ttl` on the system clock.
    pub fn new(ttl: Duration) -> Self {
        Keys::with_clock(ttl, SystemClock::new())
    }

    /// Whether `key` is usable: 1 to [`MAX_KEY_LEN`] visible ASCII characters.
    pub fn valid(key: &str) -> bool {
        (1..=MAX_KEY_LEN).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
    }
}

impl<C: Clock> Keys<C> {
    /// Keys remembered for `ttl` on `clock`.
    pub fn with_clock(ttl: Duration, clock: C) -> Self {
        Keys {
            ttl,
            clock,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// What `key` says about the request `fingerprint`.
    pub fn check(&self, key: &str, fingerprint: &str) -> Seen {
        let mut inner = self.inner.lock();
        self.expire(&mut inner);
        match inner.by_key.get(key) {
            None => Seen::New,
            Some((f, hold, _)) if f == fingerprint => Seen::Same(*hold),
            Some(_) => Seen::Conflict,
        }
    }

    /// Remembers the hold `key` gave.
    pub fn remember(&self, key: &str, fingerprint: &str, hold: Hold) {
        let mut inner = self.inner.lock();
        let now = self.clock.now();
        self.expire(&mut inner);
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

    /// Forgets the keys remembered `ttl` ago or longer.
    fn expire(&self, inner: &mut Inner) {
        let now = self.clock.now();
        while let Some(&(at, _)) = inner.order.front() {
            if now.saturating_sub(at) < self.ttl {
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
    use std::time::Duration;

    use surgegate::{ApplicantId, BranchId, Hold, HoldToken, ManualClock};

    use super::{Keys, MAX_KEY_LEN, MAX_KEYS, Seen};

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
    }

    #[test]
    fn a_key_is_remembered_for_the_ttl_and_no_longer() {
        let clock = ManualClock::new();
        let keys = Keys::with_clock(Duration::from_secs(60), clock.clone());
        keys.remember("k", "a", hold(1));
        clock.advance(Duration::from_secs(59));
        keys.remember("later", "a", hold(2));
        assert_eq!(keys.check("k", "a"), Seen::Same(hold(1)), "within the ttl");
        clock.advance(Duration::from_secs(1));
        assert_eq!(keys.check("k", "a"), Seen::New, "forgotten at the ttl");
        assert_eq!(keys.check("later", "a"), Seen::Same(hold(2)), "still young");
        clock.advance(Duration::from_secs(59));
        assert_eq!(keys.check("later", "a"), Seen::New);
    }

    #[test]
    fn past_the_bound_the_oldest_key_is_forgotten_first() {
        let clock = ManualClock::new();
        let keys = Keys::with_clock(Duration::from_secs(3600), clock.clone());
        for n in 0..MAX_KEYS {
            keys.remember(&format!("k{n}"), "a", hold(n as u128));
        }
        keys.remember("newest", "a", hold(u128::MAX));
        assert_eq!(keys.check("k0", "a"), Seen::New, "the oldest went");
        assert_eq!(keys.check("k1", "a"), Seen::Same(hold(1)));
        assert_eq!(keys.check("newest", "a"), Seen::Same(hold(u128::MAX)));
        assert_eq!(keys.inner.lock().by_key.len(), MAX_KEYS);
    }

    #[test]
    fn keys_are_checked_for_shape() {
        assert!(Keys::valid("retry-7f3a"));
        assert!(Keys::valid(&"k".repeat(MAX_KEY_LEN)));
        assert!(!Keys::valid(""));
        assert!(!Keys::valid("has space"));
        assert!(!Keys::valid(&"k".repeat(MAX_KEY_LEN + 1)));
        assert!(!Keys::valid("é"));
        assert!(!Keys::valid("new\nline"));
    }
}
