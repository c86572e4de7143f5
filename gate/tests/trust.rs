//! What the gate believes of a client, attacked through real HTTP in front of the Python
//! upstream: a trusted proxy's malformed `X-Forwarded-For` is refused (never counted as the
//! proxy), `X-Forwarded-Proto` is read at its last entry and only from a trusted proxy, the
//! texts' headers go only to a client that sent one, answers that set the visitor's cookies
//! are `private, no-store`, and `/metrics` answers only its token.

#![cfg(not(loom))]

mod support;

use support::client::{self, Visitor};
use support::procs::{ADMIN_TOKEN, Gate, Setup, Upstream};

fn start(setup: impl FnOnce(Setup) -> Setup) -> Option<(Upstream, Gate, tempfile::TempDir)> {
    let upstream = Upstream::start()?;
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start_in(dir.path(), &setup(Setup::new(&upstream.addr)));
    Some((upstream, gate, dir))
}

/// The loopback peer (the test) is the gate's trusted proxy, with a limit on new visitors.
fn behind_a_proxy(s: Setup) -> Setup {
    s.set("", "trusted_proxies", "[\"127.0.0.1\"]")
        .set("room", "new_visitors_per_minute", "2")
        .set("room", "max_active", "1000")
        .set("room", "rate_per_second", "1000")
        .set("room", "burst", "1000")
}

/// Attack: a trusted proxy passes on a client's garbage `X-Forwarded-For` entry (or is
/// misconfigured), hoping that the gate then counts the request as the proxy: one bucket of
/// new identities for everyone behind it, which one client could empty.
#[test]
fn a_malformed_forwarded_chain_from_a_trusted_proxy_is_refused() {
    let Some((_up, gate, _dir)) = start(behind_a_proxy) else {
        return;
    };
    let addr = gate.addr.as_str();
    for chain in ["not-an-address", "203.0.113.9, garbage", "203.0.113.9,,"] {
        let reply = client::send(addr, "GET", "/register", &[("X-Forwarded-For", chain)], b"");
        assert_eq!(reply.status, 400, "{chain}: {}", reply.text());
        assert_eq!(
            reply.json()["error"],
            "bad_forwarded_for",
            "{}",
            reply.text()
        );
        assert!(reply.all("set-cookie").is_empty(), "{chain}");
    }
    // Well-formed chains: each client has its own bucket of two.
    let from = |client_ip: &str| {
        client::send(
            addr,
            "GET",
            "/register",
            &[("X-Forwarded-For", client_ip)],
            b"",
        )
        .status
    };
    assert_eq!([from("198.51.100.1"), from("198.51.100.1")], [200, 200]);
    assert_eq!(from("198.51.100.1"), 429);
    assert_eq!(from("198.51.100.2"), 200, "another client, another bucket");
}

/// Attack: write `X-Forwarded-Proto: https` in front of the trusted proxy's own entry (or
/// send it straight to the gate), to get cookies set as if over HTTPS, or to have them not.
#[test]
fn only_the_trusted_proxys_own_forwarded_proto_counts() {
    let Some((_up, gate, _dir)) = start(behind_a_proxy) else {
        return;
    };
    let addr = gate.addr.as_str();
    let secure = |proto: &str, xff: &str| {
        let headers = [("X-Forwarded-Proto", proto), ("X-Forwarded-For", xff)];
        let reply = client::send(addr, "GET", "/register", &headers, b"");
        assert_eq!(reply.status, 200, "{}", reply.text());
        let cookies = reply.all("set-cookie");
        assert!(!cookies.is_empty());
        cookies
            .iter()
            .all(|c| c.starts_with("__Host-") && c.contains("Secure"))
    };
    assert!(
        secure("http, https", "198.51.100.1"),
        "the proxy's own word: https"
    );
    assert!(
        !secure("https, http", "198.51.100.2"),
        "the client's word comes first"
    );
    // An absolute-form target is the client's own writing too.
    let reply = client::send(
        addr,
        "GET",
        &format!("https://{addr}/register"),
        &[("X-Forwarded-For", "198.51.100.3")],
        b"",
    );
    assert!(
        reply
            .all("set-cookie")
            .iter()
            .all(|c| !c.contains("Secure")),
        "{:?}",
        reply.all("set-cookie")
    );
}

/// Attack: a script on the site's own page `fetch`es a gated path with `Accept:
/// application/json` and reads the visitor's pass from the answer's headers (which
/// `HttpOnly` cookies would have kept from it); or a shared cache keeps an answer that set one
/// visitor's cookies, for the next.
#[test]
fn texts_go_in_headers_only_to_apps_and_their_answers_are_never_stored() {
    let Some((_up, gate, _dir)) = start(|s| s) else {
        return;
    };
    let addr = gate.addr.as_str();
    let mut script = Visitor::default();
    let fetch = [("Accept", "application/json"), ("Sec-Fetch-Mode", "cors")];
    let reply = script.send(addr, "GET", "/register", &fetch);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(script.0.keys().any(|k| k.ends_with("sg_pass")), "admitted");
    assert_eq!(
        reply.header("sg-pass"),
        None,
        "a script's JSON fetch got the pass"
    );
    assert_eq!(reply.header("sg-visitor"), None);
    assert_eq!(reply.header("cache-control"), Some("private, no-store"));
    let mut app = Visitor::default();
    let app_headers = [("Accept", "application/json"), ("Sg-Visitor", "new")];
    let waiting = app.send(addr, "GET", "/register", &app_headers);
    assert_eq!(waiting.json()["status"], "waiting", "{}", waiting.text());
    assert!(
        waiting.header("sg-visitor").is_some(),
        "an app that asked gets its text"
    );
    assert_eq!(waiting.header("cache-control"), Some("private, no-store"));
    // An app that only asks for JSON (no Fetch Metadata: not a browser) is an app too.
    let mut plain_app = Visitor::default();
    let json_only = [("Accept", "application/json")];
    let waiting = plain_app.send(addr, "GET", "/register", &json_only);
    assert!(
        waiting.header("sg-visitor").is_some(),
        "{:?}",
        waiting.all("set-cookie")
    );
}

/// Attack: read the gate's metrics (the line's length, the upstream's health) from anywhere.
#[test]
fn metrics_answer_only_their_token() {
    let Some((_up, gate, _dir)) = start(|s| s) else {
        return;
    };
    let addr = gate.addr.as_str();
    let right = format!("Bearer {ADMIN_TOKEN}");
    let wrong = format!("Bearer {}", &ADMIN_TOKEN[..20]);
    for (auth, want) in [
        (vec![], 401),
        (vec![("Authorization", "Bearer ")], 401),
        (vec![("Authorization", wrong.as_str())], 401),
        (vec![("Authorization", right.as_str())], 200),
    ] {
        let reply = client::send(addr, "GET", "/metrics", &auth, b"");
        assert_eq!(reply.status, want, "{auth:?}: {}", reply.text());
        assert_eq!(reply.text().contains("surgegate_gate_"), want == 200);
    }
}
