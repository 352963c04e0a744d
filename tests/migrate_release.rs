//! Issue 10: `zos release HOST` brings every migrant running there home first (with progress),
//! then releases; a migrant that cannot come home keeps the zombie dominated unless
//! `--force`, and is then `lost` (restartable from its last image).

mod common;

use common::migrate::{MASTER, MoveLan, PYTHON, Worker, ZOMBIE, home_from_image, s, wait_log};
use common::zos::text;

#[test]
fn release_brings_every_migrant_home_first_then_lets_go() {
    let lan = MoveLan::new();
    let a = Worker::start(&lan, "a", 48);
    let b = Worker::start(&lan, "b", 16);
    a.step(&lan, 1);
    b.step(&lan, 1);
    lan.migrate(a.id);
    lan.migrate(b.id);
    a.step(&lan, 2);
    b.step(&lan, 2);
    let out = lan.m().run(&["release", ZOMBIE]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    for w in [&a, &b] {
        assert!(
            said.contains(&format!("bringing task {} home", w.id)),
            "{said}"
        );
        assert!(said.contains(&format!("task {} is home", w.id)), "{said}");
        let t = lan.task(w.id);
        assert_eq!(
            (t["state"].as_str(), t["where"].as_str()),
            (Some("home"), Some(MASTER)),
            "{t}"
        );
        assert!(w.processes_on(lan.z()).is_empty());
    }
    assert!(said.contains("released z1"), "{said}");
    a.finish(&lan, 3);
    b.finish(&lan, 3);
}

/// Opens a listening TCP socket at step 2 (the engine cannot carry it), then waits for
/// step 3 to close it and finish.
const SOCKET_AT_2: &str = r#"
import os, socket, sys, time
steps = sys.argv[1]
def wait(k):
    while not os.path.exists(os.path.join(steps, 'step-%d' % k)):
        time.sleep(0.02)
wait(1)
print('stage 1 done', flush=True)
wait(2)
s = socket.socket()
s.bind(('127.0.0.1', 0))
s.listen()
print('stage 2 done', flush=True)
wait(3)
s.close()
print('result done', flush=True)
"#;

#[test]
fn a_migrant_that_cannot_come_home_blocks_release_unless_forced_and_is_then_lost() {
    let lan = MoveLan::new();
    let script = lan.work.join("holds_a_tcp_socket.py");
    std::fs::write(&script, SOCKET_AT_2).unwrap();
    let steps = lan.work.join("tcp-steps");
    std::fs::create_dir_all(&steps).unwrap();
    let id = lan.run_migrant(
        &lan.work,
        &[PYTHON, script.to_str().unwrap(), steps.to_str().unwrap()],
    );
    std::fs::write(steps.join("step-1"), "").unwrap();
    wait_log(&lan, id, "stage 1 done", s(60));
    lan.migrate(id);
    std::fs::write(steps.join("step-2"), "").unwrap();
    wait_log(&lan, id, "stage 2 done", s(60));

    let out = lan.m().run(&["release", ZOMBIE]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("not released") && said.contains("--force"),
        "{said}"
    );
    assert!(said.contains("socket"), "names what stops it: {said}");
    let t = lan.task(id);
    assert_eq!(
        (t["state"].as_str(), t["where"].as_str()),
        (Some("running"), Some(ZOMBIE)),
        "{t}"
    );
    let status = common::zos::json(lan.m(), &["status", "--json"]);
    assert_eq!(
        status["sessions"].as_array().map(Vec::len),
        Some(1),
        "still dominated: {status}"
    );

    let out = lan.m().run(&["release", ZOMBIE, "--force"]);
    assert!(out.status.success(), "{}", text(&out));
    let t = lan.task(id);
    assert_eq!(
        (t["state"].as_str(), t["where"].as_str()),
        (Some("lost"), Some(ZOMBIE)),
        "{t}"
    );
    let marker = script.to_str().unwrap();
    common::poll::until(s(10), || {
        common::migrate::processes_with(marker)
            .into_iter()
            .all(|p| !common::migrate::in_netns_of(p, lan.z()))
            .then_some(())
    })
    .expect("the zombie keeps nothing of the forced-out task");
    // Restarted from its image (taken at the move, before the socket): stage 2 again.
    home_from_image(&lan, id);
    wait_log(&lan, id, "stage 2 done", s(60));
    std::fs::write(steps.join("step-3"), "").unwrap();
    assert_eq!(lan.wait_exit(id, common::migrate::FINISH), 0);
}
