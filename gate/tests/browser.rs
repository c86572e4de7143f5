//! The gate in a real browser (headless Chromium over WebDriver, as the crate's own browser
//! test drives it): with one pass at a time, a first browser is admitted and sees the
//! upstream's page; a second waits at the gate on the self-refreshing page (no JavaScript),
//! and is let in by itself once the first tells the upstream it is done (the upstream answers
//! `Surgegate-Command: finish`). Screenshots go to `target/screenshots/gate-*.png`.

#![cfg(not(loom))]

mod support;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use support::procs::{Gate, Setup, Upstream};
use support::programs;

/// chromedriver, in a process group of its own with the browsers it starts.
struct Driver(Child);

impl Drop for Driver {
    /// The whole group goes, so that no browser outlives a test that failed before closing it.
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_driver(chromedriver: &PathBuf) -> (Driver, u16) {
    let port = programs::free_port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (driver, port)
}

async fn browser(port: u16, chromium: &PathBuf, language: &str) -> Client {
    let options = json!({
        "binary": chromium,
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic", "--window-size=480,900"],
        "prefs": {"intl": {"accept_languages": language}},
    });
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a browser session")
}

async fn shot(client: &Client, name: &str) {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/screenshots"
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits (the page refreshing itself) until its `<h1>` reads `heading`.
async fn wait_for_heading(client: &Client, heading: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(h1) = client.find(Locator::Css("h1")).await
            && h1.text().await.is_ok_and(|t| t == heading)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no page headed {heading:?} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_waits_at_the_gate_and_is_let_in_when_the_first_is_done() {
    let Some(chromium) = programs::require("chromium", "chromium") else {
        return;
    };
    let Some(chromedriver) = programs::require("chromedriver", "chromium-driver") else {
        return;
    };
    let Some(upstream) = Upstream::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start_in(dir.path(), &Setup::new(&upstream.addr));
    let base = format!("http://{}", gate.addr);
    let (_driver, port) = start_driver(&chromedriver);
    let first = browser(port, &chromium, "en-US,en").await;
    let second = browser(port, &chromium, "en-US,en").await;

    first.goto(&format!("{base}/register/form")).await.unwrap();
    wait_for_heading(&first, "Registration form", Duration::from_secs(5)).await;
    let visitor = text_of(&first, "#visitor").await;
    assert!(
        visitor.parse::<u64>().is_ok(),
        "the upstream was not told who the visitor is: {visitor:?}"
    );
    shot(&first, "gate-admitted.png").await;

    second.goto(&format!("{base}/register/form")).await.unwrap();
    wait_for_heading(&second, "You are in line", Duration::from_secs(5)).await;
    assert_eq!(text_of(&second, "p.big").await, "1");
    shot(&second, "gate-waiting.png").await;
    // A visitor whose browser asks for Arabic waits behind, on the page in Arabic.
    let third = browser(port, &chromium, "ar").await;
    third.goto(&format!("{base}/register/form")).await.unwrap();
    wait_for_heading(&third, "أنت في قائمة الانتظار", Duration::from_secs(5)).await;
    assert_eq!(text_of(&third, "p.big").await, "٢");
    shot(&third, "gate-waiting-ar.png").await;

    first
        .find(Locator::Id("done"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_heading(&first, "Thank you", Duration::from_secs(5)).await;

    // The waiting page refreshes by itself and lets the second in.
    wait_for_heading(&second, "Registration form", Duration::from_secs(20)).await;
    let second_visitor = text_of(&second, "#visitor").await;
    assert!(
        second_visitor.parse::<u64>().is_ok() && second_visitor != visitor,
        "{second_visitor:?}"
    );
    shot(&second, "gate-admitted-second.png").await;
    for client in [first, second, third] {
        client.close().await.unwrap();
    }
}
