//! What a hostile or careless client tries against the example portal, one test per attack,
//! through real HTTP: the portal started as its own process. Each test states the attack,
//! runs it, and checks that it gets nowhere.
#![cfg(all(feature = "http", feature = "redis", feature = "serde", not(loom)))]

#[path = "support/attack_portal.rs"]
#[allow(dead_code)]
mod attack_portal;
#[path = "support/http1.rs"]
#[allow(dead_code)]
mod http1;
#[path = "support/programs.rs"]
#[allow(dead_code)]
mod programs;
#[path = "support/redis_servers.rs"]
#[allow(dead_code)]
mod redis_servers;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use attack_portal::{
    ADMIN, Portal, SECRET, assert_sees_no_booking, book_earliest, register, run_to_exit,
};
use http1::Visitor;
use surgegate::pass::{KeyId, Keyring};

/// Attack: register and book, restart the portal on the same data, register as somebody else,
/// and look for the first person's booking on one's own appointments page.
#[test]
fn a_restart_never_hands_one_applicant_another_applicants_booking() {
    let dir = tempfile::tempdir().unwrap();
    let portal = Portal::start(&["--rate", "50"], dir.path());
    let mut first = Visitor::default();
    assert_eq!(register(&mut first, &portal.addr, "1111111111").status, 303);
    let booking = book_earliest(&mut first, &portal.addr);
    portal.stop();
    let portal = Portal::start(&["--rate", "50"], dir.path());
    let mut second = Visitor::default();
    assert_eq!(
        register(&mut second, &portal.addr, "2222222222").status,
        303
    );
    assert_sees_no_booking(&mut second, &portal.addr);
    // The registration and the national id were kept: the first person is still known, and
    // their national id cannot be registered again.
    let mut twin = Visitor::default();
    let again = register(&mut twin, &portal.addr, "1111111111");
    assert_eq!(again.status, 409, "{}", again.body);
    let mine = first.send(&portal.addr, "GET", "/appointments", &[], "");
    assert!(
        mine.body.contains(booking.as_str()),
        "the first applicant still sees their own booking: {}",
        mine.body
    );
}

/// Attack: register on node A and book, then register as somebody else on node B (and try
/// the first person's national id there): each node once counted its own applicants from 1.
#[test]
fn two_nodes_on_redis_never_share_an_applicant_id_or_a_national_id() {
    let Some(servers) = redis_servers::Servers::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = servers.standalone();
    let args = ["--rate", "50", "--redis", url.as_str()];
    let a = Portal::start(&args, dir.path());
    let b = Portal::start(&args, dir.path());
    let mut on_a = Visitor::default();
    assert_eq!(register(&mut on_a, &a.addr, "1111111111").status, 303);
    let booking = book_earliest(&mut on_a, &a.addr);
    let mut on_b = Visitor::default();
    assert_eq!(register(&mut on_b, &b.addr, "2222222222").status, 303);
    assert_sees_no_booking(&mut on_b, &b.addr);
    assert_sees_no_booking(&mut on_b, &a.addr);
    let mut twin = Visitor::default();
    let again = register(&mut twin, &b.addr, "1111111111");
    assert_eq!(again.status, 409, "one national id, once: {}", again.body);
    let mine = on_a.send(&b.addr, "GET", "/appointments", &[], "");
    assert!(mine.body.contains(booking.as_str()), "{}", mine.body);
}

