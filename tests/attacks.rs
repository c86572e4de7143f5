//! What a hostile or careless client tries at the door, one test per attack, through real
//! HTTP: the example portal started as its own process, or the layer served on a loopback
//! socket. Each test states the attack, runs it, and checks that it gets nowhere.
#![cfg(all(feature = "http", feature = "redis", feature = "serde", not(loom)))]

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
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::{Extension, Router};
use http1::{Reply, Visitor};
use surgegate::http::{WaitingRoomLayer, WaitingRoomLayerBuilder};
use surgegate::pass::{KeyId, Keyring};
use surgegate::{Pass, VisitorId, WaitingRoom};

/// The admin token the started portals are given (at least 32 characters).
const ADMIN: &str = "an-admin-token-of-forty-characters-long!";
/// The secret every started portal signs with (64 hex digits).
const SECRET: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// A portal process, stopped with SIGINT when dropped (also when the test fails).
struct Portal {
    child: Child,
    addr: String,
}

impl Portal {
    /// Starts the portal with `args`, the test's secret and admin token; waits for its
    /// listening line.
    fn start(args: &[&str], data: &Path) -> Portal {
        let mut child = Command::new(programs::example("portal"))
            .args(["--addr", "127.0.0.1:0", "--new-visitors-per-minute", "0"])
            .args(args)
            .arg("--data")
            .arg(data)
            .env("PORTAL_SECRET", SECRET)
            .env("PORTAL_ADMIN_TOKEN", ADMIN)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the portal starts");
        let addr = programs::listening_address(&mut child);
        Portal { child, addr }
    }

    /// Stops the portal as Ctrl-C would and waits for it.
    fn stop(mut self) {
        self.interrupt();
    }

    fn interrupt(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        self.interrupt();
    }
}

/// Registers `national_id` on `addr` (the visitor must be admitted there); the answer.
fn register(v: &mut Visitor, addr: &str, national_id: &str) -> Reply {
    let form = v.send(addr, "GET", "/register", &[], "");
    assert_eq!(form.status, 200, "admitted at once: {}", form.body);
    let csrf = form.field("csrf");
    let body = format!("csrf={csrf}&name=Amal+Haddad&national_id={national_id}&phone=0791234567");
    v.send(addr, "POST", "/register", &[], &body)
}

/// Holds the earliest window of branch 1 and confirms it; the booking page's path.
fn book_earliest(v: &mut Visitor, addr: &str) -> String {
    let grid = v.send(addr, "GET", "/appointments?branch=1", &[], "");
    let csrf = grid.field("csrf");
    let held = v.send(
        addr,
        "POST",
        "/appointments/hold",
        &[],
        &format!("csrf={csrf}&branch=1"),
    );
    assert_eq!(held.status, 303, "{}", held.body);
    let hold = v.send(addr, "GET", "/appointments/hold", &[], "");
    let (csrf, token) = (hold.field("csrf"), hold.field("token"));
    let confirmed = v.send(
        addr,
        "POST",
        "/appointments/confirm",
        &[],
        &format!("csrf={csrf}&token={token}"),
    );
    assert_eq!(confirmed.status, 303, "{}", confirmed.body);
    confirmed.header("location").expect("a booking").to_owned()
}

/// What a newly registered applicant's appointments page shows: it must offer a choice, and
/// never another applicant's booking.
fn assert_sees_no_booking(v: &mut Visitor, addr: &str) {
    let page = v.send(addr, "GET", "/appointments", &[], "");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Choose an appointment") && !page.body.contains("/booking/"),
        "a new applicant sees someone's booking: {}",
        page.body
    );
}

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

