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

use super::State;
use super::answer::{Instead, csrf_subject, message, registration, slot_label, unavailable};
use super::html::{csrf_field, esc, page};
use super::standby;
use super::text::Lang;

#[derive(Deserialize)]
pub struct Choice {
    branch: Option<u32>,
}

/// `GET /appointments[?branch=N]`.
pub async fn choose<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    Extension(pass): Extension<Pass>,
    Extension(lang): Extension<Lang>,
    Query(choice): Query<Choice>,
) -> Response {
    let who = match registration(&state, lang, &pass).await {
        Ok(who) => who,
        Err(redirect) => return *redirect,
    };
    // The standby offer first: reading it records a unit freed for this applicant as its
    // hold, which the readings below then show.
    let (offer, holds, bookings) = match (
        state.book.standby_offer(who.applicant).await,
        state.book.holds_of(who.applicant).await,
        state.book.bookings_of(who.applicant).await,
    ) {
        (Ok(o), Ok(h), Ok(b)) => (o, h, b),
        // A book without a standby line answers the other two.
        (Err(surgegate::BackendError::Unsupported), Ok(h), Ok(b)) => (None, h, b),
        _ => return unavailable(lang),
    };
    if offer.is_some() || !holds.is_empty() {
        return Redirect::to("/appointments/hold").into_response();
    }
    if let Some(b) = bookings.first() {
        let (title, see) = lang.pick(
            ("لديك موعد", "اطّلع على حجزك"),
            ("You have an appointment", "See your booking"),
        );
        let body = format!(
            "<h1>{title}</h1><p><a href=\"/booking/{}\">{see}</a></p>",
            b.token
        );
        return Html(page(lang, title, &body, "")).into_response();
    }
    let branch_word = lang.pick("الفرع", "Branch");
    let links: String = state
        .branch_ids()
        .map(|b| {
            format!(
                "<a href=\"/appointments?branch={}\"><button class=\"plain\">{branch_word} {}</button></a>",
                b.0,
                lang.num(b.0)
            )
        })
        .collect();
    let id_tail = &who.national_id[who.national_id.len().saturating_sub(4)..];
    let (name, id_tail, phone) = (
        esc(&who.name),
        lang.num(esc(id_tail)),
        lang.num(esc(&who.phone)),
    );
    let title = lang.pick("اختر موعدًا", "Choose an appointment");
    let registered = lang.pick(
        format!(
            "مسجّل باسم {name} (رقم الهوية الوطنية ينتهي بـ {id_tail}، الهاتف <bdi dir=\"ltr\">{phone}</bdi>)."
        ),
        format!("Registered as {name} (national ID ending {id_tail}, phone {phone})."),
    );
    if let Ok(Some(request)) = state.book.standby_request(who.applicant).await {
        let body = format!(
            "<h1>{title}</h1><p>{registered}</p>{}",
            standby::waiting_section(&state, lang, &pass, &request)
        );
        // Refreshes itself (no script needed) so that an offer shows without a click.
        let refresh = format!(
            "<meta http-equiv=\"refresh\" content=\"{}\">",
            standby::REFRESH_SECONDS
        );
        return Html(page(lang, title, &body, &refresh)).into_response();
    }
    let mut body = format!("<h1>{title}</h1><p>{registered}</p><p>{links}</p>");
    if let Some(branch) = choice
        .branch
        .filter(|b| (1..=state.settings.branches).contains(b))
    {
        match grid(&state, lang, &pass, BranchId(branch)).await {
            Some(table) => body.push_str(&table),
            None => return unavailable(lang),
        }
    }
    Html(page(lang, title, &body, "")).into_response()
}

/// The grid's words: heading, the earliest's button, the day column, past, closed, full, and
/// the hold button.
const GRID_AR: [&str; 7] = [
    "الفرع",
    "احجز أقرب موعد متاح",
    "اليوم",
    "انقضى",
    "مغلق",
    "ممتلئ",
    "احجز",
];
const GRID_EN: [&str; 7] = [
    "Branch",
    "Take the earliest appointment",
    "Day",
    "past",
    "closed",
    "full",
    "Hold",
];

