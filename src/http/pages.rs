//! What a visitor who may not go through yet is shown: server-rendered HTML in Arabic (right to
//! left) or English, readable on a phone and needing no JavaScript, or JSON for apps.
//!
//! Every page holds only numbers and fixed text of its own (nothing from the request), so there
//! is nothing to escape.

use std::fmt::Write as _;

/// The language of a page, picked from `Accept-Language`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lang {
    English,
    Arabic,
}

impl Lang {
    /// The language among those offered that the header weights highest (ties: the first
    /// listed); English when neither is asked for. Reads at most 32 entries.
    pub(crate) fn from_accept_language(header: Option<&str>) -> Lang {
        let mut best = (Lang::English, 0u32);
        for item in header.unwrap_or("").split(',').take(32) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let lang = match tag.split('-').next() {
                Some("ar") => Lang::Arabic,
                Some("en") => Lang::English,
                _ => continue,
            };
            let weight = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(1000, quality);
            if weight > best.1 {
                best = (lang, weight);
            }
        }
        best.0
    }
}

/// A `q` value in thousandths; 0 for anything that is not one.
fn quality(text: &str) -> u32 {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole == "1" {
        return 1000;
    }
    if whole != "0" || frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    format!("{frac:0<3}").parse().unwrap_or(0)
}

/// Digits as the page's language writes them (Arabic-Indic for Arabic).
fn number(lang: Lang, n: u64) -> String {
    let text = n.to_string();
    match lang {
        Lang::English => text,
        Lang::Arabic => text
            .chars()
            .map(|c| char::from_u32(0x0660 + c.to_digit(10).unwrap_or(0)).unwrap_or(c))
            .collect(),
    }
}

/// The expected wait in words: seconds under two minutes, then whole minutes rounded up.
fn wait_words(lang: Lang, eta_seconds: u64) -> String {
    let minutes = eta_seconds.div_ceil(60);
    match (lang, eta_seconds < 120) {
        (Lang::English, true) => format!("about {eta_seconds} seconds"),
        (Lang::English, false) => format!("about {minutes} minutes"),
        (Lang::Arabic, true) => format!("حوالي {} ثانية", number(lang, eta_seconds)),
        (Lang::Arabic, false) => format!("حوالي {} دقيقة", number(lang, minutes)),
    }
}

/// A visitor's standing in line, as shown.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Standing {
    pub position: u64,
    pub waiting: u64,
    pub eta_seconds: u64,
    pub refresh_seconds: u64,
}

const STYLE: &str = "body{font-family:system-ui,'Noto Naskh Arabic','Segoe UI',sans-serif;\
margin:0;background:#f4f6f8;color:#1d2530}main{max-width:32rem;margin:2rem auto;padding:1.5rem;\
background:#fff;border-radius:.75rem;box-shadow:0 1px 4px #0002}h1{font-size:1.5rem;margin-top:0}\
.big{font-size:3rem;font-weight:700;margin:.5rem 0}p{line-height:1.6}\
button{font-size:1rem;padding:.6rem 1.2rem;border-radius:.4rem;border:1px solid #8896a5;background:#fff}";

fn page(lang: Lang, title: &str, refresh_seconds: Option<u64>, body: &str) -> String {
    let (code, dir) = match lang {
        Lang::English => ("en", "ltr"),
        Lang::Arabic => ("ar", "rtl"),
    };
    let mut out = String::with_capacity(1536);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"{code}\" dir=\"{dir}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
    );
    if let Some(seconds) = refresh_seconds {
        let _ = write!(out, "<meta http-equiv=\"refresh\" content=\"{seconds}\">");
    }
    let _ = write!(
        out,
        "<title>{title}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>"
    );
    out
}

