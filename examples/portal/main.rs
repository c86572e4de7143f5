//! `cargo run --release --example portal -- --addr 127.0.0.1:8080 --rate 50`: an e-government
//! portal a team could start from. An open landing page; a registration form and an appointment
//! step behind surgegate's waiting room (`surgegate::http::WaitingRoomLayer`); appointments in a
//! durable `SlotBook`; `/admin/…` for operators; `/metrics` for Prometheus.
//!
//! Prints `listening on http://ADDR` once it accepts connections. Ctrl-C (or SIGTERM) stops
//! taking connections, lets requests in flight finish, checkpoints the book and closes it.
//!
//! With `--redis URL,…` the line and the book live on Redis (a server or a cluster), so any
//! number of portal nodes share them; every node needs the same `PORTAL_SECRET` (64 or more hex
//! digits) in its environment. Registrations live on Redis too (one applicant counter, one
//! table of national ids for every node); without `--redis` they are kept in SQLite in `--data`.

mod listener;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use rand::RngExt;

#[derive(Parser, Debug)]
#[command(about = "An e-government portal behind surgegate's waiting room")]
struct Args {
    /// Address to listen on (port 0: any free port; the line printed at start names it).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Registrations started per second.
    #[arg(long, default_value_t = 50)]
    rate: u32,
    /// Registrations started at once after a quiet spell.
    #[arg(long, default_value_t = 50)]
    burst: u32,
    /// Registrations in progress at once.
    #[arg(long, default_value_t = 1_000)]
    max_active: u32,
    /// The line's bound.
    #[arg(long, default_value_t = 1_000_000)]
    max_waiting: u32,
    /// Directory of the durable book (default: a new directory under the system temp dir).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Redis (Cluster) URLs, for running many portal nodes on one line and one book. Every node
    /// needs the same PORTAL_SECRET (hex, at least 32 bytes) in its environment, so that each
    /// accepts the others' passes, cookies and forms.
    #[arg(long, value_delimiter = ',')]
    redis: Vec<String>,
    /// The prefix of the portal's keys on Redis.
    #[arg(long, default_value = "portal")]
    namespace: String,
    /// A file holding the operator's bearer token for /admin/ (at least 32 characters; a final
    /// line break is not part of it). Without it, the token comes from PORTAL_ADMIN_TOKEN.
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
    /// A file holding the bearer token for /metrics (at least 32 characters). Without it, the
    /// token comes from PORTAL_METRICS_TOKEN; without either, /metrics answers 401 on --addr.
    #[arg(long)]
    metrics_token_file: Option<PathBuf>,
    /// A separate address serving /metrics alone, without a token (keep it private: a
    /// loopback or an internal network address).
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Connections open at once (more wait in the kernel's backlog).
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Seconds a connection may take to send a request's headers, or idle between requests.
    #[arg(long, default_value_t = 10)]
    header_read_timeout_secs: u64,
    /// Seconds a request's body may take to arrive whole (the operator's uploads: ten times).
    #[arg(long, default_value_t = 10)]
    body_read_timeout_secs: u64,
    /// The largest request body taken, in bytes (the operator's uploads have their own limit).
    #[arg(long, default_value_t = 65_536)]
    max_body_bytes: usize,
    /// Seconds a waiting visitor may go without a refresh before leaving the line.
    #[arg(long, default_value_t = 45)]
    checkin_timeout_secs: u64,
    /// Seconds an admitted visitor has to register and book.
    #[arg(long, default_value_t = 900)]
    pass_ttl_secs: u64,
    /// Seconds an admission waits for its first use before lapsing (0: no claims).
    #[arg(long, default_value_t = 60)]
    claim_timeout_secs: u64,
    /// Seconds a held appointment waits for confirmation.
    #[arg(long, default_value_t = 300)]
    hold_ttl_secs: u64,
    /// Branches offered.
    #[arg(long, default_value_t = 5)]
    branches: u32,
    /// Days bookable (in a new data directory).
    #[arg(long, default_value_t = 14)]
    days: u32,
    /// One-hour windows a day from 08:00, 1 to 24 (in a new data directory).
    #[arg(long, default_value_t = 8)]
    windows: u32,
    /// Hours before a window starts when what the channels left unused of it opens to everyone
    /// (checked once a minute; 0: never).
    #[arg(long, default_value_t = 24)]
    open_quotas_hours: u64,
    /// Capacity of every window in a new book, until an admin loads a plan.
    #[arg(long, default_value_t = 3)]
    capacity: u32,
    /// New visitor identities a minute from one client address (0: no limit). IPv6 clients
    /// count by their /64; a request whose address is unknown gets no new identity.
    #[arg(long, default_value_t = 120)]
    new_visitors_per_minute: u32,
    /// The portal's own proxies, as CIDRs (e.g. 10.0.0.0/8): only their X-Forwarded-For and
    /// X-Forwarded-Proto are believed.
    #[arg(long, value_delimiter = ',')]
    trusted_proxy: Vec<String>,
    /// The portal is served over HTTPS (behind a proxy that ends TLS): cookies are Secure and
    /// host-prefixed, and unprefixed ones are ignored.
    #[arg(long)]
    https: bool,
}

/// The admin token: from `--admin-token-file`, else `PORTAL_ADMIN_TOKEN`; never printed.
fn admin_token(args: &Args) -> Result<server::AdminToken, String> {
    token_from(
        args.admin_token_file.as_deref(),
        "admin",
        "PORTAL_ADMIN_TOKEN",
    )?
    .ok_or_else(|| {
        format!(
            "no admin token: set PORTAL_ADMIN_TOKEN or give --admin-token-file FILE \
             (at least {} characters, e.g. `openssl rand -hex 32`)",
            server::AdminToken::MIN_CHARS
        )
    })
}

/// A bearer token from `--{what}-token-file`, else the variable `env`; `None` if neither is
/// given; an error for one that is too short. Never printed.
fn token_from(
    file: Option<&std::path::Path>,
    what: &str,
    env: &str,
) -> Result<Option<server::AdminToken>, String> {
    let (text, from) = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--{what}-token-file {}: {e}", path.display()))?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text).to_owned();
            (text, format!("the file {}", path.display()))
        }
        None => match std::env::var(env) {
            Ok(text) => (text, env.to_owned()),
            Err(_) => return Ok(None),
        },
    };
    server::AdminToken::new(text)
        .map(Some)
        .map_err(|e| format!("{from}: {e}"))
}

