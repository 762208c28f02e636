//! Which IP addresses are on the public internet, for the image downloader: image URLs come from
//! clients, so unless `ALLOW_PRIVATE_IMAGE_URLS` is on it connects only to public addresses
//! (literals in the URL, every address a name resolves to, every redirect). A client must not
//! make the proxy fetch from its loopback, LAN, link-local (cloud metadata) or CGNAT neighbours.
//!
//! The rule, from the IANA special-purpose address registries (RFC 6890 and its updates):
//! - IPv4: public unless in one of [`V4_SPECIAL`] (this network, private, shared CGNAT,
//!   loopback, link-local, IETF protocol assignments, documentation, the deprecated 6to4 relay
//!   anycast, benchmarking, multicast, reserved and broadcast).
//! - IPv6 forms that carry an IPv4 address are judged by that address: IPv4-mapped
//!   (`::ffff:0:0/96`), IPv4-translated (`::ffff:0:0:0/96`), IPv4-compatible (`::/96`, which also
//!   holds `::` and `::1`), NAT64's well-known prefix (`64:ff9b::/96`: `64:ff9b::a9fe:a9fe` *is*
//!   the metadata address on a NAT64 host) and 6to4 (`2002::/16`).
//! - Other IPv6: public only inside global unicast (`2000::/3`) and outside [`V6_SPECIAL`]. That
//!   leaves out at once ULA, link-local, site-local (`fec0::/10`), multicast, discard-only,
//!   local-use NAT64 (`64:ff9b:1::/48`, whose layout varies) and SRv6 SIDs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// IPv4 blocks that are not public.
pub const V4_SPECIAL: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network"
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // shared address space (CGNAT)
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local (cloud metadata)
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments (DS-Lite, NAT64 discovery)
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation (TEST-NET-1)
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // 6to4 relay anycast (deprecated)
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation (TEST-NET-3)
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, and the broadcast address
];

/// IPv6 blocks inside `2000::/3` that are not public.
pub const V6_SPECIAL: &[(Ipv6Addr, u8)] = &[
    // IETF protocol assignments: Teredo (2001::/32), benchmarking, ORCHID, anycast services.
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),     // documentation (RFC 9637)
];

/// Whether an address is on the public internet (see the module doc for the rule).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !V4_SPECIAL.iter().any(|(net, len)| in_v4(v4, *net, *len)),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                in_v6(v6, Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3)
                    && !V6_SPECIAL.iter().any(|(net, len)| in_v6(v6, *net, *len))
            }
        },
    }
}

/// The IPv4 address an IPv6 address carries, for the forms that carry one.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let o = v6.octets();
    let low = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    let zeros = |n: usize| s[..n].iter().all(|x| *x == 0);
    if zeros(5) && s[5] == 0xffff {
        return Some(low); // IPv4-mapped
    }
    if zeros(4) && s[4] == 0xffff && s[5] == 0 {
        return Some(low); // IPv4-translated
    }
    if zeros(6) {
        return Some(low); // IPv4-compatible (and :: and ::1)
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|x| *x == 0) {
        return Some(low); // NAT64 well-known prefix
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])); // 6to4
    }
    None
}

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// The IP literal of a URL's host when it is not public (names are checked when resolved).
pub fn private_literal(url: &str) -> Option<IpAddr> {
    let parsed = url::Url::parse(url).ok()?;
    let ip = match parsed.host()? {
        url::Host::Ipv4(v4) => IpAddr::V4(v4),
        url::Host::Ipv6(v6) => IpAddr::V6(v6),
        url::Host::Domain(_) => return None,
    };
    (!is_public(ip)).then_some(ip)
}

/// Refuses an image URL whose host is a private IP literal, unless allowed (names are checked
/// by the downloader's DNS, [`public_addrs`]).
pub(super) fn check_image_url(allow_private: bool, url: &str) -> Result<(), String> {
    match private_literal(url) {
        Some(ip) if !allow_private => Err(format!(
            "{ip} is a private or local address; set ALLOW_PRIVATE_IMAGE_URLS=true to allow it"
        )),
        _ => Ok(()),
    }
}

/// What the image client does with a redirect to `target` after `hops` earlier ones: never
/// toward a private IP literal (names go through the image DNS), and at most ten.
pub(super) enum ImageRedirect {
    Follow,
    Stop,
    Refuse(String),
}

pub(super) fn image_redirect(target: &str, hops: usize) -> ImageRedirect {
    match private_literal(target) {
        Some(ip) => ImageRedirect::Refuse(format!("redirected to the private address {ip}")),
        None if hops >= 10 => ImageRedirect::Stop,
        None => ImageRedirect::Follow,
    }
}

