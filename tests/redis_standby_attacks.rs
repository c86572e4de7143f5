//! Attacks on the standby line of `RedisSlotBook` against real Redis servers: a request over
//! two branches whose offer lapsed at one of them (its applicant's place, the next unit freed
//! at the other branch), compared with the in-process `SlotBook` on a manual clock; and, through
//! the fault proxy (`support/fault_proxy.rs`) in front of a real server, a leave cut half-way
//! and a lost reply at every step of joining and claiming, with the rules checked after each:
//! the slot never overbooked, the applicant never above its limit, nothing kept for a request
//! that is over once a hold lifetime passed, and the applicant able to reserve again.
//!
//! Without `redis-server` the test says so and skips (and fails under `CI=true`).
#![cfg(all(feature = "redis", not(loom)))]

#[path = "support/fault_proxy.rs"]
#[allow(dead_code)]
mod fault_proxy;
#[path = "support/programs.rs"]
#[allow(dead_code)]
mod programs;
#[path = "support/redis_book.rs"]
mod redis_book;
#[path = "support/redis_servers.rs"]
#[allow(dead_code)]
mod redis_servers;
#[path = "support/redis_single.rs"]
#[allow(dead_code)]
mod redis_single;

use std::time::Duration;

use fault_proxy::{Fault, Proxy};
use redis_book::{book, runtime, state};
use redis_servers::Servers;
use redis_single::Single;
use surgegate::redis::RedisSlotBook;
use surgegate::{ApplicantId, BackendError, BranchId, ManualClock, SlotBook, StandbyError};

const B: BranchId = BranchId(3);
const C: BranchId = BranchId(9);
/// The hold lifetime of the lapse tests, and how long they wait for a lapse.
const TTL_MS: u64 = 300;
const PAST_TTL: Duration = Duration::from_millis(700);

fn a(n: u64) -> ApplicantId {
    ApplicantId(n)
}

fn local_book(clock: &ManualClock) -> SlotBook<ManualClock> {
    SlotBook::builder()
        .hold_ttl(Duration::from_millis(TTL_MS))
        .max_active_per_applicant(1)
        .clock(clock.clone())
        .build()
}

/// On both books: slot 0 of B and of C with one unit, booked by a(1) at B and a(2) at C, and
/// a(3) waiting over both branches. Returns the two bookings' tokens at C (Redis, local).
async fn two_branches_taken(
    shared: &RedisSlotBook,
    local: &SlotBook<ManualClock>,
) -> [(surgegate::HoldToken, surgegate::HoldToken); 2] {
    let mut tokens = Vec::new();
    for (branch, who) in [(B, a(1)), (C, a(2))] {
        shared.set_capacity(branch, 0, 1).await.unwrap();
        local.set_capacity(branch, 0, 1).unwrap();
        let r = shared.reserve(branch, 0, who).await.unwrap();
        let l = local.reserve(branch, 0, who).unwrap();
        shared.confirm(r.token).await.unwrap();
        local.confirm(l.token).unwrap();
        tokens.push((r.token, l.token));
    }
    shared.standby(a(3), &[B, C], 0..1).await.unwrap();
    local.standby(a(3), &[B, C], 0..1).unwrap();
    [tokens[0], tokens[1]]
}

/// Rules 3 and 7: a(3)'s request over B and C is kept C's unit, which lapses unclaimed. As
/// in-process, its request is over then, and a(3), holding nothing, reserves again (the line
/// at B, which still lists the request, must not keep a(3)'s one place taken).
async fn a_lapsed_offer_at_the_second_branch_frees_the_place(urls: &[String], namespace: &str) {
    let shared = book(urls, namespace, TTL_MS, 1).await;
    let clock = ManualClock::new();
    let local = local_book(&clock);
    let [_, at_c] = two_branches_taken(&shared, &local).await;
    shared.release(at_c.0).await.unwrap();
    local.release(at_c.1).unwrap();
    assert_eq!(shared.slot(C, 0).await.unwrap(), state(1, 1, 0), "kept");
    tokio::time::sleep(PAST_TTL).await;
    clock.advance(PAST_TTL);
    assert_eq!(local.slot(C, 0), state(1, 0, 0), "the offer lapsed");
    assert_eq!(shared.slot(C, 0).await.unwrap(), state(1, 0, 0));
    let l = local.reserve(C, 0, a(3)).map(|h| (h.branch, h.slot));
    let r = shared.reserve(C, 0, a(3)).await.map(|h| (h.branch, h.slot));
    assert_eq!(l, Ok((C, 0)), "in-process: a(3) has nothing and reserves");
    assert_eq!(r, l, "a(3) is locked out by a request that is over");
}

