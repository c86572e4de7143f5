//! Reading the file and checking every value, each error naming its key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::{FileConfig, ProxyFile, RoomFile};
use super::{
    BookSettings, ConfigError, LogSettings, PageSource, PageSources, ProxySettings, RedisSettings,
    RoomSettings, Settings, secrets,
};

/// The most gated prefixes, trusted proxy ranges and Redis URLs a file may list.
const MAX_LIST: usize = 256;

/// The file parsed into its shape; an unknown key, a missing one or a wrong type is an error
/// naming the key.
pub(super) fn parse(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    let syntax = |key: String, detail: String| ConfigError::Syntax {
        path: path.to_owned(),
        key,
        detail,
    };
    let deserializer =
        toml::de::Deserializer::parse(text).map_err(|e| syntax(".".into(), one_line(&e)))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        syntax(key, one_line(e.inner()))
    })
}

/// A parser message on one line, with its line number kept.
fn one_line(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    let mut parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^'))
        .collect();
    parts.dedup();
    parts.join(": ")
}

/// A checker of one file: errors carry the file's path.
struct Check<'p> {
    path: &'p Path,
    dir: PathBuf,
}

impl Check<'_> {
    fn err(&self, key: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Value {
            path: self.path.to_owned(),
            key: key.to_owned(),
            problem: problem.into(),
        }
    }

    /// `p` beside the configuration file unless absolute.
    fn beside(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.dir.join(p)
        }
    }

    fn secs(&self, key: &str, value: u64, min: u64, max: u64) -> Result<Duration, ConfigError> {
        if !(min..=max).contains(&value) {
            return Err(self.err(
                key,
                format!("{value} is not between {min} and {max} seconds"),
            ));
        }
        Ok(Duration::from_secs(value))
    }

    fn list_len(&self, key: &str, len: usize) -> Result<(), ConfigError> {
        if len > MAX_LIST {
            return Err(self.err(key, format!("at most {MAX_LIST} entries")));
        }
        Ok(())
    }
}

/// Every value checked and resolved.
pub(super) fn resolve(path: &Path, f: FileConfig) -> Result<Settings, ConfigError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_owned);
    let c = Check { path, dir };
    let listen: SocketAddr = f.listen.parse().map_err(|_| {
        c.err(
            "listen",
            format!(
                "{:?} is not an address and port like \"127.0.0.1:8080\"",
                f.listen
            ),
        )
    })?;
    let upstream = upstream(&c, &f.upstream)?;
    c.list_len("gated", f.gated.len())?;
    let gated = f
        .gated
        .iter()
        .map(|g| crate::paths::gated_prefix(g).map_err(|p| c.err("gated", p)))
        .collect::<Result<Vec<_>, _>>()?;
    let (secret, admin_token, service_token) = secrets_of(&c, &f)?;
    let metrics_token = match &f.metrics_token_file {
        Some(p) => {
            Some(secrets::read_token(&c.beside(p)).map_err(|e| c.err("metrics_token_file", e))?)
        }
        None => None,
    };
    let trusted_proxies = proxies_of(&c, &f.trusted_proxies)?;
    let room = room(&c, &f.room, f.redis.is_some())?;
    let redis = match f.redis {
        Some(r) => Some(redis(&c, r)?),
        None => None,
    };
    let book = book(&c, &f.book)?;
    let proxy = proxy(&c, &f.proxy)?;
    let tls = f.tls.map(|t| (c.beside(&t.cert), c.beside(&t.key)));
    let pages = pages_of(&c, &f.pages)?;
    let log = log_of(&c, f.log)?;
    Ok(Settings {
        path: path.to_owned(),
        listen,
        upstream,
        gated,
        secret,
        admin_token,
        service_token,
        metrics_token,
        trusted_proxies,
        served_over_https: f.served_over_https,
        room,
        book,
        redis,
        proxy,
        tls,
        pages,
        log,
    })
}

/// `trusted_proxies`: addresses or ranges.
fn proxies_of(c: &Check<'_>, list: &[String]) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    c.list_len("trusted_proxies", list.len())?;
    list.iter()
        .map(|t| {
            cidr(t).ok_or_else(|| {
                c.err(
                    "trusted_proxies",
                    format!("{t:?} is not an address or a range like \"10.0.0.0/8\""),
                )
            })
        })
        .collect()
}