/// Branch `branch`'s days and windows, with what is left in each and a button to hold it;
/// `None` when the book cannot be read.
async fn grid<B: BookBackend, R: RoomBackend>(
    state: &State<B, R>,
    lang: Lang,
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
    let [heading, earliest, day_word, past, closed, full, hold] = lang.pick(GRID_AR, GRID_EN);
    let mut out = format!(
        "<h2>{heading} {}</h2><form method=\"post\" action=\"/appointments/hold\">{csrf}\
         <input type=\"hidden\" name=\"branch\" value=\"{}\"><button id=\"earliest\">{earliest}\
         </button></form><div class=\"scroll\"><table><tr><th>{day_word}</th>",
        lang.num(branch.0),
        branch.0
    );
    out.extend((0..windows).map(|w| format!("<th>{}</th>", lang.window_time(w))));
    out.push_str("</tr>");
    let cell = |slot: SlotIndex| match open.get(&slot).map(SlotState::remaining) {
        _ if slot < first => format!("<td class=\"muted\">{past}</td>"),
        None => format!("<td class=\"muted\">{closed}</td>"),
        Some(0) => format!("<td class=\"muted\">{full}</td>"),
        Some(left) => format!(
            "<td>{}<form method=\"post\" action=\"/appointments/hold\">{csrf}\
             <input type=\"hidden\" name=\"branch\" value=\"{}\"><input type=\"hidden\" \
             name=\"slot\" value=\"{slot}\"><button>{hold}</button></form></td>",
            lang.pick(format!("متبقٍّ {}", lang.num(left)), format!("{left} left")),
            branch.0
        ),
    };
    for slot_of_day in (0..state.calendar.slots()).step_by(windows as usize) {
        let day = state
            .calendar
            .day_and_window(slot_of_day)
            .map_or(String::new(), |(d, _)| {
                let (gregorian, hijri) = lang.date_parts(d);
                format!("{gregorian}<small>{}</small>", hijri.unwrap_or_default())
            });
        out.push_str(&format!("<tr><th>{day}</th>"));
        out.extend((slot_of_day..slot_of_day + windows).map(cell));
        out.push_str("</tr>");
    }
    out.push_str("</table></div>");
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
    Extension(lang): Extension<Lang>,
    Form(form): Form<HoldForm>,
) -> Response {
    let who = match registration(&state, lang, &pass).await {
        Ok(who) => who,
        Err(redirect) => return *redirect,
    };
    let subject = csrf_subject(&pass);
    if let Err(refused) = state.csrf_check(lang, ("hold", &subject), &form.csrf, "/appointments") {
        return *refused;
    }
    if !(1..=state.settings.branches).contains(&form.branch) {
        let words = lang.pick(
            ("فرع غير معروف", "اختر أحد الفروع المعروضة."),
            ("Unknown branch", "Choose one of the branches listed."),
        );
        return message(lang, StatusCode::BAD_REQUEST, words);
    }
    let branch = BranchId(form.branch);
    let bookable = state.bookable();
    let asked = match form.slot {
        Some(slot) => (slot, slot),
        None => (bookable.start, bookable.end.saturating_sub(1)),
    };
    let result = match form.slot {
        Some(slot) if !bookable.contains(&slot) => {
            let words = lang.pick(
                ("لا يمكن حجزه", "انقضت هذه الفترة أو أنها ليست في التقويم."),
                (
                    "Not bookable",
                    "That window has passed or is not in the calendar.",
                ),
            );
            return message(lang, StatusCode::BAD_REQUEST, words);
        }
        Some(slot) => state.book.reserve(branch, slot, who.applicant).await,
        None => {
            state
                .book
                .reserve_earliest(branch, bookable, who.applicant)
                .await
        }
    };
    if result.is_ok() {
        state.counters.holds.fetch_add(1, Ordering::Relaxed);
    }
    match result {
        Err(ReserveError::Full | ReserveError::NoneAvailable) => {
            standby::nothing_free(&state, lang, &pass, branch, asked)
        }
        other => after_reserve(lang, other),
    }
}

/// Where a reservation leads: the hold (a new one, or the one the applicant has), or why not.
fn after_reserve(lang: Lang, result: Result<Hold, ReserveError>) -> Response {
    match result {
        Ok(_) | Err(ReserveError::ApplicantLimit) => {
            Redirect::to("/appointments/hold").into_response()
        }
        Err(e) => {
            let why = e.to_string();
            let words = lang.pick(
                ("تعذّر حجز هذا الموعد", "يُرجى المحاولة مرة أخرى بعد قليل."),
                ("Could not hold that appointment", why.as_str()),
            );
            message(lang, StatusCode::BAD_REQUEST, words)
        }
    }
}

/// `GET /appointments/hold`: the applicant's hold with its countdown, or where to go instead.
pub async fn show_hold<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    Extension(pass): Extension<Pass>,
    Extension(lang): Extension<Lang>,
) -> Response {
    let who = match registration(&state, lang, &pass).await {
        Ok(who) => who,
        Err(redirect) => return *redirect,
    };
    let offer = match state.book.standby_offer(who.applicant).await {
        Ok(offer) => offer,
        Err(surgegate::BackendError::Unsupported) => None,
        Err(_) => return unavailable(lang),
    };
    let holds = match state.book.holds_of(who.applicant).await {
        Ok(holds) => holds,
        Err(_) => return unavailable(lang),
    };
    let from_standby = offer.is_some();
    let Some(hold) = offer.or_else(|| holds.into_iter().next()) else {
        return Redirect::to("/appointments").into_response();
    };
    Html(hold_page(&state, lang, &pass, (&hold, from_standby))).into_response()
}

