//! `RedisWaitingRoom`: the waiting room's rules on a Redis server or cluster, one line for every
//! portal node.

use std::sync::Arc;
use std::time::Duration;

use redis::{Script, Value};

use super::conn::{Conn, ConnectError};
use crate::backend::BackendError;
use crate::room::{ClaimError, Entry, JoinError, Pass, PollError, Ticket, TicketToken, VisitorId};

const PRELUDE: &str = include_str!("scripts/room_prelude.lua");

/// Settings of a [`RedisWaitingRoom`]; from [`RedisWaitingRoom::builder`]. The first node to
/// connect under a namespace writes them; later nodes run with the ones in force.
#[derive(Clone, Debug)]
pub struct RedisWaitingRoomBuilder {
    rate_per_second: u32,
    burst: u32,
    max_active: u32,
    max_waiting: u32,
    checkin_timeout: Duration,
    pass_ttl: Duration,
    claim_timeout: Option<Duration>,
    namespace: String,
    timeout: Duration,
    keys: Option<crate::pass::Keyring>,
}

/// The waiting room on Redis: one line shared by every process connected under the same
/// namespace, with the room's rules (FIFO, exact positions, the rate and burst, `max_active`,
/// check-ins, claims, pass lapses) kept by scripts on the room's one shard, on the server's
/// clock (a [`Pass::expires_at`] is a time since the Unix epoch). A ticket's ETA counts the rate
/// alone (not passes that `max_active` waits for). See the [module docs](super).
#[derive(Clone)]
pub struct RedisWaitingRoom {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Conn,
    call: Script,
    keys: [String; 9],
    timeout: Duration,
    checkin_timeout: Duration,
    /// Signs place texts, with the room's number in them (from its namespace).
    signer: Option<(crate::pass::Keyring, u32)>,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl RedisWaitingRoom {
    /// A builder with the in-process room's defaults: 100/s, burst 100, unlimited active,
    /// 1 000 000 waiting, 30 s check-in timeout, 15 min passes, no claims.
    pub fn builder() -> RedisWaitingRoomBuilder {
        RedisWaitingRoomBuilder {
            rate_per_second: 100,
            burst: 100,
            max_active: u32::MAX,
            max_waiting: 1_000_000,
            checkin_timeout: Duration::from_secs(30),
            pass_ttl: Duration::from_secs(900),
            claim_timeout: None,
            namespace: "surgegate".into(),
            timeout: Duration::from_secs(2),
            keys: None,
        }
    }
}

impl RedisWaitingRoomBuilder {
    /// Sustained admissions per second (1 to 10 000 000).
    pub fn rate_per_second(mut self, rate: u32) -> Self {
        self.rate_per_second = rate;
        self
    }

    /// Admissions allowed at once after a quiet spell (1 to 10 000 000).
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// Live passes at once (at least 1).
    pub fn max_active(mut self, max_active: u32) -> Self {
        self.max_active = max_active;
        self
    }

    /// The line's bound (1 to 2^30).
    pub fn max_waiting(mut self, max_waiting: u32) -> Self {
        self.max_waiting = max_waiting;
        self
    }

    /// A waiting visitor silent this long leaves the line (1 ms to 24 h).
    pub fn checkin_timeout(mut self, timeout: Duration) -> Self {
        self.checkin_timeout = timeout;
        self
    }

    /// A pass lapses this long after admission (1 ms to 7 days).
    pub fn pass_ttl(mut self, ttl: Duration) -> Self {
        self.pass_ttl = ttl;
        self
    }

