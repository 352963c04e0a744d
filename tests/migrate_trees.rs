//! Issue 10: what real process trees hold survives two moves (to the zombie and back): a
//! shell pipeline, a pipe, a FIFO and a unix socket pair with bytes nobody read yet, a child that exits while its
//! parent is on the zombie (reaped after coming home), a task writing through its terminal
//! all the time (the master's log has every line once, in order).

mod common;

use std::path::Path;

use common::migrate::{FINISH, MoveLan, PYTHON, ZOMBIE, s, wait_log};

/// A tree: a writer child filling a pipe the parent reads only at the end, a FIFO and a
/// socket pair whose bytes wait unread, and a child that exits at step 2. Moves happen at steps 1 and 2.
const TREE: &str = r#"
import hashlib, os, socket, sys, time
steps, fifo = sys.argv[1], sys.argv[2]
def wait(k):
    while not os.path.exists(os.path.join(steps, 'step-%d' % k)):
        time.sleep(0.02)
r, w = os.pipe()
writer = os.fork()
if writer == 0:
    os.close(r)
    for k in range(1, 4):
        wait(k)
        os.write(w, bytes([k]) * 20000)
        print('wrote block', k, flush=True)
    os._exit(0)
os.close(w)
os.mkfifo(fifo)
feeder = os.fork()
if feeder == 0:
    fd = os.open(fifo, os.O_WRONLY)
    os.write(fd, b'fifo-bytes-' * 1000)
    wait(3)
    os.write(fd, b'after-the-moves')
    os.close(fd)
    os._exit(0)
fifo_r = os.open(fifo, os.O_RDONLY)
sock_here, sock_there = socket.socketpair()
talker = os.fork()
if talker == 0:
    sock_here.close()
    sock_there.sendall(b'socket-bytes-' * 1000)
    wait(3)
    sock_there.sendall(b'after-the-moves')
    sock_there.close()
    os._exit(0)
sock_there.close()
child = os.fork()
if child == 0:
    wait(2)
    os._exit(7)
print('tree ready', flush=True)
wait(4)
def drain(fd):
    out = b''
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return out
        out += chunk
piped, fifoed, socketed = drain(r), drain(fifo_r), drain(sock_here.fileno())
_, status = os.waitpid(child, 0)
os.waitpid(writer, 0)
os.waitpid(feeder, 0)
os.waitpid(talker, 0)
print('result pipe', hashlib.sha256(piped).hexdigest(), len(piped),
      'fifo', hashlib.sha256(fifoed).hexdigest(), len(fifoed),
      'socket', hashlib.sha256(socketed).hexdigest(), len(socketed),
      'child', os.waitstatus_to_exitcode(status), flush=True)
"#;

/// A producer for `producer | sha256sum`: a block per step.
const PRODUCER: &str = r#"
import os, sys, time
steps = sys.argv[1]
for k in range(1, 5):
    while not os.path.exists(os.path.join(steps, 'step-%d' % k)):
        time.sleep(0.02)
    sys.stdout.buffer.write(bytes([k]) * 100000)
    sys.stdout.buffer.flush()
"#;

