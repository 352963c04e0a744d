//! Finding zombies on the LAN: mDNS advertisement and browsing of
//! `_zos._tcp.local.` (the paper's ZAP).
//!
//! A zombie's TXT record carries: `v` (protocol version), `fp` (key
//! fingerprint), `host` (host name), `name` (instance name), `cores`, `load`
//! (1-minute load average), `mem` (free memory, MiB), `levels` (control
//! levels offered, comma-separated) and `dom` (empty when free, else
//! `LEVEL:MASTER`: the level and name of the master dominating it). The
//! zombie re-announces whenever these change, so a master's list stays live.

use std::collections::BTreeSet;
use std::net::IpAddr;

use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::trust::Level;
use crate::{PROTOCOL_VERSION, SERVICE_TYPE};

/// Which interfaces mDNS uses.
#[derive(Clone, Debug, Default)]
pub enum Interfaces {
    /// Every multicast-capable interface (the normal case).
    #[default]
    All,
    /// Only these interfaces, by name (`lo` included if named).
    Only(Vec<String>),
}

/// What a zombie advertises about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Advert {
    /// Instance name (`zos zombie --name`).
    pub name: String,
    /// The machine's host name.
    pub host: String,
    /// Key fingerprint.
    pub fingerprint: String,
    /// TCP port of the session listener.
    pub port: u16,
    /// CPU cores.
    pub cores: u32,
    /// 1-minute load average.
    pub load1: f32,
    /// Free (available) memory in MiB.
    pub mem_free_mib: u64,
    /// Control levels offered.
    pub levels: Vec<Level>,
    /// The master dominating it, if any.
    pub dominated: Option<Domination>,
}

/// Who dominates a zombie, as it advertises.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domination {
    /// The dominating master's name.
    pub master: String,
    /// The level it holds.
    pub level: Level,
}

/// A zombie as a master sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    /// The mDNS instance full name (unique key).
    pub instance: String,
    /// Instance name.
    pub name: String,
    /// Host name.
    pub host: String,
    /// Protocol version it speaks.
    pub version: u16,
    /// Key fingerprint.
    pub fingerprint: String,
    /// Its addresses.
    pub addrs: Vec<IpAddr>,
    /// Its session port.
    pub port: u16,
    /// CPU cores.
    pub cores: u32,
    /// 1-minute load average.
    pub load1: f32,
    /// Free memory in MiB.
    pub mem_free_mib: u64,
    /// Control levels offered.
    pub levels: Vec<Level>,
    /// The master dominating it, if any.
    #[serde(default)]
    pub dominated: Option<Domination>,
    /// Set by a master paired with it: the zombie no longer trusts that
    /// master (its user revoked the pairing); pairing again is needed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revoked: bool,
}

/// A change seen by a [`Browser`].
#[derive(Clone, Debug)]
pub enum Change {
    /// A zombie appeared or its record changed.
    Up(HostInfo),
    /// A zombie said goodbye (or its record expired).
    Down {
        /// The instance full name.
        instance: String,
    },
}

fn daemon(interfaces: &Interfaces) -> Result<ServiceDaemon> {
    let d = ServiceDaemon::new()?;
    if let Interfaces::Only(names) = interfaces {
        d.disable_interface(IfKind::All)?;
        for n in names {
            if n == "lo" {
                d.enable_interface(IfKind::LoopbackV4)?;
            }
            d.enable_interface(IfKind::Name(n.clone()))?;
        }
    }
    Ok(d)
}

fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if out.is_empty() { "zos".into() } else { out }
}

/// A running advertisement of this zombie.
pub struct Advertiser {
    daemon: ServiceDaemon,
    fullname: String,
    last: Advert,
}

impl Advertiser {
    /// Starts advertising.
    pub fn start(advert: Advert, interfaces: &Interfaces) -> Result<Self> {
        let daemon = daemon(interfaces)?;
        let info = service_info(&advert)?;
        let fullname = info.get_fullname().to_string();
        daemon.register(info)?;
        Ok(Advertiser {
            daemon,
            fullname,
            last: advert,
        })
    }

    /// Re-announces if anything changed.
    pub fn update(&mut self, advert: Advert) -> Result<()> {
        if advert != self.last {
            self.daemon.register(service_info(&advert)?)?;
            self.last = advert;
        }
        Ok(())
    }

    /// Says goodbye on the network and stops.
    pub fn stop(self) {
        if let Ok(rx) = self.daemon.unregister(&self.fullname) {
            let _ = rx.recv_timeout(std::time::Duration::from_secs(2));
        }
        if let Ok(rx) = self.daemon.shutdown() {
            let _ = rx.recv_timeout(std::time::Duration::from_secs(2));
        }
    }
}

