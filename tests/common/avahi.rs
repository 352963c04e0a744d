//! An independent mDNS observer: a private D-Bus system bus and an
//! avahi-daemon inside one host's namespace, queried with `avahi-browse`.
//!
//! avahi-daemon insists on `/run/avahi-daemon/pid`; it runs in the private
//! mount namespace that `ip netns exec` gives it, on a tmpfs mounted over
//! `/run` there, so nothing outside (the real `/run`, other tests) is touched.

use std::collections::BTreeMap;
use std::time::Duration;

use super::host::Host;
use super::poll;
use super::proc::Proc;
use super::tmp::TempDir;

/// A resolved service as `avahi-browse -rtp` prints it.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// Interface name.
    pub iface: String,
    /// `IPv4` or `IPv6`.
    pub proto: String,
    /// Instance name (unescaped).
    pub name: String,
    /// Host name (`x.local`).
    pub hostname: String,
    /// Address.
    pub address: String,
    /// Port.
    pub port: u16,
    /// TXT record keys and values.
    pub txt: BTreeMap<String, String>,
}

/// The running observer; stops both daemons and removes its files on drop.
pub struct Avahi<'h> {
    host: &'h Host,
    bus_address: String,
    // Field order is drop order: avahi first, then its bus, then the files.
    daemon: Proc,
    _bus: Proc,
    _dir: TempDir,
}

const DBUS_CONF: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=@SOCKET@</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
  </policy>
</busconfig>
"#;

const AVAHI_CONF: &str = "[server]
host-name=@HOST@
use-ipv4=yes
use-ipv6=no
allow-interfaces=eth0
enable-dbus=yes
ratelimit-interval-usec=0
ratelimit-burst=0

[wide-area]
enable-wide-area=no

[publish]
disable-publishing=@NOPUBLISH@
disable-user-service-publishing=@NOPUBLISH@
publish-workstation=no
publish-hinfo=no

[reflector]
enable-reflector=no
";

impl<'h> Avahi<'h> {
    /// Starts the bus and avahi-daemon in `host`'s namespace and waits until
    /// avahi reports that it is up. It only browses.
    pub fn start(host: &'h Host) -> Avahi<'h> {
        Self::start_with(host, false)
    }

    /// Like [`Avahi::start`]; with `publishing`, clients may publish
    /// services through it (see [`Avahi::publish`]).
    pub fn start_with(host: &'h Host, publishing: bool) -> Avahi<'h> {
        let dir = TempDir::new();
        let socket = dir.path().join("system_bus_socket");
        let dbus_conf = dir.path().join("dbus.conf");
        std::fs::write(
            &dbus_conf,
            DBUS_CONF.replace("@SOCKET@", socket.to_str().unwrap()),
        )
        .unwrap();
        let avahi_conf = dir.path().join("avahi-daemon.conf");
        std::fs::write(
            &avahi_conf,
            AVAHI_CONF
                .replace("@HOST@", &format!("obs-{}", host.label))
                .replace("@NOPUBLISH@", if publishing { "no" } else { "yes" }),
        )
        .unwrap();
        let bus_address = format!("unix:path={}", socket.display());

        let bus = host.spawn_program(
            "dbus-daemon",
            &[
                "--nofork",
                "--nopidfile",
                &format!("--config-file={}", dbus_conf.display()),
            ],
            &[],
        );
        let up = poll::until(Duration::from_secs(20), || socket.exists().then_some(()));
        assert!(
            up.is_some(),
            "dbus-daemon did not create {}\n{}",
            socket.display(),
            bus.log()
        );

        let script = format!(
            "mount -t tmpfs -o mode=0755 zos-e2e /run && mkdir /run/avahi-daemon && \
             exec avahi-daemon --no-drop-root --no-chroot --no-rlimits -f {}",
            avahi_conf.display()
        );
        let daemon = host.spawn_program(
            "sh",
            &["-c", &script],
            &[("DBUS_SYSTEM_BUS_ADDRESS", &bus_address)],
        );
        daemon.wait_log("Server startup complete", Duration::from_secs(20));
        Avahi {
            host,
            bus_address,
            daemon,
            _bus: bus,
            _dir: dir,
        }
    }

    /// Starts `avahi-publish -s NAME TYPE PORT TXT…` through this daemon and
    /// waits until it is established.
    pub fn publish(&self, name: &str, service_type: &str, port: u16, txt: &[&str]) -> Proc {
        let port = port.to_string();
        let mut args = vec!["-s", name, service_type, &port];
        args.extend_from_slice(txt);
        let p = self.host.spawn_program(
            "avahi-publish",
            &args,
            &[("DBUS_SYSTEM_BUS_ADDRESS", &self.bus_address)],
        );
        p.wait_log("Established", Duration::from_secs(20));
        p
    }

    /// One `avahi-browse -rtp TYPE`: every resolved instance seen.
    pub fn browse(&self, service_type: &str) -> Vec<Resolved> {
        let out = self.host.exec_env(
            "avahi-browse",
            &["-rtp", service_type],
            &[("DBUS_SYSTEM_BUS_ADDRESS", &self.bus_address)],
        );
        assert!(
            out.status.success(),
            "avahi-browse failed: {}\n--- avahi-daemon ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.daemon.log()
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(parse_resolved)
            .collect()
    }

    /// Browses until an instance named `name` is resolved, at most `timeout`.
    pub fn wait_for(&self, service_type: &str, name: &str, timeout: Duration) -> Option<Resolved> {
        poll::until(timeout, || {
            self.browse(service_type)
                .into_iter()
                .find(|r| r.name == name)
        })
    }

    /// Browses until an instance whose TXT record has `key=value` is
    /// resolved, at most `timeout`.
    pub fn wait_for_txt(
        &self,
        service_type: &str,
        key: &str,
        value: &str,
        timeout: Duration,
    ) -> Option<Resolved> {
        poll::until(timeout, || {
            self.browse(service_type)
                .into_iter()
                .find(|r| r.txt.get(key).map(String::as_str) == Some(value))
        })
    }
}

/// Undoes avahi-browse's `\DDD` decimal escapes.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            out.push(s[i + 1..i + 4].parse::<u16>().unwrap_or(63) as u8);
            i += 4;
        } else if b[i] == b'\\' && i + 1 < b.len() {
            out.push(b[i + 1]);
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a `=;iface;proto;name;type;domain;host;addr;port;txt` line.
fn parse_resolved(line: &str) -> Option<Resolved> {
    let f: Vec<&str> = line.splitn(10, ';').collect();
    if f.len() != 10 || f[0] != "=" {
        return None;
    }
    let mut txt = BTreeMap::new();
    // TXT: space-separated double-quoted strings.
    let mut rest = f[9].trim();
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { break };
        let item = &after[..end];
        let (k, v) = item.split_once('=').unwrap_or((item, ""));
        txt.insert(unescape(k), unescape(v));
        rest = &after[end + 1..];
    }
    Some(Resolved {
        iface: f[1].to_string(),
        proto: f[2].to_string(),
        name: unescape(f[3]),
        hostname: f[6].to_string(),
        address: f[7].to_string(),
        port: f[8].parse().ok()?,
        txt,
    })
}