/// What an uninterrupted run of `argv` prints, with every step there from the start.
fn uninterrupted(argv: &[&str], steps: &Path) -> String {
    for k in 1..=4 {
        std::fs::write(steps.join(format!("step-{k}")), "").unwrap();
    }
    let out = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .expect("run the program");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for k in 1..=4 {
        std::fs::remove_file(steps.join(format!("step-{k}"))).unwrap();
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("result") || l.ends_with("  -"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn pipes_fifos_a_pipeline_and_a_child_exiting_away_survive_two_moves() {
    let lan = MoveLan::new();
    let steps = lan.work.join("steps");
    std::fs::create_dir_all(&steps).unwrap();
    let tree = lan.work.join("tree.py");
    std::fs::write(&tree, TREE).unwrap();
    let producer = lan.work.join("producer.py");
    std::fs::write(&producer, PRODUCER).unwrap();
    let (tree_s, steps_s, prod_s) = (
        tree.to_str().unwrap(),
        steps.to_str().unwrap(),
        producer.to_str().unwrap(),
    );
    // The FIFO lives in the pod's /tmp: the master's on the master, the pod's own on the zombie.
    let fifo_here = format!("/tmp/zos-e2e-fifo-{}", std::process::id());
    let fifo_task = format!("/tmp/zos-e2e-fifo-task-{}", std::process::id());
    let _ = std::fs::remove_file(&fifo_here);
    let _ = std::fs::remove_file(&fifo_task);
    let pipeline = format!("{PYTHON} {prod_s} {steps_s} | sha256sum");
    let expected_tree = uninterrupted(&[PYTHON, tree_s, steps_s, &fifo_here], &steps);
    let expected_pipe = uninterrupted(&["sh", "-c", &pipeline], &steps);
    let _ = std::fs::remove_file(&fifo_here);

    let t = lan.run_migrant(&lan.work, &[PYTHON, tree_s, steps_s, &fifo_task]);
    let p = lan.run_migrant(&lan.work, &["sh", "-c", &pipeline]);
    wait_log(&lan, t, "tree ready", s(60));
    let step = |k: u32| std::fs::write(steps.join(format!("step-{k}")), "").unwrap();
    step(1);
    wait_log(&lan, t, "wrote block 1", s(60));
    lan.migrate(t);
    lan.migrate(p);
    step(2);
    wait_log(&lan, t, "wrote block 2", s(60));
    // The child exits on the zombie; it stays unreaped until its parent reads at step 4.
    // A defunct process has no command line: four of the five Pythons are left (the pod's
    // init names the command too).
    let pythons = || {
        common::migrate::processes_with(tree_s)
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() != "zos-pod-init")
            })
            .count()
    };
    common::poll::until(s(30), || (pythons() == 4).then_some(())).unwrap_or_else(|| {
        let procs = common::migrate::processes_with(tree_s);
        let states: Vec<String> = procs
            .iter()
            .map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default())
            .collect();
        panic!("the child did not exit on the zombie: {states:#?}")
    });
    lan.home(t);
    lan.home(p);
    step(3);
    step(4);
    assert_eq!(lan.wait_exit(t, FINISH), 0);
    assert_eq!(lan.wait_exit(p, FINISH), 0);
    let tree_log = lan.logs(t);
    assert!(
        tree_log.contains(&expected_tree),
        "expected {expected_tree:?} in {tree_log:?}"
    );
    assert!(expected_tree.contains("child 7"), "{expected_tree}");
    let pipe_log = lan.logs(p);
    assert!(
        pipe_log.contains(&expected_pipe),
        "expected {expected_pipe:?} in {pipe_log:?}"
    );
    let _ = std::fs::remove_file(&fifo_task);
}

#[test]
fn a_task_writing_through_its_terminal_loses_and_repeats_no_line_across_two_moves() {
    let lan = MoveLan::new();
    let script = "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo line $i; \
                  [ $((i % 50)) -eq 0 ] && sleep 0.05; done; echo all written";
    let id = lan.run_migrant(&lan.work, &["bash", "-c", script]);
    wait_log(&lan, id, "line 200", s(60));
    lan.migrate(id);
    let away = lan.logs(id).lines().count();
    wait_log(&lan, id, &format!("line {}", away + 100), s(60));
    lan.home(id);
    assert_eq!(lan.wait_exit(id, FINISH), 0);
    let log = lan.logs(id);
    let lines: Vec<&str> = log
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| l.starts_with("line "))
        .collect();
    let want: Vec<String> = (1..=3000).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, want, "the log has every line once, in order");
    assert!(log.contains("all written"), "{log:?}");
}

