//! Issue 2, sessions: a paired master reaches its zombie over an encrypted
//! session; an unpaired one is refused; revocation ends a live session.

mod common;

use common::zos::{self, text};
use common::{Lan, secs};

#[test]
fn paired_master_pings_the_zombie() {
    let lan = Lan::new(&["m", "z1"]);
    let (m, z1) = (lan.host("m"), lan.host("z1"));
    let _master = zos::start_master(m);
    let _zombie = zos::start_zombie(z1, "pingme", &[]);
    zos::pair(m, z1, "pingme", "complete");

    let out = m.run(&["ping", "pingme", "--count", "3", "--interval", "0.2"]);
    let t = text(&out);
    assert!(out.status.success(), "ping failed:\n{t}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rtts = stdout.lines().filter(|l| l.contains("rtt=")).count();
    assert_eq!(rtts, 3, "one `rtt=` line per round trip expected:\n{t}");

    // The other ways to name the zombie work as well.
    let fp = zos::fingerprint(z1);
    let prefix = &fp[..9];
    let out = m.run(&["ping", prefix, "--count", "1"]);
    assert!(
        out.status.success(),
        "ping by fingerprint prefix {prefix} failed:\n{}",
        text(&out)
    );
    let port = zos::wait_listed(m, "pingme", secs(1)).unwrap()["port"]
        .as_u64()
        .unwrap();
    let ipport = format!("{}:{port}", z1.addr);
    let out = m.run(&["ping", &ipport, "--count", "1"]);
    assert!(
        out.status.success(),
        "ping by {ipport} failed:\n{}",
        text(&out)
    );
}

#[test]
fn unpaired_master_is_refused() {
    let lan = Lan::new(&["m", "z1"]);
    let (m, z1) = (lan.host("m"), lan.host("z1"));
    let _master = zos::start_master(m);
    let zombie = zos::start_zombie(z1, "stranger", &[]);
    assert!(
        zos::wait_listed(m, "stranger", zos::DISCOVERY).is_some(),
        "master never listed the zombie"
    );

    let out = m.run(&["ping", "stranger", "--count", "1"]);
    let t = text(&out);
    assert!(
        !out.status.success(),
        "an unpaired master's ping succeeded:\n{t}"
    );
    assert!(
        t.contains("not paired"),
        "message should say the master is not paired:\n{t}"
    );
    assert!(
        !t.contains("rtt="),
        "no round trip may happen unpaired:\n{t}"
    );
    // Also when the master goes straight to the address, bypassing its own list.
    let ipport = format!("{}:{}", z1.addr, zombie.port);
    let out = m.run(&["ping", &ipport, "--count", "1"]);
    assert!(
        !out.status.success() && !text(&out).contains("rtt="),
        "ping by address got through:\n{}",
        text(&out)
    );
}

#[test]
fn revoking_a_master_ends_its_live_session() {
    let lan = Lan::new(&["m", "z1"]);
    let (m, z1) = (lan.host("m"), lan.host("z1"));
    let _master = zos::start_master(m);
    let _zombie = zos::start_zombie(z1, "guarded", &[]);
    zos::pair(m, z1, "guarded", "complete");
    let fp_m = zos::fingerprint(m);

    let mut ping = m.spawn(&["ping", "guarded", "--count", "100", "--interval", "0.1"]);
    ping.wait_log("rtt=", secs(10));

    z1.run_ok(&["trust", "revoke", &fp_m[..9]]);
    let status = ping.wait_exit(secs(5)).unwrap_or_else(|| {
        panic!(
            "the revoked master's ping still runs 5 s after revocation:\n{}",
            ping.log()
        )
    });
    let log = ping.log();
    assert!(
        !status.success(),
        "the revoked session's ping exited 0:\n{log}"
    );
    assert!(
        log.contains("revoked"),
        "the message should say the master was revoked:\n{log}"
    );
    let rtts = log.lines().filter(|l| l.contains("rtt=")).count();
    assert!(
        rtts < 100,
        "the ping ran to its end despite revocation ({rtts} round trips)"
    );

    assert!(
        zos::trust_list(z1)
            .iter()
            .all(|e| zos::entry_fingerprint(e).as_deref() != Some(&fp_m))
    );
    let out = m.run(&["ping", "guarded", "--count", "1"]);
    assert!(
        !out.status.success(),
        "a revoked master can still ping:\n{}",
        text(&out)
    );
}