    /// A pass must be claimed within this time of its admission, or it lapses.
    pub fn claim_timeout(mut self, timeout: Duration) -> Self {
        self.claim_timeout = Some(timeout);
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
    pub fn keys(mut self, keys: crate::pass::Keyring) -> Self {
        self.keys = Some(keys);
        self
    }

    fn check(&self) -> Result<(), ConnectError> {
        // The in-process builder holds the rules for every setting: use it to check them.
        let mut room = crate::WaitingRoom::builder()
            .rate_per_second(self.rate_per_second)
            .burst(self.burst)
            .max_active(self.max_active)
            .max_waiting(self.max_waiting)
            .checkin_timeout(self.checkin_timeout)
            .pass_ttl(self.pass_ttl);
        if let Some(claim) = self.claim_timeout {
            room = room.claim_timeout(claim);
        }
        room.try_build()
            .map(drop)
            .map_err(|e| ConnectError::Setting(e.to_string()))
    }

    /// Connects, and writes the settings if this namespace has none yet.
    ///
    /// # Errors
    /// [`ConnectError`]: a bad URL, namespace or setting, or no server.
    pub async fn connect(self, urls: &[&str]) -> Result<RedisWaitingRoom, ConnectError> {
        super::check_namespace(&self.namespace)?;
        self.check()?;
        let conn = Conn::connect(urls, self.timeout).await?;
        let tag = format!("{{{}:room}}", self.namespace);
        let keys = [
            "cfg",
            "state",
            "line",
            "deadlines",
            "visitors",
            "tickets",
            "passes",
            "lapses",
            "ended",
        ]
        .map(|k| format!("{tag}:{k}"));
        let setup = Script::new(include_str!("scripts/room_setup.lua"));
        let mut invocation = setup.prepare_invoke();
        invocation.key(&keys[0]).key(&keys[1]);
        let claim_us = self.claim_timeout.map_or(0, micros);
        for arg in [
            u64::from(self.rate_per_second),
            u64::from(self.burst),
            u64::from(self.max_active),
            u64::from(self.max_waiting),
            micros(self.checkin_timeout),
            micros(self.pass_ttl),
            claim_us,
        ] {
            invocation.arg(arg);
        }
        let settings = conn.run(&invocation, self.timeout).await.map_err(|e| {
            ConnectError::Setting(format!("the room's settings could not be written: {e}"))
        })?;
        let checkin_us = match &settings {
            Value::Array(v) if v.len() == 7 => match v[4] {
                Value::Int(us) if us > 0 => us as u64,
                _ => {
                    return Err(ConnectError::Setting(
                        "the room's stored settings are malformed".into(),
                    ));
                }
            },
            _ => {
                return Err(ConnectError::Setting(
                    "the room's stored settings are malformed".into(),
                ));
            }
        };
        Ok(RedisWaitingRoom {
            inner: Arc::new(Inner {
                conn,
                call: Script::new(&format!(
                    "{PRELUDE}\n{}",
                    include_str!("scripts/room_call.lua")
                )),
                keys,
                timeout: self.timeout,
                checkin_timeout: Duration::from_micros(checkin_us),
                signer: self
                    .keys
                    .map(|k| (k, crc32c::crc32c(self.namespace.as_bytes()))),
            }),
        })
    }
}

/// What a room script answered.
enum Answer {
    /// An entry, with its sequence number in the line while it waits.
    Entry(Entry, Option<u64>),
    Err(String, u64),
    Done,
    None,
}

fn int(v: &Value) -> Result<i64, BackendError> {
    match v {
        Value::Int(n) => Ok(*n),
        _ => Err(BackendError::Reply),
    }
}

fn text(v: &Value) -> Result<&str, BackendError> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).map_err(|_| BackendError::Reply),
        Value::SimpleString(s) => Ok(s),
        _ => Err(BackendError::Reply),
    }
}

fn unsigned(v: &Value) -> Result<u64, BackendError> {
    u64::try_from(int(v)?).map_err(|_| BackendError::Reply)
}

fn answer(v: &Value) -> Result<Answer, BackendError> {
    let Value::Array(items) = v else {
        return Err(BackendError::Reply);
    };
    let token = |v: &Value| {
        text(v)?
            .parse::<TicketToken>()
            .map_err(|_| BackendError::Reply)
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
        [tag, reason] if text(tag)? == "err" => Answer::Err(text(reason)?.to_owned(), 0),
        [tag, reason, retry_us] if text(tag)? == "err" => {
            Answer::Err(text(reason)?.to_owned(), unsigned(retry_us)?)
        }
        [tag] if text(tag)? == "done" => Answer::Done,
        [tag] if text(tag)? == "none" => Answer::None,
        _ => return Err(BackendError::Reply),
    })
}

