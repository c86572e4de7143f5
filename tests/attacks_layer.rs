//! What a hostile or careless client tries at the waiting room's layer, one test per attack,
//! through real HTTP: the layer in front of a tiny app on a loopback socket. Each test states
//! the attack, runs it, and checks that it gets nowhere.
#![cfg(all(feature = "http", feature = "serde", not(loom)))]

#[path = "support/attack_layer.rs"]
#[allow(dead_code)]
mod attack_layer;
#[path = "support/http1.rs"]
#[allow(dead_code)]
mod http1;

use std::time::Duration;

use attack_layer::{
    CROSS_SITE, JSON, header, keys, peer, position, serve_layer, serve_layer_on, set_cookies,
};
use http1::Visitor;
use surgegate::{ManualClock, VisitorId};

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
    // A script's JSON fetch is still the browser's (its Fetch Metadata says so): no texts in
    // headers, whichever Fetch Metadata header it carries.
    for metadata in [
        ("Sec-Fetch-Site", "same-origin"),
        ("Sec-Fetch-Mode", "cors"),
    ] {
        let mut script = Visitor::default();
        let fetched = script.send(&served.addr, "GET", "/register", &[JSON, metadata], "");
        assert_eq!(fetched.status, 200, "{}", fetched.body);
        assert_eq!(
            header(&fetched, "sg-visitor"),
            None,
            "{metadata:?}: {:?}",
            fetched.headers
        );
    }
    // An app that sends its own texts in headers (a new one: `Sg-Visitor: new`) gets them,
    // and so does one that only asks for JSON, as the gated route's rule 2 says.
    let mut app = Visitor::default();
    let new_app = [JSON, ("Sg-Visitor", "new")];
    let json = app.send(&served.addr, "GET", "/register", &new_app, "");
    assert!(header(&json, "sg-visitor").is_some(), "{:?}", json.headers);
    let mut plain_app = Visitor::default();
    let json = plain_app.send(&served.addr, "GET", "/register", &[JSON], "");
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

/// Attack: another site's page (in a browser that does not send `Sec-Fetch-Site`) posts the
/// leave form with the victim's cookies, with no token, another visitor's, or an old one,
/// to take the victim out of the line.
#[test]
fn another_page_cannot_make_a_visitor_leave_the_line() {
    let served = serve_layer(100, |b| b);
    let addr = served.addr.as_str();
    let mut first = Visitor::default();
    assert_eq!(first.send(addr, "GET", "/register", &[], "").status, 200);
    let mut victim = Visitor::default();
    let page = victim.send(addr, "GET", "/register", &[], "");
    assert!(
        page.body.contains("/surgegate/leave?csrf="),
        "{}",
        page.body
    );
    let mut other = Visitor::default();
    let theirs = attack_layer::json(&other.send(addr, "GET", "/register", &[JSON], ""));
    let their_url = theirs["leave_url"].as_str().unwrap().to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let victim_id = keys()
        .verify_visitor(victim.0.get("sg_visitor").unwrap())
        .unwrap()
        .1;
    let old = keys().sign_form("leave", &format!("0:{}", victim_id.0), now - 3 * 3600);
    for (path, why) in [
        ("/surgegate/leave".to_owned(), "no token"),
        (their_url, "another visitor's token"),
        (
            format!("/surgegate/leave?csrf={old}"),
            "a token three hours old",
        ),
    ] {
        let reply = victim.send(addr, "POST", &path, &[], "");
        assert_eq!(reply.status, 403, "{why}: {}", reply.body);
        assert!(reply.body.contains("reload"), "{why}: {}", reply.body);
    }
    assert_eq!(served.room.stats().waiting, 2, "nobody left");
    let own = attack_layer::json(&victim.send(addr, "GET", "/register", &[JSON], ""));
    let left = victim.send(addr, "POST", own["leave_url"].as_str().unwrap(), &[], "");
    assert_eq!(left.status, 200, "{}", left.body);
    assert_eq!(
        served.room.stats().waiting,
        1,
        "the visitor's own form works"
    );
}

/// Attack (on the applicant, by time): an applicant who comes back every 20 hours for a week
/// must keep one identity (their registration and booking are keyed by it), though a visitor
/// text is good for a day only; one who stays away two days comes back as a new visitor.
#[test]
fn a_visitor_who_keeps_coming_back_keeps_one_identity() {
    let clock = ManualClock::new();
    // A real start date: visitor texts carry Unix times.
    clock.advance(Duration::from_secs(1_800_000_000));
    let served = serve_layer_on(clock.clone(), 100, |b| b);
    let addr = served.addr.as_str();
    let mut v = Visitor::default();
    let first = v.send(addr, "GET", "/register", &[], "");
    assert_eq!(first.status, 200, "{}", first.body);
    let me = first.body.clone();
    let mut renewals = 0;
    for visit in 1..=8 {
        clock.advance(Duration::from_secs(20 * 3600));
        let before = v.0.get("sg_visitor").cloned();
        let page = v.send(addr, "GET", "/register", &[], "");
        assert_eq!(page.body, me, "visit {visit} (after {}h)", visit * 20);
        renewals += usize::from(v.0.get("sg_visitor") != before.as_ref());
    }
    assert_eq!(
        renewals, 8,
        "every return past half a day renews the visitor text"
    );
    // Half an hour later: the text is young, nothing to renew.
    clock.advance(Duration::from_secs(1800));
    let before = v.0.get("sg_visitor").cloned();
    assert_eq!(v.send(addr, "GET", "/register", &[], "").body, me);
    assert_eq!(v.0.get("sg_visitor"), before.as_ref());
    // Two days away: the text has expired; the visitor is somebody new.
    clock.advance(Duration::from_secs(48 * 3600));
    let page = v.send(addr, "GET", "/register", &[], "");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_ne!(page.body, me, "an expired visitor text was accepted");
}

