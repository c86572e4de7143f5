//! A minimal HTTP/1.1 client over `std::net` for tests that talk to a real server process:
//! one request per connection, a cookie jar per visitor.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value of the first `name="field" value="…"` in the page.
    pub fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let at = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            + marker.len();
        self.body[at..at + self.body[at..].find('"').unwrap()].to_owned()
    }
}

/// One visitor's cookies.
#[derive(Default, Clone)]
pub struct Visitor(pub BTreeMap<String, String>);

impl Visitor {
    /// Sends one request to `addr` and keeps the cookies it sets; `Accept-Language: en` unless
    /// `extra` names a language.
    pub fn send(
        &mut self,
        addr: &str,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        self.try_send(addr, method, path, extra, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// [`send`](Self::send), with what the connection did instead of a reply: a server that
    /// refuses a body it will not read may close (or reset) the connection while it is sent.
    pub fn try_send(
        &mut self,
        addr: &str,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<Reply> {
        let mut stream = TcpStream::connect(addr)?;
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        if !self.0.is_empty() {
            let cookies: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request.push_str(&format!("Cookie: {}\r\n", cookies.join("; ")));
        }
        for (k, v) in extra {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        // The pages' English texts are what the tests look for (the portal's pages are in
        // Arabic when a request names no language); a test that wants another says so.
        if !extra
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("accept-language"))
        {
            request.push_str("Accept-Language: en\r\n");
        }
        if !body.is_empty() {
            request.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        stream.write_all(request.as_bytes())?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw)?;
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| {
                l.split_once(':')
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            })
            .collect();
        for (k, v) in &headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                let (name, rest) = v.split_once('=').unwrap();
                let value = rest.split(';').next().unwrap_or("");
                if value.is_empty() {
                    self.0.remove(name);
                } else {
                    self.0.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        let body = dechunk(&headers, body);
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

/// The body, with a chunked transfer encoding undone.
fn dechunk(headers: &[(String, String)], body: &str) -> String {
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if !chunked {
        return body.to_owned();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}
