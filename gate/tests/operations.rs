//! Operating a gate: `/admin/…` behind the admin token, limits checked together, capacity
//! plans checked whole, `/metrics`, `/healthz`, `/readyz`, SIGHUP reloading the limits (a bad
//! file changes nothing), SIGTERM draining requests in flight and checkpointing the book, and
//! a scheduled opening with its pre-queue draw.

#![cfg(not(loom))]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::client::{self, Reply, Visitor};
use support::procs::{ADMIN_TOKEN, Gate, SERVICE_TOKEN, Setup, Upstream, eventually, write_config};

fn admin(gate: &Gate, method: &str, path: &str, body: &str) -> Reply {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let reply = client::send(
        &gate.addr,
        method,
        path,
        &[("Authorization", &auth)],
        body.as_bytes(),
    );
    assert_ne!(reply.status, 500, "{path}: {}", reply.text());
    reply
}

fn service(gate: &Gate, method: &str, path: &str, body: &str) -> Reply {
    let auth = format!("Bearer {SERVICE_TOKEN}");
    client::send(
        &gate.addr,
        method,
        path,
        &[("Authorization", &auth)],
        body.as_bytes(),
    )
}

fn limits(gate: &Gate) -> (u64, u64, u64) {
    let room = &admin(gate, "GET", "/admin/stats", "").json()["room"];
    let n = |k: &str| room[k].as_u64().unwrap();
    (n("rate_per_second"), n("burst"), n("max_active"))
}

#[test]
fn the_admin_api_needs_its_token_and_checks_what_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start_in(dir.path(), &Setup::new("127.0.0.1:9"));
    for auth in [
        None,
        Some("Bearer nope".to_owned()),
        Some(format!("Bearer {SERVICE_TOKEN}")),
        Some("Bearer ".to_owned()),
        Some(ADMIN_TOKEN.to_owned()),
    ] {
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        for (method, path) in [
            ("GET", "/admin/stats"),
            ("POST", "/admin/pause"),
            ("POST", "/admin/capacity"),
        ] {
            let reply = client::send(&gate.addr, method, path, &headers, b"1,0,5");
            assert_eq!(reply.status, 401, "{method} {path} with {auth:?}");
            assert_eq!(reply.json()["error"], "unauthorized");
        }
    }
    assert_eq!(limits(&gate).0, 1);
    let stats = admin(&gate, "GET", "/admin/stats", "").json();
    assert_eq!(stats["book"]["store"], "embedded");
    assert!(stats["book"]["journal"]["fsyncs"].is_u64(), "{stats}");
    assert_eq!(admin(&gate, "GET", "/admin", "").status, 200);
    assert_eq!(admin(&gate, "GET", "/admin/pause", "").status, 405);
    assert_eq!(admin(&gate, "GET", "/admin/nothing", "").status, 404);

    // The three limits together: one bad value changes none.
    let ok = admin(
        &gate,
        "POST",
        "/admin/limits",
        r#"{"rate_per_second": 20, "burst": 40}"#,
    );
    assert_eq!(
        ok.json(),
        json!({"rate_per_second": 20, "burst": 40, "max_active": 1})
    );
    for bad in [
        r#"{"rate_per_second": 30, "burst": 0}"#,
        r#"{"max_active": 0, "rate_per_second": 5}"#,
        r#"{"rate": 5}"#,
        "{",
        r#"{"burst": -1}"#,
    ] {
        let reply = admin(&gate, "POST", "/admin/limits", bad);
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text());
        assert_eq!(limits(&gate), (20, 40, 1), "{bad} changed something");
    }

    // A plan with any bad line applies nothing, and names every bad line.
    let bad = "branch,slot,capacity\n1,0,5\n1,0,6\nx,1,1\n1,99999999,1\n2,3\n2,4,5000000000\n";
    let reply = admin(&gate, "POST", "/admin/capacity", bad);
    assert_eq!(reply.status, 400);
    let body = reply.json();
    let lines: Vec<u64> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4, 5, 6, 7], "{body}");
    assert_eq!(body["bad_lines"], 5);
    assert_eq!(
        service(&gate, "GET", "/v1/branches/1/slots/0", "").status,
        404,
        "a line of a refused plan was applied"
    );
    let reply = admin(&gate, "POST", "/admin/capacity", "1,0,5\n1,1,3\n2,0,0\n");
    assert_eq!(reply.json(), json!({"applied": 3}));
    assert_eq!(
        service(&gate, "GET", "/v1/branches/1/slots/1", "").json()["capacity"],
        3
    );
    // A column per channel keeps that many units of the slot for it: the rest is open.
    let reply = admin(
        &gate,
        "POST",
        "/admin/capacity",
        "branch,slot,capacity,channel:1\n1,2,8,3\n",
    );
    assert_eq!(reply.json(), json!({"applied": 1}), "{}", reply.text());
    let slot = service(&gate, "GET", "/v1/branches/1/slots/2", "").json();
    assert_eq!(
        slot["capacity"], 5,
        "three of the eight units are kept: {slot}"
    );
    let reply = admin(
        &gate,
        "POST",
        "/admin/capacity",
        "branch,slot,capacity,channel:1\n1,3,2,3\n",
    );
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(
        service(&gate, "GET", "/v1/branches/1/slots/3", "").status,
        404,
        "a refused channel plan was applied"
    );
    assert_eq!(
        admin(&gate, "POST", "/admin/capacity", &"z".repeat(70 << 20)).status,
        413
    );
}

