//! The gated appointment step: choose a branch, see availability per day and window, take the
//! earliest or pick a slot, then confirm the hold before its countdown runs out.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Extension;
use axum::extract::{Form, Query, State as Shared};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use surgegate::{
    BookBackend, BranchId, Hold, HoldToken, Pass, ReserveError, RoomBackend, SlotIndex, SlotState,
};

use super::html::{csrf_field, esc, page};
use super::{Portal, Registration, State};

/// The time a window starts, as shown: windows are hours from 08:00.
pub fn window_label(window: u32) -> String {
    format!("{:02}:00", (8 + window) % 24)
}

/// "2027-01-05 at 09:00" for a slot of the portal's calendar.
pub fn slot_label(state: &Portal, slot: SlotIndex) -> String {
    match state.calendar.day_and_window(slot) {
        Some((day, window)) => format!("{day} at {}", window_label(window)),
        None => format!("slot {slot}"),
    }
}

/// A response given instead of going on (boxed: a `Response` is large).
type Instead = Box<Response>;

async fn registration(state: &Portal, pass: &Pass) -> Result<Registration, Instead> {
    match state.registry.get(pass.visitor).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(Box::new(Redirect::to("/register").into_response())),
        Err(_) => Err(Box::new(unavailable())),
    }
}

fn csrf_subject(pass: &Pass) -> String {
    pass.visitor.0.to_string()
}

fn message(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p>{}</p><p><a href=\"/appointments\">Back to the appointments</a></p>",
        esc(title),
        esc(text)
    );
    (status, Html(page(title, &body, ""))).into_response()
}

#[derive(Deserialize)]
pub struct Choice {
    branch: Option<u32>,
}

/// `GET /appointments[?branch=N]`.
pub async fn choose<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    Extension(pass): Extension<Pass>,
    Query(choice): Query<Choice>,
) -> Response {
    let who = match registration(&state, &pass).await {
        Ok(who) => who,
        Err(redirect) => return *redirect,
    };
    let (holds, bookings) = match (
        state.book.holds_of(who.applicant).await,
        state.book.bookings_of(who.applicant).await,
    ) {
        (Ok(h), Ok(b)) => (h, b),
        _ => return unavailable(),
    };
    if !holds.is_empty() {
        return Redirect::to("/appointments/hold").into_response();
    }
    if let Some(b) = bookings.first() {
        let body = format!(
            "<h1>You have an appointment</h1><p><a href=\"/booking/{}\">See your booking</a></p>",
            b.token
        );
        return Html(page("Your appointment", &body, "")).into_response();
    }
    let links: String = state
        .branch_ids()
        .map(|b| format!("<a href=\"/appointments?branch={0}\"><button class=\"plain\">Branch {0}</button></a>", b.0))
        .collect();
    let id_tail = &who.national_id[who.national_id.len().saturating_sub(4)..];
    let mut body = format!(
        "<h1>Choose an appointment</h1><p>Registered as {} (national ID ending {}, phone {}).</p>\
         <p>{links}</p>",
        esc(&who.name),
        esc(id_tail),
        esc(&who.phone)
    );
    if let Some(branch) = choice
        .branch
        .filter(|b| (1..=state.settings.branches).contains(b))
    {
        match grid(&state, &pass, BranchId(branch)).await {
            Some(table) => body.push_str(&table),
            None => return unavailable(),
        }
    }
    Html(page("Choose an appointment", &body, "")).into_response()
}

/// The page when the book's store cannot be reached.
fn unavailable() -> Response {
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again shortly",
        "The appointment service is busy.",
    )
}