impl Inner {
    async fn call(&self, args: &[&str]) -> Result<Value, BackendError> {
        let mut invocation = self.call.prepare_invoke();
        for key in &self.keys {
            invocation.key(key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        self.conn.run(&invocation, self.timeout).await
    }

    async fn answer(&self, args: &[&str]) -> Result<Answer, BackendError> {
        answer(&self.call(args).await?)
    }
}

fn poll_error(reason: &str) -> PollError {
    match reason {
        "expired" => PollError::Expired,
        "unknown" => PollError::UnknownToken,
        _ => PollError::Backend(BackendError::Reply),
    }
}

/// Why [`RedisWaitingRoom::set_limits`] changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitsError {
    /// A value out of its range.
    #[error("{0}")]
    Config(crate::RoomConfigError),
    /// The store failed.
    #[error("{0}")]
    Backend(BackendError),
}

/// Counts of a shared room, as of the server's now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisRoomStats {
    /// Visitors in line.
    pub waiting: u64,
    /// Live passes.
    pub active: u64,
    /// Visitors admitted so far.
    pub admitted_total: u64,
    /// Waiting visitors who left by not checking in.
    pub dropped_total: u64,
    /// Waiting visitors who left by `finish`.
    pub left_total: u64,
    /// Admissions are paused.
    pub paused: bool,
    /// Newcomers are refused.
    pub closed: bool,
    /// The server's time, since the Unix epoch.
    pub server_time: Duration,
    /// Admissions per second in force.
    pub rate_per_second: u32,
    /// The burst in force.
    pub burst: u32,
    /// `max_active` in force.
    pub max_active: u32,
}

impl RedisWaitingRoom {
    /// [`WaitingRoom::join`](crate::WaitingRoom::join): admitted at once if the rate and
    /// `max_active` allow and nobody waits, else a place at the back; a returning visitor gets
    /// the same ticket (checking in) or pass.
    ///
    /// # Errors
    /// [`JoinError::Full`], [`JoinError::Closed`], [`JoinError::Backend`].
    pub async fn join(&self, visitor: VisitorId) -> Result<Entry, JoinError> {
        self.join_at(visitor, None).await.map(|(entry, _)| entry)
    }

    /// [`join`](Self::join), with a signed place text while the visitor waits (when the room
    /// has [`keys`](RedisWaitingRoomBuilder::keys)): a client keeps it, and after a failover
    /// that lost its entry, [`rejoin`](Self::rejoin) takes the same place back.
    ///
    /// # Errors
    /// As [`join`](Self::join).
    pub async fn join_with_place(
        &self,
        visitor: VisitorId,
    ) -> Result<(Entry, Option<String>), JoinError> {
        self.join_at(visitor, None).await
    }

    /// Joins with a place text from [`join_with_place`](Self::join_with_place): if the store
    /// knows nothing of that ticket (its entry was lost), the visitor takes its old place in
    /// line; if the ticket is live, this is a refresh; if it ended (lapsed, left, admitted and
    /// finished) or the text is not a valid place of this visitor in this room, it is a plain
    /// join.
    ///
    /// # Errors
    /// As [`join`](Self::join).
    pub async fn rejoin(
        &self,
        visitor: VisitorId,
        place: &str,
    ) -> Result<(Entry, Option<String>), JoinError> {
        let old = self.inner.signer.as_ref().and_then(|(keys, room)| {
            let (r, v, token, seq) = keys.verify_place(place).ok()?;
            (r == *room && v == visitor).then_some((token, seq))
        });
        self.join_at(visitor, old).await
    }

