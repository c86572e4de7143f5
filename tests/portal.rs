//! The example portal (`examples/portal`): the applicant's whole flow, forms protected against
//! cross-site posts, escaped input, the operator's endpoints, metrics, the durable book across
//! a restart, and the command line itself (listening line, graceful shutdown).
#![cfg(all(
    feature = "http",
    feature = "redis",
    feature = "serde",
    feature = "hijri",
    not(loom)
))]

#[path = "support/portal_client.rs"]
#[allow(dead_code)]
mod portal_client;
#[path = "support/programs.rs"]
#[allow(dead_code)]
mod programs;
#[path = "../examples/portal/server/mod.rs"]
#[allow(dead_code)]
mod server;

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use http::{Method, StatusCode};
use portal_client::{ADMIN, Browser, book, room, settings};
use server::State;
use surgegate::{BranchId, HoldToken};

/// Registers, holds the earliest window of branch 1, confirms; the booking's page path.
async fn book_one(b: &mut Browser, name: &str, national_id: &str) -> String {
    let registered = b.register(name, national_id).await;
    assert_eq!(
        (registered.status, registered.location()),
        (StatusCode::SEE_OTHER, "/appointments"),
        "{}",
        registered.body
    );
    let grid = b.get("/appointments?branch=1").await;
    assert!(
        grid.body.contains("Take the earliest appointment"),
        "{}",
        grid.body
    );
    let csrf = grid.field("csrf");
    let held = b
        .post("/appointments/hold", &format!("csrf={csrf}&branch=1"))
        .await;
    assert_eq!(held.location(), "/appointments/hold", "{}", held.body);
    let page = b.get("/appointments/hold").await;
    assert!(
        page.body.contains("data-expires-in=\"300\"")
            || page.body.contains("data-expires-in=\"299\""),
        "{}",
        page.body
    );
    let token = page.field("token");
    // The confirm form's own token (the first form of the hold page).
    let csrf = page.field("csrf");
    let confirmed = b
        .post(
            "/appointments/confirm",
            &format!("csrf={csrf}&token={token}"),
        )
        .await;
    assert_eq!(
        confirmed.status,
        StatusCode::SEE_OTHER,
        "{}",
        confirmed.body
    );
    confirmed.location().to_owned()
}

#[tokio::test]
async fn an_applicant_registers_books_sees_and_cancels() {
    let dir = tempfile::tempdir().unwrap();
    let state = State::open(settings(dir.path(), 100)).unwrap();
    let mut b = Browser::new(&state);
    assert_eq!(b.get("/").await.status, StatusCode::OK);
    // Bad input: a message per field, nothing stored.
    let form = b.get("/register").await;
    let csrf = form.field("csrf");
    let bad = b
        .post(
            "/register",
            &format!("csrf={csrf}&name=X&national_id=12ab&phone=1"),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    for id in ["name-error", "national_id-error", "phone-error"] {
        assert!(bad.body.contains(id), "{id} missing: {}", bad.body);
    }
    assert_eq!(state.registry.count().await.unwrap(), 0);
    let booking_path = book_one(&mut b, "Amal Haddad", "1234567890").await;
    assert!(booking_path.starts_with("/booking/"), "{booking_path}");
    let token: HoldToken = booking_path
        .trim_start_matches("/booking/")
        .parse()
        .unwrap();
    assert!(book(&state).booking(token).is_some());
    // The pass was given back at confirmation: the next in line may start.
    assert_eq!(room(&state).stats().active, 0);
    let page = b.get(&booking_path).await;
    assert!(page.body.contains("Your appointment is booked") && page.body.contains("Branch 1"));
    let cancel_csrf = page.field("csrf");
    let forged = b.post(&format!("{booking_path}/cancel"), "csrf=00").await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(
        book(&state).booking(token).is_some(),
        "a forged cancel changes nothing"
    );
    let cancelled = b
        .post(
            &format!("{booking_path}/cancel"),
            &format!("csrf={cancel_csrf}"),
        )
        .await;
    assert!(cancelled.body.contains("Cancelled"), "{}", cancelled.body);
    assert!(book(&state).booking(token).is_none());
    assert_eq!(b.get(&booking_path).await.status, StatusCode::NOT_FOUND);
    book(&state).check_invariants().unwrap();
}

#[tokio::test]
async fn forms_without_their_token_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = State::open(settings(dir.path(), 100)).unwrap();
    let mut b = Browser::new(&state);
    b.get("/register").await;
    let posted = b
        .post(
            "/register",
            "csrf=&name=Amal+Haddad&national_id=1234567890&phone=0791234567",
        )
        .await;
    assert_eq!(posted.status, StatusCode::FORBIDDEN);
    assert_eq!(state.registry.count().await.unwrap(), 0);
    // Another visitor's token does not work either.
    let mut other = Browser::new(&state);
    let theirs = other.get("/register").await.field("csrf");
    let posted = b
        .post(
            "/register",
            &format!("csrf={theirs}&name=Amal+Haddad&national_id=1234567890&phone=0791234567"),
        )
        .await;
    assert_eq!(posted.status, StatusCode::FORBIDDEN);
    b.register("Amal Haddad", "1234567890").await;
    let hold = b.post("/appointments/hold", "csrf=00&branch=1").await;
    assert_eq!(hold.status, StatusCode::FORBIDDEN);
    assert_eq!(book(&state).check_invariants().unwrap().holds, 0);
}

