//! What a hostile or careless client sends to the example portal's standby forms, through real
//! HTTP (the portal started as its own process), one attack a test: the token of another form
//! or of another visitor, a replayed form, a range given twice, a form of megabytes, markup in
//! the fields, joining while a hold already takes the applicant's place, leaving after the line
//! gave a hold, and a calendar of more windows a day than a day has hours. Each is refused (or
//! does what the rules allow) and a refusal changes nothing.
#![cfg(all(feature = "http", feature = "redis", feature = "serde", not(loom)))]

#[path = "support/attack_portal.rs"]
#[allow(dead_code)]
mod attack_portal;
#[path = "support/http1.rs"]
#[allow(dead_code)]
mod http1;
#[path = "support/programs.rs"]
#[allow(dead_code)]
mod programs;
#[path = "support/standby_portal.rs"]
#[allow(dead_code)]
mod standby_portal;

use attack_portal::{ADMIN, Portal, SECRET, book_earliest, run_to_exit};
use http1::{Reply, Visitor};
use standby_portal::{registered, start};

/// The portal of [`start`] with branch 1's one place booked by another applicant, and `v`, a
/// registered applicant who will find it full (the directory must outlive the portal).
fn branch_1_taken() -> (tempfile::TempDir, Portal, Visitor) {
    let dir = tempfile::tempdir().unwrap();
    let p = start(dir.path());
    let addr = p.addr.as_str();
    let mut a = registered(addr, "1111111111");
    book_earliest(&mut a, addr);
    let v = registered(addr, "2222222222");
    (dir, p, v)
}

/// The grid of `branch` (its `csrf` is the hold form's).
fn grid(v: &mut Visitor, addr: &str, branch: u32) -> Reply {
    let g = v.send(
        addr,
        "GET",
        &format!("/appointments?branch={branch}"),
        &[],
        "",
    );
    assert_eq!(g.status, 200, "{}", g.body);
    g
}

/// Asks to hold at a full `branch`: the "nothing free" page's standby token.
fn standby_token(v: &mut Visitor, addr: &str, branch: u32) -> String {
    let csrf = grid(v, addr, branch).field("csrf");
    let body = format!("csrf={csrf}&branch={branch}");
    let full = v.send(addr, "POST", "/appointments/hold", &[], &body);
    assert_eq!(full.status, 409, "{}", full.body);
    full.field("csrf")
}

fn join(v: &mut Visitor, addr: &str, fields: &str) -> Reply {
    v.send(addr, "POST", "/appointments/standby", &[], fields)
}

fn page(v: &mut Visitor, addr: &str) -> Reply {
    let p = v.send(addr, "GET", "/appointments", &[], "");
    assert_eq!(p.status, 200, "{}", p.body);
    p
}

/// Whether the applicant waits on standby (with a hold, its page leads to the hold instead).
fn waiting(v: &mut Visitor, addr: &str) -> bool {
    let p = v.send(addr, "GET", "/appointments", &[], "");
    match p.status {
        200 => p.body.contains("id=\"on-standby\""),
        303 => {
            assert_eq!(p.header("location"), Some("/appointments/hold"));
            false
        }
        other => panic!("{other}: {}", p.body),
    }
}

/// The page of the applicant's hold.
fn hold_page(v: &mut Visitor, addr: &str) -> Reply {
    v.send(addr, "GET", "/appointments/hold", &[], "")
}

#[test]
fn a_range_given_twice_is_refused_and_joins_nothing() {
    let (_dir, p, mut v) = branch_1_taken();
    let addr = p.addr.as_str();
    let csrf = standby_token(&mut v, addr, 1);
    for fields in [
        "first=0&first=1&last=1&branch=1",
        "first=1&first=1&last=1&branch=1",
        "first=1&last=1&last=1&branch=1",
        "first=1&last=0&last=1&branch=1",
    ] {
        let refused = join(&mut v, addr, &format!("csrf={csrf}&{fields}"));
        assert_eq!(refused.status, 400, "{fields}: {}", refused.body);
        assert!(!waiting(&mut v, addr), "{fields} joined");
    }
    // Once each: joined.
    let joined = join(
        &mut v,
        addr,
        &format!("csrf={csrf}&first=1&last=1&branch=1"),
    );
    assert_eq!(joined.status, 303, "{}", joined.body);
    assert!(waiting(&mut v, addr));
}

