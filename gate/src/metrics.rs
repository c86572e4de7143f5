//! `/metrics` in the Prometheus text format: requests by route class and status, the room
//! (waiting, active, admissions, refusals), the upstream's latency, book operations and the
//! journal's fsyncs.
//!
//! The hot path only adds to relaxed atomics in fixed arrays (no lock, no allocation); a
//! scrape reads them and the stores' counters fresh.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use surgegate::http::LayerCounters;
use surgegate::{JournalStats, RoomStats};

/// Where a request went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteClass {
    /// A gated path (through the room).
    Gated,
    /// Any other path, proxied as is.
    Bypass,
    /// The booking API, `/v1/…`.
    Api,
    /// `/admin/…`.
    Admin,
    /// `/metrics`, `/healthz`, `/readyz`.
    Ops,
}

const CLASSES: [RouteClass; 5] = [
    RouteClass::Gated,
    RouteClass::Bypass,
    RouteClass::Api,
    RouteClass::Admin,
    RouteClass::Ops,
];

impl RouteClass {
    fn name(self) -> &'static str {
        match self {
            RouteClass::Gated => "gated",
            RouteClass::Bypass => "bypass",
            RouteClass::Api => "api",
            RouteClass::Admin => "admin",
            RouteClass::Ops => "ops",
        }
    }
}

/// A book operation, counted by outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookOp {
    /// `set_capacity` (the API or a capacity plan).
    SetCapacity,
    /// `availability`.
    Availability,
    /// A hold.
    Reserve,
    /// A confirmation.
    Confirm,
    /// A release of a hold or a booking.
    Release,
    /// A reading of a hold or a booking.
    Lookup,
    /// A standby call: joining, reading or leaving the line.
    Standby,
}

const OPS: [BookOp; 7] = [
    BookOp::SetCapacity,
    BookOp::Availability,
    BookOp::Reserve,
    BookOp::Confirm,
    BookOp::Release,
    BookOp::Lookup,
    BookOp::Standby,
];

impl BookOp {
    fn name(self) -> &'static str {
        match self {
            BookOp::SetCapacity => "set_capacity",
            BookOp::Availability => "availability",
            BookOp::Reserve => "reserve",
            BookOp::Confirm => "confirm",
            BookOp::Release => "release",
            BookOp::Lookup => "lookup",
            BookOp::Standby => "standby",
        }
    }
}

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS_S: [f64; 16] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];
/// Statuses counted one by one: 100 to 599.
const STATUSES: usize = 500;

/// The live counters. Relaxed throughout: statistics, read without ordering.
pub struct Metrics {
    requests: Vec<AtomicU64>,
    book: Vec<AtomicU64>,
    latency_buckets: Vec<AtomicU64>,
    latency_sum_us: AtomicU64,
    latency_count: AtomicU64,
    upstream_errors: AtomicU64,
    upstream_timeouts: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        let zeros = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect();
        Metrics {
            requests: zeros(CLASSES.len() * STATUSES),
            book: zeros(OPS.len() * 2),
            latency_buckets: zeros(BUCKETS_S.len() + 1),
            latency_sum_us: AtomicU64::new(0),
            latency_count: AtomicU64::new(0),
            upstream_errors: AtomicU64::new(0),
            upstream_timeouts: AtomicU64::new(0),
        }
    }
}

fn class_index(c: RouteClass) -> usize {
    CLASSES.iter().position(|&x| x == c).unwrap_or(0)
}

impl Metrics {
    /// One answered request.
    pub fn request(&self, class: RouteClass, status: u16) {
        let s = usize::from(status.clamp(100, 599) - 100);
        self.requests[class_index(class) * STATUSES + s].fetch_add(1, Ordering::Relaxed);
    }

