//! `cargo run --release -p surgegate-gate --example tiny_upstream -- 127.0.0.1:0`: the
//! smallest upstream the benchmark can put behind nginx and the gate. Every request gets
//! `200` and a 13-byte body over HTTP/1.1 keep-alive, on every core. Prints
//! `listening on http://ADDR` once it accepts connections.
//!
//! The benchmark uses it instead of the Python upstream of the tests because that one answers
//! a few thousand requests a second on one core: measured through it, nginx and the gate
//! would both show the Python server's limit, not their own.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let answer = service_fn(|_request: Request<hyper::body::Incoming>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                    b"hello, world\n",
                ))))
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), answer)
                .await;
        });
    }
}
