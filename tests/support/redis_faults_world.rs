//! The world of the proxy fault tests: a real primary with a real replica (so `WAIT 1` is
//! answered), a fault proxy in front of the primary, books and rooms that go through the proxy
//! and ones that go straight to the primary (to check the rules), and the random steps with
//! the rules checked after each one.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::fault_proxy::{Fault, Proxy};
use super::redis_single::Single;
use surgegate::redis::{RedisSlotBook, RedisWaitingRoom};
use surgegate::{
    ApplicantId, Booking, BranchId, Channel, ConfirmError, Entry, HoldToken, JoinError, PollError,
    Preference, ReleaseError, ReserveError, SlotState, TicketToken, VisitorId,
};

/// The branches the book steps use, three slots each.
pub const BRANCHES: [BranchId; 2] = [BranchId(1), BranchId(2)];
const SLOTS: u32 = 3;
const CAPACITY: u32 = 2;
/// The channel the book steps reserve on; slot 0 of each branch keeps one unit for it.
const COUNTER: Channel = Channel(1);
const APPLICANTS: u64 = 5;
/// A hold ttl whose text (`61234`) names the reserve script's request to the proxy.
const HOLD_TTL_MS: u64 = 61_234;

/// A small deterministic generator (xorshift), so a failing sequence can be run again.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

pub struct World {
    pub primary: Single,
    /// Kept for its lifetime: the replica that answers the primary's `WAIT`.
    _replica: Single,
    pub proxy: Proxy,
}

impl World {
    /// A primary, its replica (linked), and the proxy in front of the primary; `None` when
    /// Redis is missing outside CI.
    pub fn start() -> Option<World> {
        let primary = Single::start()?;
        let replica = Single::start()?;
        let linked = replica.cli(&["replicaof", "127.0.0.1", &primary.port.to_string()]);
        assert!(linked.contains("OK"), "{linked}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !(primary
            .cli(&["info", "replication"])
            .contains("connected_slaves:1")
            && replica
                .cli(&["info", "replication"])
                .contains("master_link_status:up"))
        {
            assert!(Instant::now() < deadline, "the replica did not link up");
            std::thread::sleep(Duration::from_millis(50));
        }
        let proxy = Proxy::start(([127, 0, 0, 1], primary.port).into());
        Some(World {
            primary,
            _replica: replica,
            proxy,
        })
    }

    /// The reserve script's hold-ttl argument as it travels (one bulk string).
    pub fn ttl_arg() -> String {
        format!("\r\n{HOLD_TTL_MS}\r\n")
    }

    /// A book through the proxy (400 ms per call, `WAIT 1` for 300 ms) and one straight to the
    /// primary, under one namespace.
    pub async fn books(&self, namespace: &str, limit: u32) -> (RedisSlotBook, RedisSlotBook) {
        let builder = RedisSlotBook::builder()
            .hold_ttl(Duration::from_millis(HOLD_TTL_MS))
            .max_active_per_applicant(limit)
            .namespace(namespace);
        let through = builder
            .clone()
            .timeout(Duration::from_millis(400))
            .wait_for_replicas(1, Duration::from_millis(300))
            .connect(&[self.proxy.url().as_str()])
            .await
            .expect("a book through the proxy");
        let direct = builder
            .wait_for_replicas(0, Duration::from_millis(1))
            .connect(&[self.primary.url().as_str()])
            .await
            .expect("a book on the primary");
        (through, direct)
    }

    /// A room through the proxy and one straight to the primary: `rate`/s, burst 2.
    async fn rooms(&self, namespace: &str, rate: u32) -> (RedisWaitingRoom, RedisWaitingRoom) {
        let builder = RedisWaitingRoom::builder()
            .rate_per_second(rate)
            .burst(2)
            .checkin_timeout(Duration::from_secs(60))
            .pass_ttl(Duration::from_secs(60))
            .namespace(namespace);
        let direct = builder
            .clone()
            .connect(&[self.primary.url().as_str()])
            .await
            .expect("a room on the primary");
        let through = builder
            .timeout(Duration::from_millis(400))
            .connect(&[self.proxy.url().as_str()])
            .await
            .expect("a room through the proxy");
        (through, direct)
    }
}

