//! The portal's two languages: which one a request gets, how numbers, times and dates are
//! written in it, and the phrases every page shares.
//!
//! Arabic first. A request's language is, in order: the switch link's `?lang=ar` or `?lang=en`
//! (which also sets the `lang` cookie), the `lang` cookie, the language `Accept-Language`
//! weights highest among the two, and Arabic when the header is absent or names neither. Any
//! other value of the parameter or the cookie is ignored: nothing of it is sent back.
//!
//! Arabic pages run right to left and write numbers in Arabic-Indic digits (٠١٢٣٤٥٦٧٨٩);
//! references a visitor may have to type (a booking's) stay in ASCII. Dates are shown in both
//! calendars, Gregorian and Umm al-Qura: `الاثنين ١١ مارس ٢٠٢٤ — ١ رمضان ١٤٤٥ هـ`.

use std::fmt::Display;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use surgegate::calendar::Date;

/// A page's language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Arabic,
    English,
}

/// A phrase in both languages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phrase {
    pub ar: &'static str,
    pub en: &'static str,
}

/// The `lang` cookie's name.
pub const COOKIE: &str = "lang";

/// How long the language cookie lasts, in seconds (a year).
const COOKIE_MAX_AGE_S: u32 = 365 * 86_400;

/// The most `Accept-Language` entries read.
const MAX_LANGUAGE_ENTRIES: usize = 32;

impl Lang {
    /// The language a code names exactly (`ar` or `en`), if any.
    pub fn from_code(code: &str) -> Option<Lang> {
        match code {
            "ar" => Some(Lang::Arabic),
            "en" => Some(Lang::English),
            _ => None,
        }
    }

    /// The BCP 47 code, for `lang=` and `Accept-Language`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Arabic => "ar",
            Lang::English => "en",
        }
    }

    /// The writing direction, for `dir=`.
    pub fn dir(self) -> &'static str {
        match self {
            Lang::Arabic => "rtl",
            Lang::English => "ltr",
        }
    }

    /// The other language: the one the switch offers.
    pub fn other(self) -> Lang {
        match self {
            Lang::Arabic => Lang::English,
            Lang::English => Lang::Arabic,
        }
    }

    /// The language's name in itself, for the switch.
    pub fn own_name(self) -> &'static str {
        match self {
            Lang::Arabic => "العربية",
            Lang::English => "English",
        }
    }

    /// The phrase in this language.
    pub fn say(self, phrase: Phrase) -> &'static str {
        match self {
            Lang::Arabic => phrase.ar,
            Lang::English => phrase.en,
        }
    }

    /// One of two texts, for those built with numbers.
    pub fn pick<T>(self, ar: T, en: T) -> T {
        match self {
            Lang::Arabic => ar,
            Lang::English => en,
        }
    }

    /// Of the two, the language `Accept-Language` weights highest (ties: the first listed);
    /// Arabic when the header is absent or names neither. Reads at most 32 entries.
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let mut best = (Lang::Arabic, 0u32);
        for item in header.unwrap_or("").split(',').take(MAX_LANGUAGE_ENTRIES) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let Some(lang) = tag.split('-').next().and_then(Lang::from_code) else {
                continue;
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

    /// The language a request asks for (see the module's documentation), and whether it
    /// asked through the switch's parameter (so the cookie is to be set).
    pub fn of_request(query: Option<&str>, headers: &HeaderMap) -> (Lang, bool) {
        if let Some(lang) = query.and_then(lang_parameter) {
            return (lang, true);
        }
        if let Some(lang) = cookie_lang(headers) {
            return (lang, false);
        }
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        (Lang::from_accept_language(accept), false)
    }

    /// `n` (or any text) with its ASCII digits written in this language's digits.
    pub fn num(self, n: impl Display) -> String {
        let text = n.to_string();
        match self {
            Lang::English => text,
            Lang::Arabic => text.chars().map(arabic_digit).collect(),
        }
    }

    /// A window's start time (`09:00`, `٠٩:٠٠`): windows are hours from 08:00.
    pub fn window_time(self, window: u32) -> String {
        self.num(format!("{:02}:00", (8 + window) % 24))
    }

    /// A day in both calendars: `Monday 11 March 2024 — 1 Ramadan 1445 AH`,
    /// `الاثنين ١١ مارس ٢٠٢٤ — ١ رمضان ١٤٤٥ هـ` (the Gregorian alone outside the Hijri years
    /// the calendar publishes).
    pub fn long_date(self, day: Date) -> String {
        let (gregorian, hijri) = self.date_parts(day);
        match hijri {
            Some(hijri) => format!("{gregorian} — {hijri}"),
            None => gregorian,
        }
    }

    /// A day's two dates without the weekday, for a grid's row: `11 March 2024` and
    /// `1 Ramadan 1445 AH`, and the weekday apart.
    pub fn date_parts(self, day: Date) -> (String, Option<String>) {
        let weekday = self.pick(ARABIC_WEEKDAYS, ENGLISH_WEEKDAYS)[usize::from(day.weekday() - 1)];
        let month = self.pick(ARABIC_MONTHS, ENGLISH_MONTHS)[usize::from(day.month() - 1)];
        let gregorian = format!(
            "{weekday} {} {month} {}",
            self.num(day.day()),
            self.num(day.year())
        );
        let hijri = day.hijri().map(|h| {
            let (name, era) = match self {
                Lang::Arabic => (h.month_name_arabic(), "هـ"),
                Lang::English => (h.month_name_english(), "AH"),
            };
            format!("{} {name} {} {era}", self.num(h.day()), self.num(h.year()))
        });
        (gregorian, hijri)
    }
}

