//! One real standalone Redis server for a test, on a free loopback port, with `appendonly yes`
//! and `appendfsync always`: killed (SIGKILL) and started again on the same port and data
//! directory on demand, and stopped when dropped (also when the test fails).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::programs;

pub struct Single {
    dir: tempfile::TempDir,
    /// The server's port (the same after a restart).
    pub port: u16,
    child: Option<Child>,
}

impl Single {
    /// Starts a server, or `None` (after a loud notice) when Redis is not installed outside CI.
    pub fn start() -> Option<Single> {
        programs::require("redis-server", "redis-server")?;
        programs::require("redis-cli", "redis-tools")?;
        let mut server = Single {
            dir: tempfile::tempdir().expect("a temp dir"),
            port: programs::free_port(),
            child: None,
        };
        server.spawn();
        Some(server)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.cli(&["ping"]).contains("PONG") {
            assert!(
                Instant::now() < deadline,
                "redis-server on {} did not start",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server with SIGKILL (its append-only file keeps every acknowledged write).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Runs `redis-cli -p port args…` and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Single {
    fn drop(&mut self) {
        self.kill();
    }
}
