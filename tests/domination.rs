//! Issue 5: domination and release as a user drives them: consent on the
//! zombie, levels, the state `zos hosts` shows, the timing breakdown.

mod common;

use common::zos::{self, text};
use common::{Lan, secs};

/// Polls `zos hosts --json` on `master` until `name`'s state satisfies `want`.
fn wait_state(
    master: &common::Host,
    name: &str,
    want: impl Fn(&serde_json::Value) -> bool,
) -> Option<serde_json::Value> {
    common::until(secs(30), || {
        zos::hosts(master)
            .into_iter()
            .find(|h| h["name"] == name && want(&h["dominated"]))
    })
}

/// The breakdown lines `  NAME   FIGURE ms` of `zos dominate`'s output,
/// as names and figures; panics (with the output) on a line that has a
/// name but no number.
fn breakdown(output: &str) -> Vec<(String, f64)> {
    output
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (name, figure, unit) = (words.next()?, words.next()?, words.next()?);
            if unit != "ms" || words.next().is_some() || !line.starts_with("  ") {
                return None;
            }
            let ms = figure
                .parse::<f64>()
                .unwrap_or_else(|e| panic!("{name}: {figure:?} is not a number ({e}): {output}"));
            Some((name.to_string(), ms))
        })
        .collect()
}

#[test]
fn the_zombies_user_accepts_or_refuses_and_hosts_show_the_state() {
    let lan = Lan::new(&["m", "m2", "z1"]);
    let (m, m2, z) = (lan.host("m"), lan.host("m2"), lan.host("z1"));
    let _master = zos::start_master_with(m, &["--name", "laptop"]);
    let _master2 = zos::start_master_with(m2, &["--name", "desk"]);
    let _zombie = zos::start_zombie(z, "z1", &[]);
    zos::pair(m, z, "z1", "complete");
    zos::wait_listed(m2, "z1", zos::DISCOVERY).expect("m2 sees z1");
    let free = wait_state(m, "z1", |d| d.is_null()).expect("z1 listed free");
    assert!(free["dominated"].is_null());

    // Refused by the zombie's user.
    let asking = m.spawn(&["dominate", "z1"]);
    let ask = common::until(secs(10), || {
        let s = zos::json(z, &["status", "--json"]);
        (!s["asking"].is_null()).then_some(s["asking"].clone())
    })
    .expect("the zombie shows the request");
    assert_eq!(ask["master"], "laptop");
    assert_eq!(ask["level"], "complete");
    let shown = z.run_ok(&["status"]);
    assert!(shown.contains("asks to dominate"), "{shown}");
    assert!(z.run_ok(&["refuse"]).contains("refused"));
    let mut asking = asking;
    asking.wait_exit(secs(10)).expect("dominate returns");
    let log = asking.log();
    assert!(log.contains("asking its user"), "{log}");
    assert!(log.contains("refused"), "{log}");
    // Nothing is waiting any more.
    let out = z.run(&["accept"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no domination request is waiting"));

    // Accepted: the master holds it, and every master sees who does.
    let mut asking = m.spawn(&["dominate", "z1"]);
    common::until(secs(10), || {
        (!zos::json(z, &["status", "--json"])["asking"].is_null()).then_some(())
    })
    .expect("second request shown");
    z.run_ok(&["accept"]);
    let status = asking.wait_exit(secs(10)).expect("dominate returns");
    let log = asking.log();
    assert!(status.success(), "{log}");
    assert!(log.contains("dominating z1 at level complete"), "{log}");
    // The breakdown: each part a figure in milliseconds, the total their sum.
    let figures = breakdown(&log);
    let names: Vec<&str> = figures.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["zt", "fs", "xt", "total"], "{log}");
    let parts: f64 = figures[..3].iter().map(|(_, ms)| ms).sum();
    let total = figures[3].1;
    assert!(
        (parts - total).abs() <= 0.25,
        "the total {total} ms is not the sum of the parts {parts} ms: {log}"
    );
    assert!(
        figures.iter().all(|(_, ms)| *ms >= 0.0 && *ms < 60_000.0),
        "{figures:?}"
    );
    let mine = wait_state(m, "z1", |d| d["master"] == "laptop").expect("m shows it");
    assert_eq!(mine["dominated"]["level"], "complete");
    let theirs = wait_state(m2, "z1", |d| d["master"] == "laptop")
        .expect("the other master sees z1 dominated by laptop over mDNS");
    assert_eq!(theirs["dominated"]["level"], "complete");
    let table = m2.run_ok(&["hosts"]);
    assert!(table.contains("dominated by laptop (complete)"), "{table}");

    // Released: free again, everywhere.
    m.run_ok(&["release", "z1"]);
    wait_state(m, "z1", |d| d.is_null()).expect("m shows z1 free");
    wait_state(m2, "z1", |d| d.is_null()).expect("m2 sees z1 free");
    let table = m.run_ok(&["hosts"]);
    assert!(table.contains("free"), "{table}");
}
