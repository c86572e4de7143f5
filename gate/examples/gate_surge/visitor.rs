//! One virtual visitor, as a browser and the portal behind the gate would act for it: ask for
//! the gated form until admitted (following the waiting page's refresh, and `Retry-After` when
//! refused), then take a hold and confirm it through the gate's booking API, then load the
//! page on which the upstream answers `Surgegate-Command: finish`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::client::{Ask, Browser, Reply, Site};

/// How a visit ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Admitted, booked, finished.
    Booked,
    /// Admitted and finished, but every range tried was full.
    NoAppointment,
    /// Refused at the door more than the visitor's patience allows.
    TurnedAway,
    /// A request failed or an answer was not what the protocol pins.
    Failed,
}

/// What all visitors record.
#[derive(Default)]
pub struct Tally {
    pub requests: AtomicU64,
    pub waiting_answers: AtomicU64,
    pub refusals: AtomicU64,
    /// 502/504 answers: the upstream failed or was slow (each retried after `Retry-After`).
    pub upstream_errors: AtomicU64,
    /// Bookings confirmed through the API (whatever happened to the visitor after).
    pub confirmed: AtomicU64,
    /// Arrival to admission, in microseconds, one a visitor admitted.
    pub line_us: Mutex<Vec<u64>>,
    /// Every gated request that reached the upstream, in microseconds.
    pub gated_us: Mutex<Vec<u64>>,
    /// The first few failures, to show what went wrong.
    pub errors: Mutex<Vec<String>>,
}

/// The most failures kept to show.
const SHOWN_ERRORS: usize = 10;

impl Tally {
    fn failed(&self, what: String) -> Outcome {
        let mut errors = self.errors.lock();
        if errors.len() < SHOWN_ERRORS {
            errors.push(what);
        }
        Outcome::Failed
    }
}

/// What every visitor shares: the site, the service token, the plan's shape, the patience.
pub struct Shared {
    pub site: Arc<Site>,
    pub service_auth: String,
    pub branches: u32,
    pub slots: u32,
    /// Refusals, and upstream errors, retried (after `Retry-After`) before a visitor gives up.
    pub patience: u32,
    pub seed: u64,
    pub tally: Tally,
}

