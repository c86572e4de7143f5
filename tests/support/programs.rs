//! Real programs a test needs (a browser, a server): found on the `PATH`, or the test says so
//! loudly and skips, except under `CI=true`, where a missing program is a failure (`.ci/run`
//! installs them).

use std::path::PathBuf;

/// The path of `program`, or `None` (after a loud notice) when it is missing outside CI.
///
/// # Panics
/// Under `CI=true`, when the program is missing.
pub fn require(program: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    });
    if found.is_none() {
        let note = format!("`{program}` is not installed (Debian package `{package}`)");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{note}: CI must run this test; .ci/run installs it");
        }
        eprintln!("\n*** SKIPPED: {note}; install it to run this test ***\n");
    }
    found
}

/// A free loopback port (bound, read, released: a later bind can race another process, which
/// the callers retry or accept on loopback).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("its address").port()
}

/// Builds example `name` (a no-op once `cargo test` has built it) and returns its path.
///
/// With the `test` profile, the one `cargo test` builds every target with: a plain
/// `cargo build --example` would use `dev` and build every dependency a second time.
pub fn example(name: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--profile", "test", "--example", name])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building example {name}");
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target").into());
    PathBuf::from(target).join("debug/examples").join(name)
}

/// The address a started portal (or any program printing `listening on http://ADDR` as its
/// first line) serves on.
pub fn listening_address(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout piped"))
        .read_line(&mut line)
        .expect("its first line");
    line.trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("not a listening line: {line:?}"))
        .to_owned()
}