fn hold_page<B: BookBackend, R: RoomBackend>(
    state: &State<B, R>,
    lang: Lang,
    pass: &Pass,
    (hold, from_standby): (&Hold, bool),
) -> String {
    let confirm_csrf = csrf_field(&state.csrf_token("confirm", &csrf_subject(pass)));
    let release_csrf = csrf_field(&state.csrf_token("release", &csrf_subject(pass)));
    // Every backend gives a hold's expiry and its now on one time base (Unix time).
    let left_s = hold
        .expires_at
        .saturating_sub(state.book.now_unix())
        .as_secs();
    let branch = lang.num(hold.branch.0);
    let when = slot_label(state, lang, hold.slot);
    let clock = format!(
        "<span class=\"count\" id=\"countdown\" dir=\"ltr\" data-expires-in=\"{left_s}\" \
         data-digits=\"{}\" data-expired=\"{}\">{}</span>",
        lang.pick("arab", "latn"),
        lang.pick("انتهى الوقت", "expired"),
        lang.num(format!("{}:{:02}", left_s / 60, left_s % 60)),
    );
    let (title, place, within, confirm, another) = lang.pick(
        (
            "موعدك محجوز مؤقتًا",
            format!("الفرع {branch}، {when}."),
            format!("أكّد خلال {clock} وإلا ذهب المكان إلى غيرك."),
            "تأكيد الموعد",
            "اختيار موعد آخر",
        ),
        (
            "Your appointment is held",
            format!("Branch {branch}, {when}."),
            format!("Confirm within {clock} or the place goes to someone else."),
            "Confirm the appointment",
            "Choose another",
        ),
    );
    let found = if from_standby {
        standby::found_note(lang)
    } else {
        String::new()
    };
    let body = format!(
        "<h1>{title}</h1>{found}<p>{place}</p><p>{within}</p>\
         <form method=\"post\" action=\"/appointments/confirm\">{confirm_csrf}<input type=\"hidden\" name=\"token\" value=\"{t}\">\
         <button id=\"confirm\">{confirm}</button></form>\
         <form method=\"post\" action=\"/appointments/release\">{release_csrf}<input type=\"hidden\" name=\"token\" value=\"{t}\">\
         <button class=\"plain\">{another}</button></form>",
        t = hold.token,
    );
    page(
        lang,
        title,
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
    lang: Lang,
    pass: &Pass,
    (purpose, form): (&str, &TokenForm),
) -> Result<Hold, Instead> {
    let who = registration(state, lang, pass).await?;
    let subject = csrf_subject(pass);
    let again = "/appointments/hold";
    state.csrf_check(lang, (purpose, &subject), &form.csrf, again)?;
    let token: HoldToken = form.token.parse().map_err(|_| {
        let words = lang.pick(
            ("حجز مؤقت غير معروف", "هذا الحجز المؤقت غير موجود."),
            ("Unknown hold", "That hold does not exist."),
        );
        Box::new(message(lang, StatusCode::BAD_REQUEST, words))
    })?;
    match state.book.hold(token).await {
        Err(_) => Err(Box::new(unavailable(lang))),
        Ok(Some(hold)) if hold.applicant == who.applicant => Ok(hold),
        _ => {
            let words = lang.pick(
                ("انتهت مهلة حجزك المؤقت", "نفد وقته؛ يُرجى الاختيار مرة أخرى."),
                (
                    "Your hold has lapsed",
                    "Its time ran out; please choose again.",
                ),
            );
            Err(Box::new(message(lang, StatusCode::GONE, words)))
        }
    }
}

/// `POST /appointments/confirm`: books the hold and gives the waiting-room pass back, so the
/// next person in line can start.
pub async fn confirm<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    Extension(pass): Extension<Pass>,
    Extension(lang): Extension<Lang>,
    Form(form): Form<TokenForm>,
) -> Response {
    let hold = match own_hold(&state, lang, &pass, ("confirm", &form)).await {
        Ok(hold) => hold,
        Err(answer) => return *answer,
    };
    match state.book.confirm(hold.token).await {
        Ok(booking) => {
            state.counters.bookings.fetch_add(1, Ordering::Relaxed);
            let _ = state.room.finish(pass.token).await;
            Redirect::to(&format!("/booking/{}", booking.token)).into_response()
        }
        Err(e) => {
            let why = e.to_string();
            let words = lang.pick(
                ("تعذّر التأكيد", "يُرجى اختيار الموعد مرة أخرى."),
                ("Could not confirm", why.as_str()),
            );
            message(lang, StatusCode::CONFLICT, words)
        }
    }
}

/// `POST /appointments/release`: gives the held place back to choose another.
pub async fn release<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    Extension(pass): Extension<Pass>,
    Extension(lang): Extension<Lang>,
    Form(form): Form<TokenForm>,
) -> Response {
    match own_hold(&state, lang, &pass, ("release", &form)).await {
        Ok(hold) => {
            let _ = state.book.release(hold.token).await;
            Redirect::to("/appointments").into_response()
        }
        Err(answer) => *answer,
    }
}
