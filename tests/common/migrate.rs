//! Migration tests' setting: a master `m` with an exported work folder and a zombie `z1`
//! dominated at level `complete` (auto-accept), and helpers for migrant tasks.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::host::ZOS;
use super::zos::{self, text};
use super::{Host, Lan, Proc, poll, secs};

/// The system's Python: a pyenv shim in root's home would be hidden in the zombie's pod.
pub const PYTHON: &str = "/usr/bin/python3";

/// The master's name in these tests.
pub const MASTER: &str = "laptop";
/// The zombie's name.
pub const ZOMBIE: &str = "z1";

/// A master and a zombie it dominates at `complete`, with `work` exported.
pub struct MoveLan {
    /// The LAN (hosts `m` and `z1`).
    pub lan: Lan,
    /// The master daemon.
    pub master: Proc,
    /// The zombie daemon.
    pub zombie: zos::Zombie,
    /// The master's exported work folder (its tasks run there).
    pub work: PathBuf,
}

impl MoveLan {
    /// Builds it; `zombie_args` are extra arguments of `zos zombie`, `zombie_toml` the
    /// zombie's settings file.
    pub fn with(zombie_args: &[&str], zombie_toml: &str) -> MoveLan {
        super::require_root();
        super::pod_init::ensure_built();
        let lan = Lan::new(&["m", "z1"]);
        let (m, z) = (lan.host("m"), lan.host("z1"));
        let work = m.home.join("work");
        std::fs::create_dir_all(&work).unwrap();
        m.run_ok(&["export", work.to_str().unwrap()]);
        std::fs::write(z.home.join("zombie.toml"), zombie_toml).unwrap();
        let master = zos::start_master_with(m, &["--name", MASTER]);
        let mut args = vec!["--auto-accept", "--no-viewers"];
        args.extend_from_slice(zombie_args);
        let zombie = zos::start_zombie(z, ZOMBIE, &args);
        zos::pair(m, z, ZOMBIE, "complete");
        let out = m.run(&["dominate", ZOMBIE]);
        assert!(out.status.success(), "zos dominate: {}", text(&out));
        MoveLan {
            lan,
            master,
            zombie,
            work,
        }
    }

    /// The default setting.
    pub fn new() -> MoveLan {
        MoveLan::with(&[], "")
    }

    /// The master host.
    pub fn m(&self) -> &Host {
        self.lan.host("m")
    }

    /// The zombie host.
    pub fn z(&self) -> &Host {
        self.lan.host("z1")
    }

    /// Starts `zos run --migrant -- ARGV` on the master in `cwd`; the task id.
    pub fn run_migrant(&self, cwd: &Path, argv: &[&str]) -> u64 {
        run_migrant_on(self.m(), cwd, argv)
    }

    /// `zos tasks --json`'s entry for task `id`.
    pub fn task(&self, id: u64) -> Value {
        task_of(self.m(), id)
    }

    /// `zos migrate ID z1`, which must succeed; its output.
    pub fn migrate(&self, id: u64) -> String {
        let out = self.m().run(&["migrate", &id.to_string(), ZOMBIE]);
        assert!(
            out.status.success(),
            "zos migrate {id} {ZOMBIE} failed: {}\n{}",
            text(&out),
            self.task(id)
        );
        let t = self.task(id);
        assert_eq!(t["where"], ZOMBIE, "{t}");
        assert_eq!(t["state"], "running", "{t}");
        text(&out)
    }

    /// `zos home ID`, which must succeed; its output.
    pub fn home(&self, id: u64) -> String {
        let out = self.m().run(&["home", &id.to_string()]);
        assert!(
            out.status.success(),
            "zos home {id} failed: {}\n{}",
            text(&out),
            self.task(id)
        );
        let t = self.task(id);
        assert_eq!(t["where"], MASTER, "{t}");
        assert_eq!(t["state"], "home", "{t}");
        text(&out)
    }