/// Branch `branch`'s days and windows, with what is left in each and a button to hold it;
/// `None` when the book cannot be read.
async fn grid<B: BookBackend, R: RoomBackend>(
    state: &State<B, R>,
    pass: &Pass,
    branch: BranchId,
) -> Option<String> {
    let csrf = csrf_field(&state.csrf_token("hold", &csrf_subject(pass)));
    let windows = state.calendar.windows_per_day();
    let first = state.first_bookable_slot();
    let open: std::collections::HashMap<SlotIndex, SlotState> = state
        .book
        .availability(branch, 0..state.calendar.slots())
        .await
        .ok()?
        .into_iter()
        .collect();
    let mut out = format!(
        "<h2>Branch {0}</h2><form method=\"post\" action=\"/appointments/hold\">{csrf}\
         <input type=\"hidden\" name=\"branch\" value=\"{0}\"><button id=\"earliest\">Take the \
         earliest appointment</button></form><table><tr><th>Day</th>",
        branch.0
    );
    out.extend((0..windows).map(|w| format!("<th>{}</th>", window_label(w))));
    out.push_str("</tr>");
    for slot_of_day in (0..state.calendar.slots()).step_by(windows as usize) {
        let day = state
            .calendar
            .day_and_window(slot_of_day)
            .map_or(String::new(), |(d, _)| d.to_string());
        out.push_str(&format!("<tr><th>{day}</th>"));
        for slot in slot_of_day..slot_of_day + windows {
            out.push_str(&match open.get(&slot).map(SlotState::remaining) {
                _ if slot < first => "<td class=\"muted\">past</td>".to_owned(),
                None => "<td class=\"muted\">closed</td>".to_owned(),
                Some(0) => "<td class=\"muted\">full</td>".to_owned(),
                Some(left) => format!(
                    "<td>{left} left<form method=\"post\" action=\"/appointments/hold\">{csrf}\
                     <input type=\"hidden\" name=\"branch\" value=\"{}\"><input type=\"hidden\" \
                     name=\"slot\" value=\"{slot}\"><button>Hold</button></form></td>",
                    branch.0
                ),
            });
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    Some(out)
}

#[derive(Deserialize)]
pub struct HoldForm {
    #[serde(default)]
    csrf: String,
    branch: u32,
    slot: Option<SlotIndex>,
}

/// `POST /appointments/hold`: a chosen slot, or the earliest with room.
pub async fn hold<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    Extension(pass): Extension<Pass>,
    Form(form): Form<HoldForm>,
) -> Response {
    let who = match registration(&state, &pass).await {
        Ok(who) => who,
        Err(redirect) => return *redirect,
    };
    let subject = csrf_subject(&pass);
    if let Err(refused) = state.csrf_check(("hold", &subject), &form.csrf, "/appointments") {
        return *refused;
    }
    if !(1..=state.settings.branches).contains(&form.branch) {
        return message(
            StatusCode::BAD_REQUEST,
            "Unknown branch",
            "Choose one of the branches listed.",
        );
    }
    let branch = BranchId(form.branch);
    let bookable = state.bookable();
    let result = match form.slot {
        Some(slot) if !bookable.contains(&slot) => {
            let text = "That window has passed or is not in the calendar.";
            return message(StatusCode::BAD_REQUEST, "Not bookable", text);
        }
        Some(slot) => state.book.reserve(branch, slot, who.applicant).await,
        None => {
            state
                .book
                .reserve_earliest(branch, bookable, who.applicant)
                .await
        }
    };
    match result {
        Ok(_) => {
            state.counters.holds.fetch_add(1, Ordering::Relaxed);
            Redirect::to("/appointments/hold").into_response()
        }
        Err(ReserveError::ApplicantLimit) => Redirect::to("/appointments/hold").into_response(),
        Err(ReserveError::Full | ReserveError::NoneAvailable) => message(
            StatusCode::CONFLICT,
            "No longer available",
            "Someone took that place first. Choose another window or branch.",
        ),
        Err(e) => message(
            StatusCode::BAD_REQUEST,
            "Could not hold that appointment",
            &e.to_string(),
        ),
    }
}

/// `GET /appointments/hold`: the applicant's hold with its countdown, or where to go instead.
pub async fn show_hold<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    Extension(pass): Extension<Pass>,
) -> Response {
    let who = match registration(&state, &pass).await {
        Ok(who) => who,
        Err(redirect) => return *redirect,
    };
    let holds = match state.book.holds_of(who.applicant).await {
        Ok(holds) => holds,
        Err(_) => return unavailable(),
    };
    let Some(hold) = holds.into_iter().next() else {
        return Redirect::to("/appointments").into_response();
    };
    Html(hold_page(&state, &pass, &hold)).into_response()
}

