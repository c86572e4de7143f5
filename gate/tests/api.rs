//! Every answer of the booking API through a running gate (the embedded durable book), and
//! what a careless or hostile client sends: malformed JSON, bad numbers and tokens, a missing
//! or wrong bearer, huge bodies, unknown routes and methods: a 4xx with a JSON body, never a
//! 500. The OpenAPI document is checked against the routes that answer.

#![cfg(not(loom))]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::client::{self, Reply};
use support::procs::{Gate, SERVICE_TOKEN, Setup};

struct Api {
    gate: Gate,
    _dir: tempfile::TempDir,
}

impl Api {
    fn start(setup: impl FnOnce(Setup) -> Setup) -> Api {
        let dir = tempfile::tempdir().unwrap();
        // The booking API needs no upstream.
        let gate = Gate::start_in(dir.path(), &setup(Setup::new("127.0.0.1:9")));
        Api { gate, _dir: dir }
    }

    fn call(&self, method: &str, path: &str, body: &str, extra: &[(&str, &str)]) -> Reply {
        let auth = format!("Bearer {SERVICE_TOKEN}");
        let mut headers = vec![
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        headers.extend_from_slice(extra);
        let reply = client::send(&self.gate.addr, method, path, &headers, body.as_bytes());
        assert_ne!(reply.status, 500, "{method} {path}: {}", reply.text());
        if reply.status != 204 {
            assert!(
                reply
                    .header("content-type")
                    .is_some_and(|c| c.starts_with("application/json")),
                "{method} {path}"
            );
        }
        reply
    }

    fn ok(&self, method: &str, path: &str, body: &str, status: u16) -> Value {
        let reply = self.call(method, path, body, &[]);
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

    fn err(&self, method: &str, path: &str, body: &str, status: u16, word: &str) {
        let reply = self.call(method, path, body, &[]);
        assert_eq!(
            reply.status,
            status,
            "{method} {path} {body}: {}",
            reply.text()
        );
        assert_eq!(reply.json()["error"], word, "{method} {path} {body}");
    }
}

#[test]
fn every_answer_of_the_booking_api() {
    let api = Api::start(|s| s.set("book", "max_active_per_applicant", "2"));
    assert_eq!(
        api.ok("PUT", "/v1/branches/7/slots/3", r#"{"capacity": 2}"#, 200),
        json!({"capacity": 2, "held": 0, "booked": 0})
    );
    api.ok("PUT", "/v1/branches/7/slots/5", r#"{"capacity": 1}"#, 200);
    api.ok("PUT", "/v1/branches/9/slots/1", r#"{"capacity": 1}"#, 200);
    let list = api.ok("GET", "/v1/branches/7/availability?from=0&to=10", "", 200);
    assert_eq!(
        list,
        json!([{"slot": 3, "capacity": 2, "held": 0, "booked": 0}, {"slot": 5, "capacity": 1, "held": 0, "booked": 0}])
    );
    assert_eq!(
        api.ok("GET", "/v1/branches/7/availability?from=4&to=5", "", 200),
        json!([])
    );
    assert_eq!(
        api.ok("GET", "/v1/branches/7/slots/5", "", 200)["capacity"],
        1
    );
    api.err("GET", "/v1/branches/7/slots/6", "", 404, "unknown_slot");

    let hold = api.ok(
        "POST",
        "/v1/holds",
        r#"{"branch":7,"slot":5,"applicant":42}"#,
        201,
    );
    let token = hold["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 32);
    assert_eq!(
        (
            hold["branch"].as_u64(),
            hold["slot"].as_u64(),
            hold["applicant"].as_u64()
        ),
        (Some(7), Some(5), Some(42))
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires = hold["expires_at"].as_u64().unwrap();
    assert!(
        (now + 290..=now + 301).contains(&expires),
        "expires_at {expires} is not Unix seconds about 300 s ahead of {now}"
    );
    assert_eq!(
        api.ok("GET", &format!("/v1/holds/{token}"), "", 200)["token"],
        token.as_str()
    );
    // The same applicant and slot again: the same hold (the book's own rule).
    assert_eq!(
        api.ok(
            "POST",
            "/v1/holds",
            r#"{"branch":7,"slot":5,"applicant":42}"#,
            201
        )["token"],
        token.as_str()
    );
    api.err(
        "POST",
        "/v1/holds",
        r#"{"branch":7,"slot":5,"applicant":43}"#,
        409,
        "full",
    );
    api.err(
        "POST",
        "/v1/holds",
        r#"{"branch":7,"slot":4,"applicant":43}"#,
        404,
        "unknown_slot",
    );
    // Among branches: a hold the applicant has in one of them and the range comes back.
    let again = api.ok(
        "POST",
        "/v1/holds",
        r#"{"branches":[9,7],"from":0,"to":10,"applicant":42}"#,
        201,
    );
    assert_eq!(again["token"], token.as_str());
    let among = api.ok(
        "POST",
        "/v1/holds",
        r#"{"branches":[9],"from":0,"to":10,"applicant":42}"#,
        201,
    );
    assert_eq!(
        (among["branch"].as_u64(), among["slot"].as_u64()),
        (Some(9), Some(1))
    );
    api.err(
        "POST",
        "/v1/holds",
        r#"{"branch":7,"slot":3,"applicant":42}"#,
        409,
        "applicant_limit",
    );
    // The earliest slot with room across branches: slot 2 of branch 9 before slot 3 of branch 7.
    api.ok("PUT", "/v1/branches/9/slots/2", r#"{"capacity": 1}"#, 200);
    let earliest = api.ok(
        "POST",
        "/v1/holds",
        r#"{"branches":[7,9],"from":0,"to":10,"applicant":50}"#,
        201,
    );
    assert_eq!(
        (earliest["branch"].as_u64(), earliest["slot"].as_u64()),
        (Some(9), Some(2))
    );
    api.err(
        "POST",
        "/v1/holds",
        r#"{"branches":[9],"from":0,"to":10,"applicant":44}"#,
        409,
        "full",
    );

    let booking = api.ok("POST", &format!("/v1/holds/{token}/confirm"), "", 200);
    assert_eq!(
        booking,
        json!({"token": token, "branch": 7, "slot": 5, "applicant": 42})
    );
    assert_eq!(
        api.ok("POST", &format!("/v1/holds/{token}/confirm"), "", 200),
        booking,
        "again: the same"
    );
    assert_eq!(
        api.ok("GET", &format!("/v1/bookings/{token}"), "", 200),
        booking
    );
    assert_eq!(
        api.ok("GET", "/v1/applicants/42/bookings", "", 200),
        json!([booking])
    );
    assert_eq!(
        api.ok("GET", "/v1/applicants/43/bookings", "", 200),
        json!([])
    );
    let unknown = "0123456789abcdef0123456789abcdef";
    api.err(
        "POST",
        &format!("/v1/holds/{unknown}/confirm"),
        "",
        404,
        "unknown_token",
    );
    api.err(
        "GET",
        &format!("/v1/bookings/{unknown}"),
        "",
        404,
        "unknown_token",
    );
    // A booking is not a hold, and a hold is not a booking.
    api.err(
        "DELETE",
        &format!("/v1/holds/{token}"),
        "",
        404,
        "unknown_token",
    );
    let among_token = among["token"].as_str().unwrap();
    api.err(
        "DELETE",
        &format!("/v1/bookings/{among_token}"),
        "",
        404,
        "unknown_token",
    );
    api.ok("DELETE", &format!("/v1/holds/{among_token}"), "", 204);
    api.err(
        "DELETE",
        &format!("/v1/holds/{among_token}"),
        "",
        404,
        "unknown_token",
    );
    api.ok("DELETE", &format!("/v1/bookings/{token}"), "", 204);
    api.err(
        "DELETE",
        &format!("/v1/bookings/{token}"),
        "",
        404,
        "unknown_token",
    );
    assert_eq!(
        api.ok("GET", "/v1/branches/7/slots/5", "", 200),
        json!({"capacity": 1, "held": 0, "booked": 0})
    );
    let metrics = client::metrics(&api.gate.addr).text();
    assert!(
        metrics.contains("surgegate_gate_book_operations_total{op=\"reserve\",outcome=\"ok\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("surgegate_gate_journal_fsyncs_total"),
        "{metrics}"
    );
}

#[test]
fn a_lapsed_hold_cannot_be_confirmed() {
    let api = Api::start(|s| s.set("book", "hold_ttl_secs", "1"));
    api.ok("PUT", "/v1/branches/1/slots/0", r#"{"capacity": 1}"#, 200);
    let hold = api.ok(
        "POST",
        "/v1/holds",
        r#"{"branch":1,"slot":0,"applicant":1}"#,
        201,
    );
    std::thread::sleep(Duration::from_millis(1_600));
    let token = hold["token"].as_str().unwrap();
    let reply = api.call("POST", &format!("/v1/holds/{token}/confirm"), "", &[]);
    assert!(matches!(reply.status, 410 | 404), "{}", reply.text());
    let word = reply.json()["error"].as_str().unwrap().to_owned();
    assert!(word == "expired" || word == "unknown_token", "{word}");
    // Its unit is free again for someone else.
    api.ok(
        "POST",
        "/v1/holds",
        r#"{"branch":1,"slot":0,"applicant":2}"#,
        201,
    );
}

#[test]
fn idempotency_keys_return_the_same_hold() {
    let api = Api::start(|s| s.set("book", "max_active_per_applicant", "3"));
    api.ok("PUT", "/v1/branches/1/slots/0", r#"{"capacity": 5}"#, 200);
    api.ok("PUT", "/v1/branches/1/slots/1", r#"{"capacity": 5}"#, 200);
    let body = r#"{"branches":[1],"from":0,"to":2,"applicant":8}"#;
    let first = api.call("POST", "/v1/holds", body, &[("Idempotency-Key", "k-1")]);
    assert_eq!(first.status, 201);
    // Confirmed meanwhile: the retry still returns the same hold, and takes nothing.
    let token = first.json()["token"].as_str().unwrap().to_owned();
    api.ok("POST", &format!("/v1/holds/{token}/confirm"), "", 200);
    let retry = api.call("POST", "/v1/holds", body, &[("Idempotency-Key", "k-1")]);
    assert_eq!((retry.status, retry.json()), (201, first.json()));
    assert_eq!(
        api.ok("GET", "/v1/branches/1/slots/0", "", 200)["booked"],
        1
    );
    assert_eq!(api.ok("GET", "/v1/branches/1/slots/1", "", 200)["held"], 0);
    let other = api.call(
        "POST",
        "/v1/holds",
        r#"{"branch":1,"slot":1,"applicant":8}"#,
        &[("Idempotency-Key", "k-1")],
    );
    assert_eq!(
        (other.status, other.json()["error"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    let bad = api.call(
        "POST",
        "/v1/holds",
        body,
        &[("Idempotency-Key", &"k".repeat(300))],
    );
    assert_eq!(bad.status, 400);
}

#[test]
fn concurrent_retries_with_one_key_get_one_hold() {
    let api = Api::start(|s| s.set("book", "max_active_per_applicant", "3"));
    api.ok("PUT", "/v1/branches/1/slots/0", r#"{"capacity": 5}"#, 200);
    api.ok("PUT", "/v1/branches/2/slots/0", r#"{"capacity": 5}"#, 200);
    // A client retrying on a timeout sends the same request many times at once.
    let body = r#"{"branches":[1,2],"from":0,"to":1,"applicant":9}"#;
    let tokens: Vec<String> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let r = api.call("POST", "/v1/holds", body, &[("Idempotency-Key", "once")]);
                    assert_eq!(r.status, 201, "{}", r.text());
                    r.json()["token"].as_str().unwrap().to_owned()
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    let held =
        |b: u32| api.ok("GET", &format!("/v1/branches/{b}/slots/0"), "", 200)["held"].clone();
    assert_eq!(
        (held(1), held(2)),
        (json!(1), json!(0)),
        "one unit taken in all"
    );
}

#[test]
fn careless_and_hostile_requests_get_json_4xx_and_change_nothing() {
    let api = Api::start(|s| s);
    api.ok("PUT", "/v1/branches/1/slots/0", r#"{"capacity": 1}"#, 200);
    for body in [
        "",
        "{",
        "[]",
        "null",
        r#"{"capacity": -1}"#,
        r#"{"capacity": 1.5}"#,
        r#"{"capacity": "1"}"#,
        r#"{"capacity": 99999999999}"#,
        r#"{"capacity": 1, "extra": 2}"#,
        "\u{0}\u{1}",
    ] {
        api.err("PUT", "/v1/branches/1/slots/0", body, 400, "bad_request");
    }
    api.err(
        "PUT",
        "/v1/branches/1/slots/0",
        r#"{"capacity": 4000000000}"#,
        400,
        "bad_request",
    );
    for path in [
        "/v1/branches/x/slots/0",
        "/v1/branches/-1/slots/0",
        "/v1/branches/4294967296/slots/0",
        "/v1/branches/1/slots/%31",
        "/v1/branches/+1/slots/0",
        "/v1/branches//slots/0",
    ] {
        api.err("PUT", path, r#"{"capacity": 1}"#, 400, "bad_request");
    }
    for body in [
        r#"{"branch":1,"slot":0}"#,
        r#"{"branch":1,"slot":0,"applicant":-5}"#,
        r#"{"branches":[],"from":0,"to":1,"applicant":1}"#,
        r#"{"branches":[1],"from":5,"to":1,"applicant":1}"#,
        r#"{"branch":1,"slot":0,"applicant":1,"admin":true}"#,
        r#"{"branches":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17],"from":0,"to":1,"applicant":1}"#,
    ] {
        api.err("POST", "/v1/holds", body, 400, "bad_request");
    }
    for token in [
        "xyz",
        "0123456789abcdef0123456789abcdeg",
        "0123456789abcdef0123456789abcde",
        "%00",
        "+123456789abcdef0123456789abcdef",
    ] {
        api.err(
            "POST",
            &format!("/v1/holds/{token}/confirm"),
            "",
            400,
            "bad_request",
        );
        api.err(
            "GET",
            &format!("/v1/bookings/{token}"),
            "",
            400,
            "bad_request",
        );
    }
    api.err(
        "GET",
        "/v1/applicants/18446744073709551616/bookings",
        "",
        400,
        "bad_request",
    );
    api.err(
        "GET",
        "/v1/branches/1/availability?from=x",
        "",
        400,
        "bad_request",
    );
    api.err(
        "GET",
        "/v1/branches/1/availability?from=1&from=2",
        "",
        400,
        "bad_request",
    );
    api.err(
        "GET",
        "/v1/branches/1/availability?limit=5",
        "",
        400,
        "bad_request",
    );
    api.err("GET", "/v1/nothing", "", 404, "not_found");
    api.err("PATCH", "/v1/holds", "", 405, "method_not_allowed");
    let huge = format!(r#"{{"capacity": 1, "pad": "{}"}}"#, "x".repeat(100_000));
    api.err("PUT", "/v1/branches/1/slots/0", &huge, 413, "too_large");
    // Without the bearer, or with another: 401, and nothing happens.
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer "),
        Some(SERVICE_TOKEN),
        Some("Basic abc"),
    ] {
        let mut headers = vec![];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        let reply = client::send(
            &api.gate.addr,
            "PUT",
            "/v1/branches/1/slots/0",
            &headers,
            br#"{"capacity": 9}"#,
        );
        assert_eq!(reply.status, 401, "{auth:?}");
        assert_eq!(reply.json()["error"], "unauthorized");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }
    assert_eq!(
        api.ok("GET", "/v1/branches/1/slots/0", "", 200),
        json!({"capacity": 1, "held": 0, "booked": 0})
    );
    assert!(
        !api.gate.log().contains(SERVICE_TOKEN),
        "the token reached the log"
    );
}

#[test]
fn the_openapi_document_lists_the_routes_that_answer() {
    let api = Api::start(|s| s);
    let doc = client::get(&api.gate.addr, "/v1/openapi.json").json();
    assert_eq!(doc["openapi"], "3.1.0");
    let pinned = [
        ("put", "/v1/branches/{branch}/slots/{slot}"),
        ("get", "/v1/branches/{branch}/availability"),
        ("post", "/v1/holds"),
        ("post", "/v1/holds/{token}/confirm"),
        ("delete", "/v1/holds/{token}"),
        ("delete", "/v1/bookings/{token}"),
        ("get", "/v1/bookings/{token}"),
        ("get", "/v1/applicants/{applicant}/bookings"),
    ];
    for (method, path) in pinned {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path
                .replace("{branch}", "1")
                .replace("{slot}", "0")
                .replace("{applicant}", "5")
                .replace("{token}", "0123456789abcdef0123456789abcdef");
            let reply = api.call(&method.to_uppercase(), &concrete, "{}", &[]);
            let word = reply
                .json()
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let missing = matches!(word.as_deref(), Some("method_not_allowed"))
                || (word.as_deref() == Some("not_found")
                    && reply.json()["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("no such route")));
            assert!(
                !missing,
                "{method} {path} is documented but does not answer: {}",
                reply.text()
            );
        }
    }
}
