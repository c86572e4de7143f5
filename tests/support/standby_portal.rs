//! The portal the standby tests start (two branches, one place each on the one bookable day),
//! and the steps they share: registering an applicant, and asking for a branch's earliest
//! window.

use super::attack_portal::{Portal, register};
use super::http1::{Reply, Visitor};

/// Two branches, one bookable day (tomorrow: today's windows have begun) of one window, one
/// place each: two bookings fill the portal.
pub fn start(dir: &std::path::Path) -> Portal {
    start_with(dir, &[])
}

/// As [`start`], with `extra` arguments besides (`--redis URLS`, say).
pub fn start_with(dir: &std::path::Path, extra: &[&str]) -> Portal {
    let mut args = vec![
        "--rate",
        "50",
        "--branches",
        "2",
        "--days",
        "2",
        "--windows",
        "1",
        "--capacity",
        "1",
    ];
    args.extend_from_slice(extra);
    Portal::start(&args, dir)
}

/// A visitor registered as `national_id`.
pub fn registered(addr: &str, national_id: &str) -> Visitor {
    let mut v = Visitor::default();
    let r = register(&mut v, addr, national_id);
    assert_eq!(r.status, 303, "{}", r.body);
    v
}

/// Asks for the earliest window of `branch`; the answer (the "nothing free" page when full).
pub fn ask_earliest(v: &mut Visitor, addr: &str, branch: u32) -> Reply {
    let grid = v.send(
        addr,
        "GET",
        &format!("/appointments?branch={branch}"),
        &[],
        "",
    );
    assert_eq!(grid.status, 200, "{}", grid.body);
    let csrf = grid.field("csrf");
    v.send(
        addr,
        "POST",
        "/appointments/hold",
        &[],
        &format!("csrf={csrf}&branch={branch}"),
    )
}
