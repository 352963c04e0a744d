//! A small LAN on this machine: one network namespace per host, each joined
//! by a veth pair to a bridge that lives in a namespace of its own.
//!
//! Names are `zos-<pid>x<n>-<host>` and `zos-<pid>x<n>-br`: the creating
//! process's id makes them unique between test processes and lets
//! [`remove_stale`] delete what crashed runs left behind. Addresses
//! (`10.231.<n>.0/24`) exist only inside the namespaces; nothing is
//! configured in the root namespace.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

use super::host::Host;

static NEXT_LAN: AtomicU32 = AtomicU32::new(0);
static STALE: Once = Once::new();

/// Runs `ip ARGS` and panics with its stderr if it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Runs `ip ARGS` and returns its stdout; errors are ignored (cleanup paths).
pub fn ip_quiet(args: &[&str]) -> String {
    Command::new("ip")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Names of all network namespaces.
pub fn namespaces() -> Vec<String> {
    ip_quiet(&["netns", "list"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The pid encoded in a harness namespace name (`zos-<pid>x<n>-<host>`).
pub fn owner_pid(ns: &str) -> Option<i32> {
    let rest = ns.strip_prefix("zos-")?;
    let (id, host) = rest.split_once('-')?;
    let (pid, n) = id.split_once('x')?;
    let ok = !host.is_empty()
        && host.chars().all(|c| c.is_ascii_alphanumeric())
        && !n.is_empty()
        && n.chars().all(|c| c.is_ascii_digit());
    if ok { pid.parse().ok() } else { None }
}

/// Kills every process inside `ns` (all of them were started by the harness
/// in a namespace it made) and deletes the namespace.
pub fn destroy_namespace(ns: &str) {
    for pid in ip_quiet(&["netns", "pids", ns]).split_whitespace() {
        if let Ok(pid) = pid.parse::<i32>() {
            // SAFETY: kill(2) on a process living in a namespace this
            // harness created; no memory is involved.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let _ = Command::new("ip").args(["netns", "del", ns]).output();
}

/// Deletes namespaces and temp dirs of harness processes that no longer run.
pub fn remove_stale() {
    for ns in namespaces() {
        if let Some(pid) = owner_pid(&ns) {
            if !super::pid_alive(pid) {
                eprintln!("[harness] removing stale namespace {ns} (pid {pid} is gone)");
                destroy_namespace(&ns);
            }
        }
    }
    super::tmp::remove_stale();
}

/// The test LAN. Dropping it kills what runs in it, deletes its namespaces
/// and its hosts' directories, and prints the hosts' logs if the test failed.
pub struct Lan {
    /// `<pid>x<n>`, unique to this LAN.
    pub id: String,
    /// The namespace holding the bridge `br0`.
    pub bridge_ns: String,
    /// Its hosts, in the order given.
    pub hosts: Vec<Host>,
}

impl Lan {
    /// Builds a LAN with one host per label (short lowercase names such as
    /// `m`, `z1`, `z2`).
    pub fn new(labels: &[&str]) -> Lan {
        super::require_root();
        STALE.call_once(remove_stale);
        let n = NEXT_LAN.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}x{n}", std::process::id());
        let subnet = (n % 250 + 1) as u8;
        let bridge_ns = format!("zos-{id}-br");
        let mut lan = Lan {
            id: id.clone(),
            bridge_ns: bridge_ns.clone(),
            hosts: Vec::new(),
        };
        // From here on, a panic drops `lan`, which removes what exists.
        ip(&["netns", "add", &bridge_ns]);
        ip(&["-n", &bridge_ns, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &bridge_ns,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        ip(&["-n", &bridge_ns, "link", "set", "br0", "up"]);
        for (i, label) in labels.iter().enumerate() {
            assert!(
                !label.is_empty()
                    && label.len() <= 8
                    && label.chars().all(|c| c.is_ascii_alphanumeric()),
                "host label {label:?}: 1-8 ASCII letters or digits"
            );
            let ns = format!("zos-{id}-{label}");
            let addr = Ipv4Addr::new(10, 231, subnet, i as u8 + 2);
            let port = format!("v-{label}");
            ip(&["netns", "add", &ns]);
            let host = Host::new(label, &ns, addr, &bridge_ns, &port);
            lan.hosts.push(host);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            // No duplicate-address detection delay for IPv6 link-local addresses.
            super::host::write_sysctl(&ns, "net/ipv6/conf/default/accept_dad", "0");
            ip(&[
                "-n", &bridge_ns, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            ip(&["-n", &bridge_ns, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &bridge_ns, "link", "set", &port, "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &ns, "link", "set", "eth0", "multicast", "on", "up"]);
            ip(&["-n", &ns, "route", "add", "224.0.0.0/4", "dev", "eth0"]);
        }
        lan
    }

    /// The host with this label.
    pub fn host(&self, label: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.label == label)
            .unwrap_or_else(|| panic!("no host {label:?} in this LAN"))
    }

    /// Prints every host's logs to stderr.
    pub fn dump_logs(&self) {
        for h in &self.hosts {
            h.dump_logs();
        }
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("ZOS_E2E_LOGS").is_some() {
            eprintln!("\n===== logs of LAN {} =====", self.id);
            self.dump_logs();
        }
        for h in &self.hosts {
            destroy_namespace(&h.ns);
        }
        destroy_namespace(&self.bridge_ns);
        // The hosts' temp dirs go when `hosts` drops, after this.
    }
}