    async fn join_at(
        &self,
        visitor: VisitorId,
        old: Option<(TicketToken, u64)>,
    ) -> Result<(Entry, Option<String>), JoinError> {
        let token = TicketToken::from_u128(crate::token::random_u128()).to_string();
        let v = visitor.0.to_string();
        let (old_token, old_seq) = old.map_or((String::new(), String::new()), |(t, seq)| {
            (t.to_string(), seq.to_string())
        });
        let answer = self
            .inner
            .answer(&["join", &v, &token, &old_token, &old_seq])
            .await
            .map_err(JoinError::Backend)?;
        match answer {
            Answer::Entry(entry, seq) => {
                let place = match (&self.inner.signer, entry, seq) {
                    (Some((keys, room)), Entry::Waiting(t), Some(seq)) => {
                        Some(keys.sign_place(*room, visitor, t.token, seq))
                    }
                    _ => None,
                };
                Ok((entry, place))
            }
            Answer::Err(reason, retry_us) => Err(match reason.as_str() {
                "closed" => JoinError::Closed,
                "full" => JoinError::Full {
                    retry_after: Duration::from_micros(retry_us.max(1)),
                },
                _ => JoinError::Backend(BackendError::Reply),
            }),
            _ => Err(JoinError::Backend(BackendError::Reply)),
        }
    }

    /// [`WaitingRoom::entry_of`](crate::WaitingRoom::entry_of): a visitor's ticket (checking
    /// in) or pass, without adding anyone.
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn entry_of(&self, visitor: VisitorId) -> Result<Option<Entry>, BackendError> {
        match self
            .inner
            .answer(&["entry_of", &visitor.0.to_string()])
            .await?
        {
            Answer::Entry(entry, _) => Ok(Some(entry)),
            Answer::None => Ok(None),
            _ => Err(BackendError::Reply),
        }
    }

    async fn token_call(&self, op: &str, token: TicketToken) -> Result<Answer, BackendError> {
        self.inner.answer(&[op, &token.to_string()]).await
    }

    /// [`WaitingRoom::poll`](crate::WaitingRoom::poll): where the ticket stands; a check-in.
    ///
    /// # Errors
    /// [`PollError::UnknownToken`], [`PollError::Expired`], [`PollError::Backend`].
    pub async fn poll(&self, token: TicketToken) -> Result<Entry, PollError> {
        match self
            .token_call("poll", token)
            .await
            .map_err(PollError::Backend)?
        {
            Answer::Entry(entry, _) => Ok(entry),
            Answer::Err(reason, _) => Err(poll_error(&reason)),
            _ => Err(PollError::Backend(BackendError::Reply)),
        }
    }

    /// [`WaitingRoom::claim`](crate::WaitingRoom::claim): the pass's first use; claiming again
    /// returns the same pass.
    ///
    /// # Errors
    /// [`ClaimError::NotAdmitted`], [`ClaimError::UnknownToken`], [`ClaimError::Expired`],
    /// [`ClaimError::Backend`].
    pub async fn claim(&self, token: TicketToken) -> Result<Pass, ClaimError> {
        match self
            .token_call("claim", token)
            .await
            .map_err(ClaimError::Backend)?
        {
            Answer::Entry(Entry::Admitted(pass), _) => Ok(pass),
            Answer::Err(reason, _) => Err(match reason.as_str() {
                "not_admitted" => ClaimError::NotAdmitted,
                "expired" => ClaimError::Expired,
                "unknown" => ClaimError::UnknownToken,
                _ => ClaimError::Backend(BackendError::Reply),
            }),
            _ => Err(ClaimError::Backend(BackendError::Reply)),
        }
    }

    /// [`WaitingRoom::finish`](crate::WaitingRoom::finish): ends a pass, or leaves the line.
    ///
    /// # Errors
    /// [`PollError::UnknownToken`], [`PollError::Expired`], [`PollError::Backend`].
    pub async fn finish(&self, token: TicketToken) -> Result<(), PollError> {
        match self
            .token_call("finish", token)
            .await
            .map_err(PollError::Backend)?
        {
            Answer::Done => Ok(()),
            Answer::Err(reason, _) => Err(poll_error(&reason)),
            _ => Err(PollError::Backend(BackendError::Reply)),
        }
    }

    async fn set(&self, field: &str, value: &str) -> Result<(), BackendError> {
        match self.inner.answer(&["set", field, value]).await? {
            Answer::Done => Ok(()),
            _ => Err(BackendError::Reply),
        }
    }