/// `[log]`: the level must be a filter `tracing` takes.
fn log_of(c: &Check<'_>, log: super::file::LogFile) -> Result<LogSettings, ConfigError> {
    if tracing_subscriber::EnvFilter::try_new(&log.level).is_err() {
        return Err(c.err(
            "log.level",
            format!(
                "{:?} is not a level or filter like \"info\" or \"surgegate_gate=debug\"",
                log.level
            ),
        ));
    }
    Ok(LogSettings {
        format: log.format,
        level: log.level,
        access: log.access,
    })
}

type Secrets = (super::Secret, super::Token, Option<super::Token>);

/// `secret_file`, `admin_token_file` and `service_token_file`, read and checked.
fn secrets_of(c: &Check<'_>, f: &FileConfig) -> Result<Secrets, ConfigError> {
    let secret =
        secrets::read_secret(&c.beside(&f.secret_file)).map_err(|p| c.err("secret_file", p))?;
    let admin_token = secrets::read_token(&c.beside(&f.admin_token_file))
        .map_err(|p| c.err("admin_token_file", p))?;
    let service_token = match &f.service_token_file {
        Some(p) => {
            Some(secrets::read_token(&c.beside(p)).map_err(|e| c.err("service_token_file", e))?)
        }
        None => None,
    };
    if service_token
        .as_ref()
        .is_some_and(|t| t.same_as(&admin_token))
    {
        return Err(c.err(
            "service_token_file",
            "holds the same token as admin_token_file: give the booking API a token of its own",
        ));
    }
    Ok((secret, admin_token, service_token))
}

/// `[pages]`: the files read, the room's two pages given together, every template compiled.
fn pages_of(c: &Check<'_>, p: &super::file::PagesFile) -> Result<PageSources, ConfigError> {
    let pages = PageSources {
        waiting: page(c, "pages.waiting", p.waiting.as_deref())?,
        refusal: page(c, "pages.refusal", p.refusal.as_deref())?,
        upstream_error: page(c, "pages.upstream_error", p.upstream_error.as_deref())?,
    };
    if pages.waiting.is_some() != pages.refusal.is_some() {
        let missing = if pages.waiting.is_some() {
            "pages.refusal"
        } else {
            "pages.waiting"
        };
        return Err(c.err(
            missing,
            "the room's pages are replaced together: give both pages.waiting and pages.refusal",
        ));
    }
    crate::pages::Templates::compile(&pages).map_err(|(key, problem)| c.err(key, problem))?;
    Ok(pages)
}

fn upstream(c: &Check<'_>, text: &str) -> Result<http::uri::Authority, ConfigError> {
    let bad = |why: &str| {
        c.err(
            "upstream",
            format!("{text:?} {why}; give one like \"http://127.0.0.1:9000\""),
        )
    };
    let uri: http::Uri = text.parse().map_err(|_| bad("is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad(
            "is not an http:// URL (the gate speaks plain HTTP to the portal; TLS ends at the gate)",
        ));
    }
    if uri
        .path_and_query()
        .is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty())
    {
        return Err(bad("has a path: the gate forwards each request's own path"));
    }
    let authority = uri.authority().ok_or_else(|| bad("has no host"))?.clone();
    if authority.as_str().contains('@') {
        return Err(bad("carries credentials"));
    }
    Ok(authority)
}

/// An address (`10.0.0.1`) or a range (`10.0.0.0/8`).
pub(crate) fn cidr(text: &str) -> Option<ipnet::IpNet> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

