//! Standby in the example portal, through real HTTP (the portal started as its own process):
//! an applicant with nothing free joins standby from the "nothing free" page, sees that it is on
//! standby and for what, is given the place another applicant cancels (which nobody else can
//! take meanwhile), confirms it, or leaves; nobody sees or leaves another applicant's request;
//! forged, missing and hostile forms change nothing. In English and in Arabic (right to left).
//! The first case runs on the in-process book and on a Redis Cluster.
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
#[path = "support/redis_servers.rs"]
#[allow(dead_code)]
mod redis_servers;
#[path = "support/standby_portal.rs"]
mod standby_portal;

use attack_portal::book_earliest;
use http1::{Reply, Visitor};
use redis_servers::Servers;
use standby_portal::{ask_earliest, registered, start, start_with};

fn appointments(v: &mut Visitor, addr: &str) -> Reply {
    v.send(addr, "GET", "/appointments", &[], "")
}

fn on_standby(v: &mut Visitor, addr: &str) -> bool {
    let page = appointments(v, addr);
    assert_eq!(page.status, 200, "{}", page.body);
    page.body.contains("id=\"on-standby\"")
}

/// Cancels the booking whose page is at `path`.
fn cancel(v: &mut Visitor, addr: &str, path: &str) {
    let page = v.send(addr, "GET", path, &[], "");
    let csrf = page.field("csrf");
    let done = v.send(
        addr,
        "POST",
        &format!("{path}/cancel"),
        &[],
        &format!("csrf={csrf}"),
    );
    assert!(done.body.contains("Cancelled"), "{}", done.body);
}

#[test]
fn nothing_free_then_standby_then_the_cancelled_place_is_held_for_it_and_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let portal = start(dir.path());
    the_cancelled_place_is_held_for_the_line(portal.addr.as_str());
}

/// The same on a portal whose book and line are on a Redis Cluster.
#[test]
fn on_redis_the_cancelled_place_is_held_for_the_line_too() {
    let Some(servers) = Servers::start() else {
        return;
    };
    let urls = servers.cluster().join(",");
    let dir = tempfile::tempdir().unwrap();
    let namespace = format!("portal-standby-{}", std::process::id());
    let portal = start_with(dir.path(), &["--redis", &urls, "--namespace", &namespace]);
    the_cancelled_place_is_held_for_the_line(portal.addr.as_str());
}

