//! Issue 10: the real programs users move — `python3` with threads and 256 MiB of state,
//! `make -j2` building a C project of 50 files, `sqlite3` inserting rows, `gzip` of a large
//! file, `bash` running a loop with a pipe — each moved to the zombie and back in the middle
//! of its work, finishing with the result of an uninterrupted run.

mod common;

use std::path::Path;
use std::process::Command;

use common::migrate::{FINISH, MoveLan, PYTHON, ZOMBIE, s, wait_log};
use common::zos::text;

/// Moves task `id` to the zombie (`there`) or home; a moment when the engine cannot take the
/// tree (a process between `vfork` and `exec`, as `make` and `gcc` have all the time) is
/// refused with the task untouched: then try again, as a user would.
fn move_retrying(lan: &MoveLan, id: u64, there: bool) {
    let id_s = id.to_string();
    let args: Vec<&str> = if there {
        vec!["migrate", &id_s, ZOMBIE]
    } else {
        vec!["home", &id_s]
    };
    let mut refusals = Vec::new();
    for _ in 0..20 {
        let out = lan.m().run(&args);
        if out.status.success() {
            return;
        }
        let said = text(&out);
        assert!(
            said.contains("cannot move") && said.contains("it runs on"),
            "a move may only be refused up front: {said}"
        );
        refusals.push(said);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("{} refusals: {refusals:#?}", refusals.len());
}

/// Runs `sh -c SCRIPT` here in `dir`; its stdout.
fn sh_here(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const THREADS: &str = r#"
import hashlib, os, sys, threading
size, steps = 256 << 20, sys.argv[1]
block = b''.join(hashlib.sha256(i.to_bytes(4, 'little')).digest() for i in range(1 << 15))
data = bytearray(size)
for off in range(0, size, len(block)):
    data[off:off + len(block)] = block
    data[off] = (off >> 20) & 0xff
barrier = threading.Barrier(5)
results = [None] * 4
def wait(k):
    while not os.path.exists(os.path.join(steps, 'step-%d' % k)):
        threading.Event().wait(0.02)
def worker(t):
    h = hashlib.sha256()
    n = size // 4
    for stage in range(1, 5):
        wait(stage)
        h.update(memoryview(data)[t * n + (stage - 1) * n // 4:t * n + stage * n // 4])
        barrier.wait()
    results[t] = h.hexdigest()
threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
for t in threads:
    t.start()
print('threads started', flush=True)
for stage in range(1, 5):
    barrier.wait()
    print('stage', stage, 'done', flush=True)
for t in threads:
    t.join()
wait(5)
print('result', hashlib.sha256(''.join(results).encode()).hexdigest(), flush=True)
"#;

#[test]
fn python_with_threads_and_256_mib_moved_mid_way_ends_as_uninterrupted() {
    let lan = MoveLan::new();
    let script = lan.work.join("threads.py");
    std::fs::write(&script, THREADS).unwrap();
    let all = lan.work.join("all");
    std::fs::create_dir_all(&all).unwrap();
    for k in 1..=5 {
        std::fs::write(all.join(format!("step-{k}")), "").unwrap();
    }
    let expected = sh_here(
        &lan.work,
        &format!("{PYTHON} {} {} | tail -1", script.display(), all.display()),
    );
    let steps = lan.work.join("steps");
    std::fs::create_dir_all(&steps).unwrap();
    let id = lan.run_migrant(
        &lan.work,
        &[PYTHON, script.to_str().unwrap(), steps.to_str().unwrap()],
    );
    wait_log(&lan, id, "threads started", s(120));
    let step = |k: u32| {
        std::fs::write(steps.join(format!("step-{k}")), "").unwrap();
        if k < 5 {
            wait_log(&lan, id, &format!("stage {k} done"), s(120));
        }
    };
    step(1);
    lan.migrate(id);
    step(2);
    lan.home(id);
    step(3);
    lan.migrate(id);
    step(4);
    lan.home(id);
    step(5);
    assert_eq!(lan.wait_exit(id, FINISH), 0);
    assert!(
        lan.logs(id).contains(&expected),
        "{expected:?} in {:?}",
        lan.logs(id)
    );
}

/// A C project of 50 files whose program prints a sum over all of them.
fn c_project(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut main = String::from("#include <stdio.h>\n");
    let mut calls = String::new();
    for i in 0..49 {
        std::fs::write(
            dir.join(format!("f{i}.c")),
            format!(
                "unsigned long f{i}(unsigned long x) {{ unsigned long h = x + {i};\n\
                 for (int k = 0; k < 1000; k++) h = h * 6364136223846793005UL + {i};\n\
                 return h; }}\n"
            ),
        )
        .unwrap();
        main.push_str(&format!("unsigned long f{i}(unsigned long);\n"));
        calls.push_str(&format!("  s ^= f{i}(s);\n"));
    }
    main.push_str(&format!(
        "int main(void) {{ unsigned long s = 1;\n{calls}  printf(\"sum %lu\\n\", s); return 0; }}\n"
    ));
    std::fs::write(dir.join("main.c"), main).unwrap();
    let objs: Vec<String> = (0..49)
        .map(|i| format!("f{i}.o"))
        .chain(["main.o".into()])
        .collect();
    std::fs::write(
        dir.join("Makefile"),
        format!(
            "CFLAGS = -O2 -pipe\nprog: {objs}\n\t$(CC) -o prog {objs}\n%.o: %.c\n\t$(CC) $(CFLAGS) -c -o $@ $<\n",
            objs = objs.join(" ")
        ),
    )
    .unwrap();
}

fn count_objects(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "o"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn make_j2_of_50_files_moved_mid_way_builds_what_an_uninterrupted_build_builds() {
    common::tools::require_all(&["make", "gcc"]);
    let lan = MoveLan::new();
    let reference = lan.work.join("reference");
    c_project(&reference);
    sh_here(&reference, "make -s -j2 >/dev/null");
    let expected = sh_here(&reference, "./prog");
    let project = lan.work.join("project");
    c_project(&project);
    // Temporary files go to the export too (the zombie's pod has a /tmp of its own).
    let tmp = lan.work.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let script = format!(
        "export TMPDIR={tmp}; cd {dir} && make -j2 && ./prog",
        tmp = tmp.display(),
        dir = project.display()
    );
    let id = lan.run_migrant(&project, &["sh", "-c", &script]);
    common::poll::until(s(120), || (count_objects(&project) >= 8).then_some(()))
        .expect("make got going");
    move_retrying(&lan, id, true);
    let away = count_objects(&project);
    common::poll::until(s(120), || {
        (count_objects(&project) >= away + 8 || lan.task(id)["state"] == "exited").then_some(())
    })
    .expect("make builds on the zombie");
    if lan.task(id)["state"] != "exited" {
        move_retrying(&lan, id, false);
    }
    assert_eq!(lan.wait_exit(id, FINISH), 0, "{}", lan.logs(id));
    let log = lan.logs(id);
    assert!(log.contains(&expected), "{expected:?} in {log:?}");
    for i in 0..49 {
        assert_eq!(
            std::fs::read(project.join(format!("f{i}.o"))).unwrap(),
            std::fs::read(reference.join(format!("f{i}.o"))).unwrap(),
            "f{i}.o"
        );
    }
}

#[test]
fn sqlite3_inserting_rows_moved_mid_way_ends_with_every_row_once() {
    common::tools::require_all(&["sqlite3"]);
    let lan = MoveLan::new();
    // Rows go in transactions of 100; between them sqlite3 holds no lock. Inside one it does,
    // and a move is then refused (the engine does not carry file locks) and tried again.
    let rows = "i=0; echo 'pragma synchronous = off;'; echo 'create table t (n integer, s text);'; \
                echo 'pragma journal_mode = memory;'; echo 'begin;'; \
                while [ $i -lt 3000 ]; do i=$((i+1)); echo \"insert into t values ($i, 'row $i');\"; \
                [ $((i % 100)) -eq 0 ] && echo 'commit;' && sleep 0.3 && \
                echo \"select 'rows', count(*) from t;\" && echo 'begin;'; done; echo 'commit;'; \
                echo \"select 'total', count(*), sum(n), count(distinct n) from t;\"";
    let reference = lan.work.join("reference.db");
    let expected = sh_here(
        &lan.work,
        &format!("({rows}) | sqlite3 {} | tail -1", reference.display()),
    );
    let db = lan.work.join("moved.db");
    let script = format!("({rows}) | sqlite3 {}", db.display());
    let id = lan.run_migrant(&lan.work, &["bash", "-c", &script]);
    wait_log(&lan, id, "rows|500", s(120));
    move_retrying(&lan, id, true);
    wait_log(&lan, id, "rows|1500", s(120));
    move_retrying(&lan, id, false);
    assert_eq!(lan.wait_exit(id, FINISH), 0, "{}", lan.logs(id));
    assert_eq!(expected, "total|3000|4501500|3000");
    assert!(lan.logs(id).contains(&expected), "{}", lan.logs(id));
}

#[test]
fn gzip_of_a_large_file_moved_mid_way_writes_the_same_archive() {
    common::tools::require_all(&["gzip"]);
    let lan = MoveLan::new();
    let big = lan.work.join("big");
    sh_here(
        &lan.work,
        &format!(
            "{PYTHON} -c \"import hashlib,sys\nfor i in range(1 << 17): sys.stdout.buffer.write(hashlib.sha256(str(i % 3000).encode()).hexdigest().encode() * 16)\" > {}",
            big.display()
        ),
    );
    let expected = sh_here(
        &lan.work,
        &format!("gzip -6 -n -c {} | sha256sum", big.display()),
    );
    let out = lan.work.join("big.gz");
    let script = format!("gzip -6 -n -c {} > {}", big.display(), out.display());
    let id = lan.run_migrant(&lan.work, &["sh", "-c", &script]);
    let size = || std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    common::poll::until(s(120), || (size() > 0).then_some(())).expect("gzip got going");
    move_retrying(&lan, id, true);
    let there = size();
    common::poll::until(s(120), || {
        (size() > there || lan.task(id)["state"] == "exited").then_some(())
    })
    .expect("gzip works on the zombie");
    if lan.task(id)["state"] != "exited" {
        move_retrying(&lan, id, false);
    }
    assert_eq!(lan.wait_exit(id, FINISH), 0, "{}", lan.logs(id));
    assert_eq!(
        sh_here(&lan.work, &format!("sha256sum < {}", out.display())),
        expected
    );
}

#[test]
fn bash_running_a_loop_with_a_pipe_moved_mid_way_prints_the_uninterrupted_sum() {
    let lan = MoveLan::new();
    let script = "for i in $(seq 1 600); do echo $i; sleep 0.02; done | \
                  while read x; do echo $((x * x)); done | \
                  { s=0; n=0; while read y; do s=$((s + y)); n=$((n + 1)); \
                    [ $((n % 100)) -eq 0 ] && echo seen $n; done; echo sum $s; }";
    let expected = sh_here(
        &lan.work,
        &format!("bash -c '{}' | tail -1", script.replace('\'', "'\\''")),
    );
    let id = lan.run_migrant(&lan.work, &["bash", "-c", script]);
    wait_log(&lan, id, "seen 100", s(60));
    move_retrying(&lan, id, true);
    wait_log(&lan, id, "seen 200", s(60));
    move_retrying(&lan, id, false);
    assert_eq!(lan.wait_exit(id, FINISH), 0, "{}", lan.logs(id));
    assert_eq!(expected, "sum 72180100");
    assert!(lan.logs(id).contains(&expected), "{}", lan.logs(id));
}
