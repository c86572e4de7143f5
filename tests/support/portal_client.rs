//! A visitor of the example portal: the portal's router driven in-process with
//! `tower::ServiceExt::oneshot`, with a cookie jar, as a browser would keep one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::server::{self, LocalState, Settings};

pub const ADMIN: &str = "test-admin-token-of-forty-characters-ok";
pub const METRICS: &str = "test-metrics-token-of-forty-characters!";

/// The portal's book, in this process.
pub fn book(state: &LocalState) -> &surgegate::SlotBook {
    &state.book
}

/// The portal's room, in this process.
pub fn room(state: &LocalState) -> &surgegate::WaitingRoom {
    &state.room
}

pub fn settings(dir: &std::path::Path, rate: u32) -> Settings {
    Settings {
        rate_per_second: rate,
        burst: rate,
        max_active: 1_000,
        max_waiting: 10_000,
        checkin_timeout: Duration::from_secs(30),
        pass_ttl: Duration::from_secs(600),
        claim_timeout: Duration::from_secs(60),
        hold_ttl: Duration::from_secs(300),
        data_dir: dir.to_path_buf(),
        admin_token: server::AdminToken::new(ADMIN.into()).unwrap(),
        branches: 3,
        days: 7,
        windows_per_day: 4,
        default_capacity: 2,
        new_visitors_per_minute: 0,
        trusted_proxies: Vec::new(),
        https: false,
        secret: vec![42; 32],
        key_id: 1,
        metrics_token: Some(server::AdminToken::new(METRICS.into()).unwrap()),
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the first `name="field" value="…"` in the page.
    pub fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let at = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body));
        let rest = &self.body[at + marker.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

/// One browser: its cookies, and the portal it talks to.
pub struct Browser {
    pub app: Router,
    pub jar: HashMap<String, String>,
    /// The `Accept-Language` every request sends (the portal is Arabic without one): English
    /// unless a test asks for another or none.
    pub accept_language: Option<&'static str>,
}

impl Browser {
    pub fn new(state: &Arc<LocalState>) -> Self {
        Browser {
            app: server::router(state.clone()),
            jar: HashMap::new(),
            accept_language: Some("en"),
        }
    }

    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        form: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if !self.jar.is_empty() {
            let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.header(header::COOKIE, cookies.join("; "));
        }
        if form.is_some()
            && !extra
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        if let Some(language) = self.accept_language
            && !extra
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("accept-language"))
        {
            request = request.header(header::ACCEPT_LANGUAGE, language);
        }
        for (k, v) in extra {
            request = request.header(*k, *v);
        }
        let body = form.map_or_else(Body::empty, |f| Body::from(f.to_owned()));
        let response = self
            .app
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        for value in response.headers().get_all(header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (name, rest) = text.split_once('=').unwrap();
            let value = rest.split(';').next().unwrap();
            if value.is_empty() {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        self.send(Method::GET, path, None, &[]).await
    }

    /// `/metrics`, with the metrics token.
    pub async fn metrics(&mut self) -> Answer {
        let bearer = format!("Bearer {METRICS}");
        let auth = [("authorization", bearer.as_str())];
        self.send(Method::GET, "/metrics", None, &auth).await
    }

    pub async fn post(&mut self, path: &str, form: &str) -> Answer {
        self.send(Method::POST, path, Some(form), &[]).await
    }

    /// Registers (the visitor must be admitted); the answer to the form.
    pub async fn register(&mut self, name: &str, national_id: &str) -> Answer {
        let form = self.get("/register").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let csrf = form.field("csrf");
        let body = format!(
            "csrf={csrf}&name={}&national_id={national_id}&phone=%2B962791234567",
            name.replace(' ', "+")
        );
        self.post("/register", &body).await
    }
}
