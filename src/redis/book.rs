//! `RedisSlotBook`: the slot book's rules on a Redis server or cluster, for many portal nodes.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use redis::{Script, Value};

use super::conn::{Conn, ConnectError};
use super::reply;
use crate::backend::BackendError;
use crate::book::{
    ApplicantId, Booking, BranchId, CapacityError, ConfirmError, Hold, HoldToken, ReleaseError,
    ReserveError, SlotIndex, SlotState,
};

const PRELUDE: &str = include_str!("scripts/branch_prelude.lua");

/// How long an applicant's count outlives a hold's expiry at most (it is taken before the hold
/// is made): the hold must be made within this margin, and a lapsed hold gives its count back
/// at most this late.
const COUNT_MARGIN_MS: u64 = 2_000;
/// The clock difference between two primaries the applicant protocol tolerates.
const CLOCK_SKEW_MS: u64 = 1_000;

struct Scripts {
    reserve: Script,
    confirm: Script,
    release: Script,
    capacity: Script,
    read: Script,
    applicant: Script,
}

impl Scripts {
    fn load() -> Scripts {
        let branch = |body: &str| Script::new(&format!("{PRELUDE}\n{body}"));
        Scripts {
            reserve: branch(include_str!("scripts/reserve.lua")),
            confirm: branch(include_str!("scripts/confirm.lua")),
            release: branch(include_str!("scripts/release.lua")),
            capacity: branch(include_str!("scripts/capacity.lua")),
            read: branch(include_str!("scripts/read.lua")),
            applicant: Script::new(include_str!("scripts/applicant.lua")),
        }
    }
}

/// Settings of a [`RedisSlotBook`]; from [`RedisSlotBook::builder`].
#[derive(Clone, Debug)]
pub struct RedisSlotBookBuilder {
    hold_ttl: Duration,
    max_active_per_applicant: u32,
    namespace: String,
    timeout: Duration,
    wait_replicas: Option<u32>,
    wait_timeout: Duration,
    allow_unsynced: bool,
}

/// The slot book on Redis: the same rules as [`SlotBook`](crate::SlotBook) across every process
/// that connects with the same namespace, with time from the Redis server's clock (so a
/// [`Hold::expires_at`] is a time since the Unix epoch). See the [module docs](super) for the
/// layout and what a failover can cost.
#[derive(Clone)]
pub struct RedisSlotBook {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Conn,
    scripts: Scripts,
    namespace: String,
    hold_ttl_ms: u64,
    limit: u32,
    timeout: Duration,
    wait_replicas: u32,
    wait_timeout: Duration,
}

impl RedisSlotBook {
    /// A builder: hold ttl 10 min, one live hold or booking per applicant, namespace
    /// `surgegate`, 2 s timeout per call.
    pub fn builder() -> RedisSlotBookBuilder {
        RedisSlotBookBuilder {
            hold_ttl: Duration::from_secs(600),
            max_active_per_applicant: 1,
            namespace: "surgegate".into(),
            timeout: Duration::from_secs(2),
            wait_replicas: None,
            wait_timeout: Duration::from_secs(1),
            allow_unsynced: false,
        }
    }
}

impl RedisSlotBookBuilder {
    /// How long a hold lasts unless confirmed (1 ms to 7 days).
    pub fn hold_ttl(mut self, ttl: Duration) -> Self {
        self.hold_ttl = ttl;
        self
    }

