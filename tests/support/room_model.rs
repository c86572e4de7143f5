//! A reference model of the WaitingRoom, and a harness that runs the real room and the model side
//! by side, comparing every answer and checking the rules after every step.
//!
//! The model is naive on purpose: vectors scanned in full, a token bucket in exact integer units
//! (one token = 10^9 units; refill `rate` units per nanosecond, capped at `burst` tokens), and an
//! event loop that always takes the earliest pending event. It shares nothing with the library's
//! data structures. Shared by `tests/room_model.rs`, `tests/room_state_machine.rs` and
//! `fuzz/fuzz_targets/room_ops.rs`.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use surgegate::room::prequeue_order;
use surgegate::{
    ClaimError, Entry, JoinError, ManualClock, PollError, RoomConfigError, TicketToken, VisitorId,
    WaitingRoom,
};

const UNIT: i128 = 1_000_000_000;
pub const CHECKIN_TIMEOUT_MS: u64 = 5_000;
pub const PASS_TTL_MS: u64 = 8_000;
pub const MAX_WAITING: u32 = 6;

#[derive(Clone, Debug)]
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
pub enum RoomOp {
    Join {
        visitor: u8,
    },
    /// `WaitingRoom::entry_of`: a lookup that never adds anyone.
    EntryOf {
        visitor: u8,
    },
    /// `ticket` picks one of the tokens issued so far (modulo their number).
    Poll {
        ticket: u16,
    },
    Finish {
        ticket: u16,
    },
    Claim {
        ticket: u16,
    },
    /// Like `Poll`/`Finish`, but naming the ticket by the model's id (the state-machine test
    /// generates ids of tickets that exist).
    PollId {
        id: u16,
    },
    FinishId {
        id: u16,
    },
    PollForged {
        bits: u128,
    },
    AdvanceMs {
        ms: u16,
    },
    SetRate {
        rate: u8,
    },
    SetBurst {
        burst: u8,
    },
    SetMaxActive {
        max: u8,
    },
    Pause,
    Resume,
    Close,
    Reopen,
    OpenAt {
        in_ms: u16,
        seed: u64,
    },
    Stats,
}