    /// Waits until task `id` has exited; its exit code.
    pub fn wait_exit(&self, id: u64, timeout: Duration) -> i64 {
        poll::until(timeout, || {
            let t = self.task(id);
            (t["state"] == "exited").then(|| t["exit"].as_i64().unwrap_or(-1))
        })
        .unwrap_or_else(|| panic!("task {id} did not end: {}", self.task(id)))
    }

    /// What task `id` wrote to its terminal.
    pub fn logs(&self, id: u64) -> String {
        let out = self.m().run(&["logs", &id.to_string()]);
        assert!(out.status.success(), "zos logs: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Default for MoveLan {
    fn default() -> Self {
        MoveLan::new()
    }
}

/// Starts `zos run --migrant -- ARGV` on `m` in `cwd`; the task id.
pub fn run_migrant_on(m: &Host, cwd: &Path, argv: &[&str]) -> u64 {
    run_migrant_with(m, cwd, &[], argv)
}

/// [`run_migrant_on`] with `env` added to the host's environment.
pub fn run_migrant_with(m: &Host, cwd: &Path, env: &[(&str, &str)], argv: &[&str]) -> u64 {
    let mut args = vec!["run", "--migrant", "--"];
    args.extend_from_slice(argv);
    let mut cmd = m.command(ZOS, &args);
    cmd.current_dir(cwd).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run zos run");
    assert!(
        out.status.success(),
        "zos run --migrant failed:\n{}",
        text(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .split_whitespace()
        .nth(1)
        .and_then(|id| id.trim_end_matches(':').parse().ok())
        .unwrap_or_else(|| panic!("no task id in {stdout:?}"))
}

/// `zos tasks --json`'s entry for task `id` on `m`.
pub fn task_of(m: &Host, id: u64) -> Value {
    let tasks = zos::json(m, &["tasks", "--json"]);
    tasks
        .as_array()
        .expect("a JSON array")
        .iter()
        .find(|t| t["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("task {id} is not listed: {tasks}"))
}

/// Host PIDs of processes whose command line contains `needle` (any namespace).
pub fn processes_with(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                out.push(pid);
            }
        }
    }
    out
}

/// Whether process `pid` runs in `host`'s network namespace.
pub fn in_netns_of(pid: i32, host: &Host) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(md) = std::fs::metadata(format!("/run/netns/{}", host.ns)) else {
        return false;
    };
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .is_ok_and(|l| l.display().to_string() == format!("net:[{}]", md.ino()))
}

/// Waits until task `id`'s terminal log shows `what`.
pub fn wait_log(lan: &MoveLan, id: u64, what: &str, timeout: Duration) {
    poll::until(timeout, || lan.logs(id).contains(what).then_some(())).unwrap_or_else(|| {
        panic!(
            "task {id} never wrote {what:?}: {:?}\n{}",
            lan.logs(id),
            lan.task(id)
        )
    });
}

/// Waits until `file` holds `what` (the task wrote it).
pub fn wait_file_contains(file: &Path, what: &str, timeout: Duration) {
    poll::until(timeout, || {
        std::fs::read_to_string(file)
            .ok()
            .filter(|t| t.contains(what))
    })
    .unwrap_or_else(|| {
        panic!(
            "{} never held {what:?}: {:?}",
            file.display(),
            std::fs::read_to_string(file)
        )
    });
}

/// A generous limit for a task to finish after its moves.
pub const FINISH: Duration = Duration::from_secs(180);

/// Seconds, re-exported for the tests.
pub fn s(n: u64) -> Duration {
    secs(n)
}

/// A staged worker: holds `MIB` MiB of memory (blocks of SHA-256 output), then for each stage
/// k = 1…6 waits for `STEPS/step-k`, folds a sixth of its memory into a hash and says
/// `stage k done`; at `STEPS/step-7` it prints `result …` and ends.
pub const WORKER: &str = r#"
import hashlib, os, sys, time
size, steps = int(sys.argv[1]) << 20, sys.argv[2]
block = b''.join(hashlib.sha256(i.to_bytes(4, 'little')).digest() for i in range(1 << 15))
data = bytearray(size)
for off in range(0, size, len(block)):
    data[off:off + len(block)] = block
    data[off] = (off >> 20) & 0xff
print('filled', flush=True)
h = hashlib.sha256()
part = size // 6
view = memoryview(data)
def wait(k):
    while not os.path.exists(os.path.join(steps, 'step-%d' % k)):
        time.sleep(0.02)
for stage in range(1, 7):
    wait(stage)
    h.update(view[(stage - 1) * part:stage * part])
    h.update(b'stage %d' % stage)
    print('stage', stage, 'done', flush=True)
wait(7)
print('result', size, h.hexdigest(), flush=True)
"#;

/// A [`WORKER`] running as a migrant, with its step folder.
pub struct Worker {
    /// Task id.
    pub id: u64,
    /// Its step folder (in the export).
    pub steps: PathBuf,
    /// What an uninterrupted run prints.
    pub expected: String,
    /// Its script's path (in its command line).
    pub script: String,
}

impl Worker {
    /// Starts a worker of `mib` MiB on `lan`'s master, and waits until its memory is filled.
    pub fn start(lan: &MoveLan, name: &str, mib: u32) -> Worker {
        let script = lan.work.join(format!("{name}.py"));
        std::fs::write(&script, WORKER).unwrap();
        let all = lan.work.join(format!("{name}-all-steps"));
        std::fs::create_dir_all(&all).unwrap();
        for k in 1..=7 {
            std::fs::write(all.join(format!("step-{k}")), "").unwrap();
        }
        let out = std::process::Command::new(PYTHON)
            .arg(&script)
            .arg(mib.to_string())
            .arg(&all)
            .output()
            .expect("run python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("result"))
            .expect("a result line")
            .to_string();
        let steps = lan.work.join(format!("{name}-steps"));
        std::fs::create_dir_all(&steps).unwrap();
        let script = script.to_str().unwrap().to_string();
        let id = lan.run_migrant(
            &lan.work,
            &[PYTHON, &script, &mib.to_string(), steps.to_str().unwrap()],
        );
        wait_log(lan, id, "filled", secs(120));
        Worker {
            id,
            steps,
            expected,
            script,
        }
    }

    /// Opens step `k` and waits until the worker has done it.
    pub fn step(&self, lan: &MoveLan, k: u32) {
        std::fs::write(self.steps.join(format!("step-{k}")), "").unwrap();
        if k < 7 {
            wait_log(lan, self.id, &format!("stage {k} done"), secs(120));
        }
    }

    /// Does the remaining stages from `from` on, lets it finish, and checks its result
    /// against the uninterrupted run.
    pub fn finish(&self, lan: &MoveLan, from: u32) {
        for k in from..=7 {
            self.step(lan, k);
        }
        assert_eq!(lan.wait_exit(self.id, FINISH), 0);
        let log = lan.logs(self.id);
        let results: Vec<&str> = log
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("result"))
            .collect();
        assert_eq!(
            results,
            vec![self.expected.as_str()],
            "one result, the uninterrupted run's: {log:?}"
        );
    }

    /// Host PIDs of its processes on `host` (in its network namespace).
    pub fn processes_on(&self, host: &Host) -> Vec<i32> {
        processes_with(&self.script)
            .into_iter()
            .filter(|p| in_netns_of(*p, host))
            .collect()
    }
}

/// `zos home ID --from-image` on a lost task: refused while the zombie's lease may still run
/// (saying when to try again), then done, saying how old the image is.
pub fn home_from_image(lan: &MoveLan, id: u64) {
    let id_s = id.to_string();
    let early = lan.m().run(&["home", &id_s, "--from-image"]);
    let said = text(&early);
    if early.status.success() {
        assert!(said.contains("ago"), "says how old: {said}");
        return;
    }
    assert!(said.contains("lease"), "{said}");
    let wait: u64 = said
        .split("try again in ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no time to wait in {said:?}"));
    assert!(wait <= 13, "{said}");
    std::thread::sleep(secs(wait));
    let out = lan.m().run(&["home", &id_s, "--from-image"]);
    let said = text(&out);
    assert!(
        out.status.success(),
        "home --from-image after the lease: {said}"
    );
    assert!(said.contains("ago"), "says how old: {said}");
}