#[test]
fn a_token_of_another_form_neither_joins_nor_leaves() {
    let (_dir, p, mut v) = branch_1_taken();
    let addr = p.addr.as_str();
    let hold_token = grid(&mut v, addr, 1).field("csrf");
    let refused = join(
        &mut v,
        addr,
        &format!("csrf={hold_token}&first=1&last=1&branch=1"),
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(!waiting(&mut v, addr));
    // Joined with its own token; the join form's token does not leave.
    let csrf = standby_token(&mut v, addr, 1);
    let joined = join(
        &mut v,
        addr,
        &format!("csrf={csrf}&first=1&last=1&branch=1"),
    );
    assert_eq!(joined.status, 303, "{}", joined.body);
    for token in [csrf.as_str(), hold_token.as_str()] {
        let body = format!("csrf={token}");
        let kept = v.send(addr, "POST", "/appointments/standby/leave", &[], &body);
        assert_eq!(kept.status, 403, "{}", kept.body);
        assert!(waiting(&mut v, addr), "left with another form's token");
    }
}

#[test]
fn another_visitors_token_joins_and_leaves_for_nobody() {
    let (_dir, p, mut v) = branch_1_taken();
    let addr = p.addr.as_str();
    let mut w = registered(addr, "3333333333");
    let theirs = standby_token(&mut v, addr, 1);
    let refused = join(
        &mut w,
        addr,
        &format!("csrf={theirs}&first=1&last=1&branch=1"),
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(!waiting(&mut w, addr) && !waiting(&mut v, addr));
    // v joins; w's own leave (with v's leave token) does not take v out.
    let joined = join(
        &mut v,
        addr,
        &format!("csrf={theirs}&first=1&last=1&branch=1"),
    );
    assert_eq!(joined.status, 303, "{}", joined.body);
    let leave = page(&mut v, addr).field("csrf");
    let body = format!("csrf={leave}");
    let kept = w.send(addr, "POST", "/appointments/standby/leave", &[], &body);
    assert_eq!(kept.status, 403, "{}", kept.body);
    assert!(
        waiting(&mut v, addr),
        "another visitor took v out of the line"
    );
}

#[test]
fn a_replayed_join_keeps_one_request_in_its_first_place() {
    let (_dir, p, mut v) = branch_1_taken();
    let addr = p.addr.as_str();
    let csrf = standby_token(&mut v, addr, 1);
    let body = format!("csrf={csrf}&first=1&last=1&branch=1");
    for _ in 0..3 {
        assert_eq!(join(&mut v, addr, &body).status, 303);
    }
    let shown = page(&mut v, addr).body;
    assert_eq!(shown.matches("id=\"on-standby\"").count(), 1, "{shown}");
}

#[test]
fn a_form_of_megabytes_is_refused_and_joins_nothing() {
    let (_dir, p, mut v) = branch_1_taken();
    let addr = p.addr.as_str();
    let csrf = standby_token(&mut v, addr, 1);
    let huge = format!(
        "csrf={csrf}&first=1&last=1&branch=1&branch={}",
        "1".repeat(3 << 20)
    );
    // Refused with a 4xx, or by closing the connection before the body is read whole.
    match v.try_send(addr, "POST", "/appointments/standby", &[], &huge) {
        Ok(refused) => assert!((400..500).contains(&refused.status), "{}", refused.status),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "{e}"
        ),
    }
    assert!(!waiting(&mut v, addr));
}

#[test]
fn markup_in_a_refused_form_is_never_echoed_in_either_language() {
    let (_dir, p, mut v) = branch_1_taken();
    let addr = p.addr.as_str();
    let csrf = standby_token(&mut v, addr, 1);
    let script = "%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    for lang in ["en", "ar"] {
        for fields in [
            format!("first=1&last=1&branch={script}"),
            format!("first={script}&last=1&branch=1"),
            format!("first=1&last=1&branch=1&{script}=1"),
        ] {
            let headers = [("Accept-Language", lang)];
            let body = format!("csrf={csrf}&{fields}");
            let r = v.send(addr, "POST", "/appointments/standby", &headers, &body);
            assert_eq!(r.status, 400, "{lang} {fields}: {}", r.body);
            assert!(!r.body.contains("<script>alert"), "{lang}: {}", r.body);
        }
    }
    assert!(!waiting(&mut v, addr));
}

