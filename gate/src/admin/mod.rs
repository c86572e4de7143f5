//! `/admin/…` for operators, behind `Authorization: Bearer <admin token>` (compared in
//! constant time; `401` without it): the room's and the book's counts, pause/resume,
//! close/reopen, the three limits checked together, capacity plans checked whole, and a
//! reload of the limits from the configuration file (as SIGHUP does).

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{Value, json};
use surgegate::plan::Plan;
use surgegate::{BookBackend, LimitsError, RoomBackend, RoomStats};

use crate::app::App;
use crate::metrics::BookOp;
use crate::pages;
use crate::proxy::{BodyError, GateBody, read_limited};
use crate::stores::{self, GateBook, GateRoom};

/// The largest capacity plan accepted, in bytes.
pub const MAX_PLAN_BYTES: u64 = 64 << 20;
/// The most bad lines shown in a refusal (all are counted).
const MAX_SHOWN_ERRORS: usize = 100;

fn answer(status: StatusCode, body: Value) -> Response<GateBody> {
    pages::json(status, &body)
}

fn problem(status: StatusCode, word: &str, detail: impl std::fmt::Display) -> Response<GateBody> {
    answer(status, json!({"error": word, "detail": detail.to_string()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Limits {
    rate_per_second: Option<u32>,
    burst: Option<u32>,
    max_active: Option<u32>,
}

impl<B: GateBook, R: GateRoom> App<B, R> {
    pub(crate) async fn admin(&self, request: Request<Incoming>) -> Response<GateBody> {
        if !self.is_admin(&request) {
            let mut r = problem(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send the admin token as 'Authorization: Bearer <token>'",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
        let path = request.uri().path().trim_end_matches('/').to_owned();
        let method = request.method().clone();
        let control = |what: &str| (method == Method::POST).then(|| what.to_owned());
        match (method.as_str(), path.as_str()) {
            ("GET", "/admin") => answer(StatusCode::OK, index()),
            ("GET", "/admin/stats") => self.stats().await,
            (_, "/admin/pause" | "/admin/resume" | "/admin/close" | "/admin/reopen") => {
                match control(&path[7..]) {
                    Some(what) => self.control(&what).await,
                    None => not_allowed("POST"),
                }
            }
            ("POST", "/admin/limits") => self.limits(request).await,
            ("POST", "/admin/capacity") => self.capacity(request).await,
            ("POST", "/admin/reload") => match crate::lifecycle::reload(self).await {
                Ok(done) => answer(StatusCode::OK, json!({"reloaded": done})),
                Err(why) => problem(StatusCode::BAD_REQUEST, "bad_config", why),
            },
            (_, "/admin" | "/admin/stats") => not_allowed("GET"),
            (_, "/admin/limits" | "/admin/capacity" | "/admin/reload") => not_allowed("POST"),
            _ => problem(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such admin route: GET /admin lists them",
            ),
        }
    }

    async fn stats(&self) -> Response<GateBody> {
        let room = match self.room.stats().await {
            Ok(stats) => room_json(&stats),
            Err(e) => json!({"error": e.to_string()}),
        };
        let l = self.gate.layer().counters();
        let journal = self.book.journal_stats().map(|j| {
            json!({"records": j.records, "fsyncs": j.syncs, "fsync_us_total": j.sync_us_total, "fsync_us_max": j.sync_us_max})
        });
        answer(
            StatusCode::OK,
            json!({
                "room": room,
                "gate": {"passes": l.passes, "joins": l.joins, "admitted": l.admitted, "waiting": l.waiting,
                         "full": l.full, "closed": l.closed, "limited": l.limited, "unavailable": l.unavailable, "left": l.left},
                "book": {"store": self.book.kind(), "journal": journal},
                "draining": self.draining(),
            }),
        )
    }

    async fn control(&self, what: &str) -> Response<GateBody> {
        let done = match what {
            "pause" => self.room.pause().await,
            "resume" => self.room.resume().await,
            "close" => self.room.close().await,
            _ => self.room.reopen().await,
        };
        match (done, self.room.stats().await) {
            (Ok(()), Ok(v)) => {
                tracing::info!(action = what, "an operator changed the room");
                answer(
                    StatusCode::OK,
                    json!({"done": what, "paused": v.paused, "closed": v.closed}),
                )
            }
            (Err(e), _) | (_, Err(e)) => problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e),
        }
    }

    /// Any of the three limits; the others stay. All three are checked together before any
    /// changes.
    async fn limits(&self, request: Request<Incoming>) -> Response<GateBody> {
        let bytes = match read_limited(
            request.into_body(),
            64 * 1024,
            self.settings.proxy.idle_timeout,
        )
        .await
        {
            Ok(b) => b,
            Err(e) => return body_problem(e),
        };
        let l: Limits = match serde_json::from_slice(&bytes) {
            Ok(l) => l,
            Err(e) => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!(
                        "expected {{\"rate_per_second\":N,\"burst\":N,\"max_active\":N}} (any of them): {e}"
                    ),
                );
            }
        };
        let now = match self.room.stats().await {
            Ok(v) => v,
            Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e),
        };
        let (rate, burst, max_active) = (
            l.rate_per_second.unwrap_or(now.rate_per_second),
            l.burst.unwrap_or(now.burst),
            l.max_active.unwrap_or(now.max_active),
        );
        match self.room.set_limits(rate, burst, max_active).await {
            Ok(()) => {
                tracing::info!(rate, burst, max_active, "an operator set the room's limits");
                answer(
                    StatusCode::OK,
                    json!({"rate_per_second": rate, "burst": burst, "max_active": max_active}),
                )
            }
            Err(LimitsError::Backend(e)) => {
                problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e)
            }
            Err(e) => problem(StatusCode::BAD_REQUEST, "bad_request", e),
        }
    }

    /// A CSV plan, checked whole: any bad line rejects the plan and changes nothing.
    async fn capacity(&self, request: Request<Incoming>) -> Response<GateBody> {
        let bytes = match read_limited(
            request.into_body(),
            MAX_PLAN_BYTES,
            self.settings.proxy.idle_timeout,
        )
        .await
        {
            Ok(b) => b,
            Err(e) => return body_problem(e),
        };
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return problem(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the plan is not UTF-8 text",
            );
        };
        let b = &self.settings.book;
        let plan = match Plan::parse_slots(text, b.max_branches, b.max_slots_per_branch) {
            Ok(plan) => plan,
            Err(e) => {
                let shown: Vec<Value> = e
                    .lines
                    .iter()
                    .take(MAX_SHOWN_ERRORS)
                    .map(|l| json!({"line": l.line, "error": l.reason}))
                    .collect();
                return answer(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "bad_plan", "detail": "the plan was not applied: fix these lines",
                    "bad_lines": e.wrong, "errors": shown}),
                );
            }
        };
        let changes = &plan.lines;
        for (done, c) in changes.iter().enumerate() {
            let r = stores::write(
                &*self.book,
                self.book.set_capacity(c.branch, c.slot, c.capacity),
            )
            .await;
            self.metrics.book(BookOp::SetCapacity, r.is_ok());
            // The capacity first: a slot's quotas may not exceed it.
            let mut r = r.map(drop);
            for &(channel, quota) in &c.quotas {
                if r.is_ok() {
                    r = stores::write(
                        &*self.book,
                        self.book
                            .set_channel_quota(c.branch, c.slot, channel, quota),
                    )
                    .await
                    .map(drop);
                }
            }
            if let Err(e) = r {
                // Every value was checked: only the journal or the store can fail here, or a
                // store that keeps no quotas. Say how far the plan got; applying it again is
                // safe (capacities and quotas are set, not added).
                return answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"error": "unavailable", "detail": e.to_string(), "applied": done, "of": changes.len()}),
                );
            }
        }
        tracing::info!(slots = changes.len(), "an operator applied a capacity plan");
        answer(StatusCode::OK, json!({"applied": changes.len()}))
    }
}

