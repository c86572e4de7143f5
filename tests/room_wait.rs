//! `WaitingRoom::wait` (feature `tokio`), on tokio's paused clock: no real sleeps.

#![cfg(all(feature = "tokio", not(loom)))]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use surgegate::{Clock, Entry, PollError, TokioClock, VisitorId, WaitingRoom};

/// Counts how often the room reads the time: once per call, so once per poll of `wait`.
#[derive(Clone)]
struct CountingClock {
    inner: TokioClock,
    reads: Arc<AtomicU64>,
}

impl Clock for CountingClock {
    fn now(&self) -> Duration {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.now()
    }
}

fn room(rate: u32, checkin: Duration) -> (WaitingRoom<CountingClock>, Arc<AtomicU64>) {
    let reads = Arc::new(AtomicU64::new(0));
    let clock = CountingClock {
        inner: TokioClock::new(),
        reads: reads.clone(),
    };
    let room = WaitingRoom::builder()
        .rate_per_second(rate)
        .burst(1)
        .checkin_timeout(checkin)
        .clock(clock)
        .build();
    (room, reads)
}

fn ticket(e: Entry) -> surgegate::Ticket {
    match e {
        Entry::Waiting(t) => t,
        Entry::Admitted(p) => panic!("admitted: {p:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn wait_returns_the_pass_when_the_turn_comes_without_busy_polling() {
    let (room, reads) = room(1, Duration::from_secs(30));
    room.join(VisitorId(0)).unwrap();
    for n in 1..10 {
        room.join(VisitorId(n)).unwrap();
    }
    let t = ticket(room.join(VisitorId(10)).unwrap());
    assert_eq!(t.eta, Duration::from_secs(10));
    let start = tokio::time::Instant::now();
    let before = reads.load(Ordering::Relaxed);
    let pass = room.wait(t.token).await.unwrap();
    assert_eq!(pass.token, t.token);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(10),
        "woke exactly at the ETA"
    );
    let polls = reads.load(Ordering::Relaxed) - before;
    assert!(
        polls <= 3,
        "{polls} polls for one 10 s wait: that is busy polling"
    );
}

#[tokio::test(start_paused = true)]
async fn wait_checks_in_so_a_long_wait_never_lapses() {
    // A 100 s wait with a 5 s check-in timeout: without check-ins the ticket would lapse.
    let (room, reads) = room(1, Duration::from_secs(5));
    room.join(VisitorId(0)).unwrap();
    let t = ticket(room.join(VisitorId(1)).unwrap());
    room.set_rate_per_second(1).unwrap();
    room.pause();
    let waiter = room.wait(t.token);
    let resume_later = async {
        tokio::time::sleep(Duration::from_secs(100)).await;
        room.resume();
    };
    let (pass, ()) = tokio::join!(waiter, resume_later);
    assert_eq!(pass.unwrap().visitor, VisitorId(1));
    // A check-in every third of the timeout: about 60 in 100 s, not thousands.
    let polls = reads.load(Ordering::Relaxed);
    assert!((50..100).contains(&polls), "{polls} polls");
    assert_eq!(room.stats().dropped_total, 0);
}

#[tokio::test(start_paused = true)]
async fn resume_wakes_waiters_at_once() {
    let (room, _) = room(1, Duration::from_secs(60));
    room.join(VisitorId(0)).unwrap();
    room.pause();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let t = ticket(room.join(VisitorId(1)).unwrap());
    let start = tokio::time::Instant::now();
    let (pass, ()) = tokio::join!(room.wait(t.token), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        room.resume();
    });
    pass.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(300),
        "admitted the moment the room resumed"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_future_leaves_the_ticket_in_line_until_it_lapses() {
    let (room, _) = room(1, Duration::from_secs(30));
    room.join(VisitorId(0)).unwrap();
    room.pause();
    let t = ticket(room.join(VisitorId(1)).unwrap());
    let behind = ticket(room.join(VisitorId(2)).unwrap());
    // Cancel the wait after 20 s (a timeout, a closed connection...).
    let timed_out = tokio::time::timeout(Duration::from_secs(20), room.wait(t.token)).await;
    assert!(timed_out.is_err());
    // Still in line, same place.
    assert_eq!(ticket(room.peek(t.token).unwrap()).position, 1);
    // Waiting again resumes at the same place; cancel again.
    let _ = tokio::time::timeout(Duration::from_secs(1), room.wait(t.token)).await;
    assert_eq!(ticket(room.peek(t.token).unwrap()).position, 1);
    // Nobody polls it any more: it lapses a check-in timeout after the last check-in.
    tokio::time::sleep(Duration::from_secs(31)).await;
    let _ = room.poll(behind.token);
    assert_eq!(room.peek(t.token), Err(PollError::Expired));
    assert_eq!(room.wait(t.token).await, Err(PollError::Expired));
}

#[tokio::test(start_paused = true)]
async fn many_waiters_are_admitted_in_order() {
    let (room, _) = room(10, Duration::from_secs(30));
    let room = Arc::new(room);
    let mut handles = Vec::new();
    for n in 0..20 {
        let e = room.join(VisitorId(n)).unwrap();
        let room = room.clone();
        handles.push(tokio::spawn(async move {
            match e {
                Entry::Admitted(p) => p,
                Entry::Waiting(t) => room.wait(t.token).await.unwrap(),
            }
        }));
    }
    let mut expires = Vec::new();
    for h in handles {
        expires.push(h.await.unwrap().expires_at);
    }
    assert!(
        expires.windows(2).all(|w| w[0] < w[1]),
        "FIFO, one every 100 ms: {expires:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_finish_under_max_active_wakes_exactly_the_waiter_it_admits() {
    let room = Arc::new(
        WaitingRoom::builder()
            .rate_per_second(1_000)
            .burst(1_000)
            .max_active(1)
            .checkin_timeout(Duration::from_secs(60))
            .pass_ttl(Duration::from_secs(600))
            .clock(TokioClock::new())
            .build(),
    );
    let Entry::Admitted(first) = room.join(VisitorId(1)).unwrap() else {
        panic!("the first visitor is admitted at once")
    };
    let second = ticket(room.join(VisitorId(2)).unwrap());
    let third = ticket(room.join(VisitorId(3)).unwrap());
    let woken = Arc::new(AtomicU64::new(0));
    let spawn_wait = |token| {
        let (room, woken) = (room.clone(), woken.clone());
        tokio::spawn(async move {
            let pass = room.wait(token).await;
            woken.fetch_add(1, Ordering::SeqCst);
            pass
        })
    };
    let second_wait = spawn_wait(second.token);
    let third_wait = spawn_wait(third.token);
    // Let both waits register and go to sleep.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(woken.load(Ordering::SeqCst), 0);

    let start = tokio::time::Instant::now();
    room.finish(first.token).unwrap();
    let pass = second_wait.await.unwrap().unwrap();
    assert_eq!(pass.visitor, VisitorId(2));
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "the admitted waiter must wake at the finish, not at its next nap"
    );
    // The third is still waiting (max_active is 1): nobody else was woken.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(woken.load(Ordering::SeqCst), 1);
    assert!(!third_wait.is_finished());
    third_wait.abort();
}
