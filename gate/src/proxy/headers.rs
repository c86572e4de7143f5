//! What the gate changes in the headers it passes on: hop-by-hop headers removed both ways,
//! the client's `Surgegate-*` headers removed, `X-Forwarded-For`/`-Proto`/`-Host` set, and the
//! client's address, believed from `X-Forwarded-For` only through trusted proxies.

use std::net::IpAddr;

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};

/// The headers of one connection, never forwarded (RFC 9110, 7.6.1), besides those the
/// `Connection` header names.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
];
/// The most entries of `X-Forwarded-For` read.
const MAX_FORWARDED_HOPS: usize = 32;

/// The forwarding headers a client could send to pose as someone else.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// The scheme the client used, as the first proxy saw it.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// The host the client asked for, as the first proxy saw it.
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Removes hop-by-hop headers; with `upgrade`, keeps `Upgrade` and a `Connection: upgrade`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .filter(|n| !(upgrade && n == header::UPGRADE))
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// Removes every `Surgegate-*` header (only the gate speaks them to the upstream).
pub fn strip_surgegate(headers: &mut HeaderMap) {
    let ours: Vec<HeaderName> = headers
        .keys()
        .filter(|n| n.as_str().starts_with("surgegate-"))
        .cloned()
        .collect();
    for name in ours {
        headers.remove(name);
    }
}

/// Whether the request asks for a protocol upgrade (a WebSocket).
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// The bytes of the header names and values (the size limit's measure).
pub fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum()
}

/// How the gate sees one request's origin.
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    /// The connection's peer.
    pub peer: IpAddr,
    /// The client: the peer, or, through trusted proxies, the address they name.
    pub client: IpAddr,
    /// Whether the peer is a trusted proxy.
    pub trusted: bool,
    /// Whether a trusted proxy's `X-Forwarded-For` named the client: `false` when an entry
    /// the walk reached is not an address. The gate then refuses the request (`400`) rather
    /// than count it as the proxy, whose one bucket every visitor behind it would share.
    pub forwarded_ok: bool,
    /// Whether the site is served over HTTPS for this request.
    pub https: bool,
}

/// Who sent the request, by the peer and (when the peer is trusted) `X-Forwarded-For`: the
/// last address in the chain that is not itself a trusted proxy.
pub fn origin(
    headers: &HeaderMap,
    peer: IpAddr,
    trusted: &[ipnet::IpNet],
    tls: bool,
    served_over_https: bool,
) -> Origin {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer_trusted = is_trusted(&peer);
    let mut client = peer;
    let mut forwarded_ok = true;
    if peer_trusted {
        // Only the right end of the chain is the trusted proxies' word (each appends the
        // address it saw); the left end is whatever the client wrote. So the walk starts at the
        // right and reads at most MAX_FORWARDED_HOPS entries: a client that sends a long chain
        // cannot push the entry its proxy appended out of reach.
        let entries: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for text in entries.iter().rev().take(MAX_FORWARDED_HOPS) {
            let Ok(ip) = text.parse::<IpAddr>() else {
                // A malformed hop within the trusted part names nobody: no client is known.
                client = peer;
                forwarded_ok = false;
                break;
            };
            client = ip;
            if !is_trusted(&ip) {
                break;
            }
        }
    }
    let forwarded_https = peer_trusted
        && headers
            .get_all(X_FORWARDED_PROTO)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            // The last entry is the one the trusted proxy itself wrote; any before it came from
            // further out, where a client may have written what it liked.
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    Origin {
        peer,
        client,
        trusted: peer_trusted,
        forwarded_ok,
        https: tls || served_over_https || forwarded_https,
    }
}

/// Sets `X-Forwarded-For`/`-Proto`/`-Host` for the upstream: a trusted proxy's chain is kept
/// and the peer appended; anyone else's forwarding headers are replaced.
pub fn set_forwarded(headers: &mut HeaderMap, origin: &Origin, host: Option<HeaderValue>) {
    let kept_chain = if origin.trusted {
        let parts: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    } else {
        None
    };
    let forwarded_host = headers
        .get(X_FORWARDED_HOST)
        .cloned()
        .filter(|_| origin.trusted);
    headers.remove(X_FORWARDED_FOR);
    headers.remove(X_FORWARDED_HOST);
    headers.remove(X_FORWARDED_PROTO);
    headers.remove(header::FORWARDED);
    headers.remove("x-real-ip");
    let chain = match kept_chain {
        Some(chain) => format!("{chain}, {}", origin.peer),
        None => origin.peer.to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&chain) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    let proto = if origin.https { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if let Some(host) = forwarded_host.or(host) {
        headers.insert(X_FORWARDED_HOST, host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut h = map(&[
            ("connection", "close, x-secret"),
            ("x-secret", "1"),
            ("keep-alive", "5"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        let mut h = map(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        assert!(wants_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.get("upgrade").unwrap(), "websocket");
        assert_eq!(h.get("connection").unwrap(), "upgrade");
    }

    #[test]
    fn surgegate_headers_from_clients_are_removed() {
        let mut h = map(&[
            ("surgegate-visitor", "1"),
            ("Surgegate-Command", "finish"),
            ("sg-pass", "p"),
        ]);
        strip_surgegate(&mut h);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn forwarded_headers_are_believed_only_from_trusted_proxies() {
        let lb: ipnet::IpNet = "10.0.0.0/8".parse().unwrap();
        let h = map(&[
            ("x-forwarded-for", "203.0.113.9, 10.1.1.1"),
            ("x-forwarded-proto", "https"),
        ]);
        let from_lb = origin(&h, "10.2.2.2".parse().unwrap(), &[lb], false, false);
        assert_eq!(from_lb.client, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert!(from_lb.https && from_lb.trusted);
        let direct = origin(&h, "198.51.100.7".parse().unwrap(), &[lb], false, false);
        assert_eq!(direct.client, direct.peer);
        assert!(!direct.https && !direct.trusted);
        let garbage = map(&[("x-forwarded-for", "1.2.3.4, not-an-ip")]);
        let g = origin(&garbage, "10.2.2.2".parse().unwrap(), &[lb], false, false);
        assert!(!g.forwarded_ok, "a malformed hop names nobody");
        assert!(from_lb.forwarded_ok && direct.forwarded_ok);
        // A client that writes a long chain of its own cannot push out of reach the entry
        // its proxy appended: the walk starts at the right end.
        let mut long: Vec<String> = (0..40).map(|n| format!("192.0.2.{n}")).collect();
        long.push("203.0.113.9".to_owned());
        let long = map(&[("x-forwarded-for", long.join(", ").as_str())]);
        let l = origin(&long, "10.2.2.2".parse().unwrap(), &[lb], false, false);
        assert_eq!(l.client, "203.0.113.9".parse::<IpAddr>().unwrap());

        let mut out = h.clone();
        set_forwarded(
            &mut out,
            &direct,
            Some(HeaderValue::from_static("portal.example")),
        );
        assert_eq!(out.get("x-forwarded-for").unwrap(), "198.51.100.7");
        assert_eq!(out.get("x-forwarded-proto").unwrap(), "http");
        assert_eq!(out.get("x-forwarded-host").unwrap(), "portal.example");
        let mut out = h.clone();
        set_forwarded(&mut out, &from_lb, None);
        assert_eq!(
            out.get("x-forwarded-for").unwrap(),
            "203.0.113.9, 10.1.1.1, 10.2.2.2"
        );
        assert_eq!(out.get("x-forwarded-proto").unwrap(), "https");
    }
}
