//! Client address resolution behind trusted proxies, and the IP allowlist (being written).

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

/// Finds the client address of a request.
pub struct ClientIpResolver {}

impl ClientIpResolver {
    pub fn new(trusted_proxies: Vec<IpNet>) -> Self {
        let _ = trusted_proxies;
        todo!()
    }
    /// The client address: the TCP peer, or, when the peer is a trusted proxy, the first untrusted
    /// address walking `Forwarded` / `X-Forwarded-For` from the right. `None` when a trusted proxy
    /// sent a header that cannot be parsed.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> Option<IpAddr> {
        let _ = (peer, headers);
        todo!()
    }
}

/// Networks allowed to call; empty allows every address.
pub struct IpAllowlist {}

impl IpAllowlist {
    pub fn new(nets: Vec<IpNet>) -> Self {
        let _ = nets;
        todo!()
    }
    pub fn allows(&self, ip: IpAddr) -> bool {
        let _ = ip;
        todo!()
    }
}