fn visitor_of(v: u8) -> VisitorId {
    VisitorId(u64::from(v % 9))
}
/// 0 sometimes (refused), else 1..=20 per second.
fn rate_of(r: u8) -> u32 {
    if r.is_multiple_of(16) {
        0
    } else {
        1 + u32::from(r) % 20
    }
}
fn burst_of(b: u8) -> u32 {
    if b.is_multiple_of(16) {
        0
    } else {
        1 + u32::from(b) % 4
    }
}
/// 0 sometimes (refused), u32::MAX (unlimited) sometimes, else 1..=3.
fn max_active_of(m: u8) -> u32 {
    match m % 8 {
        0 => 0,
        1 | 2 => u32::MAX,
        _ => 1 + u32::from(m) % 3,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MWaiter {
    pub id: usize,
    pub visitor: VisitorId,
    pub deadline: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MPass {
    pub id: usize,
    pub visitor: VisitorId,
    pub admitted: u64,
    /// When it lapses: `admitted + claim timeout` until claimed, then `admitted + ttl`.
    pub expires: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MEnded {
    Lapsed,
    Finished,
}

/// What the model says a join, poll or peek returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MEntry {
    Admitted(MPass),
    /// `position` is exact in line; a pre-queued ticket shows the last place it can draw.
    Waiting {
        id: usize,
        position: u64,
    },
}

#[derive(Clone, Debug)]
pub struct RoomModel {
    pub now: u64,
    pub rate: u32,
    pub burst: u32,
    /// Token bucket level in units (may go negative after the burst is lowered), as of `bucket_t`.
    pub bucket: i128,
    pub bucket_t: u64,
    pub max_active: u32,
    pub max_waiting: u32,
    pub timeout: u64,
    pub ttl: u64,
    /// The claim timeout (ns), if passes must be claimed.
    pub claim: Option<u64>,
    pub paused: bool,
    pub closed: bool,
    pub opening: Option<(u64, u64)>,
    pub last_seed: Option<u64>,
    pub line: Vec<MWaiter>,
    pub pre: Vec<MWaiter>,
    pub passes: Vec<MPass>,
    pub ended: HashMap<usize, MEnded>,
    pub admitted_total: u64,
    pub dropped_total: u64,
    pub left_total: u64,
    pub next_id: usize,
}

impl RoomModel {
    pub fn new(rate: u32, burst: u32, max_active: u32) -> Self {
        Self {
            now: 0,
            rate,
            burst,
            bucket: i128::from(burst) * UNIT,
            bucket_t: 0,
            max_active,
            max_waiting: MAX_WAITING,
            timeout: CHECKIN_TIMEOUT_MS * 1_000_000,
            ttl: PASS_TTL_MS * 1_000_000,
            claim: None,
            paused: false,
            closed: false,
            opening: None,
            last_seed: None,
            line: Vec::new(),
            pre: Vec::new(),
            passes: Vec::new(),
            ended: HashMap::new(),
            admitted_total: 0,
            dropped_total: 0,
            left_total: 0,
            next_id: 0,
        }
    }

    fn level_at(&self, t: u64) -> i128 {
        let refill = i128::from(self.rate) * i128::from(t - self.bucket_t);
        (self.bucket + refill).min(i128::from(self.burst) * UNIT)
    }

    fn refill(&mut self, t: u64) {
        self.bucket = self.level_at(t);
        self.bucket_t = t;
    }

    fn admission_time(&self) -> Option<u64> {
        if self.paused
            || self.opening.is_some()
            || self.line.is_empty()
            || self.passes.len() >= self.max_active as usize
        {
            return None;
        }
        let level = self.level_at(self.now);
        if level >= UNIT {
            return Some(self.now);
        }
        let missing = UNIT - level;
        let rate = i128::from(self.rate);
        Some(self.now + ((missing + rate - 1) / rate) as u64)
    }

    pub fn advance(&mut self, to: u64) {
        let to = to.max(self.now);
        loop {
            let lapse = self.line.iter().chain(&self.pre).map(|w| w.deadline).min();
            let expiry = self.passes.iter().map(|p| p.expires).min();
            let opening = self.opening.map(|(at, _)| at);
            let admission = self.admission_time();
            // At equal times: lapses, then pass expiries, then the opening, then admissions.
            let next = [(lapse, 0), (expiry, 1), (opening, 2), (admission, 3)]
                .into_iter()
                .filter_map(|(t, k)| t.map(|t| (t, k)))
                .min();
            let Some((t, kind)) = next else { break };
            if t > to {
                break;
            }
            self.now = self.now.max(t);
            match kind {
                0 => {
                    for list in [&mut self.line, &mut self.pre] {
                        if let Some(i) = list.iter().position(|w| w.deadline == t) {
                            let w = list.remove(i);
                            self.ended.insert(w.id, MEnded::Lapsed);
                            self.dropped_total += 1;
                            break;
                        }
                    }
                }
                1 => {
                    let i = self.passes.iter().position(|p| p.expires == t).unwrap();
                    let p = self.passes.remove(i);
                    self.ended.insert(p.id, MEnded::Lapsed);
                }
                2 => {
                    let (_, seed) = self.opening.take().unwrap();
                    let pre = std::mem::take(&mut self.pre);
                    for i in prequeue_order(pre.len(), seed).unwrap() {
                        self.line.push(pre[i]);
                    }
                    self.last_seed = Some(seed);
                }
                _ => {
                    self.refill(t);
                    self.bucket -= UNIT;
                    let w = self.line.remove(0);
                    self.passes.push(MPass {
                        id: w.id,
                        visitor: w.visitor,
                        admitted: t,
                        expires: t + self.claim.unwrap_or(self.ttl).min(self.ttl),
                    });
                    self.admitted_total += 1;
                }
            }
        }
        self.now = to;
    }

    fn waiting_entry(&self, id: usize) -> Option<MEntry> {
        if let Some(i) = self.line.iter().position(|w| w.id == id) {
            return Some(MEntry::Waiting {
                id,
                position: i as u64 + 1,
            });
        }
        if self.pre.iter().any(|w| w.id == id) {
            return Some(MEntry::Waiting {
                id,
                position: (self.line.len() + self.pre.len()) as u64,
            });
        }
        None
    }

    fn check_in(&mut self, id: usize) {
        let deadline = self.now + self.timeout;
        for w in self.line.iter_mut().chain(self.pre.iter_mut()) {
            if w.id == id {
                w.deadline = deadline;
            }
        }
    }

    fn ended_error(&self, id: usize) -> PollError {
        match self.ended.get(&id) {
            Some(MEnded::Lapsed) => PollError::Expired,
            _ => PollError::UnknownToken,
        }
    }

    /// The pass or ticket of a visitor in the room, checking a waiting one in.
    pub fn entry_of(&mut self, visitor: VisitorId) -> Option<MEntry> {
        if let Some(p) = self.passes.iter().find(|p| p.visitor == visitor) {
            return Some(MEntry::Admitted(*p));
        }
        let w = self
            .line
            .iter()
            .chain(&self.pre)
            .find(|w| w.visitor == visitor)
            .copied()?;
        self.check_in(w.id);
        self.waiting_entry(w.id)
    }

    pub fn join(&mut self, visitor: VisitorId) -> Result<MEntry, JoinError> {
        if let Some(entry) = self.entry_of(visitor) {
            return Ok(entry);
        }
        if self.closed {
            return Err(JoinError::Closed);
        }
        if self.line.len() + self.pre.len() >= self.max_waiting as usize {
            return Err(JoinError::Full {
                retry_after: Duration::ZERO,
            });
        }
        let w = MWaiter {
            id: self.next_id,
            visitor,
            deadline: self.now + self.timeout,
        };
        self.next_id += 1;
        if self.opening.is_some() {
            self.pre.push(w);
        } else {
            self.line.push(w);
            let now = self.now;
            self.advance(now);
        }
        Ok(self.peek(w.id).unwrap())
    }

    pub fn peek(&self, id: usize) -> Result<MEntry, PollError> {
        if let Some(p) = self.passes.iter().find(|p| p.id == id) {
            return Ok(MEntry::Admitted(*p));
        }
        self.waiting_entry(id).ok_or_else(|| self.ended_error(id))
    }

    pub fn poll(&mut self, id: usize) -> Result<MEntry, PollError> {
        let entry = self.peek(id)?;
        self.check_in(id);
        Ok(entry)
    }

    pub fn claim(&mut self, id: usize) -> Result<MPass, ClaimError> {
        let ttl = self.ttl;
        if let Some(p) = self.passes.iter_mut().find(|p| p.id == id) {
            p.expires = p.admitted + ttl;
            return Ok(*p);
        }
        if self.waiting_entry(id).is_some() {
            return Err(ClaimError::NotAdmitted);
        }
        Err(match self.ended.get(&id) {
            Some(MEnded::Lapsed) => ClaimError::Expired,
            _ => ClaimError::UnknownToken,
        })
    }

    pub fn finish(&mut self, id: usize) -> Result<(), PollError> {
        if let Some(i) = self.passes.iter().position(|p| p.id == id) {
            self.passes.remove(i);
            self.ended.insert(id, MEnded::Finished);
            let now = self.now;
            self.advance(now);
            return Ok(());
        }
        for list in [&mut self.line, &mut self.pre] {
            if let Some(i) = list.iter().position(|w| w.id == id) {
                list.remove(i);
                self.ended.insert(id, MEnded::Finished);
                self.left_total += 1;
                return Ok(());
            }
        }
        Err(self.ended_error(id))
    }

    pub fn set_rate(&mut self, rate: u32) -> Result<(), RoomConfigError> {
        if rate == 0 {
            return Err(RoomConfigError::Rate(0));
        }
        let now = self.now;
        self.refill(now);
        self.rate = rate;
        self.advance(now);
        Ok(())
    }

    pub fn set_burst(&mut self, burst: u32) -> Result<(), RoomConfigError> {
        if burst == 0 {
            return Err(RoomConfigError::Burst(0));
        }
        let now = self.now;
        self.refill(now);
        // The schedule keeps its debt: raising the burst adds tokens, lowering removes them.
        self.bucket += (i128::from(burst) - i128::from(self.burst)) * UNIT;
        self.burst = burst;
        self.advance(now);
        Ok(())
    }

    /// Applies an op for its effect only (the state-machine test's reference transition). Ops
    /// that name tickets by position in the harness's token list are not modelled here.
    pub fn apply(&mut self, op: &RoomOp) {
        let now = self.now;
        match *op {
            RoomOp::Join { visitor } => {
                let _ = self.join(visitor_of(visitor));
            }
            RoomOp::EntryOf { visitor } => {
                let _ = self.entry_of(visitor_of(visitor));
            }
            RoomOp::PollId { id } => {
                let _ = self.poll(usize::from(id));
            }
            RoomOp::FinishId { id } => {
                let _ = self.finish(usize::from(id));
            }
            RoomOp::AdvanceMs { ms } => self.advance(now + u64::from(ms % 3000) * 1_000_000),
            RoomOp::SetRate { rate } => {
                let _ = self.set_rate(rate_of(rate));
            }
            RoomOp::SetBurst { burst } => {
                let _ = self.set_burst(burst_of(burst));
            }
            RoomOp::SetMaxActive { max } => {
                let _ = self.set_max_active(max_active_of(max));
            }
            RoomOp::Pause => {
                self.advance(now);
                self.paused = true;
            }
            RoomOp::Resume => {
                self.paused = false;
                self.advance(now);
            }
            RoomOp::Close => self.closed = true,
            RoomOp::Reopen => self.closed = false,
            RoomOp::OpenAt { in_ms, seed } => {
                self.opening = Some((now + u64::from(in_ms % 4000) * 1_000_000, seed));
                self.advance(now);
            }
            RoomOp::Poll { .. } | RoomOp::Finish { .. } | RoomOp::Claim { .. } => {
                unreachable!("position-based ops are not generated by the state machine")
            }
            RoomOp::PollForged { .. } | RoomOp::Stats => {}
        }
    }

    pub fn set_max_active(&mut self, max: u32) -> Result<(), RoomConfigError> {
        if max == 0 {
            return Err(RoomConfigError::MaxActive(0));
        }
        self.max_active = max;
        let now = self.now;
        self.advance(now);
        Ok(())
    }
}

/// An ETA promise: the ticket `id`, observed at `at` with `eta`, in a room limited by rate alone,
/// under configuration epoch `epoch`.
#[derive(Clone, Copy, Debug)]
struct Promise {
    at: u64,
    eta: Duration,
    epoch: u64,
}

/// The real room and the model, side by side.
pub struct RoomHarness {
    pub clock: ManualClock,
    pub room: WaitingRoom<ManualClock>,
    pub model: RoomModel,
    pub tokens: Vec<(TicketToken, usize)>,
    pub by_token: HashMap<TicketToken, usize>,
    /// Every admission the harness has seen: `(admitted_at_ns, id)`.
    pub admissions: BTreeMap<usize, u64>,
    /// `(time, rate)` and `(time, burst)` from the start.
    rates: Vec<(u64, u32)>,
    bursts: Vec<(u64, u32)>,
    promises: HashMap<usize, Promise>,
    /// Tokens the room and the model both reported ended: they never come back, so they are
    /// checked once more when an op names them, not after every step.
    dead: std::collections::HashSet<usize>,
    epoch: u64,
    /// The claim timeout the room runs with, and the tickets whose pass a claim succeeded for.
    claim_ms: Option<u64>,
    claimed: std::collections::HashSet<usize>,
    pub steps: usize,
    pub outcomes: BTreeMap<String, usize>,
    /// Run the whole check (`check`) after every this many steps, and after the others only
    /// the room's counts and settings against the model's (`check_stats`). 1 (the default):
    /// the whole check every step. The fuzz target raises it, for speed, and runs `check` once
    /// more at the end.
    pub full_check_every: usize,
    /// Count outcomes in `outcomes` (off in the fuzz target: a string per step).
    pub record_outcomes: bool,
}

impl RoomHarness {
    pub fn new(rate: u32, burst: u32, max_active: u32) -> Self {
        Self::with_claims(rate, burst, max_active, None)
    }

    /// With `claim_ms`, passes must be claimed within that many milliseconds (at most
    /// `PASS_TTL_MS`).
    pub fn with_claims(rate: u32, burst: u32, max_active: u32, claim_ms: Option<u64>) -> Self {
        let clock = ManualClock::new();
        let mut builder = WaitingRoom::builder()
            .rate_per_second(rate)
            .burst(burst)
            .max_active(max_active)
            .max_waiting(MAX_WAITING)
            .checkin_timeout(Duration::from_millis(CHECKIN_TIMEOUT_MS))
            .pass_ttl(Duration::from_millis(PASS_TTL_MS))
            .ended_memory(1 << 20)
            .clock(clock.clone());
        let mut model = RoomModel::new(rate, burst, max_active);
        if let Some(ms) = claim_ms {
            builder = builder.claim_timeout(Duration::from_millis(ms));
            model.claim = Some(ms * 1_000_000);
        }
        Self {
            clock,
            room: builder.build(),
            model,
            tokens: Vec::new(),
            by_token: HashMap::new(),
            admissions: BTreeMap::new(),
            rates: vec![(0, rate)],
            bursts: vec![(0, burst)],
            promises: HashMap::new(),
            dead: std::collections::HashSet::new(),
            epoch: 0,
            claim_ms,
            claimed: std::collections::HashSet::new(),
            steps: 0,
            outcomes: BTreeMap::new(),
            full_check_every: 1,
            record_outcomes: true,
        }
    }

    fn note(&mut self, what: &str, outcome: impl std::fmt::Debug) {
        if !self.record_outcomes {
            return;
        }
        let o = format!("{outcome:?}");
        let kind = o.split(['(', ' ', '{']).next().unwrap_or("").to_string();
        *self.outcomes.entry(format!("{what}:{kind}")).or_default() += 1;
    }

    fn pick(&self, i: u16) -> Option<(TicketToken, usize)> {
        let n = self.tokens.len();
        if n == 0 {
            return None;
        }
        let i = usize::from(i);
        let k = if i % 2 == 0 {
            n - 1 - (i / 2) % n.min(4)
        } else {
            (i / 2) % n
        };
        Some(self.tokens[k])
    }

    /// Checks a real entry against the model's, learning new tokens on the way.
    fn same_entry(&mut self, real: &Entry, model: &MEntry) -> Result<(), String> {
        let (token, id) = match (real, model) {
            (Entry::Admitted(p), MEntry::Admitted(m)) => {
                let expected = (m.visitor, Duration::from_nanos(m.expires));
                if (p.visitor, p.expires_at) != expected {
                    return Err(format!("pass differs: room {p:?}, model {m:?}"));
                }
                (p.token, m.id)
            }
            (Entry::Waiting(t), MEntry::Waiting { id, position }) => {
                if t.position != *position {
                    return Err(format!("position differs: room {t:?}, model {position}"));
                }
                (t.token, *id)
            }
            _ => return Err(format!("entry differs: room {real:?}, model {model:?}")),
        };
        match self.by_token.get(&token) {
            Some(&known) if known != id => {
                return Err(format!("token of #{known} returned for #{id}"));
            }
            Some(_) => {}
            None => {
                if self.tokens.iter().any(|&(_, i)| i == id) {
                    return Err(format!("a second token for #{id}"));
                }
                self.tokens.push((token, id));
                self.by_token.insert(token, id);
            }
        }
        Ok(())
    }

    fn compare(
        &mut self,
        what: String,
        real: Result<Entry, PollError>,
        model: Result<MEntry, PollError>,
    ) -> Result<(), String> {
        match (&real, &model) {
            (Ok(r), Ok(m)) => self.same_entry(r, m).map_err(|e| format!("{what}: {e}")),
            (Err(r), Err(m)) if r == m => Ok(()),
            _ => Err(format!("{what}: room {real:?}, model {model:?}")),
        }
    }

    fn config_changed(&mut self) {
        self.epoch += 1;
    }

    /// Polls ticket `id` in the room and in the model, and compares the answers.
    fn poll_both(&mut self, token: TicketToken, id: usize) -> Result<(), String> {
        let real = self.room.poll(token);
        self.note("poll", real);
        let model = self.model.poll(id);
        self.compare(format!("poll(#{id})"), real, model)
    }

    /// Finishes ticket `id` in the room and in the model, and compares the answers.
    fn finish_both(&mut self, token: TicketToken, id: usize) -> Result<(), String> {
        let real = self.room.finish(token);
        self.note("finish", real);
        let model = self.model.finish(id);
        if real != model {
            return Err(format!("finish(#{id}): room {real:?}, model {model:?}"));
        }
        Ok(())
    }

    pub fn step(&mut self, op: &RoomOp) -> Result<(), String> {
        self.steps += 1;
        match *op {
            RoomOp::Join { visitor } => {
                let v = visitor_of(visitor);
                let real = self.room.join(v);
                self.note("join", real);
                let model = self.model.join(v);
                match (&real, &model) {
                    (Ok(r), Ok(m)) => self
                        .same_entry(r, m)
                        .map_err(|e| format!("join({v:?}): {e}"))?,
                    (Err(JoinError::Full { retry_after }), Err(JoinError::Full { .. })) => {
                        if retry_after.is_zero() {
                            return Err("Full with a zero retry_after".into());
                        }
                    }
                    (Err(r), Err(m)) if r == m => {}
                    _ => return Err(format!("join({v:?}): room {real:?}, model {model:?}")),
                }
            }
            RoomOp::EntryOf { visitor } => {
                let v = visitor_of(visitor);
                let real = self.room.entry_of(v);
                let model = self.model.entry_of(v);
                match (&real, &model) {
                    (Some(r), Some(m)) => self
                        .same_entry(r, m)
                        .map_err(|e| format!("entry_of({v:?}): {e}"))?,
                    (None, None) => {}
                    _ => return Err(format!("entry_of({v:?}): room {real:?}, model {model:?}")),
                }
            }
            RoomOp::Poll { ticket } => {
                let Some((token, id)) = self.pick(ticket) else {
                    return Ok(());
                };
                self.poll_both(token, id)?;
            }
            RoomOp::Finish { ticket } => {
                let Some((token, id)) = self.pick(ticket) else {
                    return Ok(());
                };
                self.finish_both(token, id)?;
            }
            RoomOp::Claim { ticket } => {
                let Some((token, id)) = self.pick(ticket) else {
                    return Ok(());
                };
                let real = self.room.claim(token);
                self.note("claim", real);
                if real.is_ok() {
                    self.claimed.insert(id);
                }
                let model = self.model.claim(id);
                match (&real, &model) {
                    (Ok(r), Ok(m)) => self
                        .same_entry(&Entry::Admitted(*r), &MEntry::Admitted(*m))
                        .map_err(|e| format!("claim(#{id}): {e}"))?,
                    (Err(r), Err(m)) if r == m => {}
                    _ => return Err(format!("claim(#{id}): room {real:?}, model {model:?}")),
                }
            }
            RoomOp::PollId { id } | RoomOp::FinishId { id } => {
                let id = usize::from(id);
                if let Some(&(token, _)) = self.tokens.iter().find(|&&(_, i)| i == id) {
                    if matches!(op, RoomOp::PollId { .. }) {
                        self.poll_both(token, id)?;
                    } else {
                        self.finish_both(token, id)?;
                    }
                }
            }
            RoomOp::PollForged { bits } => {
                let token = TicketToken::from_u128(bits);
                if !self.by_token.contains_key(&token)
                    && self.room.poll(token) != Err(PollError::UnknownToken)
                {
                    return Err("a forged token was accepted".into());
                }
            }
            RoomOp::AdvanceMs { ms } => {
                let by = Duration::from_millis(u64::from(ms % 3000));
                self.clock.advance(by);
                let to = self.model.now + by.as_nanos() as u64;
                self.model.advance(to);
            }
            RoomOp::SetRate { rate } => {
                let r = rate_of(rate);
                let real = self.room.set_rate_per_second(r);
                let model = self.model.set_rate(r);
                if real != model {
                    return Err(format!("set_rate({r}): room {real:?}, model {model:?}"));
                }
                if real.is_ok() {
                    self.rates.push((self.model.now, r));
                    self.config_changed();
                }
            }
            RoomOp::SetBurst { burst } => {
                let b = burst_of(burst);
                let real = self.room.set_burst(b);
                let model = self.model.set_burst(b);
                if real != model {
                    return Err(format!("set_burst({b}): room {real:?}, model {model:?}"));
                }
                if real.is_ok() {
                    self.bursts.push((self.model.now, b));
                    self.config_changed();
                }
            }
            RoomOp::SetMaxActive { max } => {
                let m = max_active_of(max);
                let real = self.room.set_max_active(m);
                let model = self.model.set_max_active(m);
                if real != model {
                    return Err(format!(
                        "set_max_active({m}): room {real:?}, model {model:?}"
                    ));
                }
                self.config_changed();
            }
            RoomOp::Pause => {
                self.room.pause();
                self.model.apply(op);
                self.config_changed();
            }
            RoomOp::Resume => {
                self.room.resume();
                self.model.apply(op);
            }
            RoomOp::Close => {
                self.room.close();
                self.model.apply(op);
            }
            RoomOp::Reopen => {
                self.room.reopen();
                self.model.apply(op);
            }
            RoomOp::OpenAt { in_ms, seed } => {
                let at = self.model.now + u64::from(in_ms % 4000) * 1_000_000;
                self.room.open_at(Duration::from_nanos(at), seed);
                self.model.apply(op);
                self.config_changed();
            }
            RoomOp::Stats => {}
        }
        if self.steps.is_multiple_of(self.full_check_every.max(1)) {
            self.check()
        } else {
            self.check_stats()
        }
    }

    /// The rules, after every step: the room's own invariant check; stats equal to the model's;
    /// every known ticket equal to the model's (positions exactly 1..=waiting, FIFO, the same
    /// passes); admissions within burst + rate × T; ETAs nondecreasing in position and, in a room
    /// limited by rate alone, kept.
    pub fn check(&mut self) -> Result<(), String> {
        self.room.check_invariants().map_err(|e| e.to_string())?;
        self.check_stats()?;
        let s = self.room.stats();
        let now = self.model.now;
        let mut etas: Vec<(u64, Duration)> = Vec::new();
        let mut positions: Vec<u64> = Vec::new();
        for (token, id) in self.tokens.clone() {
            if self.dead.contains(&id) {
                continue;
            }
            let real = self.room.peek(token);
            let model = self.model.peek(id);
            self.compare(format!("peek(#{id})"), real, model)?;
            match real {
                Ok(Entry::Admitted(p)) => {
                    // A pass lasts `pass_ttl` from its admission, or, under claims and still
                    // unclaimed, the claim timeout.
                    let lasts_ns = match self.claim_ms {
                        Some(ms) if !self.claimed.contains(&id) => ms * 1_000_000,
                        _ => PASS_TTL_MS * 1_000_000,
                    };
                    let admitted = p.expires_at.as_nanos() as u64 - lasts_ns;
                    self.admissions.entry(id).or_insert(admitted);
                    if let Some(promise) = self.promises.remove(&id)
                        && promise.epoch == self.epoch
                    {
                        let deadline =
                            promise.at + (promise.eta + Duration::from_secs(1)).as_nanos() as u64;
                        if admitted > deadline {
                            return Err(format!(
                                "#{id} admitted at {admitted}, after its ETA promise {promise:?}"
                            ));
                        }
                    }
                }
                Ok(Entry::Waiting(t)) => {
                    etas.push((t.position, t.eta));
                    if self.model.line.iter().any(|w| w.id == id) {
                        positions.push(t.position);
                    }
                    let rate_only = s.max_active == u32::MAX && !s.paused && s.opens_at.is_none();
                    if rate_only {
                        self.promises.entry(id).or_insert(Promise {
                            at: now,
                            eta: t.eta,
                            epoch: self.epoch,
                        });
                    }
                }
                Err(_) => {
                    self.promises.remove(&id);
                    self.dead.insert(id);
                }
            }
        }
        positions.sort_unstable();
        if positions != (1..=s.waiting).collect::<Vec<_>>() {
            return Err(format!("positions {positions:?} are not 1..={}", s.waiting));
        }
        etas.sort();
        if etas.windows(2).any(|w| w[0].1 > w[1].1) {
            return Err(format!("ETA decreases with position: {etas:?}"));
        }
        self.check_rate_bound()
    }

    /// The room's counts (waiting, pre-queued, active, admitted, dropped, left) and settings
    /// equal to the model's. Admissions are counted after every step, so an admission at the
    /// wrong moment shows here at the step it happens in.
    pub fn check_stats(&self) -> Result<(), String> {
        let s = self.room.stats();
        let m = &self.model;
        let real = (
            s.waiting,
            s.prequeued,
            s.active,
            s.admitted_total,
            s.dropped_total,
            s.left_total,
        );
        let model = (
            m.line.len() as u64,
            m.pre.len() as u64,
            m.passes.len() as u64,
            m.admitted_total,
            m.dropped_total,
            m.left_total,
        );
        if real != model {
            return Err(format!(
                "stats (waiting, prequeued, active, admitted, dropped, left): room {real:?}, model {model:?}"
            ));
        }
        let settings = (
            s.rate_per_second,
            s.burst,
            s.max_active,
            s.paused,
            s.closed,
            s.opens_at,
            s.prequeue_seed,
        );
        let expected = (
            m.rate,
            m.burst,
            m.max_active,
            m.paused,
            m.closed,
            m.opening.map(|(at, _)| Duration::from_nanos(at)),
            m.opening.map(|(_, s)| s).or(m.last_seed),
        );
        if settings != expected {
            return Err(format!("settings: room {settings:?}, model {expected:?}"));
        }
        Ok(())
    }

    /// For every pair of admissions `i <= j`: `j - i + 1 <= b_j + integral of the rate over
    /// [t_i, t_j]`, where `b_j` is the burst in effect at admission `j` (the larger one if it
    /// changed at that very instant). This is what a GCRA guarantees under changing settings: the
    /// debt after admission `j` is at most `b_j` admissions, and it fell by at most the integral.
    ///
    /// With `f(k) = k * 1e9 - R(t_k)`, `R` the integral of the rate since 0, the condition is
    /// `f(j) - min over i <= j of f(i) <= (b_j - 1) * 1e9`: one pass checks every pair exactly.
    fn check_rate_bound(&self) -> Result<(), String> {
        let mut times: Vec<u64> = self.admissions.values().copied().collect();
        times.sort_unstable();
        let integral_to = |t: u64| -> i128 {
            let mut sum = 0i128;
            for (k, &(from, r)) in self.rates.iter().enumerate() {
                let until = self
                    .rates
                    .get(k + 1)
                    .map_or(u64::MAX, |&(next, _)| next)
                    .min(t);
                if until > from {
                    sum += i128::from(r) * i128::from(until - from);
                }
            }
            sum
        };
        let burst_at = |t: u64| -> i128 {
            self.bursts
                .iter()
                .enumerate()
                .filter(|&(k, &(from, _))| {
                    from <= t && self.bursts.get(k + 1).is_none_or(|&(next, _)| next >= t)
                })
                .map(|(_, &(_, b))| i128::from(b))
                .max()
                .unwrap_or(0)
        };
        let mut lowest = i128::MAX;
        for (k, &t) in times.iter().enumerate() {
            let f = k as i128 * UNIT - integral_to(t);
            lowest = lowest.min(f);
            if f - lowest > (burst_at(t) - 1) * UNIT {
                return Err(format!(
                    "admission {k} at {t} ns breaks burst + rate x window: {times:?}"
                ));
            }
        }
        Ok(())
    }
}
