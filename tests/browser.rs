//! The example portal in a real browser: headless Chromium driven over WebDriver (chromedriver).
//!
//! With a rate of 1 and one registration at a time, a first browser is admitted and books; a
//! second sees the waiting page at place 1, refreshes by itself (no JavaScript needed), and is
//! admitted once the first confirms: it registers, books, and sees its booking. A third, in
//! Arabic, sees the right-to-left page at place 2 and leaves the line with its button.
//! Screenshots go to `target/screenshots/`.
#![cfg(all(feature = "http", feature = "redis", feature = "serde", not(loom)))]

#[path = "support/portal_client.rs"]
#[allow(dead_code)]
mod portal_client;
#[path = "support/programs.rs"]
#[allow(dead_code)]
mod programs;
#[path = "../examples/portal/server/mod.rs"]
#[allow(dead_code)]
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// chromedriver, stopped when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
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
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a browser session")
}

async fn serve_portal(dir: &std::path::Path) -> SocketAddr {
    let mut settings = portal_client::settings(dir, 1);
    settings.max_active = 1;
    settings.checkin_timeout = Duration::from_secs(6);
    let state = server::State::open(settings).expect("the portal opens");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = server::router(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn screenshots_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target").into());
    let dir = PathBuf::from(target).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    std::fs::write(screenshots_dir().join(name), png).unwrap();
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

/// Waits (the page refreshing itself) until the page's `<h1>` reads `heading`.
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

async fn click(client: &Client, locator: Locator<'_>) {
    let element = client.find(locator).await.unwrap();
    element.click().await.unwrap();
}

async fn fill(client: &Client, id: &str, value: &str) {
    let field = client.find(Locator::Id(id)).await.unwrap();
    field.send_keys(value).await.unwrap();
}

/// Registers and books the earliest window of branch 1; the booking's text.
async fn register_and_book(client: &Client, base: &str, name: &str, national_id: &str) -> String {
    fill(client, "name", name).await;
    fill(client, "national_id", national_id).await;
    fill(client, "phone", "+962791234567").await;
    click(client, Locator::Css("form button")).await;
    wait_for_heading(client, "Choose an appointment", Duration::from_secs(10)).await;
    client
        .goto(&format!("{base}/appointments?branch=1"))
        .await
        .unwrap();
    click(client, Locator::Id("earliest")).await;
    wait_for_heading(client, "Your appointment is held", Duration::from_secs(10)).await;
    // The countdown script runs under the page's CSP and counts down.
    let first = text_of(client, "#countdown").await;
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let later = text_of(client, "#countdown").await;
    assert_ne!(first, later, "the countdown does not move");
    shot(client, "hold.png").await;
    click(client, Locator::Id("confirm")).await;
    wait_for_heading(
        client,
        "Your appointment is booked",
        Duration::from_secs(10),
    )
    .await;
    text_of(client, "#booking").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_visitors_queue_register_and_book_in_a_real_browser() {
    let Some(chromium) = programs::require("chromium", "chromium") else {
        return;
    };
    let Some(chromedriver) = programs::require("chromedriver", "chromium-driver") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let addr = serve_portal(dir.path()).await;
    let base = format!("http://{addr}");
    let (_driver, port) = start_driver(&chromedriver);
    let first = browser(port, &chromium, "en-US,en").await;
    let second = browser(port, &chromium, "en-US,en").await;
    let third = browser(port, &chromium, "ar,en;q=0.5").await;

    first.goto(&format!("{base}/register")).await.unwrap();
    wait_for_heading(&first, "Register", Duration::from_secs(5)).await;

    second.goto(&format!("{base}/register")).await.unwrap();
    wait_for_heading(&second, "You are in line", Duration::from_secs(5)).await;
    assert_eq!(text_of(&second, "p.big").await, "1");
    shot(&second, "waiting-en.png").await;

    third.goto(&format!("{base}/register")).await.unwrap();
    wait_for_heading(&third, "أنت في قائمة الانتظار", Duration::from_secs(5)).await;
    assert_eq!(text_of(&third, "p.big").await, "٢");
    let dir_attr = third
        .find(Locator::Css("html"))
        .await
        .unwrap()
        .attr("dir")
        .await
        .unwrap();
    assert_eq!(dir_attr.as_deref(), Some("rtl"));
    shot(&third, "waiting-ar.png").await;
    click(&third, Locator::Css("form button")).await;
    wait_for_heading(&third, "لقد غادرت القائمة", Duration::from_secs(5)).await;

    let booked = register_and_book(&first, &base, "Amal Haddad", "1234567890").await;
    assert!(booked.starts_with("Branch 1, "), "{booked}");
    shot(&first, "booking.png").await;

    // The second browser refreshes by itself and is admitted once the first confirmed.
    wait_for_heading(&second, "Register", Duration::from_secs(20)).await;
    let booked = register_and_book(&second, &base, "Omar Saleh", "9876543210").await;
    assert!(booked.starts_with("Branch 1, "), "{booked}");
    shot(&second, "booking-second.png").await;

    for client in [first, second, third] {
        client.close().await.unwrap();
    }
}
