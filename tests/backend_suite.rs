//! One suite, written once against `BookBackend` and `RoomBackend` (`tests/support/suite/`),
//! run on the in-process `SlotBook` and `WaitingRoom` (a `ManualClock`, no sleeps) and on the
//! Redis types against a real standalone server and a real 3-primary, 3-replica cluster that
//! `tests/redis/cluster.sh` starts (and stops, also when a test fails).
//!
//! Without `redis-server` the Redis half says so and skips (and fails under `CI=true`).
#![cfg(all(feature = "redis", not(loom)))]

#[path = "support/programs.rs"]
#[allow(dead_code)]
mod programs;
#[path = "support/redis_servers.rs"]
#[allow(dead_code)]
mod redis_servers;
#[path = "support/suite/mod.rs"]
mod suite;

use suite::backends::{InProcess, OnRedis};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn every_rule_holds_in_process() {
    runtime().block_on(suite::run_all(&InProcess::new()));
}

#[test]
fn every_rule_holds_on_a_redis_server_and_on_a_cluster() {
    let Some(servers) = redis_servers::Servers::start() else {
        return;
    };
    let rt = runtime();
    rt.block_on(suite::run_all(&OnRedis::new(
        vec![servers.standalone()],
        "suite-single",
    )));
    rt.block_on(suite::run_all(&OnRedis::new(
        servers.cluster(),
        "suite-cluster",
    )));
}
