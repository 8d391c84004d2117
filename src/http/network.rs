//! Client address resolution behind trusted proxies, and the IP allowlist.
//!
//! The address a request came from matters for one decision: the allowlist. The TCP
//! peer is the only address nobody can forge, so it is what we use unless the peer is
//! one of our own proxies (`network.trusted_proxies`). Only then are `Forwarded`
//! (RFC 7239) or `X-Forwarded-For` believed, and only as far as they were written by
//! trusted proxies: the chain is read from the right (each proxy appends the address
//! it received the request from), trusted proxies are skipped, and the first address
//! that is not a trusted proxy is the client. Everything to its left was written by
//! the client or by proxies we do not control and is ignored.
//!
//! When the entry we would use cannot be read (`unknown`, an obfuscated `_name`,
//! garbage), the answer is `None` and the guard refuses the request: guessing another
//! address could let a request through the allowlist.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, what a dual-stack socket reports
//! for an IPv4 client) are turned into IPv4 before any comparison, as are mapped
//! networks in the configuration, so that `192.0.2.0/24` matches either spelling.

use axum::http::{HeaderMap, HeaderName};
use ipnet::{IpNet, Ipv4Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest forwarding chain considered. Real chains have a handful of hops; a longer
/// one is a client padding the header, and refusing it bounds the parsing work.
pub const MAX_CHAIN: usize = 64;

/// `X-Forwarded-For`, which `http` has no constant for.
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The address in its canonical form: IPv4-mapped IPv6 becomes IPv4.
fn normalize(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The network in its canonical form: `::ffff:a.b.c.d/n` (n ≥ 96) becomes `a.b.c.d/(n-96)`.
fn normalize_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net {
        if let Some(v4) = v6.network().to_ipv4_mapped() {
            if v6.prefix_len() >= 96 {
                if let Ok(n) = Ipv4Net::new(v4, v6.prefix_len() - 96) {
                    return IpNet::V4(n);
                }
            }
        }
    }
    net
}

/// True when `ip` (already normalised) is inside one of `nets` (already normalised).
fn contains(nets: &[IpNet], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(&ip))
}

/// One hop of a forwarding chain: an address, or something that is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    Addr(IpAddr),
    Unusable,
}

/// Finds the client address of a request.
#[derive(Debug, Clone)]
pub struct ClientIpResolver {
    trusted: Vec<IpNet>,
}

impl ClientIpResolver {
    pub fn new(trusted_proxies: Vec<IpNet>) -> Self {
        ClientIpResolver {
            trusted: trusted_proxies.into_iter().map(normalize_net).collect(),
        }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        contains(&self.trusted, ip)
    }

    /// The client address: the TCP peer, or, when the peer is a trusted proxy, the first untrusted
    /// address walking `Forwarded` / `X-Forwarded-For` from the right. `None` when a trusted proxy
    /// sent a header that cannot be parsed.
    ///
    /// `Forwarded` wins when present, even if it holds no usable `for=`: a proxy that
    /// writes `Forwarded` may pass a client's `X-Forwarded-For` through untouched.
    /// When every address in the chain is a trusted proxy, the leftmost is the client
    /// (the request started inside our own network). A chain longer than
    /// [`MAX_CHAIN`] gives `None`. The result is normalised (never IPv4-mapped).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = normalize(peer);
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let chain = if headers.contains_key(axum::http::header::FORWARDED) {
            forwarded_chain(headers)?
        } else if headers.contains_key(&X_FORWARDED_FOR) {
            x_forwarded_for_chain(headers)?
        } else {
            return Some(peer);
        };
        if chain.is_empty() {
            // A header with only blanks and commas: nothing was forwarded, so the peer
            // is the client.
            return Some(peer);
        }
        for hop in chain.iter().rev() {
            match *hop {
                Hop::Unusable => return None,
                Hop::Addr(a) if self.is_trusted(a) => continue,
                Hop::Addr(a) => return Some(a),
            }
        }
        // Every hop is a trusted proxy (and usable: an unusable one returned above).
        match chain.first() {
            Some(Hop::Addr(leftmost)) => Some(*leftmost),
            _ => None,
        }
    }
}

/// Pushes `hop` unless the chain is already at [`MAX_CHAIN`]; `None` then.
fn push(chain: &mut Vec<Hop>, hop: Hop) -> Option<()> {
    if chain.len() >= MAX_CHAIN {
        return None;
    }
    chain.push(hop);
    Some(())
}

