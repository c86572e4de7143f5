//! The gate's configuration: the TOML file (pinned keys and more), read, checked whole and
//! resolved into [`Settings`]. Every error names the key (or the file) it is about and says
//! what to write instead; a file with any error starts nothing.
//!
//! Paths in the file are relative to the file's own directory.

mod check;
mod file;
mod secrets;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::pages::{PageSource, PageSources};
pub use file::LogFormat;
pub use secrets::{MIN_SECRET_BYTES, MIN_TOKEN_CHARS, Secret, Token};

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error(
        "cannot read the configuration file {path}: {source}; pass an existing file to --config"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not TOML of the expected shape: an unknown key, a missing one, a value of
    /// the wrong type.
    #[error("{path}: {key}: {detail}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The key, dotted (`room.burst`), or `.` for the file as a whole.
        key: String,
        /// What the parser said.
        detail: String,
    },
    /// A value the gate cannot use.
    #[error("{path}: {key}: {problem}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The key, dotted.
        key: String,
        /// What is wrong and what to write instead.
        problem: String,
    },
}

impl ConfigError {
    /// The dotted key the error is about, if it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Syntax { key, .. } | ConfigError::Value { key, .. } => Some(key),
        }
    }
}

/// Everything the gate runs with, checked.
#[derive(Debug)]
pub struct Settings {
    /// The file these came from (SIGHUP reads it again).
    pub path: PathBuf,
    /// `listen`.
    pub listen: SocketAddr,
    /// `upstream`: scheme, host and port of the portal (no path).
    pub upstream: http::uri::Authority,
    /// `gated`: path prefixes behind the room, canonical (see [`crate::paths`]).
    pub gated: Vec<String>,
    /// `secret_file`'s bytes.
    pub secret: Secret,
    /// `admin_token_file`'s token.
    pub admin_token: Token,
    /// `service_token_file`'s token (`None`: the booking API is off).
    pub service_token: Option<Token>,
    /// `metrics_token_file`'s token (`None`: `/metrics` takes the admin token).
    pub metrics_token: Option<Token>,
    /// `trusted_proxies`.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `served_over_https`.
    pub served_over_https: bool,
    /// `[room]`.
    pub room: RoomSettings,
    /// `[book]`.
    pub book: BookSettings,
    /// `[redis]`.
    pub redis: Option<RedisSettings>,
    /// `[proxy]`.
    pub proxy: ProxySettings,
    /// `[tls]`: certificate chain and key files.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `[pages]`: template files and their text.
    pub pages: PageSources,
    /// `[log]`.
    pub log: LogSettings,
}

/// `[room]`, checked.
#[derive(Clone, Debug)]
pub struct RoomSettings {
    /// Admissions a second.
    pub rate_per_second: u32,
    /// Admissions at once after a quiet spell.
    pub burst: u32,
    /// Live passes at once.
    pub max_active: u32,
    /// The line's bound.
    pub max_waiting: u32,
    /// A waiting visitor silent this long leaves the line.
    pub checkin_timeout: Duration,
    /// A pass lapses this long after admission.
    pub pass_ttl: Duration,
    /// An unclaimed admission lapses this long after it was made.
    pub claim_timeout: Option<Duration>,
    /// A scheduled opening, in Unix seconds.
    pub open_at_unix_s: Option<u64>,
    /// The pre-queue draw's seed.
    pub open_at_seed: Option<u64>,
    /// New identities a minute from one address (0: no limit).
    pub new_visitors_per_minute: u32,
    /// The room's number in its passes.
    pub room_id: u32,
    /// The prefix of `POST <prefix>/leave`.
    pub leave_prefix: String,
    /// `Retry-After` while closed, in seconds.
    pub closed_retry_secs: u64,
}

/// `[book]`, checked.
#[derive(Clone, Debug)]
pub struct BookSettings {
    /// The durable book's directory (the embedded book).
    pub data_dir: PathBuf,
    /// How long a hold waits for its confirmation.
    pub hold_ttl: Duration,
    /// Live holds and bookings of one applicant.
    pub max_active_per_applicant: u32,
    /// Branches the book holds (ids `0..max_branches`).
    pub max_branches: u32,
    /// Slots a branch holds (indices `0..max_slots_per_branch`).
    pub max_slots_per_branch: u32,
    /// Interval of the sweep of lapsed holds.
    pub sweep_every: Duration,
}

/// `[redis]`, checked.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    /// Server or cluster node URLs.
    pub urls: Vec<String>,
    /// Prefix of every key.
    pub namespace: String,
    /// How long a call waits.
    pub timeout: Option<Duration>,
    /// Accept servers without `appendfsync always`.
    pub allow_unsynced: bool,
}

/// `[proxy]`, checked.
#[derive(Clone, Debug)]
pub struct ProxySettings {
    /// Connecting to the upstream.
    pub connect_timeout: Duration,
    /// The upstream's response headers, from the request's start.
    pub response_timeout: Duration,
    /// A connection (client or upstream) with nothing to send or receive.
    pub idle_timeout: Duration,
    /// A client's request head.
    pub header_timeout: Duration,
    /// Bytes of one request's header names and values.
    pub max_header_bytes: usize,
    /// Bytes of one request body.
    pub max_body_bytes: u64,
    /// Idle pooled connections kept to the upstream.
    pub max_idle_per_upstream: usize,
    /// How long SIGTERM waits for requests in flight.
    pub drain_timeout: Duration,
    /// Forward the client's `Host`.
    pub preserve_host: bool,
}

/// `[log]`, checked.
#[derive(Clone, Debug)]
pub struct LogSettings {
    /// Text or JSON lines.
    pub format: LogFormat,
    /// A `tracing` filter (`RUST_LOG` wins when set).
    pub level: String,
    /// One line per request.
    pub access: bool,
}

impl Settings {
    /// Reads and checks the file at `path`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key (or the file) that is wrong; nothing is started.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_text(path, &text)
    }

    /// Checks `text` as if read from `path` (relative paths resolve beside `path`).
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub fn from_text(path: &Path, text: &str) -> Result<Settings, ConfigError> {
        let parsed = check::parse(path, text)?;
        check::resolve(path, parsed)
    }
}