/// The layer in front of a tiny app, served on a loopback socket by its own runtime (stopped
/// when this is dropped).
struct Served {
    addr: String,
    room: Arc<WaitingRoom>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn keys() -> Keyring {
    Keyring::new(KeyId(1), b"a-secret-of-thirty-two-bytes!!!!").unwrap()
}

/// A room admitting one visitor at once (then one a second), behind a layer set up by
/// `configure`.
fn serve_layer(
    max_waiting: u32,
    configure: impl FnOnce(
        WaitingRoomLayerBuilder<Arc<WaitingRoom>>,
    ) -> WaitingRoomLayerBuilder<Arc<WaitingRoom>>,
) -> Served {
    let room = Arc::new(
        WaitingRoom::builder()
            .rate_per_second(1)
            .burst(1)
            .max_waiting(max_waiting)
            .checkin_timeout(Duration::from_secs(30))
            .pass_ttl(Duration::from_secs(600))
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

fn set_cookies(reply: &Reply) -> Vec<&str> {
    reply
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn position(reply: &Reply) -> u64 {
    let json: serde_json::Value = serde_json::from_str(&reply.body)
        .unwrap_or_else(|e| panic!("{e}: {} {}", reply.status, reply.body));
    json["position"].as_u64().unwrap_or(0)
}

const JSON: (&str, &str) = ("Accept", "application/json");
const CROSS_SITE: (&str, &str) = ("Sec-Fetch-Site", "cross-site");

/// Attack: another site's page posts a form to a gated route (the browser sends it without the
/// visitor's `SameSite=Lax` cookies), or loads it as an image, hoping the layer answers with a
/// new identity that replaces the visitor's and sends them to the back of the line.
#[test]
fn another_site_cannot_replace_a_visitors_identity_or_knock_them_out_of_line() {
    let served = serve_layer(100, |b| b);
    let mut admitted = Visitor::default();
    assert_eq!(
        admitted
            .send(&served.addr, "GET", "/register", &[], "")
            .status,
        200
    );
    let mut victim = Visitor::default();
    let waiting = victim.send(&served.addr, "GET", "/register", &[JSON], "");
    assert_eq!(position(&waiting), 1);
    let origin = ("Origin", "https://attacker.example");
    for (method, extra) in [
        ("POST", vec![CROSS_SITE, origin]),
        ("POST", vec![origin]),
        ("GET", vec![CROSS_SITE]),
    ] {
        // What the victim's browser sends for the attacker's page: no cookies of ours.
        let mut cookieless = Visitor::default();
        let reply = cookieless.send(&served.addr, method, "/register", &extra, "name=x");
        assert_eq!(reply.status, 403, "{method} {extra:?}: {}", reply.body);
        assert!(
            set_cookies(&reply).is_empty(),
            "{method} {extra:?} set {:?}",
            set_cookies(&reply)
        );
        // Whatever it set, the browser would keep: the victim's cookies are unchanged.
        victim.0.extend(cookieless.0);
    }
    // A link from another site (a top-level GET, which carries Lax cookies) finds the same
    // place and sets nothing.
    let linked = victim.send(&served.addr, "GET", "/register", &[JSON, CROSS_SITE], "");
    assert_eq!(position(&linked), 1, "{}", linked.body);
    assert!(
        set_cookies(&linked).is_empty(),
        "{:?}",
        set_cookies(&linked)
    );
    let leave = victim.send(&served.addr, "POST", "/surgegate/leave", &[CROSS_SITE], "");
    assert_eq!(
        leave.status, 403,
        "another site cannot make a visitor leave"
    );
    assert_eq!(
        position(&victim.send(&served.addr, "GET", "/register", &[JSON], "")),
        1
    );
    assert_eq!(served.room.stats().waiting, 1, "nobody was added");
}

/// Attack: collect identities while the room turns everyone away (closed, or a full line),
/// to present them all at once when it opens.
#[test]
fn a_refusal_never_hands_out_an_identity() {
    let served = serve_layer(1, |b| b);
    let mut first = Visitor::default();
    assert_eq!(
        first.send(&served.addr, "GET", "/register", &[], "").status,
        200
    );
    let mut second = Visitor::default();
    assert_eq!(
        position(&second.send(&served.addr, "GET", "/register", &[JSON], "")),
        1
    );
    let mut collector = Visitor::default();
    let full = collector.send(&served.addr, "GET", "/register", &[JSON], "");
    assert_eq!(full.status, 503, "{}", full.body);
    assert!(full.body.contains("\"full\""), "{}", full.body);
    assert!(set_cookies(&full).is_empty(), "{:?}", set_cookies(&full));
    served.room.close();
    let closed = collector.send(&served.addr, "GET", "/register", &[], "");
    assert_eq!(closed.status, 503, "{}", closed.body);
    assert!(
        set_cookies(&closed).is_empty(),
        "{:?}",
        set_cookies(&closed)
    );
    assert!(
        collector.0.is_empty(),
        "no identity collected: {:?}",
        collector.0
    );
}

/// Starts the portal with `env` and `args` and waits up to 60 s for it to exit by itself; its
/// exit status and what it wrote, or `None` if it kept running (it is then stopped).
fn run_to_exit(env: &[(&str, &str)], args: &[&str]) -> Option<(bool, String)> {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(programs::example("portal"));
    command
        .args(["--addr", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .args(args)
        .env_remove("PORTAL_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            return Some((out.status.success(), text));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
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

fn header<'r>(reply: &'r Reply, name: &str) -> Option<&'r str> {
    reply.header(name)
}

/// Attack: a script on a page of the site (or anything that reads responses but not
/// `HttpOnly` cookies) reads the pass and the visitor text from the response headers.
#[test]
fn a_browser_is_never_sent_its_pass_or_identity_in_a_header() {
    let served = serve_layer(100, |b| b);
    let mut browser = Visitor::default();
    let html = ("Accept", "text/html,application/xhtml+xml");
    let page = browser.send(&served.addr, "GET", "/register", &[html], "");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(browser.0.contains_key("sg_pass"), "the pass is in a cookie");
    assert_eq!(header(&page, "sg-pass"), None, "pass echoed to a browser");
    let mut waiting = Visitor::default();
    let page = waiting.send(&served.addr, "GET", "/register", &[html], "");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        header(&page, "sg-visitor"),
        None,
        "identity echoed to a browser"
    );
    // An app asks for them, and gets them.
    let mut app = Visitor::default();
    let json = app.send(&served.addr, "GET", "/register", &[JSON], "");
    assert!(header(&json, "sg-visitor").is_some(), "{:?}", json.headers);
}

/// Attack: a sibling subdomain (or a man in the middle on plain HTTP) plants an unprefixed
/// `sg_visitor` cookie holding the attacker's own identity on a victim of an HTTPS site.
#[test]
fn over_https_a_planted_unprefixed_cookie_is_ignored() {
    let served = serve_layer(100, |b| b.served_over_https(true));
    let mut attacker = Visitor::default();
    assert_eq!(
        attacker
            .send(&served.addr, "GET", "/register", &[], "")
            .status,
        200
    );
    let (name, planted) = attacker
        .0
        .iter()
        .find(|(k, _)| k.ends_with("sg_visitor"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .expect("the attacker's identity");
    assert_eq!(name, "__Host-sg_visitor", "cookies are host-prefixed");
    let mut victim = Visitor::default();
    victim.0.insert("sg_visitor".into(), planted.clone());
    let page = victim.send(&served.addr, "GET", "/register", &[JSON], "");
    let given = victim.0.get("__Host-sg_visitor").expect("a fresh identity");
    assert_ne!(
        given, &planted,
        "the planted identity was used: {}",
        page.body
    );
    assert_eq!(position(&page), 1, "the victim joined as themselves");
}

/// Attack: collect visitor identities long before an opening (a day ahead), to present
/// them all at once; or replay one from a text whose issue time is far in the future.
#[test]
fn old_and_future_visitor_texts_count_as_none() {
    let served = serve_layer(100, |b| b.visitor_max_age(Duration::from_secs(3600)));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // A text a minute old is the visitor's own (and, first in, admitted).
    let fresh = keys().sign_visitor_at(0, VisitorId(4343), now - 60);
    let mut v = Visitor::default();
    v.0.insert("sg_visitor".into(), fresh);
    let page = v.send(&served.addr, "GET", "/register", &[], "");
    assert_eq!(page.body, "form for 4343");
    for (issued, why) in [
        (now - 3601, "an hour and a second old"),
        (now + 3600, "from the future"),
    ] {
        let text = keys().sign_visitor_at(0, VisitorId(4242), issued);
        let mut v = Visitor::default();
        v.0.insert("sg_visitor".into(), text.clone());
        let page = v.send(&served.addr, "GET", "/register", &[], "");
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            !page.body.contains("4242"),
            "{why}: accepted: {}",
            page.body
        );
        assert_ne!(v.0.get("sg_visitor"), Some(&text), "{why}: kept");
    }
}

fn peer(parts: &http::request::Parts) -> Option<std::net::IpAddr> {
    Some(
        parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()?
            .0
            .ip(),
    )
}

/// Attack: write a new `X-Forwarded-For` on every request to get a fresh bucket of new
/// identities each time; behind the portal's own proxy, every visitor would otherwise share
/// the proxy's bucket.
#[test]
fn forwarded_addresses_count_only_from_trusted_proxies() {
    // No trusted proxy: the header is the client's invention, the peer is the client.
    let served = serve_layer(1000, |b| {
        b.peer_address(peer).limit_new_visitors_per_client(2)
    });
    let statuses: Vec<u16> = (0..3)
        .map(|i| {
            let xff = format!("203.0.113.{i}");
            let forwarded = [JSON, ("X-Forwarded-For", xff.as_str())];
            Visitor::default()
                .send(&served.addr, "GET", "/register", &forwarded, "")
                .status
        })
        .collect();
    assert_eq!(statuses, [200, 200, 429], "one bucket for one peer");
    // Loopback is the portal's proxy: each forwarded client has its own bucket, and one
    // client's spoofed entries left of the proxy's own count for nothing.
    let served = serve_layer(1000, |b| {
        b.peer_address(peer)
            .trusted_proxies(["127.0.0.0/8"])
            .limit_new_visitors_per_client(2)
    });
    let from = |chain: &str| {
        let forwarded = [JSON, ("X-Forwarded-For", chain)];
        Visitor::default()
            .send(&served.addr, "GET", "/register", &forwarded, "")
            .status
    };
    assert_eq!([from("198.51.100.1"), from("198.51.100.2")], [200, 200]);
    assert_eq!(from("9.9.9.9, 198.51.100.1"), 200);
    assert_eq!(
        from("8.8.8.8, 198.51.100.1"),
        429,
        "the spoofed hop is ignored"
    );
    assert_eq!(from("198.51.100.3"), 200);
}

/// Attack: one IPv6 subscriber (a /64 holds 2^64 addresses) takes a new address for every
/// new identity.
#[test]
fn ipv6_clients_are_limited_by_their_64() {
    let served = serve_layer(1000, |b| {
        b.peer_address(peer)
            .trusted_proxies(["127.0.0.1"])
            .limit_new_visitors_per_client(2)
    });
    let from = |addr: &str| {
        let forwarded = [JSON, ("X-Forwarded-For", addr)];
        Visitor::default()
            .send(&served.addr, "GET", "/register", &forwarded, "")
            .status
    };
    assert_eq!(from("2001:db8:1:2::1"), 200);
    assert_eq!(from("2001:db8:1:2::ffff:2"), 200);
    assert_eq!(from("2001:db8:1:2:8000::3"), 429, "the same /64");
    assert_eq!(
        from("2001:db8:1:3::1"),
        200,
        "the next /64 is another subscriber"
    );
}

/// Attack: reach the layer in a way its address hook cannot place (no connection info, an
/// unparsable forwarded chain), hoping that an unknown address is an unlimited one.
#[test]
fn an_unknown_address_gets_no_new_identity_when_a_limit_is_set() {
    let served = serve_layer(1000, |b| b.limit_new_visitors_per_address(5, |_| None));
    let reply = Visitor::default().send(&served.addr, "GET", "/register", &[JSON], "");
    assert_eq!(reply.status, 429, "{}", reply.body);
    assert!(set_cookies(&reply).is_empty(), "{:?}", set_cookies(&reply));
    let served = serve_layer(1000, |b| {
        b.peer_address(peer)
            .trusted_proxies(["127.0.0.1"])
            .limit_new_visitors_per_client(5)
    });
    let garbage = [JSON, ("X-Forwarded-For", "not-an-address")];
    let reply = Visitor::default().send(&served.addr, "GET", "/register", &garbage, "");
    assert_eq!(reply.status, 429, "{}", reply.body);
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
