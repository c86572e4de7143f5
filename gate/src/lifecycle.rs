//! The gate's life: open the stores, serve, reload the limits on SIGHUP (a bad file changes
//! nothing and says why), and on SIGTERM (or Ctrl-C) stop accepting, drain the requests in
//! flight, checkpoint the book and exit.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::app::App;
use crate::config::Settings;
use surgegate::{BookBackend, RoomBackend};

use crate::stores::{self, GateBook, GateRoom};

/// Runs the gate with `settings` until a stop signal; the stores are the embedded ones, or
/// Redis's with `[redis]`.
///
/// # Errors
/// What could not be opened, bound or set up (the message names the key to change).
pub async fn run(settings: Settings) -> Result<(), String> {
    if settings.redis.is_some() {
        let (book, room) = stores::open_shared(&settings).await?;
        run_with(settings, book, room).await
    } else {
        let (book, room) = stores::open_local(&settings)?;
        run_with(settings, book, room).await
    }
}

async fn run_with<B: GateBook, R: GateRoom>(
    settings: Settings,
    book: B,
    room: R,
) -> Result<(), String> {
    let tls = match &settings.tls {
        Some((cert, key)) => Some(crate::tls::acceptor(cert, key)?),
        None => None,
    };
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("listen: cannot listen on {}: {e}", settings.listen))?;
    let addr = listener.local_addr().map_err(|e| format!("listen: {e}"))?;
    let app = Arc::new(App::new(settings, book, room)?);
    tracing::info!(%addr, upstream = %app.settings.upstream, gated = ?app.settings.gated, book = app.book.kind(), tls = tls.is_some(), "the gate is up");
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("listening on {scheme}://{addr}");
    let (stop_tx, stop_rx) = watch::channel(false);
    let sweeper = tokio::spawn(sweep(app.clone()));
    let signals = tokio::spawn(signals(app.clone(), stop_tx));
    crate::server::serve(app.clone(), listener, tls, stop_rx).await;
    sweeper.abort();
    signals.abort();
    let book = app.book.clone();
    match tokio::task::spawn_blocking(move || book.checkpoint()).await {
        Ok(Ok(done)) => tracing::info!("{done}"),
        Ok(Err(why)) => tracing::error!("{why}"),
        Err(e) => tracing::error!(error = %e, "the checkpoint did not run"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// Reclaims lapsed holds now and then (memory only).
async fn sweep<B: GateBook, R: GateRoom>(app: Arc<App<B, R>>) {
    let mut every = tokio::time::interval(app.settings.book.sweep_every);
    loop {
        every.tick().await;
        match app.book.sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(reclaimed = n, "lapsed holds reclaimed"),
            Err(e) => {
                tracing::warn!(error = %e, "the sweep of lapsed holds failed; the next one retries")
            }
        }
    }
}

/// SIGHUP reloads; SIGTERM or SIGINT stops.
async fn signals<B: GateBook, R: GateRoom>(app: Arc<App<B, R>>, stop: watch::Sender<bool>) {
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for signals: SIGHUP and SIGTERM will not work");
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {
                // The outcome is logged either way.
                let _ = reload(&app).await;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("stopping: draining requests in flight");
    app.start_draining();
    let _ = stop.send(true);
}

/// Reads the configuration file again and sets the room's limits from it. Every key is
/// checked first: a file with any error changes nothing. Other keys take effect at the next
/// start.
///
/// # Errors
/// Why nothing changed.
pub async fn reload<B: GateBook, R: GateRoom>(
    app: &App<B, R>,
) -> Result<serde_json::Value, String> {
    let path = &app.settings.path;
    let fresh = match Settings::load(path) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("the configuration was not reloaded, nothing changed: {e}");
            return Err(e.to_string());
        }
    };
    let r = &fresh.room;
    if let Err(e) = app
        .room
        .set_limits(r.rate_per_second, r.burst, r.max_active)
        .await
    {
        tracing::error!("the limits were not reloaded, nothing changed: {e}");
        return Err(format!("room: {e}"));
    }
    tracing::info!(
        rate = r.rate_per_second,
        burst = r.burst,
        max_active = r.max_active,
        "limits reloaded from {}",
        path.display()
    );
    Ok(
        serde_json::json!({"rate_per_second": r.rate_per_second, "burst": r.burst, "max_active": r.max_active}),
    )
}