fn settings(args: &Args) -> Result<server::Settings, String> {
    let data_dir = args.data.clone().unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        std::env::temp_dir().join(format!("surgegate-portal-{}-{stamp}", std::process::id()))
    });
    let mut rng = rand::rng();
    let admin_token = admin_token(args)?;
    // Passes, cookies and form tokens are signed with PORTAL_SECRET when given (every node of
    // a portal on Redis needs the same), else with a key of this process: a restart then asks
    // visitors to join again (their place is gone with the in-process room anyway). A secret
    // that is set but malformed is an error, never replaced by a random one.
    let secret = match secret_from_env()? {
        Some(secret) => secret,
        None => {
            eprintln!(
                "PORTAL_SECRET is not set: signing with a random key of this process \
                 (visitors join again after a restart)"
            );
            (0..32).map(|_| rng.random::<u8>()).collect()
        }
    };
    let key_id = match std::env::var("PORTAL_KEY_ID") {
        Ok(text) => text.trim().parse().map_err(|_| {
            format!(
                "PORTAL_KEY_ID {text:?} is not a number from 0 to {}",
                u32::MAX
            )
        })?,
        Err(_) => 1,
    };
    Ok(server::Settings {
        rate_per_second: args.rate,
        burst: args.burst,
        max_active: args.max_active,
        max_waiting: args.max_waiting,
        checkin_timeout: Duration::from_secs(args.checkin_timeout_secs),
        pass_ttl: Duration::from_secs(args.pass_ttl_secs),
        claim_timeout: Duration::from_secs(args.claim_timeout_secs),
        hold_ttl: Duration::from_secs(args.hold_ttl_secs),
        data_dir,
        admin_token,
        branches: args.branches,
        days: args.days,
        windows_per_day: args.windows,
        default_capacity: args.capacity,
        new_visitors_per_minute: args.new_visitors_per_minute,
        trusted_proxies: args.trusted_proxy.clone(),
        https: args.https,
        secret,
        key_id,
        metrics_token: token_from(
            args.metrics_token_file.as_deref(),
            "metrics",
            "PORTAL_METRICS_TOKEN",
        )?,
    })
}