fn room(c: &Check<'_>, r: &RoomFile, on_redis: bool) -> Result<RoomSettings, ConfigError> {
    let checkin_timeout = c.secs("room.checkin_timeout_secs", r.checkin_timeout_secs, 3, 3600)?;
    let pass_ttl = c.secs("room.pass_ttl_secs", r.pass_ttl_secs, 1, 7 * 86_400)?;
    let claim_timeout = match r.claim_timeout_secs {
        0 => None,
        s => Some(c.secs("room.claim_timeout_secs", s, 1, 86_400)?),
    };
    // The room's own builder checks the values together, by the rules every backend applies.
    let mut builder = surgegate::WaitingRoom::builder()
        .rate_per_second(r.rate_per_second)
        .burst(r.burst)
        .max_active(r.max_active)
        .max_waiting(r.max_waiting)
        .checkin_timeout(checkin_timeout)
        .pass_ttl(pass_ttl);
    if let Some(t) = claim_timeout {
        builder = builder.claim_timeout(t);
    }
    if let Err(e) = builder.try_build() {
        use surgegate::RoomConfigError as E;
        let key = match e {
            E::Rate(_) => "room.rate_per_second",
            E::Burst(_) => "room.burst",
            E::MaxActive(_) => "room.max_active",
            E::MaxWaiting(_) => "room.max_waiting",
            E::CheckinTimeout(_) => "room.checkin_timeout_secs",
            E::PassTtl(_) => "room.pass_ttl_secs",
            E::ClaimTimeout(_) => "room.claim_timeout_secs",
            _ => "room",
        };
        return Err(c.err(key, e.to_string()));
    }
    let open_at_unix_s = opening(c, r, on_redis)?;
    let leave_prefix = r.leave_prefix.clone();
    let prefix_ok = leave_prefix.starts_with('/')
        && !leave_prefix.ends_with('/')
        && leave_prefix.len() <= 200
        && leave_prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b));
    if !prefix_ok {
        return Err(c.err("room.leave_prefix", format!("{leave_prefix:?} is not usable: give one like \"/surgegate\" (leading '/', no trailing '/')")));
    }
    Ok(RoomSettings {
        rate_per_second: r.rate_per_second,
        burst: r.burst,
        max_active: r.max_active,
        max_waiting: r.max_waiting,
        checkin_timeout,
        pass_ttl,
        claim_timeout,
        open_at_unix_s,
        open_at_seed: r.open_at_seed,
        new_visitors_per_minute: r.new_visitors_per_minute,
        room_id: r.room_id,
        leave_prefix,
        closed_retry_secs: c
            .secs("room.closed_retry_secs", r.closed_retry_secs, 1, 86_400)?
            .as_secs(),
    })
}

/// `room.open_at` in Unix seconds (refused on Redis, whose room has no pre-queue), and its seed.
fn opening(c: &Check<'_>, r: &RoomFile, on_redis: bool) -> Result<Option<u64>, ConfigError> {
    let open_at_unix_s = match &r.open_at {
        Some(_) if on_redis => {
            return Err(c.err(
                "room.open_at",
                "a scheduled opening with a pre-queue draw needs the in-process room; with [redis], \
                 pause the room before the hour and resume it then (POST /admin/pause, /admin/resume): \
                 visitors then queue in the order they came, without a draw",
            ));
        }
        Some(at) => Some(unix_seconds(at).map_err(|p| c.err("room.open_at", p))?),
        None => None,
    };
    if r.open_at_seed.is_some() && open_at_unix_s.is_none() {
        return Err(c.err(
            "room.open_at_seed",
            "a seed without room.open_at draws nothing: set room.open_at too",
        ));
    }
    Ok(open_at_unix_s)
}

/// Unix seconds of a TOML date-time with an offset.
fn unix_seconds(at: &toml::value::Datetime) -> Result<u64, String> {
    let hint = "give a date, a time and an offset, like 2027-01-04T09:00:00+03:00";
    let (Some(date), Some(time), Some(offset)) = (at.date, at.time, at.offset) else {
        return Err(format!("{at} is not a full date-time: {hint}"));
    };
    let offset_min = match offset {
        toml::value::Offset::Z => 0i64,
        toml::value::Offset::Custom { minutes } => i64::from(minutes),
    };
    let day = surgegate::calendar::Date::new(date.year, date.month, date.day)
        .map_err(|e| format!("{at}: {e}"))?;
    let secs = day.days_since_unix_epoch() * 86_400
        + i64::from(time.hour) * 3600
        + i64::from(time.minute) * 60
        + i64::from(time.second.unwrap_or(0))
        - offset_min * 60;
    u64::try_from(secs).map_err(|_| format!("{at} is before 1970: {hint}"))
}