    /// One book operation and whether it succeeded.
    pub fn book(&self, op: BookOp, ok: bool) {
        let i = OPS.iter().position(|&x| x == op).unwrap_or(0) * 2 + usize::from(!ok);
        self.book[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The time the upstream took to send its response headers.
    pub fn upstream_latency(&self, took: Duration) {
        let s = took.as_secs_f64();
        let i = BUCKETS_S
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(BUCKETS_S.len());
        self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
    }

    /// An upstream that failed (`timeout`: did not answer in time).
    pub fn upstream_failed(&self, timeout: bool) {
        let c = if timeout {
            &self.upstream_timeouts
        } else {
            &self.upstream_errors
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The requests answered so far for `class` and `status`.
    pub fn requests_of(&self, class: RouteClass, status: u16) -> u64 {
        let s = usize::from(status.clamp(100, 599) - 100);
        self.requests[class_index(class) * STATUSES + s].load(Ordering::Relaxed)
    }
}

/// What a scrape reads from the stores.
pub struct Scrape<'a> {
    /// The room, if it answered.
    pub room: Option<RoomStats>,
    /// What the layer answered.
    pub layer: LayerCounters,
    /// The journal (an embedded durable book).
    pub journal: Option<JournalStats>,
    /// Whether the process is draining.
    pub draining: bool,
    /// The live counters.
    pub metrics: &'a Metrics,
}

#[derive(Debug)]
struct Requests(Vec<(&'static str, u16, u64)>);

impl EncodeMetric for Requests {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for &(class, status, n) in &self.0 {
            let status = status.to_string();
            let labels = [("class", class), ("status", status.as_str())];
            encoder
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, u64, u64>(&n, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

#[derive(Debug)]
struct BookOps(Vec<(&'static str, &'static str, u64)>);

impl EncodeMetric for BookOps {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for &(op, outcome, n) in &self.0 {
            let labels = [("op", op), ("outcome", outcome)];
            encoder
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, u64, u64>(&n, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

#[derive(Debug)]
struct Latency {
    sum_s: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(self.sum_s, self.count, &self.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn counter(r: &mut Registry, name: &str, help: &str, v: u64) {
    r.register(name, help, ConstCounter::new(v));
}

fn gauge(r: &mut Registry, name: &str, help: &str, v: i64) {
    r.register(name, help, ConstGauge::new(v));
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// The text of one scrape.
pub fn render(s: &Scrape<'_>) -> String {
    let mut r = Registry::with_prefix("surgegate_gate");
    traffic(&mut r, s.metrics);
    upstream(&mut r, s.metrics);
    room(&mut r, s);
    let j = s.journal.unwrap_or_default();
    counter(
        &mut r,
        "journal_records",
        "Journal records written",
        j.records,
    );
    counter(&mut r, "journal_fsyncs", "Journal fsyncs", j.syncs);
    let spent = "Microseconds spent in journal fsyncs";
    counter(&mut r, "journal_fsync_microseconds", spent, j.sync_us_total);
    let draining = i64::from(s.draining);
    gauge(
        &mut r,
        "draining",
        "1 while the gate drains for a stop",
        draining,
    );
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut text, &r);
    text
}

/// Requests by class and status, book operations by outcome.
fn traffic(r: &mut Registry, m: &Metrics) {
    let mut requests = Vec::new();
    for (ci, c) in CLASSES.iter().enumerate() {
        for st in 0..STATUSES {
            let n = load(&m.requests[ci * STATUSES + st]);
            if n > 0 {
                requests.push((c.name(), (st + 100) as u16, n));
            }
        }
    }
    let help = "Requests answered, by route class and status";
    r.register("requests", help, Requests(requests));
    let book = OPS
        .iter()
        .enumerate()
        .flat_map(|(i, op)| {
            [
                (op.name(), "ok", load(&m.book[2 * i])),
                (op.name(), "error", load(&m.book[2 * i + 1])),
            ]
        })
        .collect();
    let help = "Book operations through the booking and admin APIs, by outcome";
    r.register("book_operations", help, BookOps(book));
}

/// The upstream's latency and failures.
fn upstream(r: &mut Registry, m: &Metrics) {
    let buckets = BUCKETS_S
        .iter()
        .copied()
        .chain([f64::INFINITY])
        .zip(m.latency_buckets.iter().map(load))
        .collect();
    let latency = Latency {
        sum_s: load(&m.latency_sum_us) as f64 / 1e6,
        count: load(&m.latency_count),
        buckets,
    };
    let help = "Time until the upstream's response headers";
    r.register("upstream_latency_seconds", help, latency);
    let help = "Upstream requests that failed (502)";
    counter(r, "upstream_errors", help, load(&m.upstream_errors));
    let help = "Upstream requests that did not answer in time (504)";
    counter(r, "upstream_timeouts", help, load(&m.upstream_timeouts));
}

/// The room's counts and the layer's answers.
fn room(r: &mut Registry, s: &Scrape<'_>) {
    // A room that did not answer reads as zeros, with `room_up` 0 to tell them apart.
    let read = |field: fn(&RoomStats) -> u64| s.room.as_ref().map_or(0, field);
    let up = i64::from(s.room.is_some());
    gauge(r, "room_up", "1 when the room answered this scrape", up);
    gauge(r, "waiting", "Visitors in line", read(|x| x.waiting) as i64);
    let help = "Visitors in the pre-queue of a scheduled opening";
    gauge(r, "prequeued", help, read(|x| x.prequeued) as i64);
    gauge(r, "active", "Live passes", read(|x| x.active) as i64);
    let help = "Visitors admitted by the room";
    counter(r, "admissions", help, read(|x| x.admitted_total));
    let help = "Waiting visitors dropped for not checking in";
    counter(r, "dropped", help, read(|x| x.dropped_total));
    let l = &s.layer;
    let help = "Gated requests without a live pass that joined the room";
    counter(r, "joins", help, l.joins);
    counter(r, "admitted_at_once", "Joins admitted at once", l.admitted);
    let help = "Gated requests let through on a live pass";
    counter(r, "pass_requests", help, l.passes);
    let refusals = [
        ("full", l.full),
        ("closed", l.closed),
        ("limited", l.limited),
        ("unavailable", l.unavailable),
    ];
    for (why, n) in refusals {
        let help = format!("Joins refused: {why}");
        counter(r, &format!("refused_{why}"), &help, n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_shows_what_was_counted() {
        let m = Metrics::default();
        m.request(RouteClass::Gated, 200);
        m.request(RouteClass::Gated, 200);
        m.request(RouteClass::Bypass, 502);
        m.request(RouteClass::Api, 9999);
        m.book(BookOp::Reserve, false);
        m.upstream_latency(Duration::from_millis(3));
        let text = render(&Scrape {
            room: None,
            layer: LayerCounters::default(),
            journal: None,
            draining: false,
            metrics: &m,
        });
        assert!(
            text.contains("surgegate_gate_requests_total{class=\"gated\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("surgegate_gate_requests_total{class=\"bypass\",status=\"502\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("surgegate_gate_requests_total{class=\"api\",status=\"599\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "surgegate_gate_book_operations_total{op=\"reserve\",outcome=\"error\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("surgegate_gate_upstream_latency_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("surgegate_gate_upstream_latency_seconds_bucket{le=\"0.0025\"} 0"),
            "{text}"
        );
        assert!(text.contains("surgegate_gate_room_up 0"), "{text}");
        assert_eq!(m.requests_of(RouteClass::Gated, 200), 2);
    }
}
