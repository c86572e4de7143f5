//! The portal's form tokens: every form that changes state carries one, made by the portal's
//! keyring ([`surgegate::pass::Keyring::sign_form`]) for that form's purpose (`register`, `hold`, `confirm`,
//! `release`, `cancel`), its subject (the visitor, or the booking) and the time the page was
//! made. A token of another form, of another visitor, older than [`FORM_MAX_AGE`], from the
//! future, or none at all is refused with a page that says to reload and send it again; the
//! refusal changes nothing.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::Portal;
use super::html::{esc, page};
use super::text::{self, Lang};

/// How long a form stays good after its page was made.
pub const FORM_MAX_AGE: Duration = Duration::from_secs(2 * 3600);

/// The system time in whole Unix seconds.
fn now_unix_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Portal {
    /// A token for the form `purpose` shown now to `subject`.
    pub fn csrf_token(&self, purpose: &str, subject: &str) -> String {
        self.forms.sign_form(purpose, subject, now_unix_s())
    }

    /// Whether `token` is a live token of the form `purpose` for `subject`.
    pub fn csrf_ok(&self, purpose: &str, subject: &str, token: &str) -> bool {
        let max_age_s = FORM_MAX_AGE.as_secs();
        self.forms
            .verify_form(token, purpose, subject, now_unix_s(), max_age_s)
            .is_ok()
    }

    /// `Ok` for a live token of the form `purpose` for `subject`; otherwise the page to answer
    /// with, in `lang`, which links back to `again` (the page that holds the form).
    pub fn csrf_check(
        &self,
        lang: Lang,
        (purpose, subject): (&str, &str),
        token: &str,
        again: &str,
    ) -> Result<(), Box<Response>> {
        if self.csrf_ok(purpose, subject, token) {
            return Ok(());
        }
        Err(Box::new(refused(lang, again)))
    }
}

/// `403`: the form was too old, made for someone else or another form, or had no token.
pub fn refused(lang: Lang, again: &str) -> Response {
    let title = lang.say(text::FORM_EXPIRED);
    let hours = FORM_MAX_AGE.as_secs() / 3600;
    let (why, reload, send) = lang.pick(
        (
            format!(
                "مضى عليه أكثر من {} ساعة، أو لم يُعدّ لك. لم يتغيّر شيء.",
                lang.num(hours)
            ),
            "أعد تحميل الصفحة",
            "وأرسل النموذج مرة أخرى.",
        ),
        (
            format!("It is more than {hours} hours old, or it was not made for you. Nothing was changed."),
            "Reload the page",
            "and send the form again.",
        ),
    );
    let body = format!(
        "<h1>{title}</h1><p>{why}</p><p><a href=\"{}\">{reload}</a> {send}</p>",
        esc(again)
    );
    (StatusCode::FORBIDDEN, Html(page(lang, title, &body, ""))).into_response()
}
