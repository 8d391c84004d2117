//! Values whose mistakes need a message of their own: listen addresses and client
//! networks. serde's own ("invalid socket address syntax") names neither the value nor
//! what to write instead.

use super::parse::{nested, Step};
use ipnet::IpNet;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use std::net::{IpAddr, SocketAddr};

/// An IP address and port (`0.0.0.0:8443`, `[::]:8443`); a host name is refused with a
/// hint, since a listener binds an address, not a name.
pub(super) fn listen_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|_| {
        let hint = match text.rsplit_once(':') {
            Some((host, port)) if host.parse::<IpAddr>().is_err() && port.parse::<u16>().is_ok() => {
                format!(" (a host name is not accepted: write its address, e.g. 127.0.0.1:{port} for localhost, or 0.0.0.0:{port} for every interface)")
            }
            _ => " (an IP address and a port, e.g. 0.0.0.0:8443 or [::]:8443)".to_owned(),
        };
        D::Error::custom(format!("'{text}' is not an address and port{hint}"))
    })
}

/// A list of client networks (`10.0.0.0/8`, `2001:db8::/32`, or one address).
pub(super) fn networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    let items = Vec::<String>::deserialize(d)?;
    items
        .iter()
        .enumerate()
        .map(|(i, text)| network(text).map_err(|m| nested(&[Step::Index(i)], &m)))
        .collect()
}

/// [`networks`] for a key that may be absent.
pub(super) fn some_networks<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<IpNet>>, D::Error> {
    networks(d).map(Some)
}

/// One network. An address alone is that one host; a network with host bits set
/// (`10.0.0.1/8`) is refused, since it is unclear whether the network or the host was meant.
/// Every network a user writes is read here (`allow_ips`, `trusted_proxies`, the `ip`
/// condition of inline rules).
pub fn network(text: &str) -> Result<IpNet, String> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    let net: IpNet = text.parse().map_err(|_| {
        format!("'{text}' is not a network such as 10.0.0.0/8 or 2001:db8::/32, nor an address such as 192.0.2.7")
    })?;
    if net.trunc() != net {
        return Err(format!(
            "'{text}' has host bits set: write {} for the network, or {} for the one address",
            net.trunc(),
            IpNet::from(net.addr())
        ));
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::network;

    #[test]
    fn networks_are_read_with_messages_that_name_the_value() {
        assert_eq!(
            network("10.0.0.0/8").map(|n| n.to_string()),
            Ok("10.0.0.0/8".into())
        );
        assert_eq!(
            network("192.0.2.7").map(|n| n.to_string()),
            Ok("192.0.2.7/32".into())
        );
        assert_eq!(network("::1").map(|n| n.to_string()), Ok("::1/128".into()));
        let host_bits = network("10.0.0.1/8").unwrap_err();
        assert!(
            host_bits.contains("'10.0.0.1/8' has host bits set"),
            "{host_bits}"
        );
        assert!(
            host_bits.contains("10.0.0.0/8") && host_bits.contains("10.0.0.1/32"),
            "{host_bits}"
        );
        let garbage = network("10.0.0/8x").unwrap_err();
        assert!(garbage.contains("'10.0.0/8x'"), "{garbage}");
    }
}