/// The hops of every `X-Forwarded-For` line, in order. `None` when a line is not
/// visible ASCII (its entries cannot be placed) or the chain is too long.
fn x_forwarded_for_chain(headers: &HeaderMap) -> Option<Vec<Hop>> {
    let mut chain = Vec::new();
    for line in headers.get_all(&X_FORWARDED_FOR) {
        let line = line.to_str().ok()?;
        for entry in line.split(',').map(str::trim) {
            // Empty list elements are ignored (RFC 9110 §5.6.1).
            if entry.is_empty() {
                continue;
            }
            push(
                &mut chain,
                parse_node(entry).map_or(Hop::Unusable, Hop::Addr),
            )?;
        }
    }
    Some(chain)
}

/// The `for=` of every `Forwarded` element, in order, over every line. An element
/// without a readable `for=` is an unusable hop.
fn forwarded_chain(headers: &HeaderMap) -> Option<Vec<Hop>> {
    let mut chain = Vec::new();
    for line in headers.get_all(axum::http::header::FORWARDED) {
        let line = line.to_str().ok()?;
        // A quoted string never spans two header lines: each line is split on its own,
        // so an unbalanced quote sent by the client cannot swallow the entries that
        // our proxy appended on a later line.
        for element in split_unquoted(line, ',') {
            if element.trim().is_empty() {
                continue;
            }
            push(&mut chain, forwarded_for(element))?;
        }
    }
    Some(chain)
}

/// The hop named by the `for=` parameter of one `Forwarded` element.
fn forwarded_for(element: &str) -> Hop {
    let mut found = None;
    for pair in split_unquoted(element, ';') {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let Some((name, value)) = pair.split_once('=') else {
            return Hop::Unusable;
        };
        if !name.trim().eq_ignore_ascii_case("for") {
            continue;
        }
        if found.is_some() {
            // Two `for=` in one element: which one is meant is a guess.
            return Hop::Unusable;
        }
        found = Some(
            unquote(value.trim())
                .and_then(|v| parse_node(&v))
                .map_or(Hop::Unusable, Hop::Addr),
        );
    }
    found.unwrap_or(Hop::Unusable)
}

/// Splits on `sep` outside double-quoted strings (a backslash escapes inside them).
fn split_unquoted(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut in_quotes = false;
    let mut escaped = false;
    s.split(move |c: char| {
        if escaped {
            escaped = false;
            return false;
        }
        match c {
            '\\' if in_quotes => {
                escaped = true;
                false
            }
            '"' => {
                in_quotes = !in_quotes;
                false
            }
            c => c == sep && !in_quotes,
        }
    })
}

/// A `token` as is, or a `quoted-string` without its quotes and escapes.
/// `None` for a malformed quoted string.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return (!value.contains('"') && !value.is_empty()).then(|| value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// A node as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`,
/// `[2001:db8::1]:4711`, or a bare `2001:db8::1` (not RFC 7239, but written by some
/// proxies in `X-Forwarded-For`). `unknown`, obfuscated names and anything else: `None`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(normalize(ip));
    }
    let ip = if let Some(rest) = node.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !after.is_empty() {
            valid_port(after.strip_prefix(':')?).then_some(())?;
        }
        IpAddr::V6(inside.parse::<Ipv6Addr>().ok()?)
    } else {
        let (host, port) = node.split_once(':')?;
        valid_port(port).then_some(())?;
        IpAddr::V4(host.parse::<Ipv4Addr>().ok()?)
    };
    Some(normalize(ip))
}

/// A port as RFC 7239 allows it: a number, or an obfuscated `_name`.
fn valid_port(port: &str) -> bool {
    if let Some(obf) = port.strip_prefix('_') {
        return !obf.is_empty()
            && obf
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-');
    }
    (1..=5).contains(&port.len())
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok()
}

/// Networks allowed to call; empty allows every address.
#[derive(Debug, Clone)]
pub struct IpAllowlist {
    nets: Vec<IpNet>,
}

impl IpAllowlist {
    pub fn new(nets: Vec<IpNet>) -> Self {
        IpAllowlist {
            nets: nets.into_iter().map(normalize_net).collect(),
        }
    }
    /// True when the list is empty or one of its networks holds `ip` (IPv4-mapped
    /// addresses are compared as IPv4).
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.nets.is_empty() || contains(&self.nets, normalize(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().expect("net")).collect()
    }

