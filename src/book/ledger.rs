//! One shard of the book's records: holds, bookings, the applicant index and the expiry queue.
//!
//! Guarantee: everything about one applicant lives in one shard, and a token's low bits name the
//! shard that issued it. So `reserve` (applicant limit, idempotency, grant, record), `confirm`
//! and `release` each take exactly one shard lock, and a confirm racing the expiry of the same
//! hold is decided under that lock: exactly one of them wins.
//!
//! Records live in a slab addressed by their tokens (`records.rs`). Holds expire in the order
//! they were granted within a shard (one TTL for the whole book, and the grant time is read under
//! the shard lock, never going back), so the expiry index is a FIFO [`DeadlineQueue`] of slab
//! entries: granting is O(1) and reclaiming costs O(expired). The entry of a hold confirmed or
//! released goes stale; stale entries are dropped together once they outnumber the holds (by the
//! next grant's push, or by the confirmation or release itself, past [`ENDED_SLACK`]), so a
//! booking keeps no entry in the queue.

use std::collections::HashMap;

use crate::deadline::DeadlineQueue;
use crate::sync::{AtomicU64, Mutex};

use super::branches::quota_key;
use super::channel::Part;
use super::record::{Record, State};
use super::records::{PlaceError, Records};
use super::standby::Standby;
use super::types::ApplicantId;

/// A shard: its expiry front (readable without the lock) and its ledger.
pub(crate) struct Shard {
    /// Expiry time of the front entry of the ledger's queue, `u64::MAX` when it is empty.
    /// Written only under the ledger lock; read without it to decide whether to lock at all.
    pub(crate) front_ns: AtomicU64,
    pub(crate) ledger: Mutex<Ledger>,
}

