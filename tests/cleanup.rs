//! Issue 5: a zombie keeps nothing of the master. Its file system (home,
//! /tmp, /var/tmp, runtime dir), its mounts and its processes are the same
//! before domination and after it ends — by release, by the master being
//! killed, or by the master's cable being pulled (the lease); and writes
//! the master acknowledged are on the master's disk.
//!
//! The zombie gets a /tmp and /var/tmp of its own (a private tmpfs each, as
//! a separate machine has; its home is bound back in), so what is compared
//! is exactly what the zombie and its children see, whatever else runs on
//! this machine meanwhile.

mod common;

use std::path::{Path, PathBuf};

use common::nsenter::sh_ok;
use common::snapshot::{Tree, descendants, mounts};
use common::zos::{self, text};
use common::{Lan, secs};

/// What the zombie holds, everything compared.
#[derive(Debug, PartialEq)]
struct ZombieState {
    files: Tree,
    mounts: Vec<String>,
    processes: Vec<String>,
}

fn zombie_state(lan: &Lan, pid: i32) -> ZombieState {
    let z = lan.host("z1");
    // The zombie's own /tmp and /var/tmp, seen through its root.
    let tmp = PathBuf::from(format!("/proc/{pid}/root/tmp"));
    let var_tmp = PathBuf::from(format!("/proc/{pid}/root/var/tmp"));
    // The harness's logs grow as the daemons run: they are the test's, not
    // the zombie's. So are the directories bound into the zombie's /tmp: the
    // host's (its home and runtime dir inside are walked as roots of their
    // own) and, for a checkout under /tmp, the binary's.
    let mut skip: Vec<PathBuf> = std::fs::read_dir(&z.home)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    for bound in [z.home.parent().unwrap(), Path::new(common::host::ZOS)] {
        if let Ok(rel) = bound.strip_prefix("/tmp") {
            skip.push(tmp.join(rel.components().next().unwrap()));
        }
    }
    let skip: Vec<&Path> = skip.iter().map(|p| p.as_path()).collect();
    ZombieState {
        files: Tree::of(&[&z.home, &z.runtime, &tmp, &var_tmp], &skip),
        mounts: mounts(pid),
        processes: descendants(pid),
    }
}

fn assert_same(before: &ZombieState, after: &ZombieState, how: &str) {
    let diff = after.files.diff(&before.files);
    assert!(
        diff.is_empty(),
        "after {how}, files differ:\n{}",
        diff.join("\n")
    );
    assert_eq!(
        before.mounts, after.mounts,
        "after {how}, the mounts differ"
    );
    assert_eq!(
        before.processes, after.processes,
        "after {how}, the zombie's processes differ"
    );
}

/// Waits (10 s at most) until the zombie is back to `before`: its clean-up
/// closes windows first, then unmounts and removes the mount point, so a
/// look taken in between sees a part done. Fails with the difference.
fn settles(lan: &Lan, zpid: i32, before: &ZombieState, how: &str) {
    let done = common::until(secs(10), || {
        (zombie_state(lan, zpid) == *before).then_some(())
    });
    if done.is_none() {
        assert_same(before, &zombie_state(lan, zpid), how);
    }
}

/// Dominates `z1`, uses everything the domination sets up on it (a view,
/// the shared folder, a viewer window), and returns the mount path.
fn dominate_and_use(lan: &Lan, zombie_pid: i32) -> String {
    let (m, z) = (lan.host("m"), lan.host("z1"));
    let out = m.run(&["dominate", "z1"]);
    assert!(out.status.success(), "zos dominate: {}", text(&out));
    let status = zos::json(z, &["status", "--json"]);
    let mount = status["sessions"][0]["mount"]
        .as_str()
        .expect("mounted")
        .to_string();
    sh_ok(
        zombie_pid,
        &format!(
            "echo written-on-the-zombie > {mount}/docs/from-zombie; ls -R {mount} > /dev/null"
        ),
    );
    // The zombie has a screen: its ZOS session (Xephyr) is open too, so
    // the comparisons below cover what the session leaves.
    // Generous waits: on a loaded 2-core machine the session and viewer take a while.
    let session = common::until(secs(40), || {
        let status = zos::json(z, &["status", "--json"]);
        status["session"]["display"].as_str().map(str::to_string)
    });
    assert!(session.is_some(), "no ZOS session was opened on the zombie");
    // The zombie opened a viewer window for the shared app.
    let viewer = common::until(secs(40), || {
        descendants(zombie_pid)
            .into_iter()
            .find(|p| p.ends_with(" zos"))
    });
    assert!(
        viewer.is_some(),
        "no viewer window was opened on the zombie"
    );
    let view = common::view::View::open(z, 1);
    view.wait_frame(secs(10), |f| f.width > 0).expect("a frame");
    drop(view);
    mount
}

