//! The example portal in a real browser: headless Chromium driven over WebDriver (chromedriver).
//!
//! With a rate of 1 and one registration at a time, a first browser is admitted and books; a
//! second sees the waiting page at place 1, refreshes by itself (no JavaScript needed), and is
//! admitted once the first confirms: it registers, books, and sees its booking. A third, in
//! Arabic, sees the right-to-left page at place 2 and leaves the line with its button.
//! Screenshots go to `target/screenshots/`.
//!
//! Then every page of the portal (landing, waiting room, register, choose an appointment, hold,
//! booking) in Arabic and in English, at a phone's width (390×844) and a desktop's (1280×800):
//! each in its language and direction, none wider than the screen, each saved as a PNG in
//! `target/screenshots/pages/` (or `$PORTAL_SCREENSHOTS_DIR`: the README's pictures in
//! `docs/screenshots/` come from `PORTAL_SCREENSHOTS_DIR=docs/screenshots cargo test --test
//! browser -- every_page standby_pages`, then shrunk to 96 colours as the README shows). The
//! standby pages (nothing free, on standby, the hold standby found) the same way, beside them.
#![cfg(all(
    feature = "http",
    feature = "redis",
    feature = "serde",
    feature = "hijri",
    not(loom)
))]

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
use surgegate::BranchId;

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
    browser_sized(port, chromium, language, None).await
}

/// A browser session whose pages are `(width, height)` CSS pixels when given.
async fn browser_sized(
    port: u16,
    chromium: &PathBuf,
    language: &str,
    viewport: Option<(u32, u32)>,
) -> Client {
    let mut options = json!({
        "binary": chromium,
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic", "--window-size=480,900",
                 "--hide-scrollbars"],
        "prefs": {"intl": {"accept_languages": language}},
    });
    if let Some((width, height)) = viewport {
        options["mobileEmulation"] =
            json!({"deviceMetrics": {"width": width, "height": height, "pixelRatio": 1.0}});
    }
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
    serve_portal_with(dir, 1, 1).await.0
}

