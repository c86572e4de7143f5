//! `/admin/…`: the operator's controls, behind `Authorization: Bearer <admin token>` (compared
//! in constant time; `401` without it). A browser never sends that header by itself, so these
//! endpoints cannot be triggered from another site's page.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State as Shared};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use surgegate::plan::Plan;
use surgegate::{BookBackend, LimitsError, RoomBackend};

use super::State;

/// The largest capacity plan accepted, in bytes.
pub const MAX_PLAN_BYTES: usize = 64 << 20;

/// The operator's controls of the room.
#[derive(Clone, Copy)]
enum Control {
    Pause,
    Resume,
    Close,
    Reopen,
}

pub fn router<B: BookBackend, R: RoomBackend>(state: Arc<State<B, R>>) -> Router<Arc<State<B, R>>> {
    let control_route = |what| post(move |s: Shared<Arc<State<B, R>>>| control(s, what));
    Router::new()
        .route("/", get(index))
        .route("/stats", get(stats::<B, R>))
        .route("/pause", control_route(Control::Pause))
        .route("/resume", control_route(Control::Resume))
        .route("/close", control_route(Control::Close))
        .route("/reopen", control_route(Control::Reopen))
        .route("/limits", post(limits::<B, R>))
        .route(
            "/capacity",
            post(capacity::<B, R>).layer(DefaultBodyLimit::max(MAX_PLAN_BYTES)),
        )
        .route_layer(middleware::from_fn_with_state(state, require_token::<B, R>))
}

/// Lets the request through only with the admin token.
async fn require_token<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    request: Request,
    next: Next,
) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // A missing header is no token at all (never the empty string), and an empty one never
    // matches: digests compared in constant time otherwise.
    if given.is_some_and(|given| state.settings.admin_token.matches(given)) {
        return next.run(request).await;
    }
    let body = Json(json!({"error": "send the admin token as 'Authorization: Bearer <token>'"}));
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        body,
    )
        .into_response()
}

async fn index() -> Json<Value> {
    Json(json!({
        "GET /admin/stats": "the room, the book, the journal and the portal's counters",
        "POST /admin/pause | /resume | /close | /reopen": "stop or restart admissions, or joins",
        "POST /admin/limits": {"rate_per_second": "N", "burst": "N", "max_active": "N"},
        "POST /admin/capacity": "a CSV plan: branch,day,window,capacity[,quota per channel] (checked whole)",
    }))
}

async fn stats<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
) -> Json<Value> {
    let c = &state.counters;
    let layer = state.layer.counters();
    let journal = state
        .journal
        .as_ref()
        .map(|read| read())
        .unwrap_or_default();
    let kept = match state.registry.count().await {
        Ok(n) => json!(n),
        Err(e) => json!({"error": e}),
    };
    let room = match state.room.stats().await {
        Ok(stats) => json!(stats),
        Err(e) => json!({"error": e.to_string()}),
    };
    Json(json!({
        "room": room,
        "gate": {
            "passes": layer.passes, "joins": layer.joins, "admitted": layer.admitted,
            "waiting": layer.waiting, "full": layer.full, "closed": layer.closed,
            "limited": layer.limited, "left": layer.left,
        },
        "portal": {
            "registrations": c.registrations.load(Ordering::Relaxed),
            "registrations_kept": kept,
            "holds": c.holds.load(Ordering::Relaxed),
            "bookings": c.bookings.load(Ordering::Relaxed),
            "cancellations": c.cancellations.load(Ordering::Relaxed),
        },
        "journal": {
            "records": journal.records, "fsyncs": journal.syncs,
            "fsync_us_total": journal.sync_us_total, "fsync_us_max": journal.sync_us_max,
        },
        "data_dir": state.settings.data_dir.display().to_string(),
    }))
}

async fn control<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    what: Control,
) -> Response {
    let (done, name) = match what {
        Control::Pause => (state.room.pause().await, "pause"),
        Control::Resume => (state.room.resume().await, "resume"),
        Control::Close => (state.room.close().await, "close"),
        Control::Reopen => (state.room.reopen().await, "reopen"),
    };
    match (done, state.room.stats().await) {
        (Ok(()), Ok(s)) => {
            Json(json!({"done": name, "paused": s.paused, "closed": s.closed})).into_response()
        }
        (Err(e), _) | (_, Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct Limits {
    rate_per_second: Option<u32>,
    burst: Option<u32>,
    max_active: Option<u32>,
}

/// Changes any of the three limits; all are checked (by the room, on every backend) before
/// any changes.
async fn limits<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    Json(l): Json<Limits>,
) -> Response {
    let s = match state.room.stats().await {
        Ok(s) => s,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    };
    let rate = l.rate_per_second.unwrap_or(s.rate_per_second);
    let burst = l.burst.unwrap_or(s.burst);
    let max_active = l.max_active.unwrap_or(s.max_active);
    match state.room.set_limits(rate, burst, max_active).await {
        Ok(()) => Json(json!({"rate_per_second": rate, "burst": burst, "max_active": max_active}))
            .into_response(),
        Err(e) => {
            let status = match e {
                LimitsError::Config(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            (status, Json(json!({"error": e.to_string()}))).into_response()
        }
    }
}

/// Loads a capacity plan: every line checked first; any bad line rejects the file and changes
/// nothing.
async fn capacity<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    body: String,
) -> Response {
    let plan = match Plan::parse(&body, &state.calendar, state.settings.branches) {
        Ok(plan) => plan,
        Err(e) => {
            let shown: Vec<Value> = e
                .lines
                .iter()
                .take(100)
                .map(|l| json!({"line": l.line, "error": l.reason}))
                .collect();
            let body =
                json!({"error": "the plan was not applied", "bad_lines": e.wrong, "errors": shown});
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    let changes = &plan.lines;
    for (done, c) in changes.iter().enumerate() {
        // The capacity first: a slot's quotas may not exceed it.
        let mut result = state.book.set_capacity(c.branch, c.slot, c.capacity).await;
        for &(channel, quota) in &c.quotas {
            if result.is_ok() {
                result = state
                    .book
                    .set_channel_quota(c.branch, c.slot, channel, quota)
                    .await;
            }
        }
        if let Err(e) = result {
            // Only the journal or the store can fail here (every value was checked), or a
            // backend that keeps no quotas: say how far it got.
            let body = json!({"error": e.to_string(), "applied": done, "of": changes.len()});
            return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
        }
    }
    Json(json!({"applied": changes.len()})).into_response()
}
