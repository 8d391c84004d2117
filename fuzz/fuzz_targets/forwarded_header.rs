//! Client address resolution on arbitrary `Forwarded` / `X-Forwarded-For` bytes and
//! trusted-proxy sets: the headers come from whoever reaches the listener.
//!
//! Input, one item a line (text, so that seeds are readable and mutations stay
//! meaningful): the trusted networks, comma-separated; the TCP peer's address; then
//! header lines, `F:` for `Forwarded` and `X:` for `X-Forwarded-For`, whose bytes are
//! sent as they are (lines that are not valid header bytes are left out).
//!
//! Checks: an untrusted peer is the client whatever the headers say; a peer with no
//! forwarding header is the client; the answer is never an IPv4-mapped address.

#![no_main]

use hookwarden::http::network::ClientIpResolver;
use http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let trusted: Vec<IpNet> = std::str::from_utf8(lines.next().unwrap_or_default())
        .unwrap_or_default()
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let Some(peer) = std::str::from_utf8(lines.next().unwrap_or_default())
        .ok()
        .and_then(|p| p.trim().parse::<IpAddr>().ok())
    else {
        return;
    };
    let mut headers = HeaderMap::new();
    for line in lines {
        let name = match line.get(..2) {
            Some(b"F:") => http::header::FORWARDED,
            Some(b"X:") => HeaderName::from_static("x-forwarded-for"),
            _ => continue,
        };
        if let Ok(value) = HeaderValue::from_bytes(&line[2..]) {
            headers.append(name, value);
        }
    }
    let resolver = ClientIpResolver::new(trusted.clone());
    let client = resolver.client_ip(peer, &headers);
    let canonical_peer = peer.to_canonical();
    let peer_trusted = trusted
        .iter()
        .map(|n| normalize_net(*n))
        .any(|n| n.contains(&canonical_peer));
    if !peer_trusted || headers.is_empty() {
        assert_eq!(client, Some(canonical_peer), "the peer is the client here");
    }
    if let Some(ip) = client {
        assert_eq!(
            ip,
            ip.to_canonical(),
            "the client address is never IPv4-mapped"
        );
    }
});

/// `::ffff:a.b.c.d/n` (n ≥ 96) as `a.b.c.d/(n-96)`, as the resolver reads its configuration.
fn normalize_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net {
        if let Some(v4) = v6.network().to_ipv4_mapped() {
            if v6.prefix_len() >= 96 {
                if let Ok(n) = ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96) {
                    return IpNet::V4(n);
                }
            }
        }
    }
    net
}
