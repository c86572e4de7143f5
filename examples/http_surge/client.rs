//! A virtual visitor's HTTP/1.1 client: one pooled keep-alive client for all visitors, a
//! bound on requests in flight, and a cookie jar per visitor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;

/// What a visitor reads of a response.
pub struct Reply {
    pub status: u16,
    pub retry_after_s: Option<u64>,
    pub location: String,
    pub body: String,
    pub latency: Duration,
}

impl Reply {
    /// The value of the first `name="field" value="…"` in the page.
    pub fn field(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let at = self.body.find(&marker)? + marker.len();
        let end = self.body[at..].find('"')?;
        Some(self.body[at..at + end].to_owned())
    }

    /// A number field of a JSON body, found by its key.
    pub fn json_u64(&self, key: &str) -> Option<u64> {
        let value: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        value.get(key)?.as_u64()
    }
}

/// A visitor's cookies (only the few the portal sets).
#[derive(Clone, Default)]
pub struct Jar(Vec<(String, String)>);

impl Jar {
    fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            let pairs: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
            pairs.join("; ")
        })
    }

    fn store(&mut self, set_cookie: &str) {
        let Some((name, rest)) = set_cookie.split_once('=') else {
            return;
        };
        let value = rest.split(';').next().unwrap_or("");
        self.0.retain(|(k, _)| k != name);
        if !value.is_empty() {
            self.0.push((name.to_owned(), value.to_owned()));
        }
    }
}

/// The shared client.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: Arc<str>,
    in_flight: Arc<Semaphore>,
}

impl Http {
    pub fn new(base: &str, max_in_flight: usize) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_in_flight)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Http {
            client,
            base: base.into(),
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
        }
    }

    /// Sends one request (waiting for a place among those in flight); `None` if the connection
    /// failed.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        jar: &mut Jar,
        form: Option<String>,
        json: bool,
    ) -> Option<Reply> {
        let _permit = self.in_flight.acquire().await.ok()?;
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(cookies) = jar.header() {
            request = request.header(header::COOKIE, cookies);
        }
        if json {
            request = request.header(header::ACCEPT, "application/json");
        }
        if form.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let request = request
            .body(Full::new(Bytes::from(form.unwrap_or_default())))
            .ok()?;
        let started = Instant::now();
        let response = self.client.request(request).await.ok()?;
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.ok()?.to_bytes();
        let latency = started.elapsed();
        for value in parts.headers.get_all(header::SET_COOKIE) {
            jar.store(value.to_str().unwrap_or(""));
        }
        let text = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v: &http::HeaderValue| v.to_str().ok())
        };
        Some(Reply {
            status: parts.status.as_u16(),
            retry_after_s: text(header::RETRY_AFTER.as_str()).and_then(|v| v.parse().ok()),
            location: text(header::LOCATION.as_str()).unwrap_or("").to_owned(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
            latency,
        })
    }
}
