//! What only a shared `RedisWaitingRoom` does (two nodes on one line, signed places after a
//! lost entry), and the HTTP layer on it. Included by `tests/redis.rs`, which starts the
//! servers; the room's rules are in `tests/backend_suite.rs`.

use std::sync::Arc;
use std::time::Duration;

use surgegate::redis::RedisWaitingRoom;
use surgegate::{Entry, PollError, TicketToken, VisitorId};

async fn room(
    urls: &[String],
    namespace: &str,
    rate: u32,
    burst: u32,
    max_waiting: u32,
) -> RedisWaitingRoom {
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    RedisWaitingRoom::builder()
        .rate_per_second(rate)
        .burst(burst)
        .max_waiting(max_waiting)
        .checkin_timeout(Duration::from_millis(1_500))
        .pass_ttl(Duration::from_secs(60))
        .claim_timeout(Duration::from_millis(800))
        .namespace(namespace)
        .connect(&urls)
        .await
        .unwrap()
}

fn waiting(entry: &Entry) -> (TicketToken, u64, Duration) {
    match entry {
        Entry::Waiting(t) => (t.token, t.position, t.eta),
        Entry::Admitted(p) => panic!("admitted: {p:?}"),
    }
}

/// Two nodes (two connections) joining in turn share one line with exact positions, and the
/// HTTP layer runs on the shared room.
pub async fn two_nodes_and_the_layer(urls: &[String], namespace: &str) {
    let a = room(urls, namespace, 1, 1, 10).await;
    let b = room(urls, namespace, 1, 1, 10).await;
    a.pause().await.unwrap();
    let mut tokens = Vec::new();
    for i in 0..4u64 {
        let node = if i % 2 == 0 { &a } else { &b };
        let (token, position, _) = waiting(&node.join(VisitorId(100 + i)).await.unwrap());
        assert_eq!(position, i + 1);
        tokens.push(token);
    }
    for (i, token) in tokens.iter().enumerate() {
        let node = if i % 2 == 0 { &b } else { &a };
        assert_eq!(waiting(&node.poll(*token).await.unwrap()).1, i as u64 + 1);
    }
    layer(Arc::new(b)).await;
}

/// The same layer as in-process, on the shared room: a waiting app's JSON.
async fn layer(room: Arc<RedisWaitingRoom>) {
    use axum::body::Body;
    use http::Request;
    use http_body_util::BodyExt;
    use surgegate::http::WaitingRoomLayer;
    use surgegate::pass::{KeyId, Keyring};
    use tower::ServiceExt;

    let keys = Keyring::new(KeyId(1), &[5; 32]).unwrap();
    let app = axum::Router::new()
        .route("/register", axum::routing::get(|| async { "form" }))
        .layer(WaitingRoomLayer::new(room, keys));
    let request = Request::get("/register")
        .header("accept", "application/json")
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["status"], "waiting");
    assert_eq!(
        json["position"], 5,
        "behind the four of the two nodes: {json}"
    );
    assert_eq!(json["waiting"], 5);
}