/// Rules 5 and 7: after a(3)'s offer at C lapsed, its request is over; the unit a(1)'s
/// cancellation frees at B is for a(4), the earliest request still waiting there, and never
/// becomes a(3)'s hold.
async fn a_request_over_is_not_served_at_its_other_branch(urls: &[String], namespace: &str) {
    let shared = book(urls, namespace, TTL_MS, 1).await;
    let clock = ManualClock::new();
    let local = local_book(&clock);
    let [at_b, at_c] = two_branches_taken(&shared, &local).await;
    shared.standby(a(4), &[B], 0..1).await.unwrap();
    local.standby(a(4), &[B], 0..1).unwrap();
    shared.release(at_c.0).await.unwrap();
    local.release(at_c.1).unwrap();
    tokio::time::sleep(PAST_TTL).await;
    clock.advance(PAST_TTL);
    assert_eq!(shared.slot(C, 0).await.unwrap(), state(1, 0, 0));
    assert_eq!(local.slot(C, 0), state(1, 0, 0));
    shared.release(at_b.0).await.unwrap();
    local.release(at_b.1).unwrap();
    let place = |h: Option<surgegate::Hold>| h.map(|h| (h.branch, h.slot, h.applicant));
    assert_eq!(place(local.standby_offer(a(3))), None, "in-process: over");
    assert_eq!(
        place(shared.standby_offer(a(3)).await.unwrap()),
        None,
        "a request whose offer lapsed was given a second unit"
    );
    assert_eq!(place(local.standby_offer(a(4))), Some((B, 0, a(4))));
    assert_eq!(
        place(shared.standby_offer(a(4)).await.unwrap()),
        Some((B, 0, a(4))),
        "the earliest live request at B"
    );
    assert_eq!(shared.slot(B, 0).await.unwrap(), state(1, 1, 0));
}

/// Rules 1, 2 and 5 under racing calls of one applicant: a(3)'s request over B and C is kept
/// a unit at both; eight of its calls at once (claims, readings, a leave) give it one hold,
/// every answer that names a hold names that one, and the other unit goes back to its slot.
async fn racing_calls_of_one_applicant_give_one_hold(urls: &[String], namespace: &str) {
    let shared = std::sync::Arc::new(book(urls, namespace, 60_000, 1).await);
    let clock = ManualClock::new();
    let local = local_book(&clock);
    let [at_b, at_c] = two_branches_taken(&shared, &local).await;
    shared.release(at_c.0).await.unwrap();
    shared.release(at_b.0).await.unwrap();
    assert_eq!(shared.slot(B, 0).await.unwrap(), state(1, 1, 0));
    let mut calls = Vec::new();
    for n in 0..8u32 {
        let book = std::sync::Arc::clone(&shared);
        calls.push(tokio::spawn(async move {
            match n % 4 {
                0 | 1 => book.standby_offer(a(3)).await.map(|h| h.map(|h| h.token)),
                2 => book.standby_request(a(3)).await.map(|_| None),
                _ => book.leave_standby(a(3)).await.map(|_| None),
            }
        }));
    }
    let mut named = Vec::new();
    for call in calls {
        if let Ok(Some(token)) = call.await.unwrap() {
            named.push(token);
        }
    }
    let held = shared.holds_of(a(3)).await.unwrap();
    assert!(held.len() <= 1, "two holds at a limit of 1: {held:?}");
    assert!(
        named.iter().all(|t| held.iter().any(|h| h.token == *t)),
        "an answer named a hold a(3) does not have: {named:?}, {held:?}"
    );
    let b = shared.slot(B, 0).await.unwrap().unwrap();
    let c = shared.slot(C, 0).await.unwrap().unwrap();
    assert_eq!(
        (b.held + c.held) as usize,
        held.len(),
        "a unit kept for nobody: {b:?} {c:?} {held:?}"
    );
}