/// The waiting page: place, line length, expected wait; refreshes itself; a form to leave
/// (`leave_url`: the leave path with this visitor's form token, base64url, so no escaping).
pub(crate) fn waiting_html(lang: Lang, s: Standing, leave_url: &str) -> String {
    let n = |v| number(lang, v);
    let body = match lang {
        Lang::English => format!(
            "<h1>You are in line</h1><p>Your place in line</p><p class=\"big\">{}</p>\
             <p>of {} waiting. Expected wait: {}.</p>\
             <p>This page refreshes by itself every {} seconds. Keep it open: refreshing or \
             coming back does not lose your place.</p>\
             <form method=\"post\" action=\"{leave_url}\"><button>Leave the line</button></form>",
            n(s.position),
            n(s.waiting),
            wait_words(lang, s.eta_seconds),
            n(s.refresh_seconds)
        ),
        Lang::Arabic => format!(
            "<h1>أنت في قائمة الانتظار</h1><p>ترتيبك في القائمة</p><p class=\"big\">{}</p>\
             <p>من أصل {} في الانتظار. مدة الانتظار المتوقعة: {}.</p>\
             <p>تتحدّث هذه الصفحة تلقائيًا كل {} ثانية. أبقِها مفتوحة: تحديث الصفحة أو العودة \
             إليها لا يُفقدك مكانك.</p>\
             <form method=\"post\" action=\"{leave_url}\"><button>مغادرة القائمة</button></form>",
            n(s.position),
            n(s.waiting),
            wait_words(lang, s.eta_seconds),
            n(s.refresh_seconds)
        ),
    };
    let title = match lang {
        Lang::English => "You are in line",
        Lang::Arabic => "أنت في قائمة الانتظار",
    };
    page(lang, title, Some(s.refresh_seconds), &body)
}

/// Why a visitor is turned away for now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The line is at its bound.
    Full,
    /// The room is closed to new visitors.
    Closed,
    /// Too many new visitors from this address.
    Limited,
    /// The room could not be reached.
    Unavailable,
    /// A request that may not start a new identity (not a plain `GET`/`HEAD` of the site
    /// itself) came without one.
    Forbidden,
    /// A form of the layer's own (leaving the line) without a live token made for this
    /// visitor: the page that held it is too old, or not theirs.
    Reload,
}

impl Refusal {
    pub(crate) fn status_word(self) -> &'static str {
        match self {
            Refusal::Full => "full",
            Refusal::Closed => "closed",
            Refusal::Limited => "limited",
            Refusal::Unavailable => "unavailable",
            Refusal::Forbidden => "forbidden",
            Refusal::Reload => "reload",
        }
    }
}

/// The page of a refusal, asking the visitor to come back after `retry_seconds`.
pub(crate) fn refusal_html(lang: Lang, why: Refusal, retry_seconds: u64) -> String {
    let r = number(lang, retry_seconds);
    let (title, text) = match (lang, why) {
        (Lang::English, Refusal::Full) => (
            "The line is full",
            format!("Too many people are waiting right now. Please try again in {r} seconds."),
        ),
        (Lang::English, Refusal::Closed) => (
            "Registration is closed",
            "The service is not taking new visitors right now. Please try again later.".into(),
        ),
        (Lang::English, Refusal::Limited) => (
            "Too many new visitors from your network",
            format!("Please try again in {r} seconds, from the same browser."),
        ),
        (Lang::English, Refusal::Unavailable) => (
            "Please try again shortly",
            format!("The service is busy. Please try again in {r} seconds."),
        ),
        (Lang::English, Refusal::Forbidden) => (
            "Please open this page from the site",
            "Your place in line was not found with this request. Open the page again from \
             the site's own address."
                .into(),
        ),
        (Lang::English, Refusal::Reload) => (
            "Please reload the page",
            "This page is too old, or it was not made for you, so nothing was changed. \
             Reload the page and try again."
                .into(),
        ),
        (Lang::Arabic, Refusal::Reload) => (
            "يُرجى إعادة تحميل الصفحة",
            "هذه الصفحة قديمة أو لم تُعدّ لك، فلم يتغيّر شيء. أعِد تحميل الصفحة وحاول مرة أخرى.".into(),
        ),
        (Lang::Arabic, Refusal::Forbidden) => (
            "يُرجى فتح هذه الصفحة من الموقع",
            "لم يُعثر على مكانك في القائمة مع هذا الطلب. افتح الصفحة مرة أخرى من عنوان الموقع نفسه."
                .into(),
        ),
        (Lang::Arabic, Refusal::Full) => (
            "قائمة الانتظار ممتلئة",
            format!("عدد المنتظرين كبير جدًا الآن. يُرجى المحاولة مرة أخرى بعد {r} ثانية."),
        ),
        (Lang::Arabic, Refusal::Closed) => (
            "التسجيل مغلق",
            "لا تستقبل الخدمة زوارًا جددًا الآن. يُرجى المحاولة لاحقًا.".into(),
        ),
        (Lang::Arabic, Refusal::Limited) => (
            "عدد كبير من الزوار الجدد من شبكتك",
            format!("يُرجى المحاولة مرة أخرى بعد {r} ثانية من المتصفح نفسه."),
        ),
        (Lang::Arabic, Refusal::Unavailable) => (
            "يُرجى المحاولة بعد قليل",
            format!("الخدمة مشغولة. يُرجى المحاولة مرة أخرى بعد {r} ثانية."),
        ),
    };
    page(lang, title, None, &format!("<h1>{title}</h1><p>{text}</p>"))
}