fn redis(c: &Check<'_>, r: super::file::RedisFile) -> Result<RedisSettings, ConfigError> {
    if r.urls.is_empty() {
        return Err(c.err(
            "redis.urls",
            "list at least one URL, like [\"redis://10.0.0.5:7000\"]",
        ));
    }
    c.list_len("redis.urls", r.urls.len())?;
    for url in &r.urls {
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(c.err("redis.urls", format!("{url:?} is not a redis:// URL")));
        }
    }
    let ns_ok = !r.namespace.is_empty()
        && r.namespace.len() <= 64
        && r.namespace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if !ns_ok {
        return Err(c.err(
            "redis.namespace",
            format!(
                "{:?}: use 1 to 64 letters, digits, '_', '-' or '.'",
                r.namespace
            ),
        ));
    }
    let timeout = match r.timeout_ms {
        Some(ms) if !(1..=600_000).contains(&ms) => {
            return Err(c.err(
                "redis.timeout_ms",
                format!("{ms} is not between 1 and 600000"),
            ));
        }
        Some(ms) => Some(Duration::from_millis(ms)),
        None => None,
    };
    Ok(RedisSettings {
        urls: r.urls,
        namespace: r.namespace,
        timeout,
        allow_unsynced: r.allow_unsynced,
    })
}

fn book(c: &Check<'_>, b: &super::file::BookFile) -> Result<BookSettings, ConfigError> {
    let hold_ttl = c.secs("book.hold_ttl_secs", b.hold_ttl_secs, 1, 86_400)?;
    let sweep_every = c.secs("book.sweep_secs", b.sweep_secs, 1, 3600)?;
    let check = surgegate::SlotBook::builder()
        .hold_ttl(hold_ttl)
        .max_active_per_applicant(b.max_active_per_applicant)
        .max_branches(b.max_branches)
        .max_slots_per_branch(b.max_slots_per_branch)
        .try_build();
    if let Err(e) = check {
        use surgegate::BookConfigError as E;
        let key = match e {
            E::HoldTtl(_) => "book.hold_ttl_secs",
            E::MaxActivePerApplicant(_) => "book.max_active_per_applicant",
            E::MaxBranches(_) => "book.max_branches",
            E::MaxSlotsPerBranch(_) => "book.max_slots_per_branch",
            _ => "book",
        };
        return Err(c.err(key, e.to_string()));
    }
    Ok(BookSettings {
        data_dir: c.beside(&b.data_dir),
        hold_ttl,
        max_active_per_applicant: b.max_active_per_applicant,
        max_branches: b.max_branches,
        max_slots_per_branch: b.max_slots_per_branch,
        sweep_every,
    })
}

fn proxy(c: &Check<'_>, p: &ProxyFile) -> Result<ProxySettings, ConfigError> {
    if !(1..=60_000).contains(&p.connect_timeout_ms) {
        return Err(c.err(
            "proxy.connect_timeout_ms",
            format!("{} is not between 1 and 60000", p.connect_timeout_ms),
        ));
    }
    if !(1024..=1 << 20).contains(&p.max_header_bytes) {
        return Err(c.err(
            "proxy.max_header_bytes",
            format!("{} is not between 1024 and 1048576", p.max_header_bytes),
        ));
    }
    if !(1..=1 << 40).contains(&p.max_body_bytes) {
        return Err(c.err(
            "proxy.max_body_bytes",
            format!("{} is not between 1 and 2^40", p.max_body_bytes),
        ));
    }
    if p.max_idle_per_upstream > 100_000 {
        return Err(c.err("proxy.max_idle_per_upstream", "at most 100000"));
    }
    Ok(ProxySettings {
        connect_timeout: Duration::from_millis(p.connect_timeout_ms),
        response_timeout: c.secs(
            "proxy.response_timeout_secs",
            p.response_timeout_secs,
            1,
            3600,
        )?,
        idle_timeout: c.secs("proxy.idle_timeout_secs", p.idle_timeout_secs, 1, 3600)?,
        header_timeout: c.secs("proxy.header_timeout_secs", p.header_timeout_secs, 1, 600)?,
        max_header_bytes: p.max_header_bytes,
        max_body_bytes: p.max_body_bytes,
        max_idle_per_upstream: p.max_idle_per_upstream,
        drain_timeout: c.secs("proxy.drain_timeout_secs", p.drain_timeout_secs, 0, 3600)?,
        preserve_host: p.preserve_host,
    })
}

fn page(c: &Check<'_>, key: &str, path: Option<&Path>) -> Result<Option<PageSource>, ConfigError> {
    let Some(path) = path else { return Ok(None) };
    let path = c.beside(path);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| c.err(key, format!("cannot read {}: {e}", path.display())))?;
    if text.len() > 1 << 20 {
        return Err(c.err(key, format!("{} is larger than 1 MiB", path.display())));
    }
    Ok(Some(PageSource { path, text }))
}