#[test]
fn health_readiness_and_metrics() {
    let Some(upstream) = Upstream::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start_in(
        dir.path(),
        &Setup::new(&upstream.addr).set("log", "format", "\"json\""),
    );
    assert_eq!(client::get(&gate.addr, "/healthz").json()["status"], "ok");
    assert_eq!(client::get(&gate.addr, "/readyz").json()["status"], "ready");
    assert_eq!(
        client::send(&gate.addr, "POST", "/healthz", &[], b"").status,
        405
    );
    Visitor::default().get(&gate.addr, "/register");
    Visitor::default().json(&gate.addr, "/register");
    admin(&gate, "POST", "/admin/close", "");
    Visitor::default().json(&gate.addr, "/register");
    client::get(&gate.addr, "/elsewhere");
    let metrics = client::metrics(&gate.addr).text();
    for line in [
        "surgegate_gate_requests_total{class=\"gated\",status=\"200\"} 2",
        "surgegate_gate_requests_total{class=\"gated\",status=\"503\"} 1",
        "surgegate_gate_requests_total{class=\"bypass\",status=\"200\"} 1",
        "surgegate_gate_waiting 1",
        "surgegate_gate_active 1",
        "surgegate_gate_admissions_total 1",
        "surgegate_gate_refused_closed_total 1",
        "surgegate_gate_upstream_latency_seconds_count 2",
        "surgegate_gate_journal_fsyncs_total",
        "surgegate_gate_room_up 1",
    ] {
        assert!(metrics.contains(line), "no {line:?} in\n{metrics}");
    }
    // JSON log lines, none with a secret.
    let log = gate.log();
    assert!(
        log.lines()
            .any(|l| serde_json::from_str::<Value>(l).is_ok()),
        "{log}"
    );
    assert!(!log.contains(ADMIN_TOKEN) && !log.contains(support::procs::SECRET));
}

