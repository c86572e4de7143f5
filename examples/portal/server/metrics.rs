//! `/metrics` in the Prometheus text format: the room's view (at most a second old, shared with
//! the landing page, so scrapes and a surge on `/` read the room about once a second), and the
//! layer's, the book's journal's (a book in this process; zeros on Redis, which keeps its own)
//! and the portal's counters, read at each scrape.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State as Shared;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use surgegate::{BookBackend, RoomBackend, RoomStats};

use super::State;

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c: Counter<u64> = Counter::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let g: Gauge<f64, AtomicU64> = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

/// `/metrics` on the portal's own address: only with `Authorization: Bearer <metrics token>`
/// (compared in constant time); `401` otherwise, and always when no metrics token was given.
pub async fn guarded<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
    headers: HeaderMap,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token = state.settings.metrics_token.as_ref();
    if given
        .zip(token)
        .is_some_and(|(given, token)| token.matches(given))
    {
        return render(Shared(state)).await.into_response();
    }
    let text = match token {
        Some(_) => "send the metrics token as 'Authorization: Bearer <token>'",
        None => {
            "metrics are not served here: start the portal with PORTAL_METRICS_TOKEN (or \
                 --metrics-token-file) or --metrics-listen ADDR"
        }
    };
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        text,
    )
        .into_response()
}

/// The metrics, to whoever may read them.
pub async fn render<B: BookBackend, R: RoomBackend>(
    Shared(state): Shared<Arc<State<B, R>>>,
) -> impl IntoResponse {
    let mut r = Registry::with_prefix("surgegate");
    let room = state.room_view().await;
    let (waiting, active) = room.as_ref().map_or((0, 0), |s| (s.waiting, s.active));
    gauge(&mut r, "waiting", "Visitors in line", waiting as f64);
    gauge(&mut r, "active", "Live passes", active as f64);
    for (name, help, value) in counters(&state, room.as_ref()) {
        counter(&mut r, name, help, value);
    }
    let j = state
        .journal
        .as_ref()
        .map(|read| read())
        .unwrap_or_default();
    gauge(
        &mut r,
        "journal_fsync_seconds_sum",
        "Seconds spent in journal fsyncs (sum)",
        j.sync_us_total as f64 / 1e6,
    );
    gauge(
        &mut r,
        "journal_fsync_max_seconds",
        "The slowest journal fsync",
        j.sync_us_max as f64 / 1e6,
    );
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut text, &r);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}

/// Every counter: its name, its help text and its value now.
fn counters<B, R: RoomBackend>(
    state: &State<B, R>,
    room: Option<&RoomStats>,
) -> Vec<(&'static str, &'static str, u64)> {
    let field = |f: fn(&RoomStats) -> u64| room.map_or(0, f);
    let gate = state.layer.counters();
    let c = &state.counters;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let j = state
        .journal
        .as_ref()
        .map(|read| read())
        .unwrap_or_default();
    vec![
        (
            "admissions",
            "Visitors admitted",
            field(|s| s.admitted_total),
        ),
        (
            "dropped",
            "Waiting visitors dropped for not checking in",
            field(|s| s.dropped_total),
        ),
        ("joins", "Gated requests that joined the room", gate.joins),
        (
            "refused_full",
            "Joins refused: the line was full",
            gate.full,
        ),
        (
            "refused_closed",
            "Joins refused: the room was closed",
            gate.closed,
        ),
        (
            "refused_limited",
            "New visitors refused by the limit per address",
            gate.limited,
        ),
        (
            "pass_requests",
            "Gated requests let through on a live pass",
            gate.passes,
        ),
        (
            "registrations",
            "Registrations stored",
            load(&c.registrations),
        ),
        ("holds", "Appointment holds taken", load(&c.holds)),
        ("bookings", "Appointments confirmed", load(&c.bookings)),
        (
            "cancellations",
            "Appointments cancelled",
            load(&c.cancellations),
        ),
        ("journal_records", "Journal records written", j.records),
        ("journal_fsyncs", "Journal fsyncs", j.syncs),
    ]
}