/// The image downloader's DNS: `host`'s public addresses; an error when it has none.
pub(super) async fn public_addrs(host: String) -> Result<Vec<SocketAddr>, String> {
    let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
        .await
        .map_err(|e| format!("could not resolve {host}: {e}"))?
        .collect();
    let public: Vec<SocketAddr> = all.iter().copied().filter(|a| is_public(a.ip())).collect();
    if public.is_empty() && !all.is_empty() {
        return Err(format!(
            "{host} resolves only to private or local addresses; set ALLOW_PRIVATE_IMAGE_URLS=true to allow them"
        ));
    }
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row per block of the IANA registries (and the forms that embed IPv4), with an address
    /// inside it and the verdict; public neighbours at the edges.
    const TABLE: &[(&str, bool, &str)] = &[
        // IPv4 special-purpose registry
        ("0.0.0.0", false, "this host"),
        ("0.1.2.3", false, "this network"),
        ("10.1.2.3", false, "private"),
        ("100.64.0.1", false, "CGNAT"),
        ("100.127.255.254", false, "CGNAT, last"),
        ("100.128.0.1", true, "past CGNAT"),
        ("127.0.0.1", false, "loopback"),
        ("127.255.255.254", false, "loopback, last"),
        ("169.254.169.254", false, "link-local: cloud metadata"),
        ("172.16.0.1", false, "private"),
        ("172.31.255.254", false, "private, last"),
        ("172.32.0.1", true, "past 172.16/12"),
        ("192.0.0.8", false, "IETF protocol assignments"),
        ("192.0.0.170", false, "NAT64 discovery"),
        ("192.0.2.1", false, "TEST-NET-1"),
        ("192.88.99.1", false, "6to4 relay anycast"),
        ("192.168.1.1", false, "private"),
        ("198.18.0.1", false, "benchmarking"),
        ("198.19.255.254", false, "benchmarking, last"),
        ("198.20.0.1", true, "past benchmarking"),
        ("198.51.100.7", false, "TEST-NET-2"),
        ("203.0.113.7", false, "TEST-NET-3"),
        ("224.0.0.251", false, "multicast"),
        ("239.255.255.250", false, "multicast"),
        ("240.0.0.1", false, "reserved"),
        ("255.255.255.255", false, "broadcast"),
        ("1.1.1.1", true, "public"),
        ("8.8.8.8", true, "public"),
        ("223.255.255.254", true, "public, last before multicast"),
        // IPv6 special-purpose registry
        ("::", false, "unspecified"),
        ("::1", false, "loopback"),
        ("::ffff:127.0.0.1", false, "IPv4-mapped loopback"),
        ("::ffff:169.254.169.254", false, "IPv4-mapped metadata"),
        ("::ffff:8.8.8.8", true, "IPv4-mapped public"),
        ("::ffff:0:10.0.0.1", false, "IPv4-translated private"),
        ("::7f00:1", false, "IPv4-compatible loopback"),
        ("::a9fe:a9fe", false, "IPv4-compatible metadata"),
        ("::808:808", true, "IPv4-compatible public"),
        ("64:ff9b::a9fe:a9fe", false, "NAT64 well-known: metadata"),
        ("64:ff9b::7f00:1", false, "NAT64 well-known: loopback"),
        ("64:ff9b::808:808", true, "NAT64 well-known: public"),
        ("64:ff9b:1::a9fe:a9fe", false, "NAT64 local-use"),
        ("100::1", false, "discard-only"),
        ("2001::1", false, "Teredo"),
        ("2001:2::1", false, "benchmarking"),
        ("2001:20::1", false, "ORCHIDv2"),
        ("2001:1ff:ffff::1", false, "IETF protocol assignments, last"),
        ("2001:200::1", true, "past 2001::/23"),
        ("2001:db8::1", false, "documentation"),
        ("3fff::1", false, "documentation (RFC 9637)"),
        ("2002:7f00:1::1", false, "6to4 of loopback"),
        ("2002:a9fe:a9fe::1", false, "6to4 of metadata"),
        ("2002:c0a8:101::1", false, "6to4 of 192.168.1.1"),
        ("2002:808:808::1", true, "6to4 of 8.8.8.8"),
        ("5f00::1", false, "SRv6 SIDs"),
        ("fc00::1", false, "unique local"),
        ("fd12:3456::1", false, "unique local"),
        ("fe80::1", false, "link-local"),
        ("fec0::1", false, "site-local (deprecated)"),
        ("ff02::1", false, "multicast"),
        ("4000::1", false, "outside global unicast"),
        ("2606:4700::1111", true, "public"),
        ("2a00:1450:4001::200e", true, "public"),
    ];

    #[test]
    fn the_special_purpose_registries() {
        let wrong: Vec<String> = TABLE
            .iter()
            .filter(|(ip, public, _)| is_public(ip.parse().expect(ip)) != *public)
            .map(|(ip, public, what)| format!("{ip} ({what}): expected public={public}"))
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn literals_in_urls() {
        assert!(private_literal("https://169.254.169.254/latest").is_some());
        assert!(private_literal("https://[::1]:8443/x.png").is_some());
        assert!(private_literal("https://[64:ff9b::a9fe:a9fe]/x.png").is_some());
        assert!(private_literal("https://[2002:7f00:1::1]/x.png").is_some());
        assert!(private_literal("https://8.8.8.8/x.png").is_none());
        // WHATWG URL parsing turns other IPv4 spellings into the address itself.
        assert!(private_literal("https://2130706433/x.png").is_some());
        assert!(private_literal("https://0x7f.1/x.png").is_some());
        assert!(
            private_literal("https://localhost/x.png").is_none(),
            "names: at resolve time"
        );
    }

    #[test]
    fn image_redirects_never_reach_private_literals_and_stop_after_ten() {
        assert!(matches!(
            image_redirect("https://169.254.169.254/x", 0),
            ImageRedirect::Refuse(why) if why.contains("169.254.169.254")
        ));
        assert!(matches!(
            image_redirect("https://cdn.example/x", 9),
            ImageRedirect::Follow
        ));
        assert!(matches!(
            image_redirect("https://cdn.example/x", 10),
            ImageRedirect::Stop
        ));
    }

    #[tokio::test]
    async fn the_image_dns_refuses_names_of_private_addresses() {
        let err = public_addrs("localhost".into())
            .await
            .expect_err("loopback only");
        assert!(err.contains("ALLOW_PRIVATE_IMAGE_URLS"), "{err}");
    }
}