/// The tests of this file that start `Servers` run one at a time: servers started at once by
/// one process would pick the same ports.
static SERVERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn servers_to_myself() -> std::sync::MutexGuard<'static, ()> {
    SERVERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `case` on the standalone server and on the cluster, each under its own namespace.
fn on_both<F: std::future::Future<Output = ()>>(
    prefix: &str,
    case: impl Fn(Vec<String>, String) -> F,
) {
    let _alone = servers_to_myself();
    let Some(servers) = Servers::start() else {
        return;
    };
    let rt = runtime();
    for (name, urls) in [
        ("single", vec![servers.standalone()]),
        ("cluster", servers.cluster()),
    ] {
        rt.block_on(case(urls, format!("{prefix}-{name}")));
    }
}

#[test]
fn a_lapsed_offer_at_one_branch_gives_the_applicants_place_back() {
    on_both("sba-place", |urls, ns| async move {
        a_lapsed_offer_at_the_second_branch_frees_the_place(&urls, &ns).await;
    });
}

#[test]
fn a_request_whose_offer_lapsed_is_not_served_elsewhere() {
    on_both("sba-next", |urls, ns| async move {
        a_request_over_is_not_served_at_its_other_branch(&urls, &ns).await;
    });
}

#[test]
fn racing_calls_of_one_applicant_never_give_two_holds() {
    on_both("sba-race", |urls, ns| async move {
        racing_calls_of_one_applicant_give_one_hold(&urls, &ns).await;
    });
}

/// Rules 4 and 7: an offer whose time ran out is never claimed, even while a backlog of lapsed
/// holds takes every reclaim's budget (here 25 000 expiry entries at C, more than two scripts
/// reclaim): a(3)'s call answers no hold, as in-process, and the unit goes back to its slot.
async fn a_lapsed_offer_behind_a_backlog(urls: &[String], namespace: &str, servers: &Servers) {
    let shared = book(urls, namespace, TTL_MS, 1).await;
    shared.set_capacity(C, 0, 1).await.unwrap();
    let hold = shared.reserve(C, 0, a(2)).await.unwrap();
    let booking = shared.confirm(hold.token).await.unwrap();
    shared.standby(a(3), &[C], 0..1).await.unwrap();
    shared.release(booking.token).await.unwrap();
    tokio::time::sleep(PAST_TTL).await;
    let key = format!("{{{namespace}:b:{}}}:exp", C.0);
    let fill = "for i = 1, 25000 do redis.call('ZADD', KEYS[1], 1, 'backlog' .. i) end return 1";
    let port = if urls.len() == 1 {
        servers.port
    } else {
        servers.port + 1
    };
    let out = servers.cli(port, &["-c", "EVAL", fill, "1", key.as_str()]);
    assert!(out.contains('1'), "{out}");
    let given = shared.standby_offer(a(3)).await.unwrap();
    assert_eq!(given, None, "a lapsed offer became a hold");
    for _ in 0..3 {
        shared.sweep(C, 10_000).await.unwrap();
    }
    assert_eq!(shared.slot(C, 0).await.unwrap(), state(1, 0, 0));
    shared
        .reserve(C, 0, a(3))
        .await
        .expect("a(3) reserves again");
}

#[test]
fn a_lapsed_offer_is_never_claimed_behind_a_backlog_of_lapses() {
    let _alone = servers_to_myself();
    let Some(servers) = Servers::start() else {
        return;
    };
    let rt = runtime();
    for (name, urls) in [
        ("single", vec![servers.standalone()]),
        ("cluster", servers.cluster()),
    ] {
        let ns = format!("sba-backlog-{name}");
        rt.block_on(a_lapsed_offer_behind_a_backlog(&urls, &ns, &servers));
    }
}

/// A server and the fault proxy in front of it, with a book through the proxy and one straight
/// to the server.
struct Faulty {
    _server: Single,
    proxy: Proxy,
    server_url: String,
}

impl Faulty {
    fn start() -> Option<Faulty> {
        let server = Single::start()?;
        let proxy = Proxy::start(([127, 0, 0, 1], server.port).into());
        Some(Faulty {
            server_url: server.url(),
            _server: server,
            proxy,
        })
    }