fn body_problem(e: BodyError) -> Response<GateBody> {
    match e {
        BodyError::TooLarge => problem(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e),
        e => problem(StatusCode::BAD_REQUEST, "bad_request", e),
    }
}

fn not_allowed(allow: &'static str) -> Response<GateBody> {
    let mut r = problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("use {allow}"),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// The room's counts and settings as `/admin/stats` shows them (times as Unix seconds).
fn room_json(s: &RoomStats) -> Value {
    json!({
        "waiting": s.waiting, "prequeued": s.prequeued, "active": s.active,
        "admitted_total": s.admitted_total, "dropped_total": s.dropped_total, "left_total": s.left_total,
        "paused": s.paused, "closed": s.closed,
        "rate_per_second": s.rate_per_second, "burst": s.burst, "max_active": s.max_active,
        "max_waiting": s.max_waiting,
        "opens_at_unix_s": s.opens_at.map(|at| at.as_secs()), "prequeue_seed": s.prequeue_seed,
        "back_of_line_eta_s": s.back_of_line_eta.as_secs(),
    })
}

fn index() -> Value {
    json!({
        "GET /admin/stats": "the room, the gate's answers, the book and its journal",
        "POST /admin/pause | /resume | /close | /reopen": "stop or restart admissions, or newcomers",
        "POST /admin/limits": {"rate_per_second": "N", "burst": "N", "max_active": "N"},
        "POST /admin/capacity": "a CSV plan: branch,slot,capacity[,quota per channel] (checked whole: any bad line applies nothing)",
        "POST /admin/reload": "read the limits from the configuration file again (as SIGHUP)",
    })
}
