//! The loop guard: the candidate, `[legacy] secondary` and `[legacy]
//! primary` must not be the tapped service itself. In: the configuration;
//! out: the first URL that resolves to a `[capture] ports` port on an
//! address of this host (loopback, unspecified, or any interface's), as an
//! error. Replaying production's traffic back into production doubles its
//! writes, and what is replayed is captured again.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use crate::replay::config::Config;

/// The first configured URL that points back at the tapped service, with
/// why. Nothing is refused when no port is configured (the tapped service
/// is then not known) or a name does not resolve (its client says so).
pub fn refuse_loops(config: &Config) -> Result<(), String> {
    let ports = &config.capture.ports;
    if ports.is_empty() {
        return Ok(());
    }
    let urls = [
        ("candidate", config.candidate.url.as_deref()),
        ("[legacy] secondary", config.legacy.secondary.as_deref()),
        ("[legacy] primary", config.legacy.primary.as_deref()),
    ];
    let local = local_addresses();
    for (what, url) in urls {
        let Some(url) = url else { continue };
        if let Some(addr) = resolve(url).into_iter().find(|a| ports.contains(&a.port()) && is_local(a.ip(), &local)) {
            return Err(format!(
                "{what} {url} is the tapped service itself ({addr}: port {} is in [capture] ports, on an address \
                 of this host); replaying production's traffic back into production would double its writes",
                addr.port()
            ));
        }
    }
    Ok(())
}

/// The addresses `url`'s host resolves to, with its port (80 or 443 by
/// default); none when it is not a URL or does not resolve.
fn resolve(url: &str) -> Vec<SocketAddr> {
    let Ok(uri) = url.parse::<hyper::http::Uri>() else { return Vec::new() };
    let Some(host) = uri.host() else { return Vec::new() };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
    (host, port).to_socket_addrs().map(Iterator::collect).unwrap_or_default()
}

fn is_local(ip: IpAddr, local: &HashSet<IpAddr>) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    ip.is_loopback() || ip.is_unspecified() || local.contains(&ip)
}

/// Every address of every interface of this host (getifaddrs(3)).
fn local_addresses() -> HashSet<IpAddr> {
    let mut found = HashSet::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we only read and
    // then free with freeifaddrs; each ifa_addr is checked for null and
    // read as the sockaddr type its family says.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return found;
        }
        let mut entry = list;
        while !entry.is_null() {
            let addr = (*entry).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let v4 = &*(addr as *const libc::sockaddr_in);
                        found.insert(IpAddr::from(u32::from_be(v4.sin_addr.s_addr).to_be_bytes()));
                    }
                    libc::AF_INET6 => {
                        let v6 = &*(addr as *const libc::sockaddr_in6);
                        found.insert(IpAddr::from(v6.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            entry = (*entry).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        Config::parse(toml, "c").unwrap()
    }

    #[test]
    fn urls_on_the_tapped_port_of_this_host_are_refused() {
        let tapped = "[capture]\nports = [8080]\n";
        for url in ["http://127.0.0.1:8080", "http://localhost:8080/base", "http://[::1]:8080", "http://0.0.0.0:8080"] {
            let c = config(&format!("{tapped}[candidate]\nurl = \"{url}\"\n"));
            let err = refuse_loops(&c).unwrap_err();
            assert!(err.starts_with(&format!("candidate {url} is the tapped service")), "{err}");
        }
        let c = config(&format!(
            "{tapped}[candidate]\nurl = \"http://127.0.0.1:9090\"\n[legacy]\nprimary = \"http://127.0.0.2:8080\"\n"
        ));
        assert!(refuse_loops(&c).unwrap_err().starts_with("[legacy] primary"));
        let default_port = config("[capture]\nports = [80]\n[candidate]\nurl = \"http://127.0.0.1\"\n");
        assert!(refuse_loops(&default_port).is_err(), "port 80 by default");
    }

    #[test]
    fn other_ports_hosts_and_unknown_names_pass() {
        let ok = [
            "[capture]\nports = [8080]\n[candidate]\nurl = \"http://127.0.0.1:9090\"\n",
            "[capture]\nports = [8080]\n[candidate]\nurl = \"http://192.0.2.7:8080\"\n",
            "[candidate]\nurl = \"http://127.0.0.1:8080\"\n",
        ];
        for toml in ok {
            assert_eq!(refuse_loops(&config(toml)), Ok(()), "{toml}");
        }
    }
}
