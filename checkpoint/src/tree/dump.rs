//! Checkpointing a pod: check, freeze every process, examine again, collect each process,
//! capture the shared objects, write the image; then kill, release or keep the tree frozen.

use super::check::{self, Verdict, is_shm};
use super::freeze::{TreeFreeze, freeze_tree};
use super::model::{FdRef, ProcEntry, ProcState, PtyState, ShmUse, TreeImage};
use super::scan::PodScan;
use super::{AfterDump, FrozenTree, TreeDumpOptions, TreeDumpStats};
use crate::dump::{collect, memory};
use crate::error::{Error, Result, io_err};
use crate::image::format::ImageWriter;
use crate::image::model::{Creds, ProcessImage, VmaKind};
use crate::inject::Tracee;
use crate::objects::{DumpCx, Object};
use crate::sys::{fds, nr};
use crate::track::DirtyTracker;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{BufWriter, Write};
use std::os::fd::AsRawFd;
use std::time::Instant;

/// Pages per injected `mincore` (its result vector fills one scratch page).
const MINCORE_PAGES: u64 = 4096;
const PAGE: u64 = 4096;

/// See [`crate::checkpoint_tree`].
pub(crate) fn checkpoint_tree(
    root: i32,
    opts: &TreeDumpOptions,
    out: impl Write,
) -> Result<TreeDumpStats> {
    checkpoint_tree_since(root, opts, Tracking::None, out)
}

