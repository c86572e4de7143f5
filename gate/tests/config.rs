//! Configuration errors refuse to start the gate, with a message that names the key (or the
//! file) and says what to write instead: an unknown key, a missing secret, a short token, a
//! bad template, a bad value.

#![cfg(not(loom))]

mod support;

use std::process::Command;

use support::procs::{self, Setup};

/// Starts the gate with `setup` (after `prepare` changes the files) and returns its exit
/// code and what it printed on stderr.
fn refused(setup: Setup, prepare: impl FnOnce(&std::path::Path)) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = procs::write_config(dir.path(), &setup);
    prepare(dir.path());
    let out = Command::new(procs::binary())
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.stdout.is_empty(),
        "a refused gate printed {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn base() -> Setup {
    Setup::new("127.0.0.1:9")
}

fn assert_names(setup: Setup, prepare: impl FnOnce(&std::path::Path), key: &str, also: &str) {
    let (code, stderr) = refused(setup, prepare);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(key),
        "the message does not name {key}: {stderr}"
    );
    assert!(
        stderr.contains(also),
        "the message does not say {also:?}: {stderr}"
    );
}

#[test]
fn a_good_configuration_is_checked_and_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let config = procs::write_config(dir.path(), &base());
    let out = Command::new(procs::binary())
        .arg("--config")
        .arg(&config)
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn unknown_keys_are_refused_by_name() {
    assert_names(
        base().set("", "listne", "\"127.0.0.1:0\""),
        |_| {},
        "listne",
        "unknown field",
    );
    assert_names(
        base().set("room", "rate", "5"),
        |_| {},
        "room.rate",
        "unknown field",
    );
    assert_names(
        base().set("proxy", "max_body", "5"),
        |_| {},
        "proxy.max_body",
        "unknown field",
    );
}

#[test]
fn missing_or_short_secrets_and_tokens_are_refused() {
    assert_names(
        base().unset("", "secret_file"),
        |_| {},
        "secret_file",
        "missing field",
    );
    assert_names(
        base().unset("", "admin_token_file"),
        |_| {},
        "admin_token_file",
        "missing field",
    );
    assert_names(
        base(),
        |d| std::fs::remove_file(d.join("gate.secret")).unwrap(),
        "secret_file",
        "cannot read",
    );
    assert_names(
        base(),
        |d| std::fs::write(d.join("gate.secret"), "short\n").unwrap(),
        "secret_file",
        "at least 32",
    );
    assert_names(
        base(),
        |d| std::fs::write(d.join("admin.token"), "").unwrap(),
        "admin_token_file",
        "at least 32",
    );
    assert_names(
        base(),
        |d| std::fs::write(d.join("admin.token"), "x".repeat(31)).unwrap(),
        "admin_token_file",
        "at least 32",
    );
    assert_names(
        base(),
        |d| std::fs::write(d.join("service.token"), "tok en ".repeat(8)).unwrap(),
        "service_token_file",
        "characters",
    );
    assert_names(
        base(),
        |d| {
            std::fs::copy(d.join("admin.token"), d.join("service.token"))
                .map(|_| ())
                .unwrap()
        },
        "service_token_file",
        "same token",
    );
}

#[test]
fn bad_values_are_refused_by_key() {
    assert_names(
        base().set("", "listen", "\"nowhere\""),
        |_| {},
        "listen",
        "address",
    );
    assert_names(
        base().set("", "upstream", "\"https://127.0.0.1:9\""),
        |_| {},
        "upstream",
        "http://",
    );
    assert_names(
        base().set("", "upstream", "\"http://127.0.0.1:9/app\""),
        |_| {},
        "upstream",
        "path",
    );
    assert_names(
        base().set("", "gated", "[\"register\"]"),
        |_| {},
        "gated",
        "prefix",
    );
    assert_names(
        base().set("", "trusted_proxies", "[\"10.0.0.0/33\"]"),
        |_| {},
        "trusted_proxies",
        "range",
    );
    assert_names(base().set("room", "burst", "0"), |_| {}, "room.burst", "");
    assert_names(
        base().set("room", "rate_per_second", "\"fast\""),
        |_| {},
        "room.rate_per_second",
        "invalid type",
    );
    assert_names(
        base().set("room", "max_active", "-1"),
        |_| {},
        "room.max_active",
        "",
    );
    assert_names(
        base().set("room", "checkin_timeout_secs", "1"),
        |_| {},
        "room.checkin_timeout_secs",
        "between",
    );
    assert_names(
        base().set("room", "open_at", "2027-01-04T09:00:00"),
        |_| {},
        "room.open_at",
        "offset",
    );
    assert_names(
        base().set("book", "hold_ttl_secs", "0"),
        |_| {},
        "book.hold_ttl_secs",
        "between",
    );
    assert_names(
        base().set("proxy", "max_header_bytes", "10"),
        |_| {},
        "proxy.max_header_bytes",
        "between",
    );
    assert_names(
        base().set("log", "format", "\"xml\""),
        |_| {},
        "log.format",
        "unknown variant",
    );
    assert_names(
        base().set("redis", "urls", "[]"),
        |_| {},
        "redis.urls",
        "at least one",
    );
    assert_names(
        base()
            .set("redis", "urls", "[\"redis://127.0.0.1:9\"]")
            .set("room", "open_at", "2030-01-04T09:00:00Z"),
        |_| {},
        "room.open_at",
        "in-process room",
    );
    let (code, stderr) = refused(base(), |d| {
        std::fs::write(d.join("gate.toml"), "listen = [").unwrap()
    });
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("gate.toml"), "{stderr}");
}

#[test]
fn a_bad_template_is_refused_naming_its_file() {
    let setup = base().set("pages", "waiting", "\"waiting.html\"").set(
        "pages",
        "refusal",
        "\"refusal.html\"",
    );
    assert_names(
        setup.clone(),
        |d| {
            std::fs::write(d.join("waiting.html"), "{% if position %}unclosed").unwrap();
            std::fs::write(d.join("refusal.html"), "{{ status }}").unwrap();
        },
        "pages.waiting",
        "waiting.html",
    );
    assert_names(
        setup.clone(),
        |d| {
            std::fs::write(d.join("waiting.html"), "{{ position }}").unwrap();
            std::fs::write(d.join("refusal.html"), "{{ no_such_variable }}").unwrap();
        },
        "pages.refusal",
        "refusal.html",
    );
    assert_names(setup, |_| {}, "pages.waiting", "cannot read");
    assert_names(
        base().set("pages", "waiting", "\"w.html\""),
        |d| std::fs::write(d.join("w.html"), "x").unwrap(),
        "pages.refusal",
        "together",
    );
}

#[test]
fn the_readmes_configuration_is_accepted_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = &readme[readme
        .find("## Run it in front of your portal")
        .expect("the section")..];
    let start = section.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let toml = &section[start..start + section[start..].find("```").unwrap()];
    assert_eq!(
        toml.lines().count(),
        10,
        "the README promises ten lines:\n{toml}"
    );
    let dir = tempfile::tempdir().unwrap();
    procs::write_config(dir.path(), &base());
    let config = dir.path().join("gate.toml");
    std::fs::write(&config, toml).unwrap();
    let out = Command::new(procs::binary())
        .arg("--config")
        .arg(&config)
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