#[test]
fn sighup_reloads_the_limits_and_a_bad_file_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new("127.0.0.1:9");
    let gate = Gate::start_in(dir.path(), &setup);
    assert_eq!(limits(&gate), (1, 1, 1));
    write_config(
        dir.path(),
        &setup
            .clone()
            .set("room", "rate_per_second", "7")
            .set("room", "burst", "9")
            .set("room", "max_active", "30"),
    );
    gate.signal("HUP");
    eventually(Duration::from_secs(5), "the new limits", || {
        (limits(&gate) == (7, 9, 30)).then_some(())
    });
    write_config(
        dir.path(),
        &setup
            .clone()
            .set("room", "rate_per_second", "8")
            .set("room", "burst", "0"),
    );
    gate.signal("HUP");
    eventually(Duration::from_secs(5), "the refusal logged", || {
        gate.log().contains("room.burst").then_some(())
    });
    assert_eq!(limits(&gate), (7, 9, 30), "a bad file changed something");
    write_config(
        dir.path(),
        &setup
            .clone()
            .set("room", "rate_per_second", "11")
            .set("room", "burst", "9")
            .set("room", "max_active", "30"),
    );
    assert_eq!(admin(&gate, "POST", "/admin/reload", "").status, 200);
    assert_eq!(limits(&gate), (11, 9, 30));
}

#[test]
fn sigterm_drains_requests_in_flight_and_checkpoints_the_book() {
    let Some(upstream) = Upstream::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(&upstream.addr);
    let mut gate = Gate::start_in(dir.path(), &setup);
    assert_eq!(
        service(&gate, "PUT", "/v1/branches/3/slots/4", r#"{"capacity": 2}"#).status,
        200
    );
    let hold = service(
        &gate,
        "POST",
        "/v1/holds",
        r#"{"branch":3,"slot":4,"applicant":9}"#,
    )
    .json();
    let token = hold["token"].as_str().unwrap().to_owned();
    assert_eq!(
        service(&gate, "POST", &format!("/v1/holds/{token}/confirm"), "").status,
        200
    );
    let addr = gate.addr.clone();
    let slow = std::thread::spawn(move || client::get(&addr, "/slow?ms=1500"));
    std::thread::sleep(Duration::from_millis(400));
    gate.signal("TERM");
    let reply = slow.join().unwrap();
    assert_eq!(
        reply.status,
        200,
        "the request in flight was not drained: {}",
        reply.text()
    );
    let status = gate.wait(Duration::from_secs(15));
    assert!(status.success(), "{status:?}: {}", gate.log());
    let log = gate.log();
    assert!(log.contains("checkpoint written"), "{log}");
    // The booking is there after a restart on the same data.
    let gate = Gate::start_in(dir.path(), &setup);
    let booking = service(&gate, "GET", &format!("/v1/bookings/{token}"), "");
    assert_eq!(booking.status, 200, "{}", booking.text());
    assert_eq!(booking.json()["applicant"], 9);
}

#[test]
fn a_scheduled_opening_holds_a_draw_among_the_early() {
    let Some(upstream) = Upstream::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = now + 3;
    let (days, secs) = (at / 86_400, at % 86_400);
    // Civil date of `days` (days since 1970-01-01).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let stamp = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    );
    let setup = Setup::new(&upstream.addr)
        .set("room", "open_at", &stamp)
        .set("room", "open_at_seed", "2026")
        .set("room", "rate_per_second", "100")
        .set("room", "burst", "100")
        .set("room", "max_active", "100");
    let gate = Gate::start_in(dir.path(), &setup);
    let mut early: Vec<Visitor> = (0..5).map(|_| Visitor::default()).collect();
    for v in &mut early {
        let reply = v.json(&gate.addr, "/register");
        assert_eq!(
            reply.json()["status"],
            "waiting",
            "admitted before the opening: {}",
            reply.text()
        );
    }
    let room = admin(&gate, "GET", "/admin/stats", "").json()["room"].clone();
    assert_eq!(room["prequeued"], 5, "{room}");
    assert_eq!(room["prequeue_seed"], 2026);
    assert_eq!(room["opens_at_unix_s"], at);
    for v in &mut early {
        eventually(
            Duration::from_secs(10),
            "admitted after the opening",
            || {
                v.json(&gate.addr, "/register")
                    .json()
                    .get("headers")
                    .map(|_| ())
            },
        );
    }
}
