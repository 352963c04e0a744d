//! Issue 13: live migration. Tasks dirtying memory at 0, 10 and 100 MiB/s move to the zombie
//! and back while they run (pre-copy rounds, then a short final stop) and finish with every
//! page as an uninterrupted run leaves it; each reports the longest gap between two of its
//! 1 ms ticks — the stop the task itself saw. `--stop-and-copy` still freezes for the whole
//! transfer (no rounds). While a migrant runs on a zombie, the zombie sends its snapshot
//! home every interval: a zombie killed then loses at most that much of the task's work.
//! `zos suspend` brings a task home from its zombie, and `zos resume --on` puts it back.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::migrate::{FINISH, MoveLan, Worker, ZOMBIE, s, wait_log};
use common::zos::text;

/// The dirtying program (checkpoint/tests/progs/dirtier.c), built into `dir`.
fn dirtier(dir: &Path) -> PathBuf {
    common::tools::require("gcc");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoint/tests/progs");
    let out = dir.join("dirtier");
    let st = Command::new("gcc")
        .args(["-O2", "-Wall", "-I"])
        .arg(&src)
        .arg(src.join("dirtier.c"))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("gcc");
    assert!(st.success(), "gcc dirtier.c");
    out
}

/// The `GAP <ms>` a finished dirtier printed.
fn gap_ms(log: &str) -> f64 {
    log.lines()
        .find_map(|l| l.trim().strip_prefix("GAP "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no GAP line in {log:?}"))
}

#[test]
fn tasks_dirtying_0_10_and_100_mib_per_s_move_live_there_and_back_exactly() {
    let lan = MoveLan::new();
    let prog = dirtier(&lan.work);
    let prog = prog.to_str().unwrap();
    // 128 MiB each, ticking until all six moves are done.
    let stop = lan.work.join("stop");
    let stop = stop.to_str().unwrap();
    let ids: Vec<(u64, &str)> = ["0", "10", "100"]
        .into_iter()
        .map(|rate| {
            let id = lan.run_migrant(&lan.work, &[prog, "128", rate, "1000", stop]);
            (id, rate)
        })
        .collect();
    for &(id, _) in &ids {
        wait_log(&lan, id, "READY", s(30));
    }
    for &(id, rate) in &ids {
        let out = lan.migrate(id);
        assert!(
            out.contains("live: pre-copy done after"),
            "a live move at {rate} MiB/s shows its rounds and why they stopped:\n{out}"
        );
    }
    for &(id, rate) in &ids {
        let out = lan.home(id);
        assert!(
            out.contains("live: ") && out.contains("pre-copy round(s)"),
            "coming home is live too ({rate} MiB/s):\n{out}"
        );
    }
    std::fs::write(stop, "").unwrap();
    for &(id, rate) in &ids {
        let code = lan.wait_exit(id, FINISH);
        let log = lan.logs(id);
        assert!(
            log.contains("PASS"),
            "{rate} MiB/s: memory as an uninterrupted run:\n{log}"
        );
        assert_eq!(code, 0, "{log}");
        eprintln!(
            "{rate:>3} MiB/s: longest tick gap {:.1} ms over two live moves",
            gap_ms(&log)
        );
    }
}

#[test]
fn stop_and_copy_moves_without_rounds() {
    let lan = MoveLan::new();
    let prog = dirtier(&lan.work);
    let stop = lan.work.join("stop");
    let id = lan.run_migrant(
        &lan.work,
        &[
            prog.to_str().unwrap(),
            "32",
            "10",
            "1000",
            stop.to_str().unwrap(),
        ],
    );
    wait_log(&lan, id, "READY", s(30));
    let out = lan
        .m()
        .run(&["migrate", &id.to_string(), ZOMBIE, "--stop-and-copy"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("stop-and-copy: frozen"),
        "{}",
        text(&out)
    );
    let out = lan.m().run(&["home", &id.to_string(), "--stop-and-copy"]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(&stop, "").unwrap();
    assert_eq!(lan.wait_exit(id, FINISH), 0);
    assert!(lan.logs(id).contains("PASS"), "{}", lan.logs(id));
}

#[test]
fn a_zombie_killed_holding_a_migrant_loses_at_most_one_snapshot_interval() {
    let lan = MoveLan::new();
    let w = Worker::start(&lan, "pushed", 64);
    w.step(&lan, 1);
    let id = w.id.to_string();
    let out = lan
        .m()
        .run(&["migrate", &id, ZOMBIE, "--image-every", "2s"]);
    assert!(out.status.success(), "{}", text(&out));
    w.step(&lan, 2);
    w.step(&lan, 3);
    // The zombie sends a snapshot every 2 s (incremental after the first): wait for one
    // taken after stage 3.
    std::thread::sleep(s(2));
    let t = common::poll::until(s(30), || {
        let t = lan.task(w.id);
        t["image_age_s"]
            .as_u64()
            .is_some_and(|a| a <= 1)
            .then_some(t)
    })
    .unwrap_or_else(|| panic!("no fresh image came home: {}", lan.task(w.id)));
    eprintln!("image age before the zombie dies: {}", t["image_age_s"]);
    lan.zombie.proc.kill9();
    common::poll::until(s(30), || (lan.task(w.id)["state"] == "lost").then_some(()))
        .unwrap_or_else(|| panic!("never lost: {}", lan.task(w.id)));
    common::migrate::home_from_image(&lan, w.id);
    // It goes on from the snapshot: stages 2 and 3, done on the zombie, are not done again.
    w.finish(&lan, 4);
    let log = lan.logs(w.id);
    for k in 1..=6 {
        let n = log.matches(&format!("stage {k} done")).count();
        assert_eq!(n, 1, "stage {k} done {n} times: {log}");
    }
}

#[test]
fn suspend_brings_a_migrant_home_from_its_zombie_and_resume_on_puts_it_back_there() {
    let lan = MoveLan::new();
    let w = Worker::start(&lan, "suspended", 64);
    w.step(&lan, 1);
    lan.migrate(w.id);
    w.step(&lan, 2);
    let out = lan.m().run(&["suspend"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("bringing task {} home", w.id))
            && said.contains(&format!("suspended: task(s) {}", w.id)),
        "{said}"
    );
    let t = lan.task(w.id);
    assert_eq!(t["state"], "suspended", "{t}");
    assert!(
        w.processes_on(lan.m()).is_empty() && w.processes_on(lan.z()).is_empty(),
        "nothing of it runs while suspended"
    );
    let out = lan.m().run(&["resume", "--on", ZOMBIE]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("resumed: task(s) {}", w.id))
            && said.contains(&format!("task {} runs on {ZOMBIE}", w.id)),
        "{said}"
    );
    let t = lan.task(w.id);
    assert_eq!(t["where"], ZOMBIE, "{t}");
    assert_eq!(t["state"], "running", "{t}");
    assert!(
        w.processes_on(lan.m()).is_empty() && !w.processes_on(lan.z()).is_empty(),
        "it runs on the zombie only"
    );
    // It goes on from stage 2, done on the zombie before the suspend.
    w.finish(&lan, 3);
    let log = lan.logs(w.id);
    assert_eq!(log.matches("stage 2 done").count(), 1, "{log}");
}
