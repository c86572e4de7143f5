//! The pinned protocol of a gated route through the gate, in front of the Python upstream:
//! admission with `Surgegate-Visitor`, a place in line (JSON for apps, a page for browsers),
//! the upstream's `Surgegate-Command: finish` letting the next in line in, forged passes
//! counting as none, every reading of a gated path gated, leaving, and operator templates.

#![cfg(not(loom))]

mod support;

use std::time::Duration;

use support::client::{self, Visitor};
use support::procs::{ADMIN_TOKEN, Gate, Setup, Upstream, eventually};

fn start(setup: impl FnOnce(Setup) -> Setup) -> Option<(Upstream, Gate, tempfile::TempDir)> {
    let upstream = Upstream::start()?;
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start_in(dir.path(), &setup(Setup::new(&upstream.addr)));
    Some((upstream, gate, dir))
}

fn admin(gate: &Gate, path: &str) -> serde_json::Value {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let reply = client::send(&gate.addr, "POST", path, &[("Authorization", &auth)], b"");
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

#[test]
fn one_pass_at_a_time_and_finish_lets_the_next_in() {
    let Some((_up, gate, _dir)) = start(|s| s) else {
        return;
    };
    let addr = gate.addr.as_str();
    // The first visitor is admitted at once; the upstream learns who it is, never from the client.
    let mut first = Visitor::default();
    let reply = first.send(addr, "GET", "/register/step", &[("Surgegate-Visitor", "1")]);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let visitor = reply.json()["headers"]["surgegate-visitor"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        visitor != "1" && visitor.parse::<u64>().is_ok(),
        "{visitor}"
    );
    assert!(first.0.contains_key("sg_pass"), "{:?}", reply.headers);
    assert!(
        reply.header("sg-pass").is_none(),
        "a browser got the app's header"
    );
    // Its pass lets it on, with the same identity.
    let again = first.json(addr, "/appointments");
    assert_eq!(
        again.json()["headers"]["surgegate-visitor"],
        visitor.as_str()
    );

    // The second waits: JSON for an app, a self-refreshing page for a browser.
    let mut second = Visitor::default();
    let app = [("Accept", "application/json"), ("Sg-Visitor", "new")];
    let reply = second.send(addr, "GET", "/register", &app);
    assert_eq!(reply.status, 200);
    let w = reply.json();
    assert_eq!(
        (w["status"].as_str(), w["position"].as_u64()),
        (Some("waiting"), Some(1)),
        "{w}"
    );
    assert!(w["eta_seconds"].is_u64() && w["waiting"].as_u64() >= Some(1));
    let refresh = w["refresh_seconds"].as_u64().unwrap();
    assert!(
        (1..=2).contains(&refresh),
        "refresh {refresh} within a third of the 6 s check-in"
    );
    assert_eq!(
        reply.header("retry-after"),
        Some(refresh.to_string().as_str())
    );
    assert_eq!(reply.header("cache-control"), Some("private, no-store"));
    assert!(
        reply.header("sg-visitor").is_some(),
        "an app gets its visitor text"
    );
    let page = second.get(addr, "/register");
    assert!(
        page.text().contains("http-equiv=\"refresh\"") && page.text().contains("You are in line"),
        "{}",
        page.text()
    );
    assert!(page.header("sg-visitor").is_none() && page.header("sg-pass").is_none());

    // The first says it is done: the command is the gate's alone, and ends the pass.
    let done = first.get(addr, "/register/done");
    assert_eq!(done.status, 200);
    assert!(
        done.header("surgegate-command").is_none(),
        "{:?}",
        done.headers
    );
    assert!(
        !first.0.contains_key("sg_pass"),
        "the pass cookie is cleared"
    );
    // The next in line is admitted on a refresh (within the rate of one a second).
    let admitted = eventually(Duration::from_secs(10), "the second admitted", || {
        let r = second.json(addr, "/register");
        r.json().get("headers").is_some().then_some(r)
    });
    assert_ne!(
        admitted.json()["headers"]["surgegate-visitor"],
        visitor.as_str()
    );
    let metrics = client::metrics(addr).text();
    assert!(
        metrics.contains("surgegate_gate_admissions_total 2"),
        "{metrics}"
    );
}

#[test]
fn forged_passes_count_as_none_and_every_reading_of_a_gated_path_is_gated() {
    let Some((_up, gate, _dir)) = start(|s| s) else {
        return;
    };
    let addr = gate.addr.as_str();
    let mut first = Visitor::default();
    assert_eq!(first.get(addr, "/register").status, 200);
    let pass = first.0["sg_pass"].clone();
    let mut flipped = pass.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    for forged in [
        String::from_utf8(flipped).unwrap(),
        "garbage".into(),
        "A".repeat(400),
        String::new(),
    ] {
        let cookie = format!("sg_pass={forged}");
        let reply = client::send(
            addr,
            "GET",
            "/register",
            &[("Cookie", &cookie), ("Accept", "application/json")],
            b"",
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(
            reply.json()["status"],
            "waiting",
            "a forged pass let someone in"
        );
    }
    // The room is taken: every spelling of a gated path waits too.
    for path in [
        "/%72egister",
        "//register",
        "/REGISTER",
        "/x/../register",
        "/register;x=1",
        "/appointments/hold",
    ] {
        let reply = client::send(addr, "GET", path, &[("Accept", "application/json")], b"");
        assert_eq!(
            reply.json()["status"],
            "waiting",
            "{path} went around the room: {}",
            reply.text()
        );
    }
    // The app's header works as the cookie does.
    let reply = client::send(
        addr,
        "GET",
        "/register",
        &[("Sg-Pass", &pass), ("Accept", "application/json")],
        b"",
    );
    assert!(
        reply.json()["headers"]["surgegate-visitor"].is_string(),
        "{}",
        reply.text()
    );
    // Not gated: no room at all.
    assert!(client::get(addr, "/registered").json()["headers"]["surgegate-visitor"].is_null());
}

#[test]
fn leaving_closing_and_pausing_are_answered_as_pinned() {
    let Some((_up, gate, _dir)) = start(|s| s) else {
        return;
    };
    let addr = gate.addr.as_str();
    let mut first = Visitor::default();
    assert_eq!(first.get(addr, "/register").status, 200);
    let mut second = Visitor::default();
    let waiting = second.json(addr, "/register").json();
    assert_eq!(waiting["position"], 1);
    // A browser's script (its Fetch Metadata says so), not an app.
    let json = [("Accept", "application/json"), ("Sec-Fetch-Mode", "cors")];
    // Without its waiting page's token, a browser's leave is refused and changes nothing.
    let refused = second.send(addr, "POST", "/surgegate/leave", &json);
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(refused.json()["status"], "reload");
    let leave_url = waiting["leave_url"].as_str().expect("a leave address");
    let left = second.send(addr, "POST", leave_url, &json);
    assert_eq!(left.json()["status"], "left");
    let stats = client::send(
        addr,
        "GET",
        "/admin/stats",
        &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        b"",
    )
    .json();
    assert_eq!(stats["room"]["waiting"], 0, "{stats}");

    admin(&gate, "/admin/close");
    let mut third = Visitor::default();
    let reply = third.json(addr, "/register");
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["status"], "closed");
    assert!(reply.header("retry-after").is_some());
    let page = third.send(addr, "GET", "/register", &[("Accept-Language", "ar")]);
    assert!(
        page.status == 503 && page.text().contains("dir=\"rtl\""),
        "{}",
        page.text()
    );
    admin(&gate, "/admin/reopen");
    // Finishing the first frees the place, but a paused room admits nobody.
    admin(&gate, "/admin/pause");
    first.get(addr, "/register/done");
    std::thread::sleep(Duration::from_millis(1_200));
    assert_eq!(third.json(addr, "/register").json()["status"], "waiting");
    admin(&gate, "/admin/resume");
    eventually(Duration::from_secs(10), "admitted after resume", || {
        third
            .json(addr, "/register")
            .json()
            .get("headers")
            .map(|_| ())
    });
}

#[test]
fn templates_replace_the_waiting_and_refusal_pages() {
    let Some(upstream) = Upstream::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("waiting.html"),
        "<html lang={{ lang }} dir={{ dir }}><h1>Queue of the ministry</h1><p id=pos>{{ position }}</p>\
         <p>{{ waiting }} {{ eta_seconds }} {{ refresh_seconds }}</p><form action=\"{{ leave_path }}\"></form></html>").unwrap();
    std::fs::write(
        dir.path().join("refusal.html"),
        "<h1>Sorry: {{ status }}</h1><p>{{ retry_after_seconds }}</p>",
    )
    .unwrap();
    let setup = Setup::new(&upstream.addr)
        .set("pages", "waiting", "\"waiting.html\"")
        .set("pages", "refusal", "\"refusal.html\"");
    let gate = Gate::start_in(dir.path(), &setup);
    let addr = gate.addr.as_str();
    let mut first = Visitor::default();
    // The upstream sees the browser's own Accept, not the JSON the layer was asked for.
    let reply = first.send(addr, "GET", "/register", &[("Accept", "text/html")]);
    assert_eq!(reply.json()["headers"]["accept"], "text/html");
    let mut second = Visitor::default();
    let page = second.send(addr, "GET", "/register", &[("Accept-Language", "ar")]);
    let text = page.text();
    assert!(
        text.contains("Queue of the ministry")
            && text.contains("<p id=pos>1</p>")
            && text.contains("dir=rtl"),
        "{text}"
    );
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.header("refresh").is_some(), "{:?}", page.headers);
    // Apps still get JSON.
    assert_eq!(second.json(addr, "/register").json()["status"], "waiting");
    admin(&gate, "/admin/close");
    let page = Visitor::default().get(addr, "/register");
    assert_eq!(page.status, 503);
    assert!(page.text().contains("Sorry: closed"), "{}", page.text());
}
