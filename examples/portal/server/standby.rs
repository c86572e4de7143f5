//! Standby in the portal: an applicant for whom nothing is free at the branches and days it
//! asked for joins the book's standby line for them (a form on the "nothing free" page); the
//! appointments page then says what it waits for, with a button to leave, and shows the hold
//! the line gives it like any other hold, to be confirmed before it lapses.
//!
//! Every form carries its own CSRF token (`standby`, `leave-standby`); the applicant is always
//! the one behind the pass, never one a form names, so nobody can join, see or leave another
//! applicant's request.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Form, State as Shared};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use surgegate::{
    BackendError, BookBackend, BranchId, Pass, RoomBackend, SlotIndex, StandbyError, StandbyRequest,
};

use super::State;
use super::answer::{csrf_subject, message, registration, slot_label, unavailable};
use super::html::{csrf_field, esc, page_switching_at};
use super::text::Lang;

/// Seconds between two refreshes of the page of an applicant on standby.
pub const REFRESH_SECONDS: u32 = 30;

/// The most fields a standby form may carry (a branch per checkbox, the range, the token).
const MAX_FIELDS: usize = 64;

/// The branches of a request in words: "branches 1, 3" / "الفروع ١، ٣".
fn branches_in_words(lang: Lang, branches: &[BranchId]) -> String {
    let numbers: Vec<String> = branches.iter().map(|b| lang.num(b.0)).collect();
    match (lang, numbers.len()) {
        (Lang::Arabic, 1) => format!("الفرع {}", numbers[0]),
        (Lang::Arabic, _) => format!("الفروع {}", numbers.join("، ")),
        (Lang::English, 1) => format!("branch {}", numbers[0]),
        (Lang::English, _) => format!("branches {}", numbers.join(", ")),
    }
}

/// The slots `first..=last` in words: one window, or from one to the other.
fn range_in_words<B, R>(
    state: &State<B, R>,
    lang: Lang,
    (first, last): (SlotIndex, SlotIndex),
) -> String {
    let (from, to) = (
        slot_label(state, lang, first),
        slot_label(state, lang, last),
    );
    if first == last {
        return from;
    }
    lang.pick(
        format!("من {from} إلى {to}"),
        format!("from {from} to {to}"),
    )
}

/// The "nothing free" page (409): nothing at `branch` in the slots asked, and a form to join
/// standby for them (at that branch, and at any other the applicant ticks).
pub fn nothing_free<B: BookBackend, R: RoomBackend>(
    state: &State<B, R>,
    lang: Lang,
    pass: &Pass,
    branch: BranchId,
    (first, last): (SlotIndex, SlotIndex),
) -> Response {
    let csrf = csrf_field(&state.csrf_token("standby", &csrf_subject(pass)));
    let (title, taken, join, how, days, button) = lang.pick(
        (
            "لم يعد متاحًا",
            "سبقك أحدهم إلى هذا المكان. اختر فترة أخرى أو فرعًا آخر، أو انضمّ إلى قائمة الاحتياط.",
            "قائمة الاحتياط",
            "عندما يُلغى موعد أو ينتهي حجز مؤقت في الفروع والأيام أدناه، يُحجز المكان لأول من انضمّ إلى القائمة، قبل أي حجز جديد.",
            "الأيام",
            "انضمّ إلى قائمة الاحتياط",
        ),
        (
            "No longer available",
            "Someone took that place first. Choose another window or branch, or join standby.",
            "Standby",
            "When an appointment is cancelled or a hold lapses at the branches and days below, the place is held for whoever joined standby first, before anyone else can take it.",
            "Days",
            "Join standby",
        ),
    );
    let boxes: String = state
        .branch_ids()
        .map(|b| {
            format!(
                "<label><input type=\"checkbox\" style=\"width:auto\" name=\"branch\" \
                 value=\"{}\"{}> {}</label>",
                b.0,
                if b == branch { " checked" } else { "" },
                branches_in_words(lang, &[b])
            )
        })
        .collect();
    let body = format!(
        "<h1>{title}</h1><p>{taken}</p><h2>{join}</h2><p>{how}</p>\
         <form method=\"post\" action=\"/appointments/standby\" id=\"standby\">{csrf}\
         <input type=\"hidden\" name=\"first\" value=\"{first}\">\
         <input type=\"hidden\" name=\"last\" value=\"{last}\">{boxes}\
         <p>{days}: {}</p><button id=\"join-standby\">{button}</button></form>",
        range_in_words(state, lang, (first, last)),
    );
    let html = page_switching_at(lang, title, &body, "", "/appointments");
    (StatusCode::CONFLICT, axum::response::Html(html)).into_response()
}

