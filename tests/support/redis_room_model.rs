//! Random sequences of room operations applied to a paused `RedisWaitingRoom` and to a paused
//! in-process `WaitingRoom` side by side: every answer (places, refreshes, leaving, claims of
//! waiting tickets, a full line, a closed room) must be the same, and every visitor's place
//! equal after every step. Time does not move the paused rooms, so real time and the
//! `ManualClock` agree. Included by `tests/redis.rs`.

use std::time::Duration;

use proptest::prelude::*;
use surgegate::redis::RedisWaitingRoom;
use surgegate::{Entry, JoinError, ManualClock, TicketToken, VisitorId, WaitingRoom};

#[derive(Clone, Debug)]
enum Op {
    Join(u64),
    EntryOf(u64),
    Poll(usize),
    Finish(usize),
    Claim(usize),
    Close,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..8u64).prop_map(Op::Join),
        2 => (0..8u64).prop_map(Op::EntryOf),
        3 => any::<usize>().prop_map(Op::Poll),
        2 => any::<usize>().prop_map(Op::Finish),
        1 => any::<usize>().prop_map(Op::Claim),
        1 => Just(Op::Close),
        1 => Just(Op::Reopen),
    ]
}

/// An answer with the token replaced by its index among the tokens issued so far.
fn shape(entry: &Entry, tokens: &mut Vec<TicketToken>) -> String {
    match entry {
        Entry::Waiting(t) => {
            let i = tokens
                .iter()
                .position(|&x| x == t.token)
                .unwrap_or_else(|| {
                    tokens.push(t.token);
                    tokens.len() - 1
                });
            format!("waiting #{i} at {}", t.position)
        }
        Entry::Admitted(_) => "admitted".into(),
    }
}

fn join_shape(r: Result<Entry, JoinError>, tokens: &mut Vec<TicketToken>) -> String {
    match r {
        Ok(entry) => shape(&entry, tokens),
        Err(JoinError::Full { .. }) => "full".into(),
        Err(e) => format!("{e:?}"),
    }
}

pub fn compare(rt: &tokio::runtime::Runtime, urls: &[String], prefix: &str, cases: u32) {
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let strategy = prop::collection::vec(op(), 1..40);
    crate::redis_model::sequences(strategy, prefix, cases, |namespace, ops| {
        rt.block_on(run_case(&urls, namespace, ops))
    });
}

async fn run_case(urls: &[&str], namespace: &str, ops: &[Op]) -> Result<(), String> {
    let hour = Duration::from_secs(3600);
    let shared = RedisWaitingRoom::builder()
        .max_waiting(5)
        .checkin_timeout(hour)
        .namespace(namespace)
        .connect(urls)
        .await
        .map_err(|e| e.to_string())?;
    shared.pause().await.map_err(|e| e.to_string())?;
    let local = WaitingRoom::builder()
        .max_waiting(5)
        .checkin_timeout(hour)
        .clock(ManualClock::new())
        .build();
    local.pause();
    // Tokens in the order each side issued them: index i is the same ticket on both.
    let (mut rt, mut lt) = (Vec::new(), Vec::new());
    for (step, op) in ops.iter().enumerate() {
        let (r, l) = match *op {
            Op::Join(v) => (
                join_shape(shared.join(VisitorId(v)).await, &mut rt),
                join_shape(local.join(VisitorId(v)), &mut lt),
            ),
            Op::EntryOf(v) => {
                let r = shared
                    .entry_of(VisitorId(v))
                    .await
                    .map_err(|e| e.to_string())?;
                (
                    r.map(|e| shape(&e, &mut rt)).unwrap_or_default(),
                    local
                        .entry_of(VisitorId(v))
                        .map(|e| shape(&e, &mut lt))
                        .unwrap_or_default(),
                )
            }
            Op::Poll(pick) | Op::Finish(pick) | Op::Claim(pick)
                if !rt.is_empty() && rt.len() == lt.len() =>
            {
                let (rtok, ltok) = (rt[pick % rt.len()], lt[pick % lt.len()]);
                match op {
                    Op::Poll(_) => (
                        shared
                            .poll(rtok)
                            .await
                            .map(|e| shape(&e, &mut rt))
                            .unwrap_or_else(|e| format!("{e:?}")),
                        local
                            .poll(ltok)
                            .map(|e| shape(&e, &mut lt))
                            .unwrap_or_else(|e| format!("{e:?}")),
                    ),
                    Op::Finish(_) => (
                        format!("{:?}", shared.finish(rtok).await),
                        format!("{:?}", local.finish(ltok)),
                    ),
                    _ => (
                        format!("{:?}", shared.claim(rtok).await.map(|_| ())),
                        format!("{:?}", local.claim(ltok).map(|_| ())),
                    ),
                }
            }
            Op::Close => {
                shared.close().await.map_err(|e| e.to_string())?;
                local.close();
                (String::new(), String::new())
            }
            Op::Reopen => {
                shared.reopen().await.map_err(|e| e.to_string())?;
                local.reopen();
                (String::new(), String::new())
            }
            _ => (String::new(), String::new()),
        };
        if r != l {
            return Err(format!("step {step} {op:?}: redis {r:?}, local {l:?}"));
        }
        let waiting = shared.stats().await.map_err(|e| e.to_string())?.waiting;
        if waiting != local.stats().waiting {
            return Err(format!(
                "step {step} {op:?}: redis {waiting} waiting, local {}",
                local.stats().waiting
            ));
        }
    }
    Ok(())
}
