//! Pods under test: spawn one with a reader thread that keeps everything the task writes on
//! its pty, checkpoint it, restore it; every pod is killed when its guard drops.

use super::{pod_init, prog};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zos_checkpoint::pod::{self, MountPlan, Pod, PodSpec};
use zos_checkpoint::{AfterDump, RestoredTree, TreeDumpOptions, TreeDumpStats, TreeRestoreOptions};

/// A running pod, the text its pty gave so far, and a writer to its terminal.
pub struct PodRun {
    pub pod: Pod,
    pub out: Arc<Mutex<Vec<u8>>>,
    master: OwnedFd,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// The spec of a pod running `argv` in `/` with a plain environment, as the caller's uid.
pub fn spec(argv: &[&str]) -> PodSpec {
    PodSpec {
        init: pod_init(),
        argv: argv.iter().map(OsString::from).collect(),
        cwd: "/".into(),
        env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".into(), "LANG=C".into()],
        inside_uid: zos_uid(),
        inside_gid: zos_gid(),
        mounts: MountPlan::default(),
    }
}

fn zos_uid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

fn zos_gid() -> u32 {
    // SAFETY: getgid cannot fail.
    unsafe { libc::getgid() }
}

/// Start a pod running the compiled test program `name` with `args`.
pub fn start_prog(name: &str, args: &[&str]) -> PodRun {
    let p = prog(name);
    let mut argv = vec![p.as_str()];
    argv.extend_from_slice(args);
    PodRun::start(&spec(&argv))
}

impl PodRun {
    /// Spawn the pod and start reading its pty.
    pub fn start(spec: &PodSpec) -> PodRun {
        PodRun::adopt(pod::spawn(spec).expect("spawn pod"))
    }

    /// Take over a running pod (for example one just resumed).
    pub fn adopt(mut pod: Pod) -> PodRun {
        let master = pod.take_pty_master().expect("pty master");
        let out = Arc::new(Mutex::new(Vec::new()));
        let (o, m) = (out.clone(), master.try_clone().unwrap());
        let reader = std::thread::spawn(move || {
            let mut f = std::fs::File::from(m);
            let mut buf = [0u8; 4096];
            while let Ok(n) = f.read(&mut buf) {
                if n == 0 {
                    break;
                }
                o.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        PodRun {
            pod,
            out,
            master,
            reader: Some(reader),
        }
    }

    /// Everything the pod wrote so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Wait until the output contains `what` (panics after `secs`).
    pub fn wait_for(&self, what: &str, secs: u64) -> String {
        let t = Instant::now();
        loop {
            let text = self.text();
            if text.contains(what) {
                return text;
            }
            assert!(
                t.elapsed() < Duration::from_secs(secs),
                "no {what:?} after {secs}s; output so far:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Type `s` on the pod's terminal.
    pub fn type_in(&self, s: &str) {
        let mut f = std::fs::File::from(self.master.try_clone().unwrap());
        f.write_all(s.as_bytes()).unwrap();
    }

    /// The pty master.
    pub fn master_fd(&self) -> i32 {
        self.master.as_raw_fd()
    }

    /// Wait for the pod to end: its exit code, and all output (the reader drained).
    pub fn finish(mut self, secs: u64) -> (i32, String) {
        let code = self
            .pod
            .wait_timeout(Duration::from_secs(secs))
            .unwrap()
            .unwrap_or_else(|| panic!("pod still running after {secs}s:\n{}", self.text()));
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        (code, self.text())
    }

    /// Checkpoint the pod into memory.
    pub fn checkpoint(&self, after: AfterDump) -> (Vec<u8>, TreeDumpStats) {
        let mut image = Vec::new();
        let stats =
            zos_checkpoint::checkpoint_tree(self.pod.pid(), &TreeDumpOptions { after }, &mut image)
                .expect("checkpoint_tree");
        (image, stats)
    }

    /// Checkpoint and end the pod; returns the image and everything it wrote before.
    pub fn checkpoint_and_end(self) -> (Vec<u8>, String) {
        let (image, _) = self.checkpoint(AfterDump::Kill);
        let (code, text) = self.finish(10);
        assert_eq!(code, 128 + 9, "the checkpoint ends the pod with SIGKILL");
        (image, text)
    }
}

impl Drop for PodRun {
    fn drop(&mut self) {
        let _ = self.pod.kill();
    }
}

/// Restore an image as the caller, held stopped.
pub fn restore(image: &[u8]) -> RestoredTree {
    zos_checkpoint::restore_tree(image, &TreeRestoreOptions::default()).expect("restore_tree")
}

/// Restore and let it run.
pub fn restore_running(image: &[u8]) -> PodRun {
    PodRun::adopt(restore(image).resume().expect("resume"))
}

/// (PID, parent, group, session) of every process of the pod whose init has host PID `root`,
/// as the pod sees them, with each one's comm; sorted.
pub fn tree_table(root: i32) -> Vec<(i32, i32, i32, i32, String)> {
    let mut out = Vec::new();
    let mut stack = vec![(root, 0)];
    while let Some((host, ppid)) = stack.pop() {
        let status = std::fs::read_to_string(format!("/proc/{host}/status")).unwrap_or_default();
        let last = |k: &str| -> i32 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.split_whitespace().last()?.parse().ok())
                .unwrap_or(-1)
        };
        let pid = last("NSpid:");
        let comm = std::fs::read_to_string(format!("/proc/{host}/comm")).unwrap_or_default();
        out.push((
            pid,
            ppid,
            last("NSpgid:"),
            last("NSsid:"),
            comm.trim().to_string(),
        ));
        for t in std::fs::read_dir(format!("/proc/{host}/task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for k in kids.split_whitespace().filter_map(|k| k.parse().ok()) {
                stack.push((k, pid));
            }
        }
    }
    out.sort();
    out
}
