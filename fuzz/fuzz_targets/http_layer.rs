//! Requests of every shape through `WaitingRoomLayer` in front of an app, on a `ManualClock`
//! room admitting one a second: any method, path, header and cookie a client can send (and the
//! cookies the layer set before, sent back or altered), from trusted proxies and others, over
//! HTTP or HTTPS. After every request: never a panic and never a 500; the app is reached only
//! with a pass on the request; a cross-site request never gets a cookie; the room's invariants
//! hold.
#![no_main]

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use arbitrary::Arbitrary;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use surgegate::http::WaitingRoomLayer;
use surgegate::pass::{KeyId, Keyring};
use surgegate::{ManualClock, Pass, WaitingRoom};
use tower::{Layer, Service};

/// The header names a step may send (the ones the layer reads, and a few it does not).
const NAMES: [&str; 12] = [
    "cookie",
    "accept",
    "accept-language",
    "sec-fetch-site",
    "sec-fetch-mode",
    "x-forwarded-for",
    "x-forwarded-proto",
    "sg-pass",
    "sg-visitor",
    "host",
    "origin",
    "content-type",
];
const PATHS: [&str; 6] = [
    "/",
    "/register",
    "/surgegate/leave",
    "/book",
    "//",
    "/register/x",
];

#[derive(Arbitrary, Debug)]
struct Step<'a> {
    method: u8,
    path: u8,
    /// Appended to the path (kept only if the URI stays valid).
    suffix: &'a str,
    headers: Vec<(u8, &'a [u8])>,
    /// Send back the cookies the layer set so far (a browser), or not (a new visitor).
    with_jar: bool,
    /// The connection's peer: 0 loopback, 1 a trusted proxy, 2 an IPv6 client, else none.
    peer: u8,
    advance_ms: u16,
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    https: bool,
    steps: Vec<Step<'a>>,
}

/// The peer address, carried to the layer's hook in the request's extensions.
#[derive(Clone, Copy)]
struct Peer(IpAddr);

fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    // Every backend call of an in-process room is ready at once.
    for _ in 0..64 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("the layer did not finish on an in-process room");
}

fn request(step: &Step, jar: &[String]) -> Option<Request<String>> {
    let methods = [
        Method::GET,
        Method::POST,
        Method::HEAD,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
    ];
    let method = methods[usize::from(step.method) % methods.len()].clone();
    let path = format!(
        "{}{}",
        PATHS[usize::from(step.path) % PATHS.len()],
        step.suffix
    );
    let uri: http::Uri = path.parse().or_else(|_| PATHS[0].parse()).ok()?;
    let mut builder = Request::builder().method(method).uri(uri);
    if step.with_jar && !jar.is_empty() {
        builder = builder.header(header::COOKIE, jar.join("; "));
    }
    for (name, value) in step.headers.iter().take(16) {
        let name = HeaderName::from_static(NAMES[usize::from(*name) % NAMES.len()]);
        if let Ok(value) = HeaderValue::from_bytes(value) {
            builder = builder.header(name, value);
        }
    }
    let peer = match step.peer % 4 {
        0 => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        1 => Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))),
        2 => Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 3, 4, 5, 6))),
        _ => None,
    };
    let mut request = builder.body(String::new()).ok()?;
    if let Some(ip) = peer {
        request.extensions_mut().insert(Peer(ip));
    }
    Some(request)
}

fuzz_target!(|input: Input| {
    let clock = ManualClock::new();
    let room = Arc::new(
        WaitingRoom::builder()
            .rate_per_second(1)
            .burst(1)
            .max_waiting(8)
            .checkin_timeout(Duration::from_secs(30))
            .pass_ttl(Duration::from_secs(60))
            .clock(clock.clone())
            .build(),
    );
    let keys = Keyring::new(KeyId(1), &[9u8; 32]).expect("a valid key");
    let layer = WaitingRoomLayer::builder(room.clone(), keys)
        .peer_address(|parts| parts.extensions.get::<Peer>().map(|p| p.0))
        .trusted_proxies(["10.0.0.0/8"])
        .limit_new_visitors_per_client(4)
        .served_over_https(input.https)
        .build()
        .expect("a valid layer");
    let reached_without_pass = Arc::new(AtomicBool::new(false));
    let flag = reached_without_pass.clone();
    let app = tower::service_fn(move |request: Request<String>| {
        if request.extensions().get::<Pass>().is_none() {
            flag.store(true, Ordering::Relaxed);
        }
        async { Ok::<_, Infallible>(Response::new(String::from("app"))) }
    });
    let mut service = layer.layer(app);
    let mut jar: Vec<String> = Vec::new();
    for step in input.steps.iter().take(24) {
        clock.advance(Duration::from_millis(u64::from(step.advance_ms)));
        let Some(request) = request(step, &jar) else {
            continue;
        };
        let cross_site = request
            .headers()
            .get_all("sec-fetch-site")
            .iter()
            .any(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
        let response = ready(service.call(request)).expect("the app never fails");
        assert_ne!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            !reached_without_pass.load(Ordering::Relaxed),
            "the app was reached without a pass"
        );
        let set: Vec<String> = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").to_owned())
            .collect();
        assert!(
            !(cross_site && !set.is_empty()),
            "a cross-site request got cookies: {set:?}"
        );
        for cookie in set {
            let name = cookie.split('=').next().unwrap_or("").to_owned();
            jar.retain(|c| c.split('=').next() != Some(name.as_str()));
            jar.push(cookie);
        }
        room.check_invariants().expect("the room's invariants");
    }
});
