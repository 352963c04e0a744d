//! Issue 9, finding 6: a zombie's name is the one its master paired it
//! under, not the one it gives itself. Exports meant for `desk` go to the
//! zombie paired as `desk` — not to a paired `lab` restarted with
//! `--name desk`, and not to a stranger announcing `desk` (which is not
//! even paired, so its session is refused).

mod common;

use common::zos::{self, text};
use common::{Host, Lan};

/// `zos dominate TARGET` on `m`; its output (it must succeed).
fn dominate(m: &Host, target: &str) -> String {
    let out = m.run(&["dominate", target]);
    assert!(
        out.status.success(),
        "zos dominate {target} failed:\n{}",
        text(&out)
    );
    text(&out)
}

#[test]
fn exports_follow_the_name_a_zombie_was_paired_under() {
    let lan = Lan::new(&["m", "z1", "z2", "z3"]);
    let (m, z1, z2, z3) = (
        lan.host("m"),
        lan.host("z1"),
        lan.host("z2"),
        lan.host("z3"),
    );
    let for_desk = m.home.join("deskfiles");
    let for_lab = m.home.join("labfiles");
    std::fs::create_dir_all(&for_desk).unwrap();
    std::fs::create_dir_all(&for_lab).unwrap();
    m.run_ok(&["export", for_desk.to_str().unwrap(), "--to", "desk"]);
    m.run_ok(&["export", for_lab.to_str().unwrap(), "--to", "lab"]);
    let _master = zos::start_master(m);
    let _desk = zos::start_zombie(z1, "desk", &["--auto-accept"]);
    let lab = zos::start_zombie(z2, "lab", &["--auto-accept"]);
    zos::pair(m, z1, "desk", "complete");
    zos::pair(m, z2, "lab", "complete");
    let lab_fp = zos::fingerprint(z2);

    // `lab` comes back calling itself `desk` (same home, same key).
    drop(lab);
    let renamed = zos::start_zombie(z2, "desk", &["--auto-accept"]);
    // Once the old advert is gone, one host has lab's key: the new one.
    let listed = common::until(common::secs(20), || {
        let hosts: Vec<serde_json::Value> = zos::hosts(m)
            .into_iter()
            .filter(|h| h["fingerprint"] == lab_fp.as_str())
            .collect();
        match hosts.as_slice() {
            [h] if h["port"].as_u64() == Some(renamed.port.into()) => Some(h.clone()),
            _ => None,
        }
    })
    .expect("the master sees the restarted zombie, and only it, with lab's key");
    // Dominated by its key: it is `lab` and gets lab's folder only.
    let shown = dominate(m, &lab_fp[..9]);
    assert!(
        !shown.contains("deskfiles"),
        "the zombie paired as lab got desk's export by calling itself desk:\n{shown}"
    );
    assert!(shown.contains("labfiles"), "{shown}");
    assert!(shown.contains("dominating lab"), "{shown}");
    let status = zos::json(m, &["status", "--json"]);
    assert_eq!(status["sessions"][0]["peer"], "lab", "{status:#}");
    assert_eq!(
        listed["name"], "lab",
        "`zos hosts` shows a paired zombie by the name it was paired under: {listed:#}"
    );
    m.run_ok(&["release", "lab"]);

    // `desk` names the zombie paired as desk, although two zombies now
    // announce that name.
    let shown = dominate(m, "desk");
    assert!(shown.contains("dominating desk"), "{shown}");
    assert!(
        shown.contains("deskfiles") && !shown.contains("labfiles"),
        "{shown}"
    );
    m.run_ok(&["release", "desk"]);

    // A stranger announcing `desk` is not paired: refused, nothing served.
    let stranger = zos::start_zombie(z3, "desk", &["--auto-accept"]);
    let target = format!("{}:{}", z3.addr, stranger.port);
    let out = m.run(&["dominate", &target]);
    assert!(
        !out.status.success() && text(&out).contains("not paired"),
        "a stranger calling itself desk was dominated:\n{}",
        text(&out)
    );
    assert!(!text(&out).contains("deskfiles"), "{}", text(&out));
}
