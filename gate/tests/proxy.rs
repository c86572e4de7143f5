//! The reverse proxy in front of the Python upstream: headers as a proxy should pass them,
//! bodies streamed both ways, size limits, 502/504, HTTP/2 without TLS, WebSockets, and the
//! hostile requests a public proxy gets (spoofed forwarding headers, our own headers, huge
//! or partial heads) answered with a 4xx, never a 500.

#![cfg(not(loom))]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use support::client::{self, Visitor};
use support::procs::{Gate, Setup, Upstream};

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn start(setup: impl FnOnce(Setup) -> Setup) -> Option<(Upstream, Gate, tempfile::TempDir)> {
    let upstream = Upstream::start()?;
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start_in(dir.path(), &setup(Setup::new(&upstream.addr)));
    Some((upstream, gate, dir))
}

#[test]
fn bypassed_paths_carry_forwarding_headers_and_none_of_the_clients_own() {
    let Some((_up, gate, _dir)) = start(|s| s) else {
        return;
    };
    let reply = client::send(
        &gate.addr,
        "GET",
        "/static/app.js?v=3&x=%20y",
        &[
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "evil.example"),
            ("Forwarded", "for=6.6.6.6"),
            ("Surgegate-Visitor", "424242"),
            ("Surgegate-Command", "finish"),
            ("Connection", "X-Hop"),
            ("X-Hop", "private"),
            ("X-Kept", "yes"),
        ],
        b"",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let echo = reply.json();
    let h = &echo["headers"];
    assert_eq!(echo["path"], "/static/app.js?v=3&x=%20y");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], gate.addr.as_str());
    assert_eq!(h["host"], gate.addr.as_str(), "the client's Host is kept");
    assert_eq!(h["x-kept"], "yes");
    for gone in [
        "forwarded",
        "surgegate-visitor",
        "surgegate-command",
        "x-hop",
    ] {
        assert!(h.get(gone).is_none(), "{gone} reached the upstream: {echo}");
    }
    // The upstream's hop-by-hop headers and its command never reach the client.
    let reply = client::get(&gate.addr, "/hop");
    assert_eq!(reply.status, 200);
    for gone in ["x-private", "keep-alive", "surgegate-command"] {
        assert!(
            reply.header(gone).is_none(),
            "{gone} reached the client: {:?}",
            reply.headers
        );
    }
}

#[test]
fn a_trusted_proxys_chain_is_believed_and_extended() {
    let Some((_up, gate, _dir)) = start(|s| s.set("", "trusted_proxies", "[\"127.0.0.0/8\"]"))
    else {
        return;
    };
    let reply = client::send(
        &gate.addr,
        "GET",
        "/x",
        &[
            ("X-Forwarded-For", "203.0.113.7"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "portal.example"),
        ],
        b"",
    );
    let h = &reply.json()["headers"];
    assert_eq!(h["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-host"], "portal.example");
    // Through the balancer the site is HTTPS: the room's cookies are Secure and __Host-.
    let mut v = Visitor::default();
    let reply = v.send(
        &gate.addr,
        "GET",
        "/register",
        &[("X-Forwarded-Proto", "https")],
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let cookies = reply.all("set-cookie").join(" | ");
    assert!(
        cookies.contains("__Host-sg_pass=") && cookies.contains("Secure"),
        "{cookies}"
    );
}

#[test]
fn bodies_stream_both_ways_and_keep_every_byte() {
    let Some((_up, gate, _dir)) = start(|s| s.set("proxy", "max_body_bytes", "8000000")) else {
        return;
    };
    let n = 20_000_000usize;
    let reply = client::get(&gate.addr, &format!("/large?bytes={n}"));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), n);
    assert!(
        reply
            .body
            .iter()
            .enumerate()
            .all(|(i, &b)| b as usize == i % 251),
        "a byte changed on the way"
    );

    let body: Vec<u8> = (0..6_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let reply = client::send(&gate.addr, "POST", "/upload", &[], &body);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let expected = hex(&body);
    assert_eq!(reply.json()["sha256"], expected.as_str());
    assert_eq!(reply.json()["bytes"], body.len());

    // Chunked, in pieces.
    let mut raw = b"POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for piece in body[..100_000].chunks(7_000) {
        raw.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        raw.extend_from_slice(piece);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let reply = client::parse(&client::raw(&gate.addr, &raw));
    assert_eq!(reply.json()["sha256"], hex(&body[..100_000]).as_str());
}

#[test]
fn bodies_over_the_limit_are_refused_with_413() {
    let Some((_up, gate, _dir)) = start(|s| s.set("proxy", "max_body_bytes", "1000")) else {
        return;
    };
    let reply = client::send(&gate.addr, "POST", "/upload", &[], &[b'x'; 1001]);
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json()["error"], "too_large");
    let mut raw = b"POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..4 {
        raw.extend_from_slice(b"190\r\n");
        raw.extend_from_slice(&[b'y'; 400]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let reply = client::parse(&client::raw(&gate.addr, &raw));
    assert_eq!(reply.status, 413, "{}", reply.text());
    let reply = client::send(&gate.addr, "POST", "/upload", &[], &[b'x'; 1000]);
    assert_eq!(reply.status, 200, "a body at the limit passes");
}

