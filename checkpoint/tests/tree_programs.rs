//! Real programs in pods, checkpointed mid-way and restored: `make -j2` building 50 C files (a
//! tree that forks, waits and shares a jobserver pipe) and python3 with threads; each finishes
//! with the result of an uninterrupted run.

mod common;

use common::pods::*;
use common::*;
use std::time::Duration;

#[test]
fn make_j2_of_50_files_finishes_after_a_checkpoint_mid_build() {
    let dir = TempDir::new("make");
    for i in 1..=50 {
        std::fs::write(
            dir.join(&format!("f{i}.c")),
            format!("int f{i}(int x) {{ int s = 0; for (int i = 0; i < x; i++) s += i * {i}; return s; }}\n"),
        )
        .unwrap();
    }
    std::fs::write(dir.join("main.c"), "int main(void) { return 0; }\n").unwrap();
    std::fs::write(
        dir.join("Makefile"),
        "OBJ = $(patsubst %.c,%.o,$(wildcard *.c))\nprog: $(OBJ)\n\tcc -o $@ $(OBJ)\n\
         %.o: %.c\n\tsleep 0.05; cc -O2 -c -o $@ $<\n",
    )
    .unwrap();
    let mut s = spec(&[
        "sh",
        "-c",
        "make -j2 > make.log 2>&1; echo make=$?; ls *.o | wc -l",
    ]);
    s.cwd = dir.0.clone();
    let run = PodRun::start(&s);
    // Mid-build: some objects made, not all.
    assert!(wait_until(30, || {
        let n = std::fs::read_dir(&dir.0)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "o")
            })
            .count();
        n >= 10
    }));
    let (image, stats) = run.checkpoint(zos_checkpoint::AfterDump::Kill);
    assert!(stats.processes >= 3, "{stats:?}");
    let (_, _) = run.finish(10);
    let after = restore_running(&image);
    let (code, text) = after.finish(120);
    assert_eq!(code, 0);
    assert!(text.contains("make=0\r\n51"), "{text}");
    assert!(dir.join("prog").is_file());
}

#[test]
fn python_threads_finish_with_the_uninterrupted_result() {
    let script = r#"
import threading, hashlib
res = {}
def work(i):
    h = hashlib.sha256()
    for k in range(1200000):
        h.update(str(k * i).encode())
    res[i] = h.hexdigest()[:16]
print("READY", flush=True)
ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
print("RESULT", sorted(res.items()), flush=True)
"#;
    let reference = std::process::Command::new("python3")
        .args(["-c", script])
        .output()
        .expect("python3");
    let want = String::from_utf8(reference.stdout).unwrap();
    let want = want
        .lines()
        .find(|l| l.starts_with("RESULT"))
        .unwrap()
        .to_string();
    let run = PodRun::start(&spec(&["python3", "-c", script]));
    run.wait_for("READY", 20);
    std::thread::sleep(Duration::from_millis(300));
    let task = tree_table(run.pod.pid());
    let (image, _) = run.checkpoint_and_end();
    let after = restore_running(&image);
    let (code, text) = after.finish(120);
    assert_eq!(code, 0);
    assert!(text.contains(&want), "want {want}:\n{text} (tree {task:?})");
}