fn arabic_digit(c: char) -> char {
    match c.to_digit(10) {
        Some(d) if c.is_ascii_digit() => char::from_u32(0x0660 + d).unwrap_or(c),
        _ => c,
    }
}

/// A `q` value in thousandths; 0 for anything that is not one.
fn quality(text: &str) -> u32 {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole == "1" && frac.bytes().all(|b| b == b'0') && frac.len() <= 3 {
        return 1000;
    }
    if whole != "0" || frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    format!("{frac:0<3}").parse().unwrap_or(0)
}

/// `lang=ar` or `lang=en` among a query's pairs; anything else is no choice.
fn lang_parameter(query: &str) -> Option<Lang> {
    query
        .split('&')
        .take(MAX_LANGUAGE_ENTRIES)
        .find_map(|pair| pair.strip_prefix("lang="))
        .and_then(Lang::from_code)
}

fn cookie_lang(headers: &HeaderMap) -> Option<Lang> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .take(MAX_LANGUAGE_ENTRIES)
        .find_map(|c| c.trim().strip_prefix("lang="))
        .and_then(Lang::from_code)
}

/// Picks every request's language before anything else sees it: the handlers read it as an
/// extension, and the waiting room's layer (which reads `Accept-Language`) is told it in that
/// header, so the waiting page speaks the same language as the portal. A request that used the
/// switch gets the `lang` cookie.
pub async fn choose_language(mut request: Request, next: Next) -> Response {
    let (lang, switched) = Lang::of_request(request.uri().query(), request.headers());
    request.headers_mut().insert(
        header::ACCEPT_LANGUAGE,
        HeaderValue::from_static(lang.code()),
    );
    request.extensions_mut().insert(lang);
    let mut response = next.run(request).await;
    if switched {
        let cookie = format!(
            "{COOKIE}={}; Path=/; Max-Age={COOKIE_MAX_AGE_S}; SameSite=Lax; HttpOnly",
            lang.code()
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

const ARABIC_WEEKDAYS: [&str; 7] = [
    "الاثنين",
    "الثلاثاء",
    "الأربعاء",
    "الخميس",
    "الجمعة",
    "السبت",
    "الأحد",
];
const ENGLISH_WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const ARABIC_MONTHS: [&str; 12] = [
    "يناير",
    "فبراير",
    "مارس",
    "أبريل",
    "مايو",
    "يونيو",
    "يوليو",
    "أغسطس",
    "سبتمبر",
    "أكتوبر",
    "نوفمبر",
    "ديسمبر",
];
const ENGLISH_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The portal's name, in every page's header.
pub const PORTAL: Phrase = Phrase {
    ar: "بوابة الخدمات الإلكترونية الوطنية",
    en: "National e-services portal",
};
/// The service the portal books.
pub const SERVICE: Phrase = Phrase {
    ar: "مواعيد تصاريح الإقامة",
    en: "Residence permit appointments",
};
pub const HOME: Phrase = Phrase {
    ar: "الصفحة الرئيسية",
    en: "Home",
};
pub const TRY_AGAIN_SHORTLY: Phrase = Phrase {
    ar: "يُرجى المحاولة بعد قليل",
    en: "Please try again shortly",
};
pub const FORM_EXPIRED: Phrase = Phrase {
    ar: "انتهت صلاحية هذا النموذج",
    en: "This form has expired",
};

#[cfg(test)]
mod tests {
    use super::{Lang, lang_parameter, quality};
    use axum::http::{HeaderMap, HeaderValue, header};

    #[test]
    fn arabic_unless_english_is_weighted_higher() {
        let pick = |h| Lang::from_accept_language(Some(h));
        assert_eq!(Lang::from_accept_language(None), Lang::Arabic);
        assert_eq!(pick(""), Lang::Arabic);
        assert_eq!(pick("fr, de"), Lang::Arabic);
        assert_eq!(pick("en-US,en;q=0.9"), Lang::English);
        assert_eq!(pick("en-GB,ar;q=0.9"), Lang::English);
        assert_eq!(pick("fr, en;q=0.1, ar;q=0.95"), Lang::Arabic);
        assert_eq!(pick("AR-sa"), Lang::Arabic);
        assert_eq!(pick("ar;q=0, en;q=0.001"), Lang::English);
        assert_eq!(pick("en;q=garbage"), Lang::Arabic);
        assert_eq!(pick(&"x,".repeat(10_000)), Lang::Arabic);
    }

    #[test]
    fn q_values_parse_to_thousandths() {
        assert_eq!(quality("1"), 1000);
        assert_eq!(quality("0.5"), 500);
        assert_eq!(quality("0.125"), 125);
        assert_eq!(quality("1.5"), 0);
        assert_eq!(quality("0.1234"), 0);
        assert_eq!(quality(""), 0);
    }

    #[test]
    fn the_switch_beats_the_cookie_which_beats_the_header() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("en"));
        assert_eq!(Lang::of_request(None, &headers), (Lang::English, false));
        headers.insert(header::COOKIE, HeaderValue::from_static("sg=1; lang=ar"));
        assert_eq!(Lang::of_request(None, &headers), (Lang::Arabic, false));
        assert_eq!(
            Lang::of_request(Some("branch=1&lang=en"), &headers),
            (Lang::English, true)
        );
        // Hostile or unknown values choose nothing.
        for query in [
            "lang=<script>",
            "lang=ar%0d%0aX:1",
            "lang=",
            "lang=AR",
            "xlang=en",
        ] {
            assert_eq!(lang_parameter(query), None, "{query}");
        }
        headers.insert(header::COOKIE, HeaderValue::from_static("lang=fr"));
        assert_eq!(Lang::of_request(None, &headers), (Lang::English, false));
    }

    #[test]
    fn numbers_times_and_dates_in_each_language() {
        let day = "2024-03-11".parse().unwrap();
        assert_eq!(
            Lang::Arabic.long_date(day),
            "الاثنين ١١ مارس ٢٠٢٤ — ١ رمضان ١٤٤٥ هـ"
        );
        assert_eq!(
            Lang::English.long_date(day),
            "Monday 11 March 2024 — 1 Ramadan 1445 AH"
        );
        assert_eq!(Lang::Arabic.window_time(1), "٠٩:٠٠");
        assert_eq!(Lang::English.window_time(1), "09:00");
        assert_eq!(Lang::Arabic.num(1207), "١٢٠٧");
        assert_eq!(Lang::Arabic.num("+962 7"), "+٩٦٢ ٧");
        let far = "2300-01-01".parse().unwrap();
        assert_eq!(Lang::English.long_date(far), "Monday 1 January 2300");
    }
}
