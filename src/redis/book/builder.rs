//! `RedisSlotBookBuilder`: the shared book's settings, checked by the in-process book's own
//! rules, and `connect`.

use std::sync::Arc;
use std::time::Duration;

use super::{Inner, RedisSlotBook, Scripts};
use crate::book::{check_hold_ttl, check_max_active_per_applicant, check_max_standby_requests};
use crate::redis::check_namespace;
use crate::redis::conn::{Conn, ConnectError};
use crate::redis::scripts::BranchSettings;

/// Settings of a [`RedisSlotBook`]; from [`RedisSlotBook::builder`]. `hold_ttl` and
/// `max_active_per_applicant` accept exactly what [`SlotBookBuilder`](crate::SlotBookBuilder)
/// accepts.
#[derive(Clone, Debug)]
#[must_use]
pub struct RedisSlotBookBuilder {
    hold_ttl: Duration,
    max_active_per_applicant: u32,
    max_standby_requests: u32,
    namespace: String,
    timeout: Duration,
    wait_replicas: Option<u32>,
    wait_timeout: Duration,
    allow_unsynced: bool,
    allow_eviction: bool,
}

impl RedisSlotBook {
    /// A builder: hold ttl 10 min, one live hold or booking per applicant (the in-process
    /// book's defaults), namespace `surgegate`, 2 s timeout per call.
    pub fn builder() -> RedisSlotBookBuilder {
        RedisSlotBookBuilder {
            hold_ttl: Duration::from_secs(600),
            max_active_per_applicant: 1,
            max_standby_requests: 1 << 20,
            namespace: "surgegate".into(),
            timeout: Duration::from_secs(2),
            wait_replicas: None,
            wait_timeout: Duration::from_secs(1),
            allow_unsynced: false,
            allow_eviction: false,
        }
    }
}

impl RedisSlotBookBuilder {
    /// How long a hold lasts unless confirmed: 1 ms to 24 h, as in-process. The store keeps
    /// whole milliseconds (a fraction is dropped).
    pub fn hold_ttl(mut self, ttl: Duration) -> Self {
        self.hold_ttl = ttl;
        self
    }

    /// The most live holds plus bookings one applicant may have at once, across branches
    /// (1 to 1024, as in-process).
    pub fn max_active_per_applicant(mut self, n: u32) -> Self {
        self.max_active_per_applicant = n;
        self
    }

    /// The most standby requests waiting at once in one branch's line
    /// ([`RedisSlotBook::standby`]); beyond it `standby` is
    /// [`StandbyError::LineFull`](crate::StandbyError::LineFull). Default 2^20; 1 to 2^24, as
    /// in-process, where the bound is on the whole line: each branch keeps its own line here.
    pub fn max_standby_requests(mut self, n: u32) -> Self {
        self.max_standby_requests = n;
        self
    }

    /// The prefix of every key, so that several books share one store.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The longest a call waits for the store before answering `BackendError::Timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Confirmations, cancellations and capacity changes return `Ok` only once `replicas`
    /// replicas acknowledged them (`WAIT`), within `timeout`. Default: 1 on a cluster, 0 on a
    /// single server.
    pub fn wait_for_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.wait_replicas = Some(replicas);
        self.wait_timeout = timeout;
        self
    }

    /// Accepts servers that do not fsync every write (for development: an acknowledged booking
    /// can then be lost when a server crashes).
    pub fn allow_unsynced(mut self) -> Self {
        self.allow_unsynced = true;
        self
    }

    /// Accepts servers whose `maxmemory-policy` is not `noeviction` (for development only:
    /// an evicted hold, booking or count can then overbook a slot or let an applicant past its limit).
    pub fn allow_eviction(mut self) -> Self {
        self.allow_eviction = true;
        self
    }

    /// Checks the settings, connects (a cluster when the first server runs in cluster mode)
    /// and checks that every primary fsyncs every write.
    ///
    /// # Errors
    /// [`ConnectError`]: a setting out of range ([`ConnectError::Book`]), a bad namespace or
    /// URL, no server, or a server that does not fsync every write (unless
    /// [`allow_unsynced`](Self::allow_unsynced)), a server that may evict keys
    /// (unless [`allow_eviction`](Self::allow_eviction)).
    pub async fn connect(self, urls: &[&str]) -> Result<RedisSlotBook, ConnectError> {
        check_hold_ttl(self.hold_ttl).map_err(ConnectError::Book)?;
        check_max_active_per_applicant(self.max_active_per_applicant)
            .map_err(ConnectError::Book)?;
        check_max_standby_requests(self.max_standby_requests).map_err(ConnectError::Book)?;
        check_namespace(&self.namespace)?;
        let conn = Conn::connect(urls, self.timeout).await?;
        conn.check_synced(urls, self.allow_unsynced, self.timeout)
            .await?;
        conn.check_no_eviction(urls, self.allow_eviction, self.timeout)
            .await?;
        let hold_ttl_ms = u64::try_from(self.hold_ttl.as_millis()).unwrap_or(u64::MAX);
        let settings = BranchSettings {
            hold_ttl_ms,
            max_line: self.max_standby_requests,
        };
        let wait_replicas = self
            .wait_replicas
            .unwrap_or(u32::from(matches!(conn, Conn::Cluster(_))));
        Ok(RedisSlotBook {
            inner: Arc::new(Inner {
                conn,
                scripts: Scripts::load(settings),
                namespace: self.namespace,
                hold_ttl_ms,
                limit: self.max_active_per_applicant,
                max_line: self.max_standby_requests,
                timeout: self.timeout,
                wait_replicas,
                wait_timeout: self.wait_timeout,
            }),
        })
    }
}
