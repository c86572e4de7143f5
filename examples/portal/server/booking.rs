//! An appointment seen and cancelled by its reference (the booking's token), without the line:
//! the token is the credential, and cancelling needs the page's form token as well.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Extension;
use axum::extract::{Form, Path, State as Shared};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use surgegate::{BookBackend, HoldToken, RoomBackend};

use super::State;
use super::answer::slot_label;
use super::html::{csrf_field, esc, page, page_switching_at};
use super::text::{self, Lang};

fn not_found(lang: Lang) -> Response {
    let (title, said) = lang.pick(
        (
            "لا يوجد موعد بهذا المرجع",
            "لا يوجد حجز بهذا المرجع: إما أنه أُلغي، وإما أن المرجع مكتوب خطأً.",
        ),
        (
            "No such appointment",
            "No booking has this reference: it was cancelled, or the reference is mistyped.",
        ),
    );
    let home = lang.say(text::HOME);
    let body = format!("<h1>{title}</h1><p>{said}</p><p><a href=\"/\">{home}</a></p>");
    (StatusCode::NOT_FOUND, Html(page(lang, title, &body, ""))).into_response()
}

/// `GET /booking/{token}`.
pub async fn show<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    Extension(lang): Extension<Lang>,
    Path(token): Path<String>,
) -> Response {
    let Ok(token) = token.parse::<HoldToken>() else {
        return not_found(lang);
    };
    let Ok(Some(booking)) = state.book.booking(token).await else {
        return not_found(lang);
    };
    let csrf = csrf_field(&state.csrf_token("cancel", &token.to_string()));
    let branch = lang.num(booking.branch.0);
    let when = esc(&slot_label(&state, lang, booking.slot));
    let (title, place, keep, cancel) = lang.pick(
        (
            "تم حجز موعدك",
            format!("الفرع {branch}، {when}."),
            "المرجع:",
            "احتفظ بعنوان هذه الصفحة لتطّلع على الموعد أو تلغيه.",
        ),
        (
            "Your appointment is booked",
            format!("Branch {branch}, {when}."),
            "Reference:",
            "Keep this page's address to see or cancel it.",
        ),
    );
    let cancel_button = lang.pick("إلغاء الموعد", "Cancel the appointment");
    let body = format!(
        "<h1>{title}</h1><p id=\"booking\">{place}</p>\
         <p>{keep} <code>{token}</code>. {cancel}</p>\
         <form method=\"post\" action=\"/booking/{token}/cancel\">{csrf}\
         <button class=\"plain\">{cancel_button}</button></form>"
    );
    Html(page(lang, title, &body, "")).into_response()
}

#[derive(Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /booking/{token}/cancel`.
pub async fn cancel<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    Extension(lang): Extension<Lang>,
    Path(token): Path<String>,
    Form(form): Form<CancelForm>,
) -> Response {
    let Ok(token) = token.parse::<HoldToken>() else {
        return not_found(lang);
    };
    let again = format!("/booking/{token}");
    let subject = token.to_string();
    if let Err(refused) = state.csrf_check(lang, ("cancel", &subject), &form.csrf, &again) {
        return *refused;
    }
    match state.book.release(token).await {
        Ok(()) => {
            state.counters.cancellations.fetch_add(1, Ordering::Relaxed);
            let (title, said) = lang.pick(
                ("أُلغي الموعد", "أُلغي موعدك، وصار مكانه متاحًا لغيرك."),
                (
                    "Cancelled",
                    "Your appointment is cancelled and its place is free for someone else.",
                ),
            );
            let home = lang.say(text::HOME);
            let body = format!("<h1>{title}</h1><p>{said}</p><p><a href=\"/\">{home}</a></p>");
            Html(page_switching_at(lang, title, &body, "", "/")).into_response()
        }
        Err(_) => not_found(lang),
    }
}
