//! The waiting room's layer in front of a tiny app, served on a loopback socket by its own
//! runtime, for the attack tests; and what those tests read of an answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::{Extension, Router};
use surgegate::http::{WaitingRoomLayer, WaitingRoomLayerBuilder};
use surgegate::pass::{KeyId, Keyring};
use surgegate::{Clock, Pass, SystemClock, WaitingRoom};

use crate::http1::Reply;

/// The layer in front of a tiny app, served on a loopback socket by its own runtime (stopped
/// when this is dropped).
pub struct Served<C: Clock = SystemClock> {
    pub addr: String,
    pub room: Arc<WaitingRoom<C>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl<C: Clock> Drop for Served<C> {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

pub fn keys() -> Keyring {
    Keyring::new(KeyId(1), b"a-secret-of-thirty-two-bytes!!!!").unwrap()
}

/// A layer builder of a room on clock `C`.
pub type Builder<C> = WaitingRoomLayerBuilder<Arc<WaitingRoom<C>>>;

/// A room admitting one visitor at once (then one a second), behind a layer set up by
/// `configure`, on the system clock.
pub fn serve_layer(
    max_waiting: u32,
    configure: impl FnOnce(
        WaitingRoomLayerBuilder<Arc<WaitingRoom>>,
    ) -> WaitingRoomLayerBuilder<Arc<WaitingRoom>>,
) -> Served {
    serve_layer_on(SystemClock::new(), max_waiting, configure)
}

/// As [`serve_layer`], on `clock`.
pub fn serve_layer_on<C: Clock>(
    clock: C,
    max_waiting: u32,
    configure: impl FnOnce(Builder<C>) -> Builder<C>,
) -> Served<C> {
    let room = Arc::new(
        WaitingRoom::builder()
            .rate_per_second(1)
            .burst(1)
            .max_waiting(max_waiting)
            .checkin_timeout(Duration::from_secs(30))
            .pass_ttl(Duration::from_secs(600))
            .clock(clock)
            .build(),
    );
    let layer = configure(WaitingRoomLayer::builder(room.clone(), keys()))
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/register",
            get(|Extension(pass): Extension<Pass>| async move {
                format!("form for {}", pass.visitor.0)
            })
            .post(|| async { "registered" }),
        )
        .route("/surgegate/leave", post(|| async { "" }))
        .layer(layer)
        .route("/", get(|| async { "open" }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    runtime.spawn(async move { axum::serve(listener, app).await });
    Served {
        addr,
        room,
        runtime: Some(runtime),
    }
}

pub fn set_cookies(reply: &Reply) -> Vec<&str> {
    reply
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .collect()
}

pub fn json(reply: &Reply) -> serde_json::Value {
    serde_json::from_str(&reply.body)
        .unwrap_or_else(|e| panic!("{e}: {} {}", reply.status, reply.body))
}

pub fn position(reply: &Reply) -> u64 {
    json(reply)["position"].as_u64().unwrap_or(0)
}

pub const JSON: (&str, &str) = ("Accept", "application/json");
pub const CROSS_SITE: (&str, &str) = ("Sec-Fetch-Site", "cross-site");

pub fn header<'r>(reply: &'r Reply, name: &str) -> Option<&'r str> {
    reply.header(name)
}

/// The connection's peer, from axum's connection info.
pub fn peer(parts: &http::request::Parts) -> Option<std::net::IpAddr> {
    Some(
        parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()?
            .0
            .ip(),
    )
}
