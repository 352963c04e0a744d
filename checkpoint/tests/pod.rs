//! Pods: a fresh pod runs its task in its own namespaces on its own pty, as root and as an
//! ordinary user.

mod common;

use common::*;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};
use zos_checkpoint::pod::{self, MountPlan, Pod, PodSpec};

/// A pod killed and reaped when the test ends, however it ends.
pub struct PodGuard(pub Pod);

impl Drop for PodGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

fn spec(argv: &[&str]) -> PodSpec {
    PodSpec {
        init: pod_init(),
        argv: argv.iter().map(OsString::from).collect(),
        cwd: "/".into(),
        env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".into(), "LANG=C".into()],
        inside_uid: 0,
        inside_gid: 0,
        mounts: MountPlan::default(),
    }
}

/// Read the pty master until `done` says the text is complete or `secs` pass.
fn read_until(master: &OwnedFd, secs: u64, done: impl Fn(&str) -> bool) -> String {
    let mut out = Vec::new();
    let t = Instant::now();
    let file = std::fs::File::from(master.try_clone().unwrap());
    let fd = file.as_raw_fd();
    let mut file = file;
    while t.elapsed() < Duration::from_secs(secs) && !done(&String::from_utf8_lossy(&out)) {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match file.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn fresh_pod_runs_its_task_as_pid_2_in_its_own_namespaces_on_its_pty() {
    let script = "echo pid=$$ ppid=$PPID uid=$(id -u); tty; ls /dev/pts; \
                  cat /proc/1/cmdline | tr '\\0' ' '; echo; read x; exit 7";
    let mut p = PodGuard(pod::spawn(&spec(&["sh", "-c", script])).expect("spawn"));
    let master = p.0.take_pty_master().expect("pty master");
    let text = read_until(&master, 10, |t| t.contains("--pty-sock"));
    assert!(text.contains("pid=2 ppid=1 uid=0"), "{text}");
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(
        text.contains("zos-pod-init --pty-sock 3 -- sh -c"),
        "{text}"
    );
    let init = p.0.pid();
    for ns in ["user", "pid", "mnt", "ipc"] {
        let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let pods = std::fs::read_link(format!("/proc/{init}/ns/{ns}")).unwrap();
        assert_ne!(ours, pods, "the pod shares our {ns} namespace");
    }
    std::fs::File::from(master.try_clone().unwrap())
        .write_all(b"x\n")
        .unwrap();
    assert_eq!(p.0.wait_timeout(Duration::from_secs(10)).unwrap(), Some(7));
}

#[test]
fn mount_plan_masks_private_places_and_binds_an_export_at_its_path_also_after_restore() {
    use zos_checkpoint::pod::BindMount;
    let export = TempDir::new("export");
    std::fs::write(export.join("hello.txt"), "from the master\n").unwrap();
    let marker = format!("/tmp/zos-pod-mask-marker-{}", std::process::id());
    std::fs::write(&marker, "must stay hidden").unwrap();
    struct Rm(String);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _rm = Rm(marker.clone());
    let work = "/tmp/home/user/work";
    let plan = MountPlan {
        masks: vec!["/tmp".into(), "/mnt".into()],
        binds: vec![BindMount {
            source: export.0.clone(),
            target: work.into(),
        }],
    };
    let script = format!(
        "echo tmp=$(ls -A /tmp); test -e {marker} && echo LEAK; echo cwd=$(pwd); \
         cat hello.txt; echo READY; read go; cat hello.txt; echo written > back.txt; exit 4"
    );
    let mut s = spec(&["sh", "-c", &script]);
    s.cwd = work.into();
    s.mounts = plan.clone();
    let mut p = PodGuard(pod::spawn(&s).expect("spawn"));
    let master = p.0.take_pty_master().unwrap();
    let text = read_until(&master, 10, |t| t.contains("READY"));
    assert!(text.contains("tmp=home\r\n"), "{text}");
    assert!(!text.contains("LEAK"), "{text}");
    assert!(text.contains(&format!("cwd={work}")), "{text}");
    assert!(text.contains("from the master"), "{text}");
    let mut seen = String::new();
    pod::open_in_pod(p.0.pid(), &format!("{work}/hello.txt"))
        .expect("open in the pod's view")
        .read_to_string(&mut seen)
        .unwrap();
    assert_eq!(seen, "from the master\n");
    assert!(
        pod::open_in_pod(p.0.pid(), &marker).is_err(),
        "the masked file is visible"
    );
    let mut image = Vec::new();
    zos_checkpoint::checkpoint_tree(p.0.pid(), &Default::default(), &mut image).unwrap();
    drop(master);
    let _ = p.0.wait();
    let opts = zos_checkpoint::TreeRestoreOptions {
        mounts: plan,
        ..Default::default()
    };
    let mut q = PodGuard(
        zos_checkpoint::restore_tree(&image, &opts)
            .unwrap()
            .resume()
            .unwrap(),
    );
    let master = q.0.take_pty_master().unwrap();
    std::fs::File::from(master.try_clone().unwrap())
        .write_all(b"go\n")
        .unwrap();
    let text = read_until(&master, 10, |t| t.matches("from the master").count() >= 1);
    assert!(text.contains("from the master"), "{text}");
    assert_eq!(q.0.wait_timeout(Duration::from_secs(10)).unwrap(), Some(4));
    assert_eq!(
        std::fs::read_to_string(export.join("back.txt")).unwrap(),
        "written\n"
    );
}

#[test]
fn init_forwards_sigterm_to_the_task_and_exits_with_its_status() {
    let script = "trap 'echo got TERM; exit 9' TERM; echo READY; while :; do sleep 0.05; done";
    let mut p = PodGuard(pod::spawn(&spec(&["sh", "-c", script])).expect("spawn"));
    let master = p.0.take_pty_master().unwrap();
    read_until(&master, 10, |t| t.contains("READY"));
    p.0.signal(libc::SIGTERM).unwrap();
    let text = read_until(&master, 10, |t| t.contains("got TERM"));
    assert!(text.contains("got TERM"), "{text}");
    assert_eq!(p.0.wait_timeout(Duration::from_secs(10)).unwrap(), Some(9));
}

#[test]
fn init_reaps_orphans_and_reports_a_task_killed_by_a_signal() {
    let script = "( (sleep 0.2; exit 0) & ); sleep 1; \
                  echo zombies=$(ps -eo stat= | grep -c '^Z'); echo READY; kill -KILL $$";
    let mut p = PodGuard(pod::spawn(&spec(&["sh", "-c", script])).expect("spawn"));
    let master = p.0.take_pty_master().unwrap();
    let text = read_until(&master, 10, |t| t.contains("READY"));
    assert!(text.contains("zombies=0"), "{text}");
    assert_eq!(
        p.0.wait_timeout(Duration::from_secs(10)).unwrap(),
        Some(128 + 9)
    );
}
