//! What a hostile or careless client sends to the booking API's standby routes, through a
//! running gate (the embedded durable book), one attack a test: repeated JSON keys, a body
//! nested past any depth, bytes after the body, a free unit at one of several branches asked,
//! another applicant's path, leaving and joining again to jump the line, a retry with another
//! range, a request that would take the applicant past its limit, and the book's last slot at
//! the largest branch, a crowd joining at once. Each answer is a 4xx with a JSON body or the success the rules allow,
//! never a 500, and an error changes nothing.

#![cfg(not(loom))]

mod support;

use serde_json::{Value, json};
use support::client::{self, Reply};
use support::procs::{Gate, SERVICE_TOKEN, Setup};

/// A gate of its own (no upstream: the booking API needs none) and its data directory.
struct Target {
    gate: Gate,
    _dir: tempfile::TempDir,
}

impl Target {
    fn start() -> Target {
        let dir = tempfile::tempdir().unwrap();
        let gate = Gate::start_in(dir.path(), &Setup::new("127.0.0.1:9"));
        Target { gate, _dir: dir }
    }

    /// One authorised request; never a 500, and a JSON body unless `204`.
    fn call(&self, method: &str, path: &str, body: &str) -> Reply {
        let auth = format!("Bearer {SERVICE_TOKEN}");
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        let reply = client::send(&self.gate.addr, method, path, &headers, body.as_bytes());
        assert_ne!(reply.status, 500, "{method} {path}: {}", reply.text());
        if reply.status != 204 {
            let json = reply
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/json"));
            assert!(json, "{method} {path}: {}", reply.text());
        }
        reply
    }