/// Branch sets tried before a visitor goes without an appointment.
const BRANCH_TRIES: u64 = 3;
/// Branches in one try: the earliest slot among them is held.
const BRANCHES_PER_TRY: u64 = 3;
/// The most branches one hold may ask among (the booking API's limit).
const MAX_ALTERNATIVES: u64 = surgegate::MAX_ALTERNATIVES as u64;
/// The gated page whose answer names the visitor, and the one on which the upstream finishes.
const FORM: &str = "/register/form";
const DONE: &str = "/register/done";

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The number a waiting page's `<meta http-equiv="refresh" content="N">` asks for.
fn meta_refresh(page: &str) -> Option<u64> {
    let at = page.find("http-equiv=\"refresh\"")?;
    let rest = &page[at..];
    let start = rest.find("content=\"")? + "content=\"".len();
    let digits: String = rest[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The visitor id the upstream's form shows (`<p id=visitor>N</p>`), if this is that page.
fn visitor_on_form(page: &str) -> Option<u64> {
    let marker = "<p id=visitor>";
    let at = page.find(marker)? + marker.len();
    let end = page[at..].find('<')?;
    page[at..at + end].parse().ok()
}

async fn page(b: &mut Browser, path: &str, first: bool) -> Result<Reply, String> {
    let fetch_site = if first { "none" } else { "same-origin" };
    b.send(Ask {
        method: "GET",
        path,
        headers: &[
            ("accept", "text/html,application/xhtml+xml"),
            ("accept-language", "en-GB,en;q=0.9"),
            ("sec-fetch-site", fetch_site),
        ],
        body: String::new(),
    })
    .await
}

/// Asks for the form until admitted: the visitor id the upstream was given.
async fn through_the_door(s: &Shared, b: &mut Browser, arrived: Instant) -> Result<u64, Outcome> {
    let t = &s.tally;
    let mut refusals = 0;
    let mut upstream_errors = 0;
    let mut first = true;
    loop {
        let reply = page(b, FORM, first)
            .await
            .map_err(|e| t.failed(format!("in line: {e}")))?;
        first = false;
        if reply.status == 200 {
            if let Some(visitor) = visitor_on_form(&reply.body) {
                t.line_us.lock().push(micros(arrived.elapsed()));
                t.gated_us.lock().push(micros(reply.latency));
                return Ok(visitor);
            }
            let Some(refresh_s) = meta_refresh(&reply.body) else {
                return Err(t.failed(format!(
                    "neither the form nor a waiting page: {}",
                    reply.body
                )));
            };
            t.waiting_answers.fetch_add(1, Ordering::Relaxed);
            // The idle connection closes while the page waits for its refresh.
            b.close();
            tokio::time::sleep(Duration::from_secs(refresh_s.max(1))).await;
        } else if matches!(reply.status, 429 | 503) {
            t.refusals.fetch_add(1, Ordering::Relaxed);
            refusals += 1;
            if refusals > s.patience {
                return Err(Outcome::TurnedAway);
            }
            b.close();
            tokio::time::sleep(Duration::from_secs(retry_after_s(&reply))).await;
        } else if matches!(reply.status, 502 | 504) {
            retry_upstream(s, b, &reply, &mut upstream_errors, "in line").await?;
        } else {
            return Err(t.failed(format!("in line: {} {}", reply.status, reply.body)));
        }
    }
}

/// After a 502/504 (the upstream failed or was slow): waits its `Retry-After` as the page
/// asks, or gives up once more than the visitor's patience.
async fn retry_upstream(
    s: &Shared,
    b: &mut Browser,
    reply: &Reply,
    errors: &mut u32,
    what: &str,
) -> Result<(), Outcome> {
    s.tally.upstream_errors.fetch_add(1, Ordering::Relaxed);
    *errors += 1;
    if *errors > s.patience {
        return Err(s
            .tally
            .failed(format!("{what}: {} {}", reply.status, reply.body)));
    }
    b.close();
    tokio::time::sleep(Duration::from_secs(retry_after_s(reply))).await;
    Ok(())
}

fn retry_after_s(reply: &Reply) -> u64 {
    reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1u64)
        .max(1)
}

async fn api(
    s: &Shared,
    b: &mut Browser,
    path: &str,
    body: String,
    key: &str,
) -> Result<Reply, String> {
    let mut headers = vec![
        ("authorization", s.service_auth.as_str()),
        ("content-type", "application/json"),
    ];
    if !key.is_empty() {
        headers.push(("idempotency-key", key));
    }
    b.send(Ask {
        method: "POST",
        path,
        headers: &headers,
        body,
    })
    .await
}

/// The branches of visitor `i`'s try: a few at random, and on the last try every branch
/// (up to the most one hold may ask among), so that a visitor goes without an appointment only
/// when (nearly) every branch is full.
fn choose(s: &Shared, i: u64, attempt: u64) -> Vec<u64> {
    let all = u64::from(s.branches);
    let pick = |k: u64| 1 + mix(s.seed ^ mix(i * 64 + attempt * 16 + k)) % all;
    if attempt + 1 < BRANCH_TRIES {
        return (0..BRANCHES_PER_TRY).map(pick).collect();
    }
    if all <= MAX_ALTERNATIVES {
        return (1..=all).collect();
    }
    let mut chosen: Vec<u64> = Vec::new();
    let mut k = 0;
    while (chosen.len() as u64) < MAX_ALTERNATIVES {
        let b = pick(k);
        if !chosen.contains(&b) {
            chosen.push(b);
        }
        k += 1;
    }
    chosen
}

/// Holds the earliest slot among a few branches and confirms it: `Booked`, or
/// `NoAppointment` when every try found its range full.
async fn book(s: &Shared, b: &mut Browser, i: u64, visitor: u64) -> Result<Outcome, Outcome> {
    let t = &s.tally;
    for attempt in 0..BRANCH_TRIES {
        let branches = choose(s, i, attempt);
        let body = serde_json::json!({"branches": branches, "from": 0, "to": s.slots, "applicant": visitor});
        let key = format!("surge-{visitor}-{attempt}");
        let held = api(s, b, "/v1/holds", body.to_string(), &key)
            .await
            .map_err(|e| t.failed(format!("hold: {e}")))?;
        if held.status == 409 && held.json()["error"] == "full" {
            continue;
        }
        let token = match (held.status, held.json()["token"].as_str()) {
            (201, Some(token)) => token.to_owned(),
            _ => return Err(t.failed(format!("hold: {} {}", held.status, held.body))),
        };
        let path = format!("/v1/holds/{token}/confirm");
        let done = api(s, b, &path, String::new(), "")
            .await
            .map_err(|e| t.failed(format!("confirm: {e}")))?;
        if done.status != 200 || done.json()["applicant"].as_u64() != Some(visitor) {
            return Err(t.failed(format!("confirm: {} {}", done.status, done.body)));
        }
        t.confirmed.fetch_add(1, Ordering::Relaxed);
        return Ok(Outcome::Booked);
    }
    Ok(Outcome::NoAppointment)
}

/// Visitor `i`'s whole visit, from its arrival.
pub async fn visit(s: Arc<Shared>, i: u64, arrived: Instant) -> Outcome {
    let mut b = Browser::new(s.site.clone());
    let outcome = visit_with(&s, &mut b, i, arrived).await;
    s.tally.requests.fetch_add(b.requests, Ordering::Relaxed);
    outcome.unwrap_or_else(|o| o)
}

async fn visit_with(
    s: &Shared,
    b: &mut Browser,
    i: u64,
    arrived: Instant,
) -> Result<Outcome, Outcome> {
    let t = &s.tally;
    let visitor = through_the_door(s, b, arrived).await?;
    let outcome = book(s, b, i, visitor).await?;
    if !b.jar.has("sg_pass") {
        return Err(t.failed("admitted without a pass cookie".into()));
    }
    let mut upstream_errors = 0;
    let done = loop {
        let done = page(b, DONE, false)
            .await
            .map_err(|e| t.failed(format!("finish: {e}")))?;
        if !matches!(done.status, 502 | 504) {
            break done;
        }
        retry_upstream(s, b, &done, &mut upstream_errors, "finish").await?;
    };
    t.gated_us.lock().push(micros(done.latency));
    if done.status != 200 || !done.body.contains("Thank you") {
        return Err(t.failed(format!("finish: {} {}", done.status, done.body)));
    }
    if done.header("surgegate-command").is_some() || b.jar.has("sg_pass") {
        return Err(t.failed("the finish command reached the browser, or the pass stayed".into()));
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::{meta_refresh, visitor_on_form};

    #[test]
    fn pages_are_read_as_a_browser_reads_them() {
        let waiting = "<head><meta http-equiv=\"refresh\" content=\"5\"></head>";
        assert_eq!(meta_refresh(waiting), Some(5));
        assert_eq!(meta_refresh("<p>no refresh</p>"), None);
        let form = "<h1>Registration form</h1><p id=visitor>1234</p><a id=done";
        assert_eq!(visitor_on_form(form), Some(1234));
        assert_eq!(visitor_on_form(waiting), None);
    }
}
