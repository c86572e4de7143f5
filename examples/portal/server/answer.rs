//! What the applicant's pages share: who is asking (the registration behind the pass), the
//! form tokens' subject, a slot in words, and the short pages that answer a form.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use surgegate::{Pass, SlotIndex};

use super::html::{esc, page_switching_at};
use super::text::{self, Lang};
use super::{Portal, Registration};

/// A slot of the portal's calendar in words: its day in both calendars and its time
/// ("Tuesday 5 January 2027 — 26 Jumada al-Akhirah 1448 AH, at 09:00").
pub fn slot_label(state: &Portal, lang: Lang, slot: SlotIndex) -> String {
    match state.calendar.day_and_window(slot) {
        Some((day, window)) => {
            let (date, time) = (lang.long_date(day), lang.window_time(window));
            lang.pick(
                format!("{date}، الساعة {time}"),
                format!("{date}, at {time}"),
            )
        }
        None => lang.pick(format!("الفترة {}", lang.num(slot)), format!("slot {slot}")),
    }
}

/// A response given instead of going on (boxed: a `Response` is large).
pub type Instead = Box<Response>;

pub async fn registration(
    state: &Portal,
    lang: Lang,
    pass: &Pass,
) -> Result<Registration, Instead> {
    match state.registry.get(pass.visitor).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(Box::new(Redirect::to("/register").into_response())),
        Err(_) => Err(Box::new(unavailable(lang))),
    }
}

pub fn csrf_subject(pass: &Pass) -> String {
    pass.visitor.0.to_string()
}

/// A short page after a form: what happened, and the way back to the appointments (where the
/// language switch leads too: the form's own address cannot be opened again).
pub fn message(lang: Lang, status: StatusCode, (title, said): (&str, &str)) -> Response {
    let back = lang.pick("العودة إلى المواعيد", "Back to the appointments");
    let body = format!(
        "<h1>{}</h1><p>{}</p><p><a href=\"/appointments\">{back}</a></p>",
        esc(title),
        esc(said)
    );
    let html = page_switching_at(lang, title, &body, "", "/appointments");
    (status, Html(html)).into_response()
}

pub fn said(
    lang: Lang,
    (title, said): (text::Phrase, text::Phrase),
) -> (&'static str, &'static str) {
    (lang.say(title), lang.say(said))
}

/// The page when the book's store cannot be reached.
pub fn unavailable(lang: Lang) -> Response {
    let busy = text::Phrase {
        ar: "خدمة المواعيد مشغولة.",
        en: "The appointment service is busy.",
    };
    message(
        lang,
        StatusCode::SERVICE_UNAVAILABLE,
        said(lang, (text::TRY_AGAIN_SHORTLY, busy)),
    )
}