    /// `call`, which must answer `status`; its JSON (`Null` for `204`).
    fn expect(&self, method: &str, path: &str, body: &str, status: u16) -> Value {
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

    fn join(&self, applicant: u64, branches: &[u32], from: u32, to: u32) -> Reply {
        let body = json!({"applicant": applicant, "branches": branches, "from": from, "to": to});
        self.call("POST", "/v1/standby", &body.to_string())
    }

    /// The standby answer of `applicant`: its status and JSON.
    fn standby_of(&self, applicant: &str) -> (u16, Value) {
        let reply = self.call("GET", &format!("/v1/applicants/{applicant}/standby"), "");
        (reply.status, reply.json())
    }

    fn waiting(&self, applicant: u64) -> bool {
        let (status, v) = self.standby_of(&applicant.to_string());
        status == 200 && v["status"] == "waiting"
    }

    /// Opens `slot` of `branch` with one unit and books it for `applicant`; the booking's token.
    fn book_only_unit(&self, branch: u32, slot: u32, applicant: u64) -> String {
        let path = format!("/v1/branches/{branch}/slots/{slot}");
        self.expect("PUT", &path, r#"{"capacity": 1}"#, 200);
        let body = json!({"branch": branch, "slot": slot, "applicant": applicant});
        let hold = self.expect("POST", "/v1/holds", &body.to_string(), 201);
        let token = hold["token"].as_str().unwrap().to_owned();
        self.expect("POST", &format!("/v1/holds/{token}/confirm"), "", 200);
        token
    }
}

#[test]
fn a_repeated_key_in_a_join_body_is_refused_and_joins_neither_applicant() {
    let t = Target::start();
    t.book_only_unit(1, 3, 1);
    for body in [
        r#"{"applicant":2,"applicant":3,"branches":[1],"from":0,"to":10}"#,
        r#"{"applicant":2,"branches":[1],"branches":[1],"from":0,"to":10}"#,
        r#"{"applicant":2,"branches":[1],"from":0,"from":3,"to":10}"#,
    ] {
        let v = t.expect("POST", "/v1/standby", body, 400);
        assert_eq!(v["error"], "bad_request", "{body}: {v}");
    }
    assert!(!t.waiting(2) && !t.waiting(3));
}

#[test]
fn a_body_nested_past_any_depth_is_a_400_not_a_crash() {
    let t = Target::start();
    t.book_only_unit(1, 3, 1);
    let deep = format!(
        r#"{{"applicant":2,"branches":{}1{},"from":0,"to":10}}"#,
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    let v = t.expect("POST", "/v1/standby", &deep, 400);
    assert_eq!(v["error"], "bad_request", "{v}");
    // The gate still answers, and nobody joined.
    assert!(!t.waiting(2));
    assert_eq!(t.join(2, &[1], 0, 10).status, 201);
}

#[test]
fn bytes_after_the_json_body_are_refused() {
    let t = Target::start();
    t.book_only_unit(1, 3, 1);
    for body in [
        r#"{"applicant":2,"branches":[1],"from":0,"to":10} x"#,
        r#"{"applicant":2,"branches":[1],"from":0,"to":10}{"applicant":3,"branches":[1],"from":0,"to":10}"#,
    ] {
        let v = t.expect("POST", "/v1/standby", body, 400);
        assert_eq!(v["error"], "bad_request", "{body}: {v}");
    }
    assert!(!t.waiting(2) && !t.waiting(3));
}

#[test]
fn a_free_unit_at_any_branch_asked_refuses_the_join() {
    let t = Target::start();
    t.book_only_unit(1, 3, 1);
    t.expect("PUT", "/v1/branches/2/slots/5", r#"{"capacity": 1}"#, 200);
    let free = t.join(2, &[1, 2], 0, 10);
    assert_eq!(free.status, 409, "{}", free.text());
    let v = free.json();
    assert_eq!(
        (
            v["error"].as_str(),
            v["branch"].as_u64(),
            v["slot"].as_u64()
        ),
        (Some("unit_free"), Some(2), Some(5))
    );
    assert!(!t.waiting(2));
    // The free unit stayed free for anyone to reserve.
    let slot = t.expect("GET", "/v1/branches/2/slots/5", "", 200);
    assert_eq!(
        (slot["held"].as_u64(), slot["booked"].as_u64()),
        (Some(0), Some(0))
    );
}

#[test]
fn another_applicants_path_neither_reads_nor_leaves_a_request_nor_takes_its_offer() {
    let t = Target::start();
    let booking = t.book_only_unit(1, 3, 1);
    assert_eq!(t.join(2, &[1], 0, 10).status, 201);
    for other in ["3", "0", "18446744073709551615", "1"] {
        let (status, v) = t.standby_of(other);
        assert_eq!(
            (status, v["error"].as_str()),
            (404, Some("not_on_standby")),
            "{other}"
        );
        let path = format!("/v1/applicants/{other}/standby");
        let v = t.expect("DELETE", &path, "", 404);
        assert_eq!(v["error"], "not_on_standby", "{other}");
    }
    assert!(t.waiting(2));
    // The freed unit is offered to 2 only: 1 (who cancelled) and 3 see nothing of it.
    t.expect("DELETE", &format!("/v1/bookings/{booking}"), "", 204);
    for other in ["1", "3"] {
        assert_eq!(t.standby_of(other).0, 404, "{other}");
    }
    let (status, offer) = t.standby_of("2");
    assert_eq!((status, offer["status"].as_str()), (200, Some("offered")));
    assert_eq!(offer["applicant"], 2);
}

#[test]
fn leaving_and_joining_again_goes_to_the_back_of_the_line() {
    let t = Target::start();
    let booking = t.book_only_unit(1, 3, 1);
    let first = t.join(2, &[1], 0, 10).json();
    let second = t.join(3, &[1], 0, 10).json();
    t.expect("DELETE", "/v1/applicants/2/standby", "", 204);
    let again = t.join(2, &[1], 0, 10).json();
    assert!(
        again["number"].as_u64() > second["number"].as_u64(),
        "{first} {second} {again}"
    );
    // The freed unit goes to 3, now first in line.
    t.expect("DELETE", &format!("/v1/bookings/{booking}"), "", 204);
    assert_eq!(t.standby_of("3").1["status"], "offered");
    assert_eq!(t.standby_of("2").1["status"], "waiting");
}

#[test]
fn a_retried_join_keeps_its_place_and_its_first_request() {
    let t = Target::start();
    t.book_only_unit(1, 3, 1);
    t.book_only_unit(2, 3, 4);
    let first = t.join(2, &[1], 0, 10).json();
    let second = t.join(3, &[1], 0, 10).json();
    // A retry with another range or other branches: the same place, the request unchanged.
    let retry = t.join(3, &[1, 2], 3, 4);
    assert_eq!(retry.status, 201, "{}", retry.text());
    assert_eq!(retry.json()["number"], second["number"]);
    assert!(first["number"].as_u64() < second["number"].as_u64());
    let (_, v) = t.standby_of("3");
    assert_eq!(
        (v["branches"].clone(), v["from"].as_u64(), v["to"].as_u64()),
        (json!([1]), Some(0), Some(10))
    );
}

#[test]
fn a_waiting_request_counts_toward_the_limit_so_no_hold_slips_past_it() {
    let t = Target::start();
    t.book_only_unit(1, 3, 1);
    assert_eq!(t.join(2, &[1], 0, 10).status, 201);
    // The gate's applicant limit is one: waiting takes it, so no other hold is given.
    t.expect("PUT", "/v1/branches/2/slots/7", r#"{"capacity": 1}"#, 200);
    let v = t.expect(
        "POST",
        "/v1/holds",
        r#"{"branch":2,"slot":7,"applicant":2}"#,
        409,
    );
    assert_eq!(v["error"], "applicant_limit", "{v}");
    let slot = t.expect("GET", "/v1/branches/2/slots/7", "", 200);
    assert_eq!(slot["held"], 0);
    // And an applicant with a live hold cannot also wait.
    let hold = t.expect(
        "POST",
        "/v1/holds",
        r#"{"branch":2,"slot":7,"applicant":5}"#,
        201,
    );
    let v = t.join(5, &[1], 0, 10);
    assert_eq!(
        (v.status, v.json()["error"].as_str()),
        (409, Some("applicant_limit"))
    );
    assert!(!t.waiting(5));
    assert_eq!(hold["applicant"], 5);
}

#[test]
fn the_last_slot_of_the_book_at_the_largest_branch_is_joined_and_read_back() {
    let t = Target::start();
    let (branch, slot) = (u32::MAX, 65_535);
    t.book_only_unit(branch, slot, 1);
    let joined = t.join(2, &[branch], slot, slot + 1);
    assert_eq!(joined.status, 201, "{}", joined.text());
    let (_, v) = t.standby_of("2");
    assert_eq!(
        (v["branches"].clone(), v["from"].as_u64(), v["to"].as_u64()),
        (json!([branch]), Some(u64::from(slot)), Some(65_536))
    );
    // One past the book's slots: refused, the request unchanged.
    let past = t.join(3, &[branch], slot, slot + 2);
    assert_eq!(past.status, 400, "{}", past.text());
    assert!(!t.waiting(3));
}

#[test]
fn an_applicant_spelt_with_signs_or_spaces_is_refused_and_leading_zeros_name_the_same_one() {
    let t = Target::start();
    t.book_only_unit(1, 3, 1);
    assert_eq!(t.join(2, &[1], 0, 10).status, 201);
    for spelt in ["+2", "%202", "2%20", "0x2", "2e0", "%2B2"] {
        let path = format!("/v1/applicants/{spelt}/standby");
        for method in ["GET", "DELETE"] {
            let reply = t.call(method, &path, "");
            assert!(
                reply.status == 400 || reply.status == 404,
                "{method} {spelt}: {}",
                reply.text()
            );
        }
    }
    assert!(t.waiting(2));
    // Leading zeros are the same number, so the same applicant: no second identity.
    let (status, v) = t.standby_of("0002");
    assert_eq!((status, v["applicant"].as_u64()), (200, Some(2)));
}

#[test]
fn a_crowd_joining_at_once_then_one_cancellation_offers_one_unit_to_one_applicant() {
    let t = Target::start();
    let booking = t.book_only_unit(1, 3, 1);
    let numbers: Vec<u64> = std::thread::scope(|s| {
        let joins: Vec<_> = (2..22u64)
            .map(|a| {
                let t = &t;
                s.spawn(move || {
                    let r = t.join(a, &[1], 0, 10);
                    assert_eq!(r.status, 201, "{a}: {}", r.text());
                    r.json()["number"].as_u64().unwrap()
                })
            })
            .collect();
        joins.into_iter().map(|j| j.join().unwrap()).collect()
    });
    let mut distinct = numbers.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        numbers.len(),
        "two joins share a place: {numbers:?}"
    );
    t.expect("DELETE", &format!("/v1/bookings/{booking}"), "", 204);
    // The earliest number is offered the unit; nobody else, and the slot never overbooks.
    let first = 2 + numbers
        .iter()
        .enumerate()
        .min_by_key(|(_, n)| **n)
        .unwrap()
        .0 as u64;
    let offered: Vec<u64> = (2..22u64)
        .filter(|a| t.standby_of(&a.to_string()).1["status"] == "offered")
        .collect();
    assert_eq!(offered, vec![first]);
    let slot = t.expect("GET", "/v1/branches/1/slots/3", "", 200);
    assert_eq!(
        (
            slot["capacity"].as_u64(),
            slot["held"].as_u64(),
            slot["booked"].as_u64()
        ),
        (Some(1), Some(1), Some(0))
    );
}
