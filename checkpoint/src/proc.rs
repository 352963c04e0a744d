//! Reading a process's state from `/proc`.

use crate::error::{Error, Result, io_err};
use std::collections::HashMap;
use std::fs;

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone)]
pub struct MapLine {
    /// First address.
    pub start: u64,
    /// One past the end.
    pub end: u64,
    /// `rwxp` / `rwxs` string.
    pub perms: String,
    /// File offset.
    pub offset: u64,
    /// Inode (0 for anonymous).
    pub inode: u64,
    /// Path or pseudo-name (may be empty).
    pub path: String,
}

impl MapLine {
    /// `PROT_*` bits of the mapping.
    pub fn prot(&self) -> u32 {
        let b = self.perms.as_bytes();
        let mut p = 0;
        if b[0] == b'r' {
            p |= libc::PROT_READ as u32;
        }
        if b[1] == b'w' {
            p |= libc::PROT_WRITE as u32;
        }
        if b[2] == b'x' {
            p |= libc::PROT_EXEC as u32;
        }
        p
    }

    /// Mapped `MAP_SHARED`.
    pub fn shared(&self) -> bool {
        self.perms.as_bytes()[3] == b's'
    }
}

/// Read a `/proc` file as text, mapping "no such file" to [`Error::NoProcess`].
pub fn read(pid: i32, rel: &str) -> Result<String> {
    let path = format!("/proc/{pid}/{rel}");
    fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NoProcess(pid)
        } else {
            io_err(path)(e)
        }
    })
}

/// Parse `/proc/PID/maps`.
pub fn maps(pid: i32) -> Result<Vec<MapLine>> {
    let text = read(pid, "maps")?;
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.splitn(6, ' ');
        let range = it.next().unwrap_or("");
        let perms = it.next().unwrap_or("").to_string();
        let offset = u64::from_str_radix(it.next().unwrap_or("0"), 16).unwrap_or(0);
        let _dev = it.next();
        let inode = it.next().unwrap_or("0").parse().unwrap_or(0);
        let path = it.next().unwrap_or("").trim_start().to_string();
        let (s, e) = range.split_once('-').unwrap_or(("0", "0"));
        let start = u64::from_str_radix(s, 16).unwrap_or(0);
        let end = u64::from_str_radix(e, 16).unwrap_or(0);
        if perms.len() == 4 {
            out.push(MapLine {
                start,
                end,
                perms,
                offset,
                inode,
                path,
            });
        }
    }
    Ok(out)
}

/// `/proc/PID/status` (or a task's) as key → value.
pub fn status(pid: i32, tid: Option<i32>) -> Result<HashMap<String, String>> {
    let rel = match tid {
        Some(t) => format!("task/{t}/status"),
        None => "status".to_string(),
    };
    Ok(read(pid, &rel)?
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect())
}

/// The numeric fields of `/proc/PID/stat` after the state; index 0 is field 4 (ppid).
pub fn stat_fields(pid: i32) -> Result<Vec<u64>> {
    let text = read(pid, "stat")?;
    let rest = text.rsplit_once(')').map(|x| x.1).unwrap_or("");
    Ok(rest
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect())
}

/// Field number `n` (1-based, as in proc(5)) from [`stat_fields`] output.
pub fn stat_field(fields: &[u64], n: usize) -> u64 {
    fields.get(n - 4).copied().unwrap_or(0)
}

/// What identifies process `pid` beyond its PID: its start time (`stat` field 22) and the
/// boot it runs in.
pub fn origin(pid: i32) -> Result<crate::image::model::Origin> {
    Ok(crate::image::model::Origin {
        start_time: stat_field(&stat_fields(pid)?, 22),
        boot_id: boot_id(),
    })
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`), empty if unreadable.
pub fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// TIDs of all threads, leader first.
pub fn tasks(pid: i32) -> Result<Vec<i32>> {
    let dir = format!("/proc/{pid}/task");
    let mut v: Vec<i32> = fs::read_dir(&dir)
        .map_err(|_| Error::NoProcess(pid))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.sort_by_key(|&t| (t != pid, t));
    Ok(v)
}

/// Open descriptor numbers.
pub fn fds(pid: i32) -> Result<Vec<i32>> {
    let dir = format!("/proc/{pid}/fd");
    let mut v: Vec<i32> = fs::read_dir(&dir)
        .map_err(io_err(&dir))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.sort();
    Ok(v)
}

/// `/proc/PID/fdinfo/FD`: (pos, flags, has-lock).
pub fn fdinfo(pid: i32, fd: i32) -> Result<(u64, u32, bool)> {
    let text = read(pid, &format!("fdinfo/{fd}"))?;
    let mut pos = 0;
    let mut flags = 0;
    let mut lock = false;
    for l in text.lines() {
        if let Some(v) = l.strip_prefix("pos:") {
            pos = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = l.strip_prefix("flags:") {
            flags = u32::from_str_radix(v.trim(), 8).unwrap_or(0);
        } else if l.starts_with("lock:") {
            lock = true;
        }
    }
    Ok((pos, flags, lock))
}

/// Target of a `/proc/PID/…` symlink.
pub fn link(pid: i32, rel: &str) -> Result<String> {
    let path = format!("/proc/{pid}/{rel}");
    fs::read_link(&path)
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(io_err(path))
}

/// Words of `/proc/PID/auxv`, up to and including the terminating `AT_NULL` pair.
pub fn auxv(pid: i32) -> Result<Vec<u64>> {
    let path = format!("/proc/{pid}/auxv");
    let bytes = fs::read(&path).map_err(io_err(path))?;
    let mut words: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    if let Some(i) = words.chunks(2).position(|p| p[0] == 0) {
        words.truncate(i * 2 + 2);
    }
    Ok(words)
}

/// PIDs of the process's children (all threads).
pub fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for t in tasks(pid).unwrap_or_default() {
        if let Ok(s) = read(pid, &format!("task/{t}/children")) {
            out.extend(s.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
        }
    }
    out
}

/// Parse a whitespace list of decimal numbers (`Uid:`, `Groups:` lines).
pub fn numbers(s: &str) -> Vec<u32> {
    s.split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect()
}

/// Parse a hexadecimal mask (`SigBlk:`, `SigCgt:` lines).
pub fn hex_mask(s: Option<&String>) -> u64 {
    s.and_then(|v| u64::from_str_radix(v, 16).ok()).unwrap_or(0)
}

/// `/proc/PID/limits` as (resource, soft, hard), in resource-number order.
pub fn limits(pid: i32) -> Result<Vec<(u32, u64, u64)>> {
    let text = read(pid, "limits")?;
    let val = |s: &str| {
        if s == "unlimited" {
            u64::MAX
        } else {
            s.parse().unwrap_or(u64::MAX)
        }
    };
    Ok(text
        .lines()
        .skip(1)
        .enumerate()
        .filter_map(|(i, l)| {
            // Columns: name (25 chars), soft (20), hard (20), units.
            let rest = l.get(26..)?;
            let mut it = rest.split_whitespace();
            Some((i as u32, val(it.next()?), val(it.next()?)))
        })
        .collect())
}
