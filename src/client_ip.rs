//! The client's address: the TCP peer, or, when the peer is a trusted proxy
//! (`server.trusted_proxies`), the right-most untrusted address it forwarded. Limits and logs
//! both use it.

use std::net::IpAddr;

/// An address range, `"10.0.0.0/8"`, `"::1"` or `"192.0.2.7"` (a single address is a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses an address or `address/prefix`; the error says what is expected.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let expected = || format!("{raw:?} is not an IP address or CIDR range like \"10.0.0.0/8\"");
        let (addr, prefix) = match raw.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (raw.trim(), None),
        };
        let network: IpAddr = addr.parse().map_err(|_| expected())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(expected)?,
            None => max,
        };
        Ok(Self { network, prefix })
    }

    /// Whether `ip` lies in this range (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(net.to_bits()),
                u128::from(ip.to_bits()),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(net.to_bits(), ip.to_bits(), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the first `prefix` of `width` bits agree.
fn prefix_eq(a: u128, b: u128, width: u8, prefix: u8) -> bool {
    let shift = u32::from(width - prefix.min(width));
    a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`, what a dual-stack socket reports) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The peers whose forwarding headers are believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// From parsed ranges.
    pub fn new(ranges: Vec<Cidr>) -> Self {
        Self(ranges)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client address of a request from `peer` with these headers. Without a trusted
    /// peer the headers are ignored (anyone can write them). Behind trusted proxies the chain
    /// is read from `X-Forwarded-For` (or, when absent, the `for=` of `Forwarded`, RFC 7239)
    /// from the right, skipping trusted proxies: the first address no trusted proxy vouches
    /// for is the client. Addresses left of it were written by the client and are not believed.
    pub fn client_ip(&self, peer: IpAddr, headers: &actix_web::http::header::HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if self.0.is_empty() || !self.trusts(peer) {
            return peer;
        }
        let chain = forwarded_chain(headers);
        let mut client = peer;
        for hop in chain.iter().rev() {
            // An unreadable entry (a proxy's obfuscated identifier, garbage from the client)
            // ends the walk at the last address a trusted proxy wrote.
            let Some(ip) = hop.map(canonical) else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// The client address of a request: `trusted` is the app's [`TrustedProxies`] (registered as
/// app data at start-up; none means no proxy is trusted). Without a peer (not a TCP request) the
/// unspecified address stands in.
pub fn resolve(
    peer: Option<std::net::SocketAddr>,
    headers: &actix_web::http::header::HeaderMap,
    trusted: Option<&TrustedProxies>,
) -> IpAddr {
    let peer = peer.map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |a| a.ip());
    match trusted {
        Some(trusted) => trusted.client_ip(peer, headers),
        None => canonical(peer),
    }
}

/// The forwarded addresses, left (client side) to right (nearest proxy); `None` for an entry
/// that is not an address.
fn forwarded_chain(headers: &actix_web::http::header::HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<Option<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(|s| parse_node(s.trim()))
        .collect();
    if !xff.is_empty() {
        return xff;
    }
    headers
        .get_all(actix_web::http::header::FORWARDED)
        .flat_map(|v| v.to_str().unwrap_or("for=?").split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_node(value.trim().trim_matches('"')))
            })
        })
        .collect()
}

/// An address as proxies write it: `192.0.2.7`, `192.0.2.7:4711`, `[2001:db8::1]:4711`, `2001:db8::1`.
fn parse_node(raw: &str) -> Option<IpAddr> {
    if let Ok(ip) = raw.parse() {
        return Some(ip);
    }
    if let Some(rest) = raw.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    raw.rsplit_once(':')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(ranges: &[&str]) -> TrustedProxies {
        TrustedProxies::new(ranges.iter().map(|r| Cidr::parse(r).unwrap()).collect())
    }

    #[test]
    fn ranges_parse_and_match() {
        let net = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.200.1.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.0.0.1")), "mapped IPv4 is IPv4");
        assert!(Cidr::parse("::1").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("192.0.2.1")));
        assert!(
            Cidr::parse("2001:db8::/32")
                .unwrap()
                .contains(ip("2001:db8:ffff::1"))
        );
        for bad in ["", "10.0.0.0/33", "::/129", "proxy.local", "10.0.0.0/x"] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            proxies(&[]).client_ip(ip("198.51.100.1"), &h),
            ip("198.51.100.1")
        );
        assert_eq!(
            proxies(&["10.0.0.0/8"]).client_ip(ip("198.51.100.1"), &h),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn the_right_most_untrusted_forwarded_address_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8"]);
        // The client forged the first entry; the proxy appended the real address.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        let h = headers(&[(
            "forwarded",
            "for=1.2.3.4, for=\"[2001:db8::7]:4711\";proto=https",
        )]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &h), ip("2001:db8::7"));
        let h = headers(&[("x-forwarded-for", "203.0.113.9, garbage")]);
        assert_eq!(
            trusted.client_ip(ip("10.0.0.1"), &h),
            ip("10.0.0.1"),
            "an unreadable hop stops at the trusted peer"
        );
        assert_eq!(
            trusted.client_ip(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1"),
            "no header: the proxy itself"
        );
    }
}
