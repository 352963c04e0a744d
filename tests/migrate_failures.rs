//! Issue 10, fail-safe: a move that fails at any point — the link cut in the middle of the
//! image, the zombie killed while it restores, the zombie refusing — leaves the task running
//! on the master, exactly once, with its state; a task whose zombie dies while holding it is
//! `lost`, and `zos home --from-image` restarts it from the master's last image.

mod common;

use common::migrate::{MASTER, MoveLan, Worker, ZOMBIE, s};
use common::zos::text;

/// Checks the task is at home (running there, nowhere else) after a failed move, and its
/// terminal shows no second copy's output.
fn home_and_only_here(lan: &MoveLan, w: &Worker) {
    let t = lan.task(w.id);
    assert_eq!(t["state"], "home", "{t}");
    assert_eq!(t["where"], MASTER, "{t}");
    assert!(
        !w.processes_on(lan.m()).is_empty(),
        "the task runs on the master"
    );
    assert!(
        w.processes_on(lan.z()).is_empty(),
        "no copy of the task on the zombie"
    );
}

#[test]
fn a_link_cut_in_the_middle_of_the_image_leaves_the_task_running_on_the_master_once() {
    cut_in_the_middle("send-image", &["--stop-and-copy"]);
}

#[test]
fn a_link_cut_in_the_middle_of_a_live_pre_copy_leaves_the_task_running_on_the_master_once() {
    cut_in_the_middle("pre-copy 0", &[]);
}

/// Starts a move (with `flags`), pulls the zombie's cable once the progress of `phase`
/// shows bytes flowing, and checks the task runs on at home, once, with its state.
fn cut_in_the_middle(phase: &str, flags: &[&str]) {
    let lan = MoveLan::new();
    let w = Worker::start(&lan, "cut", 768);
    w.step(&lan, 1);
    let id = w.id.to_string();
    let mut args = vec!["migrate", id.as_str(), ZOMBIE];
    args.extend_from_slice(flags);
    let mut migrate = lan.m().spawn(&args);
    // Wait until image bytes flow, then pull the zombie's cable.
    let line = common::poll::until(s(120), || {
        migrate
            .log()
            .lines()
            .find(|l| l.contains(phase) && l.contains("MiB /") && !l.contains(" 0.0 MiB /"))
            .map(str::to_string)
    })
    .unwrap_or_else(|| panic!("no image progress: {}", migrate.log()));
    lan.z().link_down();
    let status = migrate.wait_exit(s(90)).expect("zos migrate ends");
    assert!(!status.success(), "the move failed: {}", migrate.log());
    let said = migrate.log();
    let why: Vec<&str> = said.lines().filter(|l| l.starts_with("zos: ")).collect();
    assert_eq!(why.len(), 1, "one line says why: {said}");
    assert!(
        said.lines().last() == why.first().copied(),
        "it comes last: {said}"
    );
    lan.z().link_up();
    home_and_only_here(&lan, &w);
    // The task works on at home and ends as if nothing happened.
    w.finish(&lan, 2);
    let _ = line;
}

#[test]
fn a_zombie_killed_while_it_restores_leaves_the_task_running_on_the_master_once() {
    let lan = MoveLan::new();
    let w = Worker::start(&lan, "kill", 512);
    w.step(&lan, 1);
    let mut migrate = lan.m().spawn(&["migrate", &w.id.to_string(), ZOMBIE]);
    lan.zombie
        .proc
        .wait_log(&format!("restoring task {}", w.id), s(120));
    lan.zombie.proc.kill9();
    let status = migrate.wait_exit(s(90)).expect("zos migrate ends");
    assert!(!status.success(), "the move failed: {}", migrate.log());
    // Whatever the dead zombie had restored does not run on.
    std::thread::sleep(s(2));
    let stray = w.processes_on(lan.z());
    assert!(
        stray.is_empty(),
        "a copy runs on the dead zombie's side: {stray:?}"
    );
    home_and_only_here(&lan, &w);
    w.finish(&lan, 2);
}

#[test]
fn a_zombie_at_level_partial_refuses_the_task_which_runs_on_at_home() {
    let lan = MoveLan::new();
    let w = Worker::start(&lan, "partial", 16);
    w.step(&lan, 1);
    // The zombie's user lowers this master's trust to partial during the domination: the
    // zombie itself refuses.
    common::zos::pair(lan.m(), lan.z(), ZOMBIE, "partial");
    let out = lan.m().run(&["migrate", &w.id.to_string(), ZOMBIE]);
    assert!(!out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(said.contains("level complete"), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "one line: {said}");
    home_and_only_here(&lan, &w);
    w.step(&lan, 2);
    // Dominated at partial: the master refuses before touching the task.
    lan.m().run_ok(&["release", ZOMBIE]);
    lan.m().run_ok(&["dominate", ZOMBIE, "--level", "partial"]);
    let out = lan.m().run(&["migrate", &w.id.to_string(), ZOMBIE]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("level partial"), "{}", text(&out));
    home_and_only_here(&lan, &w);
    w.finish(&lan, 3);
}

#[test]
fn a_zombie_killed_while_holding_the_task_makes_it_lost_and_home_from_image_restarts_it() {
    let lan = MoveLan::new();
    let w = Worker::start(&lan, "lost", 64);
    w.step(&lan, 1);
    lan.migrate(w.id);
    w.step(&lan, 2);
    lan.zombie.proc.kill9();
    let t = common::poll::until(s(30), || {
        let t = lan.task(w.id);
        (t["state"] == "lost").then_some(t)
    })
    .unwrap_or_else(|| panic!("never lost: {}", lan.task(w.id)));
    assert_eq!(t["where"], ZOMBIE, "{t}");
    let epoch = t["epoch"].as_u64().unwrap();
    common::migrate::home_from_image(&lan, w.id);
    let t = lan.task(w.id);
    assert_eq!(t["state"], "home", "{t}");
    assert!(
        t["epoch"].as_u64().unwrap() > epoch,
        "the epoch went up: {t}"
    );
    // It restarts from the image taken when it left: stage 2 (done on the zombie) again.
    w.finish(&lan, 2);
}