/// The portal on a free loopback port, admitting `rate` a second with `max_active` in at once.
async fn serve_portal_with(
    dir: &std::path::Path,
    rate: u32,
    max_active: u32,
) -> (SocketAddr, std::sync::Arc<server::LocalState>) {
    let mut settings = portal_client::settings(dir, rate);
    settings.max_active = max_active;
    settings.checkin_timeout = Duration::from_secs(6);
    let state = server::State::open(settings).expect("the portal opens");
    let kept = state.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = server::router(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, kept)
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

/// Where the pages' screenshots go: `$PORTAL_SCREENSHOTS_DIR`, or `target/screenshots/pages`.
fn pages_dir() -> PathBuf {
    let dir = std::env::var_os("PORTAL_SCREENSHOTS_DIR")
        .map_or_else(|| screenshots_dir().join("pages"), PathBuf::from);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One language's headings and the browser's `Accept-Language` for it.
struct Language {
    code: &'static str,
    accept: &'static str,
    dir: &'static str,
    /// landing, waiting, register, choose, hold, booked, nothing free.
    headings: [&'static str; 7],
}

const LANGUAGES: [Language; 2] = [
    Language {
        code: "ar",
        accept: "ar-SA,ar",
        dir: "rtl",
        headings: [
            "مواعيد تصاريح الإقامة",
            "أنت في قائمة الانتظار",
            "التسجيل",
            "اختر موعدًا",
            "موعدك محجوز مؤقتًا",
            "تم حجز موعدك",
            "لم يعد متاحًا",
        ],
    },
    Language {
        code: "en",
        accept: "en-US,en",
        dir: "ltr",
        headings: [
            "Residence permit appointments",
            "You are in line",
            "Register",
            "Choose an appointment",
            "Your appointment is held",
            "Your appointment is booked",
            "No longer available",
        ],
    },
];

/// Checks the page is in `language` and no wider than the screen, then saves its picture.
async fn page_shot(client: &Client, language: &Language, page: &str, width: &str) {
    let html = client.find(Locator::Css("html")).await.unwrap();
    assert_eq!(
        (
            html.attr("lang").await.unwrap().as_deref(),
            html.attr("dir").await.unwrap().as_deref()
        ),
        (Some(language.code), Some(language.dir)),
        "{page} at {width}"
    );
    let overflow = client
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        overflow.as_i64().is_some_and(|px| px <= 0),
        "{page} in {} at {width} is {overflow} px wider than the screen",
        language.code
    );
    let png = client.screenshot().await.unwrap();
    let name = format!("{page}-{}-{width}.png", language.code);
    std::fs::write(pages_dir().join(name), png).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_in_both_languages_at_phone_and_desktop_widths() {
    let Some(chromium) = programs::require("chromium", "chromium") else {
        return;
    };
    let Some(chromedriver) = programs::require("chromedriver", "chromium-driver") else {
        return;
    };
    let (flow_dir, line_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (flow, _) = serve_portal_with(flow_dir.path(), 100, 100).await;
    // A second portal whose one place is taken: its visitors wait in line.
    let (line, line_state) = serve_portal_with(line_dir.path(), 1, 1).await;
    let mut holder = portal_client::Browser::new(&line_state);
    assert_eq!(holder.get("/register").await.status, 200);
    let (_driver, port) = start_driver(&chromedriver);
    let mut national_id = 4_000_000_000u64;
    for language in &LANGUAGES {
        for (width, viewport) in [("phone", (390, 844)), ("desktop", (1280, 800))] {
            let client = browser_sized(port, &chromium, language.accept, Some(viewport)).await;
            let [landing, waiting, register, choose, held, booked, _] = language.headings;
            let heading = Duration::from_secs(10);
            client.goto(&format!("http://{flow}/")).await.unwrap();
            wait_for_heading(&client, landing, heading).await;
            page_shot(&client, language, "landing", width).await;
            client
                .goto(&format!("http://{line}/register"))
                .await
                .unwrap();
            wait_for_heading(&client, waiting, heading).await;
            page_shot(&client, language, "waiting", width).await;
            client
                .goto(&format!("http://{flow}/register"))
                .await
                .unwrap();
            wait_for_heading(&client, register, heading).await;
            page_shot(&client, language, "register", width).await;
            national_id += 1;
            register_as(&client, language, national_id).await;
            client
                .goto(&format!("http://{flow}/appointments?branch=1"))
                .await
                .unwrap();
            wait_for_heading(&client, choose, heading).await;
            page_shot(&client, language, "choose", width).await;
            click(&client, Locator::Id("earliest")).await;
            wait_for_heading(&client, held, heading).await;
            page_shot(&client, language, "hold", width).await;
            click(&client, Locator::Id("confirm")).await;
            wait_for_heading(&client, booked, heading).await;
            page_shot(&client, language, "booking", width).await;
            client.close().await.unwrap();
        }
    }
}

/// Fills in the open registration form as `language`'s applicant, sends it, and waits for the
/// appointments page.
async fn register_as(client: &Client, language: &Language, national_id: u64) {
    fill(client, "name", language.pick_name()).await;
    fill(client, "national_id", &national_id.to_string()).await;
    fill(client, "phone", "+966501234567").await;
    click(client, Locator::Css("main form button")).await;
    wait_for_heading(client, language.headings[3], Duration::from_secs(10)).await;
}

impl Language {
    fn pick_name(&self) -> &'static str {
        if self.code == "ar" {
            "أمل حداد"
        } else {
            "Amal Haddad"
        }
    }
}

/// The standby pages in Arabic and in English at both widths: the "nothing free" page with its
/// form, the appointments page of an applicant on standby, and the hold standby found, which is
/// confirmed. Each in its language and direction, none wider than the screen, each saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_pages_in_both_languages_at_phone_and_desktop_widths() {
    let Some(chromium) = programs::require("chromium", "chromium") else {
        return;
    };
    let Some(chromedriver) = programs::require("chromedriver", "chromium-driver") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (flow, state) = serve_portal_with(dir.path(), 100, 100).await;
    let book = portal_client::book(&state);
    let bookable = state.bookable();
    // Branch 1 has no place at all: whoever asks there finds nothing free.
    for slot in bookable.clone() {
        book.set_capacity(BranchId(1), slot, 0).unwrap();
    }
    let (_driver, port) = start_driver(&chromedriver);
    let mut national_id = 4_100_000_000u64;
    for language in &LANGUAGES {
        let [_, _, register, choose, held, booked, nothing_free] = language.headings;
        for (width, viewport) in [("phone", (390, 844)), ("desktop", (1280, 800))] {
            let client = browser_sized(port, &chromium, language.accept, Some(viewport)).await;
            let heading = Duration::from_secs(10);
            client
                .goto(&format!("http://{flow}/register"))
                .await
                .unwrap();
            wait_for_heading(&client, register, heading).await;
            national_id += 1;
            register_as(&client, language, national_id).await;
            client
                .goto(&format!("http://{flow}/appointments?branch=1"))
                .await
                .unwrap();
            wait_for_heading(&client, choose, heading).await;
            click(&client, Locator::Id("earliest")).await;
            wait_for_heading(&client, nothing_free, heading).await;
            page_shot(&client, language, "nothing-free", width).await;
            click(&client, Locator::Id("join-standby")).await;
            wait_for_heading(&client, choose, heading).await;
            assert!(client.find(Locator::Id("on-standby")).await.is_ok());
            page_shot(&client, language, "standby", width).await;
            // A place comes free at branch 1: it is held for this request.
            let first = bookable.start;
            let capacity = book.slot(BranchId(1), first).map_or(0, |s| s.capacity);
            book.set_capacity(BranchId(1), first, capacity + 1).unwrap();
            client
                .goto(&format!("http://{flow}/appointments"))
                .await
                .unwrap();
            wait_for_heading(&client, held, heading).await;
            assert!(client.find(Locator::Id("standby-found")).await.is_ok());
            page_shot(&client, language, "standby-hold", width).await;
            click(&client, Locator::Id("confirm")).await;
            wait_for_heading(&client, booked, heading).await;
            client.close().await.unwrap();
        }
    }
    assert_eq!(
        book.slot(BranchId(1), bookable.start).map(|s| s.booked),
        Some(4),
        "each of the four applicants booked the place freed for it"
    );
    book.check_invariants().unwrap();
}