    /// The most live holds plus bookings one applicant may have at once, across branches
    /// (1 to 1024).
    pub fn max_active_per_applicant(mut self, n: u32) -> Self {
        self.max_active_per_applicant = n;
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

    /// Connects (a cluster when the first server runs in cluster mode) and checks the settings.
    ///
    /// # Errors
    /// [`ConnectError`]: a bad URL or setting, no server, or a server that does not fsync every
    /// write (unless [`allow_unsynced`](Self::allow_unsynced)).
    pub async fn connect(self, urls: &[&str]) -> Result<RedisSlotBook, ConnectError> {
        super::check_namespace(&self.namespace)?;
        let ttl_ms = u64::try_from(self.hold_ttl.as_millis()).unwrap_or(u64::MAX);
        if !(1..=7 * 86_400_000).contains(&ttl_ms) {
            return Err(ConnectError::Setting(format!(
                "hold_ttl must be between 1 ms and 7 days, got {:?}",
                self.hold_ttl
            )));
        }
        if !(1..=1024).contains(&self.max_active_per_applicant) {
            return Err(ConnectError::Setting(
                "max_active_per_applicant must be between 1 and 1024".into(),
            ));
        }
        let conn = Conn::connect(urls, self.timeout).await?;
        if !self.allow_unsynced && !conn.fsyncs_every_write(self.timeout).await.unwrap_or(false) {
            return Err(ConnectError::NotDurable(urls.join(",")));
        }
        let wait_replicas = self
            .wait_replicas
            .unwrap_or(u32::from(matches!(conn, Conn::Cluster(_))));
        Ok(RedisSlotBook {
            inner: Arc::new(Inner {
                conn,
                scripts: Scripts::load(),
                namespace: self.namespace,
                hold_ttl_ms: ttl_ms,
                limit: self.max_active_per_applicant,
                timeout: self.timeout,
                wait_replicas,
                wait_timeout: self.wait_timeout,
            }),
        })
    }
}

/// The branch a token belongs to: its top 32 bits (the other 96 are random).
fn branch_of(token: HoldToken) -> BranchId {
    BranchId((token.to_u128() >> 96) as u32)
}

fn new_token(branch: BranchId) -> HoldToken {
    let random = crate::token::random_u128() & ((1u128 << 96) - 1);
    HoldToken::from_u128((u128::from(branch.0) << 96) | random)
}

impl Inner {
    fn branch_keys(&self, branch: BranchId) -> [String; 9] {
        let tag = format!("{{{}:b:{}}}", self.namespace, branch.0);
        [
            "cap", "held", "booked", "open", "holds", "exp", "bookings", "holder", "lapsed",
        ]
        .map(|k| format!("{tag}:{k}"))
    }

    fn applicant_key(&self, applicant: ApplicantId) -> String {
        format!("{{{}:a:{}}}", self.namespace, applicant.0)
    }

    async fn on_branch(
        &self,
        script: &Script,
        branch: BranchId,
        args: &[String],
    ) -> Result<Value, BackendError> {
        let mut invocation = script.prepare_invoke();
        for key in self.branch_keys(branch) {
            invocation.key(key);
        }
        for arg in args {
            invocation.arg(arg);
        }
        self.conn.run(&invocation, self.timeout).await
    }

    async fn on_applicant(
        &self,
        applicant: ApplicantId,
        args: &[String],
    ) -> Result<Value, BackendError> {
        let mut invocation = self.scripts.applicant.prepare_invoke();
        invocation.key(self.applicant_key(applicant));
        for arg in args {
            invocation.arg(arg);
        }
        self.conn.run(&invocation, self.timeout).await
    }

    /// Replication of the branch's last writes, when required.
    async fn replicated(&self, branch: BranchId) -> Result<(), BackendError> {
        let key = &self.branch_keys(branch)[0];
        self.conn
            .wait(key, self.wait_replicas, self.wait_timeout)
            .await
    }
}

impl RedisSlotBook {
    /// Opens a slot with `capacity` units, or changes its capacity (lowering it below what is
    /// taken keeps every hold and booking, and grants nothing until it fits again).
    ///
    /// # Errors
    /// [`CapacityError::CapacityTooLarge`], [`CapacityError::Backend`].
    pub async fn set_capacity(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        capacity: u32,
    ) -> Result<SlotState, CapacityError> {
        if capacity > crate::book::MAX_CAPACITY {
            return Err(CapacityError::CapacityTooLarge {
                capacity,
                max: crate::book::MAX_CAPACITY,
            });
        }
        let i = &self.inner;
        let reply = i
            .on_branch(
                &i.scripts.capacity,
                branch,
                &[slot.to_string(), capacity.to_string()],
            )
            .await;
        let state = reply::slot_state(&reply.map_err(CapacityError::Backend)?)
            .map_err(CapacityError::Backend)?;
        i.replicated(branch).await.map_err(CapacityError::Backend)?;
        state.ok_or(CapacityError::Backend(BackendError::Reply))
    }

