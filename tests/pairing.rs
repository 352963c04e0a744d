//! Issue 2, pairing: the zombie shows a one-time code; only a master that
//! types it becomes trusted, a code works once, and three wrong tries
//! invalidate it.

mod common;

use common::zos::{self, DISCOVERY, text};
use common::{Host, Lan};
use serde_json::Value;

/// Whether a trust list has an entry for the peer with this fingerprint.
fn lists(entries: &[Value], fingerprint: &str) -> bool {
    entries
        .iter()
        .any(|e| zos::entry_fingerprint(e).as_deref() == Some(fingerprint))
}

/// A refusal: non-zero exit and a message about the code.
fn assert_refused(out: &std::process::Output, why: &str) {
    let t = text(out);
    assert!(
        !out.status.success(),
        "{why}: pairing should fail, but exited 0:\n{t}"
    );
    assert!(
        t.to_lowercase().contains("code"),
        "{why}: the message should be about the code:\n{t}"
    );
}

fn setup(lan: &Lan, masters: &[&str]) -> Vec<common::Proc> {
    let mut procs: Vec<common::Proc> = masters
        .iter()
        .map(|m| zos::start_master(lan.host(m)))
        .collect();
    procs.push(zos::start_zombie(lan.host("z1"), "zed", &[]).proc);
    for m in masters {
        assert!(
            zos::wait_listed(lan.host(m), "zed", DISCOVERY).is_some(),
            "{m} never listed zed"
        );
    }
    procs
}

fn pair(master: &Host, code: &str) -> std::process::Output {
    master.run(&["pair", "zed", "--code", code])
}

#[test]
fn pairing_with_the_right_code_makes_both_sides_trust_each_other() {
    let lan = Lan::new(&["m", "z1"]);
    let (m, z1) = (lan.host("m"), lan.host("z1"));
    let _procs = setup(&lan, &["m"]);
    let (fp_m, fp_z) = (zos::fingerprint(m), zos::fingerprint(z1));
    assert!(
        zos::trust_list(z1).is_empty(),
        "a fresh zombie trusts no one"
    );

    let code = zos::pair_code(z1, "complete");
    let out = pair(m, &code);
    assert!(
        out.status.success(),
        "pairing with the right code failed:\n{}",
        text(&out)
    );

    let zt = zos::trust_list(z1);
    assert!(
        lists(&zt, &fp_m),
        "zombie does not trust the master {fp_m}: {zt:#?}"
    );
    assert_eq!(zt.len(), 1, "{zt:#?}");
    assert_eq!(zt[0]["level"], "complete", "{zt:#?}");
    let mt = zos::trust_list(m);
    assert!(
        lists(&mt, &fp_z),
        "master does not list the zombie {fp_z}: {mt:#?}"
    );
}

#[test]
fn pairing_with_a_wrong_code_is_refused() {
    let lan = Lan::new(&["m", "z1"]);
    let (m, z1) = (lan.host("m"), lan.host("z1"));
    let _procs = setup(&lan, &["m"]);
    let fp_m = zos::fingerprint(m);
    let code = zos::pair_code(z1, "partial");

    assert_refused(&pair(m, &zos::wrong_code(&code, 0)), "wrong code");
    assert!(
        zos::trust_list(z1).is_empty(),
        "a wrong code made the zombie trust someone"
    );
    assert!(
        zos::trust_list(m).is_empty(),
        "a wrong code left an entry on the master"
    );

    // One wrong try does not burn the code: the user may retype it.
    let out = pair(m, &code);
    assert!(
        out.status.success(),
        "the right code failed after one wrong try:\n{}",
        text(&out)
    );
    let zt = zos::trust_list(z1);
    assert!(lists(&zt, &fp_m), "{zt:#?}");
    assert_eq!(
        zt[0]["level"], "partial",
        "level must be the code's: {zt:#?}"
    );
}

#[test]
fn a_used_code_is_refused_the_second_time() {
    let lan = Lan::new(&["m", "m2", "z1"]);
    let (m, m2, z1) = (lan.host("m"), lan.host("m2"), lan.host("z1"));
    let _procs = setup(&lan, &["m", "m2"]);
    let fp_m2 = zos::fingerprint(m2);
    let code = zos::pair_code(z1, "complete");
    let out = pair(m, &code);
    assert!(
        out.status.success(),
        "first use of the code failed:\n{}",
        text(&out)
    );

    assert_refused(&pair(m2, &code), "reused code");
    let zt = zos::trust_list(z1);
    assert!(
        !lists(&zt, &fp_m2),
        "a reused code let a second master in: {zt:#?}"
    );
    assert_eq!(zt.len(), 1, "{zt:#?}");
}

