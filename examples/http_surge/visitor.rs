//! One virtual visitor: through the door (waiting as told, or retrying refusals as told), then
//! registration and an appointment, as a browser would do it, form tokens and cookies included.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::Method;
use parking_lot::Mutex;
use surgegate::HoldToken;

use super::client::{Http, Jar, Reply};

/// How a visit ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Booked(HoldToken),
    /// Admitted and registered, but every branch tried was full.
    NoAppointment,
    /// Gave up after too many refusals at the door.
    TurnedAway,
    /// A connection failed or a page was not what it should be.
    Failed,
}

/// What all visitors of one door record.
#[derive(Default)]
pub struct Tally {
    pub requests: AtomicU64,
    /// The door's latency (requests for the gated page without a pass), in microseconds.
    pub door_us: Mutex<Vec<u32>>,
    pub waiting_answers: AtomicU64,
    pub refusals: AtomicU64,
}

/// Branches tried before giving up on an appointment.
const BRANCH_TRIES: u64 = 3;

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

async fn send(
    http: &Http,
    tally: &Tally,
    method: Method,
    path: &str,
    jar: &mut Jar,
    form: Option<String>,
) -> Option<Reply> {
    tally.requests.fetch_add(1, Ordering::Relaxed);
    http.send(method, path, jar, form, false).await
}

/// Asks for the registration page until admitted; refusals are retried after their
/// `Retry-After`, at most `patience` times.
async fn through_the_door(
    http: &Http,
    tally: &Tally,
    jar: &mut Jar,
    patience: u32,
) -> Result<Reply, Outcome> {
    let mut refusals = 0;
    loop {
        tally.requests.fetch_add(1, Ordering::Relaxed);
        let reply = http
            .send(Method::GET, "/register", jar, None, true)
            .await
            .ok_or(Outcome::Failed)?;
        let us = u32::try_from(reply.latency.as_micros()).unwrap_or(u32::MAX);
        tally.door_us.lock().push(us);
        match reply.status {
            200 if reply.body.starts_with('{') => {
                tally.waiting_answers.fetch_add(1, Ordering::Relaxed);
                let refresh_s = reply.json_u64("refresh_seconds").unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(refresh_s)).await;
            }
            200 => return Ok(reply),
            429 | 503 => {
                tally.refusals.fetch_add(1, Ordering::Relaxed);
                refusals += 1;
                if refusals > patience {
                    return Err(Outcome::TurnedAway);
                }
                let wait_s = reply.retry_after_s.unwrap_or(1).max(1);
                tokio::time::sleep(Duration::from_secs(wait_s)).await;
            }
            _ => return Err(Outcome::Failed),
        }
    }
}

/// Visitor `i`'s whole visit.
pub async fn visit(
    http: &Http,
    tally: &Tally,
    i: u64,
    seed: u64,
    branches: u32,
    patience: u32,
) -> Outcome {
    let mut jar = Jar::default();
    let form = match through_the_door(http, tally, &mut jar, patience).await {
        Ok(form) => form,
        Err(outcome) => return outcome,
    };
    let Some(csrf) = form.field("csrf") else {
        return Outcome::Failed;
    };
    let body = format!(
        "csrf={csrf}&name=Visitor+Number&national_id={:010}&phone=0790000000",
        i + 1
    );
    match send(http, tally, Method::POST, "/register", &mut jar, Some(body)).await {
        Some(r) if r.status == 303 => {}
        _ => return Outcome::Failed,
    }
    for attempt in 0..BRANCH_TRIES {
        let branch = 1 + mix(seed ^ mix(i * BRANCH_TRIES + attempt)) % u64::from(branches);
        match book_at(http, tally, &mut jar, branch).await {
            Some(Outcome::NoAppointment) => continue,
            Some(outcome) => return outcome,
            None => return Outcome::Failed,
        }
    }
    // Done without an appointment: give the place back for the next in line.
    send(
        http,
        tally,
        Method::POST,
        "/surgegate/leave",
        &mut jar,
        Some(String::new()),
    )
    .await;
    Outcome::NoAppointment
}

/// Holds the earliest window of `branch` and confirms it; `NoAppointment` if it is full.
async fn book_at(http: &Http, tally: &Tally, jar: &mut Jar, branch: u64) -> Option<Outcome> {
    let grid = send(
        http,
        tally,
        Method::GET,
        &format!("/appointments?branch={branch}"),
        jar,
        None,
    )
    .await?;
    let csrf = grid.field("csrf")?;
    let body = format!("csrf={csrf}&branch={branch}");
    let held = send(
        http,
        tally,
        Method::POST,
        "/appointments/hold",
        jar,
        Some(body),
    )
    .await?;
    match held.status {
        303 => {}
        409 => return Some(Outcome::NoAppointment),
        _ => return None,
    }
    let page = send(http, tally, Method::GET, "/appointments/hold", jar, None).await?;
    let token = page.field("token")?;
    // The confirm form's own token (the first form of the hold page).
    let csrf = page.field("csrf")?;
    let body = format!("csrf={csrf}&token={token}");
    let confirmed = send(
        http,
        tally,
        Method::POST,
        "/appointments/confirm",
        jar,
        Some(body),
    )
    .await?;
    let booking = confirmed.location.strip_prefix("/booking/")?;
    Some(Outcome::Booked(booking.parse().ok()?))
}