#[test]
fn a_live_hold_keeps_the_applicant_off_the_line() {
    let (_dir, p, mut v) = branch_1_taken();
    let addr = p.addr.as_str();
    let csrf = standby_token(&mut v, addr, 1);
    // v holds the free place at branch 2: its one place is taken.
    let hold = grid(&mut v, addr, 2).field("csrf");
    let body = format!("csrf={hold}&branch=2");
    let held = v.send(addr, "POST", "/appointments/hold", &[], &body);
    assert_eq!(held.status, 303, "{}", held.body);
    let joined = join(
        &mut v,
        addr,
        &format!("csrf={csrf}&first=1&last=1&branch=1"),
    );
    assert_eq!(joined.status, 303, "{}", joined.body);
    assert!(!waiting(&mut v, addr), "waiting beside a live hold");
    let still = hold_page(&mut v, addr);
    assert_eq!(still.status, 200, "{}", still.body);
    assert!(
        !still.body.contains("id=\"standby-found\""),
        "{}",
        still.body
    );
}

#[test]
fn leaving_after_the_line_gave_a_hold_keeps_the_hold() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(dir.path());
    let addr = p.addr.as_str();
    let mut a = registered(addr, "1111111111");
    let booking = book_earliest(&mut a, addr);
    let mut v = registered(addr, "2222222222");
    let csrf = standby_token(&mut v, addr, 1);
    let joined = join(
        &mut v,
        addr,
        &format!("csrf={csrf}&first=1&last=1&branch=1"),
    );
    assert_eq!(joined.status, 303, "{}", joined.body);
    let leave = page(&mut v, addr).field("csrf");
    // a cancels: the place is held for v.
    let csrf = a.send(addr, "GET", &booking, &[], "").field("csrf");
    let body = format!("csrf={csrf}");
    let cancelled = a.send(addr, "POST", &format!("{booking}/cancel"), &[], &body);
    assert!(cancelled.body.contains("Cancelled"), "{}", cancelled.body);
    assert!(
        hold_page(&mut v, addr)
            .body
            .contains("id=\"standby-found\"")
    );
    // Leaving now (with the token of the page that showed v waiting) changes nothing.
    let body = format!("csrf={leave}");
    let left = v.send(addr, "POST", "/appointments/standby/leave", &[], &body);
    assert_eq!(left.status, 303, "{}", left.body);
    let shown = hold_page(&mut v, addr);
    assert_eq!(shown.status, 200, "the hold went: {}", shown.body);
    assert!(
        shown.body.contains("id=\"standby-found\""),
        "{}",
        shown.body
    );
}

#[test]
fn more_windows_a_day_than_hours_is_refused_at_start() {
    let env = [("PORTAL_SECRET", SECRET), ("PORTAL_ADMIN_TOKEN", ADMIN)];
    for windows in ["25", "1000"] {
        let ended = run_to_exit(&env, &["--windows", windows, "--days", "1"]);
        let (ok, said) = ended.unwrap_or_else(|| panic!("{windows}: the portal started"));
        assert!(!ok && said.contains("windows a day"), "{windows}: {said}");
    }
    // A whole day of them starts.
    let dir = tempfile::tempdir().unwrap();
    let p = Portal::start(&["--windows", "24", "--days", "1"], dir.path());
    let mut v = registered(&p.addr, "1111111111");
    assert_eq!(v.send(&p.addr, "GET", "/appointments", &[], "").status, 200);
}
