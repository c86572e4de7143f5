//! `surgegate-gate`: surgegate in front of any portal, in any language.
//!
//! A reverse proxy (HTTP/1.1 and HTTP/2 to clients, pooled keep-alive HTTP/1.1 to the
//! upstream, bodies streamed both ways) that puts the configured path prefixes behind a
//! waiting room by the protocol of [`surgegate::http`], tells the upstream who the admitted
//! visitor is (`Surgegate-Visitor`), ends the visitor's pass when the upstream says so
//! (`Surgegate-Command: finish`), and serves the slot book as a JSON API (`/v1/…`). Everything
//! else is proxied as is. One configuration file ([`config`]); the embedded durable book, or
//! the line and the book on Redis for many gate nodes.
//!
//! The binary wires [`config::Settings::load`] and [`lifecycle::run`]:
//!
//! ```no_run
//! # async fn start() -> Result<(), String> {
//! let settings = surgegate_gate::Settings::load(std::path::Path::new("gate.toml"))
//!     .map_err(|e| e.to_string())?;
//! surgegate_gate::log::init(&settings.log);
//! surgegate_gate::run(settings).await
//! # }
//! ```

#![warn(missing_docs)]
// Built empty under `--cfg loom` (the crate's loom models): tokio does not build under it.
#![cfg(not(loom))]

pub mod admin;
pub mod api;
pub mod app;
pub mod body;
pub mod config;
pub mod gated;
pub mod lifecycle;
pub mod log;
pub mod metrics;
mod ops;
pub mod pages;
pub mod paths;
pub mod proxy;
pub mod server;
pub mod stores;
pub mod tls;

pub use config::{ConfigError, Settings};
pub use lifecycle::run;
