//! Real Redis servers for a test: `tests/redis/cluster.sh` starts one standalone server and a
//! 3-primary, 3-replica cluster on free loopback ports, and they are stopped when this is
//! dropped (also when the test fails).

use std::path::PathBuf;
use std::process::Command;

use super::programs;

pub struct Servers {
    dir: tempfile::TempDir,
    /// The standalone server's port; the cluster's nodes are on the next six.
    pub port: u16,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/redis/cluster.sh")
}

/// Whether `port` and its cluster bus port (+10 000) are free on loopback.
fn free(port: u16) -> bool {
    [port, port + 10_000]
        .iter()
        .all(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
}

impl Servers {
    /// Starts the servers, or `None` (after a loud notice) when Redis is not installed outside
    /// CI.
    pub fn start() -> Option<Servers> {
        programs::require("redis-server", "redis-server")?;
        programs::require("redis-cli", "redis-tools")?;
        for attempt in 0..5u16 {
            let seed = u16::try_from(std::process::id() % 500).unwrap_or(0);
            let base = 20_000 + ((seed + attempt * 97) % 500) * 16;
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

    pub fn standalone(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn cluster(&self) -> Vec<String> {
        (1..=6)
            .map(|i| format!("redis://127.0.0.1:{}", self.port + i))
            .collect()
    }

    /// The directory of the server on `port` (its pid file, log and append-only file).
    pub fn dir_of(&self, port: u16) -> PathBuf {
        self.dir.path().join(port.to_string())
    }

    /// Starts the cluster node on `port` again after it was killed.
    pub fn restart(&self, port: u16) {
        let status = Command::new("bash")
            .arg(script())
            .args([
                "restart",
                &self.dir.path().display().to_string(),
                &port.to_string(),
            ])
            .status()
            .expect("bash runs");
        assert!(status.success(), "restarting the node on {port}");
    }

    /// Runs `redis-cli -p port args…` and returns what it printed.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-p")
            .arg(port.to_string())
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
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
