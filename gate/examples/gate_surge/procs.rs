//! The two programs of the surge, each a real process on a free loopback port, stopped when
//! dropped (also when the surge fails): the Python upstream and the gate, with its
//! configuration, secret and tokens written into a temporary directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The gate's tokens and secret (random for each run).
pub struct Secrets {
    pub secret: String,
    pub admin: String,
    pub service: String,
}

impl Secrets {
    pub fn random() -> Secrets {
        let hex = |n: usize| -> String {
            (0..n)
                .map(|_| format!("{:016x}", rand::random::<u64>()))
                .collect()
        };
        Secrets {
            secret: hex(4),
            admin: hex(3),
            service: hex(3),
        }
    }
}

/// What the gate is told.
pub struct GateSetup<'a> {
    pub upstream: &'a str,
    pub rate: u32,
    pub burst: u32,
    pub max_active: u32,
    pub max_waiting: u32,
    pub checkin_timeout_secs: u64,
}

/// A running program.
pub struct Proc {
    child: Child,
    pub addr: String,
    log: Option<PathBuf>,
}

impl Proc {
    /// Starts `command` and reads its first line, `listening on http://ADDR`.
    ///
    /// # Errors
    /// The program did not start or said something else first (its log is in the message).
    fn start(mut command: Command, what: &str, log: Option<PathBuf>) -> Result<Proc, String> {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{what} does not start: {e}"))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let Some(addr) = line.trim().strip_prefix("listening on http://") else {
            let _ = child.kill();
            let _ = child.wait();
            let said = log
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default();
            return Err(format!(
                "{what} did not start (first line {line:?}):\n{said}"
            ));
        };
        Ok(Proc {
            addr: addr.to_owned(),
            child,
            log,
        })
    }

    /// The Python standard-library upstream of the gate's tests.
    pub fn upstream(python: &Path) -> Result<Proc, String> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/upstream.py");
        let mut command = Command::new(python);
        command.arg(script).stderr(Stdio::inherit());
        Proc::start(command, "the Python upstream", None)
    }

    /// The gate `binary` with `setup`, its files in `dir`.
    pub fn gate(
        binary: &Path,
        dir: &Path,
        keys: &Secrets,
        setup: &GateSetup,
    ) -> Result<Proc, String> {
        let write = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text).map_err(|e| format!("{name}: {e}"))
        };
        write("gate.secret", &keys.secret)?;
        write("admin.token", &keys.admin)?;
        write("service.token", &keys.service)?;
        let config = format!(
            "listen = \"127.0.0.1:0\"\nupstream = \"http://{}\"\ngated = [\"/register\"]\n\
             secret_file = \"gate.secret\"\nadmin_token_file = \"admin.token\"\n\
             service_token_file = \"service.token\"\n\n[room]\nrate_per_second = {}\nburst = {}\n\
             max_active = {}\nmax_waiting = {}\ncheckin_timeout_secs = {}\npass_ttl_secs = 900\n\n\
             [book]\ndata_dir = \"data\"\nhold_ttl_secs = 300\nmax_active_per_applicant = 1\n\n\
             [log]\nlevel = \"warn\"\n",
            setup.upstream,
            setup.rate,
            setup.burst,
            setup.max_active,
            setup.max_waiting,
            setup.checkin_timeout_secs
        );
        write("gate.toml", &config)?;
        let log = dir.join("gate.log");
        let stderr = std::fs::File::create(&log).map_err(|e| format!("gate.log: {e}"))?;
        // The gate runs in `dir`: a relative path to it must not change meaning.
        let binary =
            std::path::absolute(binary).map_err(|e| format!("{}: {e}", binary.display()))?;
        let mut command = Command::new(binary);
        command
            .arg("--config")
            .arg(dir.join("gate.toml"))
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .stderr(stderr);
        Proc::start(command, "the gate", Some(log))
    }

    /// Resident and peak resident memory in KiB, from `/proc/PID/status` (Linux).
    pub fn rss_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// The last lines the program logged.
    pub fn log_tail(&self) -> String {
        let text = self
            .log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