#[tokio::test]
async fn what_a_visitor_typed_is_escaped_and_one_id_registers_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = State::open(settings(dir.path(), 100)).unwrap();
    let mut b = Browser::new(&state);
    b.register("Siobhan O'Brien", "5555555555").await;
    let page = b.get("/appointments").await;
    assert!(page.body.contains("Siobhan O&#39;Brien"), "{}", page.body);
    assert!(!page.body.contains("O'Brien"));
    let mut twin = Browser::new(&state);
    let again = twin.register("Someone Else", "5555555555").await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.body.contains("already registered"));
    // The refused form shows what was typed, escaped.
    let mut script = Browser::new(&state);
    let refused = script.register("<script>alert(1)</script>", "77").await;
    assert!(!refused.body.contains("<script>alert"), "{}", refused.body);
    assert!(refused.body.contains("&lt;script&gt;"), "{}", refused.body);
}

#[tokio::test]
async fn admin_needs_the_token_and_checks_plans_whole() {
    let dir = tempfile::tempdir().unwrap();
    let state = State::open(settings(dir.path(), 100)).unwrap();
    let mut b = Browser::new(&state);
    for auth in [None, Some("Bearer wrong"), Some("Basic dGVzdA==")] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let answer = b.send(Method::GET, "/admin/stats", None, &headers).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{auth:?}");
    }
    let bearer = format!("Bearer {ADMIN}");
    let auth = [("authorization", bearer.as_str())];
    let stats = b.send(Method::GET, "/admin/stats", None, &auth).await;
    let json: serde_json::Value = serde_json::from_str(&stats.body).unwrap();
    assert_eq!(json["room"]["rate_per_second"], 100);
    let paused = b.send(Method::POST, "/admin/pause", None, &auth).await;
    assert!(paused.body.contains("\"paused\":true"), "{}", paused.body);
    assert!(room(&state).stats().paused);
    b.send(Method::POST, "/admin/resume", None, &auth).await;
    assert!(!room(&state).stats().paused);
    let json_auth = [auth[0], ("content-type", "application/json")];
    let limits = b
        .send(
            Method::POST,
            "/admin/limits",
            Some(r#"{"rate_per_second":7,"max_active":9}"#),
            &json_auth,
        )
        .await;
    assert_eq!(limits.status, StatusCode::OK, "{}", limits.body);
    let bad = b
        .send(
            Method::POST,
            "/admin/limits",
            Some(r#"{"rate_per_second":5,"burst":0}"#),
            &json_auth,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let s = room(&state).stats();
    assert_eq!(
        (s.rate_per_second, s.burst, s.max_active),
        (7, 100, 9),
        "a bad change changes nothing"
    );
    let first = state.calendar.first_day();
    let bad_plan = format!(
        "branch,day,window,capacity\n1,{first},0,9\n7,{first},0,1\n1,{first},9,1\n1,{first},0,4\n"
    );
    let refused = b
        .send(Method::POST, "/admin/capacity", Some(&bad_plan), &auth)
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let json: serde_json::Value = serde_json::from_str(&refused.body).unwrap();
    let lines: Vec<u64> = json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4, 5], "{}", refused.body);
    assert_eq!(
        book(&state).slot(BranchId(1), 0).unwrap().capacity,
        2,
        "nothing applied"
    );
    let good_plan = format!("1,{first},0,9\n2,{first},3,0\n");
    let applied = b
        .send(Method::POST, "/admin/capacity", Some(&good_plan), &auth)
        .await;
    assert_eq!(applied.body, r#"{"applied":2}"#);
    assert_eq!(book(&state).slot(BranchId(1), 0).unwrap().capacity, 9);
    assert_eq!(book(&state).slot(BranchId(2), 3).unwrap().capacity, 0);
    // A column per channel keeps that many units of the window for it.
    let channel_plan = format!("branch,day,window,capacity,channel:2\n1,{first},1,9,3\n");
    let applied = b
        .send(Method::POST, "/admin/capacity", Some(&channel_plan), &auth)
        .await;
    assert_eq!(applied.body, r#"{"applied":1}"#);
    let quotas = book(&state).channel_quotas(BranchId(1), 1).unwrap();
    assert_eq!(quotas.capacity, 9);
    assert_eq!(
        (quotas.channels[0].channel, quotas.channels[0].quota),
        (surgegate::Channel(2), 3)
    );
    assert_eq!(book(&state).slot(BranchId(1), 1).unwrap().remaining(), 6);
    let too_much = format!("branch,day,window,capacity,channel:2\n1,{first},2,2,3\n");
    let refused = b
        .send(Method::POST, "/admin/capacity", Some(&too_much), &auth)
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body.contains("above the capacity"),
        "{}",
        refused.body
    );
}

#[tokio::test]
async fn metrics_count_the_flow_and_every_page_has_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let state = State::open(settings(dir.path(), 100)).unwrap();
    let mut b = Browser::new(&state);
    book_one(&mut b, "Amal Haddad", "1234567890").await;
    let metrics = b.metrics().await;
    assert_eq!(metrics.status, StatusCode::OK, "{}", metrics.body);
    for line in [
        "surgegate_bookings_total 1",
        "surgegate_holds_total 1",
        "surgegate_registrations_total 1",
        "surgegate_admissions_total 1",
        "surgegate_joins_total 1",
        "surgegate_active 0",
    ] {
        assert!(
            metrics.body.contains(line),
            "{line} missing:\n{}",
            metrics.body
        );
    }
    let fsyncs = metrics
        .body
        .lines()
        .find(|l| l.starts_with("surgegate_journal_fsyncs_total"))
        .unwrap();
    let fsyncs: u64 = fsyncs.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        fsyncs >= 2,
        "the plan and the booking were journalled: {fsyncs}"
    );
    for path in ["/", "/register", "/metrics", "/booking/nope"] {
        let answer = b.get(path).await;
        for name in [
            "content-security-policy",
            "x-content-type-options",
            "referrer-policy",
        ] {
            assert!(answer.headers.contains_key(name), "{path} lacks {name}");
        }
    }
}

