//! Who the client is, as far as the layer can tell: the connection's peer, or, when that peer
//! is one of the portal's own proxies (`trusted_proxies`, as CIDRs), the nearest address in
//! `X-Forwarded-For` that is not; and the keys under which new identities are counted (a
//! whole /64 for IPv6, which one subscriber usually holds, and also its /48).

use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use http::HeaderMap;

/// The most `X-Forwarded-For` entries read (a longer chain is a client's own invention).
const MAX_FORWARDED_HOPS: usize = 16;

/// A block of addresses: an address and the length of its network prefix, e.g. `10.0.0.0/8`
/// or `2001:db8::/32`. A bare address is a block of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

/// Why a text is not a [`Cidr`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an address block: give one like \"10.0.0.0/8\", \"2001:db8::/32\" or \"127.0.0.1\""
)]
pub struct CidrError(pub String);

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, CidrError> {
        let bad = || CidrError(text.to_owned());
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let network: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix_len = match len {
            Some(len) if len.bytes().all(|b| b.is_ascii_digit()) && !len.is_empty() => {
                len.parse::<u8>().map_err(|_| bad())?
            }
            Some(_) => return Err(bad()),
            None => max,
        };
        if prefix_len > max {
            return Err(bad());
        }
        Ok(Cidr {
            network: masked(network, prefix_len),
            prefix_len,
        })
    }
}

impl Cidr {
    /// Whether `addr` is in this block (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        addr.is_ipv4() == self.network.is_ipv4() && masked(addr, self.prefix_len) == self.network
    }
}

/// `addr` with every bit past the first `prefix_len` cleared.
fn masked(addr: IpAddr, prefix_len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix_len))
                .unwrap_or(0);
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix_len))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & mask))
        }
    }
}

/// An IPv4-mapped IPv6 address as IPv4; any other address as it is.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `peer` is one of the trusted proxies.
pub(super) fn trusted(peer: Option<IpAddr>, proxies: &[Cidr]) -> bool {
    peer.is_some_and(|peer| proxies.iter().any(|c| c.contains(peer)))
}

/// The client's address: `peer` itself, unless it is a trusted proxy; then the rightmost
/// `X-Forwarded-For` entry that is not a trusted proxy (each proxy appends the address it saw,
/// so entries left of the first untrusted one are the client's to invent). `None` when the
/// peer is unknown, or trusted but the header names no usable address.
pub(super) fn client(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    proxies: &[Cidr],
) -> Option<IpAddr> {
    let peer = peer.map(canonical)?;
    if !trusted(Some(peer), proxies) {
        return Some(peer);
    }
    let mut hops: Vec<&str> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let text = value.to_str().ok()?;
        hops.extend(text.split(',').map(str::trim));
        if hops.len() > MAX_FORWARDED_HOPS {
            return None;
        }
    }
    for hop in hops.iter().rev() {
        let addr = canonical(hop.parse::<IpAddr>().ok()?);
        if !trusted(Some(addr), proxies) {
            return Some(addr);
        }
    }
    None
}

/// The key new identities are counted under: an IPv4 address, or an IPv6 address's /64.
pub(super) fn limit_key(addr: IpAddr) -> IpAddr {
    match canonical(addr) {
        v4 @ IpAddr::V4(_) => v4,
        v6 => masked(v6, 64),
    }
}

/// The coarser key an IPv6 address's new identities are also counted under: its /48 (what
/// one site usually holds: 65 536 /64s). `None` for IPv4.
pub(super) fn wide_key(addr: IpAddr) -> Option<IpAddr> {
    match canonical(addr) {
        IpAddr::V4(_) => None,
        v6 => Some(masked(v6, 48)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn blocks_parse_and_contain_what_they_should() {
        let ten: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(ten.contains(ip("10.200.3.4")) && !ten.contains(ip("11.0.0.1")));
        assert!(ten.contains(ip("::ffff:10.1.2.3")), "mapped IPv4");
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")) && !all.contains(ip("::1")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "x/8",
            "10.0.0/8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_client_is_the_nearest_untrusted_hop() {
        let proxies: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.1.1.1, 203.0.113.9, 10.0.0.7"),
        );
        let proxy = Some(ip("10.0.0.2"));
        assert_eq!(client(proxy, &headers, &proxies), Some(ip("203.0.113.9")));
        // An untrusted peer's header is its own invention: the peer is the client.
        assert_eq!(
            client(Some(ip("198.51.100.1")), &headers, &proxies),
            Some(ip("198.51.100.1"))
        );
        assert_eq!(client(None, &headers, &proxies), None);
        headers.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(client(proxy, &headers, &proxies), None);
        headers.remove("x-forwarded-for");
        assert_eq!(client(proxy, &headers, &proxies), None);
    }

    #[test]
    fn ipv6_is_counted_by_its_64() {
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("2001:db8:1:2:ffff::9")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(limit_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(wide_key(ip("2001:db8:1:ffff::9")), Some(ip("2001:db8:1::")));
        assert_eq!(wide_key(ip("::ffff:192.0.2.7")), None);
    }
}
