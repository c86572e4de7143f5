//! The HTTP protocol of a gated route, one case at a time, through an axum router driven with
//! `tower::ServiceExt::oneshot` on a `ManualClock` (no sockets, no sleeps).
#![cfg(all(feature = "http", not(loom)))]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::{Extension, Router};
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use surgegate::http::WaitingRoomLayer;
use surgegate::pass::{KeyId, Keyring, PassClaims};
use surgegate::{ManualClock, Pass, VisitorId, WaitingRoom};
use tower::ServiceExt;

type Room = Arc<WaitingRoom<ManualClock>>;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

struct Portal {
    clock: ManualClock,
    room: Room,
    app: Router,
}

fn keys() -> Keyring {
    Keyring::new(KeyId(1), SECRET).unwrap()
}

fn room(clock: &ManualClock, max_waiting: u32) -> Room {
    Arc::new(
        WaitingRoom::builder()
            .rate_per_second(1)
            .burst(1)
            .max_waiting(max_waiting)
            .checkin_timeout(Duration::from_secs(30))
            .pass_ttl(Duration::from_secs(600))
            .clock(clock.clone())
            .build(),
    )
}

fn router(layer: WaitingRoomLayer<Room>) -> Router {
    Router::new()
        .route(
            "/register",
            get(|Extension(pass): Extension<Pass>| async move {
                format!("form for {}", pass.visitor.0)
            }),
        )
        .route(
            "/surgegate/leave",
            get(|| async { "never reached" }).post(|| async { "never reached" }),
        )
        .layer(layer)
        .route("/", get(|| async { "open" }))
}

fn portal() -> Portal {
    let clock = ManualClock::new();
    let room = room(&clock, 100);
    let app = router(WaitingRoomLayer::new(room.clone(), keys()));
    Portal { clock, room, app }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The value a `Set-Cookie` header gives cookie `name`, if one does.
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .find_map(|v| {
                let text = v.to_str().ok()?;
                let (key, rest) = text.split_once('=')?;
                (key == name).then(|| rest.split(';').next().unwrap_or("").to_owned())
            })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

fn get_req(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::get(path);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(Body::empty()).unwrap()
}

const JSON: (&str, &str) = ("accept", "application/json");

/// The first visitor in: admitted, with the pass and visitor cookies; returns them.
async fn admit_first(p: &Portal) -> (String, String) {
    let a = send(&p.app, get_req("/register", &[])).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.starts_with("form for "), "{}", a.body);
    let pass = a.cookie("sg_pass").expect("a pass cookie");
    let visitor = a.cookie("sg_visitor").expect("a visitor cookie");
    // A browser keeps them in its HttpOnly cookies only; an app asks for the headers.
    assert_eq!((a.header("sg-pass"), a.header("sg-visitor")), (None, None));
    (pass, visitor)
}

#[tokio::test]
async fn open_routes_are_not_gated() {
    let p = portal();
    for _ in 0..5 {
        let a = send(&p.app, get_req("/", &[])).await;
        assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "open"));
    }
    assert_eq!(p.room.stats().admitted_total, 0);
}