#[test]
fn a_task_keeps_writing_its_files_in_an_export_from_the_zombie_and_the_master_has_every_byte() {
    let lan = MoveLan::new();
    let out = lan.work.join("out.log");
    let steps = lan.work.join("steps");
    std::fs::create_dir_all(&steps).unwrap();
    // Opened once, written through one descriptor at each step (here, there, here again).
    let script = format!(
        "exec 3>>{out}; for k in 1 2 3 4 5 6; do \
           while [ ! -e {steps}/step-$k ]; do sleep 0.02; done; \
           i=0; while [ $i -lt 200 ]; do i=$((i+1)); echo \"step $k line $i\" >&3; done; \
           echo step $k written; done",
        out = out.display(),
        steps = steps.display()
    );
    let id = lan.run_migrant(&lan.work, &["bash", "-c", &script]);
    let step = |k: u32| {
        std::fs::write(steps.join(format!("step-{k}")), "").unwrap();
        wait_log(&lan, id, &format!("step {k} written"), s(60));
    };
    step(1);
    lan.migrate(id);
    step(2);
    step(3);
    lan.home(id);
    step(4);
    lan.migrate(id);
    step(5);
    lan.home(id);
    step(6);
    assert_eq!(lan.wait_exit(id, FINISH), 0);
    let text = std::fs::read_to_string(&out).unwrap();
    let want: String = (1..=6)
        .flat_map(|k| (1..=200).map(move |i| format!("step {k} line {i}\n")))
        .collect();
    assert_eq!(text, want, "the master's file has every byte, in order");
}

/// A program that counts in stages (each waits for `STEPS/step-K`) and prints its result
/// (at `step-5`).
const STAGED_C: &str = r#"
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    unsigned long long h = 1469598103934665603ULL;
    char path[4096];
    for (int k = 1; k <= 4; k++) {
        snprintf(path, sizeof path, "%s/step-%d", argv[1], k);
        while (access(path, F_OK) != 0) usleep(20000);
        for (unsigned long long i = 0; i < 2000000; i++) h = (h ^ (i + k)) * 1099511628211ULL;
        printf("stage %d done\n", k);
        fflush(stdout);
    }
    snprintf(path, sizeof path, "%s/step-5", argv[1]);
    while (access(path, F_OK) != 0) usleep(20000);
    printf("result %llx\n", h);
    return 0;
}
"#;

#[test]
fn an_executable_the_zombie_lacks_travels_with_the_task_and_is_found_again_at_home() {
    let lan = MoveLan::new();
    // Built in the master's home, outside the exports: hidden in the zombie's pod.
    let bin_dir = lan.m().home.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let src = bin_dir.join("staged.c");
    std::fs::write(&src, STAGED_C).unwrap();
    let exe = bin_dir.join("staged");
    let cc = std::process::Command::new("cc")
        .arg("-O1")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("run cc");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let steps = lan.work.join("c-steps");
    std::fs::create_dir_all(&steps).unwrap();
    let id = lan.run_migrant(&lan.work, &[exe.to_str().unwrap(), steps.to_str().unwrap()]);
    let step = |k: u32| {
        std::fs::write(steps.join(format!("step-{k}")), "").unwrap();
        wait_log(&lan, id, &format!("stage {k} done"), s(60));
    };
    step(1);
    lan.migrate(id);
    // It travelled: the zombie keeps it under its runtime dir, read-only, by content.
    let files = lan.z().runtime.clone();
    let travelled: Vec<_> = walk(&files)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/migrants/") && p.is_file())
        .collect();
    assert_eq!(travelled.len(), 1, "{travelled:?}");
    assert_eq!(
        std::fs::read(&travelled[0]).unwrap(),
        std::fs::read(&exe).unwrap()
    );
    step(2);
    lan.home(id);
    step(3);
    lan.migrate(id);
    step(4);
    lan.home(id);
    std::fs::write(steps.join("step-5"), "").unwrap();
    assert_eq!(lan.wait_exit(id, FINISH), 0);
    assert!(lan.logs(id).contains("result "), "{}", lan.logs(id));
    // Released, the zombie keeps nothing of it.
    lan.m().run_ok(&["release", ZOMBIE]);
    assert!(
        walk(&files)
            .iter()
            .all(|p| !p.to_string_lossy().contains("/migrants")),
        "{:?}",
        walk(&files)
    );
}

/// Every path under `dir` (not following links).
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) && !p.ends_with("anima") {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}
