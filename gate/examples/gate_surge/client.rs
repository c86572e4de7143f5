//! A virtual visitor's browser connection: one HTTP/1.1 keep-alive connection at a time, opened
//! on demand under a bound on the connections all visitors hold, a cookie jar, and a retry on a
//! fresh connection when a kept-alive one was closed under the request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The longest a single request may take before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What a visitor reads of a response.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
    pub latency: Duration,
}

impl Reply {
    /// A header's text, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON (`Null` if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A visitor's cookies, as a browser keeps them for one site.
#[derive(Default)]
pub struct Jar(Vec<(String, String)>);

impl Jar {
    fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            let pairs: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
            pairs.join("; ")
        })
    }

    /// Keeps (or, for an empty value or `Max-Age=0`, forgets) the cookie `set_cookie` sets.
    fn store(&mut self, set_cookie: &str) {
        let Some((name, rest)) = set_cookie.split_once('=') else {
            return;
        };
        let mut attributes = rest.split(';');
        let value = attributes.next().unwrap_or("").trim();
        let expired = attributes.any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
        self.0.retain(|(k, _)| k != name);
        if !value.is_empty() && !expired {
            self.0.push((name.to_owned(), value.to_owned()));
        }
    }

    /// Whether a cookie of this name is kept.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

/// Where every visitor connects, and how many connections they may hold at once.
pub struct Site {
    pub addr: String,
    pub connections: Arc<Semaphore>,
}

/// One visitor's connection to the site and its cookies.
pub struct Browser {
    site: Arc<Site>,
    open: Option<(SendRequest<Full<Bytes>>, OwnedSemaphorePermit)>,
    pub jar: Jar,
    /// Requests sent, retries included.
    pub requests: u64,
}

/// One request of a visitor: method, path, extra headers, body.
pub struct Ask<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: String,
}

impl Browser {
    pub fn new(site: Arc<Site>) -> Browser {
        Browser {
            site,
            open: None,
            jar: Jar::default(),
            requests: 0,
        }
    }

    /// Closes the connection (as a browser's idle connection closes between page loads) and
    /// gives its place among the bounded connections back.
    pub fn close(&mut self) {
        self.open = None;
    }

    async fn connect(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        if self.open.as_ref().is_some_and(|(s, _)| s.is_closed()) {
            self.open = None;
        }
        if self.open.is_none() {
            let permit = self
                .site
                .connections
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| e.to_string())?;
            let stream = tokio::net::TcpStream::connect(&self.site.addr)
                .await
                .map_err(|e| format!("connecting to {}: {e}", self.site.addr))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
            // The connection's errors reach the request that was on it.
            tokio::spawn(conn);
            self.open = Some((sender, permit));
        }
        match self.open.as_mut() {
            Some((sender, _)) => Ok(sender),
            None => Err("no connection".into()),
        }
    }

    async fn once(&mut self, ask: &Ask<'_>) -> Result<Reply, String> {
        let mut request = Request::builder()
            .method(ask.method)
            .uri(ask.path)
            .header(header::HOST, self.site.addr.as_str());
        for (name, value) in ask.headers {
            request = request.header(*name, *value);
        }
        if let Some(cookies) = self.jar.header() {
            request = request.header(header::COOKIE, cookies);
        }
        let request = request
            .body(Full::new(Bytes::from(ask.body.clone())))
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        let sender = self.connect().await?;
        sender.ready().await.map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        let latency = started.elapsed();
        for value in parts.headers.get_all(header::SET_COOKIE) {
            self.jar.store(value.to_str().unwrap_or(""));
        }
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            latency,
        })
    }

    /// Sends `ask`; when the connection fails under it (a kept-alive connection the server
    /// closed), once more on a fresh one. Every request of the surge may be sent twice: the
    /// pages are reads, a hold carries an `Idempotency-Key`, and a confirmation answers the
    /// same again.
    ///
    /// # Errors
    /// What went wrong with the second attempt, or a request over [`REQUEST_TIMEOUT`].
    pub async fn send(&mut self, ask: Ask<'_>) -> Result<Reply, String> {
        let mut last = String::new();
        for _ in 0..2 {
            self.requests += 1;
            match tokio::time::timeout(REQUEST_TIMEOUT, self.once(&ask)).await {
                Ok(Ok(reply)) => return Ok(reply),
                Ok(Err(e)) => last = e,
                Err(_) => last = format!("no answer within {REQUEST_TIMEOUT:?}"),
            }
            self.open = None;
        }
        Err(format!("{} {}: {last}", ask.method, ask.path))
    }
}

#[cfg(test)]
mod tests {
    use super::Jar;

    #[test]
    fn a_cleared_cookie_is_forgotten() {
        let mut jar = Jar::default();
        jar.store("sg_pass=abc; Path=/; HttpOnly");
        assert!(jar.has("sg_pass"));
        jar.store("sg_pass=; Path=/; Max-Age=0");
        assert!(!jar.has("sg_pass"));
        jar.store("sg_visitor=x; Max-Age=0");
        assert!(!jar.has("sg_visitor"));
    }
}
