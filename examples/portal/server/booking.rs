//! An appointment seen and cancelled by its reference (the booking's token), without the line:
//! the token is the credential, and cancelling needs the page's form token as well.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Form, Path, State as Shared};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use surgegate::{BookBackend, HoldToken, RoomBackend};

use super::State;
use super::appointments::slot_label;
use super::html::{csrf_field, esc, page};

fn not_found() -> Response {
    let body = "<h1>No such appointment</h1><p>No booking has this reference: it was cancelled, or \
                the reference is mistyped.</p><p><a href=\"/\">Home</a></p>";
    (
        StatusCode::NOT_FOUND,
        Html(page("No such appointment", body, "")),
    )
        .into_response()
}

/// `GET /booking/{token}`.
pub async fn show<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    Path(token): Path<String>,
) -> Response {
    let Ok(token) = token.parse::<HoldToken>() else {
        return not_found();
    };
    let Ok(Some(booking)) = state.book.booking(token).await else {
        return not_found();
    };
    let csrf = csrf_field(&state.csrf_token("cancel", &token.to_string()));
    let body = format!(
        "<h1>Your appointment is booked</h1><p id=\"booking\">Branch {}, {}.</p>\
         <p>Reference: <code>{}</code>. Keep this page's address to see or cancel it.</p>\
         <form method=\"post\" action=\"/booking/{token}/cancel\">{csrf}\
         <button class=\"plain\">Cancel the appointment</button></form>",
        booking.branch.0,
        esc(&slot_label(&state, booking.slot)),
        token
    );
    Html(page("Your appointment", &body, "")).into_response()
}

#[derive(Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /booking/{token}/cancel`.
pub async fn cancel<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    Path(token): Path<String>,
    Form(form): Form<CancelForm>,
) -> Response {
    let Ok(token) = token.parse::<HoldToken>() else {
        return not_found();
    };
    let again = format!("/booking/{token}");
    if let Err(refused) = state.csrf_check(("cancel", &token.to_string()), &form.csrf, &again) {
        return *refused;
    }
    match state.book.release(token).await {
        Ok(()) => {
            state.counters.cancellations.fetch_add(1, Ordering::Relaxed);
            let body = "<h1>Cancelled</h1><p>Your appointment is cancelled and its place is free \
                        for someone else.</p><p><a href=\"/\">Home</a></p>";
            Html(page("Cancelled", body, "")).into_response()
        }
        Err(_) => not_found(),
    }
}