fn the_cancelled_place_is_held_for_the_line(addr: &str) {
    let mut first = registered(addr, "1111111111");
    let booking = book_earliest(&mut first, addr);
    let mut waiting = registered(addr, "2222222222");
    let full = ask_earliest(&mut waiting, addr, 1);
    assert_eq!(full.status, 409, "{}", full.body);
    assert!(
        full.body.contains("No longer available") && full.body.contains("id=\"join-standby\""),
        "the nothing-free page offers standby: {}",
        full.body
    );
    let (csrf, from, to) = (full.field("csrf"), full.field("first"), full.field("last"));
    assert_eq!((from.as_str(), to.as_str()), ("1", "1"), "the days asked");
    // Forged and missing tokens change nothing.
    for token in ["csrf=00&", "csrf=&", ""] {
        let body = format!("{token}first={from}&last={to}&branch=1");
        let refused = waiting.send(addr, "POST", "/appointments/standby", &[], &body);
        assert_eq!(refused.status, 403, "{token:?}: {}", refused.body);
        assert!(!on_standby(&mut waiting, addr), "{token:?} joined");
    }
    let body = format!("csrf={csrf}&first={from}&last={to}&branch=1");
    let joined = waiting.send(addr, "POST", "/appointments/standby", &[], &body);
    assert_eq!(
        (joined.status, joined.header("location")),
        (303, Some("/appointments")),
        "{}",
        joined.body
    );
    let page = appointments(&mut waiting, addr);
    assert!(
        page.body.contains("You are on standby") && page.body.contains("branch 1"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"leave-standby\""), "{}", page.body);
    assert!(
        page.body.contains("http-equiv=\"refresh\""),
        "refreshes itself"
    );
    // Somebody else sees nothing of it, and cannot leave it with the waiting one's form.
    let mut other = registered(addr, "3333333333");
    assert!(!on_standby(&mut other, addr));
    let leave_csrf = page.field("csrf");
    let forged = other.send(
        addr,
        "POST",
        "/appointments/standby/leave",
        &[],
        &format!("csrf={leave_csrf}"),
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(on_standby(&mut waiting, addr), "another's leave changed it");
    // The first applicant cancels: the place is held for the request, not for a fast click.
    cancel(&mut first, addr, &booking);
    let late = ask_earliest(&mut other, addr, 1);
    assert_eq!(
        late.status, 409,
        "the freed place went to a reserve: {}",
        late.body
    );
    assert!(
        !other
            .send(addr, "GET", "/appointments/hold", &[], "")
            .body
            .contains("token")
    );
    let sent = appointments(&mut waiting, addr);
    assert_eq!(
        (sent.status, sent.header("location")),
        (303, Some("/appointments/hold")),
        "{}",
        sent.body
    );
    let hold = waiting.send(addr, "GET", "/appointments/hold", &[], "");
    assert!(
        hold.body.contains("id=\"standby-found\"")
            && hold.body.contains("Your appointment is held"),
        "{}",
        hold.body
    );
    let (csrf, token) = (hold.field("csrf"), hold.field("token"));
    let confirmed = waiting.send(
        addr,
        "POST",
        "/appointments/confirm",
        &[],
        &format!("csrf={csrf}&token={token}"),
    );
    assert_eq!(confirmed.status, 303, "{}", confirmed.body);
    let mine = confirmed.header("location").unwrap().to_owned();
    assert_eq!(
        mine,
        format!("/booking/{token}"),
        "the hold's token is the booking's"
    );
    let page = waiting.send(addr, "GET", &mine, &[], "");
    assert!(
        page.body.contains("Your appointment is booked"),
        "{}",
        page.body
    );
    assert!(!on_standby(&mut waiting, addr) && !on_standby(&mut other, addr));
}

#[test]
fn leaving_ends_the_request_and_a_forged_leave_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let portal = start(dir.path());
    let addr = portal.addr.as_str();
    let mut a = registered(addr, "1111111111");
    let booking = book_earliest(&mut a, addr);
    let mut b = registered(addr, "4444444444");
    let grid = b.send(addr, "GET", "/appointments?branch=2", &[], "");
    let csrf = grid.field("csrf");
    let held = b.send(
        addr,
        "POST",
        "/appointments/hold",
        &[],
        &format!("csrf={csrf}&branch=2"),
    );
    assert_eq!(held.status, 303, "{}", held.body);
    let hold = b.send(addr, "GET", "/appointments/hold", &[], "");
    let (csrf, token) = (hold.field("csrf"), hold.field("token"));
    let confirmed = b.send(
        addr,
        "POST",
        "/appointments/confirm",
        &[],
        &format!("csrf={csrf}&token={token}"),
    );
    assert_eq!(confirmed.status, 303);
    // Both branches full: join for both.
    let mut waiting = registered(addr, "2222222222");
    let full = ask_earliest(&mut waiting, addr, 1);
    let csrf = full.field("csrf");
    let body = format!("csrf={csrf}&first=1&last=1&branch=1&branch=2&branch=1");
    let joined = waiting.send(addr, "POST", "/appointments/standby", &[], &body);
    assert_eq!(joined.status, 303, "{}", joined.body);
    let page = appointments(&mut waiting, addr);
    assert!(page.body.contains("branches 1, 2"), "{}", page.body);
    let leave_csrf = page.field("csrf");
    for token in ["csrf=00", "csrf=", ""] {
        let refused = waiting.send(addr, "POST", "/appointments/standby/leave", &[], token);
        // No body at all is no form (415); a form without its own token, 403.
        let expected = if token.is_empty() { 415 } else { 403 };
        assert_eq!(refused.status, expected, "{token:?}: {}", refused.body);
        assert!(on_standby(&mut waiting, addr), "{token:?} left");
    }
    let left = waiting.send(
        addr,
        "POST",
        "/appointments/standby/leave",
        &[],
        &format!("csrf={leave_csrf}"),
    );
    assert_eq!(left.status, 303, "{}", left.body);
    let page = appointments(&mut waiting, addr);
    assert!(
        !page.body.contains("id=\"on-standby\"") && page.body.contains("Choose an appointment"),
        "{}",
        page.body
    );
    // With nobody waiting, a cancelled place is free to anyone again.
    cancel(&mut a, addr, &booking);
    let mut c = registered(addr, "3333333333");
    let taken = ask_earliest(&mut c, addr, 1);
    assert_eq!(
        (taken.status, taken.header("location")),
        (303, Some("/appointments/hold")),
        "{}",
        taken.body
    );
}