/// What the random book steps were told: the tokens seen, the confirmations and
/// cancellations acknowledged.
pub struct Ledger {
    through: RedisSlotBook,
    direct: RedisSlotBook,
    limit: u32,
    tokens: Vec<HoldToken>,
    booked: HashMap<HoldToken, Booking>,
    cancelled: HashSet<HoldToken>,
}

impl Ledger {
    /// Opens every slot of the branches with `CAPACITY` units, one of slot 0's kept for
    /// `COUNTER`.
    pub async fn new(through: RedisSlotBook, direct: RedisSlotBook, limit: u32) -> Ledger {
        for b in BRANCHES {
            for slot in 0..SLOTS {
                direct.set_capacity(b, slot, CAPACITY).await.unwrap();
            }
            direct.set_channel_quota(b, 0, COUNTER, 1).await.unwrap();
        }
        Ledger {
            through,
            direct,
            limit,
            tokens: Vec::new(),
            booked: HashMap::new(),
            cancelled: HashSet::new(),
        }
    }

    fn some_token(&self, rng: &mut Rng) -> Option<HoldToken> {
        (!self.tokens.is_empty()).then(|| self.tokens[rng.below(self.tokens.len() as u64) as usize])
    }

    /// One random call through the proxy; any error the rules allow under a fault is accepted.
    pub async fn step(&mut self, rng: &mut Rng, at: &str) {
        let a = ApplicantId(rng.below(APPLICANTS));
        let b = BRANCHES[rng.below(2) as usize];
        let book = &self.through;
        let reserved = match rng.below(7) {
            0 => book.reserve(b, rng.below(u64::from(SLOTS)) as u32, a).await,
            6 => {
                let slot = rng.below(u64::from(SLOTS)) as u32;
                book.reserve_on(COUNTER, b, slot, a).await
            }
            1 => book.reserve_earliest(b, 0..SLOTS, a).await,
            2 => {
                let prefer =
                    [Preference::FirstBranch, Preference::EarliestSlot][rng.below(2) as usize];
                book.reserve_among(&BRANCHES, 0..SLOTS, a, prefer).await
            }
            3 => return self.confirm(rng, at).await,
            _ => return self.release(rng, at).await,
        };
        match reserved {
            Ok(hold) => self.tokens.push(hold.token),
            Err(
                ReserveError::Full
                | ReserveError::NoneAvailable
                | ReserveError::ApplicantLimit
                | ReserveError::Backend(_),
            ) => {}
            Err(e) => panic!("{at}: reserve: {e}"),
        }
    }

    async fn confirm(&mut self, rng: &mut Rng, at: &str) {
        let Some(t) = self.some_token(rng) else {
            return;
        };
        match self.through.confirm(t).await {
            Ok(booking) => {
                self.booked.insert(t, booking);
            }
            Err(ConfirmError::UnknownToken | ConfirmError::Expired | ConfirmError::Backend(_)) => {}
            Err(e) => panic!("{at}: confirm: {e}"),
        }
    }

    async fn release(&mut self, rng: &mut Rng, at: &str) {
        let Some(t) = self.some_token(rng) else {
            return;
        };
        // Whatever it answers, an acknowledged booking of this token is no longer promised.
        self.booked.remove(&t);
        match self.through.release(t).await {
            Ok(()) => {
                self.cancelled.insert(t);
            }
            Err(ReleaseError::UnknownToken | ReleaseError::Backend(_)) => {}
            Err(e) => panic!("{at}: release: {e}"),
        }
    }