/// Runs raw commands on the store (to play a failover that lost an entry).
async fn raw(urls: &[String], commands: &[Vec<String>]) {
    let run = |cmd: &Vec<String>| {
        let mut c = redis::cmd(&cmd[0]);
        for arg in &cmd[1..] {
            c.arg(arg);
        }
        c
    };
    if urls.len() > 1 {
        let client = redis::cluster::ClusterClient::new(urls.to_vec()).unwrap();
        let mut conn = client.get_async_connection().await.unwrap();
        for cmd in commands {
            run(cmd)
                .query_async::<redis::Value>(&mut conn)
                .await
                .unwrap();
        }
    } else {
        let client = redis::Client::open(urls[0].as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        for cmd in commands {
            run(cmd)
                .query_async::<redis::Value>(&mut conn)
                .await
                .unwrap();
        }
    }
}

/// A visitor whose entry the store lost takes its old place back with its signed place text;
/// nobody else can, and an ended ticket's place is not given back.
pub async fn places_survive_a_lost_entry(urls: &[String], namespace: &str) {
    use surgegate::pass::{KeyId, Keyring};
    let addresses: Vec<&str> = urls.iter().map(String::as_str).collect();
    let room = RedisWaitingRoom::builder()
        .rate_per_second(1)
        .burst(1)
        .max_waiting(100)
        .keys(Keyring::new(KeyId(1), &[8; 32]).unwrap())
        .namespace(namespace)
        .connect(&addresses)
        .await
        .unwrap();
    room.pause().await.unwrap();
    let mut places = Vec::new();
    for v in 1..=3 {
        let (entry, place) = room.join_with_place(VisitorId(v)).await.unwrap();
        assert_eq!(waiting(&entry).1, v);
        places.push((
            waiting(&entry).0,
            place.expect("a place text while waiting"),
        ));
    }
    // The store loses visitor 2's entry, as a failover that had not replicated it would.
    let (t2, place2) = places[1].clone();
    let key = |k: &str| format!("{{{namespace}:room}}:{k}");
    let s = |x: &str| x.to_owned();
    raw(
        urls,
        &[
            vec![s("ZREM"), key("line"), t2.to_string()],
            vec![s("ZREM"), key("deadlines"), t2.to_string()],
            vec![s("HDEL"), key("tickets"), t2.to_string()],
            vec![s("HDEL"), key("visitors"), s("2")],
        ],
    )
    .await;
    assert_eq!(
        waiting(&room.entry_of(VisitorId(3)).await.unwrap().unwrap()).1,
        2
    );
    let (back, _) = room.rejoin(VisitorId(2), &place2).await.unwrap();
    assert_eq!(
        (waiting(&back).0, waiting(&back).1),
        (t2, 2),
        "the old place, the old token"
    );
    assert_eq!(
        waiting(&room.entry_of(VisitorId(3)).await.unwrap().unwrap()).1,
        3
    );
    // Another visitor's text is no use: a plain join at the back.
    let (other, _) = room.rejoin(VisitorId(7), &place2).await.unwrap();
    assert_eq!(waiting(&other).1, 4);
    assert_ne!(waiting(&other).0, t2);
    // A ticket that ended (its visitor left) is not taken back.
    let (t1, place1) = places[0].clone();
    room.finish(t1).await.unwrap();
    let (again, _) = room.rejoin(VisitorId(1), &place1).await.unwrap();
    assert_eq!(waiting(&again).1, 4, "behind everyone");
    assert_ne!(waiting(&again).0, t1);
    assert_eq!(room.poll(t1).await, Err(PollError::UnknownToken));
}

/// An old place text never takes a place back: one past the room's `place_max_age`, or one
/// issued before the latest ended ticket the room forgot (its `ENDED` set is bounded), since
/// it may name that ticket. A fresh text of a lost entry still does.
pub async fn old_places_never_come_back(urls: &[String], namespace: &str) {
    use surgegate::pass::{KeyId, Keyring, PlaceClaims};
    let addresses: Vec<&str> = urls.iter().map(String::as_str).collect();
    let keys = Keyring::new(KeyId(1), &[8; 32]).unwrap();
    let room = RedisWaitingRoom::builder()
        .rate_per_second(1)
        .burst(1)
        .max_waiting(100)
        .keys(keys.clone())
        .place_max_age(Duration::from_secs(600))
        .namespace(namespace)
        .connect(&addresses)
        .await
        .unwrap();
    room.pause().await.unwrap();
    let mut places = Vec::new();
    for v in 1..=3 {
        let (entry, place) = room.join_with_place(VisitorId(v)).await.unwrap();
        places.push((
            waiting(&entry).0,
            place.expect("a place text while waiting"),
        ));
    }
    let key = |k: &str| format!("{{{namespace}:room}}:{k}");
    let s = |x: &str| x.to_owned();
    let lose = |token: TicketToken, visitor: &str| {
        vec![
            vec![s("ZREM"), key("line"), token.to_string()],
            vec![s("ZREM"), key("deadlines"), token.to_string()],
            vec![s("HDEL"), key("tickets"), token.to_string()],
            vec![s("HDEL"), key("visitors"), s(visitor)],
        ]
    };
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    // The room forgot an ended ticket just now: every text issued before it (less the
    // nodes' clock skew) might name that one, and joins at the back.
    let (t1, place1) = places[0].clone();
    raw(urls, &lose(t1, "1")).await;
    let forgot = vec![
        s("HSET"),
        key("state"),
        s("ended_evicted_us"),
        now_us.to_string(),
    ];
    raw(urls, &[forgot]).await;
    let (back, _) = room.rejoin(VisitorId(1), &place1).await.unwrap();
    assert_eq!(waiting(&back).1, 3, "behind everyone");
    assert_ne!(waiting(&back).0, t1);
    // Forgotten long enough ago: a fresh text of a lost entry takes its place back.
    let long_ago = (now_us - 3_600_000_000).to_string();
    raw(
        urls,
        &[vec![
            s("HSET"),
            key("state"),
            s("ended_evicted_us"),
            long_ago,
        ]],
    )
    .await;
    let (t2, place2) = places[1].clone();
    raw(urls, &lose(t2, "2")).await;
    let (kept, _) = room.rejoin(VisitorId(2), &place2).await.unwrap();
    assert_eq!(
        (waiting(&kept).0, waiting(&kept).1),
        (t2, 1),
        "its old place"
    );
    // A text past place_max_age (signed as the room would have, two hours ago) joins at the
    // back, though its entry is unknown to the store.
    let (t3, _) = places[2].clone();
    raw(urls, &lose(t3, "3")).await;
    let old = keys.sign_place_at(&PlaceClaims {
        room: crc32c::crc32c(namespace.as_bytes()),
        visitor: VisitorId(3),
        token: t3,
        seq: 3,
        issued_at_unix_s: (now_us / 1_000_000) as u64 - 7200,
    });
    let (late, _) = room.rejoin(VisitorId(3), &old).await.unwrap();
    assert_ne!(waiting(&late).0, t3, "an old text is a plain join");
    assert_eq!(waiting(&late).1, 3);
}