#[test]
fn a_failed_or_slow_upstream_gives_502_or_504_in_the_visitors_language() {
    let dead = support::programs::free_port();
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start_in(dir.path(), &Setup::new(&format!("127.0.0.1:{dead}")));
    let reply = client::send(
        &gate.addr,
        "GET",
        "/",
        &[("Accept", "application/json")],
        b"",
    );
    assert_eq!(reply.status, 502);
    assert_eq!(reply.json()["status"], "bad_gateway");
    assert!(reply.header("retry-after").is_some());
    let reply = client::send(
        &gate.addr,
        "GET",
        "/",
        &[("Accept-Language", "ar-JO,ar;q=0.9")],
        b"",
    );
    assert_eq!(reply.status, 502);
    assert!(reply.text().contains("dir=\"rtl\""), "{}", reply.text());
    let reply = client::get(&gate.addr, "/");
    assert!(reply.text().contains("The service is not answering"));

    let Some((_up, gate, _dir)) = start(|s| s.set("proxy", "response_timeout_secs", "1")) else {
        return;
    };
    let started = Instant::now();
    let reply = client::send(
        &gate.addr,
        "GET",
        "/slow?ms=4000",
        &[("Accept", "application/json")],
        b"",
    );
    assert_eq!(reply.status, 504);
    assert_eq!(reply.json()["status"], "gateway_timeout");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let metrics = client::metrics(&gate.addr).text();
    assert!(
        metrics.contains("surgegate_gate_upstream_timeouts_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("class=\"bypass\",status=\"504\""),
        "{metrics}"
    );
}

#[test]
fn keep_alive_connections_carry_many_requests() {
    let Some((_up, gate, _dir)) = start(|s| s) else {
        return;
    };
    let mut stream = TcpStream::connect(&gate.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for i in 0..3 {
        write!(stream, "GET /n/{i} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let reply = client::parse(&head);
        let length: usize = reply.header("content-length").unwrap().parse().unwrap();
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).unwrap();
        let text = String::from_utf8_lossy(&head).into_owned() + &String::from_utf8_lossy(&body);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.contains(&format!("/n/{i}")), "{text}");
    }
}

#[tokio::test]
async fn http2_without_tls_is_served() {
    let Some((_up, gate, _dir)) = start(|s| s) else {
        return;
    };
    let stream = tokio::net::TcpStream::connect(&gate.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    for path in ["/h2/one", "/h2/two"] {
        let request = http::Request::get(format!("http://{}{path}", gate.addr))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), http::Version::HTTP_2);
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(echo["path"], path);
        assert_eq!(echo["headers"]["host"], gate.addr.as_str(), "{echo}");
    }
}

/// A WebSocket handshake and one echoed text message over `stream`.
pub fn websocket_echo(stream: &mut TcpStream, path: &str, extra: &str) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    let payload = b"hello through the gate";
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).unwrap();
    let mut answer = [0u8; 2];
    stream.read_exact(&mut answer).unwrap();
    let mut body = vec![0u8; usize::from(answer[1] & 0x7f)];
    stream.read_exact(&mut body).unwrap();
    String::from_utf8(body).unwrap()
}

#[test]
fn websockets_pass_through() {
    let Some((_up, gate, _dir)) = start(|s| s.set("", "gated", "[\"/register\", \"/ws\"]")) else {
        return;
    };
    // A gated WebSocket needs a pass: the first visitor is admitted at once.
    let mut v = Visitor::default();
    assert_eq!(v.get(&gate.addr, "/register/form").status, 200);
    let cookie =
        v.0.iter()
            .map(|(k, val)| format!("{k}={val}"))
            .collect::<Vec<_>>()
            .join("; ");
    let mut stream = TcpStream::connect(&gate.addr).unwrap();
    let echoed = websocket_echo(&mut stream, "/ws", &format!("Cookie: {cookie}\r\n"));
    assert_eq!(echoed, "hello through the gate");

    // Without a pass (the one pass is taken), the upgrade waits in line like any request:
    // no 101, no tunnel to the upstream.
    let upgrade = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
        ("Accept", "application/json"),
    ];
    let reply = client::send(&gate.addr, "GET", "/ws", &upgrade, b"");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["status"], "waiting", "{}", reply.text());
    assert!(reply.header("upgrade").is_none());
}

#[test]
fn hostile_heads_get_a_4xx_and_never_a_500() {
    let Some((_up, gate, _dir)) = start(|s| s.set("proxy", "max_header_bytes", "4096")) else {
        return;
    };
    // Headers over the limit.
    let big = "a".repeat(5000);
    let reply = client::send(&gate.addr, "GET", "/", &[("X-Big", &big)], b"");
    assert_eq!(reply.status, 431, "{}", reply.text());
    assert_eq!(reply.json()["error"], "headers_too_large");
    // Far over: hyper's own buffer limit answers.
    let huge = "a".repeat(200_000);
    let reply = client::parse(&client::raw(
        &gate.addr,
        format!("GET / HTTP/1.1\r\nHost: x\r\nX-Huge: {huge}\r\n\r\n").as_bytes(),
    ));
    assert!((400..500).contains(&reply.status), "{}", reply.status);
    // Garbage instead of a request line.
    let reply = client::parse(&client::raw(&gate.addr, b"\x16\x03\x01 garbage\r\n\r\n"));
    assert!(
        (400..500).contains(&reply.status) || reply.status == 0,
        "{}",
        reply.status
    );
    // A header value that is not text reaches nothing that would choke on it.
    let reply = client::parse(&client::raw(
        &gate.addr,
        b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Bin: \xff\xfe\r\n\r\n",
    ));
    assert_eq!(reply.status, 200);

    // A slowloris head: the gate closes the connection after header_timeout_secs (3).
    let started = Instant::now();
    let mut stream = TcpStream::connect(&gate.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "closed after {took:?}"
    );
    let text = String::from_utf8_lossy(&rest);
    assert!(!text.contains(" 500 "), "{text}");
    // And the gate still serves.
    assert_eq!(client::get(&gate.addr, "/after").status, 200);
    let metrics = client::metrics(&gate.addr).text();
    assert!(!metrics.contains("status=\"500\""), "{metrics}");
}