#[tokio::test]
async fn bookings_survive_a_restart_of_the_portal() {
    let dir = tempfile::tempdir().unwrap();
    let path = {
        let state = State::open(settings(dir.path(), 100)).unwrap();
        let mut b = Browser::new(&state);
        let path = book_one(&mut b, "Amal Haddad", "1234567890").await;
        book(&state).checkpoint().unwrap();
        path
    };
    let state = State::open(settings(dir.path(), 100)).unwrap();
    let token: HoldToken = path.trim_start_matches("/booking/").parse().unwrap();
    let booking = book(&state).booking(token).expect("the booking is back");
    assert_eq!(booking.branch, BranchId(1));
    assert_eq!(
        book(&state).slot(BranchId(1), booking.slot).unwrap().booked,
        1
    );
    let page = Browser::new(&state).get(&path).await;
    assert!(page.body.contains("Your appointment is booked"));
}

#[test]
fn the_command_line_prints_its_address_serves_and_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(programs::example("portal"))
        .args(["--addr", "127.0.0.1:0", "--rate", "5", "--data"])
        .arg(dir.path())
        .env("PORTAL_ADMIN_TOKEN", ADMIN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = programs::listening_address(&mut child);
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream.write_all(format!("GET /admin/stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains(&dir.path().display().to_string()),
        "{response}"
    );
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("checkpoint written") && stderr.contains("the book is closed"),
        "{stderr}"
    );
    assert!(dir.path().join("calendar.txt").exists());
}

#[tokio::test]
async fn a_surge_on_the_landing_page_reads_the_room_about_once_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let state = State::open(settings(dir.path(), 100)).unwrap();
    let mut b = Browser::new(&state);
    let started = std::time::Instant::now();
    for _ in 0..500 {
        assert_eq!(b.get("/").await.status, StatusCode::OK);
    }
    b.metrics().await;
    let seconds = started.elapsed().as_secs();
    let reads = state.view_reads.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        reads >= 1 && reads <= seconds + 2,
        "{reads} readings of the room for 501 requests in {seconds} s"
    );
}
