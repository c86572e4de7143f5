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
//! digits) in its environment. Registrations stay in each node.

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
    /// The operator's bearer token for /admin/ (default: a random one, printed at start).
    #[arg(long)]
    admin_token: Option<String>,
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
    /// One-hour windows a day from 08:00 (in a new data directory).
    #[arg(long, default_value_t = 8)]
    windows: u32,
    /// Capacity of every window in a new book, until an admin loads a plan.
    #[arg(long, default_value_t = 3)]
    capacity: u32,
    /// New visitor identities a minute from one client address (0: no limit).
    #[arg(long, default_value_t = 120)]
    new_visitors_per_minute: u32,
}

fn settings(args: &Args) -> server::Settings {
    let data_dir = args.data.clone().unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        std::env::temp_dir().join(format!("surgegate-portal-{}-{stamp}", std::process::id()))
    });
    let mut rng = rand::rng();
    let admin_token = args.admin_token.clone().unwrap_or_else(|| {
        (0..16)
            .map(|_| format!("{:02x}", rng.random::<u8>()))
            .collect()
    });
    // Passes, cookies and form tokens are signed with PORTAL_SECRET when given (every node of
    // a portal on Redis needs the same), else with a key of this process: a restart then asks
    // visitors to join again (their place is gone with the in-process room anyway).
    let secret = secret_from_env().unwrap_or_else(|| (0..32).map(|_| rng.random::<u8>()).collect());
    server::Settings {
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
        secret,
    }
}

/// PORTAL_SECRET as bytes, if set to at least 64 hex digits.
fn secret_from_env() -> Option<Vec<u8>> {
    let hex = std::env::var("PORTAL_SECRET").ok()?;
    if hex.len() < 64 || hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
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
    eprintln!("data directory: {}", state.settings.data_dir.display());
    eprintln!("admin token: {}", state.settings.admin_token);
    println!("listening on http://{addr}");
    let app = server::router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    if !args.redis.is_empty() {
        if secret_from_env().is_none() {
            return Err(
                "--redis: set PORTAL_SECRET to the same 64 or more hex digits on every node".into(),
            );
        }
        let state =
            server::State::open_shared(settings(&args), &args.redis, &args.namespace).await?;
        return serve(&args, state).await;
    }
    let state = server::State::open(settings(&args))?;
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
