//! One connection to a Redis server or a Redis Cluster: scripts with a timeout, `WAIT` on the
//! shard that ran them, and every failure mapped to a [`BackendError`]. A standalone server is
//! reconnected after it restarts; a script missing from a node's cache is loaded there and run
//! again; on a cluster, redirections (`MOVED`, `ASK`) and `TRYAGAIN` are retried by the cluster
//! client within the call's timeout.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, RedisError, ScriptInvocation, Value};

use crate::backend::BackendError;
use crate::book::BookConfigError;
use crate::room::RoomConfigError;

/// Why a shared primitive could not connect.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// No URL was given.
    #[error("give at least one redis:// URL")]
    NoUrl,
    /// A URL could not be parsed.
    #[error("{0:?} is not a Redis URL like redis://127.0.0.1:6379")]
    BadUrl(String),
    /// No server answered.
    #[error("no Redis server answered at {0}: check that it runs and the address")]
    Unreachable(String),
    /// A primary does not fsync every write (`appendfsync always`), so an acknowledged booking
    /// could be lost in a crash.
    #[error(
        "the server at {0} does not run with appendonly yes and appendfsync always: configure it so, or allow it explicitly with allow_unsynced()"
    )]
    NotDurable(String),
    /// A primary may evict keys under memory pressure (`maxmemory-policy` is not
    /// `noeviction`): evicting a branch's counts or holds would overbook, evicting the line would
    /// lose visitors' places.
    #[error(
        "the server at {0} may evict keys (maxmemory-policy is not noeviction): set maxmemory-policy noeviction, or allow it explicitly with allow_eviction()"
    )]
    Evicts(String),
    /// The namespace is empty or holds characters that would break the key layout.
    #[error("namespace {0:?}: use 1 to 64 characters of [A-Za-z0-9_.-]")]
    Namespace(String),
    /// A setting of the room is out of its range (the in-process room's rules).
    #[error("{0}")]
    Room(RoomConfigError),
    /// A setting of the book is out of its range (the in-process book's rules).
    #[error("{0}")]
    Book(BookConfigError),
    /// The store failed while the room's settings were written or read.
    #[error("the room's settings could not be written or read: {0}")]
    Backend(BackendError),
}

#[derive(Clone)]
pub(crate) enum Conn {
    /// A standalone server, reconnected after a restart (the call that finds the connection
    /// lost answers `BackendError::Connection`; a retry runs on the new one).
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

pub(crate) fn backend_error(e: &RedisError) -> BackendError {
    if e.is_timeout() {
        BackendError::Timeout
    } else if e.is_connection_dropped() || e.is_connection_refusal() || e.is_io_error() {
        BackendError::Connection
    } else if e.code().is_some() {
        BackendError::Script
    } else {
        BackendError::Reply
    }
}

/// The value of `call`, or the error it or the `timeout` gives.
async fn within(
    timeout: Duration,
    call: impl Future<Output = Result<Value, RedisError>>,
) -> Result<Value, BackendError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(backend_error(&e)),
        Err(_) => Err(BackendError::Timeout),
    }
}

/// The cluster hash slot of `key` (CRC16/XMODEM of its hash tag, modulo 16 384).
pub(crate) fn key_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = key
        .find('{')
        .and_then(|open| key[open + 1..].find('}').map(|len| (open + 1, len)))
        .filter(|&(_, len)| len > 0)
        .map_or(bytes, |(start, len)| &bytes[start..start + len]);
    let mut crc: u16 = 0;
    for &b in tagged {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16_384
}