    /// Stops admitting (the line keeps its order and keeps growing), for every node.
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn pause(&self) -> Result<(), BackendError> {
        self.set("paused", "1").await
    }

    /// Admits again.
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn resume(&self) -> Result<(), BackendError> {
        self.set("paused", "0").await
    }

    /// Refuses newcomers (`JoinError::Closed`); those in line keep their places.
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn close(&self) -> Result<(), BackendError> {
        self.set("closed", "1").await
    }

    /// Takes newcomers again.
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn reopen(&self) -> Result<(), BackendError> {
        self.set("closed", "0").await
    }

    /// Changes the rate, the burst and `max_active` together, for every node (checked first by
    /// the in-process room's rules; nothing changes on an error).
    ///
    /// # Errors
    /// [`RoomConfigError`](crate::RoomConfigError) for a value out of range, or the store's
    /// failure.
    pub async fn set_limits(
        &self,
        rate_per_second: u32,
        burst: u32,
        max_active: u32,
    ) -> Result<(), LimitsError> {
        crate::WaitingRoom::builder()
            .rate_per_second(rate_per_second)
            .burst(burst)
            .max_active(max_active)
            .try_build()
            .map_err(LimitsError::Config)?;
        let (rate, burst, max_active) = (
            rate_per_second.to_string(),
            burst.to_string(),
            max_active.to_string(),
        );
        match self
            .inner
            .answer(&[
                "set",
                "rate",
                &rate,
                "burst",
                &burst,
                "max_active",
                &max_active,
            ])
            .await
            .map_err(LimitsError::Backend)?
        {
            Answer::Done => Ok(()),
            _ => Err(LimitsError::Backend(BackendError::Reply)),
        }
    }

    /// Counts, as of the server's now.
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn stats(&self) -> Result<RedisRoomStats, BackendError> {
        let reply = self.inner.call(&["stats"]).await?;
        let Value::Array(v) = &reply else {
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
            now,
            rate,
            burst,
            max_active,
        ] = v.as_slice()
        else {
            return Err(BackendError::Reply);
        };
        let u32_of = |v: &Value| u32::try_from(unsigned(v)?).map_err(|_| BackendError::Reply);
        Ok(RedisRoomStats {
            waiting: unsigned(waiting)?,
            active: unsigned(active)?,
            admitted_total: unsigned(admitted)?,
            dropped_total: unsigned(dropped)?,
            left_total: unsigned(left)?,
            paused: unsigned(paused)? == 1,
            closed: unsigned(closed)? == 1,
            server_time: Duration::from_micros(unsigned(now)?),
            rate_per_second: u32_of(rate)?,
            burst: u32_of(burst)?,
            max_active: u32_of(max_active)?,
        })
    }

    /// The check-in timeout in force.
    pub fn checkin_timeout(&self) -> Duration {
        self.inner.checkin_timeout
    }
}

#[cfg(feature = "http")]
impl crate::http::RoomBackend for RedisWaitingRoom {
    async fn join(&self, visitor: VisitorId) -> Result<Entry, JoinError> {
        RedisWaitingRoom::join(self, visitor).await
    }

    async fn entry_of(&self, visitor: VisitorId) -> Result<Option<Entry>, PollError> {
        RedisWaitingRoom::entry_of(self, visitor)
            .await
            .map_err(PollError::Backend)
    }

    async fn claim(&self, token: TicketToken) -> Result<Pass, ClaimError> {
        RedisWaitingRoom::claim(self, token).await
    }

    async fn finish(&self, token: TicketToken) -> Result<(), PollError> {
        RedisWaitingRoom::finish(self, token).await
    }

    async fn waiting(&self) -> Option<u64> {
        self.stats().await.ok().map(|s| s.waiting)
    }

    fn checkin_timeout(&self) -> Duration {
        self.inner.checkin_timeout
    }

    /// A pass's `expires_at` is already a time since the Unix epoch (the server's clock).
    fn unix_s(&self, at: Duration) -> u64 {
        at.as_secs() + u64::from(at.subsec_nanos() > 0)
    }

    /// This node's clock, which NTP keeps within a second or so of the store's.
    fn now_unix_s(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}