    /// (through the proxy, straight to the server), holds lasting `ttl_ms`, limit 1.
    async fn books(&self, namespace: &str, ttl_ms: u64) -> (RedisSlotBook, RedisSlotBook) {
        let builder = RedisSlotBook::builder()
            .hold_ttl(Duration::from_millis(ttl_ms))
            .max_active_per_applicant(1)
            .namespace(namespace)
            .wait_for_replicas(0, Duration::from_millis(1));
        let through = builder
            .clone()
            .timeout(Duration::from_millis(400))
            .connect(&[self.proxy.url().as_str()])
            .await
            .expect("a book through the proxy");
        let direct = builder
            .connect(&[self.server_url.as_str()])
            .await
            .expect("a book on the server");
        (through, direct)
    }
}

/// Rule 7 (and 6): a leave cut after its first branch answers an error; the unit then freed at
/// the branch it did not leave is not given to the applicant that asked to leave (its request
/// shows over: one line has neither it nor an offer), but goes back to the slot.
#[test]
fn a_leave_cut_half_way_never_turns_into_a_hold() {
    let Some(faulty) = Faulty::start() else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let (through, direct) = faulty.books("sba-leave", 60_000).await;
        let mut cancel = None;
        for (branch, who) in [(B, a(1)), (C, a(2))] {
            direct.set_capacity(branch, 0, 1).await.unwrap();
            let hold = direct.reserve(branch, 0, who).await.unwrap();
            cancel = Some(direct.confirm(hold.token).await.unwrap().token);
        }
        through.standby(a(3), &[B, C], 0..1).await.unwrap();
        faulty
            .proxy
            .arm(&["sba-leave:b:9}", "\r\nleave\r\n"], Fault::DropRequest, 1);
        assert!(through.leave_standby(a(3)).await.is_err());
        assert_eq!(faulty.proxy.fired(), 1, "the second leave was not cut");
        direct.release(cancel.unwrap()).await.unwrap();
        assert_eq!(
            through.standby_offer(a(3)).await,
            Ok(None),
            "a(3) asked to leave: no hold"
        );
        assert_eq!(direct.slot(C, 0).await.unwrap(), state(1, 0, 0));
        assert!(!through.leave_standby(a(3)).await.unwrap());
        direct.reserve(C, 0, a(3)).await.expect("its place is free");
    });
}

/// What one lost-reply case leaves to check once a hold lifetime has passed.
struct Lost {
    name: String,
    direct: RedisSlotBook,
}

/// Whether an answer is an error worth a retry (the store's).
trait Retry {
    fn worth_retrying(&self) -> bool;
}

impl<T> Retry for Result<T, StandbyError> {
    fn worth_retrying(&self) -> bool {
        matches!(self, Err(StandbyError::Backend(_)))
    }
}

impl<T> Retry for Result<T, BackendError> {
    fn worth_retrying(&self) -> bool {
        self.is_err()
    }
}

/// Sends `call` again while it answers a backend error, at most four times in all.
macro_rules! retried {
    ($call:expr) => {{
        let mut out = $call.await;
        for _ in 0..3 {
            if !out.worth_retrying() {
                break;
            }
            out = $call.await;
        }
        out
    }};
}

/// One case: the request of one standby step (`word`) is hit by `fault`; a(3) joins over B and
/// C, C's unit is freed for it, and it claims it, each retried after an error. The rules at
/// once: one hold, the unit counted once, the applicant within its limit.
async fn lose_one_step(faulty: &Faulty, word: &str, fault: Fault) -> Lost {
    let name = format!("sba-lost-{word}-{fault:?}").to_lowercase();
    let (through, direct) = faulty.books(&name, 1_000).await;
    let mut cancel = None;
    for (branch, who) in [(B, a(1)), (C, a(2))] {
        direct.set_capacity(branch, 0, 1).await.unwrap();
        let hold = direct.reserve(branch, 0, who).await.unwrap();
        cancel = Some(direct.confirm(hold.token).await.unwrap().token);
    }
    // Every script loaded on the server first, so the fault hits the step itself.
    direct.standby(a(9), &[B], 0..1).await.unwrap();
    assert!(direct.leave_standby(a(9)).await.unwrap());
    let fired = faulty.proxy.fired();
    faulty
        .proxy
        .arm(&[&format!("{name}:"), &format!("\r\n{word}\r\n")], fault, 1);
    let ticket = retried!(through.standby(a(3), &[B, C], 0..1));
    assert!(ticket.is_ok(), "{name}: {ticket:?}");
    direct.release(cancel.unwrap()).await.unwrap();
    let given = retried!(through.standby_offer(a(3)));
    let given = given.unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let hold = given.unwrap_or_else(|| panic!("{name}: C's unit was not given"));
    assert_eq!((hold.branch, hold.slot), (C, 0), "{name}");
    assert_eq!(
        faulty.proxy.fired(),
        fired + 1,
        "{name}: the fault did not fire"
    );
    faulty.proxy.heal();
    assert_eq!(direct.holds_of(a(3)).await.unwrap(), vec![hold], "{name}");
    assert_eq!(direct.slot(C, 0).await.unwrap(), state(1, 1, 0), "{name}");
    assert_eq!(direct.slot(B, 0).await.unwrap(), state(1, 0, 1), "{name}");
    assert_eq!(direct.standby_offer(a(3)).await, Ok(Some(hold)), "{name}");
    Lost { name, direct }
}

