//! Channel quotas on `RedisSlotBook` against real Redis servers started by
//! `tests/redis/cluster.sh` (a standalone server and a 3-primary, 3-replica cluster): the rules
//! step by step (kept units out of plain reach, taken on their channel, given back to the part
//! they came from by a release, a cancellation or a lapse, quotas never above the capacity, a
//! closed slot keeping its quotas, opening them), tasks racing on two channels and the web for
//! the last units, records written before channels existed, and
//! random sequences compared with the in-process book (`support/redis_model.rs`, channel
//! operations weighted up), with the invariants checked after every step.
//!
//! Without `redis-server` the test says so and skips (and fails under `CI=true`).
#![cfg(all(feature = "redis", not(loom)))]

#[path = "support/programs.rs"]
#[allow(dead_code)]
mod programs;
#[path = "support/redis_book.rs"]
mod redis_book;
#[path = "support/redis_model.rs"]
#[allow(dead_code)]
mod redis_model;
#[path = "support/redis_servers.rs"]
#[allow(dead_code)]
mod redis_servers;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis_book::{book, runtime, state};
use redis_servers::Servers;
use surgegate::{ApplicantId, BranchId, CapacityError, Channel, ChannelState, ReserveError};

fn channel(channel: u8, quota: u32, from_quota: u32, taken: u32) -> ChannelState {
    ChannelState {
        channel: Channel(channel),
        quota,
        from_quota,
        taken,
    }
}

const B: BranchId = BranchId(4);
const COUNTER: Channel = Channel(1);
const PHONE: Channel = Channel(2);

fn a(n: u64) -> ApplicantId {
    ApplicantId(n)
}

