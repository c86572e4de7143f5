//! `/metrics` in the Prometheus text format, read fresh from the room, the layer, the book's
//! journal and the portal's counters at each scrape.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State as Shared;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

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

pub async fn render(Shared(state): Shared<Arc<State>>) -> impl IntoResponse {
    let mut r = Registry::with_prefix("surgegate");
    let room = state.room.view().await.ok();
    let room = room.as_ref();
    let field = |f: fn(&super::stores::RoomView) -> u64| room.map_or(0, f);
    gauge(
        &mut r,
        "waiting",
        "Visitors in line",
        field(|s| s.waiting) as f64,
    );
    gauge(&mut r, "active", "Live passes", field(|s| s.active) as f64);
    let admitted = field(|s| s.admitted_total);
    counter(&mut r, "admissions", "Visitors admitted", admitted);
    let dropped = field(|s| s.dropped_total);
    counter(
        &mut r,
        "dropped",
        "Waiting visitors dropped for not checking in",
        dropped,
    );
    let gate = state.layer.counters();
    counter(
        &mut r,
        "joins",
        "Gated requests that joined the room",
        gate.joins,
    );
    counter(
        &mut r,
        "refused_full",
        "Joins refused: the line was full",
        gate.full,
    );
    counter(
        &mut r,
        "refused_closed",
        "Joins refused: the room was closed",
        gate.closed,
    );
    counter(
        &mut r,
        "refused_limited",
        "New visitors refused by the limit per address",
        gate.limited,
    );
    counter(
        &mut r,
        "pass_requests",
        "Gated requests let through on a live pass",
        gate.passes,
    );
    let c = &state.counters;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    counter(
        &mut r,
        "registrations",
        "Registrations stored",
        load(&c.registrations),
    );
    counter(&mut r, "holds", "Appointment holds taken", load(&c.holds));
    counter(
        &mut r,
        "bookings",
        "Appointments confirmed",
        load(&c.bookings),
    );
    counter(
        &mut r,
        "cancellations",
        "Appointments cancelled",
        load(&c.cancellations),
    );
    let j = state.book.journal_stats().unwrap_or_default();
    counter(
        &mut r,
        "journal_records",
        "Journal records written",
        j.records,
    );
    counter(&mut r, "journal_fsyncs", "Journal fsyncs", j.syncs);
    let total_s = j.sync_us_total as f64 / 1e6;
    gauge(
        &mut r,
        "journal_fsync_seconds_sum",
        "Seconds spent in journal fsyncs (sum)",
        total_s,
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
