//! Issue 10, epochs and partitions: a zombie cut off from its master stops the migrants it
//! holds (its lease ended) and keeps them for `migrant_grace`; the master shows them `lost`.
//! When the master dominates it again it learns what the zombie holds: the current copy runs
//! on and comes home (its shared folders went with the old session), a stale one (the task
//! came back from its image meanwhile) is discarded. Past the grace period the zombie kills
//! them. Never twice, never lost.

mod common;

use common::migrate::{MoveLan, Worker, ZOMBIE, home_from_image, s};
use common::zos::text;

/// Waits until the master shows task `id` as lost on the zombie.
fn wait_lost(lan: &MoveLan, id: u64) {
    common::poll::until(s(40), || (lan.task(id)["state"] == "lost").then_some(()))
        .unwrap_or_else(|| panic!("never lost: {}", lan.task(id)));
    assert_eq!(lan.task(id)["where"], ZOMBIE);
}

/// Whether every process of the worker on the zombie is stopped (state T).
fn all_stopped(lan: &MoveLan, w: &Worker) -> bool {
    let procs = w.processes_on(lan.z());
    !procs.is_empty()
        && procs.iter().all(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|st| st.rsplit_once(") ").map(|(_, r)| r.starts_with('T')))
                .unwrap_or(false)
        })
}

/// Dominates the zombie again once the master sees it (after the cable is back); what
/// `zos dominate` said.
fn dominate_again(lan: &MoveLan) -> String {
    common::poll::until(s(60), || {
        let out = lan.m().run(&["dominate", ZOMBIE]);
        out.status.success().then(|| text(&out))
    })
    .expect("the master dominates the zombie again")
}

#[test]
fn a_partition_that_heals_within_the_grace_period_resumes_the_task_and_brings_it_home() {
    let lan = MoveLan::new();
    let w = Worker::start(&lan, "heal", 32);
    w.step(&lan, 1);
    lan.migrate(w.id);
    w.step(&lan, 2);
    lan.z().link_down();
    wait_lost(&lan, w.id);
    // The zombie's lease ends: it stops the task and keeps it.
    common::poll::until(s(30), || all_stopped(&lan, &w).then_some(()))
        .expect("the zombie stopped the task of the master that went away");
    lan.z().link_up();
    let said = dominate_again(&lan);
    assert!(said.contains("runs on z1 again"), "{said}");
    assert!(said.contains("came home from z1"), "{said}");
    let t = lan.task(w.id);
    assert_eq!(t["state"], "home", "{t}");
    assert_eq!(
        t["epoch"], 3,
        "the copy the zombie kept (epoch 2) came home: {t}"
    );
    assert!(
        w.processes_on(lan.z()).is_empty(),
        "nothing left on the zombie"
    );
    w.finish(&lan, 3);
    // Stage 2 was done once: nothing was redone.
    let log = lan.logs(w.id);
    assert_eq!(log.matches("stage 2 done").count(), 1, "{log:?}");
}

#[test]
fn a_zombie_back_with_a_stale_copy_after_home_from_image_has_it_discarded() {
    let lan = MoveLan::new();
    let w = Worker::start(&lan, "stale", 32);
    w.step(&lan, 1);
    lan.migrate(w.id);
    lan.z().link_down();
    wait_lost(&lan, w.id);
    home_from_image(&lan, w.id);
    let epoch = lan.task(w.id)["epoch"].as_u64().unwrap();
    assert!(
        all_stopped(&lan, &w),
        "the zombie's copy is stopped, not running"
    );
    lan.z().link_up();
    let said = dominate_again(&lan);
    assert!(said.contains("stale copy"), "{said}");
    common::poll::until(s(20), || w.processes_on(lan.z()).is_empty().then_some(()))
        .expect("the stale copy is gone from the zombie");
    assert_eq!(lan.task(w.id)["epoch"].as_u64(), Some(epoch));
    w.finish(&lan, 2);
}

#[test]
fn past_the_grace_period_the_zombie_kills_the_migrants_of_a_master_that_did_not_come_back() {
    let lan = MoveLan::with(&[], "migrant_grace = 3\n");
    let w = Worker::start(&lan, "grace", 32);
    w.step(&lan, 1);
    lan.migrate(w.id);
    let files = lan.z().runtime.clone();
    lan.z().link_down();
    wait_lost(&lan, w.id);
    common::poll::until(s(40), || w.processes_on(lan.z()).is_empty().then_some(()))
        .expect("the zombie killed the task after its grace period");
    lan.zombie
        .proc
        .wait_log("did not come back within the grace period", s(5));
    lan.z().link_up();
    home_from_image(&lan, w.id);
    w.finish(&lan, 2);
    let _ = files;
}
