//! Issue 2, discovery: a master lists the zombies on its LAN with their
//! resources, live, and forgets them when they leave.

mod common;

use std::time::Instant;

use common::zos::{self, DISCOVERY};
use common::{Lan, secs};
use serde_json::Value;

/// The machine's host name (namespaces share the UTS namespace).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(rc, 0);
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// CPU counts a correct zombie may report on this machine.
fn plausible_cores() -> Vec<u64> {
    let online = std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count() as u64;
    vec![online, cpuinfo]
}

fn levels(h: &Value) -> Vec<String> {
    match &h["levels"] {
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Value::String(s) => s.split(',').map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn master_lists_each_zombie_with_its_fields() {
    let lan = Lan::new(&["m", "z1", "z2"]);
    let (m, z1, z2) = (lan.host("m"), lan.host("z1"), lan.host("z2"));
    let _master = zos::start_master(m);
    let a = zos::start_zombie(z1, "alpha", &[]);
    let b = zos::start_zombie(z2, "bravo", &["--port", "47001"]);
    assert_eq!(b.port, 47001, "--port was not honoured");
    let fp_a = zos::fingerprint(z1);
    let fp_b = zos::fingerprint(z2);
    assert_ne!(fp_a, fp_b, "two installations share a key");

    for (host, zombie, fp) in [(z1, &a, &fp_a), (z2, &b, &fp_b)] {
        let h = zos::wait_listed(m, &zombie.name, DISCOVERY)
            .unwrap_or_else(|| panic!("master did not list {} within {DISCOVERY:?}", zombie.name));
        let ctx = format!("entry for {}: {h:#}", zombie.name);
        assert_eq!(h["fingerprint"].as_str(), Some(fp.as_str()), "{ctx}");
        assert_eq!(h["host"].as_str(), Some(hostname().as_str()), "{ctx}");
        assert_eq!(h["port"].as_u64(), Some(zombie.port as u64), "{ctx}");
        assert_eq!(
            h["version"].as_u64(),
            Some(zos_netproto::PROTOCOL_VERSION as u64),
            "{ctx}"
        );
        assert!(
            h["instance"]
                .as_str()
                .is_some_and(|i| i.contains(&zombie.name)),
            "instance should name the zombie; {ctx}"
        );
        let addrs: Vec<&str> = h["addrs"]
            .as_array()
            .expect("addrs array")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            addrs.contains(&host.addr.to_string().as_str()),
            "addrs lack {}; {ctx}",
            host.addr
        );
        let cores = h["cores"].as_u64().expect("cores");
        assert!(
            plausible_cores().contains(&cores),
            "cores {cores}, machine has {:?}; {ctx}",
            plausible_cores()
        );
        let load = h["load1"].as_f64().expect("load1");
        assert!((0.0..1000.0).contains(&load), "{ctx}");
        let mem = h["mem_free_mib"].as_u64().expect("mem_free_mib");
        assert!(mem > 0, "{ctx}");
        let lv = levels(&h);
        assert!(
            lv.iter().any(|l| l == "complete") && lv.iter().any(|l| l == "partial"),
            "levels {lv:?}; {ctx}"
        );
    }
    let listed = zos::hosts(m);
    assert_eq!(listed.len(), 2, "exactly the two zombies: {listed:#?}");
    let instances: Vec<&str> = listed
        .iter()
        .filter_map(|h| h["instance"].as_str())
        .collect();
    assert_ne!(instances[0], instances[1], "instances must be unique keys");
}

#[test]
fn zombie_stopped_gracefully_is_gone_within_5s() {
    let lan = Lan::new(&["m", "z1", "z2"]);
    let (m, z1, z2) = (lan.host("m"), lan.host("z1"), lan.host("z2"));
    let _master = zos::start_master(m);
    let mut leaving = zos::start_zombie(z1, "leaving", &[]);
    let staying = zos::start_zombie(z2, "staying", &[]);
    assert!(
        zos::wait_listed(m, "leaving", DISCOVERY).is_some(),
        "leaving was never listed"
    );
    assert!(
        zos::wait_listed(m, "staying", DISCOVERY).is_some(),
        "staying was never listed"
    );

    let t0 = Instant::now();
    leaving.proc.term();
    assert!(
        zos::wait_unlisted(m, "leaving", secs(5)),
        "still listed 5 s after SIGTERM: {:#?}",
        zos::hosts(m)
    );
    eprintln!("graceful departure seen after {:?}", t0.elapsed());
    let status = leaving
        .proc
        .wait_exit(secs(5))
        .expect("zombie did not exit within 5 s of SIGTERM");
    assert!(status.success(), "zombie exited with {status} on SIGTERM");
    assert!(
        zos::hosts(m).iter().any(|h| h["name"] == "staying"),
        "the other zombie vanished too"
    );
    drop(staying);
}

#[test]
fn zombie_killed_with_sigkill_is_gone_within_15s() {
    let lan = Lan::new(&["m", "z1", "z2"]);
    let (m, z1, z2) = (lan.host("m"), lan.host("z1"), lan.host("z2"));
    let _master = zos::start_master(m);
    let dying = zos::start_zombie(z1, "dying", &[]);
    let _staying = zos::start_zombie(z2, "staying", &[]);
    assert!(
        zos::wait_listed(m, "dying", DISCOVERY).is_some(),
        "dying was never listed"
    );
    assert!(
        zos::wait_listed(m, "staying", DISCOVERY).is_some(),
        "staying was never listed"
    );

    let t0 = Instant::now();
    dying.proc.kill9();
    assert!(
        zos::wait_unlisted(m, "dying", secs(15)),
        "still listed 15 s after SIGKILL: {:#?}",
        zos::hosts(m)
    );
    eprintln!("departure after SIGKILL seen after {:?}", t0.elapsed());
    assert!(
        zos::hosts(m).iter().any(|h| h["name"] == "staying"),
        "the live zombie was dropped too"
    );
}