#[test]
fn nothing_stays_on_the_zombie_after_release_kill_or_cable_pull() {
    let lan = Lan::new(&["m", "z1"]);
    let (m, z) = (lan.host("m"), lan.host("z1"));
    let docs = m.home.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    m.run_ok(&["export", docs.to_str().unwrap()]);
    let mut master = zos::start_master(m);
    // The zombie has a screen, so it opens viewer windows.
    let screen = z.xvfb();
    let zombie = {
        // Private /tmp and /var/tmp, the host's directory (and the binary's,
        // for a checkout under /tmp) bound back in.
        let mut keep = vec![z.home.parent().unwrap().to_path_buf()];
        let exe_dir = Path::new(common::host::ZOS).parent().unwrap();
        if exe_dir.starts_with("/tmp") {
            keep.push(exe_dir.to_path_buf());
        }
        let rebind: String = keep
            .iter()
            .map(|dir| {
                let rel = dir.strip_prefix("/tmp").unwrap().display();
                format!(
                    "mkdir -p {0}; mount --bind $keep/{rel} {0}; ",
                    dir.display()
                )
            })
            .collect();
        let script = format!(
            "set -e; keep=$(mktemp -d /run/zos-e2e-keep.XXXXXX); mount --bind /tmp $keep
             mount -t tmpfs -o mode=1777 tmpfs /tmp; mount -t tmpfs -o mode=1777 tmpfs /var/tmp
             {rebind}umount $keep; rmdir $keep
             exec {zos} zombie --name z1 --auto-accept",
            zos = common::host::ZOS,
        );
        let proc = z.spawn_program(
            "unshare",
            &["-m", "--propagation", "private", "sh", "-c", &script],
            &[("DISPLAY", &screen.display)],
        );
        proc.wait_log("listening on", zos::STARTUP);
        proc
    };
    let zpid = zombie.pid();
    zos::pair(m, z, "z1", "complete");
    m.run_ok(&["run", "--shared", "--", "xterm"]);
    // Settle: the pairing's trust file is written, the first adverts sent.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let before = zombie_state(&lan, zpid);

    // 1. Release.
    dominate_and_use(&lan, zpid);
    assert_ne!(
        zombie_state(&lan, zpid).mounts,
        before.mounts,
        "the share was mounted"
    );
    m.run_ok(&["release", "z1"]);
    settles(&lan, zpid, &before, "release");
    assert_eq!(
        std::fs::read_to_string(docs.join("from-zombie")).unwrap(),
        "written-on-the-zombie\n"
    );

    // 2. The master's cable is pulled while a writer on the zombie runs:
    // the lease ends, and every write the master acknowledged is on its disk.
    let mount = dominate_and_use(&lan, zpid);
    let writer = format!(
        "python3 -u -c '
import os, sys
fd = os.open(\"{mount}/docs/log\", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
n = 0
while True:
    block = (\"%08d\" % n).encode() * 512
    try:
        os.write(fd, block)
    except OSError as e:
        print(\"error\", e, flush=True)
        break
    n += 1
    print(n, flush=True)
' > {out} 2>&1 &",
        out = z.home.join("writer.out").display()
    );
    sh_ok(zpid, &writer);
    std::thread::sleep(std::time::Duration::from_millis(500));
    m.link_down();
    let pulled = std::time::Instant::now();
    zombie.wait_log("its lease ended", secs(15));
    let after_lease = pulled.elapsed();
    // README: the lease ends within 10 s of the master vanishing; the
    // margin covers the log poll and a loaded machine.
    let margin = std::time::Duration::from_secs(2);
    assert!(
        after_lease <= zos_daemon::limits::LEASE + margin,
        "the lease ended {:.1} s after the cable was pulled (promised: {} s, + {} s margin)",
        after_lease.as_secs_f64(),
        zos_daemon::limits::LEASE.as_secs(),
        margin.as_secs()
    );
    let lines = std::fs::read_to_string(z.home.join("writer.out")).unwrap();
    let acked: usize = lines
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .next_back()
        .unwrap_or(0);
    assert!(acked > 0, "the writer wrote nothing: {lines}");
    let on_disk = std::fs::read(docs.join("log")).unwrap();
    assert!(
        on_disk.len() >= acked * 4096,
        "{acked} blocks were acknowledged but only {} bytes are on the master",
        on_disk.len()
    );
    for (i, block) in on_disk.chunks(4096).take(acked).enumerate() {
        assert_eq!(block, format!("{i:08}").repeat(512).as_bytes(), "block {i}");
    }
    // The writer saw its error and ended; nothing else of the session runs,
    // and the zombie's clean-up (windows closed, then the mount and its
    // point removed) comes to its end.
    let _ = std::fs::remove_file(z.home.join("writer.out"));
    settles(&lan, zpid, &before, "the lease ended");
    eprintln!(
        "lease ended {:.1} s after the cable was pulled",
        after_lease.as_secs_f64()
    );
    m.link_up();

    // 3. The master is killed outright.
    zos::wait_listed(m, "z1", secs(20)).expect("the master sees z1 again");
    dominate_and_use(&lan, zpid);
    master.kill9();
    let _ = master.wait_exit(secs(5));
    zombie.wait_log("the session was lost", secs(15));
    settles(&lan, zpid, &before, "the master was killed");
}