#[tokio::test]
async fn an_admitted_visitor_gets_a_pass_that_works_by_cookie_and_by_header() {
    let p = portal();
    let (pass, _) = admit_first(&p).await;
    let cookie = format!("sg_pass={pass}");
    let by_cookie = send(&p.app, get_req("/register", &[("cookie", &cookie)])).await;
    assert_eq!(by_cookie.status, StatusCode::OK);
    assert!(by_cookie.body.starts_with("form for "));
    assert_eq!(
        by_cookie.cookie("sg_pass"),
        None,
        "a live pass is not reissued"
    );
    let by_header = send(&p.app, get_req("/register", &[("sg-pass", &pass)])).await;
    assert_eq!(by_header.body, by_cookie.body);
    let stats = p.room.stats();
    assert_eq!(
        (stats.admitted_total, stats.active, stats.waiting),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn a_waiting_app_gets_the_pinned_json_and_headers() {
    let p = portal();
    admit_first(&p).await;
    let a = send(&p.app, get_req("/register", &[JSON])).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("cache-control"), Some("private, no-store"));
    assert_eq!(a.header("content-type"), Some("application/json"));
    let json = a.json();
    assert_eq!(json["status"], "waiting");
    assert_eq!(json["position"], 1);
    assert_eq!(json["waiting"], 1);
    assert_eq!(json["eta_seconds"], 1);
    let refresh = json["refresh_seconds"].as_u64().unwrap();
    assert_eq!(a.header("retry-after"), Some(refresh.to_string().as_str()));
    assert!((1..=10).contains(&refresh), "{refresh}");
    assert!(a.cookie("sg_visitor").is_some());
    assert!(a.cookie("sg_pass").is_none());
}

#[tokio::test]
async fn a_refresh_keeps_the_place_and_counts_as_a_check_in() {
    let p = portal();
    admit_first(&p).await;
    let second = send(&p.app, get_req("/register", &[JSON])).await;
    let visitor = format!("sg_visitor={}", second.cookie("sg_visitor").unwrap());
    let third = send(&p.app, get_req("/register", &[JSON])).await;
    assert_eq!(third.json()["position"], 2);
    // Refreshing (with the visitor cookie) keeps place 1 however often it happens, and keeps
    // the visitor in line long past the check-in timeout while the room is paused.
    p.room.pause();
    for _ in 0..40 {
        let again = send(&p.app, get_req("/register", &[JSON, ("cookie", &visitor)])).await;
        assert_eq!(again.json()["position"], 1, "{}", again.body);
        assert!(
            again.cookie("sg_visitor").is_none(),
            "no new identity on a refresh"
        );
        let refresh = again.json()["refresh_seconds"].as_u64().unwrap();
        p.clock.advance(Duration::from_secs(refresh));
    }
    // The third visitor never refreshed: dropped after the timeout.
    assert_eq!(p.room.stats().waiting, 1);
    // The app's header works as well as the cookie.
    let header_text = visitor.trim_start_matches("sg_visitor=");
    let by_header = send(
        &p.app,
        get_req("/register", &[JSON, ("sg-visitor", header_text)]),
    )
    .await;
    assert_eq!(by_header.json()["position"], 1);
    assert_eq!(p.room.stats().waiting, 1);
}

#[tokio::test]
async fn the_waiting_page_is_html_in_english_or_arabic_and_refreshes_itself() {
    let p = portal();
    admit_first(&p).await;
    for _ in 0..3 {
        send(&p.app, get_req("/register", &[])).await;
    }
    let en = send(
        &p.app,
        get_req("/register", &[("accept-language", "en-US,en;q=0.9")]),
    )
    .await;
    assert_eq!(en.status, StatusCode::OK);
    assert_eq!(en.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(en.body.contains("lang=\"en\"") && en.body.contains("You are in line"));
    assert!(
        en.body.contains(">4</p>") && en.body.contains("of 4 waiting"),
        "{}",
        en.body
    );
    let refresh = en.header("retry-after").unwrap().to_owned();
    assert!(
        en.body
            .contains(&format!("http-equiv=\"refresh\" content=\"{refresh}\""))
    );
    assert!(!en.body.contains("<script"));
    assert!(
        en.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );
    assert_eq!(en.header("x-content-type-options"), Some("nosniff"));
    let ar = send(
        &p.app,
        get_req(
            "/register",
            &[("accept-language", "ar-EG,ar;q=0.9,en;q=0.5")],
        ),
    )
    .await;
    assert!(ar.body.contains("lang=\"ar\" dir=\"rtl\""), "{}", ar.body);
    assert!(
        ar.body.contains("أنت في قائمة الانتظار") && ar.body.contains("٥"),
        "{}",
        ar.body
    );
}

#[tokio::test]
async fn forged_tampered_expired_lapsed_and_foreign_passes_count_as_none() {
    let p = portal();
    let (pass, _) = admit_first(&p).await;
    let claims = Keyring::new(KeyId(1), SECRET)
        .unwrap()
        .verify(&pass, 0)
        .unwrap();
    let forged = Keyring::new(KeyId(1), &[7; 32]).unwrap().sign(&claims);
    let mut tampered = pass.clone().into_bytes();
    tampered[40] = if tampered[40] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let foreign = keys().sign(&PassClaims { room: 9, ..claims });
    let expired = keys().sign(&PassClaims {
        expires_at_unix_s: 0, // the ManualClock reads the Unix epoch
        ..claims
    });
    for bad in [&forged, &tampered, &foreign, &expired, &"x".repeat(5000)] {
        let a = send(&p.app, get_req("/register", &[JSON, ("sg-pass", bad)])).await;
        assert_eq!(
            a.status,
            StatusCode::OK,
            "a bad pass is never an error of its own"
        );
        assert_eq!(a.json()["status"], "waiting", "{}", a.body);
    }
    // Lapsed: the pass ended in the room (here, the visitor left); its text still verifies.
    p.room.finish(claims.token).unwrap();
    let lapsed = send(&p.app, get_req("/register", &[JSON, ("sg-pass", &pass)])).await;
    assert_eq!(lapsed.json()["status"], "waiting");
    // Expired with the room's clock: 600 s later the pass text itself has expired.
    p.clock.advance(Duration::from_secs(601));
    let late = send(&p.app, get_req("/register", &[("sg-pass", &pass)])).await;
    assert!(
        late.body.starts_with("form for "),
        "admitted anew: {}",
        late.body
    );
    let new_pass = late.cookie("sg_pass").expect("a new pass");
    assert_ne!(new_pass, pass);
}

#[tokio::test]
async fn a_full_line_and_a_closed_room_answer_503_with_retry_after() {
    let clock = ManualClock::new();
    let room = room(&clock, 1);
    let app = router(WaitingRoomLayer::new(room.clone(), keys()));
    send(&app, get_req("/register", &[])).await; // admitted
    send(&app, get_req("/register", &[])).await; // waiting: the line is now full
    let full = send(&app, get_req("/register", &[JSON])).await;
    assert_eq!(full.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(full.json()["status"], "full");
    let retry = full.json()["retry_after_seconds"].as_u64().unwrap();
    assert!(retry >= 1);
    assert_eq!(full.header("retry-after"), Some(retry.to_string().as_str()));
    let page = send(&app, get_req("/register", &[])).await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.body.contains("The line is full"));
    room.close();
    let closed = send(&app, get_req("/register", &[JSON])).await;
    assert_eq!(closed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        closed.json(),
        serde_json::json!({"status": "closed", "retry_after_seconds": 60})
    );
    let closed_ar = send(&app, get_req("/register", &[("accept-language", "ar")])).await;
    assert!(closed_ar.body.contains("التسجيل مغلق"));
    assert_eq!(room.stats().waiting, 1, "refusals change nothing");
}

#[tokio::test]
async fn the_counters_add_up_to_the_requests() {
    let clock = ManualClock::new();
    let room = room(&clock, 1);
    let layer = WaitingRoomLayer::new(room.clone(), keys());
    let app = router(layer.clone());
    let first = send(&app, get_req("/register", &[])).await; // admitted
    let pass = first.cookie("sg_pass").unwrap();
    send(&app, get_req("/register", &[("sg-pass", &pass)])).await; // a pass
    send(&app, get_req("/register", &[])).await; // waiting
    send(&app, get_req("/register", &[])).await; // full
    room.close();
    send(&app, get_req("/register", &[])).await; // closed
    send(
        &app,
        Request::post("/surgegate/leave")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let c = layer.counters();
    assert_eq!((c.passes, c.joins, c.admitted, c.waiting), (1, 4, 1, 1));
    assert_eq!((c.full, c.closed, c.limited, c.left), (1, 1, 0, 1));
}

#[tokio::test]
async fn leave_gives_the_place_or_the_pass_back_and_never_adds_anyone() {
    let p = portal();
    let (pass, _) = admit_first(&p).await;
    let waiting = send(&p.app, get_req("/register", &[JSON])).await;
    let visitor = format!("sg_visitor={}", waiting.cookie("sg_visitor").unwrap());
    send(&p.app, get_req("/register", &[JSON])).await;
    assert_eq!(p.room.stats().waiting, 2);
    let post_to = |path: &str, headers: &[(&str, &str)]| {
        let mut b = Request::post(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).unwrap()
    };
    let post = |headers: &[(&str, &str)]| post_to("/surgegate/leave", headers);
    // A browser's leave (its Fetch Metadata says it is a browser's) needs the token of its
    // own waiting page.
    let browser = ("sec-fetch-site", "same-origin");
    let untokened = send(&p.app, post(&[JSON, browser, ("cookie", &visitor)])).await;
    assert_eq!(
        untokened.status,
        StatusCode::FORBIDDEN,
        "{}",
        untokened.body
    );
    assert_eq!(untokened.json()["status"], "reload");
    assert_eq!(p.room.stats().waiting, 2, "a refused leave changes nothing");
    let again = send(&p.app, get_req("/register", &[JSON, ("cookie", &visitor)])).await;
    let leave_url = again.json()["leave_url"].as_str().unwrap().to_owned();
    let left = send(
        &p.app,
        post_to(&leave_url, &[JSON, browser, ("cookie", &visitor)]),
    )
    .await;
    assert_eq!(left.json()["status"], "left");
    assert_eq!(p.room.stats().waiting, 1);
    // The one behind moved up.
    let stats = p.room.stats();
    assert_eq!((stats.waiting, stats.left_total), (1, 1));
    // The pass holder leaves: the active place is free.
    let gone = send(&p.app, post(&[("sg-pass", &pass)])).await;
    assert!(gone.body.contains("You have left"));
    assert_eq!(
        gone.cookie("sg_pass").as_deref(),
        Some(""),
        "the pass cookie is cleared"
    );
    assert_eq!(p.room.stats().active, 0);
    // Leaving with nothing, or by GET, adds nobody.
    let before = p.room.stats();
    send(&p.app, post(&[])).await;
    let by_get = send(&p.app, get_req("/surgegate/leave", &[])).await;
    assert_eq!(by_get.status, StatusCode::METHOD_NOT_ALLOWED);
    let after = p.room.stats();
    assert_eq!(
        (after.waiting, after.admitted_total),
        (before.waiting, before.admitted_total)
    );
}

#[tokio::test]
async fn a_claimed_pass_outlives_the_claim_timeout() {
    let clock = ManualClock::new();
    let room = Arc::new(
        WaitingRoom::builder()
            .rate_per_second(1)
            .burst(1)
            .claim_timeout(Duration::from_secs(20))
            .pass_ttl(Duration::from_secs(600))
            .clock(clock.clone())
            .build(),
    );
    let app = router(WaitingRoomLayer::new(room.clone(), keys()));
    let first = send(&app, get_req("/register", &[])).await;
    let pass = first.cookie("sg_pass").unwrap();
    let set_cookies: Vec<_> = first.headers.get_all(header::SET_COOKIE).iter().collect();
    assert!(
        set_cookies
            .iter()
            .any(|v| v.to_str().unwrap().contains("Max-Age=600")),
        "the claimed pass lasts pass_ttl: {set_cookies:?}"
    );
    clock.advance(Duration::from_secs(300));
    let later = send(&app, get_req("/register", &[("sg-pass", &pass)])).await;
    assert!(later.body.starts_with("form for "), "{}", later.body);
    assert_eq!(room.stats().active, 1);
}

/// A portal whose proxy (the peer named by `x-test-peer`) is trusted when in 192.0.2.0/24.
fn behind_a_proxy(https: bool) -> Router {
    let clock = ManualClock::new();
    let layer = WaitingRoomLayer::builder(room(&clock, 100), keys())
        .peer_address(|parts| {
            parts
                .headers
                .get("x-test-peer")?
                .to_str()
                .ok()?
                .parse()
                .ok()
        })
        .trusted_proxies(["192.0.2.0/24"])
        .served_over_https(https)
        .build()
        .unwrap();
    router(layer)
}

fn set_cookies(a: &Answer) -> Vec<&str> {
    a.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

#[tokio::test]
async fn over_https_cookies_are_secure_and_host_prefixed() {
    let app = behind_a_proxy(false);
    let proto = ("x-forwarded-proto", "https");
    let a = send(
        &app,
        get_req("/register", &[proto, ("x-test-peer", "192.0.2.9")]),
    )
    .await;
    let cookies = set_cookies(&a);
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    for c in &cookies {
        assert!(c.starts_with("__Host-sg_"), "{c}");
        for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(c.contains(attr), "{c} lacks {attr}");
        }
    }
    let pass = a.cookie("__Host-sg_pass").unwrap();
    let again = send(
        &app,
        get_req(
            "/register",
            &[("cookie", &format!("__Host-sg_pass={pass}"))],
        ),
    )
    .await;
    assert!(again.body.starts_with("form for "));
    // The same header from a peer that is not a trusted proxy is not believed.
    let untrusted = send(
        &app,
        get_req("/register", &[JSON, proto, ("x-test-peer", "198.51.100.1")]),
    )
    .await;
    assert!(
        set_cookies(&untrusted)
            .iter()
            .all(|c| !c.contains("Secure")),
        "{:?}",
        set_cookies(&untrusted)
    );
    // Served over HTTPS by the setting: secure cookies whatever the request says, and an
    // unprefixed cookie is not read.
    let app = behind_a_proxy(true);
    let a = send(&app, get_req("/register", &[])).await;
    let pass = a.cookie("__Host-sg_pass").expect("a secure pass cookie");
    let plain = send(
        &app,
        get_req("/register", &[JSON, ("cookie", &format!("sg_pass={pass}"))]),
    )
    .await;
    assert_eq!(
        plain.json()["status"],
        "waiting",
        "an unprefixed pass cookie is ignored"
    );
}

#[tokio::test]
async fn new_identities_are_limited_per_address_but_refreshes_are_not() {
    let clock = ManualClock::new();
    let room = room(&clock, 1000);
    let layer = WaitingRoomLayer::builder(room.clone(), keys())
        .limit_new_visitors_per_address(3, |parts| {
            parts.headers.get("x-test-ip")?.to_str().ok()?.parse().ok()
        })
        .build()
        .unwrap();
    let layer_counters = layer.clone();
    let app = router(layer);
    let ip = ("x-test-ip", "192.0.2.7");
    let mut first_visitor = None;
    for _ in 0..3 {
        let a = send(&app, get_req("/register", &[JSON, ip])).await;
        assert!(a.status.is_success(), "{}", a.body);
        first_visitor = first_visitor.or(a.cookie("sg_visitor"));
    }
    let limited = send(&app, get_req("/register", &[JSON, ip])).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.json()["status"], "limited");
    assert!(limited.header("retry-after").is_some());
    let other = send(
        &app,
        get_req("/register", &[JSON, ("x-test-ip", "198.51.100.1")]),
    )
    .await;
    assert!(other.status.is_success());
    let cookie = format!("sg_visitor={}", first_visitor.unwrap());
    for _ in 0..10 {
        let refresh = send(&app, get_req("/register", &[JSON, ip, ("cookie", &cookie)])).await;
        assert!(refresh.status.is_success(), "{}", refresh.body);
    }
    assert_eq!(room.stats().admitted_total + room.stats().waiting, 4);
    let c = layer_counters.counters();
    assert_eq!((c.limited, c.joins), (1, 14));
}

#[tokio::test]
async fn the_portal_identity_hook_replaces_the_visitor_cookie() {
    let clock = ManualClock::new();
    let room = room(&clock, 100);
    let layer = WaitingRoomLayer::builder(room.clone(), keys())
        .identity(|parts| {
            Some(VisitorId(
                parts
                    .headers
                    .get("x-account")?
                    .to_str()
                    .ok()?
                    .parse()
                    .ok()?,
            ))
        })
        .build()
        .unwrap();
    let app = router(layer);
    let a = send(&app, get_req("/register", &[("x-account", "41")])).await;
    assert_eq!(a.body, "form for 41");
    assert!(
        a.cookie("sg_visitor").is_none(),
        "the portal's identity needs no cookie"
    );
    let b = send(&app, get_req("/register", &[JSON, ("x-account", "42")])).await;
    assert_eq!(b.json()["position"], 1);
    let b_again = send(&app, get_req("/register", &[JSON, ("x-account", "42")])).await;
    assert_eq!(b_again.json()["position"], 1);
    assert_eq!(room.stats().waiting, 1);
}

#[test]
fn bad_prefixes_and_zero_limits_are_refused() {
    let clock = ManualClock::new();
    for bad in ["", "queue", "/queue/", "/q ueue", "/q\"x"] {
        let built = WaitingRoomLayer::builder(room(&clock, 1), keys())
            .prefix(bad)
            .build();
        assert!(built.is_err(), "{bad:?} accepted");
    }
    let layer = WaitingRoomLayer::builder(room(&clock, 1), keys())
        .prefix("/queue")
        .build()
        .unwrap();
    assert_eq!(layer.leave_path(), "/queue/leave");
    let zero = WaitingRoomLayer::builder(room(&clock, 1), keys())
        .limit_new_visitors_per_address(0, |_| None)
        .build();
    assert!(zero.is_err());
    let bad =
        |b: surgegate::http::WaitingRoomLayerBuilder<Room>| b.build().err().map(|e| e.to_string());
    let fresh = || WaitingRoomLayer::builder(room(&clock, 1), keys());
    let peer = |b: surgegate::http::WaitingRoomLayerBuilder<Room>| b.peer_address(|_| None);
    for (built, says) in [
        (
            bad(peer(fresh()).trusted_proxies(["10.0.0.0/33"])),
            "10.0.0.0/33",
        ),
        (
            bad(peer(fresh()).trusted_proxies(["proxy.internal"])),
            "proxy.internal",
        ),
        (bad(fresh().trusted_proxies(["10.0.0.0/8"])), "peer_address"),
        (
            bad(fresh().limit_new_visitors_per_client(5)),
            "peer_address",
        ),
        (
            bad(fresh().visitor_max_age(Duration::from_secs(59))),
            "visitor_max_age",
        ),
        (
            bad(fresh().visitor_max_age(Duration::from_secs(31 * 86_400))),
            "visitor_max_age",
        ),
    ] {
        let said = built.unwrap_or_else(|| panic!("{says}: accepted"));
        assert!(said.contains(says), "{said}");
    }
}