/// PORTAL_SECRET as bytes, if set; an error if it is set but not 64 or more hex digits.
fn secret_from_env() -> Result<Option<Vec<u8>>, String> {
    let Ok(hex) = std::env::var("PORTAL_SECRET") else {
        return Ok(None);
    };
    let bad = || {
        format!(
            "PORTAL_SECRET must be an even number (64 or more) of hex digits, e.g. from \
             `openssl rand -hex 32`; it has {} characters",
            hex.len()
        )
    };
    if hex.len() < 64 || !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        return Err(bad());
    }
    let bytes: Option<Vec<u8>> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    bytes.map(Some).ok_or_else(bad)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Serves the portal until Ctrl-C or SIGTERM, on whichever backends `state` has.
async fn serve<B: surgegate::BookBackend, R: surgegate::RoomBackend>(
    args: &Args,
    state: std::sync::Arc<server::State<B, R>>,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let limits = listener::Limits {
        max_connections: args.max_connections,
        header_read_timeout: Duration::from_secs(args.header_read_timeout_secs.max(1)),
        body_read_timeout: Duration::from_secs(args.body_read_timeout_secs.max(1)),
        max_body_bytes: args.max_body_bytes.max(1024),
    };
    if let Some(metrics_addr) = args.metrics_listen {
        let metrics = tokio::net::TcpListener::bind(metrics_addr)
            .await
            .map_err(|e| format!("cannot listen on --metrics-listen {metrics_addr}: {e}"))?;
        let router = server::metrics_router(state.clone());
        // Ends with the process: the main listener's drain is what a stop waits for.
        tokio::spawn(listener::run(
            metrics,
            router,
            limits,
            std::future::pending(),
        ));
    }
    if args.open_quotas_hours > 0 {
        let before = Duration::from_secs(args.open_quotas_hours.saturating_mul(3_600));
        // Ends with the process, like the metrics listener.
        tokio::spawn(server::quotas::keep_opening(state.clone(), before));
    }
    eprintln!("data directory: {}", state.settings.data_dir.display());
    println!("listening on http://{addr}");
    listener::run(listener, server::router(state), limits, shutdown_signal()).await
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    if !args.redis.is_empty() {
        if secret_from_env()?.is_none() {
            return Err(
                "--redis: set PORTAL_SECRET to the same 64 or more hex digits on every node".into(),
            );
        }
        let state =
            server::State::open_shared(settings(&args)?, &args.redis, &args.namespace).await?;
        return serve(&args, state).await;
    }
    let state = server::State::open(settings(&args)?)?;
    serve(&args, state.clone()).await?;
    // The book is in this process: checkpoint it, so that the next start recovers fast.
    eprintln!("stopping: checkpointing the book");
    match state.book.checkpoint() {
        Ok(info) => eprintln!(
            "checkpoint written: {} open slots, {} bookings",
            info.slots, info.bookings
        ),
        Err(e) => eprintln!("checkpoint failed ({e}); the journal still holds every booking"),
    }
    drop(state);
    eprintln!("the book is closed");
    Ok(())
}
