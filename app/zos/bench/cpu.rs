//! CPU time of processes, from /proc.

use std::fs;

fn ticks_per_second() -> f64 {
    // The kernel's USER_HZ is 100 on every Linux ABI we run on.
    100.0
}

/// User + system seconds of the process `pid` (all its threads).
pub fn seconds_of(pid: u32) -> f64 {
    stat_seconds(&format!("/proc/{pid}/stat"))
}

/// The calling thread's kernel id.
pub fn thread_id() -> u32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::gettid() as u32 }
}

/// User + system seconds of thread `tid` of this process.
pub fn thread_seconds(tid: u32) -> f64 {
    stat_seconds(&format!("/proc/self/task/{tid}/stat"))
}

/// User + system seconds from a `/proc/…/stat` file.
fn stat_seconds(path: &str) -> f64 {
    let Ok(stat) = fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat (11 and 12 after comm/state).
    let utime: f64 = f.get(11).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let stime: f64 = f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    (utime + stime) / ticks_per_second()
}

/// This process's CPU seconds.
pub fn process_seconds() -> f64 {
    seconds_of(std::process::id())
}

/// The pids of `root` and all its descendants.
pub fn tree(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat"))
                && let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..])
                && let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok())
            {
                parents.push((pid, ppid));
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}
