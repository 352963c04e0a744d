//! Shared helpers of the checkpoint integration tests: compiling the C test programs, running
//! them, and cleaning up every process and directory even when a test fails.
#![allow(dead_code)]

pub mod forge;
pub mod mutate;
pub mod pods;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static BUILD: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Compile every program of tests/progs once per test process; returns the output dir.
pub fn progs() -> PathBuf {
    let mut g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = g.as_ref() {
        return p.clone();
    }
    // A test re-run as another user gets the programs its root parent compiled.
    if let Some(dir) = std::env::var_os("ZCKPT_PROGS") {
        zos_checkpoint::set_child_subreaper().expect("subreaper");
        *g = Some(PathBuf::from(dir));
        return PathBuf::from(std::env::var_os("ZCKPT_PROGS").unwrap());
    }
    zos_checkpoint::set_child_subreaper().expect("subreaper");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/progs");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ckpt-progs");
    std::fs::create_dir_all(&out).unwrap();
    let header = std::fs::metadata(src.join("common.h"))
        .unwrap()
        .modified()
        .unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let path = e.unwrap().path();
        if path.extension().and_then(|x| x.to_str()) != Some("c") {
            continue;
        }
        let bin = out.join(path.file_stem().unwrap());
        let src_time = std::fs::metadata(&path)
            .unwrap()
            .modified()
            .unwrap()
            .max(header);
        if std::fs::metadata(&bin)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t > src_time)
        {
            continue;
        }
        let st = Command::new("gcc")
            .args(["-O2", "-pthread", "-o"])
            .arg(&bin)
            .arg(&path)
            .arg("-lm")
            .status()
            .expect("gcc");
        assert!(st.success(), "compiling {}", path.display());
    }
    *g = Some(out.clone());
    out
}

/// The image key these tests sign with (stands for this machine's).
pub fn test_key() -> zos_checkpoint::ImageKey {
    zos_checkpoint::ImageKey::from_bytes(*b"zos checkpoint tests' image key!")
}

/// Path of a compiled test program.
pub fn prog(name: &str) -> String {
    progs().join(name).to_string_lossy().into_owned()
}

/// A scratch directory (world-writable), removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        // Not /dev/shm: every pod has its own.
        let base = "/tmp";
        let p = PathBuf::from(format!(
            "{base}/zckpt-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Command::new("chmod").arg("777").arg(&p).status().unwrap();
        TempDir(p)
    }
    pub fn join(&self, s: &str) -> PathBuf {
        self.0.join(s)
    }
    pub fn path(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A program under test plus every process restored from it; all killed on drop.
pub struct Running {
    pub child: Child,
    pub pid: i32,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<BufReader<ChildStdout>>,
    pub others: Vec<i32>,
}

impl Running {
    /// Start `args` (through `launch`, which closes leaked descriptors) with piped stdio.
    pub fn start(args: &[&str]) -> Running {
        let mut child = Command::new(prog("launch"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let pid = child.id() as i32;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().map(BufReader::new);
        Running {
            child,
            pid,
            stdin,
            stdout,
            others: Vec::new(),
        }
    }

    /// Start `args` as user nobody (uid/gid 65534, no supplementary groups).
    pub fn start_as_nobody(args: &[&str]) -> Running {
        let mut all = vec![
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ];
        all.extend_from_slice(args);
        Running::start(&all)
    }

    /// Read stdout lines until one starts with `prefix`; returns it.
    pub fn wait_line(&mut self, prefix: &str) -> String {
        let out = self.stdout.as_mut().expect("stdout");
        loop {
            let mut l = String::new();
            let n = out.read_line(&mut l).unwrap();
            assert!(n > 0, "program ended before printing {prefix}");
            if l.starts_with(prefix) {
                return l.trim_end().to_string();
            }
        }
    }

    /// Reap the original after a checkpoint ended it.
    pub fn reap(&mut self) {
        let _ = self.child.wait();
    }

    /// Remember a restored process, to kill it on drop.
    pub fn track(&mut self, pid: i32) {
        self.others.push(pid);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for &p in &self.others {
            kill(p);
            let _ = zos_checkpoint::wait_child(p, Duration::from_secs(2));
        }
    }
}

/// SIGKILL a process.
pub fn kill(pid: i32) {
    kill_with(pid, "KILL");
}

/// Send signal `sig` (a name: "STOP", "CONT"…) to a process.
pub fn kill_with(pid: i32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Wait for a restored child to exit; returns its exit code.
pub fn wait_exit(pid: i32, secs: u64) -> i32 {
    zos_checkpoint::wait_child(pid, Duration::from_secs(secs))
        .expect("wait")
        .unwrap_or_else(|| panic!("process {pid} still running after {secs}s"))
}

/// Poll until `f` is true or `secs` pass.
pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// The `Uid:`, `Gid:` and `Groups:` lines of a process's status.
pub fn ids_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("Uid:") || l.starts_with("Gid:") || l.starts_with("Groups:"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Give `path` to uid/gid `id` (recursively).
pub fn chown(path: &Path, id: u32) {
    let st = Command::new("chown")
        .args(["-R", &format!("{id}:{id}")])
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Write `go\n` to a file for use as restored stdin.
pub fn go_file(dir: &TempDir) -> PathBuf {
    let p = dir.join("go.txt");
    std::fs::write(&p, "go\n").unwrap();
    p
}

/// The `zos-pod-init` binary of this workspace, built (once per test process) with the same
/// cargo that runs the tests, so a test never runs a stale init.
pub fn pod_init() -> PathBuf {
    static INIT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut g = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = g.as_ref() {
        return p.clone();
    }
    if let Some(bin) = std::env::var_os("ZCKPT_INIT") {
        return PathBuf::from(bin);
    }
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "--quiet", "-p", "zos-pod-init", "--target-dir"])
        .arg(target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo to build zos-pod-init");
    assert!(st.success(), "building zos-pod-init failed");
    let bin = target.join("debug/zos-pod-init");
    assert!(bin.is_file(), "{} missing after the build", bin.display());
    *g = Some(bin.clone());
    bin
}
