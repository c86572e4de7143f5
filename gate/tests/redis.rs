//! Two gate processes on one Redis Cluster, in front of one upstream: one line across both,
//! a pass from one accepted by the other, the next in line admitted on the other node when
//! the upstream finishes a pass, a booking made through one seen through the other, and a
//! standby request joined through one served by a cancellation through the other.

#![cfg(not(loom))]

mod support;

use std::time::Duration;

use support::client::{self, Visitor};
use support::procs::{Gate, SERVICE_TOKEN, Setup, Upstream, eventually};
use support::redis::Servers;

fn service(gate: &Gate, method: &str, path: &str, body: &str) -> client::Reply {
    let auth = format!("Bearer {SERVICE_TOKEN}");
    client::send(
        &gate.addr,
        method,
        path,
        &[("Authorization", &auth)],
        body.as_bytes(),
    )
}

fn visitor_id(reply: &client::Reply) -> Option<String> {
    reply
        .json()
        .get("headers")?
        .get("surgegate-visitor")?
        .as_str()
        .map(str::to_owned)
}

#[test]
fn two_gates_share_one_line_and_one_book() {
    let Some(servers) = Servers::start() else {
        return;
    };
    let Some(upstream) = Upstream::start() else {
        return;
    };
    let urls: Vec<String> = servers
        .cluster()
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect();
    let namespace = format!("\"gate{}\"", std::process::id());
    let setup = Setup::new(&upstream.addr)
        .set("redis", "urls", &format!("[{}]", urls.join(", ")))
        .set("redis", "namespace", &namespace);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Gate::start_in(dir_a.path(), &setup);
    let b = Gate::start_in(dir_b.path(), &setup);

    // Admitted through A; the pass works on B, for the same visitor.
    let mut first = Visitor::default();
    let on_a = first.json(&a.addr, "/register");
    let id = visitor_id(&on_a).unwrap_or_else(|| panic!("not admitted: {}", on_a.text()));
    let on_b = first.json(&b.addr, "/register/step");
    assert_eq!(
        visitor_id(&on_b).as_deref(),
        Some(id.as_str()),
        "B did not take A's pass: {}",
        on_b.text()
    );

    // One line across both nodes.
    let mut second = Visitor::default();
    let w = second.json(&b.addr, "/register").json();
    assert_eq!(
        (w["status"].as_str(), w["position"].as_u64()),
        (Some("waiting"), Some(1)),
        "{w}"
    );
    let mut third = Visitor::default();
    let w = third.json(&a.addr, "/appointments").json();
    assert_eq!(w["position"], 2, "{w}");

    // The first finishes through B; the second is admitted on A.
    assert_eq!(first.get(&b.addr, "/register/done").status, 200);
    let admitted = eventually(
        Duration::from_secs(10),
        "the second admitted on the other node",
        || visitor_id(&second.json(&a.addr, "/register")),
    );
    assert_ne!(admitted, id);
    assert_eq!(third.json(&b.addr, "/register").json()["position"], 1);

    // A booking made through A is seen, and cancelled, through B.
    assert_eq!(
        service(&a, "PUT", "/v1/branches/4/slots/2", r#"{"capacity": 1}"#).status,
        200
    );
    let hold = service(
        &a,
        "POST",
        "/v1/holds",
        r#"{"branch":4,"slot":2,"applicant":77}"#,
    );
    assert_eq!(hold.status, 201, "{}", hold.text());
    let token = hold.json()["token"].as_str().unwrap().to_owned();
    let busy = service(
        &b,
        "POST",
        "/v1/holds",
        r#"{"branch":4,"slot":2,"applicant":78}"#,
    );
    assert_eq!(
        (busy.status, busy.json()["error"].as_str()),
        (409, Some("full")),
        "the other node overbooked"
    );
    assert_eq!(
        service(&b, "POST", &format!("/v1/holds/{token}/confirm"), "").status,
        200
    );
    let seen = service(&b, "GET", &format!("/v1/bookings/{token}"), "");
    assert_eq!(
        (seen.status, seen.json()["applicant"].as_u64()),
        (200, Some(77))
    );
    assert_eq!(
        service(&a, "GET", "/v1/applicants/77/bookings", "")
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let slot = service(&b, "GET", "/v1/branches/4/availability?from=0&to=5", "").json();
    assert_eq!(slot[0]["booked"], 1, "{slot}");
    assert_eq!(
        service(&b, "DELETE", &format!("/v1/bookings/{token}"), "").status,
        204
    );
    assert_eq!(
        service(&a, "GET", &format!("/v1/bookings/{token}"), "").status,
        404
    );
    // Standby across both nodes: joined through B, served by a cancellation through A, the
    // unit kept from a reservation through A, its hold seen through B.
    assert_eq!(
        service(&a, "PUT", "/v1/branches/6/slots/1", r#"{"capacity": 1}"#).status,
        200
    );
    let hold = service(
        &a,
        "POST",
        "/v1/holds",
        r#"{"branch":6,"slot":1,"applicant":90}"#,
    );
    let token = hold.json()["token"].as_str().unwrap().to_owned();
    let join = r#"{"applicant":91,"branches":[6],"from":0,"to":3}"#;
    let joined = service(&b, "POST", "/v1/standby", join);
    assert_eq!(joined.status, 201, "{}", joined.text());
    assert_eq!(
        service(&a, "GET", "/v1/applicants/91/standby", "").json()["status"],
        "waiting"
    );
    assert_eq!(
        service(&a, "DELETE", &format!("/v1/holds/{token}"), "").status,
        204
    );
    let racer = service(
        &a,
        "POST",
        "/v1/holds",
        r#"{"branch":6,"slot":1,"applicant":92}"#,
    );
    assert_eq!(racer.json()["error"], "full", "{}", racer.text());
    let offer = service(&b, "GET", "/v1/applicants/91/standby", "").json();
    assert_eq!(
        (
            offer["status"].as_str(),
            offer["branch"].as_u64(),
            offer["slot"].as_u64()
        ),
        (Some("offered"), Some(6), Some(1)),
        "{offer}"
    );
    let given = offer["token"].as_str().unwrap();
    assert_eq!(
        service(&a, "POST", &format!("/v1/holds/{given}/confirm"), "").status,
        200
    );

    // Each node says its book is on Redis, and is ready.
    for gate in [&a, &b] {
        assert_eq!(client::get(&gate.addr, "/readyz").status, 200);
    }
}