/// Rules 1 to 4 and 6 under a lost reply (the step ran) or a cut request (it did not) at each
/// step of joining and claiming: after the retries, one hold; a hold lifetime (and the count's
/// margin) later nothing is kept, nothing is counted, and the applicant reserves again.
#[test]
fn a_lost_reply_at_any_standby_step_costs_at_most_a_hold_lifetime() {
    let Some(faulty) = Faulty::start() else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let mut cases = Vec::new();
        for word in [
            "take", "line", "join", "stand", "get", "peek", "swap", "claim", "leave", "mark",
        ] {
            for fault in [Fault::DropReply, Fault::DropRequest] {
                cases.push(lose_one_step(&faulty, word, fault).await);
            }
        }
        tokio::time::sleep(Duration::from_millis(1_000 + 2_000 + 500)).await;
        for Lost { name, direct } in cases {
            assert_eq!(direct.slot(C, 0).await.unwrap(), state(1, 0, 0), "{name}");
            assert_eq!(direct.standby_offer(a(3)).await, Ok(None), "{name}");
            assert_eq!(direct.standby_request(a(3)).await, Ok(None), "{name}");
            let again = direct.reserve(C, 0, a(3)).await;
            assert!(again.is_ok(), "{name}: locked out: {again:?}");
        }
    });
}

/// Rule 6: `stand`'s reply lost and every step of the clean-up cut too: the error leaves the
/// request waiting in full (what `standby`'s docs say it may leave); a retry returns its ticket,
/// and leaving gives the place back.
#[test]
fn a_join_whose_clean_up_fails_too_is_found_by_a_retry() {
    let Some(faulty) = Faulty::start() else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let (through, direct) = faulty.books("sba-stand", 60_000).await;
        for (branch, who) in [(B, a(1)), (C, a(2))] {
            direct.set_capacity(branch, 0, 1).await.unwrap();
            direct.reserve(branch, 0, who).await.unwrap();
        }
        direct.standby(a(9), &[B], 0..1).await.unwrap();
        assert!(direct.leave_standby(a(9)).await.unwrap());
        let p = &faulty.proxy;
        p.arm(&["sba-stand:", "\r\nstand\r\n"], Fault::DropReply, 1);
        p.arm(&["sba-stand:", "\r\nleave\r\n"], Fault::DropRequest, 2);
        p.arm(&["sba-stand:", "\r\nunline\r\n"], Fault::DropRequest, 1);
        p.arm(&["sba-stand:", "\r\ndrop\r\n"], Fault::DropRequest, 1);
        let lost = through.standby(a(3), &[B, C], 0..1).await;
        assert!(matches!(lost, Err(StandbyError::Backend(_))), "{lost:?}");
        // A call after a cut may find the connection closed and fail before it is sent.
        assert!(p.fired() >= 2, "the faults did not fire");
        p.heal();
        let waits = direct
            .standby_request(a(3))
            .await
            .unwrap()
            .expect("left waiting");
        let again = through.standby(a(3), &[B, C], 0..1).await.unwrap();
        assert_eq!(again.number, waits.number, "a retry finds the request");
        assert!(through.leave_standby(a(3)).await.unwrap());
        direct.set_capacity(C, 1, 1).await.unwrap();
        direct.reserve(C, 1, a(3)).await.expect("its place is free");
    });
}