/// The appointments page's part for an applicant on standby: what it waits for, and a button
/// to leave.
pub fn waiting_section<B, R>(
    state: &State<B, R>,
    lang: Lang,
    pass: &Pass,
    request: &StandbyRequest,
) -> String {
    let csrf = csrf_field(&state.csrf_token("leave-standby", &csrf_subject(pass)));
    let covers = format!(
        "{}{} {}",
        branches_in_words(lang, &request.branches),
        lang.pick("،", ","),
        range_in_words(state, lang, (request.first, request.last))
    );
    let (heading, covers_word, how, leave) = lang.pick(
        (
            "أنت في قائمة الاحتياط",
            "تنتظر مكانًا في",
            "عندما يتوفّر مكان هناك يُحجز لك بترتيب الانضمام، وتعرضه هذه الصفحة لتؤكّده. تتحدّث الصفحة تلقائيًا.",
            "مغادرة قائمة الاحتياط",
        ),
        (
            "You are on standby",
            "You are waiting for a place at",
            "When a place comes free there it is held for you in the order people joined, and this page shows it for you to confirm. The page refreshes itself.",
            "Leave standby",
        ),
    );
    format!(
        "<h2 id=\"on-standby\">{heading}</h2><p>{covers_word} <span id=\"standby-covers\">{}\
         </span>.</p><p>{how}</p><form method=\"post\" action=\"/appointments/standby/leave\">\
         {csrf}<button class=\"plain\" id=\"leave-standby\">{leave}</button></form>",
        esc(&covers)
    )
}

/// The line above a hold that standby gave.
pub fn found_note(lang: Lang) -> String {
    let said = lang.pick(
        "وجدت لك قائمة الاحتياط هذا المكان، وهو محجوز لك الآن.",
        "Standby found you this place; it is held for you now.",
    );
    format!("<p id=\"standby-found\"><strong>{said}</strong></p>")
}

/// A standby form's fields, checked: its branches (known, repeats dropped) and its range
/// (`first` and `last` once each, inside the bookable days, in order).
struct Asked {
    branches: Vec<BranchId>,
    first: SlotIndex,
    last: SlotIndex,
}

fn read_form<B, R>(state: &State<B, R>, fields: &[(String, String)]) -> Result<Asked, String> {
    if fields.len() > MAX_FIELDS {
        return Err(format!("at most {MAX_FIELDS} fields"));
    }
    let mut asked = Asked {
        branches: Vec::new(),
        first: 0,
        last: 0,
    };
    let (mut first, mut last) = (None, None);
    for (name, value) in fields {
        match name.as_str() {
            "csrf" => {}
            "first" | "last" => {
                // Each once: of two, neither is more the applicant's choice than the other.
                let place = if name == "first" {
                    &mut first
                } else {
                    &mut last
                };
                if place.is_some() {
                    return Err(format!("{name} is given twice"));
                }
                *place = Some(
                    value
                        .parse::<SlotIndex>()
                        .map_err(|_| "days outside the calendar")?,
                );
            }
            "branch" => {
                let b = value
                    .parse::<u32>()
                    .ok()
                    .filter(|b| (1..=state.settings.branches).contains(b))
                    .ok_or("an unknown branch")?;
                if !asked.branches.contains(&BranchId(b)) {
                    asked.branches.push(BranchId(b));
                }
            }
            _ => return Err("an unknown field".into()),
        }
    }
    let bookable = state.bookable();
    match (first, last) {
        (Some(f), Some(l)) if f <= l && bookable.contains(&f) && bookable.contains(&l) => {
            (asked.first, asked.last) = (f, l);
        }
        _ => return Err("days outside the calendar".into()),
    }
    if asked.branches.is_empty() {
        return Err("no branch".into());
    }
    Ok(asked)
}