    /// The rules, read straight from the primary.
    pub async fn check(&mut self, at: &str) {
        let d = &self.direct;
        let mut held: HashMap<(BranchId, u32), u32> = HashMap::new();
        let mut booked: HashMap<(BranchId, u32), u32> = HashMap::new();
        for a in 0..APPLICANTS {
            let holds = d.holds_of(ApplicantId(a)).await.unwrap();
            let bookings = d.bookings_of(ApplicantId(a)).await.unwrap();
            let active = holds.len() + bookings.len();
            assert!(
                active <= self.limit as usize,
                "{at}: applicant {a} has {active} live holds and bookings, over its limit"
            );
            for h in &holds {
                *held.entry((h.branch, h.slot)).or_default() += 1;
                if !self.tokens.contains(&h.token) {
                    self.tokens.push(h.token);
                }
            }
            for k in &bookings {
                *booked.entry((k.branch, k.slot)).or_default() += 1;
            }
        }
        for b in BRANCHES {
            for slot in 0..SLOTS {
                let s = d.slot(b, slot).await.unwrap().expect("an open slot");
                assert!(
                    s.held + s.booked <= s.capacity,
                    "{at}: {b:?} {slot} overbooked: {s:?}"
                );
                channel_bounds(&s, d.channel_quotas(b, slot).await.unwrap(), at);
                let counted = (
                    held.get(&(b, slot)).copied().unwrap_or(0),
                    booked.get(&(b, slot)).copied().unwrap_or(0),
                );
                assert_eq!(
                    (s.held, s.booked),
                    counted,
                    "{at}: {b:?} {slot}: units held or booked that no applicant's count covers"
                );
            }
        }
        for (t, booking) in &self.booked {
            assert_eq!(
                d.booking(*t).await.unwrap().as_ref(),
                Some(booking),
                "{at}: an acknowledged confirmation was lost"
            );
        }
        for t in &self.cancelled {
            assert_eq!(
                d.booking(*t).await.unwrap(),
                None,
                "{at}: a cancelled booking is back"
            );
            assert_eq!(
                d.hold(*t).await.unwrap(),
                None,
                "{at}: a released hold is back"
            );
        }
    }

    /// After the faults healed: everything released, then every applicant reserves up to its
    /// limit (once no reservation can be in progress under an old count: 2 s).
    pub async fn nobody_locked_out(&mut self) {
        let d = &self.direct;
        for a in 0..APPLICANTS {
            let a = ApplicantId(a);
            let holds = d.holds_of(a).await.unwrap().into_iter().map(|h| h.token);
            let bookings = d.bookings_of(a).await.unwrap().into_iter().map(|k| k.token);
            for t in holds.chain(bookings).collect::<Vec<_>>() {
                d.release(t).await.unwrap();
                self.booked.remove(&t);
                self.cancelled.insert(t);
            }
        }
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        for a in 0..APPLICANTS {
            for i in 0..self.limit as usize {
                let branch = BRANCHES[i % BRANCHES.len()];
                let hold = self
                    .through
                    .reserve_earliest(branch, 0..SLOTS, ApplicantId(a))
                    .await
                    .unwrap_or_else(|e| panic!("applicant {a} locked out after the faults: {e}"));
                assert!(
                    !self.tokens.contains(&hold.token),
                    "applicant {a}: an old hold"
                );
            }
        }
        self.check("after the faults").await;
    }
}

/// The room's rules, read straight from the primary: among the visitors whose joins were
/// acknowledged (in that order, which is the server's order: each was acknowledged before the
/// next was sent), the waiting ones stand in increasing positions and nobody is admitted while
/// one before them waits; admissions stay within the burst plus the rate over the time elapsed.
/// The channel rules of one slot: the plain capacity is the whole capacity less the unused
/// quota, each channel within its quota plus the open part, the channels' units among the
/// slot's.
fn channel_bounds(s: &SlotState, quotas: Option<surgegate::SlotQuotas>, at: &str) {
    let Some(q) = quotas else {
        return;
    };
    let kept: u32 = q.channels.iter().map(|c| c.quota).sum();
    let unused: u32 = q
        .channels
        .iter()
        .map(|c| c.quota.saturating_sub(c.from_quota))
        .sum();
    assert_eq!(s.capacity, q.capacity - unused, "{at}: {s:?} {q:?}");
    let taken: u32 = q.channels.iter().map(|c| c.taken).sum();
    assert!(taken <= s.held + s.booked, "{at}: {s:?} {q:?}");
    for c in &q.channels {
        assert!(c.from_quota <= c.quota.min(c.taken), "{at}: {c:?}");
        assert!(
            c.taken <= c.quota + q.capacity - kept,
            "{at}: {c:?} of {q:?}"
        );
    }
}