fn hold_page<B: BookBackend, R: RoomBackend>(
    state: &State<B, R>,
    pass: &Pass,
    hold: &Hold,
) -> String {
    let confirm = csrf_field(&state.csrf_token("confirm", &csrf_subject(pass)));
    let release = csrf_field(&state.csrf_token("release", &csrf_subject(pass)));
    // Every backend gives a hold's expiry and its now on one time base (Unix time).
    let left_s = hold
        .expires_at
        .saturating_sub(state.book.now_unix())
        .as_secs();
    let body = format!(
        "<h1>Your appointment is held</h1><p>Branch {}, {}.</p>\
         <p>Confirm within <span class=\"count\" id=\"countdown\" data-expires-in=\"{left_s}\">{}:{:02}</span> \
         or the place goes to someone else.</p>\
         <form method=\"post\" action=\"/appointments/confirm\">{confirm}<input type=\"hidden\" name=\"token\" value=\"{t}\">\
         <button id=\"confirm\">Confirm the appointment</button></form>\
         <form method=\"post\" action=\"/appointments/release\">{release}<input type=\"hidden\" name=\"token\" value=\"{t}\">\
         <button class=\"plain\">Choose another</button></form>",
        hold.branch.0,
        slot_label(state, hold.slot),
        left_s / 60,
        left_s % 60,
        t = hold.token,
    );
    page(
        "Your appointment is held",
        &body,
        "<script src=\"/static/countdown.js\" defer></script>",
    )
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf: String,
    token: String,
}

/// The applicant's own hold named by the form `purpose` (`confirm`, `release`), or the
/// response to give instead.
async fn own_hold<B: BookBackend, R: RoomBackend>(
    state: &State<B, R>,
    pass: &Pass,
    (purpose, form): (&str, &TokenForm),
) -> Result<Hold, Instead> {
    let who = registration(state, pass).await?;
    let subject = csrf_subject(pass);
    let again = "/appointments/hold";
    state.csrf_check((purpose, &subject), &form.csrf, again)?;
    let token: HoldToken = form.token.parse().map_err(|_| {
        Box::new(message(
            StatusCode::BAD_REQUEST,
            "Unknown hold",
            "That hold does not exist.",
        ))
    })?;
    match state.book.hold(token).await {
        Err(_) => Err(Box::new(unavailable())),
        Ok(Some(hold)) if hold.applicant == who.applicant => Ok(hold),
        _ => Err(Box::new(message(
            StatusCode::GONE,
            "Your hold has lapsed",
            "Its time ran out; please choose again.",
        ))),
    }
}

/// `POST /appointments/confirm`: books the hold and gives the waiting-room pass back, so the
/// next person in line can start.
pub async fn confirm<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    Extension(pass): Extension<Pass>,
    Form(form): Form<TokenForm>,
) -> Response {
    let hold = match own_hold(&state, &pass, ("confirm", &form)).await {
        Ok(hold) => hold,
        Err(answer) => return *answer,
    };
    match state.book.confirm(hold.token).await {
        Ok(booking) => {
            state.counters.bookings.fetch_add(1, Ordering::Relaxed);
            let _ = state.room.finish(pass.token).await;
            Redirect::to(&format!("/booking/{}", booking.token)).into_response()
        }
        Err(e) => message(StatusCode::CONFLICT, "Could not confirm", &e.to_string()),
    }
}

/// `POST /appointments/release`: gives the held place back to choose another.
pub async fn release<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    Extension(pass): Extension<Pass>,
    Form(form): Form<TokenForm>,
) -> Response {
    match own_hold(&state, &pass, ("release", &form)).await {
        Ok(hold) => {
            let _ = state.book.release(hold.token).await;
            Redirect::to("/appointments").into_response()
        }
        Err(answer) => *answer,
    }
}
