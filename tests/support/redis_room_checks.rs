//! The waiting room's rules on a `RedisWaitingRoom` (real time, short intervals), and the HTTP
//! layer on it. Included by `tests/redis.rs`, which starts the servers.

use std::sync::Arc;
use std::time::Duration;

use surgegate::redis::RedisWaitingRoom;
use surgegate::{ClaimError, Entry, JoinError, PollError, TicketToken, VisitorId};

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

/// Every rule of the room that real time can check, in order.
pub async fn rules(urls: &[String], namespace: &str) {
    let room = room(urls, namespace, 4, 2, 4).await;
    let v = VisitorId;
    // The burst admits two at once; then a line in order, with exact positions and ETAs.
    let Entry::Admitted(p1) = room.join(v(1)).await.unwrap() else {
        panic!("burst")
    };
    let Entry::Admitted(_) = room.join(v(2)).await.unwrap() else {
        panic!("burst")
    };
    let t3 = waiting(&room.join(v(3)).await.unwrap());
    let t4 = waiting(&room.join(v(4)).await.unwrap());
    let t5 = waiting(&room.join(v(5)).await.unwrap());
    assert_eq!((t3.1, t4.1, t5.1), (1, 2, 3));
    assert!(t3.2 <= t4.2 && t4.2 <= t5.2, "ETA grows with the place");
    assert!(
        t5.2 <= Duration::from_millis(750),
        "three places at 4/s: {:?}",
        t5.2
    );
    // A refresh keeps the place and the token; the pass holder gets the same pass.
    assert_eq!(waiting(&room.join(v(4)).await.unwrap()).0, t4.0);
    assert!(matches!(room.join(v(1)).await.unwrap(), Entry::Admitted(p) if p.token == p1.token));
    assert_eq!(room.entry_of(v(9)).await.unwrap(), None);
    // The line's bound: a newcomer is refused and nothing changes.
    room.join(v(6)).await.unwrap();
    let full = room.join(v(7)).await;
    assert!(
        matches!(full, Err(JoinError::Full { retry_after }) if retry_after > Duration::ZERO),
        "{full:?}"
    );
    assert_eq!(room.stats().await.unwrap().waiting, 4);
    // Claims: a claimed pass lasts; a waiting ticket is not admitted yet.
    assert_eq!(room.claim(p1.token).await.map(|p| p.token), Ok(p1.token));
    assert_eq!(room.claim(t5.0).await, Err(ClaimError::NotAdmitted));
    // FIFO at the rate: in 0.6 s, two more (one every 250 ms), the first two in line.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(matches!(room.poll(t3.0).await.unwrap(), Entry::Admitted(_)));
    assert!(matches!(room.poll(t4.0).await.unwrap(), Entry::Admitted(_)));
    assert_eq!(waiting(&room.poll(t5.0).await.unwrap()).1, 1);
    // Leaving: those behind move up.
    room.pause().await.unwrap();
    room.finish(t5.0).await.unwrap();
    let behind = room.entry_of(v(6)).await.unwrap().unwrap();
    assert_eq!(waiting(&behind).1, 1);
    assert_eq!(room.finish(t5.0).await, Err(PollError::UnknownToken));
    // Abandonment: a visitor silent past the check-in timeout leaves (paused: nobody admitted).
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    assert_eq!(room.poll(waiting(&behind).0).await, Err(PollError::Expired));
    let s = room.stats().await.unwrap();
    assert_eq!(
        (s.waiting, s.dropped_total, s.left_total, s.paused),
        (0, 1, 1, true)
    );
    // Unclaimed passes (v2, v3, v4) lapsed at their claim deadline; the claimed one lasts.
    assert_eq!(s.active, 1, "{s:?}");
    assert_eq!(room.claim(t3.0).await, Err(ClaimError::Expired));
    // Closed: newcomers refused, the pass holder still known.
    room.close().await.unwrap();
    assert_eq!(room.join(v(20)).await, Err(JoinError::Closed));
    assert!(matches!(room.join(v(1)).await.unwrap(), Entry::Admitted(_)));
    room.reopen().await.unwrap();
    room.resume().await.unwrap();
    // The rate bound over the whole run, on the server's clock.
    let s = room.stats().await.unwrap();
    assert!(s.admitted_total <= 2 + 4 * 4, "{s:?}");
    // Limits change together, or not at all.
    assert!(room.set_limits(0, 5, 5).await.is_err());
    room.set_limits(9, 3, 7).await.unwrap();
    let s = room.stats().await.unwrap();
    assert_eq!((s.rate_per_second, s.burst, s.max_active), (9, 3, 7));
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