async fn check_room(
    direct: &RedisWaitingRoom,
    acked: &[VisitorId],
    started: Instant,
    rate: u32,
    at: &str,
) -> usize {
    // Each entry is read on its own, and admissions go on meanwhile: a reading is judged only
    // if no visitor left the line while it was taken.
    for _ in 0..20 {
        let moved = |s: surgegate::RoomStats| s.admitted_total + s.dropped_total + s.left_total;
        let before = moved(direct.stats().await.unwrap());
        let reading = read_room(direct, acked, started, rate, at).await;
        if moved(direct.stats().await.unwrap()) == before {
            return reading.unwrap_or_else(|e| panic!("{e}"));
        }
    }
    panic!("{at}: the line moved during every reading");
}

/// One reading of the room's rules: the visitors still waiting, or the rule broken.
async fn read_room(
    direct: &RedisWaitingRoom,
    acked: &[VisitorId],
    started: Instant,
    rate: u32,
    at: &str,
) -> Result<usize, String> {
    let stats = direct.stats().await.unwrap();
    let allowed = 2 + (f64::from(rate) * started.elapsed().as_secs_f64()).ceil() as u64;
    assert!(
        stats.admitted_total <= allowed,
        "{at}: {} admitted, the rate allows {allowed}",
        stats.admitted_total
    );
    let mut last_position = 0;
    let mut waiting = 0;
    for v in acked {
        match direct.entry_of(*v).await.unwrap() {
            Some(Entry::Waiting(t)) => {
                if t.position <= last_position {
                    return Err(format!("{at}: {v:?} out of order"));
                }
                last_position = t.position;
                waiting += 1;
            }
            Some(Entry::Admitted(_)) if waiting > 0 => {
                return Err(format!("{at}: {v:?} admitted while one before it waits"));
            }
            _ => {}
        }
    }
    Ok(waiting)
}

/// Random joins and polls through the proxy under every fault in turn, the room's rules after
/// each step; then every waiting visitor is admitted.
pub async fn room_steps(world: &World, seed: u64) {
    let rate = 5;
    let started = Instant::now();
    let (through, direct) = world.rooms("room-faults", rate).await;
    let mut rng = Rng(seed);
    let mut acked: Vec<(VisitorId, TicketToken)> = Vec::new();
    let room_key = "{room-faults:room}";
    let mut next = 0u64;
    for phase in 0..5 {
        let fired_before = world.proxy.fired();
        for step in 0..25 {
            if rng.below(3) == 0 {
                match phase {
                    0 => world.proxy.set_latency(Duration::from_millis(3)),
                    1 => world.proxy.arm(&[room_key, "join"], Fault::DropReply, 1),
                    2 => world.proxy.arm(&[room_key], Fault::ResetMidReply, 1),
                    3 => world.proxy.arm(&[room_key], Fault::DropRequest, 1),
                    _ => world.proxy.blackhole(Duration::from_millis(500)),
                }
            }
            let at = format!("room phase {phase} step {step}");
            if rng.below(2) == 0 || acked.is_empty() {
                // A visitor whose join failed is not joined again: its place (if the join ran)
                // is the server's, unknown to the test.
                next += 1;
                match through.join(VisitorId(next)).await {
                    Ok(entry) => acked.push((VisitorId(next), entry.token())),
                    Err(JoinError::Backend(_)) => {}
                    Err(e) => panic!("{at}: join: {e}"),
                }
            } else {
                let (_, token) = acked[rng.below(acked.len() as u64) as usize];
                match through.poll(token).await {
                    Ok(_) | Err(PollError::Backend(_)) => {}
                    Err(e) => panic!("{at}: poll: {e}"),
                }
            }
            let visitors: Vec<VisitorId> = acked.iter().map(|(v, _)| *v).collect();
            check_room(&direct, &visitors, started, rate, &at).await;
        }
        world.proxy.heal();
        assert!(
            world.proxy.fired() > fired_before || phase == 0,
            "room phase {phase}: no fault fired"
        );
    }
    let visitors: Vec<VisitorId> = acked.iter().map(|(v, _)| *v).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for (_, token) in &acked {
            let _ = through.poll(*token).await;
        }
        if check_room(&direct, &visitors, started, rate, "after the faults").await == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "visitors still waiting 60 s after the faults healed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
