//! Finding every process of a pod in `/proc`, with its IDs as the pod sees them.

use super::model::Caps;
use crate::error::{Error, Result};
use crate::objects::PodView;
use crate::proc::{self, stat_field};
use std::collections::{HashMap, VecDeque};
use std::os::unix::fs::MetadataExt;

/// One process of the pod as `/proc` shows it.
#[derive(Debug, Clone)]
pub(crate) struct ProcInfo {
    /// Host PID.
    pub host: i32,
    /// PID in the pod.
    pub pid: i32,
    /// Parent's PID in the pod (0 for init).
    pub ppid: i32,
    /// Process group in the pod (0 if outside it).
    pub pgid: i32,
    /// Session in the pod (0 if outside it).
    pub sid: i32,
    /// `comm`.
    pub comm: String,
    /// State letter (`R`, `S`, `D`, `T`, `t`, `Z`, …).
    pub state: char,
    /// Threads: (host TID, TID in the pod), leader first.
    pub threads: Vec<(i32, i32)>,
    /// Number of threads the kernel counts.
    pub nthreads: usize,
    /// Host PID of a tracer, 0 if none.
    pub tracer: i32,
    /// Seccomp mode.
    pub seccomp: u32,
    /// Real, effective, saved, filesystem uid (host view).
    pub uids: [u32; 4],
    /// Real, effective, saved, filesystem gid (host view).
    pub gids: [u32; 4],
    /// Capability sets.
    pub caps: Caps,
    /// Controlling terminal device number (0 if none).
    pub tty_nr: u64,
    /// Foreground process group of its terminal (host PID; 0 if none).
    pub tpgid_host: i32,
    /// Wait status, for a defunct process.
    pub exit_status: i32,
}

impl ProcInfo {
    /// "pid 3 (sh)": how reports name a process.
    pub fn name(&self) -> String {
        format!("pid {} ({})", self.pid, self.comm)
    }

    /// Exited, not yet reaped.
    pub fn defunct(&self) -> bool {
        self.state == 'Z' || self.state == 'X'
    }
}

/// A pod's processes, parents before children.
#[derive(Debug, Clone)]
pub(crate) struct PodScan {
    /// Every process, init first, breadth first.
    pub procs: Vec<ProcInfo>,
    /// Host PID → PID in the pod.
    pub to_pod: HashMap<i32, i32>,
    /// The pod (root and its devpts).
    pub view: PodView,
    /// uid map lines (inside, outside, count).
    pub uid_map: Vec<[u32; 3]>,
    /// gid map lines.
    pub gid_map: Vec<[u32; 3]>,
}

fn last_number(s: Option<&String>) -> i32 {
    s.and_then(|v| v.split_whitespace().last()?.parse().ok())
        .unwrap_or(0)
}

fn map_lines(pid: i32, which: &str) -> Result<Vec<[u32; 3]>> {
    Ok(proc::read(pid, which)?
        .lines()
        .map(|l| {
            let v = proc::numbers(l);
            [0, 1, 2].map(|i| v.get(i).copied().unwrap_or(0))
        })
        .collect())
}

/// Read one process (`ppid` is its parent's PID in the pod).
pub(crate) fn read_proc(host: i32, ppid: i32) -> Result<ProcInfo> {
    let st = proc::status(host, None)?;
    let stat = proc::stat_fields(host)?;
    let ids = |k: &str| -> [u32; 4] {
        let v = proc::numbers(st.get(k).map(String::as_str).unwrap_or(""));
        [0, 1, 2, 3].map(|i| v.get(i).copied().unwrap_or(0))
    };
    let cap = |k: &str| proc::hex_mask(st.get(k));
    let state = st
        .get("State")
        .and_then(|s| s.chars().next())
        .unwrap_or('?');
    let mut threads = Vec::new();
    if state != 'Z' && state != 'X' {
        for t in proc::tasks(host).unwrap_or_default() {
            if let Ok(ts) = proc::status(host, Some(t)) {
                threads.push((t, last_number(ts.get("NSpid"))));
            }
        }
    }
    let tpgid = proc::read(host, "stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            rest.split_whitespace().nth(6)?.parse::<i32>().ok()
        })
        .unwrap_or(0);
    Ok(ProcInfo {
        host,
        pid: last_number(st.get("NSpid")),
        ppid,
        pgid: last_number(st.get("NSpgid")),
        sid: last_number(st.get("NSsid")),
        comm: proc::read(host, "comm")
            .map(|c| c.trim_end().to_string())
            .unwrap_or_default(),
        state,
        threads,
        nthreads: st.get("Threads").and_then(|t| t.parse().ok()).unwrap_or(1),
        tracer: st
            .get("TracerPid")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0),
        seccomp: st.get("Seccomp").and_then(|t| t.parse().ok()).unwrap_or(0),
        uids: ids("Uid"),
        gids: ids("Gid"),
        caps: Caps {
            inheritable: cap("CapInh"),
            permitted: cap("CapPrm"),
            effective: cap("CapEff"),
            bounding: cap("CapBnd"),
            ambient: cap("CapAmb"),
        },
        tty_nr: stat_field(&stat, 7),
        tpgid_host: tpgid.max(0),
        exit_status: stat_field(&stat, 52) as i32,
    })
}

/// Every process of the pod whose init has host PID `root`.
pub(crate) fn scan(root: i32) -> Result<PodScan> {
    let mut procs = Vec::new();
    let mut queue = VecDeque::from([(root, 0)]);
    let mut seen = std::collections::HashSet::new();
    while let Some((host, ppid)) = queue.pop_front() {
        if !seen.insert(host) {
            continue;
        }
        let info = match read_proc(host, ppid) {
            Ok(i) if host == root && i.defunct() => return Err(Error::NoProcess(root)),
            Ok(i) => i,
            Err(Error::NoProcess(_)) if host != root => continue, // reaped meanwhile
            Err(e) => return Err(e),
        };
        for c in proc::children(host) {
            queue.push_back((c, info.pid));
        }
        procs.push(info);
    }
    let to_pod = procs.iter().map(|p| (p.host, p.pid)).collect();
    let devpts = std::fs::metadata(format!("/proc/{root}/root/dev/pts"))
        .ok()
        .map(|m| m.dev());
    Ok(PodScan {
        procs,
        to_pod,
        view: PodView { root, devpts },
        uid_map: map_lines(root, "uid_map")?,
        gid_map: map_lines(root, "gid_map")?,
    })
}

/// Host PIDs of processes in the PID namespace of `root` that are not in `known`.
pub(crate) fn strangers(root: i32, known: &HashMap<i32, i32>) -> Vec<i32> {
    let Ok(ns) = proc::link(root, "ns/pid") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if !known.contains_key(&pid) && proc::link(pid, "ns/pid").is_ok_and(|l| l == ns) {
            out.push(pid);
        }
    }
    out
}