/// Attack: an operator starts the portal with an empty or short admin token (or none), and
/// a client sends `/admin/…` without the header, or with an empty one.
#[test]
fn an_empty_short_or_missing_admin_token_is_refused_at_start_and_never_matches() {
    for (env, args, why) in [
        (vec![], vec![], "no token"),
        (vec![("PORTAL_ADMIN_TOKEN", "")], vec![], "an empty token"),
        (
            vec![("PORTAL_ADMIN_TOKEN", "short-token")],
            vec![],
            "a short token",
        ),
        (
            vec![],
            vec!["--admin-token", ""],
            "a token on the command line",
        ),
    ] {
        let ended = run_to_exit(&env, &args);
        let (ok, said) = ended.unwrap_or_else(|| panic!("{why}: the portal started"));
        assert!(!ok, "{why}: {said}");
        assert!(!said.contains("listening on"), "{why}: {said}");
    }
    let env = [("PORTAL_SECRET", "not-hex"), ("PORTAL_ADMIN_TOKEN", ADMIN)];
    let (ok, said) = run_to_exit(&env, &[]).expect("refused");
    assert!(
        !ok && said.contains("PORTAL_SECRET"),
        "a malformed secret: {said}"
    );
    // A good token, from a file: the portal starts, never prints it, and the admin endpoints
    // answer 401 without it, with an empty one, or with a prefix of it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin.token");
    std::fs::write(&file, format!("{ADMIN}\n")).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(programs::example("portal"))
        .args(["--addr", "127.0.0.1:0", "--admin-token-file"])
        .arg(&file)
        .arg("--data")
        .arg(data.path())
        .env_remove("PORTAL_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = programs::listening_address(&mut child);
    let portal = Portal { child, addr };
    let mut v = Visitor::default();
    let bearer = format!("Bearer {ADMIN}");
    let prefix = format!("Bearer {}", &ADMIN[..20]);
    for auth in [
        vec![],
        vec![("Authorization", "Bearer ")],
        vec![("Authorization", prefix.as_str())],
    ] {
        let r = v.send(&portal.addr, "GET", "/admin/stats", &auth, "");
        assert_eq!(r.status, 401, "{auth:?}: {}", r.body);
    }
    let r = v.send(
        &portal.addr,
        "GET",
        "/admin/stats",
        &[("Authorization", &bearer)],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let mut portal = portal;
    portal.interrupt();
    let mut said = String::new();
    use std::io::Read as _;
    if let Some(mut err) = portal.child.stderr.take() {
        err.read_to_string(&mut said).unwrap();
    }
    assert!(!said.contains(ADMIN), "the token was printed: {said}");
}

/// Attack: read a person's registration or booking from a shared cache or the browser's
/// history cache after they left the machine.
#[test]
fn pages_with_personal_data_are_never_stored_by_a_cache() {
    let dir = tempfile::tempdir().unwrap();
    let portal = Portal::start(&["--rate", "50"], dir.path());
    let mut v = Visitor::default();
    assert_eq!(register(&mut v, &portal.addr, "1111111111").status, 303);
    let booking = book_earliest(&mut v, &portal.addr);
    for path in ["/appointments", "/register", booking.as_str(), "/"] {
        let page = v.send(&portal.addr, "GET", path, &[], "");
        assert_eq!(
            page.header("cache-control"),
            Some("no-store"),
            "{path}: {:?}",
            page.headers
        );
    }
}

/// Attack: 2 000 connections send their headers one byte a second (slowloris), to hold every
/// connection the server will take. Ordinary visitors must still be served, and the slow
/// ones are closed once the header-read timeout passes. Prints the visitors' p99 latency (the
/// figure itself is measured on a quiet machine; the bound here is generous).
#[test]
fn slow_clients_do_not_stop_ordinary_visitors() {
    use std::io::{Read, Write};
    const SLOW: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let portal = Portal::start(
        &["--rate", "50", "--header-read-timeout-secs", "4"],
        dir.path(),
    );
    let addr: SocketAddr = portal.addr.parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let slow: Vec<_> = (0..SLOW)
        .map(|_| {
            runtime.spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
                let head = b"GET / HTTP/1.1\r\nHost: slow\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
                let mut buf = [0u8; 512];
                for byte in head.iter().cycle() {
                    // Closed by the server: the read side ends, or a write fails.
                    loop {
                        match stream.try_read(&mut buf) {
                            Ok(0) => return Some(started.elapsed()),
                            Ok(_) => continue,
                            Err(_) => break,
                        }
                    }
                    if let Err(e) = stream.try_write(&[*byte])
                        && e.kind() != std::io::ErrorKind::WouldBlock
                    {
                        return Some(started.elapsed());
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if started.elapsed() > Duration::from_secs(20) {
                        return None;
                    }
                }
                None
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let mut latencies = Vec::new();
    for _ in 0..40 {
        let t = std::time::Instant::now();
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        latencies.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100 - 1];
    println!("ordinary visitors beside {SLOW} slow connections: p99 {p99:?}");
    assert!(p99 < Duration::from_secs(3), "p99 {p99:?}");
    let closed: Vec<Duration> = runtime
        .block_on(async { futures_join(slow).await })
        .into_iter()
        .flatten()
        .collect();
    assert!(
        closed.len() >= SLOW * 9 / 10,
        "only {} of {SLOW} slow connections were closed by the server",
        closed.len()
    );
    runtime.shutdown_background();
}

async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<Option<T>>>) -> Vec<Option<T>> {
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.ok().flatten());
    }
    out
}

/// The portal's keyring, as the test knows its secret: to make tokens the way the portal
/// does, at times of the test's choosing.
fn portal_keys() -> Keyring {
    let bytes: Vec<u8> = (0..SECRET.len() / 2)
        .map(|i| u8::from_str_radix(&SECRET[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    Keyring::new(KeyId(1), &bytes).unwrap()
}

fn now_unix_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The visitor id in `v`'s pass cookie.
fn visitor_of(v: &Visitor) -> String {
    let pass = v.0.get("sg_pass").expect("admitted");
    let claims = portal_keys().verify(pass, now_unix_s()).unwrap();
    claims.visitor.0.to_string()
}

/// Whether the answer is the portal's "reload the page" refusal.
fn is_reload_page(reply: &http1::Reply) -> bool {
    reply.status == 403 && reply.body.contains("Reload the page")
}

/// Attack: post a form with a token kept from long ago (a page saved a day earlier), one made
/// for the future, one of another form, one of another visitor, or none at all.
#[test]
fn a_form_needs_its_own_fresh_token_for_its_own_visitor() {
    let dir = tempfile::tempdir().unwrap();
    let portal = Portal::start(&["--rate", "50"], dir.path());
    let addr = portal.addr.as_str();
    let mut v = Visitor::default();
    let form = v.send(addr, "GET", "/register", &[], "");
    assert_eq!(form.status, 200, "{}", form.body);
    let me = visitor_of(&v);
    let mut other = Visitor::default();
    let theirs = other.send(addr, "GET", "/register", &[], "").field("csrf");
    let now = now_unix_s();
    let keys = portal_keys();
    let fields = "name=Amal+Haddad&national_id=1234567890&phone=0791234567";
    for (csrf, why) in [
        (
            keys.sign_form("register", &me, now - 3 * 3600),
            "three hours old",
        ),
        (
            keys.sign_form("register", &me, now + 3600),
            "from the future",
        ),
        (keys.sign_form("hold", &me, now), "another form's"),
        (theirs, "another visitor's"),
        (String::new(), "empty"),
    ] {
        let reply = v.send(
            addr,
            "POST",
            "/register",
            &[],
            &format!("csrf={csrf}&{fields}"),
        );
        assert!(
            is_reload_page(&reply),
            "{why}: {} {}",
            reply.status,
            reply.body
        );
    }
    let none = v.send(addr, "POST", "/register", &[], fields);
    assert!(
        is_reload_page(&none),
        "no token: {} {}",
        none.status,
        none.body
    );
    // Nothing was registered by any of them.
    let page = v.send(addr, "GET", "/appointments", &[], "");
    assert_eq!(page.status, 303, "still unregistered: {}", page.body);
    // The page's own token, just made for this visitor, works.
    let fresh = keys.sign_form("register", &me, now);
    let ok = v.send(
        addr,
        "POST",
        "/register",
        &[],
        &format!("csrf={fresh}&{fields}"),
    );
    assert_eq!(ok.status, 303, "{}", ok.body);
    // On the hold page, the confirm form's token does not release, and the grid's does not
    // confirm: each form has its own.
    let grid = v.send(addr, "GET", "/appointments?branch=1", &[], "");
    let grid_csrf = grid.field("csrf");
    let held = v.send(
        addr,
        "POST",
        "/appointments/hold",
        &[],
        &format!("csrf={grid_csrf}&branch=1"),
    );
    assert_eq!(held.status, 303, "{}", held.body);
    let hold = v.send(addr, "GET", "/appointments/hold", &[], "");
    let (confirm_csrf, token) = (hold.field("csrf"), hold.field("token"));
    for (path, csrf) in [
        ("/appointments/confirm", grid_csrf.as_str()),
        ("/appointments/release", confirm_csrf.as_str()),
    ] {
        let reply = v.send(
            addr,
            "POST",
            path,
            &[],
            &format!("csrf={csrf}&token={token}"),
        );
        assert!(
            is_reload_page(&reply),
            "{path}: {} {}",
            reply.status,
            reply.body
        );
    }
    let still = v.send(addr, "GET", "/appointments/hold", &[], "");
    assert_eq!(still.field("token"), token, "the hold is kept");
    let booked = v.send(
        addr,
        "POST",
        "/appointments/confirm",
        &[],
        &format!("csrf={confirm_csrf}&token={token}"),
    );
    assert_eq!(booked.status, 303, "{}", booked.body);
    // A booking's cancel form: an old token or another booking's is refused.
    let booking = booked.header("location").unwrap().to_owned();
    let booking_token = booking.trim_start_matches("/booking/");
    let cancel = format!("{booking}/cancel");
    for csrf in [
        keys.sign_form("cancel", booking_token, now - 3 * 3600),
        keys.sign_form("cancel", "00000000000000000000000000000001", now),
    ] {
        let reply = v.send(addr, "POST", &cancel, &[], &format!("csrf={csrf}"));
        assert!(is_reload_page(&reply), "{} {}", reply.status, reply.body);
    }
    let shown = v.send(addr, "GET", &booking, &[], "");
    assert!(shown.body.contains("is booked"), "kept: {}", shown.body);
}

/// Attack: send a request's headers at once, then its body a byte a second (or announce a
/// huge one), to hold a connection (and a task) for as long as one likes.
#[test]
fn a_slow_or_huge_body_does_not_hold_a_connection() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let portal = Portal::start(
        &["--rate", "50", "--body-read-timeout-secs", "2"],
        dir.path(),
    );
    let head = |length: usize| {
        format!(
            "POST /booking/00000000000000000000000000000001/cancel HTTP/1.1\r\nHost: x\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {length}\r\n\r\n"
        )
    };
    let mut slow = std::net::TcpStream::connect(&portal.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(900)))
        .unwrap();
    slow.write_all(head(100).as_bytes()).unwrap();
    let started = std::time::Instant::now();
    let mut reply = Vec::new();
    while started.elapsed() < Duration::from_secs(10) {
        if slow.write_all(b"a").is_err() {
            break;
        }
        let mut buf = [0u8; 1024];
        match slow.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if reply.ends_with(b"send it again") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&reply);
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "after {:?}: {text:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    let mut huge = std::net::TcpStream::connect(&portal.addr).unwrap();
    huge.write_all(head(10 << 20).as_bytes()).unwrap();
    huge.write_all(&[b'a'; 4096]).unwrap();
    huge.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 64];
    let n = huge.read(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text:?}");
    // An ordinary visitor is served meanwhile.
    let open = Visitor::default().send(&portal.addr, "GET", "/", &[], "");
    assert_eq!(open.status, 200);
}

/// Attack: read the portal's metrics (how many wait, how fast the line moves, the journal's
/// health) from anywhere, to time a rush or watch an outage.
#[test]
fn metrics_answer_only_their_token_or_their_own_address() {
    const METRICS: &str = "a-metrics-token-of-forty-characters-ok!!";
    // No metrics token and no separate address: /metrics answers nobody.
    let dir = tempfile::tempdir().unwrap();
    let closed = Portal::start(&["--rate", "50"], dir.path());
    let bearer = format!("Bearer {ADMIN}");
    for auth in [vec![], vec![("Authorization", bearer.as_str())]] {
        let r = Visitor::default().send(&closed.addr, "GET", "/metrics", &auth, "");
        assert_eq!(r.status, 401, "{auth:?}: {}", r.body);
        assert!(!r.body.contains("surgegate_"), "{}", r.body);
    }
    drop(closed);
    // A metrics token (too short ones are refused at start, as the admin token's are).
    let env = [
        ("PORTAL_ADMIN_TOKEN", ADMIN),
        ("PORTAL_METRICS_TOKEN", "short"),
    ];
    let (ok, said) = run_to_exit(&env, &[]).expect("a short metrics token is refused");
    assert!(!ok && said.contains("PORTAL_METRICS_TOKEN"), "{said}");
    let dir = tempfile::tempdir().unwrap();
    let port = programs::free_port();
    let listen = format!("127.0.0.1:{port}");
    let portal = Portal::start_with(
        &["--rate", "50", "--metrics-listen", listen.as_str()],
        dir.path(),
        &[("PORTAL_METRICS_TOKEN", METRICS)],
    );
    let right = format!("Bearer {METRICS}");
    let wrong = format!("Bearer {}", &METRICS[..31]);
    for (auth, want) in [
        (vec![], 401),
        (vec![("Authorization", "Bearer ")], 401),
        (vec![("Authorization", wrong.as_str())], 401),
        (vec![("Authorization", bearer.as_str())], 401),
        (vec![("Authorization", right.as_str())], 200),
    ] {
        let r = Visitor::default().send(&portal.addr, "GET", "/metrics", &auth, "");
        assert_eq!(r.status, want, "{auth:?}: {}", r.body);
        assert_eq!(
            r.body.contains("surgegate_waiting"),
            want == 200,
            "{}",
            r.body
        );
    }
    // The separate address serves the metrics alone, without a token, and nothing else.
    let r = Visitor::default().send(&listen, "GET", "/metrics", &[], "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("surgegate_waiting"), "{}", r.body);
    let other = Visitor::default().send(&listen, "GET", "/register", &[], "");
    assert_eq!(other.status, 404, "{}", other.body);
}

/// Attack: register a national id someone already registered, typed another way (leading
/// zeros, Arabic-Indic digits, spaces), to hold two registrations (and two bookings).
#[test]
fn a_national_id_registers_once_however_it_is_typed() {
    let dir = tempfile::tempdir().unwrap();
    let portal = Portal::start(&["--rate", "50"], dir.path());
    let mut first = Visitor::default();
    assert_eq!(register(&mut first, &portal.addr, "00123456").status, 303);
    for typed in [
        "123456",
        "%D9%A1%D9%A2%D9%A3%D9%A4%D9%A5%D9%A6",
        "+0123456+",
    ] {
        let mut twin = Visitor::default();
        let again = register(&mut twin, &portal.addr, typed);
        assert_eq!(again.status, 409, "{typed}: {}", again.body);
        assert!(
            again.body.contains("already registered") && again.body.contains("booking link"),
            "{typed}: the refusal says what happened and what to do: {}",
            again.body
        );
    }
}