/// Kept units, taken on their channel, given back where they came from, opened to all.
async fn quotas_step_by_step(urls: &[String], namespace: &str) {
    let book = book(urls, namespace, 60_000, 1).await;
    assert_eq!(
        book.set_channel_quota(B, 0, COUNTER, 1).await,
        Err(CapacityError::UnknownSlot),
        "a slot never opened"
    );
    assert_eq!(book.channel_quotas(B, 0).await, Ok(None));
    book.set_capacity(B, 0, 4).await.unwrap();
    assert_eq!(
        book.set_channel_quota(B, 0, COUNTER, 2).await,
        Ok(state(2, 0, 0).unwrap())
    );
    assert_eq!(
        book.set_channel_quota(B, 0, PHONE, 3).await,
        Err(CapacityError::QuotasAboveCapacity {
            quotas: 5,
            capacity: 4
        })
    );
    assert_eq!(
        book.set_channel_quota(B, 0, PHONE, 1).await,
        Ok(state(1, 0, 0).unwrap())
    );
    assert_eq!(
        book.set_capacity(B, 0, 2).await,
        Err(CapacityError::QuotasAboveCapacity {
            quotas: 3,
            capacity: 2
        }),
        "a capacity below the quotas"
    );
    assert_eq!(book.slot(B, 0).await, Ok(state(1, 0, 0)), "nothing changed");

    // The web takes the one open unit; then only the channels have room.
    let web = book.reserve(B, 0, a(1)).await.unwrap();
    assert_eq!(book.reserve(B, 0, a(2)).await, Err(ReserveError::Full));
    let desk = book.reserve_on(COUNTER, B, 0, a(2)).await.unwrap();
    assert_eq!(
        book.reserve_on(COUNTER, B, 0, a(2)).await,
        Ok(desk),
        "a retry returns the same hold"
    );
    let desk2 = book.reserve_on(COUNTER, B, 0, a(3)).await.unwrap();
    assert_eq!(book.slot(B, 0).await, Ok(state(3, 3, 0)));
    // The counters used their quota and the open part is taken: full for them.
    assert_eq!(
        book.reserve_on(COUNTER, B, 0, a(4)).await,
        Err(ReserveError::Full)
    );
    let q = book.channel_quotas(B, 0).await.unwrap().unwrap();
    assert_eq!(q.capacity, 4);
    assert_eq!(q.channels, vec![channel(1, 2, 2, 2), channel(2, 1, 0, 0)]);

    // A counter booking cancelled goes back to the counters, not to the web.
    book.confirm(desk.token).await.unwrap();
    book.release(desk.token).await.unwrap();
    assert_eq!(book.slot(B, 0).await, Ok(state(2, 2, 0)));
    assert_eq!(book.reserve(B, 0, a(5)).await, Err(ReserveError::Full));
    // The web's unit, released, goes back to the open part: a counter takes its quota first.
    book.release(web.token).await.unwrap();
    let desk3 = book.reserve_on(COUNTER, B, 0, a(5)).await.unwrap();
    let q = book.channel_quotas(B, 0).await.unwrap().unwrap();
    assert_eq!(q.channels[0], channel(1, 2, 2, 2));
    // A channel past its quota takes from the open part, and gives back to it.
    let open = book.reserve_on(COUNTER, B, 0, a(6)).await.unwrap();
    assert_eq!(
        book.channel_quotas(B, 0).await.unwrap().unwrap().channels[0],
        channel(1, 2, 2, 3)
    );
    book.release(open.token).await.unwrap();
    assert_eq!(book.slot(B, 0).await, Ok(state(3, 2, 0)));

    // Closed, the slot keeps its quotas; open_channel_quotas_in leaves it alone.
    book.close_slot(B, 0).await.unwrap();
    assert_eq!(book.slot(B, 0).await, Ok(None));
    assert_eq!(
        book.reserve_on(PHONE, B, 0, a(7)).await,
        Err(ReserveError::UnknownSlot)
    );
    assert_eq!(
        book.open_channel_quotas(B, 0).await,
        Err(CapacityError::UnknownSlot)
    );
    assert_eq!(book.open_channel_quotas_in(B, ..).await, Ok(0));
    let q = book.channel_quotas(B, 0).await.unwrap().unwrap();
    assert_eq!(q.channels, vec![channel(1, 2, 2, 2), channel(2, 1, 0, 0)]);
    assert_eq!(
        book.set_capacity(B, 0, 4).await,
        Ok(state(3, 2, 0).unwrap())
    );

    // Opened: the phone's unused unit is everyone's; a counter unit given back goes to all.
    assert_eq!(book.open_channel_quotas_in(B, ..).await, Ok(1));
    assert_eq!(book.open_channel_quotas_in(B, ..).await, Ok(0));
    assert_eq!(book.slot(B, 0).await, Ok(state(4, 2, 0)));
    book.release(desk2.token).await.unwrap();
    assert_eq!(book.slot(B, 0).await, Ok(state(4, 1, 0)));
    let q = book.channel_quotas(B, 0).await.unwrap().unwrap();
    assert_eq!(q.channels, vec![channel(1, 0, 1, 1), channel(2, 0, 0, 0)]);
    book.reserve(B, 0, a(8)).await.unwrap();
    book.reserve(B, 0, a(9)).await.unwrap();
    book.reserve(B, 0, a(10)).await.unwrap();
    assert_eq!(book.slot(B, 0).await, Ok(state(4, 4, 0)));
    let _ = desk3;

    // Quota limits are errors, and a slot without quotas takes `reserve_on` as `reserve`.
    assert_eq!(
        book.set_channel_quota(B, 0, PHONE, u32::MAX).await,
        Err(CapacityError::CapacityTooLarge {
            capacity: u32::MAX,
            max: surgegate::MAX_CAPACITY
        })
    );
    book.set_capacity(B, 1, 1).await.unwrap();
    let plain = book.reserve_on(PHONE, B, 1, a(11)).await.unwrap();
    assert_eq!(book.channel_quotas(B, 1).await, Ok(None));
    book.release(plain.token).await.unwrap();
    assert_eq!(book.slot(B, 1).await, Ok(state(1, 0, 0)));
}

/// Tasks racing on one slot, on two channels and without one, for more than there is: the
/// slot is taken exactly to its capacity, each channel at most its quota plus the open part,
/// the web at most the open part, and every record agrees with the counts.
async fn channels_racing_for_the_last_units(urls: &[String], namespace: &str) {
    let book = Arc::new(book(urls, namespace, 60_000, 1).await);
    // 10 units: 3 for the counters, 2 for the phone, 5 open.
    book.set_capacity(B, 7, 10).await.unwrap();
    book.set_channel_quota(B, 7, COUNTER, 3).await.unwrap();
    book.set_channel_quota(B, 7, PHONE, 2).await.unwrap();
    let tasks: Vec<_> = (0..60u64)
        .map(|i| {
            let book = book.clone();
            tokio::spawn(async move {
                let on = [None, Some(COUNTER), Some(PHONE)][(i % 3) as usize];
                let got = match on {
                    None => book.reserve(B, 7, a(100 + i)).await,
                    Some(c) => book.reserve_on(c, B, 7, a(100 + i)).await,
                };
                match got {
                    Ok(hold) => {
                        let booked = book.confirm(hold.token).await.unwrap();
                        Some((on, booked))
                    }
                    Err(ReserveError::Full) => None,
                    Err(e) => panic!("{e}"),
                }
            })
        })
        .collect();
    let mut per: HashMap<Option<Channel>, u32> = HashMap::new();
    for task in tasks {
        if let Some((on, booking)) = task.await.unwrap() {
            assert_eq!(booking.slot, 7);
            *per.entry(on).or_default() += 1;
        }
    }
    let total: u32 = per.values().sum();
    assert_eq!(total, 10, "exactly the capacity is booked: {per:?}");
    let web = per.get(&None).copied().unwrap_or(0);
    let counter = per.get(&Some(COUNTER)).copied().unwrap_or(0);
    let phone = per.get(&Some(PHONE)).copied().unwrap_or(0);
    assert!(web <= 5, "the web took more than the open part: {per:?}");
    assert!(counter <= 3 + 5 && phone <= 2 + 5, "{per:?}");
    // 20 callers each for 2 and 3 kept units: the quotas are used up.
    assert!(counter >= 3 && phone >= 2, "{per:?}");
    assert_eq!(book.slot(B, 7).await, Ok(state(10, 0, 10)));
    let q = book.channel_quotas(B, 7).await.unwrap().unwrap();
    assert_eq!(q.channels[0], channel(1, 3, 3, counter));
    assert_eq!(q.channels[1], channel(2, 2, 2, phone));
}

