//! IP networks for `trusted_proxies`: parsing `addr` / `addr/prefix` and membership.

use std::net::IpAddr;

use crate::IpNet;

impl IpNet {
    /// Parses `"10.0.0.0/8"`, `"192.168.1.2"`, `"fd00::/8"`, `"::1"`. `None` for anything else
    /// (a prefix longer than the address, a host name).
    pub fn parse(text: &str) -> Option<IpNet> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
            Some(_) => return None,
            None => max,
        };
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    /// Whether `ip` is in this network. An IPv4 address written as IPv6 (`::ffff:10.0.0.1`, what a
    /// dual-stack socket reports) counts as the IPv4 address.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(*ip, IpAddr::V4),
            IpAddr::V4(_) => *ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_matches() {
        let lan = IpNet::parse("192.168.1.0/24").unwrap();
        assert!(lan.contains(&ip("192.168.1.77")));
        assert!(!lan.contains(&ip("192.168.2.1")));
        assert!(lan.contains(&ip("::ffff:192.168.1.5")));
        let one = IpNet::parse("10.1.2.3").unwrap();
        assert_eq!(one.prefix, 32);
        assert!(one.contains(&ip("10.1.2.3")) && !one.contains(&ip("10.1.2.4")));
        let all = IpNet::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(&ip("8.8.8.8")));
        assert!(!all.contains(&ip("::1")));
        let v6 = IpNet::parse("fd00::/8").unwrap();
        assert!(v6.contains(&ip("fd12::1")) && !v6.contains(&ip("fe80::1")));
        assert!(IpNet::parse("::1").unwrap().contains(&ip("::1")));
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "proxy.lan",
            "::/129",
            "1.2.3.4/ 8",
        ] {
            assert_eq!(IpNet::parse(bad), None, "{bad}");
        }
    }
}
