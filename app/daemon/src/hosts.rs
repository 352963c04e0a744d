//! The master's live table of zombies seen on the LAN.
//!
//! Filled from mDNS; entries leave on an mDNS goodbye, or when the zombie
//! stops answering: every [`PROBE_INTERVAL`] the master opens (and at once
//! closes) a TCP connection to each zombie's session port, and after
//! [`PROBE_FAILURES`] failures in a row removes it and asks mDNS to verify
//! the record, which flushes it from the cache. (mDNS alone would keep a
//! crashed zombie for its 120 s TTL.)

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use zos_netproto::Fingerprint;
use zos_netproto::discovery::{Change, HostInfo};

use crate::error::{DaemonError, Result};

/// Time between liveness probes.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// Failed probes in a row before a zombie is considered gone.
pub const PROBE_FAILURES: u32 = 2;
/// Time allowed for one probe's TCP connect.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

struct Tracked {
    info: HostInfo,
    failures: u32,
}

/// Zombies currently visible.
#[derive(Default)]
pub struct HostTable {
    hosts: Mutex<BTreeMap<String, Tracked>>,
}

impl HostTable {
    /// Applies a discovery change.
    pub fn apply(&self, change: Change) {
        let mut hosts = self.hosts.lock();
        match change {
            Change::Up(info) => {
                if !hosts.contains_key(&info.instance) {
                    tracing::info!(
                        "zombie {} appeared at {:?} port {}",
                        info.name,
                        info.addrs,
                        info.port
                    );
                }
                hosts.insert(info.instance.clone(), Tracked { info, failures: 0 });
            }
            Change::Down { instance } => {
                if let Some(t) = hosts.remove(&instance) {
                    tracing::info!("zombie {} left (mDNS goodbye)", t.info.name);
                }
            }
        }
    }

    /// The current list, sorted by name.
    pub fn list(&self) -> Vec<HostInfo> {
        let mut v: Vec<HostInfo> = self.hosts.lock().values().map(|t| t.info.clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name).then(a.instance.cmp(&b.instance)));
        v
    }

    /// Finds the address of `query`: `ip:port`, or a zombie's name,
    /// instance, or fingerprint prefix.
    pub fn resolve(&self, query: &str) -> Result<(SocketAddr, Option<HostInfo>)> {
        if let Ok(addr) = query.parse::<SocketAddr>() {
            let info = self
                .list()
                .into_iter()
                .find(|h| h.port == addr.port() && h.addrs.contains(&addr.ip()));
            return Ok((addr, info));
        }
        let matches: Vec<HostInfo> = self
            .list()
            .into_iter()
            .filter(|h| {
                h.name == query
                    || h.instance == query
                    || h.instance
                        .trim_end_matches(zos_netproto::SERVICE_TYPE)
                        .trim_end_matches('.')
                        == query
                    || Fingerprint(h.fingerprint.clone()).matches(query)
            })
            .collect();
        match matches.len() {
            0 => Err(DaemonError::User(format!(
                "no zombie called {query:?} is visible on the LAN (`zos hosts` lists them; an ip:port works too)"
            ))),
            1 => {
                let h = matches.into_iter().next().expect("one");
                let ip = best_address(&h.addrs).ok_or_else(|| {
                    DaemonError::User(format!("zombie {} advertises no address", h.name))
                })?;
                Ok((SocketAddr::new(ip, h.port), Some(h)))
            }
            n => Err(DaemonError::User(format!(
                "{query:?} matches {n} zombies ({}); use the fingerprint",
                matches
                    .iter()
                    .map(|h| format!("{} {}", h.name, h.fingerprint))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Probes every zombie once; returns the instances found gone.
    pub async fn probe(&self) -> Vec<String> {
        let targets: Vec<(String, Option<SocketAddr>)> = self
            .hosts
            .lock()
            .values()
            .map(|t| {
                (
                    t.info.instance.clone(),
                    best_address(&t.info.addrs).map(|ip| SocketAddr::new(ip, t.info.port)),
                )
            })
            .collect();
        let mut gone = Vec::new();
        for (instance, addr) in targets {
            let alive = match addr {
                Some(addr) => matches!(
                    tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await,
                    Ok(Ok(_))
                ),
                None => false,
            };
            let mut hosts = self.hosts.lock();
            let Some(t) = hosts.get_mut(&instance) else {
                continue;
            };
            if alive {
                t.failures = 0;
            } else {
                t.failures += 1;
                if t.failures >= PROBE_FAILURES {
                    tracing::info!("zombie {} stopped answering; removed", t.info.name);
                    hosts.remove(&instance);
                    gone.push(instance);
                }
            }
        }
        gone
    }
}

/// Prefers a routable IPv4 address, then IPv6, then loopback.
pub fn best_address(addrs: &[IpAddr]) -> Option<IpAddr> {
    addrs
        .iter()
        .find(|a| a.is_ipv4() && !a.is_loopback())
        .or_else(|| {
            addrs
                .iter()
                .find(|a| !a.is_loopback() && !is_link_local_v6(a))
        })
        .or_else(|| addrs.first())
        .copied()
}

fn is_link_local_v6(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, fp: &str, ip: &str) -> HostInfo {
        HostInfo {
            instance: format!("{name}-x._zos._tcp.local."),
            name: name.into(),
            host: "h".into(),
            version: 1,
            fingerprint: fp.into(),
            addrs: vec![ip.parse().unwrap()],
            port: 4000,
            cores: 2,
            load1: 0.1,
            mem_free_mib: 100,
            levels: vec![],
            dominated: None,
            revoked: false,
        }
    }

    #[test]
    fn resolves_by_name_fingerprint_and_address() {
        let t = HostTable::default();
        t.apply(Change::Up(host(
            "z1",
            "aaaa-bbbb-cccc-dddd-eeee",
            "10.0.0.2",
        )));
        t.apply(Change::Up(host(
            "z2",
            "aaab-0000-cccc-dddd-eeee",
            "10.0.0.3",
        )));
        assert_eq!(t.resolve("z1").unwrap().0, "10.0.0.2:4000".parse().unwrap());
        assert_eq!(
            t.resolve("aaab").unwrap().0,
            "10.0.0.3:4000".parse().unwrap()
        );
        assert!(t.resolve("aaa").is_err(), "too short a prefix");
        assert!(t.resolve("nope").is_err());
        assert_eq!(
            t.resolve("10.9.9.9:1").unwrap().0,
            "10.9.9.9:1".parse().unwrap()
        );
        t.apply(Change::Down {
            instance: "z1-x._zos._tcp.local.".into(),
        });
        assert_eq!(t.list().len(), 1);
    }

    #[test]
    fn prefers_routable_ipv4() {
        let addrs: Vec<IpAddr> = vec![
            "fe80::1".parse().unwrap(),
            "127.0.0.1".parse().unwrap(),
            "10.1.1.1".parse().unwrap(),
        ];
        assert_eq!(best_address(&addrs), Some("10.1.1.1".parse().unwrap()));
    }
}