    /// Trusts the load balancers in 10.0.0.0/8 and fd00::/8.
    fn resolver() -> ClientIpResolver {
        ClientIpResolver::new(nets(&["10.0.0.0/8", "fd00::/8"]))
    }

    fn headers(lines: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in lines {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        h
    }

    fn xff(value: &str) -> HeaderMap {
        headers(&[("X-Forwarded-For", value)])
    }

    fn fwd(value: &str) -> HeaderMap {
        headers(&[("Forwarded", value)])
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_the_headers_say() {
        let r = resolver();
        let peer = ip("203.0.113.7");
        for h in [
            HeaderMap::new(),
            xff("198.51.100.1"),
            xff("10.0.0.1"),
            xff("garbage"),
            fwd("for=198.51.100.1"),
            fwd("for=unknown"),
            headers(&[("X-Forwarded-For", &vec!["1.2.3.4"; 200].join(","))]),
        ] {
            assert_eq!(r.client_ip(peer, &h), Some(peer), "{h:?}");
        }
        // Nothing is trusted by default: the peer, always.
        let none = ClientIpResolver::new(Vec::new());
        assert_eq!(
            none.client_ip(ip("10.0.0.1"), &xff("198.51.100.1")),
            Some(ip("10.0.0.1"))
        );
    }

    #[test]
    fn trusted_peer_without_headers_is_the_client() {
        assert_eq!(
            resolver().client_ip(ip("10.1.2.3"), &HeaderMap::new()),
            Some(ip("10.1.2.3"))
        );
    }

    #[test]
    fn x_forwarded_for_from_a_trusted_peer() {
        let r = resolver();
        let lb = ip("10.0.0.5");
        assert_eq!(
            r.client_ip(lb, &xff("198.51.100.1")),
            Some(ip("198.51.100.1"))
        );
        // The client prepended a spoofed address: the rightmost untrusted one wins.
        assert_eq!(
            r.client_ip(lb, &xff("1.1.1.1, 198.51.100.1")),
            Some(ip("198.51.100.1"))
        );
        assert_eq!(
            r.client_ip(lb, &xff("1.1.1.1,198.51.100.1")),
            Some(ip("198.51.100.1"))
        );
    }

    #[test]
    fn multiple_trusted_hops_are_skipped() {
        let r = resolver();
        assert_eq!(
            r.client_ip(
                ip("10.0.0.5"),
                &xff("6.6.6.6, 198.51.100.1, 10.9.9.9, 10.8.8.8")
            ),
            Some(ip("198.51.100.1"))
        );
        // Several header lines are one list, in order.
        let h = headers(&[
            ("X-Forwarded-For", "6.6.6.6, 198.51.100.1"),
            ("X-Forwarded-For", "10.9.9.9"),
        ]);
        assert_eq!(r.client_ip(ip("10.0.0.5"), &h), Some(ip("198.51.100.1")));
        let h = headers(&[
            ("X-Forwarded-For", "198.51.100.1"),
            ("X-Forwarded-For", "6.6.6.6, 10.9.9.9"),
        ]);
        assert_eq!(r.client_ip(ip("10.0.0.5"), &h), Some(ip("6.6.6.6")));
    }

    #[test]
    fn every_hop_trusted_gives_the_leftmost() {
        let r = resolver();
        assert_eq!(
            r.client_ip(ip("10.0.0.5"), &xff("10.1.1.1, 10.2.2.2")),
            Some(ip("10.1.1.1"))
        );
        assert_eq!(
            r.client_ip(ip("10.0.0.5"), &fwd("for=10.1.1.1, for=10.2.2.2")),
            Some(ip("10.1.1.1"))
        );
    }

    #[test]
    fn unusable_entries_give_none_where_they_would_be_used() {
        let r = resolver();
        let lb = ip("10.0.0.5");
        for bad in [
            "unknown",
            "_hidden",
            "garbage",
            "1.2.3",
            "1.2.3.4:99999",
            "[::1",
            "fe80::1%eth0",
            "1.2.3.4, nonsense",
        ] {
            assert_eq!(r.client_ip(lb, &xff(bad)), None, "xff {bad}");
        }
        for bad in [
            "for=unknown",
            "for=_hidden",
            "for=\"_hidden:_port\"",
            "for=garbage",
            "proto=https",
            "for",
            "for=\"1.2.3.4",
            "for=1.2.3.4;for=5.6.7.8",
            "for=\"[2001:db8::1]:99999\"",
        ] {
            assert_eq!(r.client_ip(lb, &fwd(bad)), None, "forwarded {bad}");
        }
        // Behind a trusted hop, the bad entry is still the one we would use.
        assert_eq!(r.client_ip(lb, &xff("unknown, 10.2.2.2")), None);
        // Left of the client, garbage is never looked at.
        assert_eq!(
            r.client_ip(lb, &xff("garbage, 198.51.100.1")),
            Some(ip("198.51.100.1"))
        );
        assert_eq!(
            r.client_ip(lb, &fwd("for=unknown, for=198.51.100.1")),
            Some(ip("198.51.100.1"))
        );
    }

    #[test]
    fn forwarded_syntax() {
        let r = resolver();
        let lb = ip("10.0.0.5");
        let cases = [
            ("for=198.51.100.1", "198.51.100.1"),
            ("For=198.51.100.1", "198.51.100.1"),
            ("FOR=198.51.100.1;proto=https;by=10.0.0.5", "198.51.100.1"),
            ("proto=https; for=198.51.100.1", "198.51.100.1"),
            ("for=\"198.51.100.1:4711\"", "198.51.100.1"),
            ("for=198.51.100.1:4711", "198.51.100.1"),
            ("for=\"198.51.100.1:_port\"", "198.51.100.1"),
            ("for=\"[2001:db8::1]:4711\"", "2001:db8::1"),
            ("for=\"[2001:db8::1]\"", "2001:db8::1"),
            ("for=\"\\[2001:db8::1\\]\"", "2001:db8::1"),
            ("for=6.6.6.6, for=198.51.100.1", "198.51.100.1"),
            ("for=6.6.6.6,for=198.51.100.1;proto=https", "198.51.100.1"),
            ("for=198.51.100.1, for=10.1.1.1;by=\"x,y\"", "198.51.100.1"),
            ("for=198.51.100.1, , for=10.1.1.1", "198.51.100.1"),
        ];
        for (value, want) in cases {
            assert_eq!(r.client_ip(lb, &fwd(value)), Some(ip(want)), "{value}");
        }
        // Several lines, in order.
        let h = headers(&[
            ("Forwarded", "for=6.6.6.6"),
            ("forwarded", "for=198.51.100.1, for=10.3.3.3"),
        ]);
        assert_eq!(r.client_ip(lb, &h), Some(ip("198.51.100.1")));
        // A quote left open by the client on its line does not swallow our proxy's line.
        let h = headers(&[
            ("Forwarded", "for=\"6.6.6.6"),
            ("Forwarded", "for=198.51.100.1"),
        ]);
        assert_eq!(r.client_ip(lb, &h), Some(ip("198.51.100.1")));
        // ... and on the same line it makes the entry unusable, never another address.
        assert_eq!(
            r.client_ip(lb, &fwd("for=\"6.6.6.6, for=198.51.100.1")),
            None
        );
    }

    #[test]
    fn forwarded_is_preferred_over_x_forwarded_for() {
        let r = resolver();
        let h = headers(&[
            ("X-Forwarded-For", "6.6.6.6"),
            ("Forwarded", "for=198.51.100.1"),
        ]);
        assert_eq!(r.client_ip(ip("10.0.0.5"), &h), Some(ip("198.51.100.1")));
        // Even when Forwarded carries no usable address: never fall back to a header
        // the proxy may have passed through from the client.
        let h = headers(&[
            ("X-Forwarded-For", "198.51.100.1"),
            ("Forwarded", "proto=https"),
        ]);
        assert_eq!(r.client_ip(ip("10.0.0.5"), &h), None);
    }

    #[test]
    fn ipv6_chains() {
        let r = resolver();
        let lb = ip("fd00::5");
        assert_eq!(
            r.client_ip(lb, &xff("2001:db8::1")),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            r.client_ip(lb, &xff("2001:db8::1, fd00::9")),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            r.client_ip(lb, &xff("[2001:db8::1]:4711")),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            r.client_ip(lb, &xff("[2001:db8::1]")),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            r.client_ip(lb, &fwd("for=\"[2001:db8::1]:4711\", for=\"[fd00::9]\"")),
            Some(ip("2001:db8::1"))
        );
        // A mixed chain: an IPv4 client behind an IPv6 proxy.
        assert_eq!(
            r.client_ip(lb, &xff("198.51.100.1, fd00::9")),
            Some(ip("198.51.100.1"))
        );
    }

    #[test]
    fn ipv4_mapped_addresses_are_normalised() {
        let r = resolver();
        // A dual-stack socket reports the IPv4 load balancer as ::ffff:10.0.0.5.
        let mapped_lb = ip("::ffff:10.0.0.5");
        assert_eq!(
            r.client_ip(mapped_lb, &xff("198.51.100.1")),
            Some(ip("198.51.100.1"))
        );
        assert_eq!(
            r.client_ip(mapped_lb, &HeaderMap::new()),
            Some(ip("10.0.0.5"))
        );
        // An untrusted mapped peer comes back as plain IPv4.
        assert_eq!(
            r.client_ip(ip("::ffff:203.0.113.7"), &xff("1.1.1.1")),
            Some(ip("203.0.113.7"))
        );
        // Mapped entries in the chain: a trusted hop is skipped, the client is IPv4.
        assert_eq!(
            r.client_ip(ip("10.0.0.5"), &xff("::ffff:198.51.100.1, ::ffff:10.9.9.9")),
            Some(ip("198.51.100.1"))
        );
        assert_eq!(
            r.client_ip(ip("10.0.0.5"), &fwd("for=\"[::ffff:198.51.100.1]:80\"")),
            Some(ip("198.51.100.1"))
        );
        // A trusted network written in mapped form matches IPv4 peers.
        let m = ClientIpResolver::new(nets(&["::ffff:10.0.0.0/104"]));
        assert_eq!(
            m.client_ip(ip("10.0.0.5"), &xff("198.51.100.1")),
            Some(ip("198.51.100.1"))
        );
    }

    #[test]
    fn chains_longer_than_the_bound_are_refused() {
        let r = resolver();
        let lb = ip("10.0.0.5");
        let at_bound = vec!["198.51.100.1"; MAX_CHAIN].join(",");
        assert_eq!(r.client_ip(lb, &xff(&at_bound)), Some(ip("198.51.100.1")));
        let over = vec!["198.51.100.1"; MAX_CHAIN + 1].join(",");
        assert_eq!(r.client_ip(lb, &xff(&over)), None);
        let over = vec!["for=198.51.100.1"; MAX_CHAIN + 1].join(",");
        assert_eq!(r.client_ip(lb, &fwd(&over)), None);
        // Split over lines counts the same.
        let line = vec!["198.51.100.1"; MAX_CHAIN / 2 + 1].join(",");
        let h = headers(&[("X-Forwarded-For", &line), ("X-Forwarded-For", &line)]);
        assert_eq!(r.client_ip(lb, &h), None);
    }

    #[test]
    fn empty_lists_mean_nothing_was_forwarded() {
        let r = resolver();
        assert_eq!(r.client_ip(ip("10.0.0.5"), &xff("")), Some(ip("10.0.0.5")));
        assert_eq!(
            r.client_ip(ip("10.0.0.5"), &xff(" , ,")),
            Some(ip("10.0.0.5"))
        );
    }

    #[test]
    fn non_ascii_header_from_a_trusted_peer_is_refused() {
        let r = resolver();
        let mut h = HeaderMap::new();
        h.insert(
            X_FORWARDED_FOR.clone(),
            HeaderValue::from_bytes(b"198.51.100.1\xff").expect("value"),
        );
        assert_eq!(r.client_ip(ip("10.0.0.5"), &h), None);
    }

    #[test]
    fn allowlist() {
        let any = IpAllowlist::new(Vec::new());
        assert!(any.allows(ip("203.0.113.7")));
        assert!(any.allows(ip("2001:db8::1")));

        let a = IpAllowlist::new(nets(&["198.51.100.0/24", "2001:db8::/32"]));
        assert!(a.allows(ip("198.51.100.1")));
        assert!(a.allows(ip("::ffff:198.51.100.1")));
        assert!(a.allows(ip("2001:db8::1")));
        assert!(!a.allows(ip("198.51.101.1")));
        assert!(!a.allows(ip("2001:db9::1")));
        assert!(!a.allows(ip("::ffff:198.51.101.1")));

        let mapped = IpAllowlist::new(nets(&["::ffff:198.51.100.0/120"]));
        assert!(mapped.allows(ip("198.51.100.9")));
        assert!(!mapped.allows(ip("198.51.101.9")));
    }
}