#[test]
fn hostile_standby_forms_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let portal = start(dir.path());
    let addr = portal.addr.as_str();
    let mut a = registered(addr, "1111111111");
    book_earliest(&mut a, addr);
    let mut v = registered(addr, "2222222222");
    let csrf = ask_earliest(&mut v, addr, 1).field("csrf");
    let many_branches = "&branch=1".repeat(70);
    let hostile = [
        ("an unknown branch", "first=1&last=1&branch=9".to_owned()),
        ("branch zero", "first=1&last=1&branch=0".to_owned()),
        ("no branch", "first=1&last=1".to_owned()),
        ("a reversed range", "first=1&last=0&branch=1".to_owned()),
        ("a past day", "first=0&last=1&branch=1".to_owned()),
        ("past the calendar", "first=1&last=99&branch=1".to_owned()),
        ("no range", "branch=1".to_owned()),
        ("words for numbers", "first=one&last=1&branch=1".to_owned()),
        ("a negative slot", "first=-1&last=1&branch=1".to_owned()),
        (
            "a huge number",
            "first=1&last=1&branch=99999999999999999999".to_owned(),
        ),
        (
            "another applicant named",
            "first=1&last=1&branch=1&applicant=1".to_owned(),
        ),
        ("too many fields", format!("first=1&last=1{many_branches}")),
    ];
    for (what, fields) in hostile {
        let body = format!("csrf={csrf}&{fields}");
        let refused = v.send(addr, "POST", "/appointments/standby", &[], &body);
        assert_eq!(refused.status, 400, "{what}: {}", refused.body);
        assert!(!on_standby(&mut v, addr), "{what} joined");
    }
    // Not form-encoded at all: refused by the form reader, never a 500.
    let json = v.send(
        addr,
        "POST",
        "/appointments/standby",
        &[("Content-Type", "application/json")],
        "{\"branch\":[1]}",
    );
    assert!((400..500).contains(&json.status), "{}", json.body);
    assert!(!on_standby(&mut v, addr));
    // A unit free in the range asked: reserve it instead (and nothing joined).
    let body = format!("csrf={csrf}&first=1&last=1&branch=2");
    let free = v.send(addr, "POST", "/appointments/standby", &[], &body);
    assert_eq!(free.status, 409, "{}", free.body);
    assert!(free.body.contains("A place is free"), "{}", free.body);
    assert!(!on_standby(&mut v, addr));
}

#[test]
fn standby_speaks_arabic_right_to_left() {
    let dir = tempfile::tempdir().unwrap();
    let portal = start(dir.path());
    let addr = portal.addr.as_str();
    let mut a = registered(addr, "1111111111");
    book_earliest(&mut a, addr);
    let mut v = registered(addr, "2222222222");
    let ar = [("Accept-Language", "ar")];
    let grid = v.send(addr, "GET", "/appointments?branch=1", &ar, "");
    let csrf = grid.field("csrf");
    let full = v.send(
        addr,
        "POST",
        "/appointments/hold",
        &ar,
        &format!("csrf={csrf}&branch=1"),
    );
    assert_eq!(full.status, 409, "{}", full.body);
    assert!(full.body.contains("dir=\"rtl\""), "{}", full.body);
    assert!(
        full.body.contains("انضمّ إلى قائمة الاحتياط"),
        "{}",
        full.body
    );
    let csrf = full.field("csrf");
    let body = format!("csrf={csrf}&first=1&last=1&branch=1");
    assert_eq!(
        v.send(addr, "POST", "/appointments/standby", &ar, &body)
            .status,
        303
    );
    let page = v.send(addr, "GET", "/appointments", &ar, "");
    assert!(page.body.contains("dir=\"rtl\""), "{}", page.body);
    assert!(
        page.body.contains("أنت في قائمة الاحتياط") && page.body.contains("الفرع ١"),
        "Arabic words and Arabic-Indic digits: {}",
        page.body
    );
    assert!(page.body.contains("مغادرة قائمة الاحتياط"), "{}", page.body);
}
