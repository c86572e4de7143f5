//! Registrations on Redis (`--redis`), shared by every portal node: one applicant counter for
//! all of them (ids made of the server's second and the count, so that a failover that loses
//! the last counts never gives a lost id again), and one table of national ids, so an id is
//! handed out once and a national id registers once, whichever node serves the form.
//!
//! Each registration is one Lua script (atomic on the server) over three keys in one hash slot
//! (`{<namespace>:registrations}`), so it runs the same on a single server and on a cluster.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::{Script, Value};
use surgegate::{ApplicantId, VisitorId};

use super::registry::{
    MAX_REGISTRATIONS, NewRegistration, RegisterError, Registration, Registrations, StoreFuture,
};

/// The longest a call to the store may take before it is an error.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Registers a visitor: its existing record, or `taken`, or `full`, or a new record under a
/// new applicant id. KEYS: visitors (hash), national ids (hash), the counter. ARGV: visitor,
/// national id, name, phone, the most registrations.
///
/// The id is the server's time in seconds times 2^22 plus the counter (mod 2^22, more than
/// [`MAX_REGISTRATIONS`]): a failover that loses the counter's last increments (and the
/// registrations made with them) gives the next registrations the same counts, but in a later
/// second, so never an id that a lost registration had (whose holds and bookings may live on,
/// on the book's own shards). Ids stay below 2^53, exact in Lua's numbers.
const REGISTER: &str = r#"
local found = redis.call('HGET', KEYS[1], ARGV[1])
if found then return {'found', found} end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return {'taken', ''} end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then return {'full', ''} end
local n = redis.call('INCR', KEYS[3])
local now = redis.call('TIME')
local id = string.format('%.0f', tonumber(now[1]) * 4194304 + (n % 4194304))
local record = id .. '\n' .. ARGV[3] .. '\n' .. ARGV[2] .. '\n' .. ARGV[4]
redis.call('HSET', KEYS[2], ARGV[2], id)
redis.call('HSET', KEYS[1], ARGV[1], record)
return {'new', record}
"#;

#[derive(Clone)]
enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// Registrations on a Redis server or cluster.
pub struct RedisRegistrations {
    conn: Conn,
    keys: [String; 3],
    script: Script,
}

impl RedisRegistrations {
    /// Connects to the server at `urls[0]`, or to the cluster the URLs seed.
    pub async fn connect(urls: &[&str], namespace: &str) -> Result<Self, String> {
        let first = *urls.first().ok_or("--redis: give at least one URL")?;
        let fail = |e: redis::RedisError| format!("registrations on {first}: {e}");
        let client = redis::Client::open(first).map_err(fail)?;
        let mut single = within(client.get_multiplexed_async_connection())
            .await?
            .map_err(fail)?;
        let info: String = within(redis::cmd("INFO").arg("cluster").query_async(&mut single))
            .await?
            .map_err(fail)?;
        let conn = if info.contains("cluster_enabled:1") {
            let cluster = redis::cluster::ClusterClient::new(urls.to_vec()).map_err(fail)?;
            Conn::Cluster(
                within(cluster.get_async_connection())
                    .await?
                    .map_err(fail)?,
            )
        } else {
            Conn::Single(single)
        };
        let tag = format!("{{{namespace}:registrations}}");
        Ok(Self {
            conn,
            keys: [
                format!("{tag}:visitors"),
                format!("{tag}:national_ids"),
                format!("{tag}:next_applicant"),
            ],
            script: Script::new(REGISTER),
        })
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, String> {
        let call = async {
            match self.conn.clone() {
                Conn::Single(mut c) => cmd.query_async(&mut c).await,
                Conn::Cluster(mut c) => cmd.query_async(&mut c).await,
            }
        };
        within(call).await?.map_err(|e| e.to_string())
    }
}

async fn within<T>(call: impl Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(TIMEOUT, call)
        .await
        .map_err(|_| format!("the registrations store did not answer within {TIMEOUT:?}"))
}

/// A record as the script keeps it: applicant, name, national id, phone, one a line (names,
/// national ids and phones are validated to hold no line break).
fn parse(record: &str) -> Result<Registration, String> {
    let mut lines = record.split('\n');
    let mut next = || lines.next().map(str::to_owned);
    let bad = || format!("a damaged registration record: {record:?}");
    let applicant = next().and_then(|a| a.parse().ok()).ok_or_else(bad)?;
    Ok(Registration {
        applicant: ApplicantId(applicant),
        name: next().ok_or_else(bad)?,
        national_id: next().ok_or_else(bad)?,
        phone: next().ok_or_else(bad)?,
    })
}

impl Registrations for RedisRegistrations {
    fn get(&self, visitor: VisitorId) -> StoreFuture<'_, Result<Option<Registration>, String>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("HGET");
            cmd.arg(&self.keys[0]).arg(visitor.0);
            let found: Option<String> = self.query(&cmd).await?;
            found.as_deref().map(parse).transpose()
        })
    }

    fn register(
        &self,
        visitor: VisitorId,
        new: NewRegistration,
    ) -> StoreFuture<'_, Result<Registration, RegisterError>> {
        Box::pin(async move {
            let mut invocation = self.script.prepare_invoke();
            for key in &self.keys {
                invocation.key(key);
            }
            invocation
                .arg(visitor.0)
                .arg(&new.national_id)
                .arg(&new.name)
                .arg(&new.phone)
                .arg(MAX_REGISTRATIONS);
            let call = async {
                match self.conn.clone() {
                    Conn::Single(mut c) => invocation.invoke_async::<Value>(&mut c).await,
                    Conn::Cluster(mut c) => invocation.invoke_async::<Value>(&mut c).await,
                }
            };
            let store = RegisterError::Store;
            let reply = within(call)
                .await
                .map_err(store)?
                .map_err(|e| store(e.to_string()))?;
            let (what, record): (String, String) =
                redis::from_redis_value(reply).map_err(|e| store(e.to_string()))?;
            match what.as_str() {
                "found" | "new" => parse(&record).map_err(store),
                "taken" => Err(RegisterError::NationalIdTaken),
                "full" => Err(RegisterError::Full),
                other => Err(store(format!("an unknown reply {other:?}"))),
            }
        })
    }

    fn count(&self) -> StoreFuture<'_, Result<u64, String>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("HLEN");
            cmd.arg(&self.keys[0]);
            self.query(&cmd).await
        })
    }
}