    /// The counts of one slot (`None` if it was never opened), after reclaiming lapsed holds.
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn slot(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> Result<Option<SlotState>, BackendError> {
        let i = &self.inner;
        let reply = i
            .on_branch(&i.scripts.read, branch, &["slot".into(), slot.to_string()])
            .await?;
        reply::slot_state(&reply)
    }

    /// A hold on `slot` for `applicant`, by the same rules as [`SlotBook::reserve`](crate::SlotBook::reserve).
    ///
    /// # Errors
    /// [`ReserveError::UnknownSlot`], [`ReserveError::Full`], [`ReserveError::ApplicantLimit`],
    /// [`ReserveError::Backend`].
    pub async fn reserve(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        applicant: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        self.take_hold(branch, "slot", slot..slot.saturating_add(1), applicant)
            .await
    }

    /// A hold on the earliest slot in `slots` with room, as [`SlotBook::reserve_earliest`](crate::SlotBook::reserve_earliest),
    /// found without scanning (a sorted set of the slots with room).
    ///
    /// # Errors
    /// [`ReserveError::EmptyRange`], [`ReserveError::NoneAvailable`],
    /// [`ReserveError::ApplicantLimit`], [`ReserveError::Backend`].
    pub async fn reserve_earliest(
        &self,
        branch: BranchId,
        slots: Range<SlotIndex>,
        applicant: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        if slots.is_empty() {
            return Err(ReserveError::EmptyRange);
        }
        self.take_hold(branch, "earliest", slots, applicant).await
    }

    /// The applicant protocol around one reservation: take the applicant's count, reserve on
    /// the branch, give the count back if no new hold was made.
    async fn take_hold(
        &self,
        branch: BranchId,
        mode: &str,
        slots: Range<SlotIndex>,
        applicant: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        let i = &self.inner;
        let token = new_token(branch);
        let count_ms = i.hold_ttl_ms + COUNT_MARGIN_MS;
        let args = [
            "take".into(),
            token.to_string(),
            count_ms.to_string(),
            i.limit.to_string(),
        ];
        let taken = reply::taken(
            &i.on_applicant(applicant, &args)
                .await
                .map_err(ReserveError::Backend)?,
        )
        .map_err(ReserveError::Backend)?;
        let reserve_args = |until_ms: u64, peek: &str| {
            let last = slots.end - 1;
            [
                mode.into(),
                slots.start.to_string(),
                last.to_string(),
                applicant.0.to_string(),
                token.to_string(),
                i.hold_ttl_ms.to_string(),
                until_ms.to_string(),
                peek.into(),
            ]
        };
        let Some(until_ms) = taken else {
            // At the limit: a retry of a reservation that succeeded returns its hold.
            let reply = i
                .on_branch(&i.scripts.reserve, branch, &reserve_args(0, "peek"))
                .await
                .map_err(ReserveError::Backend)?;
            return match reply::hold(&reply, branch, applicant).map_err(ReserveError::Backend)? {
                Ok(hold) => Ok(hold),
                Err(ReserveError::UnknownSlot) => Err(ReserveError::UnknownSlot),
                Err(_) => Err(ReserveError::ApplicantLimit),
            };
        };
        let latest_ms = until_ms.saturating_sub(COUNT_MARGIN_MS.min(CLOCK_SKEW_MS));
        let reply = i
            .on_branch(&i.scripts.reserve, branch, &reserve_args(latest_ms, ""))
            .await
            .map_err(ReserveError::Backend)?;
        let outcome = reply::hold(&reply, branch, applicant).map_err(ReserveError::Backend)?;
        if !matches!(&outcome, Ok(hold) if hold.token == token) {
            // No new hold under this token: give the count back.
            i.on_applicant(applicant, &["drop".into(), token.to_string()])
                .await
                .map_err(ReserveError::Backend)?;
        }
        outcome
    }

    /// Confirms a live hold (a retry returns the same booking), durably: `Ok` once written on
    /// the primary (which fsyncs every write) and acknowledged by the replicas asked for.
    ///
    /// # Errors
    /// [`ConfirmError::UnknownToken`], [`ConfirmError::Expired`], [`ConfirmError::Backend`].
    pub async fn confirm(&self, token: HoldToken) -> Result<Booking, ConfirmError> {
        let i = &self.inner;
        let branch = branch_of(token);
        let read = i
            .on_branch(&i.scripts.read, branch, &["hold".into(), token.to_string()])
            .await
            .map_err(ConfirmError::Backend)?;
        let applicant = reply::hold_record(&read)
            .map_err(ConfirmError::Backend)?
            .map(|(_, applicant, _)| applicant);
        if let Some(applicant) = applicant {
            let booked = i
                .on_applicant(applicant, &["book".into(), token.to_string()])
                .await
                .map_err(ConfirmError::Backend)?;
            if !reply::is_one(&booked) {
                return Err(ConfirmError::Expired);
            }
        }
        let reply = i
            .on_branch(&i.scripts.confirm, branch, &[token.to_string()])
            .await
            .map_err(ConfirmError::Backend)?;
        match reply::booking(&reply, branch, token).map_err(ConfirmError::Backend)? {
            Ok(booking) => {
                i.replicated(branch).await.map_err(ConfirmError::Backend)?;
                Ok(booking)
            }
            Err(e) => {
                if let Some(applicant) = applicant {
                    i.on_applicant(applicant, &["drop".into(), token.to_string()])
                        .await
                        .map_err(ConfirmError::Backend)?;
                }
                Err(e)
            }
        }
    }

    /// Releases a live hold or cancels a booking; its unit is free at once, and the applicant's
    /// count is given back after.
    ///
    /// # Errors
    /// [`ReleaseError::UnknownToken`], [`ReleaseError::Backend`].
    pub async fn release(&self, token: HoldToken) -> Result<(), ReleaseError> {
        let i = &self.inner;
        let branch = branch_of(token);
        let reply = i
            .on_branch(&i.scripts.release, branch, &[token.to_string()])
            .await
            .map_err(ReleaseError::Backend)?;
        let (was_booking, applicant) = reply::released(&reply)
            .map_err(ReleaseError::Backend)?
            .ok_or(ReleaseError::UnknownToken)?;
        if was_booking {
            i.replicated(branch).await.map_err(ReleaseError::Backend)?;
        }
        i.on_applicant(applicant, &["drop".into(), token.to_string()])
            .await
            .map_err(ReleaseError::Backend)?;
        Ok(())
    }

    /// Every open slot of `branch` in `slots` (at most 4 096 of them from its start), in index
    /// order, as [`SlotBook::availability`](crate::SlotBook::availability).
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn availability(
        &self,
        branch: BranchId,
        slots: Range<SlotIndex>,
    ) -> Result<Vec<(SlotIndex, SlotState)>, BackendError> {
        if slots.is_empty() {
            return Ok(Vec::new());
        }
        let i = &self.inner;
        let args = [
            "range".into(),
            slots.start.to_string(),
            (slots.end - 1).to_string(),
        ];
        reply::slot_states(&i.on_branch(&i.scripts.read, branch, &args).await?)
    }

    /// The tokens counted against an applicant's limit (its live holds and bookings, and a
    /// reservation in progress).
    async fn counted(&self, applicant: ApplicantId) -> Result<Vec<HoldToken>, BackendError> {
        let i = &self.inner;
        let mut cmd = redis::cmd("ZRANGE");
        let key = i.applicant_key(applicant);
        cmd.arg(&key).arg(0).arg(-1);
        reply::tokens(&i.conn.command(cmd, Some(&key), i.timeout).await?)
    }

    /// The applicant's live holds, as [`SlotBook::holds_of`](crate::SlotBook::holds_of).
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn holds_of(&self, applicant: ApplicantId) -> Result<Vec<Hold>, BackendError> {
        let mut out = Vec::new();
        for token in self.counted(applicant).await? {
            if let Some(hold) = self.hold(token).await?.filter(|h| h.applicant == applicant) {
                out.push(hold);
            }
        }
        Ok(out)
    }

    /// The applicant's bookings, as [`SlotBook::bookings_of`](crate::SlotBook::bookings_of).
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn bookings_of(&self, applicant: ApplicantId) -> Result<Vec<Booking>, BackendError> {
        let mut out = Vec::new();
        for token in self.counted(applicant).await? {
            if let Some(booking) = self
                .booking(token)
                .await?
                .filter(|b| b.applicant == applicant)
            {
                out.push(booking);
            }
        }
        Ok(out)
    }

    /// The live hold of this token, if any.
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn hold(&self, token: HoldToken) -> Result<Option<Hold>, BackendError> {
        let i = &self.inner;
        let branch = branch_of(token);
        let reply = i
            .on_branch(&i.scripts.read, branch, &["hold".into(), token.to_string()])
            .await?;
        Ok(
            reply::hold_record(&reply)?.map(|(slot, applicant, expires_ms)| Hold {
                token,
                branch,
                slot,
                applicant,
                expires_at: Duration::from_millis(expires_ms),
            }),
        )
    }

    /// The booking of this token, if any.
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn booking(&self, token: HoldToken) -> Result<Option<Booking>, BackendError> {
        let i = &self.inner;
        let branch = branch_of(token);
        let reply = i
            .on_branch(
                &i.scripts.read,
                branch,
                &["booking".into(), token.to_string()],
            )
            .await?;
        reply::booking_record(&reply, branch, token)
    }

    /// Reclaims up to `budget` lapsed holds of `branch` now (calls reclaim some as they go);
    /// how many.
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn sweep(&self, branch: BranchId, budget: u32) -> Result<u64, BackendError> {
        let i = &self.inner;
        let reply = i
            .on_branch(
                &i.scripts.read,
                branch,
                &["sweep".into(), budget.to_string()],
            )
            .await?;
        match reply {
            Value::Int(n) if n >= 0 => Ok(n as u64),
            _ => Err(BackendError::Reply),
        }
    }
}