fn service_info(a: &Advert) -> Result<ServiceInfo> {
    let short_fp: String = a
        .fingerprint
        .chars()
        .filter(|c| *c != '-')
        .take(8)
        .collect();
    let instance = format!("{}-{}", sanitize(&a.name), short_fp);
    let hostname = format!("{instance}.local.");
    let levels = a
        .levels
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let props = [
        ("v", PROTOCOL_VERSION.to_string()),
        ("fp", a.fingerprint.clone()),
        ("host", a.host.clone()),
        ("name", a.name.clone()),
        ("cores", a.cores.to_string()),
        ("load", format!("{:.2}", a.load1)),
        ("mem", a.mem_free_mib.to_string()),
        ("levels", levels),
        (
            "dom",
            a.dominated
                .as_ref()
                .map(|d| format!("{}:{}", d.level, d.master))
                .unwrap_or_default(),
        ),
    ];
    let mut info = ServiceInfo::new(SERVICE_TYPE, &instance, &hostname, "", a.port, &props[..])?
        .enable_addr_auto();
    // Probing (RFC 6762 §8.1) guards against two hosts claiming one name; ours
    // embed the key fingerprint, so a clash would be a key collision. Skipping
    // it lets masters see a new zombie about 750 ms sooner.
    info.set_requires_probe(false);
    Ok(info)
}

/// Browses for zombies; changes arrive on the receiver.
pub struct Browser {
    daemon: ServiceDaemon,
}

impl Browser {
    /// Starts browsing. The receiver yields [`Change`]s.
    pub fn start(interfaces: &Interfaces) -> Result<(Self, std::sync::mpsc::Receiver<Change>)> {
        let daemon = daemon(interfaces)?;
        let events = daemon.browse(SERVICE_TYPE)?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("mdns-browse".into())
            .spawn(move || {
                while let Ok(event) = events.recv() {
                    let change = match event {
                        ServiceEvent::ServiceResolved(s) => match host_info(&s) {
                            Ok(h) => Change::Up(h),
                            Err(e) => {
                                tracing::warn!("ignoring zombie advert {}: {e}", s.get_fullname());
                                continue;
                            }
                        },
                        ServiceEvent::ServiceRemoved(_, fullname) => {
                            Change::Down { instance: fullname }
                        }
                        _ => continue,
                    };
                    if tx.send(change).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| Error::io("spawn mdns browser thread", e))?;
        Ok((Browser { daemon }, rx))
    }

    /// Asks the network whether an instance is still there; if it does not
    /// answer, its records are flushed and a `Down` follows.
    pub fn verify(&self, instance: &str) {
        let _ = self
            .daemon
            .verify(instance.to_string(), std::time::Duration::from_secs(2));
    }

    /// Stops browsing.
    pub fn stop(&self) {
        if let Ok(rx) = self.daemon.shutdown() {
            let _ = rx.recv_timeout(std::time::Duration::from_secs(2));
        }
    }
}

fn host_info(s: &mdns_sd::ResolvedService) -> Result<HostInfo> {
    let get = |k: &str| s.get_property_val_str(k).unwrap_or_default().to_string();
    let num = |k: &str| -> Result<u64> {
        get(k)
            .parse()
            .map_err(|_| Error::Malformed(format!("TXT {k}={:?}", get(k))))
    };
    let levels: BTreeSet<Level> = get("levels")
        .split(',')
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    let mut addrs: Vec<IpAddr> = s.get_addresses().iter().map(|a| a.to_ip_addr()).collect();
    addrs.sort();
    Ok(HostInfo {
        instance: s.get_fullname().to_string(),
        name: get("name"),
        host: get("host"),
        version: num("v")? as u16,
        fingerprint: get("fp"),
        addrs,
        port: s.get_port(),
        cores: num("cores")? as u32,
        load1: get("load").parse().unwrap_or(0.0),
        mem_free_mib: num("mem")?,
        levels: levels.into_iter().collect(),
        dominated: parse_domination(&get("dom")),
        revoked: false,
    })
}

/// Parses the `dom` TXT value (`LEVEL:MASTER`; empty when free).
fn parse_domination(text: &str) -> Option<Domination> {
    let (level, master) = text.split_once(':')?;
    Some(Domination {
        master: master.to_string(),
        level: level.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domination_txt_roundtrip() {
        assert_eq!(parse_domination(""), None);
        assert_eq!(parse_domination("bogus:laptop"), None);
        assert_eq!(
            parse_domination("partial:my:laptop"),
            Some(Domination {
                master: "my:laptop".into(),
                level: Level::Partial
            })
        );
    }
}