/// The page after leaving the line (or giving a pass back).
pub(crate) fn left_html(lang: Lang) -> String {
    let (title, text) = match lang {
        Lang::English => (
            "You have left",
            "Your place has been given to the next person. <a href=\"/\">Home</a>",
        ),
        Lang::Arabic => (
            "لقد غادرت القائمة",
            "أُعطي مكانك للشخص التالي. <a href=\"/\">الصفحة الرئيسية</a>",
        ),
    };
    page(lang, title, None, &format!("<h1>{title}</h1><p>{text}</p>"))
}

/// The waiting answer for apps: the pinned fields, and `leave_url` (where to `POST` to leave,
/// with a form token that only this visitor's leaving accepts).
pub(crate) fn waiting_json(s: Standing, leave_url: &str) -> String {
    serde_json::json!({
        "leave_url": leave_url,
        "status": "waiting",
        "position": s.position,
        "waiting": s.waiting,
        "eta_seconds": s.eta_seconds,
        "refresh_seconds": s.refresh_seconds,
    })
    .to_string()
}

/// A refusal for apps.
pub(crate) fn refusal_json(why: Refusal, retry_seconds: u64) -> String {
    serde_json::json!({ "status": why.status_word(), "retry_after_seconds": retry_seconds })
        .to_string()
}

/// The answer to leaving, for apps.
pub(crate) fn left_json() -> String {
    serde_json::json!({ "status": "left" }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_weighted_offered_language_wins() {
        let pick = |h| Lang::from_accept_language(Some(h));
        assert_eq!(Lang::from_accept_language(None), Lang::English);
        assert_eq!(pick("ar"), Lang::Arabic);
        assert_eq!(pick("ar-EG,ar;q=0.9,en;q=0.8"), Lang::Arabic);
        assert_eq!(pick("en-GB,ar;q=0.9"), Lang::English);
        assert_eq!(pick("fr, ar;q=0.5, en;q=0.4"), Lang::Arabic);
        assert_eq!(pick("fr, en;q=0.1, ar;q=0.95"), Lang::Arabic);
        assert_eq!(pick("fr, de"), Lang::English);
        assert_eq!(pick("ar;q=0, en;q=0.001"), Lang::English);
        assert_eq!(pick("ar;q=garbage"), Lang::English);
        assert_eq!(pick("AR-sa"), Lang::Arabic);
    }

    #[test]
    fn q_values_parse_to_thousandths() {
        assert_eq!(quality("1"), 1000);
        assert_eq!(quality("1.000"), 1000);
        assert_eq!(quality("0.5"), 500);
        assert_eq!(quality("0.125"), 125);
        assert_eq!(quality("0.1234"), 0);
        assert_eq!(quality("-1"), 0);
        assert_eq!(quality(""), 0);
    }

    #[test]
    fn arabic_pages_use_arabic_indic_digits_right_to_left() {
        let s = Standing {
            position: 1207,
            waiting: 5000,
            eta_seconds: 600,
            refresh_seconds: 10,
        };
        let html = waiting_html(Lang::Arabic, s, "/q/leave");
        assert!(html.contains("dir=\"rtl\"") && html.contains("lang=\"ar\""));
        assert!(html.contains("١٢٠٧") && html.contains("٥٠٠٠") && html.contains("١٠ دقيقة"));
        assert!(
            html.contains("content=\"10\""),
            "the refresh itself is in ASCII digits"
        );
        let en = waiting_html(Lang::English, s, "/q/leave");
        assert!(en.contains("1207") && en.contains("about 10 minutes") && en.contains("ltr"));
        assert!(!en.contains("<script") && !html.contains("<script"));
    }
}
