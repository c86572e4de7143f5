//! The example portal in its two languages: every page in Arabic (right to left, Arabic-Indic
//! digits, dates in both calendars, no English word where the applicant reads) when the browser
//! asks for Arabic, names neither language or sends no `Accept-Language`, and in English when it
//! asks for English; the switch on every page and its cookie; hostile `lang` values and headers
//! that choose nothing and are never sent back.
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

use std::sync::Arc;

use http::{Method, StatusCode, header};
use portal_client::{Answer, Browser, book, settings};
use server::{LocalState, State};

/// The text a reader sees: the page without its tags, its style sheet and its scripts.
fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        out.push(' ');
        let tag = &rest[open..];
        let skip_to = ["<style", "<script"]
            .iter()
            .find(|t| tag.starts_with(**t))
            .map(|t| format!("</{}>", &t[1..]));
        let end = match skip_to {
            Some(close) => tag.find(&close).map(|i| i + close.len()),
            None => tag.find('>').map(|i| i + 1),
        };
        rest = &tag[end.unwrap_or(tag.len())..];
    }
    out.push_str(rest);
    out
}

/// The words of `html`'s visible text written in Latin letters, but for those `allowed`.
fn latin_words(html: &str, allowed: &[&str]) -> Vec<String> {
    visible_text(html)
        .split(|c: char| c.is_whitespace() || "().,:;!?—،".contains(c))
        .filter(|w| w.chars().any(|c| c.is_ascii_alphabetic()))
        .filter(|w| !allowed.contains(w))
        .map(str::to_owned)
        .collect()
}

/// An Arabic page as the applicant reads it: `lang`/`dir`, a known phrase, Arabic-Indic digits
/// and no English word but `allowed` (the switch's "English", references to type).
fn assert_arabic(page: &Answer, phrase: &str, allowed: &[&str]) {
    let body = &page.body;
    assert!(
        body.contains("<html lang=\"ar\" dir=\"rtl\">"),
        "not an Arabic page: {body}"
    );
    assert!(body.contains(phrase), "{phrase:?} missing: {body}");
    let mut allowed = allowed.to_vec();
    allowed.push("English");
    let english = latin_words(body, &allowed);
    assert!(english.is_empty(), "English words {english:?} in {body}");
    let mut text = visible_text(body);
    for word in &allowed {
        text = text.replace(word, "");
    }
    assert!(
        !text.contains(|c: char| c.is_ascii_digit()),
        "ASCII digits in the Arabic text: {text}"
    );
}

fn assert_english(page: &Answer, phrase: &str) {
    let body = &page.body;
    assert!(
        body.contains("<html lang=\"en\" dir=\"ltr\">"),
        "not an English page: {body}"
    );
    assert!(body.contains(phrase), "{phrase:?} missing: {body}");
    assert!(body.contains("?lang=ar\""), "no switch to Arabic: {body}");
}

fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Registers in `b`'s language, holds the earliest window of branch 1 and confirms, checking
/// each page with `check(page, what)`; the booking's page.
async fn book_through(
    b: &mut Browser,
    name: &str,
    national_id: &str,
    check: impl Fn(&Answer, &str),
) -> Answer {
    let form = b.get("/register").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    check(&form, "register");
    let csrf = form.field("csrf");
    let bad = b
        .post(
            "/register",
            &format!("csrf={csrf}&name=X&national_id=1&phone=2"),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    check(&bad, "register-errors");
    let body = format!(
        "csrf={csrf}&name={}&national_id={national_id}&phone=%2B966501234567",
        percent_encoded(name)
    );
    let registered = b.post("/register", &body).await;
    assert_eq!(
        registered.location(),
        "/appointments",
        "{}",
        registered.body
    );
    let branches = b.get("/appointments").await;
    check(&branches, "branches");
    let grid = b.get("/appointments?branch=1").await;
    check(&grid, "grid");
    let csrf = grid.field("csrf");
    let held = b
        .post("/appointments/hold", &format!("csrf={csrf}&branch=1"))
        .await;
    assert_eq!(held.location(), "/appointments/hold", "{}", held.body);
    let hold = b.get("/appointments/hold").await;
    check(&hold, "hold");
    let token = hold.field("token");
    // The confirm form's own token (the first form of the hold page).
    let csrf = hold.field("csrf");
    let lapsed = b
        .post(
            "/appointments/confirm",
            &format!("csrf={csrf}&token={}", "0".repeat(32)),
        )
        .await;
    check(&lapsed, "message");
    let confirmed = b
        .post(
            "/appointments/confirm",
            &format!("csrf={csrf}&token={token}"),
        )
        .await;
    assert_eq!(
        confirmed.status,
        StatusCode::SEE_OTHER,
        "{}",
        confirmed.body
    );
    let booking = b.get(confirmed.location()).await;
    check(&booking, "booking");
    booking
}

/// The portal at `rate` admissions a second, with at most `max_active` visitors in at once.
fn open_with(rate: u32, max_active: u32) -> (tempfile::TempDir, Arc<LocalState>) {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(dir.path(), rate);
    settings.max_active = max_active;
    let state = State::open(settings).unwrap();
    (dir, state)
}

fn open(rate: u32) -> (tempfile::TempDir, Arc<LocalState>) {
    open_with(rate, 1_000)
}

#[tokio::test]
async fn every_page_is_arabic_without_a_header_or_one_naming_neither_language() {
    for header in [None, Some("fr-FR,de;q=0.8"), Some("ar-SA,en;q=0.3")] {
        let (_dir, state) = open(100);
        let mut b = Browser::new(&state);
        b.accept_language = header;
        let landing = b.get("/").await;
        assert_eq!(landing.status, StatusCode::OK);
        assert_arabic(&landing, "مواعيد تصاريح الإقامة", &[]);
        assert!(
            landing.body.contains("href=\"?lang=en\""),
            "{}",
            landing.body
        );
        // Today in both calendars: the Hijri year ends with its era.
        assert!(landing.body.contains(" هـ"), "{}", landing.body);
        let booking = book_through(&mut b, "أمل حداد", "1234567890", |page, what| {
            let phrase = match what {
                "register" => "رقم الهوية الوطنية",
                "register-errors" => "يُرجى تصحيح الحقول أدناه",
                "branches" => "اختر موعدًا",
                "grid" => "احجز أقرب موعد متاح",
                "hold" => "موعدك محجوز مؤقتًا",
                "message" => "العودة إلى المواعيد",
                _ => "تم حجز موعدك",
            };
            if what == "booking" {
                let reference = page.body.split("<code>").nth(1).unwrap_or("");
                let reference = &reference[..reference.find('<').unwrap_or(0)];
                assert_arabic(page, phrase, &[reference]);
            } else {
                assert_arabic(page, phrase, &[]);
            }
            if what == "grid" || what == "hold" {
                assert!(
                    page.body.contains(" هـ"),
                    "{what}: no Hijri date: {}",
                    page.body
                );
            }
        })
        .await;
        assert!(booking.body.contains("الفرع ١،"), "{}", booking.body);
        let token = booking.field("csrf");
        let path = booking.body.split("action=\"").nth(1).unwrap();
        let path = &path[..path.find('"').unwrap()];
        let cancelled = b.post(path, &format!("csrf={token}")).await;
        assert_arabic(&cancelled, "أُلغي موعدك", &[]);
        assert!(
            cancelled.body.contains("href=\"/?lang=en\""),
            "{}",
            cancelled.body
        );
        let missing = b.get(&format!("/booking/{}", "f".repeat(32))).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_arabic(&missing, "لا يوجد موعد بهذا المرجع", &[]);
        book(&state).check_invariants().unwrap();
    }
}

#[tokio::test]
async fn every_page_is_english_when_the_browser_asks_for_english() {
    let (_dir, state) = open(100);
    let mut b = Browser::new(&state);
    b.accept_language = Some("en-GB,en;q=0.9,ar;q=0.8");
    let landing = b.get("/").await;
    assert_english(&landing, "Residence permit appointments");
    assert!(landing.body.contains(" AH"), "{}", landing.body);
    let booking = book_through(&mut b, "Amal Haddad", "1234567890", |page, what| {
        let phrase = match what {
            "register" => "National ID number",
            "register-errors" => "Please correct the fields below",
            "branches" => "Choose an appointment",
            "grid" => "Take the earliest appointment",
            "hold" => "Your appointment is held",
            "message" => "Back to the appointments",
            _ => "Your appointment is booked",
        };
        assert_english(page, phrase);
        assert!(
            !page
                .body
                .contains(|c| ('\u{0660}'..='\u{0669}').contains(&c))
        );
    })
    .await;
    assert!(booking.body.contains("Branch 1, "), "{}", booking.body);
}

#[tokio::test]
async fn the_waiting_page_speaks_the_portals_language() {
    // One visitor in at a time: the others wait however long the test takes.
    let (_dir, state) = open_with(1, 1);
    let mut first = Browser::new(&state);
    assert_eq!(first.get("/register").await.status, StatusCode::OK);
    let mut arabic = Browser::new(&state);
    arabic.accept_language = None;
    let waiting = arabic.get("/register").await;
    assert_arabic(&waiting, "أنت في قائمة الانتظار", &[]);
    let mut english = Browser::new(&state);
    let waiting = english.get("/register").await;
    assert!(waiting.body.contains("You are in line"), "{}", waiting.body);
    // The switch's cookie reaches the waiting page too.
    let switched = english.get("/?lang=ar").await;
    assert_arabic(&switched, "مواعيد تصاريح الإقامة", &[]);
    let waiting = english.get("/register").await;
    assert_arabic(&waiting, "أنت في قائمة الانتظار", &[]);
}

#[tokio::test]
async fn the_switch_sets_a_cookie_that_later_pages_follow() {
    let (_dir, state) = open(100);
    let mut b = Browser::new(&state);
    b.accept_language = None;
    let english = b.get("/?lang=en").await;
    assert_english(&english, "Residence permit appointments");
    let cookie = english
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("lang="))
        .expect("the switch sets the language cookie");
    assert!(cookie.starts_with("lang=en; Path=/;"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert_english(&b.get("/").await, "Residence permit appointments");
    assert_english(&b.get("/register").await, "National ID number");
    // The switch link of the English page leads back.
    assert_arabic(&b.get("/?lang=ar").await, "مواعيد تصاريح الإقامة", &[]);
    assert_arabic(&b.get("/").await, "مواعيد تصاريح الإقامة", &[]);
}

#[tokio::test]
async fn hostile_language_values_choose_nothing_and_are_never_echoed() {
    let (_dir, state) = open(100);
    let mut b = Browser::new(&state);
    b.accept_language = None;
    for query in [
        "lang=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "lang=en%0D%0ASet-Cookie:%20x=1",
        "lang=//evil.example",
        "lang=https://evil.example/",
        "lang=EN",
        "lang=",
        "lang=en&lang=ar",
    ] {
        let page = b.get(&format!("/?{query}")).await;
        assert_eq!(page.status, StatusCode::OK, "{query}");
        let set: Vec<_> = page.headers.get_all(header::SET_COOKIE).iter().collect();
        if query == "lang=en&lang=ar" {
            // The first pair counts; it is a real choice.
            assert_english(&page, "Residence permit appointments");
            b.jar.remove("lang");
            continue;
        }
        assert!(set.is_empty(), "{query} set {set:?}");
        assert_arabic(&page, "مواعيد تصاريح الإقامة", &[]);
        for echo in ["alert", "evil", "x=1", "EN"] {
            assert!(
                !page.body.contains(echo),
                "{query} echoed {echo}: {}",
                page.body
            );
        }
    }
    // A cookie or header naming something else falls back to Arabic.
    b.jar.insert("lang".into(), "<b>fr</b>".into());
    assert_arabic(&b.get("/").await, "مواعيد تصاريح الإقامة", &[]);
    b.jar.clear();
    let long = "x-y;q=0.9,".repeat(2_000);
    for header in [
        "en;q=2",
        "en;q=-1",
        "*",
        long.as_str(),
        "en;q=0.5;q=1,ar;q=0.6",
    ] {
        let page = b
            .send(Method::GET, "/", None, &[("accept-language", header)])
            .await;
        assert_arabic(&page, "مواعيد تصاريح الإقامة", &[]);
    }
}