#[test]
fn three_wrong_codes_invalidate_the_code() {
    let lan = Lan::new(&["m", "z1"]);
    let (m, z1) = (lan.host("m"), lan.host("z1"));
    let _procs = setup(&lan, &["m"]);
    let code = zos::pair_code(z1, "complete");
    for k in 0..3 {
        assert_refused(
            &pair(m, &zos::wrong_code(&code, k)),
            &format!("wrong try {}", k + 1),
        );
    }
    assert_refused(&pair(m, &code), "right code after three wrong tries");
    assert!(
        zos::trust_list(z1).is_empty(),
        "an invalidated code let the master in"
    );

    // A fresh code works again.
    let fresh = zos::pair_code(z1, "complete");
    let out = pair(m, &fresh);
    assert!(
        out.status.success(),
        "a fresh code after invalidation failed:\n{}",
        text(&out)
    );
}

#[test]
fn first_start_creates_a_private_identity_that_stays() {
    use std::os::unix::fs::PermissionsExt;
    let lan = Lan::new(&["z1"]);
    let z1 = lan.host("z1");
    let key = z1.home.join("identity.key");
    assert!(!key.exists());
    let zombie = zos::start_zombie(z1, "keeper", &[]);
    let mode = std::fs::metadata(&key)
        .expect("identity.key in ZOS_HOME")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "identity.key must be private");
    let fp = zos::fingerprint(z1);
    assert!(
        zombie.proc.log().contains(&fp),
        "the daemon and `zos id` disagree on the key:\n{}",
        zombie.proc.log()
    );
    drop(zombie);
    let again = zos::start_zombie(z1, "keeper", &[]);
    assert_eq!(
        zos::fingerprint(z1),
        fp,
        "the identity changed across restarts"
    );
    drop(again);
}

#[test]
fn a_code_burner_is_slowed_to_the_limit_and_the_users_next_code_still_works() {
    use common::attacker::{intrude, on};
    use zos_netproto::wire::Message;

    let lan = Lan::new(&["m", "z1", "a"]);
    let (m, z1, a) = (lan.host("m"), lan.host("z1"), lan.host("a"));
    let procs = setup(&lan, &["m"]);
    let port = zos::wait_listed(m, "zed", DISCOVERY).unwrap()["port"]
        .as_u64()
        .unwrap() as u16;
    let target = std::net::SocketAddr::new(z1.addr.into(), port);
    // The attacker guesses as fast as it can, each time with a fresh key.
    let burn = move |code: String, tries: u32| {
        on(a, move || async move {
            let mut answers = Vec::new();
            for k in 0..tries {
                let answer = match intrude(target, None).await {
                    Ok(mut i) => match i.try_pairing(&zos::wrong_code(&code, k)).await {
                        Ok(Message::PairFailed { reason }) => reason,
                        other => format!("{other:?}"),
                    },
                    Err(e) => format!("no session: {e}"),
                };
                answers.push(answer);
            }
            answers
        })
    };
    let limited = |answers: &[String]| answers.iter().filter(|r| r.contains("too many")).count();
    let allowed = zos_daemon::limits::PAIR_ATTEMPTS_PER_ADDRESS;

    let first = zos::pair_code(z1, "complete");
    let answers = burn(first, 10);
    assert_eq!(
        limited(&answers),
        10 - allowed,
        "of 10 guesses in a row, all but {allowed} should be refused as too many: {answers:#?}"
    );
    assert!(
        answers[..allowed].iter().all(|r| r.contains("code")),
        "{answers:#?}"
    );

    // A new code: the attacker's further guesses do not touch it.
    let code = zos::pair_code(z1, "complete");
    let answers = burn(code.clone(), 5);
    assert_eq!(limited(&answers), 5, "{answers:#?}");
    let status = zos::json(z1, &["status", "--json"]);
    assert_eq!(
        status["pairing"]["attempts_left"], 3,
        "the attacker used up tries of the new code: {status:#}"
    );
    let out = pair(m, &code);
    assert!(
        out.status.success(),
        "the user's pairing failed after the attack:\n{}",
        text(&out)
    );

    // The zombie's user sees who tried, from where, and why it failed.
    let status = zos::json(z1, &["status", "--json"]);
    let attempts = status["pairing_attempts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!attempts.is_empty(), "no attempts listed: {status:#}");
    let from_attacker = |why: &str| {
        attempts.iter().any(|t| {
            t["addr"] == a.addr.to_string() && t["why"].as_str().unwrap_or("").contains(why)
        })
    };
    assert!(
        from_attacker("wrong code") && from_attacker("too many"),
        "{attempts:#?}"
    );
    let total: u64 = attempts.iter().filter_map(|t| t["count"].as_u64()).sum();
    assert_eq!(total, 15, "{attempts:#?}");
    let shown = z1.run_ok(&["status"]);
    assert!(
        shown.contains("pairing attempts") && shown.contains(&a.addr.to_string()),
        "{shown}"
    );
    drop(procs);
}
