//! The booking API's standby routes through a running gate (the embedded durable book): join,
//! read back, the unit a cancellation frees held for the earliest request (a hold by anyone
//! else is refused) and confirmed, leave; each applicant sees and changes only its own request;
//! and what a careless or hostile client sends (malformed JSON, wrong types, huge arrays,
//! unknown branches, reversed ranges, bad applicants, no or a wrong bearer): a 4xx with a JSON
//! body, never a 500, and nothing changed.

#![cfg(not(loom))]

mod support;

use serde_json::{Value, json};
use support::client::{self, Reply};
use support::procs::{Gate, SERVICE_TOKEN, Setup};

struct Api {
    gate: Gate,
    _dir: tempfile::TempDir,
}

impl Api {
    fn start() -> Api {
        let dir = tempfile::tempdir().unwrap();
        // The booking API needs no upstream.
        let gate = Gate::start_in(dir.path(), &Setup::new("127.0.0.1:9"));
        Api { gate, _dir: dir }
    }

    fn send(&self, method: &str, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Reply {
        let reply = client::send(&self.gate.addr, method, path, headers, body);
        assert_ne!(reply.status, 500, "{method} {path}: {}", reply.text());
        if reply.status != 204 {
            assert!(
                reply
                    .header("content-type")
                    .is_some_and(|c| c.starts_with("application/json")),
                "{method} {path}: {}",
                reply.text()
            );
        }
        reply
    }

    fn call(&self, method: &str, path: &str, body: &str) -> Reply {
        let auth = format!("Bearer {SERVICE_TOKEN}");
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        self.send(method, path, body.as_bytes(), &headers)
    }

    fn ok(&self, method: &str, path: &str, body: &str, status: u16) -> Value {
        let reply = self.call(method, path, body);
        assert_eq!(
            reply.status,
            status,
            "{method} {path} {body}: {}",
            reply.text()
        );
        if status == 204 {
            Value::Null
        } else {
            reply.json()
        }
    }

    fn err(&self, method: &str, path: &str, body: &str, status: u16, word: &str) -> Value {
        let reply = self.call(method, path, body);
        assert_eq!(
            reply.status,
            status,
            "{method} {path} {body}: {}",
            reply.text()
        );
        let v = reply.json();
        assert_eq!(v["error"], word, "{method} {path} {body}: {v}");
        v
    }

    fn standby_of(&self, applicant: u64) -> Reply {
        self.call("GET", &format!("/v1/applicants/{applicant}/standby"), "")
    }

    fn join(&self, applicant: u64, branches: &[u32], from: u32, to: u32) -> Reply {
        let body = json!({"applicant": applicant, "branches": branches, "from": from, "to": to});
        self.call("POST", "/v1/standby", &body.to_string())
    }
}

/// Opens slot 3 of branch 1 with one unit and books it for applicant 1; the booking's token.
fn one_booked_unit(api: &Api) -> String {
    api.ok("PUT", "/v1/branches/1/slots/3", r#"{"capacity": 1}"#, 200);
    let hold = api.ok(
        "POST",
        "/v1/holds",
        r#"{"branch":1,"slot":3,"applicant":1}"#,
        201,
    );
    let token = hold["token"].as_str().unwrap().to_owned();
    api.ok("POST", &format!("/v1/holds/{token}/confirm"), "", 200);
    token
}

#[test]
fn join_read_the_freed_unit_held_for_the_first_request_confirm_and_leave() {
    let api = Api::start();
    let booking = one_booked_unit(&api);
    let first = api.join(2, &[1], 0, 10);
    assert_eq!(first.status, 201, "{}", first.text());
    let first = first.json();
    assert_eq!(
        (first["applicant"].as_u64(), first["waiting"].as_u64()),
        (Some(2), Some(1))
    );
    // A retry while waiting: the same place.
    let again = api.join(2, &[1], 0, 10).json();
    assert_eq!(again["number"], first["number"]);
    let second = api.join(3, &[1, 1], 2, 4).json();
    assert!(second["number"].as_u64() > first["number"].as_u64());
    assert_eq!(
        api.standby_of(2).json(),
        json!({"status": "waiting", "applicant": 2, "number": first["number"],
               "branches": [1], "from": 0, "to": 10})
    );
    assert_eq!(
        api.standby_of(3).json()["branches"],
        json!([1]),
        "repeats dropped"
    );
    // Nobody else's request shows, and nobody leaves another's.
    api.err("GET", "/v1/applicants/9/standby", "", 404, "not_on_standby");
    api.err(
        "DELETE",
        "/v1/applicants/9/standby",
        "",
        404,
        "not_on_standby",
    );
    assert_eq!(api.standby_of(2).json()["status"], "waiting");

    api.ok("DELETE", &format!("/v1/bookings/{booking}"), "", 204);
    // The freed unit is held for applicant 2, first in line: nobody else takes it.
    api.err(
        "POST",
        "/v1/holds",
        r#"{"branch":1,"slot":3,"applicant":5}"#,
        409,
        "full",
    );
    assert_eq!(api.standby_of(3).json()["status"], "waiting");
    let offer = api.standby_of(2);
    assert_eq!(offer.status, 200, "{}", offer.text());
    let offer = offer.json();
    assert_eq!(
        (
            offer["status"].as_str(),
            offer["branch"].as_u64(),
            offer["slot"].as_u64()
        ),
        (Some("offered"), Some(1), Some(3))
    );
    assert!(offer["expires_at"].as_u64().is_some());
    let token = offer["token"].as_str().unwrap();
    assert_eq!(
        api.ok("GET", &format!("/v1/holds/{token}"), "", 200)["applicant"],
        2,
        "an ordinary hold of the applicant"
    );
    let booked = api.ok("POST", &format!("/v1/holds/{token}/confirm"), "", 200);
    assert_eq!(
        (booked["applicant"].as_u64(), booked["slot"].as_u64()),
        (Some(2), Some(3))
    );
    api.err("GET", "/v1/applicants/2/standby", "", 404, "not_on_standby");
    // Applicant 2 is at its limit now; applicant 3 leaves (once).
    let limit = api.join(2, &[1], 3, 4);
    assert_eq!(
        (limit.status, limit.json()["error"].as_str()),
        (409, Some("applicant_limit"))
    );
    api.ok("DELETE", "/v1/applicants/3/standby", "", 204);
    api.err(
        "DELETE",
        "/v1/applicants/3/standby",
        "",
        404,
        "not_on_standby",
    );
    api.err("GET", "/v1/applicants/3/standby", "", 404, "not_on_standby");
    // With a unit free in the range: hold it instead; nothing joined.
    api.ok("PUT", "/v1/branches/1/slots/4", r#"{"capacity": 1}"#, 200);
    let free = api.join(6, &[1], 0, 10);
    assert_eq!(free.status, 409, "{}", free.text());
    assert_eq!(
        (free.json()["error"].as_str(), free.json()["slot"].as_u64()),
        (Some("unit_free"), Some(4))
    );
    api.err("GET", "/v1/applicants/6/standby", "", 404, "not_on_standby");
    let metrics = client::metrics(&api.gate.addr).text();
    assert!(metrics.contains("op=\"standby\""), "{metrics}");
}

#[test]
fn hostile_standby_bodies_and_paths_are_4xx_never_500_and_change_nothing() {
    let api = Api::start();
    one_booked_unit(&api);
    let huge_array = format!(
        r#"{{"applicant":2,"branches":[{}],"from":0,"to":10}}"#,
        vec!["1"; 10_000].join(",")
    );
    let seventeen = format!(
        r#"{{"applicant":2,"branches":[{}],"from":0,"to":10}}"#,
        (1..=17)
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let bad: Vec<(&str, String)> = vec![
        ("not JSON", "{".into()),
        ("an array", "[]".into()),
        ("empty", String::new()),
        ("no to", r#"{"applicant":2,"branches":[1],"from":0}"#.into()),
        (
            "applicant as text",
            r#"{"applicant":"2","branches":[1],"from":0,"to":10}"#.into(),
        ),
        (
            "a negative applicant",
            r#"{"applicant":-2,"branches":[1],"from":0,"to":10}"#.into(),
        ),
        (
            "branches a number",
            r#"{"applicant":2,"branches":1,"from":0,"to":10}"#.into(),
        ),
        (
            "branches of text",
            r#"{"applicant":2,"branches":["1"],"from":0,"to":10}"#.into(),
        ),
        (
            "branches of null",
            r#"{"applicant":2,"branches":[null],"from":0,"to":10}"#.into(),
        ),
        (
            "a negative from",
            r#"{"applicant":2,"branches":[1],"from":-1,"to":10}"#.into(),
        ),
        (
            "a fraction",
            r#"{"applicant":2,"branches":[1],"from":1.5,"to":10}"#.into(),
        ),
        (
            "past u32",
            r#"{"applicant":2,"branches":[1],"from":0,"to":4294967296}"#.into(),
        ),
        (
            "an unknown field",
            r#"{"applicant":2,"branches":[1],"from":0,"to":10,"channel":1}"#.into(),
        ),
        (
            "a reversed range",
            r#"{"applicant":2,"branches":[1],"from":9,"to":2}"#.into(),
        ),
        (
            "an empty range",
            r#"{"applicant":2,"branches":[1],"from":3,"to":3}"#.into(),
        ),
        (
            "past the book's slots",
            r#"{"applicant":2,"branches":[1],"from":0,"to":65537}"#.into(),
        ),
        (
            "no branch",
            r#"{"applicant":2,"branches":[],"from":0,"to":10}"#.into(),
        ),
        ("ten thousand branches", huge_array),
        ("seventeen branches", seventeen),
    ];
    for (what, body) in &bad {
        let reply = api.call("POST", "/v1/standby", body);
        assert_eq!(reply.status, 400, "{what}: {}", reply.text());
        assert_eq!(reply.json()["error"], "bad_request", "{what}");
        assert!(
            reply.json()["detail"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{what}"
        );
    }
    // Branches without an opened slot in the range: unknown, as for a hold.
    api.err(
        "POST",
        "/v1/standby",
        r#"{"applicant":2,"branches":[77],"from":0,"to":10}"#,
        404,
        "unknown_slot",
    );
    api.err(
        "POST",
        "/v1/standby",
        r#"{"applicant":2,"branches":[1,77],"from":0,"to":10}"#,
        404,
        "unknown_slot",
    );
    api.err(
        "POST",
        "/v1/standby",
        r#"{"applicant":2,"branches":[1],"from":4,"to":9}"#,
        404,
        "unknown_slot",
    );
    let too_large = format!(
        r#"{{"applicant":2,"branches":[{}],"from":0,"to":10}}"#,
        vec!["1"; 40_000].join(",")
    );
    api.err("POST", "/v1/standby", &too_large, 413, "too_large");
    for path in ["abc", "-1", "18446744073709551616", "1.0", "%32"] {
        for method in ["GET", "DELETE"] {
            api.err(
                method,
                &format!("/v1/applicants/{path}/standby"),
                "",
                400,
                "bad_request",
            );
        }
    }
    api.err("PUT", "/v1/standby", "{}", 405, "method_not_allowed");
    api.err(
        "POST",
        "/v1/applicants/2/standby",
        "{}",
        405,
        "method_not_allowed",
    );
    // None of it joined anybody.
    api.err("GET", "/v1/applicants/2/standby", "", 404, "not_on_standby");

    // Without the service token, or with another: 401, and nothing changes.
    assert_eq!(api.join(2, &[1], 0, 10).status, 201);
    let body = br#"{"applicant":4,"branches":[1],"from":0,"to":10}"#;
    for auth in [
        None,
        Some("Bearer wrong-token"),
        Some("Basic abc"),
        Some("Bearer "),
    ] {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        for (method, path, body) in [
            ("POST", "/v1/standby", &body[..]),
            ("GET", "/v1/applicants/2/standby", &b""[..]),
            ("DELETE", "/v1/applicants/2/standby", &b""[..]),
        ] {
            let reply = api.send(method, path, body, &headers);
            assert_eq!(
                reply.status,
                401,
                "{auth:?} {method} {path}: {}",
                reply.text()
            );
            assert_eq!(reply.json()["error"], "unauthorized");
        }
    }
    assert_eq!(
        api.standby_of(2).json()["status"],
        "waiting",
        "still waiting"
    );
    api.err("GET", "/v1/applicants/4/standby", "", 404, "not_on_standby");
}