impl Shard {
    pub(crate) fn new(applicant_hasher: ahash::RandomState) -> Self {
        Self {
            front_ns: AtomicU64::new(u64::MAX),
            ledger: Mutex::new(Ledger {
                records: Records::new(applicant_hasher),
                expiry: DeadlineQueue::default(),
                live_holds: 0,
                latest_ns: 0,
                standby: HashMap::new(),
            }),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Ledger {
    pub(crate) records: Records,
    /// Holds by expiry, in grant order, which is expiry order: their [`ExpiryKey`]s.
    pub(crate) expiry: DeadlineQueue<ExpiryKey>,
    /// Records in state `Held` (expired or not) or `Confirming`.
    pub(crate) live_holds: usize,
    /// The latest time a call under this lock has used; see [`Ledger::clamp_now`].
    latest_ns: u64,
    /// This shard's applicants with a standby request, or with a hold standby gave them.
    /// Empty (no allocation) in a book nobody uses standby on.
    pub(crate) standby: HashMap<ApplicantId, Mark>,
}

/// An applicant's standby standing, as its shard knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
    /// Its request is in the line, or was given an offer not claimed yet (the line knows which).
    InLine,
    /// It claimed the hold with this token (a record of this shard) from its offer.
    Given(u128),
}

/// Stale expiry entries a shard keeps beyond twice its holds before a confirmation or a release
/// drops them all ([`Ledger::drop_stale_expiries`]). Above the slack of a push (32), so that the
/// reserve, confirm and release of one hold at a time, whose queue a push keeps within that,
/// never compacts at the confirmation; small enough that a million bookings leave under a byte
/// each of queue behind.
pub(crate) const ENDED_SLACK: usize = 64;

/// Returns one unit of a hold or booking to its slot and refreshes the slot's full bit: to the
/// part it came from (see `channel.rs`), or, if a standby request covers the slot and the
/// return leaves room, to the earliest such request, in the same step (see `standby.rs`).
/// `now_ns` is the caller's time: an offer made lapses a hold lifetime after it.
pub(crate) fn return_unit(record: &Record, standby: &Standby, now_ns: u64) {
    if record.part != Part::OPEN {
        return_channel_unit(record, standby, now_ns);
        return;
    }
    let word = record.at.word(record.slot);
    let held = record.state.counts_as_held();
    // The line stays locked while the unit goes back, if requests wait: see `give_freed`.
    let (_line, given) = standby.give_freed(record.branch, record.slot, record.at, now_ns, || {
        word.keep_for_standby(held)
    });
    if given {
        // What is taken did not change, so neither did the full bit.
        return;
    }
    let before = if held {
        word.release_held()
    } else {
        word.release_booked()
    };
    if before.is_full() {
        record.at.sync_full(record.slot);
    }
}

/// Returns a unit taken on a channel: its channel's counts go down, and the slot word's held
/// (or booked) count with its capacity field in one step, so that a unit from a quota goes back
/// to that quota while the channel is within it, and to the open part otherwise.
#[cold]
fn return_channel_unit(record: &Record, standby: &Standby, now_ns: u64) {
    let word = record.at.word(record.slot);
    let held = record.state.counts_as_held();
    // The line before the quota lock (the book's lock order).
    let mut line = standby.has_waiting().then(|| standby.lock());
    let next = line
        .as_ref()
        .and_then(|l| l.earliest(record.branch, record.slot, 1).first().copied());
    let mut table = record.at.quotas();
    let capacity = match table.get_mut(&quota_key(record.slot)) {
        Some(cs) => {
            if let Some(channel) = record.part.channel() {
                let c = cs.count_mut(channel);
                c.taken = c.taken.saturating_sub(1);
                if record.part.is_from_quota() {
                    c.from_quota = c.from_quota.saturating_sub(1);
                }
            }
            Some(cs.word_capacity())
        }
        // A channel part is only given on a slot with quotas, whose entry stays.
        None => None,
    };
    let capacity = capacity.unwrap_or_else(|| word.load().capacity());
    let (_, kept) = word.return_quota_unit(held, capacity, next.is_some());
    drop(table);
    if let (true, Some(number), Some(line)) = (kept, next, line.as_mut()) {
        let expires_ns = standby.expiry(now_ns);
        line.offer(number, record.branch, record.slot, record.at, expires_ns);
    }
    drop(line);
    record.at.sync_full(record.slot);
}

/// What `Ledger::applicant_view` found.
pub(crate) struct ApplicantView {
    /// A live hold of the applicant for which the caller's predicate holds.
    pub(crate) existing: Option<(u128, Record)>,
    /// Live holds plus bookings of the applicant.
    pub(crate) active: usize,
}

impl Ledger {
    /// `now_ns`, or the latest time used under this lock if that is later: grant times, and so
    /// expiry times, enter the expiry queue in order, and a hold that lapsed stays lapsed, even
    /// if the clock steps back.
    #[inline]
    pub(crate) fn clamp_now(&mut self, now_ns: u64) -> u64 {
        self.latest_ns = self.latest_ns.max(now_ns);
        self.latest_ns
    }

    /// Tokens of `applicant`'s records (holds, expired or not, and bookings).
    pub(crate) fn tokens_of(&self, applicant: ApplicantId) -> impl Iterator<Item = u128> + '_ {
        self.records.tokens_of(applicant)
    }

    /// In one pass over the applicant's records: reclaims its expired holds, finds a live hold
    /// for which `matches` holds, and counts its live holds and bookings.
    pub(crate) fn applicant_view(
        &mut self,
        applicant: ApplicantId,
        now_ns: u64,
        matches: impl Fn(&Record) -> bool,
        standby: &Standby,
    ) -> ApplicantView {
        let mut view = ApplicantView {
            existing: None,
            active: 0,
        };
        let mut expired = Vec::new();
        for token in self.records.tokens_of(applicant) {
            let Some(r) = self.records.get(token) else {
                continue;
            };
            if r.is_expired_hold(now_ns) {
                expired.push(token);
                continue;
            }
            view.active += 1;
            if view.existing.is_none() && r.is_live_hold(now_ns) && matches(&r) {
                view.existing = Some((token, r));
            }
        }
        for token in expired {
            if let Some(r) = self.remove(token) {
                return_unit(&r, standby, now_ns);
            }
        }
        if self.standby.get(&applicant) == Some(&Mark::InLine) {
            // A waiting request holds a place of the applicant's limit, so that the hold it
            // is given never breaks it.
            view.active += 1;
        }
        view
    }

    /// Adds a record for a unit the caller has just taken, under a token from
    /// [`Records::new_token`] (or read back from the journal). Returns whether the expiry
    /// queue's front may have moved (then the caller publishes it: `Shard::publish_front`).
    pub(crate) fn insert(&mut self, token: u128, record: Record) -> Result<bool, PlaceError> {
        let index = self.records.insert(token, &record)?;
        if let State::Held { expires_ns } = record.state {
            self.live_holds += 1;
            let records = &self.records;
            let was_empty = self.expiry.peek().is_none();
            let key = ExpiryKey::new(index, token);
            let compacted = self.expiry.push(expires_ns, key, self.live_holds, |d, k| {
                is_hold_at(records, d, k)
            });
            // The common case, a push behind an existing front, leaves the front as it was and
            // touches no shared memory.
            return Ok(was_empty || compacted);
        }
        Ok(false)
    }

    /// Drops the expiry queue's stale entries (of holds confirmed or released) once they
    /// outnumber the shard's holds by more than [`ENDED_SLACK`]; returns whether it did (then the
    /// caller publishes the front: `Shard::publish_front`). Called after a hold is confirmed or
    /// released, so that a booking keeps no queue entry until its hold's expiry time: a queue
    /// never holds more than `2 × holds + ENDED_SLACK` entries after either call.
    #[inline]
    pub(crate) fn drop_stale_expiries(&mut self) -> bool {
        let records = &self.records;
        self.expiry
            .drop_stale(self.live_holds, ENDED_SLACK, |d, k| {
                is_hold_at(records, d, k)
            })
    }

    /// Removes a record and its applicant entry. Does not touch the slot word.
    pub(crate) fn remove(&mut self, token: u128) -> Option<Record> {
        let record = self.records.remove(token)?;
        if record.state.counts_as_held() {
            self.live_holds -= 1;
        }
        self.forget_given(record.applicant, token);
        Some(record)
    }

    /// Forgets that standby gave `token` to `applicant`, once that hold ends (confirmed,
    /// released, lapsed): `standby_offer` then answers `None`.
    #[inline]
    pub(crate) fn forget_given(&mut self, applicant: ApplicantId, token: u128) {
        if !self.standby.is_empty() && self.standby.get(&applicant) == Some(&Mark::Given(token)) {
            self.standby.remove(&applicant);
        }
    }

    /// Records a hold claimed from a standby offer, whose expiry may be earlier than holds
    /// granted in this shard since the offer was made: it is merged into the expiry queue in
    /// order. The caller publishes the front.
    pub(crate) fn insert_given(&mut self, token: u128, record: Record) -> Result<(), PlaceError> {
        let State::Held { expires_ns } = record.state else {
            return Err(PlaceError::Taken);
        };
        if self
            .expiry
            .last_deadline()
            .is_none_or(|last| last <= expires_ns)
        {
            return self.insert(token, record).map(|_| ());
        }
        let index = self.records.insert(token, &record)?;
        self.live_holds += 1;
        self.expiry
            .merge(vec![(expires_ns, ExpiryKey::new(index, token))]);
        Ok(())
    }

    /// Reclaims up to `max` of the holds at the front of the queue that expired at or before
    /// `now_ns`, oldest first. The caller publishes the new front (`Shard::reclaim` does both).
    pub(crate) fn reclaim_expired(&mut self, now_ns: u64, max: usize, standby: &Standby) -> usize {
        let now_ns = self.clamp_now(now_ns);
        let mut reclaimed = 0;
        while reclaimed < max {
            // Entries of holds confirmed, released or reclaimed already are skipped.
            let records = &self.records;
            let Some((expires_ns, key)) = self.expiry.front(|d, k| is_hold_at(records, d, k))
            else {
                break;
            };
            if expires_ns > now_ns {
                break;
            }
            self.expiry.pop();
            let Some((token, record)) = self.records.at_index(key.index()) else {
                continue;
            };
            // A confirming hold does not lapse: its confirmation settles it (and reclaims it if
            // the journal refused the booking and its time is up).
            if record.state.is_settling() {
                continue;
            }
            if let Some(r) = self.remove(token) {
                return_unit(&r, standby, now_ns);
                reclaimed += 1;
            }
        }
        reclaimed
    }
}

/// An expiry entry's record: its slab entry, and 32 random bits of its token, so that an entry
/// left behind by a hold that is gone is not taken for the one that reuses its place (which
/// would keep stale entries alive when holds share an expiry, as under a stopped test clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ExpiryKey(u64);

impl ExpiryKey {
    pub(crate) fn new(index: u32, token: u128) -> Self {
        Self(u64::from(index) << 32 | u64::from((token >> 32) as u32))
    }

    pub(crate) fn index(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// Whether the expiry entry `(expires_ns, key)` is the current one of a hold.
pub(crate) fn is_hold_at(records: &Records, expires_ns: u64, key: ExpiryKey) -> bool {
    records.at_index(key.index()).is_some_and(|(token, r)| {
        ExpiryKey::new(key.index(), token) == key
            && matches!(r.state, State::Held { expires_ns: e } | State::Confirming { expires_ns: e } if e == expires_ns)
    })
}
