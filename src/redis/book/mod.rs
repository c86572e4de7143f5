//! `RedisSlotBook`: the slot book's rules on a Redis server or cluster, for many portal nodes.
//!
//! Files: `builder` (settings, checked by the in-process book's rules, and `connect`),
//! `capacity` (set_capacity, close_slot, slot, availability, sweep), `reserve` (the applicant
//! protocol around one reservation: take, reserve, drop), `among` (one hold among several
//! branches), `confirm` (confirm and release), `lookup` (holds and bookings by token or
//! applicant), `quota` (channel quotas and `reserve_on`), `settle` (giving back counts a
//! failed call left behind), `standby` (the standby line) and `standby_reply`, `reply` (reading
//! the scripts' replies). This file: the type, its
//! keys and the calls every protocol makes.

mod among;
mod builder;
mod capacity;
mod confirm;
mod lookup;
mod quota;
mod reply;
mod reserve;
mod settle;
mod standby;
mod standby_reply;

use std::sync::Arc;
use std::time::Duration;

use redis::{Script, Value};

use super::conn::Conn;
use super::scripts::{self, BRANCH_KEYS, BranchSettings};
use crate::backend::BackendError;
use crate::book::{ApplicantId, BranchId, HoldToken};

pub use builder::RedisSlotBookBuilder;

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
    settle: Script,
    standby: Script,
    applicant: Script,
}

impl Scripts {
    fn load(settings: BranchSettings) -> Scripts {
        let branch = |body: &str| scripts::branch(body, settings);
        Scripts {
            reserve: branch(include_str!("../scripts/reserve.lua")),
            confirm: branch(include_str!("../scripts/confirm.lua")),
            release: branch(include_str!("../scripts/release.lua")),
            capacity: branch(include_str!("../scripts/capacity.lua")),
            read: branch(include_str!("../scripts/read.lua")),
            settle: branch(include_str!("../scripts/settle.lua")),
            standby: branch(include_str!("../scripts/standby.lua")),
            applicant: scripts::applicant(),
        }
    }
}

/// The slot book on Redis: the same rules as [`SlotBook`](crate::SlotBook) across every process
/// that connects with the same namespace, with time from the Redis server's clock (so a
/// [`Hold::expires_at`](crate::Hold::expires_at) is a time since the Unix epoch, as through
/// [`BookBackend`](crate::BookBackend) on every backend). See the [module docs](super) for the
/// layout and what a failover can cost.
///
/// It implements [`BookBackend`](crate::BookBackend), with every call of the in-process book;
/// the trait's `sweep()` sweeps every branch the book has opened (inherent [`sweep`](Self::sweep)
/// sweeps one branch within a budget).
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
    /// Standby requests one branch's line holds at most.
    max_line: u32,
    timeout: Duration,
    wait_replicas: u32,
    wait_timeout: Duration,
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
    fn branch_keys(&self, branch: BranchId) -> [String; BRANCH_KEYS.len()] {
        let tag = format!("{{{}:b:{}}}", self.namespace, branch.0);
        BRANCH_KEYS.map(|k| format!("{tag}:{k}"))
    }

    /// The applicant's one key (`COUNTS` in its script): the tag alone, `{ns:a:<applicant>}`.
    fn applicant_key(&self, applicant: ApplicantId) -> String {
        format!("{{{}:a:{}}}", self.namespace, applicant.0)
    }

    /// The set of every branch the book has opened a slot at (for the sweep of every branch),
    /// on a shard of its own.
    fn registry_key(&self) -> String {
        format!("{{{}:book}}:branches", self.namespace)
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
        let counts = self.applicant_key(applicant);
        let standby = format!("{counts}:standby");
        invocation.key(counts);
        invocation.key(standby);
        for arg in args {
            invocation.arg(arg);
        }
        self.conn.run(&invocation, self.timeout).await
    }

    /// Gives back the applicant's count of `token` (no hold is made under it, or its hold
    /// ended).
    async fn drop_count(
        &self,
        applicant: ApplicantId,
        token: HoldToken,
    ) -> Result<(), BackendError> {
        let args = ["drop".into(), token.to_string()];
        self.on_applicant(applicant, &args).await.map(drop)
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
    /// How long a hold lasts unless confirmed (whole milliseconds: the store's resolution).
    pub fn hold_ttl(&self) -> Duration {
        Duration::from_millis(self.inner.hold_ttl_ms)
    }
}