/// A unit taken from a quota goes back to it when its hold lapses, too.
async fn a_lapse_gives_back_to_the_quota(urls: &[String], namespace: &str) {
    let book = book(urls, namespace, 400, 1).await;
    book.set_capacity(B, 3, 2).await.unwrap();
    book.set_channel_quota(B, 3, PHONE, 1).await.unwrap();
    book.reserve_on(PHONE, B, 3, a(1)).await.unwrap();
    book.reserve(B, 3, a(2)).await.unwrap();
    assert_eq!(book.slot(B, 3).await, Ok(state(2, 2, 0)));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(book.slot(B, 3).await, Ok(state(1, 0, 0)));
    let q = book.channel_quotas(B, 3).await.unwrap().unwrap();
    assert_eq!(q.channels, vec![channel(2, 1, 0, 0)]);
}

/// A booking written before channels existed (no part in its record) is from the open part:
/// cancelled on a slot that now has quotas, its unit goes to the open part.
async fn records_without_a_channel_are_open_part(urls: &[String], namespace: &str) {
    let book = book(urls, namespace, 60_000, 1).await;
    book.set_capacity(B, 5, 2).await.unwrap();
    let hold = book.reserve(B, 5, a(1)).await.unwrap();
    book.confirm(hold.token).await.unwrap();
    let key = format!("{{{namespace}:b:{}}}:bookings", B.0);
    let record = raw(urls, &["HGET", &key, &hold.token.to_string()]).await;
    assert_eq!(
        record,
        redis::Value::BulkString(b"5 1".to_vec()),
        "the old form"
    );
    book.set_channel_quota(B, 5, COUNTER, 1).await.unwrap();
    assert_eq!(book.slot(B, 5).await, Ok(state(1, 0, 1)));
    book.release(hold.token).await.unwrap();
    assert_eq!(book.slot(B, 5).await, Ok(state(1, 0, 0)));
    book.reserve(B, 5, a(2)).await.unwrap();
    book.reserve_on(COUNTER, B, 5, a(3)).await.unwrap();
    assert_eq!(book.slot(B, 5).await, Ok(state(2, 2, 0)));
}

/// One command on whichever node owns `args[1]` (the cluster redirects are followed).
async fn raw(urls: &[String], args: &[&str]) -> redis::Value {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    if urls.len() > 1 {
        let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
        let cluster = redis::cluster::ClusterClient::new(nodes).unwrap();
        let mut c = cluster.get_async_connection().await.unwrap();
        return cmd.query_async(&mut c).await.unwrap();
    }
    let client = redis::Client::open(urls[0].as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    cmd.query_async(&mut c).await.unwrap()
}

#[test]
fn channel_quotas_keep_every_rule_on_a_server_and_on_a_cluster() {
    let Some(servers) = Servers::start() else {
        return;
    };
    let rt = runtime();
    for (name, urls) in [
        ("single", vec![servers.standalone()]),
        ("cluster", servers.cluster()),
    ] {
        rt.block_on(quotas_step_by_step(&urls, &format!("quotas-{name}")));
        rt.block_on(channels_racing_for_the_last_units(
            &urls,
            &format!("race-{name}"),
        ));
        rt.block_on(a_lapse_gives_back_to_the_quota(
            &urls,
            &format!("lapse-{name}"),
        ));
        rt.block_on(records_without_a_channel_are_open_part(
            &urls,
            &format!("old-{name}"),
        ));
        redis_model::compare_weighted(&rt, &urls, &format!("channels-model-{name}"), 64, 3);
    }
}
