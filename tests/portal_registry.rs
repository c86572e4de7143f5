//! The example portal's registrations stores, driven directly: the SQLite file in the data
//! directory and the store on a real Redis (started by the test). Applicant ids are never
//! handed out twice, a national id registers once (in one canonical form), also when two
//! registrations race, on one node or two.
#![cfg(all(feature = "http", feature = "redis", feature = "serde", not(loom)))]

#[path = "support/programs.rs"]
#[allow(dead_code)]
mod programs;
#[path = "support/redis_single.rs"]
#[allow(dead_code)]
mod redis_single;
#[path = "../examples/portal/server/mod.rs"]
#[allow(dead_code)]
mod server;

use std::collections::HashSet;
use std::sync::Arc;

use server::register::canonical_national_id;
use server::registry::{NewRegistration, RegisterError, Registrations, SqliteRegistrations};
use server::registry_redis::RedisRegistrations;
use surgegate::VisitorId;

fn person(typed_national_id: &str) -> NewRegistration {
    NewRegistration {
        name: "Amal Haddad".into(),
        national_id: canonical_national_id(typed_national_id).expect("a valid national id"),
        phone: "+962791234567".into(),
    }
}

/// Two visitors register one national id at once, `rounds` times over: each time exactly
/// one is registered and the other is told the id is taken.
async fn one_of_two_wins(a: Arc<dyn Registrations>, b: Arc<dyn Registrations>, rounds: u64) {
    for round in 0..rounds {
        let id = format!("{}", 7_000_000 + round);
        let (va, vb) = (VisitorId(500 + 2 * round), VisitorId(501 + 2 * round));
        let (ra, rb) = (a.clone(), b.clone());
        let (pa, pb) = (person(&id), person(&id));
        let first = tokio::spawn(async move { ra.register(va, pa).await });
        let second = tokio::spawn(async move { rb.register(vb, pb).await });
        let results = [first.await.unwrap(), second.await.unwrap()];
        let won = results.iter().filter(|r| r.is_ok()).count();
        let taken = results
            .iter()
            .filter(|r| **r == Err(RegisterError::NationalIdTaken))
            .count();
        assert_eq!((won, taken), (1, 1), "round {round}: {results:?}");
    }
}

/// Registrations from both stores, interleaved: every applicant id is new.
async fn ids_are_unique(a: Arc<dyn Registrations>, b: Arc<dyn Registrations>, n: u64) {
    let mut handles = Vec::new();
    for i in 0..n {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let who = person(&format!("{}", 8_000_000 + i));
        handles.push(tokio::spawn(async move {
            store.register(VisitorId(1_000_000 + i), who).await
        }));
    }
    let mut ids = HashSet::new();
    for handle in handles {
        let registered = handle.await.unwrap().expect("a new registration");
        assert!(
            ids.insert(registered.applicant),
            "{:?} twice",
            registered.applicant
        );
    }
    assert_eq!(ids.len() as u64, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_a_national_id_registers_once_however_typed_and_when_raced() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Registrations> = Arc::new(SqliteRegistrations::open(dir.path()).unwrap());
    let first = store
        .register(VisitorId(1), person("00123456"))
        .await
        .unwrap();
    assert_eq!(first.national_id, "123456");
    let again = store.register(VisitorId(2), person("123456")).await;
    assert_eq!(again, Err(RegisterError::NationalIdTaken));
    let arabic = store.register(VisitorId(3), person("١٢٣٤٥٦")).await;
    assert_eq!(arabic, Err(RegisterError::NationalIdTaken));
    one_of_two_wins(store.clone(), store.clone(), 20).await;
    ids_are_unique(store.clone(), store.clone(), 40).await;
    assert_eq!(store.count().await.unwrap(), 1 + 20 + 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_two_nodes_never_share_an_applicant_id_or_a_national_id() {
    let Some(server) = redis_single::Single::start() else {
        return;
    };
    let url = server.url();
    let urls = [url.as_str()];
    let a: Arc<dyn Registrations> = Arc::new(
        RedisRegistrations::connect(&urls, "registry-test")
            .await
            .unwrap(),
    );
    let b: Arc<dyn Registrations> = Arc::new(
        RedisRegistrations::connect(&urls, "registry-test")
            .await
            .unwrap(),
    );
    let first = a.register(VisitorId(1), person("00123456")).await.unwrap();
    assert_eq!(b.get(VisitorId(1)).await.unwrap(), Some(first.clone()));
    let again = b.register(VisitorId(2), person("123456")).await;
    assert_eq!(again, Err(RegisterError::NationalIdTaken));
    // A second submit on the other node gives the same registration back.
    let resubmit = b.register(VisitorId(1), person("999999")).await.unwrap();
    assert_eq!(resubmit, first);
    one_of_two_wins(a.clone(), b.clone(), 20).await;
    ids_are_unique(a.clone(), b.clone(), 40).await;
    assert_eq!(a.count().await.unwrap(), 1 + 20 + 40);
    assert_eq!(b.count().await.unwrap(), 1 + 20 + 40);
}

/// A failover that loses the counter's last increments (and the registrations made with
/// them, whose bookings may survive on other shards) never makes the next registrations reuse
/// their ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_a_lost_counter_never_gives_an_id_again() {
    let Some(server) = redis_single::Single::start() else {
        return;
    };
    let url = server.url();
    let store = RedisRegistrations::connect(&[url.as_str()], "lost")
        .await
        .unwrap();
    let mut before = HashSet::new();
    for i in 0..5u64 {
        let who = person(&format!("{}", 9_000_000 + i));
        before.insert(
            store
                .register(VisitorId(10 + i), who)
                .await
                .unwrap()
                .applicant,
        );
    }
    // What the failover loses: the last three registrations and the counter's last counts.
    for i in 2..5u64 {
        let visitor = (10 + i).to_string();
        let national = format!("{}", 9_000_000 + i);
        server.cli(&["HDEL", "{lost:registrations}:visitors", &visitor]);
        server.cli(&["HDEL", "{lost:registrations}:national_ids", &national]);
    }
    server.cli(&["SET", "{lost:registrations}:next_applicant", "2"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for i in 0..5u64 {
        let who = person(&format!("{}", 9_100_000 + i));
        let again = store.register(VisitorId(100 + i), who).await.unwrap();
        assert!(
            !before.contains(&again.applicant),
            "{:?} given again",
            again.applicant
        );
    }
}
