//! The configuration file's shape: every key the gate reads, with its default. Unknown keys are
//! refused (`deny_unknown_fields`), so a misspelt key is an error rather than a silent default.

use std::path::PathBuf;

use serde::Deserialize;

/// The whole file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    /// Address and port to listen on (port 0: any free port).
    pub listen: String,
    /// The portal: `http://host:port`.
    pub upstream: String,
    /// Path prefixes behind the room.
    #[serde(default)]
    pub gated: Vec<String>,
    /// 32+ bytes that sign passes and visitor texts (the same on every node).
    pub secret_file: PathBuf,
    /// 32+ characters for `/admin/…`.
    pub admin_token_file: PathBuf,
    /// 32+ characters for the booking API (without it, `/v1/…` answers `404`).
    pub service_token_file: Option<PathBuf>,
    /// 32+ characters for `GET /metrics` (without it, `/metrics` answers the admin token).
    pub metrics_token_file: Option<PathBuf>,
    /// Addresses (CIDRs) of balancers whose `X-Forwarded-*` headers are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// The site is served over HTTPS whatever the connection says (TLS ends at a balancer).
    #[serde(default)]
    pub served_over_https: bool,
    #[serde(default)]
    pub room: RoomFile,
    #[serde(default)]
    pub book: BookFile,
    pub redis: Option<RedisFile>,
    #[serde(default)]
    pub proxy: ProxyFile,
    pub tls: Option<TlsFile>,
    #[serde(default)]
    pub pages: PagesFile,
    #[serde(default)]
    pub log: LogFile,
}

/// `[room]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RoomFile {
    /// Sustained admissions a second.
    pub rate_per_second: u32,
    /// Admissions at once after a quiet spell.
    pub burst: u32,
    /// Live passes at once.
    pub max_active: u32,
    /// The line's bound (past it: `503`, `"status":"full"`).
    pub max_waiting: u32,
    /// A waiting visitor silent this long leaves the line (pages refresh well within it).
    pub checkin_timeout_secs: u64,
    /// A pass lapses this long after admission unless the upstream finishes it first.
    pub pass_ttl_secs: u64,
    /// Seconds an admission waits for its first request before it lapses (0: no limit).
    pub claim_timeout_secs: u64,
    /// A scheduled opening with a pre-queue draw (a TOML date-time with an offset).
    pub open_at: Option<toml::value::Datetime>,
    /// The draw's seed (default: a random one, shown in `/admin/stats`).
    pub open_at_seed: Option<u64>,
    /// New visitor identities a minute from one client address (0: no limit).
    pub new_visitors_per_minute: u32,
    /// The room's number in the passes it signs.
    pub room_id: u32,
    /// Where the room's own endpoint lives: `POST <leave_prefix>/leave`.
    pub leave_prefix: String,
    /// The `Retry-After` while the room is closed.
    pub closed_retry_secs: u64,
}

impl Default for RoomFile {
    fn default() -> Self {
        RoomFile {
            rate_per_second: 50,
            burst: 50,
            max_active: 1000,
            max_waiting: 1_000_000,
            checkin_timeout_secs: 45,
            pass_ttl_secs: 900,
            claim_timeout_secs: 60,
            open_at: None,
            open_at_seed: None,
            new_visitors_per_minute: 0,
            room_id: 0,
            leave_prefix: "/surgegate".into(),
            closed_retry_secs: 60,
        }
    }
}

/// `[book]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct BookFile {
    /// The embedded durable book's directory (unused with `[redis]`).
    pub data_dir: PathBuf,
    /// How long a hold waits for its confirmation.
    pub hold_ttl_secs: u64,
    /// Live holds and bookings of one applicant at once.
    pub max_active_per_applicant: u32,
    /// Branch ids below this (the embedded book).
    pub max_branches: u32,
    /// Slot indices below this (the embedded book; also the end of an open availability range).
    pub max_slots_per_branch: u32,
    /// Seconds between sweeps of lapsed holds (memory only: a lapsed hold never blocks).
    pub sweep_secs: u64,
}

impl Default for BookFile {
    fn default() -> Self {
        BookFile {
            data_dir: PathBuf::from("data"),
            hold_ttl_secs: 300,
            max_active_per_applicant: 1,
            max_branches: 16_384,
            max_slots_per_branch: 65_536,
            sweep_secs: 10,
        }
    }
}

/// `[redis]`: the line and the book on Redis, shared by every gate node.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RedisFile {
    /// A server's URL, or a cluster's nodes.
    pub urls: Vec<String>,
    /// The prefix of every key (one per site).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Milliseconds a call waits for the store before it fails (retrying it is safe).
    pub timeout_ms: Option<u64>,
    /// Accept servers without `appendfsync always` (a crash may lose acknowledged bookings).
    #[serde(default)]
    pub allow_unsynced: bool,
}

fn default_namespace() -> String {
    "surgegate".into()
}

/// `[proxy]`: timeouts and limits of the reverse proxy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ProxyFile {
    /// Connecting to the upstream (past it: `504`; refused: `502`).
    pub connect_timeout_ms: u64,
    /// From sending the request to the upstream's response headers (past it: `504`).
    pub response_timeout_secs: u64,
    /// A body (either way) or a WebSocket with nothing moving for this long is cut; an idle
    /// pooled upstream connection is closed; HTTP/2 clients are pinged at half of it.
    pub idle_timeout_secs: u64,
    /// A client's request head must arrive within this (slow heads are cut); an HTTP/1.1
    /// connection waiting for its next request is closed after it too.
    pub header_timeout_secs: u64,
    /// Bytes of a request's header names and values (past it: `431`).
    pub max_header_bytes: usize,
    /// Bytes of a request body (past it: `413`, before or while it streams).
    pub max_body_bytes: u64,
    /// Idle keep-alive connections kept open to the upstream.
    pub max_idle_per_upstream: usize,
    /// How long SIGTERM waits for requests in flight before it drops them.
    pub drain_timeout_secs: u64,
    /// Keep the client's `Host` header (else send the upstream's).
    pub preserve_host: bool,
}

impl Default for ProxyFile {
    fn default() -> Self {
        ProxyFile {
            connect_timeout_ms: 2_000,
            response_timeout_secs: 60,
            idle_timeout_secs: 60,
            header_timeout_secs: 10,
            max_header_bytes: 32 * 1024,
            max_body_bytes: 10 * 1024 * 1024,
            max_idle_per_upstream: 512,
            drain_timeout_secs: 30,
            preserve_host: true,
        }
    }
}

/// `[tls]`: the gate terminates TLS itself.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsFile {
    /// The certificate chain, PEM.
    pub cert: PathBuf,
    /// The private key, PEM.
    pub key: PathBuf,
}

/// `[pages]`: template files that replace the built-in pages.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PagesFile {
    /// The waiting page (given with `refusal`); variables in `pages/templates.rs`.
    pub waiting: Option<PathBuf>,
    /// The page of a full or closed room (given with `waiting`).
    pub refusal: Option<PathBuf>,
    /// The page of a `502` or `504`.
    pub upstream_error: Option<PathBuf>,
}

/// `[log]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogFile {
    /// `"text"` or `"json"`.
    pub format: LogFormat,
    /// A `tracing` filter; `RUST_LOG` wins when set.
    pub level: String,
    /// One line per request (off by default: a surge writes millions).
    pub access: bool,
}

impl Default for LogFile {
    fn default() -> Self {
        LogFile {
            format: LogFormat::Text,
            level: "info".into(),
            access: false,
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}
