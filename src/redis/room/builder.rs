//! `RedisWaitingRoomBuilder`: the shared room's settings, checked by the in-process room's own
//! rules, and `connect`, which writes them for the first node under a namespace.

use std::sync::Arc;
use std::time::Duration;

use super::reply;
use super::{Inner, RedisWaitingRoom};
use crate::pass::Keyring;
use crate::redis::check_namespace;
use crate::redis::conn::{Conn, ConnectError};
use crate::redis::scripts::{self, ROOM_KEYS};
use crate::room::RoomSettings;

/// Settings of a [`RedisWaitingRoom`]; from [`RedisWaitingRoom::builder`]. Every room setting
/// accepts exactly what [`WaitingRoomBuilder`](crate::WaitingRoomBuilder) accepts. The first
/// node to connect under a namespace writes them; later nodes run with the ones in force.
#[derive(Clone, Debug)]
#[must_use]
pub struct RedisWaitingRoomBuilder {
    settings: RoomSettings,
    namespace: String,
    timeout: Duration,
    keys: Option<Keyring>,
    place_max_age: Duration,
    allow_unsynced: bool,
    allow_eviction: bool,
}

/// The default [`RedisWaitingRoomBuilder::place_max_age`]: one hour.
pub const DEFAULT_PLACE_MAX_AGE: Duration = Duration::from_secs(3600);

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl RedisWaitingRoom {
    /// A builder with the in-process room's defaults: 100/s, burst 100, unlimited active,
    /// 1 000 000 waiting, 60 s check-in timeout, 15 min passes, no claims; namespace
    /// `surgegate`, 2 s timeout per call.
    pub fn builder() -> RedisWaitingRoomBuilder {
        RedisWaitingRoomBuilder {
            settings: RoomSettings::default(),
            namespace: "surgegate".into(),
            timeout: Duration::from_secs(2),
            keys: None,
            place_max_age: DEFAULT_PLACE_MAX_AGE,
            allow_unsynced: false,
            allow_eviction: false,
        }
    }
}

impl RedisWaitingRoomBuilder {
    /// Sustained admissions per second (1 to 10 000 000).
    pub fn rate_per_second(mut self, rate: u32) -> Self {
        self.settings.rate_per_second = rate;
        self
    }

    /// Admissions allowed at once after a quiet spell (1 to 10 000 000).
    pub fn burst(mut self, burst: u32) -> Self {
        self.settings.burst = burst;
        self
    }

    /// Live passes at once (at least 1; `u32::MAX`, the default: unlimited).
    pub fn max_active(mut self, max_active: u32) -> Self {
        self.settings.max_active = max_active;
        self
    }

    /// The line's bound (1 to 2^30).
    pub fn max_waiting(mut self, max_waiting: u32) -> Self {
        self.settings.max_waiting = max_waiting;
        self
    }

    /// A waiting visitor silent this long leaves the line (1 ms to 24 h).
    pub fn checkin_timeout(mut self, timeout: Duration) -> Self {
        self.settings.checkin_timeout = timeout;
        self
    }

    /// A pass lapses this long after admission (1 ms to 7 days).
    pub fn pass_ttl(mut self, ttl: Duration) -> Self {
        self.settings.pass_ttl = ttl;
        self
    }

    /// A pass must be claimed within this time of its admission, or it lapses (1 ms to
    /// `pass_ttl`).
    pub fn claim_timeout(mut self, timeout: Duration) -> Self {
        self.settings.claim_timeout = Some(timeout);
        self
    }

    /// The prefix of every key, so that several rooms share one store.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The longest a call waits for the store before answering `BackendError::Timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Signs place texts ([`RedisWaitingRoom::join_with_place`]) with these keys (every node
    /// holds the same), so that a visitor whose entry the store lost in a failover takes the same
    /// place again ([`RedisWaitingRoom::rejoin`]).
    pub fn keys(mut self, keys: Keyring) -> Self {
        self.keys = Some(keys);
        self
    }

    /// How long a place text can take its place back ([`RedisWaitingRoom::rejoin`]); an
    /// older one is a plain join. Every join of a waiting visitor gives a new text, so this
    /// needs to cover the longest a visitor may be cut off by a failover, not their wait.
    /// Default [`DEFAULT_PLACE_MAX_AGE`]; at least one second.
    pub fn place_max_age(mut self, max_age: Duration) -> Self {
        self.place_max_age = max_age.max(Duration::from_secs(1));
        self
    }

    /// Accepts servers that do not fsync every write (for development: a crash of such a
    /// server can lose the line's last moments).
    pub fn allow_unsynced(mut self) -> Self {
        self.allow_unsynced = true;
        self
    }

    /// Accepts servers whose `maxmemory-policy` is not `noeviction` (for development only:
    /// an evicted ticket or pass then loses a visitor's place, or lets more than `max_active` in).
    pub fn allow_eviction(mut self) -> Self {
        self.allow_eviction = true;
        self
    }

    /// Checks the settings, connects, checks that every primary fsyncs every write, and writes
    /// the settings if this namespace has none yet.
    ///
    /// # Errors
    /// [`ConnectError`]: a setting out of range ([`ConnectError::Room`]), a bad URL or
    /// namespace, no server, a server that does not fsync every write (unless
    /// [`allow_unsynced`](Self::allow_unsynced)), a server that may evict keys
    /// (unless [`allow_eviction`](Self::allow_eviction)), or the store failing to write or read the
    /// settings ([`ConnectError::Backend`]).
    pub async fn connect(self, urls: &[&str]) -> Result<RedisWaitingRoom, ConnectError> {
        self.settings.check().map_err(ConnectError::Room)?;
        check_namespace(&self.namespace)?;
        let conn = Conn::connect(urls, self.timeout).await?;
        conn.check_synced(urls, self.allow_unsynced, self.timeout)
            .await?;
        conn.check_no_eviction(urls, self.allow_eviction, self.timeout)
            .await?;
        let tag = format!("{{{}:room}}", self.namespace);
        let keys = ROOM_KEYS.map(|k| format!("{tag}:{k}"));
        let setup = scripts::room_setup();
        let mut invocation = setup.prepare_invoke();
        for key in &keys {
            invocation.key(key);
        }
        let s = &self.settings;
        for arg in [
            u64::from(s.rate_per_second),
            u64::from(s.burst),
            u64::from(s.max_active),
            u64::from(s.max_waiting),
            micros(s.checkin_timeout),
            micros(s.pass_ttl),
            s.claim_timeout.map_or(0, micros),
        ] {
            invocation.arg(arg);
        }
        let in_force = conn
            .run(&invocation, self.timeout)
            .await
            .map_err(ConnectError::Backend)?;
        let checkin_timeout = reply::checkin_timeout(&in_force).map_err(ConnectError::Backend)?;
        let signer = self
            .keys
            .map(|k| (k, crc32c::crc32c(self.namespace.as_bytes())));
        Ok(RedisWaitingRoom {
            inner: Arc::new(Inner {
                conn,
                call: scripts::room_call(),
                keys,
                timeout: self.timeout,
                checkin_timeout,
                signer,
                place_max_age: self.place_max_age,
            }),
        })
    }
}