/// What a dump does with a dirty-page tracker.
pub(crate) enum Tracking<'a> {
    /// No tracker: a whole image.
    None,
    /// A whole image; the tracker's report is taken (and dropped) while the tree is frozen,
    /// so that its next report starts from this image.
    Reset(&'a mut DirtyTracker),
    /// A delta image: the pages written since the tracker's previous report.
    Delta(&'a mut DirtyTracker),
}

/// [`checkpoint_tree`] with a dirty-page tracker (see [`Tracking`]).
pub(crate) fn checkpoint_tree_since(
    root: i32,
    opts: &TreeDumpOptions,
    tracking: Tracking<'_>,
    out: impl Write,
) -> Result<TreeDumpStats> {
    let t0 = Instant::now();
    super::check_tree(root)?.into_result()?;
    let t_freeze = Instant::now();
    let (mut hold, scan) = freeze_tree(root)?;
    let t_frozen = Instant::now();
    tracing::debug!(
        root,
        "tree frozen in {:.1} ms",
        (t_frozen - t_freeze).as_secs_f64() * 1e3
    );
    let mut stats = match write_tree(&mut hold, &scan, tracking, out) {
        Ok(s) => s,
        Err(e) => {
            let _ = hold.release();
            return Err(e);
        }
    };
    match opts.after {
        AfterDump::Kill => {
            stats.frozen = t_frozen.elapsed();
            hold.kill();
        }
        AfterDump::LeaveRunning => {
            hold.release()?;
            stats.frozen = t_frozen.elapsed();
        }
        AfterDump::KeepFrozen => {
            stats.frozen = t_frozen.elapsed();
            stats.held = Some(FrozenTree {
                inner: Some(hold),
                _thread: Default::default(),
            });
        }
    }
    stats.total = t0.elapsed();
    tracing::info!(
        root,
        processes = stats.processes,
        frozen = ?stats.frozen,
        bytes = stats.bytes_written,
        "pod checkpointed"
    );
    Ok(stats)
}

/// Examine the frozen tree, collect and write it.
fn write_tree(
    hold: &mut TreeFreeze,
    scan: &PodScan,
    mut tracking: Tracking<'_>,
    out: impl Write,
) -> Result<TreeDumpStats> {
    let mut cx = DumpCx::default();
    let mut phases = crate::phases::Phases::new();
    let verdict = check::examine(scan, Some(&mut cx))?;
    phases.end("examine");
    if !verdict.reasons.is_empty() {
        return Err(Error::Refused {
            pid: hold.root,
            reasons: verdict.reasons,
        });
    }
    let inside = (scan.uid_map[0][0], scan.gid_map[0][0]);
    let root_fd = check::pod_root(hold.root)?;
    let stat = |p: &str| check::pod_stat(&root_fd, p);
    let mut regions: Vec<u64> = verdict.shm.keys().copied().collect();
    regions.sort_by_key(|ino| verdict.shm[ino].base);
    let region_of = |ino: u64| regions.iter().position(|&r| r == ino).unwrap_or(0) as u32;
    let mut saved_shm: HashSet<(u64, u64)> = HashSet::new();
    let mut images: Vec<(i32, ProcessImage, memory::Overrides, Present)> = Vec::new();
    let mut entries = Vec::new();
    let mut mapped_files = BTreeSet::new();
    let mut last_pid = 0;
    for p in &scan.procs {
        let state = if p.defunct() {
            ProcState::Defunct {
                status: p.exit_status,
            }
        } else if hold.states.get(&p.host) == Some(&'T') {
            ProcState::Stopped
        } else {
            ProcState::Running
        };
        let mut shm = Vec::new();
        let mut extra = crate::procstate::ProcExtra::default();
        if !p.defunct() {
            let f = hold
                .procs
                .iter_mut()
                .find(|f| f.pid == p.host)
                .ok_or(Error::Gone(p.host))?;
            let (vmas, object_maps) = crate::procstate::maps::split(f.pid, &stat, hold.root)?;
            let mut img = collect::collect(f, vmas)?;
            let fds = verdict
                .table
                .fds
                .get(&p.host)
                .map_or(&[][..], Vec::as_slice);
            extra =
                crate::procstate::capture(f, object_maps, fds, &verdict.table.objects, &mut cx)?;
            img.pid = p.pid;
            for th in &mut img.threads {
                th.tid = p
                    .threads
                    .iter()
                    .find(|t| t.0 == th.tid)
                    .map(|t| t.1)
                    .ok_or(Error::Gone(p.host))?;
            }
            img.attrs.creds = Creds {
                uids: [inside.0; 4],
                gids: [inside.1; 4],
                groups: Vec::new(),
            };
            for v in &img.vmas {
                if let VmaKind::File { path, .. } = &v.kind {
                    mapped_files.insert(path.clone());
                }
            }
            mapped_files.insert(img.mm.exe.clone());
            let mut overrides = memory::Overrides::new();
            for m in verdict
                .maps
                .get(&p.host)
                .into_iter()
                .flatten()
                .filter(|m| is_shm(m))
            {
                let region = verdict.shm[&m.inode];
                shm.push(ShmUse {
                    start: m.start,
                    end: m.end,
                    region: region_of(m.inode),
                });
                let resident = resident_pages(f, m.start, m.end)?;
                let mut ranges: Vec<(u64, usize)> = Vec::new();
                for a in resident {
                    if !saved_shm.insert((m.inode, a - region.base)) {
                        continue;
                    }
                    match ranges.last_mut() {
                        Some((s, l)) if *s + *l as u64 == a && *l < (1 << 20) => {
                            *l += PAGE as usize
                        }
                        _ => ranges.push((a, PAGE as usize)),
                    }
                }
                overrides.insert(m.start, ranges);
            }
            if p.pid == 1 {
                last_pid = read_last_pid(f)?;
            }
            phases.end("collect");
            let present = match &mut tracking {
                Tracking::Delta(t) => Some(delta_overrides(f.pid, &img.vmas, t, &mut overrides)?),
                Tracking::Reset(t) => {
                    t.written(f.pid);
                    let held = content_ranges(f.pid, &img.vmas, &overrides)?;
                    t.set_held(f.pid, held.iter().map(|&(a, l)| (a, a + l as u64)));
                    None
                }
                Tracking::None => None,
            };
            phases.end("tracked pages");
            images.push((f.pid, img, overrides, present));
        }
        let mut fds: Vec<FdRef> = verdict.table.fds.get(&p.host).cloned().unwrap_or_default();
        if !p.defunct() {
            let f = hold
                .procs
                .iter()
                .find(|f| f.pid == p.host)
                .ok_or(Error::Gone(p.host))?;
            close_on_exec(f, &mut fds)?;
        }
        entries.push(ProcEntry {
            pid: p.pid,
            ppid: p.ppid,
            pgid: p.pgid,
            sid: p.sid,
            comm: p.comm.clone(),
            state,
            has_ctty: p.tty_nr != 0,
            fds,
            caps: p.caps,
            shm,
            extra,
        });
    }
    let (pty, pty_input_lost) = pty_state(scan, &verdict);
    let init = hold
        .procs
        .first()
        .ok_or_else(|| Error::Restore("the pod's init is not frozen".into()))?;
    let extra = crate::procstate::capture_pod(init, &mut cx)?;
    let tree = TreeImage {
        inside_uid: inside.0,
        inside_gid: inside.1,
        processes: entries,
        objects: verdict
            .table
            .objects
            .iter()
            .map(|(o, _)| o.clone())
            .collect(),
        pty,
        shm: regions.iter().map(|ino| verdict.shm[ino]).collect(),
        extra,
        last_pid,
    };
    phases.end("collect");
    let payload = postcard::to_stdvec(&tree).map_err(|e| Error::Restore(e.to_string()))?;
    let name = "image stream";
    let out = BufWriter::with_capacity(1 << 20, out);
    let mut w = if matches!(tracking, Tracking::Delta(_)) {
        ImageWriter::new_tree_delta(out, None)
    } else {
        ImageWriter::new_tree(out, None)
    }
    .map_err(io_err(name))?;
    w.tree(&payload).map_err(io_err(name))?;
    let mut pages = 0;
    for (pid, img, overrides, present) in &images {
        w.meta(img).map_err(io_err(name))?;
        if let Some(present) = present {
            w.present(present).map_err(io_err(name))?;
        }
        let bufs = memory::Buffers::new(crate::dump::resident_estimate(*pid));
        pages += memory::write_memory_with(*pid, &img.vmas, &mut w, bufs, overrides)?.pages;
    }
    for (i, blob) in cx.data.blobs.iter().enumerate() {
        w.object_data(i as u32, blob).map_err(io_err(name))?;
    }
    let (_, bytes_written) = w.finish().map_err(io_err(name))?;
    phases.end("write");
    tracing::debug!(root = hold.root, "frozen tree written: {phases}");
    Ok(TreeDumpStats {
        bytes_written,
        pages,
        processes: scan.procs.len(),
        mapped_files: mapped_files.into_iter().collect(),
        pty_input_lost,
        ..Default::default()
    })
}

/// `/proc/sys/kernel/ns_last_pid` as the pod sees it, read inside its frozen init.
/// Every page range the process has with content (what a whole image would hold).
type Present = Option<Vec<(u64, usize)>>;

/// For a delta image: narrow `overrides` to the pages `host` wrote since the tracker's last
/// report (private mappings; shared ones stay whole) and return every page range it has.
fn delta_overrides(
    host: i32,
    vmas: &[crate::image::model::Vma],
    tracker: &mut DirtyTracker,
    overrides: &mut memory::Overrides,
) -> Result<Vec<(u64, usize)>> {
    let path = format!("/proc/{host}/pagemap");
    let pagemap = std::fs::File::open(&path).map_err(io_err(&path))?;
    let dirty = tracker.written(host);
    let mut present = Vec::new();
    for v in vmas {
        let content = match overrides.get(&v.start) {
            Some(r) => r.clone(),
            // The tracker's walk just now, if it covered the mapping (the pod is frozen).
            None => match tracker
                .content_in(host, v.start, v.end)
                .filter(|_| !v.shared)
            {
                Some(found) => memory::chunked(found),
                None => memory::ranges(&pagemap, v)?,
            },
        };
        if !v.shared && !overrides.contains_key(&v.start) {
            // What was written, and whatever the other side lacks (never left to chance).
            let mut take = dirty.select(&content);
            take.extend(tracker.not_held(host, &content));
            overrides.insert(v.start, merge_ranges(take));
        }
        present.extend(content);
    }
    present.sort_unstable();
    tracker.set_held(host, present.iter().map(|&(a, l)| (a, a + l as u64)));
    Ok(present)
}

/// Every page range the process has with content (the shared ones as `overrides` chose).
fn content_ranges(
    host: i32,
    vmas: &[crate::image::model::Vma],
    overrides: &memory::Overrides,
) -> Result<Vec<(u64, usize)>> {
    let path = format!("/proc/{host}/pagemap");
    let pagemap = std::fs::File::open(&path).map_err(io_err(&path))?;
    let mut out = Vec::new();
    for v in vmas {
        match overrides.get(&v.start) {
            Some(r) => out.extend_from_slice(r),
            None => out.extend(memory::ranges(&pagemap, v)?),
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Sorted, merged `(addr, len)` ranges, each at most 1 MiB (as the memory writer batches).
fn merge_ranges(mut r: Vec<(u64, usize)>) -> Vec<(u64, usize)> {
    r.sort_unstable();
    let mut out: Vec<(u64, usize)> = Vec::new();
    for (a, l) in r {
        let e = a + l as u64;
        match out.last_mut() {
            Some((s, n)) if a <= *s + *n as u64 => {
                let end = (*s + *n as u64).max(e);
                *n = (end - *s) as usize;
            }
            _ => out.push((a, l)),
        }
    }
    // Split what grew past the writer's batch size.
    let mut split = Vec::with_capacity(out.len());
    for (a, l) in out {
        let mut at = 0;
        while at < l {
            let n = (l - at).min(1 << 20);
            split.push((a + at as u64, n));
            at += n;
        }
    }
    split
}

fn read_last_pid(f: &crate::freeze::Frozen) -> Result<i32> {
    let scratch = f
        .scratch
        .ok_or_else(|| Error::Restore("no scratch page".into()))?;
    let mut t = Tracee::new(f.pid, f.pid, f.gadget)?;
    let path = b"/proc/sys/kernel/ns_last_pid\0";
    crate::sys::mem::write_remote(f.pid, scratch, path)
        .map_err(|e| crate::inject::gone(f.pid, e))?;
    let fd = t.call(
        "open ns_last_pid",
        nr::OPENAT,
        &[libc::AT_FDCWD as u64, scratch, libc::O_RDONLY as u64, 0],
    )?;
    let n = t.raw(nr::READ, &[fd, scratch, 32]);
    t.call("close", nr::CLOSE, &[fd])?;
    let n = n?;
    if n <= 0 {
        return Ok(0);
    }
    let text = collect::peek(f.pid, scratch, n as usize)?;
    Ok(String::from_utf8_lossy(&text).trim().parse().unwrap_or(0))
}

/// The real close-on-exec flag of each descriptor, asked inside the process: fdinfo's
/// `O_CLOEXEC` bit also shows when the file was opened with it, even if the flag was cleared
/// since.
fn close_on_exec(f: &crate::freeze::Frozen, fds: &mut [FdRef]) -> Result<()> {
    let mut t = Tracee::new(f.pid, f.pid, f.gadget)?;
    for r in fds {
        let flags = t.call("F_GETFD", nr::FCNTL, &[r.fd as u64, libc::F_GETFD as u64])?;
        r.cloexec = flags & libc::FD_CLOEXEC as u64 != 0;
    }
    Ok(())
}

/// Addresses of the pages of `start..end` (shared memory) that exist in the shared object,
/// whoever touched them: `mincore` run inside the frozen process.
fn resident_pages(f: &mut crate::freeze::Frozen, start: u64, end: u64) -> Result<Vec<u64>> {
    let scratch = f
        .scratch
        .ok_or_else(|| Error::Restore("no scratch page".into()))?;
    let mut t = Tracee::new(f.pid, f.pid, f.gadget)?;
    let mut out = Vec::new();
    let mut a = start;
    while a < end {
        let n = ((end - a) / PAGE).min(MINCORE_PAGES);
        t.call("mincore", nr::MINCORE, &[a, n * PAGE, scratch])?;
        let vec = collect::peek(f.pid, scratch, n as usize)?;
        out.extend(
            vec.iter()
                .enumerate()
                .filter(|(_, b)| *b & 1 != 0)
                .map(|(i, _)| a + i as u64 * PAGE),
        );
        a += n * PAGE;
    }
    Ok(out)
}

/// The pty's attributes (read through a holder's descriptor, or the pod's `/dev/pts/0`) and
/// how many typed bytes the task has not read.
fn pty_state(scan: &PodScan, v: &Verdict<'_>) -> (Option<PtyState>, usize) {
    let holder = v
        .table
        .objects
        .iter()
        .find(|(o, _)| matches!(o, Object::Pty(_)))
        .map(|(_, f)| f.proc_path());
    let flags = libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK;
    let fd = match holder {
        Some(p) => fds::open(&p, flags).ok(),
        None => check::pod_root(scan.view.root)
            .ok()
            .and_then(|r| fds::open_in_root(&r, crate::objects::PTY_SLAVE, flags).ok()),
    };
    let Some(fd) = fd else { return (None, 0) };
    let raw = fd.as_raw_fd();
    let (Ok(t), Ok(winsize)) = (fds::get_termios(raw), fds::get_winsize(raw)) else {
        return (None, 0);
    };
    let pending = fds::ioctl_int(raw, libc::FIONREAD, 0).unwrap_or(0).max(0) as usize;
    let to_pod: &HashMap<i32, i32> = &scan.to_pod;
    let foreground = scan
        .procs
        .iter()
        .find(|p| p.tty_nr != 0 && p.tpgid_host != 0)
        .and_then(|p| to_pod.get(&p.tpgid_host).copied())
        .unwrap_or(0);
    let pty = PtyState {
        flags: [t.c_iflag, t.c_oflag, t.c_cflag, t.c_lflag],
        line: t.c_line,
        cc: t.c_cc.to_vec(),
        speed: [t.c_ispeed, t.c_ospeed],
        winsize,
        foreground,
    };
    (Some(pty), pending)
}