/// `POST /appointments/standby`: joins the line for what the form asks, as the applicant
/// behind the pass.
pub async fn join<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    Extension(pass): Extension<Pass>,
    Extension(lang): Extension<Lang>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let who = match registration(&state, lang, &pass).await {
        Ok(who) => who,
        Err(redirect) => return *redirect,
    };
    // The token first, whatever else the form says: a forged form learns nothing.
    let token = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map_or("", |(_, v)| v.as_str());
    let subject = csrf_subject(&pass);
    if let Err(refused) = state.csrf_check(lang, ("standby", &subject), token, "/appointments") {
        return *refused;
    }
    let Ok(asked) = read_form(&state, &fields) else {
        let words = lang.pick(
            ("طلب غير صالح", "اختر من الفروع المعروضة وأيامًا في التقويم."),
            (
                "Not a standby request",
                "Choose branches listed and days in the calendar.",
            ),
        );
        return message(lang, StatusCode::BAD_REQUEST, words);
    };
    let result = state
        .book
        .standby(who.applicant, &asked.branches, asked.first..=asked.last)
        .await;
    after_join(&state, lang, result.map(|_| ()))
}

/// Where joining leads: the appointments page (which shows the request, or the hold or
/// booking that kept the applicant from joining), or why not.
fn after_join<B, R>(state: &State<B, R>, lang: Lang, result: Result<(), StandbyError>) -> Response {
    let (status, title, said) = match result {
        Ok(()) | Err(StandbyError::ApplicantLimit) => {
            return Redirect::to("/appointments").into_response();
        }
        Err(StandbyError::UnitFree { branch, slot }) => {
            let when = slot_label(state, lang, slot);
            let branch = lang.num(branch.0);
            let (title, said) = lang.pick(
                (
                    "يوجد مكان متاح",
                    format!("الفرع {branch}، {when}: احجزه بدل الانتظار."),
                ),
                (
                    "A place is free",
                    format!("Branch {branch}, {when}: take it instead of waiting."),
                ),
            );
            (StatusCode::CONFLICT, title, said)
        }
        Err(StandbyError::LineFull { .. }) => {
            let (title, said) = lang.pick(
                ("قائمة الاحتياط ممتلئة", "يُرجى المحاولة بعد قليل."),
                ("The standby list is full", "Please try again shortly."),
            );
            (StatusCode::SERVICE_UNAVAILABLE, title, said.to_owned())
        }
        Err(StandbyError::Backend(BackendError::Unsupported)) => {
            let (title, said) = lang.pick(
                ("لا تتوفّر قائمة احتياط", "هذه البوابة لا تقدّم قائمة الاحتياط."),
                (
                    "No standby here",
                    "This portal does not keep a standby list.",
                ),
            );
            (StatusCode::SERVICE_UNAVAILABLE, title, said.to_owned())
        }
        Err(StandbyError::Backend(_)) => return unavailable(lang),
        Err(_) => {
            let (title, said) = lang.pick(
                ("طلب غير صالح", "اختر من الفروع المعروضة وأيامًا في التقويم."),
                (
                    "Not a standby request",
                    "Choose branches listed and days in the calendar.",
                ),
            );
            (StatusCode::BAD_REQUEST, title, said.to_owned())
        }
    };
    message(lang, status, (title, &said))
}

#[derive(Deserialize)]
pub struct LeaveForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /appointments/standby/leave`: takes the applicant's own waiting request out of the
/// line (nothing else: a hold it was given stays its own).
pub async fn leave<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    Extension(pass): Extension<Pass>,
    Extension(lang): Extension<Lang>,
    Form(form): Form<LeaveForm>,
) -> Response {
    let who = match registration(&state, lang, &pass).await {
        Ok(who) => who,
        Err(redirect) => return *redirect,
    };
    let subject = csrf_subject(&pass);
    if let Err(refused) = state.csrf_check(
        lang,
        ("leave-standby", &subject),
        &form.csrf,
        "/appointments",
    ) {
        return *refused;
    }
    match state.book.leave_standby(who.applicant).await {
        Ok(_) => Redirect::to("/appointments").into_response(),
        Err(_) => unavailable(lang),
    }
}
