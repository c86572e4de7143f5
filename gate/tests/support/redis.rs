//! Real Redis servers for the gate's tests, started by the crate's `tests/redis/cluster.sh`
//! (one standalone server and a 3-primary, 3-replica cluster on free loopback ports) and
//! stopped when dropped, also when the test fails.

use std::path::PathBuf;
use std::process::Command;

use super::programs;

pub struct Servers {
    dir: tempfile::TempDir,
    /// The standalone server's port; the cluster's nodes are on the next six.
    pub port: u16,
}

fn script() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/redis/cluster.sh"
    ))
}

fn free(port: u16) -> bool {
    [port, port + 10_000]
        .iter()
        .all(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
}

impl Servers {
    /// Starts the servers, or `None` (after a loud notice) without Redis outside CI.
    pub fn start() -> Option<Servers> {
        programs::require("redis-server", "redis-server")?;
        programs::require("redis-cli", "redis-tools")?;
        for attempt in 0..5u16 {
            // Another range than the crate's own tests, which may run at the same time.
            let seed = u16::try_from(std::process::id() % 500).unwrap_or(0);
            let base = 28_000 + ((seed + attempt * 89) % 400) * 16;
            if !(base..base + 7).all(free) {
                continue;
            }
            let dir = tempfile::tempdir().expect("a temp dir");
            let started = Command::new("bash")
                .arg(script())
                .args([
                    "start",
                    &dir.path().display().to_string(),
                    &base.to_string(),
                ])
                .status()
                .expect("bash runs");
            let servers = Servers { dir, port: base };
            if started.success() {
                return Some(servers);
            }
        }
        panic!("could not start the Redis servers on five port ranges");
    }

    pub fn cluster(&self) -> Vec<String> {
        (1..=6)
            .map(|i| format!("redis://127.0.0.1:{}", self.port + i))
            .collect()
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["stop", &self.dir.path().display().to_string()])
            .status();
    }
}
