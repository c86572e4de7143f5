//! The example portal as its own process, for the attack tests: started with a test secret
//! and admin token, stopped as Ctrl-C would (also when the test fails), and the steps of an
//! applicant (register, book) over real HTTP.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::http1::{Reply, Visitor};
use crate::programs;

/// The admin token the started portals are given (at least 32 characters).
pub const ADMIN: &str = "an-admin-token-of-forty-characters-long!";
/// The secret every started portal signs with (64 hex digits).
pub const SECRET: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// A portal process, stopped with SIGINT when dropped (also when the test fails).
pub struct Portal {
    pub child: Child,
    pub addr: String,
}

impl Portal {
    /// Starts the portal with `args`, the test's secret and admin token; waits for its
    /// listening line.
    pub fn start(args: &[&str], data: &Path) -> Portal {
        Self::start_with(args, data, &[])
    }

    /// As [`Portal::start`], with `env` besides.
    pub fn start_with(args: &[&str], data: &Path, env: &[(&str, &str)]) -> Portal {
        let mut child = Command::new(programs::example("portal"))
            .args(["--addr", "127.0.0.1:0", "--new-visitors-per-minute", "0"])
            .args(args)
            .arg("--data")
            .arg(data)
            .env("PORTAL_SECRET", SECRET)
            .env("PORTAL_ADMIN_TOKEN", ADMIN)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the portal starts");
        let addr = programs::listening_address(&mut child);
        Portal { child, addr }
    }

    /// Stops the portal as Ctrl-C would and waits for it.
    pub fn stop(mut self) {
        self.interrupt();
    }

    pub fn interrupt(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        self.interrupt();
    }
}

/// Registers `national_id` on `addr` (the visitor must be admitted there); the answer.
pub fn register(v: &mut Visitor, addr: &str, national_id: &str) -> Reply {
    let form = v.send(addr, "GET", "/register", &[], "");
    assert_eq!(form.status, 200, "admitted at once: {}", form.body);
    let csrf = form.field("csrf");
    let body = format!("csrf={csrf}&name=Amal+Haddad&national_id={national_id}&phone=0791234567");
    v.send(addr, "POST", "/register", &[], &body)
}

/// Holds the earliest window of branch 1 and confirms it; the booking page's path.
pub fn book_earliest(v: &mut Visitor, addr: &str) -> String {
    let grid = v.send(addr, "GET", "/appointments?branch=1", &[], "");
    let csrf = grid.field("csrf");
    let held = v.send(
        addr,
        "POST",
        "/appointments/hold",
        &[],
        &format!("csrf={csrf}&branch=1"),
    );
    assert_eq!(held.status, 303, "{}", held.body);
    let hold = v.send(addr, "GET", "/appointments/hold", &[], "");
    let (csrf, token) = (hold.field("csrf"), hold.field("token"));
    let confirmed = v.send(
        addr,
        "POST",
        "/appointments/confirm",
        &[],
        &format!("csrf={csrf}&token={token}"),
    );
    assert_eq!(confirmed.status, 303, "{}", confirmed.body);
    confirmed.header("location").expect("a booking").to_owned()
}

/// What a newly registered applicant's appointments page shows: it must offer a choice, and
/// never another applicant's booking.
pub fn assert_sees_no_booking(v: &mut Visitor, addr: &str) {
    let page = v.send(addr, "GET", "/appointments", &[], "");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Choose an appointment") && !page.body.contains("/booking/"),
        "a new applicant sees someone's booking: {}",
        page.body
    );
}

/// Starts the portal with `env` and `args` and waits up to 60 s for it to exit by itself; its
/// exit status and what it wrote, or `None` if it kept running (it is then stopped).
pub fn run_to_exit(env: &[(&str, &str)], args: &[&str]) -> Option<(bool, String)> {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(programs::example("portal"));
    command
        .args(["--addr", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .args(args)
        .env_remove("PORTAL_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            return Some((out.status.success(), text));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}