impl Conn {
    /// Connects to the server at `urls[0]`, or to the cluster they seed when that server runs in
    /// cluster mode.
    pub(crate) async fn connect(urls: &[&str], timeout: Duration) -> Result<Conn, ConnectError> {
        let first = *urls.first().ok_or(ConnectError::NoUrl)?;
        let client = redis::Client::open(first).map_err(|_| ConnectError::BadUrl(first.into()))?;
        let unreachable = || ConnectError::Unreachable(first.into());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_millis(500));
        let mut single =
            tokio::time::timeout(timeout, ConnectionManager::new_with_config(client, config))
                .await
                .map_err(|_| unreachable())?
                .map_err(|_| unreachable())?;
        let info: String = tokio::time::timeout(
            timeout,
            redis::cmd("INFO").arg("cluster").query_async(&mut single),
        )
        .await
        .map_err(|_| unreachable())?
        .map_err(|_| unreachable())?;
        if !info.contains("cluster_enabled:1") {
            return Ok(Conn::Single(single));
        }
        let cluster = redis::cluster::ClusterClient::builder(urls.iter().copied())
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .build()
            .map_err(|_| ConnectError::BadUrl(urls.join(",")))?;
        let conn = tokio::time::timeout(timeout, cluster.get_async_connection())
            .await
            .map_err(|_| unreachable())?
            .map_err(|_| unreachable())?;
        Ok(Conn::Cluster(conn))
    }

    /// Runs one script invocation (its keys on one hash slot), within `timeout`.
    pub(crate) async fn run(
        &self,
        invocation: &ScriptInvocation<'_>,
        timeout: Duration,
    ) -> Result<Value, BackendError> {
        let call = async {
            match self.clone() {
                Conn::Single(mut c) => invocation.invoke_async::<Value>(&mut c).await,
                Conn::Cluster(mut c) => invocation.invoke_async::<Value>(&mut c).await,
            }
        };
        within(timeout, call).await
    }

    /// Runs one command on the primary that owns `key` (every primary for `None`), within
    /// `timeout`.
    pub(crate) async fn command(
        &self,
        cmd: Cmd,
        key: Option<&str>,
        timeout: Duration,
    ) -> Result<Value, BackendError> {
        let call = async {
            match self.clone() {
                Conn::Single(mut c) => cmd.query_async::<Value>(&mut c).await,
                Conn::Cluster(mut c) => {
                    let routing = match key {
                        Some(key) => RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                            Route::new(key_slot(key), SlotAddr::Master),
                        )),
                        None => RoutingInfo::MultiNode((
                            redis::cluster_routing::MultipleNodeRoutingInfo::AllMasters,
                            None,
                        )),
                    };
                    c.route_command(cmd, routing).await
                }
            }
        };
        within(timeout, call).await
    }

    /// `WAIT replicas timeout` on the primary that owns `key`: `Ok` once that many replicas
    /// acknowledged every write made so far on that connection's shard.
    pub(crate) async fn wait(
        &self,
        key: &str,
        replicas: u32,
        timeout: Duration,
    ) -> Result<(), BackendError> {
        if replicas == 0 {
            return Ok(());
        }
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(replicas).arg(timeout.as_millis() as u64);
        match self
            .command(cmd, Some(key), timeout + Duration::from_secs(1))
            .await?
        {
            Value::Int(n) if n >= i64::from(replicas) => Ok(()),
            Value::Int(_) => Err(BackendError::NotReplicated),
            _ => Err(BackendError::Reply),
        }
    }

    /// `Ok` if every primary fsyncs every write, or `allow_unsynced`; else
    /// [`ConnectError::NotDurable`] naming `urls`.
    pub(crate) async fn check_synced(
        &self,
        urls: &[&str],
        allow_unsynced: bool,
        timeout: Duration,
    ) -> Result<(), ConnectError> {
        if allow_unsynced || self.fsyncs_every_write(timeout).await.unwrap_or(false) {
            Ok(())
        } else {
            Err(ConnectError::NotDurable(urls.join(",")))
        }
    }

    /// `Ok` if no primary evicts keys (`maxmemory-policy noeviction`), or `allow_eviction`;
    /// else [`ConnectError::Evicts`] naming `urls`.
    pub(crate) async fn check_no_eviction(
        &self,
        urls: &[&str],
        allow_eviction: bool,
        timeout: Duration,
    ) -> Result<(), ConnectError> {
        if allow_eviction
            || self
                .every_primary_has("maxmemory-policy", "noeviction", timeout)
                .await
        {
            Ok(())
        } else {
            Err(ConnectError::Evicts(urls.join(",")))
        }
    }

    /// Whether every primary answers `wanted` for `CONFIG GET setting` (`false` on any error).
    async fn every_primary_has(&self, setting: &str, wanted: &str, timeout: Duration) -> bool {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg(setting);
        match self.command(cmd, None, timeout).await {
            Ok(reply) => all_settings_are(&reply, wanted),
            Err(_) => false,
        }
    }

    /// Whether every primary runs with `appendonly yes` and `appendfsync always`.
    pub(crate) async fn fsyncs_every_write(&self, timeout: Duration) -> Result<bool, BackendError> {
        for (setting, wanted) in [("appendonly", "yes"), ("appendfsync", "always")] {
            let mut cmd = redis::cmd("CONFIG");
            cmd.arg("GET").arg(setting);
            let reply = self.command(cmd, None, timeout).await?;
            if !all_settings_are(&reply, wanted) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Whether every `CONFIG GET` answer in `reply` (one per node, or one) gives `wanted`.
fn all_settings_are(reply: &Value, wanted: &str) -> bool {
    match reply {
        Value::Array(items) if items.len() == 2 && matches!(items[0], Value::BulkString(_)) => {
            matches!(&items[1], Value::BulkString(v) if v == wanted.as_bytes())
        }
        Value::Map(pairs)
            if pairs.iter().all(|(k, _)| matches!(k, Value::BulkString(_))) && pairs.len() == 1 =>
        {
            matches!(&pairs[0].1, Value::BulkString(v) if v == wanted.as_bytes())
        }
        Value::Map(pairs) => {
            !pairs.is_empty() && pairs.iter().all(|(_, v)| all_settings_are(v, wanted))
        }
        Value::Array(items) => {
            !items.is_empty() && items.iter().all(|v| all_settings_are(v, wanted))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::key_slot;

    #[test]
    fn key_slots_follow_the_cluster_spec() {
        // Known values from the Redis Cluster specification and CLUSTER KEYSLOT.
        assert_eq!(key_slot("123456789"), 12_739);
        assert_eq!(key_slot("foo"), 12_182);
        assert_eq!(
            key_slot("{user1000}.following"),
            key_slot("{user1000}.followers")
        );
        // An empty tag is no tag: the whole key is hashed.
        assert_ne!(key_slot("{}foo"), key_slot("foo"));
        assert_eq!(key_slot("{foo}"), key_slot("foo"));
    }
}
