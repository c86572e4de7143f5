//! The processes a test runs: the Python upstream (`tests/upstream.py`) and the gate binary
//! with a generated configuration, each on a free loopback port, each killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::programs;

pub const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef0123456789";
pub const SERVICE_TOKEN: &str = "service-token-0123456789abcdef012345678";
pub const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Reads the first line of `child`'s stdout: `listening on http(s)://ADDR`. A child that
/// says anything else is stopped before the test fails, so that no process outlives it.
fn listening(child: &mut Child, what: &str, log: Option<&Path>) -> String {
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout piped");
    let _ = BufReader::new(stdout).read_line(&mut line);
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .or_else(|| line.trim().strip_prefix("listening on https://"));
    match addr {
        Some(a) => a.to_owned(),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let log = log
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default();
            panic!("{what} did not start (first line {line:?}); its log:\n{log}");
        }
    }
}

/// The Python upstream.
pub struct Upstream {
    child: Child,
    pub addr: String,
}

impl Upstream {
    /// Starts it, or `None` (after a loud notice) without python3 outside CI.
    pub fn start() -> Option<Upstream> {
        let python = programs::require("python3", "python3")?;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/upstream.py");
        let mut child = Command::new(python)
            .arg(script)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 starts");
        let addr = listening(&mut child, "the Python upstream", None);
        Some(Upstream { child, addr })
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gate's configuration: `key = value` lines per table, the defaults replaced by `set`.
#[derive(Clone)]
pub struct Setup {
    tables: Vec<(String, Vec<(String, String)>)>,
}

impl Setup {
    /// A gate in front of `upstream`, gating `/register` and `/appointments`, with a room of
    /// rate 1, burst 1, one pass at a time, and a check-in timeout of 6 s.
    pub fn new(upstream: &str) -> Setup {
        let t = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        Setup {
            tables: vec![
                (
                    "".into(),
                    t(&[
                        ("listen", "\"127.0.0.1:0\""),
                        ("upstream", &format!("\"http://{upstream}\"")),
                        ("gated", "[\"/register\", \"/appointments\"]"),
                        ("secret_file", "\"gate.secret\""),
                        ("admin_token_file", "\"admin.token\""),
                        ("service_token_file", "\"service.token\""),
                    ]),
                ),
                (
                    "room".into(),
                    t(&[
                        ("rate_per_second", "1"),
                        ("burst", "1"),
                        ("max_active", "1"),
                        ("max_waiting", "1000"),
                        ("checkin_timeout_secs", "6"),
                        ("pass_ttl_secs", "600"),
                    ]),
                ),
                (
                    "book".into(),
                    t(&[
                        ("data_dir", "\"data\""),
                        ("hold_ttl_secs", "300"),
                        ("max_active_per_applicant", "1"),
                    ]),
                ),
                (
                    "proxy".into(),
                    t(&[("header_timeout_secs", "3"), ("drain_timeout_secs", "10")]),
                ),
            ],
        }
    }

    /// Sets `key` (a TOML value) in `table` (`""`: the top level), adding the table if new.
    pub fn set(mut self, table: &str, key: &str, value: &str) -> Setup {
        let pos = match self.tables.iter().position(|(n, _)| n == table) {
            Some(p) => p,
            None => {
                self.tables.push((table.to_owned(), Vec::new()));
                self.tables.len() - 1
            }
        };
        let pairs = &mut self.tables[pos].1;
        match pairs.iter_mut().find(|(k, _)| k == key) {
            Some(pair) => pair.1 = value.to_owned(),
            None => pairs.push((key.to_owned(), value.to_owned())),
        }
        self
    }

    /// Removes `key` from `table`.
    pub fn unset(mut self, table: &str, key: &str) -> Setup {
        for (n, pairs) in &mut self.tables {
            if n == table {
                pairs.retain(|(k, _)| k != key);
            }
        }
        self
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        for (name, pairs) in &self.tables {
            if !name.is_empty() {
                out.push_str(&format!("\n[{name}]\n"));
            }
            for (k, v) in pairs {
                out.push_str(&format!("{k} = {v}\n"));
            }
        }
        out
    }
}

/// Writes the secret, the tokens and `setup` into `dir`; the configuration's path.
pub fn write_config(dir: &Path, setup: &Setup) -> PathBuf {
    std::fs::write(dir.join("gate.secret"), format!("{SECRET}\n")).unwrap();
    std::fs::write(dir.join("admin.token"), format!("{ADMIN_TOKEN}\n")).unwrap();
    std::fs::write(dir.join("service.token"), SERVICE_TOKEN).unwrap();
    let path = dir.join("gate.toml");
    std::fs::write(&path, setup.text()).unwrap();
    path
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_surgegate-gate")
}

/// A running gate.
pub struct Gate {
    child: Option<Child>,
    pub addr: String,
    pub dir: PathBuf,
    log: PathBuf,
}

impl Gate {
    /// Starts a gate with `setup` in `dir` (a directory the test keeps).
    pub fn start_in(dir: &Path, setup: &Setup) -> Gate {
        let config = write_config(dir, setup);
        let log = dir.join(format!(
            "gate-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut child = Command::new(binary())
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the gate starts");
        let addr = listening(&mut child, "the gate", Some(&log));
        Gate {
            child: Some(child),
            addr,
            dir: dir.to_owned(),
            log,
        }
    }

    /// What the gate logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` (`"TERM"`, `"HUP"`) to the gate.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid)
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the gate to exit (after a SIGTERM); its exit status.
    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the gate did not exit within {limit:?}; its log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `limit`.
pub fn eventually<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