/// Attack: take a visitor text that is past its first half-day and present it from a page of
/// another site: the renewal is never set on a cross-site request.
#[test]
fn a_renewal_is_never_set_on_a_cross_site_request() {
    let clock = ManualClock::new();
    clock.advance(Duration::from_secs(1_800_000_000));
    let served = serve_layer_on(clock.clone(), 100, |b| b);
    let addr = served.addr.as_str();
    let mut v = Visitor::default();
    assert_eq!(v.send(addr, "GET", "/register", &[], "").status, 200);
    clock.advance(Duration::from_secs(13 * 3600));
    let linked = v.send(addr, "GET", "/register", &[CROSS_SITE], "");
    assert_eq!(linked.status, 200, "{}", linked.body);
    assert!(
        set_cookies(&linked).is_empty(),
        "{:?}",
        set_cookies(&linked)
    );
    let own = v.send(addr, "GET", "/register", &[], "");
    assert!(
        set_cookies(&own)
            .iter()
            .any(|c| c.starts_with("sg_visitor=")),
        "renewed on the site's own request: {:?}",
        set_cookies(&own)
    );
}

/// Attack: one holder of an IPv6 /48 (65 536 /64s) takes a new /64 for every new identity.
#[test]
fn an_ipv6_48_is_bounded_as_a_whole() {
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
    // Sixteen times the limit for the whole /48 (32 at once, then one every 1.875 s), though
    // each of its /64s would allow two: 48 asked from 24 /64s.
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    for n in 0..24u32 {
        for host in 1..=2 {
            statuses.push(from(&format!("2001:db8:7:{n:x}::{host}")));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let given = statuses.iter().filter(|s| **s == 200).count();
    assert!(statuses[..32].iter().all(|s| *s == 200), "{statuses:?}");
    let replenished = (elapsed / 1.875).ceil() as usize;
    assert!(
        given <= 32 + replenished,
        "{given} in {elapsed:.1} s: {statuses:?}"
    );
    assert!(given < 48, "the /48 has had its share: {statuses:?}");
    assert_eq!(from("2001:db8:8::1"), 200, "the next /48 is another holder");
    assert_eq!(from("192.0.2.1"), 200, "IPv4 is counted by address alone");
}

/// Attack: send `GET https://host/…` (absolute form) over plain HTTP, or write
/// `X-Forwarded-Proto: https` in front of what the trusted proxy wrote, to be served as if
/// over HTTPS (or, with `http` last, to strip the cookies' `Secure`).
#[test]
fn only_a_trusted_proxys_own_forwarded_proto_makes_a_request_https() {
    let served = serve_layer(1000, |b| {
        b.peer_address(peer).trusted_proxies(["127.0.0.1"])
    });
    let untrusted = serve_layer(1000, |b| b.peer_address(peer));
    let secure = |addr: &str, target: &str, proto: Option<&str>| {
        let mut headers = vec![JSON];
        if let Some(p) = proto {
            headers.push(("X-Forwarded-Proto", p));
        }
        let mut v = Visitor::default();
        let reply = v.send(addr, "GET", target, &headers, "");
        assert!(reply.status == 200, "{}", reply.body);
        let cookies = set_cookies(&reply);
        assert!(!cookies.is_empty());
        cookies
            .iter()
            .all(|c| c.starts_with("__Host-") && c.contains("Secure"))
    };
    let s = served.addr.as_str();
    let absolute = format!("https://{s}/register");
    assert!(
        !secure(s, &absolute, None),
        "an absolute-form target decides nothing"
    );
    assert!(
        secure(s, "/register", Some("http, https")),
        "the proxy's own entry"
    );
    assert!(
        !secure(s, "/register", Some("https, http")),
        "the client's entry comes first"
    );
    let u = untrusted.addr.as_str();
    assert!(
        !secure(u, "/register", Some("https")),
        "an untrusted peer's header is its own"
    );
}

/// Attack: a shared cache (or the browser's) keeps an answer that set one visitor's pass and
/// identity, and hands it to the next visitor, who then goes in as the first.
#[test]
fn answers_that_set_a_visitors_cookies_are_never_stored() {
    let served = serve_layer(1000, |b| b);
    let addr = served.addr.as_str();
    let mut first = Visitor::default();
    let admitted = first.send(addr, "GET", "/register", &[], "");
    assert_eq!(admitted.status, 200, "{}", admitted.body);
    assert!(!set_cookies(&admitted).is_empty());
    assert_eq!(admitted.header("cache-control"), Some("private, no-store"));
    let mut second = Visitor::default();
    let waiting = second.send(addr, "GET", "/register", &[], "");
    assert!(!set_cookies(&waiting).is_empty());
    assert_eq!(waiting.header("cache-control"), Some("private, no-store"));
}
