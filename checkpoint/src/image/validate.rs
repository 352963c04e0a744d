//! Every field of a parsed image checked against what a real process can have, before
//! anything is created: an image is input (an attacker may have written it and fixed its
//! CRCs), so no value reaches a system call, an index or an allocation unchecked.

use super::format::ParsedImage;
use super::model::{FdImage, FdKind, MmInfo, ProcAttrs, ProcessImage, ThreadImage, Vma, VmaKind};
use crate::error::{Error, Result};
use std::collections::HashSet;

const PAGE: u64 = 4096;
/// One past the highest user address on x86-64 (4-level paging).
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;
const PID_MAX: i32 = 1 << 22;
const MAX_THREADS: usize = 1 << 15;
const MAX_VMAS: usize = 65530;
const MAX_FDS: usize = 1 << 20;
const MAX_PENDING: usize = 1 << 16;
const MAX_GROUPS: usize = 8192;
const MAX_AUXV_WORDS: usize = 128;
const SIGINFO_LEN: usize = 128;
const PATH_MAX: usize = 4095;
const VMA_NAME_MAX: usize = 80;
const USER_CS: u64 = 0x33;
const USER_SS: u64 = 0x2b;
const SS_FLAGS: u32 = 1 | 2 | (1 << 31);
const O_TMPFILE_BIT: u32 = 0o20_000_000;
const FMODE_EXEC: u32 = 0o40;
/// The kernel's O_LARGEFILE (always set on 64-bit; libc defines it as 0 there).
const O_LARGEFILE: u32 = 0o100_000;

fn bad(msg: String) -> Error {
    Error::BadImage(msg)
}

fn ensure(ok: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if ok { Ok(()) } else { Err(bad(msg())) }
}

/// An absolute path without NUL bytes that the kernel would accept.
fn path(what: &str, p: &str) -> Result<()> {
    ensure(
        p.starts_with('/') && !p.contains('\0') && p.len() <= PATH_MAX,
        || format!("{what}: {p:?} is not a valid absolute path"),
    )
}

fn signo_of(si: &[u8], what: &str) -> Result<u32> {
    ensure(si.len() == SIGINFO_LEN, || {
        format!("{what}: siginfo of {} bytes", si.len())
    })?;
    let sig = u32::from_le_bytes(si[..4].try_into().unwrap());
    ensure((1..=64).contains(&sig), || format!("{what}: signal {sig}"))?;
    Ok(sig)
}

/// Check the whole image (metadata, pages, file contents) and that this CPU can run it.
pub fn validate(img: &ParsedImage<'_>) -> Result<()> {
    let m = &img.meta;
    let missing = m.xcr0 & !crate::sys::xcr0();
    ensure(missing == 0, || {
        format!("saved on a CPU with XSAVE features {missing:#x} that this CPU lacks")
    })?;
    ensure(m.pid > 0 && m.pid < PID_MAX, || format!("PID {}", m.pid))?;
    ensure(m.origin.boot_id.len() <= 64, || "boot id too long".into())?;
    threads(m)?;
    vmas(&m.vmas)?;
    pages(&m.vmas, &img.pages)?;
    mm(&m.mm)?;
    files(&m.files, img.files.len())?;
    attrs(&m.attrs)
}

fn threads(m: &ProcessImage) -> Result<()> {
    let t = &m.threads;
    ensure(!t.is_empty() && t[0].tid == m.pid, || {
        "no thread-group leader".into()
    })?;
    ensure(t.len() <= MAX_THREADS, || format!("{} threads", t.len()))?;
    let mut seen = HashSet::new();
    for th in t {
        thread(th)?;
        ensure(seen.insert(th.tid), || format!("thread {} twice", th.tid))?;
    }
    Ok(())
}

fn thread(th: &ThreadImage) -> Result<()> {
    let tid = th.tid;
    let what = |s: &str| format!("thread {tid}: {s}");
    ensure(tid > 0 && tid < PID_MAX, || what("TID out of range"))?;
    ensure(th.regs.cs == USER_CS && th.regs.ss == USER_SS, || {
        what("not 64-bit user segments")
    })?;
    ensure((576..=1 << 16).contains(&th.xstate.len()), || {
        what(&format!("XSAVE area of {} bytes", th.xstate.len()))
    })?;
    ensure(th.pending.len() <= MAX_PENDING, || what("too many signals"))?;
    for si in &th.pending {
        signo_of(si, &what("pending signal"))?;
    }
    if let Some((area, len, _)) = th.rseq {
        ensure(area < TASK_SIZE && (20..=4096).contains(&len), || {
            what("rseq area")
        })?;
    }
    ensure(th.comm.len() <= 64 && !th.comm.contains('\0'), || {
        what("bad name")
    })?;
    ensure(th.altstack.1 & !SS_FLAGS == 0, || what("sigaltstack flags"))?;
    ensure((-20..=19).contains(&th.nice), || what("nice value"))?;
    ensure(th.affinity.len() <= 1024, || what("CPU mask too long"))
}

fn vmas(v: &[Vma]) -> Result<()> {
    ensure(v.len() <= MAX_VMAS, || format!("{} mappings", v.len()))?;
    let mut prev_end = 0;
    let (mut vdso, mut vvar) = (0, 0);
    for m in v {
        let what = || format!("mapping {:#x}-{:#x}", m.start, m.end);
        ensure(
            m.start < m.end && m.start % PAGE == 0 && m.end % PAGE == 0 && m.end <= TASK_SIZE,
            || format!("{}: bad bounds", what()),
        )?;
        ensure(m.start >= prev_end, || {
            format!("{}: out of order or overlapping", what())
        })?;
        prev_end = m.end;
        ensure(m.prot & !7 == 0, || format!("{}: protection bits", what()))?;
        if let Some(n) = &m.name {
            ensure(n.len() <= VMA_NAME_MAX && !n.contains('\0'), || {
                format!("{}: bad name", what())
            })?;
        }
        match &m.kind {
            VmaKind::Anon => {}
            VmaKind::File { path: p, offset } => {
                path(&what(), p)?;
                ensure(offset % PAGE == 0 && !m.growsdown, || {
                    format!("{}: bad file offset", what())
                })?;
            }
            VmaKind::Vdso => vdso += 1,
            VmaKind::Vvar => vvar += 1,
        }
        if matches!(m.kind, VmaKind::Vdso | VmaKind::Vvar) {
            ensure(!m.shared && !m.growsdown, || {
                format!("{}: bad vDSO", what())
            })?;
        }
    }
    ensure(vdso <= 1 && vvar <= 2, || "more than one vDSO".into())
}

/// Every page frame lies inside one anonymous or private file mapping, in address order.
fn pages(v: &[Vma], pages: &[(u64, &[u8])]) -> Result<()> {
    let mut prev_end = 0;
    for &(addr, data) in pages {
        let len = data.len() as u64;
        let end = addr.saturating_add(len);
        ensure(addr % PAGE == 0 && len > 0 && len % PAGE == 0, || {
            format!("pages at {addr:#x}: not whole pages")
        })?;
        ensure(addr >= prev_end, || {
            format!("pages at {addr:#x}: out of order")
        })?;
        prev_end = end;
        let i = v.partition_point(|m| m.end <= addr);
        let inside = v.get(i).is_some_and(|m| {
            m.start <= addr
                && end <= m.end
                && (m.kind == VmaKind::Anon || matches!(m.kind, VmaKind::File { .. }) && !m.shared)
        });
        ensure(inside, || {
            format!("pages at {addr:#x}-{end:#x}: not inside one anonymous or private mapping")
        })?;
    }
    Ok(())
}

fn mm(mm: &MmInfo) -> Result<()> {
    let below = mm.bounds().iter().all(|&a| a < TASK_SIZE);
    let ordered = mm.start_code <= mm.end_code
        && mm.start_data <= mm.end_data
        && mm.start_brk <= mm.brk
        && mm.arg_start <= mm.arg_end
        && mm.env_start <= mm.env_end;
    ensure(below && ordered, || "memory layout bounds".into())?;
    let a = &mm.auxv;
    ensure(
        a.len() % 2 == 0 && a.len() <= MAX_AUXV_WORDS && a.len() >= 2 && a[a.len() - 2] == 0,
        || "auxiliary vector".into(),
    )?;
    path("executable", &mm.exe)
}

fn files(f: &[FdImage], contents: usize) -> Result<()> {
    ensure(f.len() <= MAX_FDS, || format!("{} descriptors", f.len()))?;
    let allowed = (libc::O_ACCMODE
        | libc::O_APPEND
        | libc::O_NONBLOCK
        | libc::O_DSYNC
        | libc::O_ASYNC
        | libc::O_DIRECT
        | libc::O_DIRECTORY
        | libc::O_NOFOLLOW
        | libc::O_NOATIME
        | libc::O_SYNC
        | libc::O_PATH
        | libc::O_CREAT
        | libc::O_EXCL
        | libc::O_NOCTTY
        | libc::O_TRUNC) as u32
        | O_TMPFILE_BIT
        | O_LARGEFILE
        | FMODE_EXEC;
    let mut fds = HashSet::new();
    let mut indexes = HashSet::new();
    for d in f {
        let what = || format!("fd {}", d.fd);
        ensure(d.fd >= 0 && (d.fd as usize) < MAX_FDS, what)?;
        ensure(fds.insert(d.fd), || format!("{} twice", what()))?;
        ensure(
            d.flags & !allowed == 0 && d.flags & libc::O_ACCMODE as u32 != 3,
            || format!("{}: open flags {:#o}", what(), d.flags),
        )?;
        match &d.kind {
            FdKind::Path(p) => path(&what(), p)?,
            FdKind::Stdio => ensure(d.fd <= 2, || format!("{}: not a standard stream", what()))?,
            FdKind::Deleted {
                path: p,
                index,
                mode,
                ..
            } => {
                path(&what(), p)?;
                ensure(
                    (*index as usize) < contents && indexes.insert(*index) && mode & !0o7777 == 0,
                    || format!("{}: deleted file's content or mode", what()),
                )?;
            }
        }
    }
    ensure(indexes.len() == contents, || {
        "file contents no descriptor refers to".into()
    })
}

fn attrs(a: &ProcAttrs) -> Result<()> {
    path("working directory", &a.cwd)?;
    ensure(a.umask & !0o777 == 0, || format!("umask {:o}", a.umask))?;
    let resources: HashSet<u32> = a.rlimits.iter().map(|r| r.0).collect();
    ensure(
        a.rlimits.len() == 16
            && resources.len() == 16
            && a.rlimits
                .iter()
                .all(|&(r, soft, hard)| r < 16 && soft <= hard),
        || "resource limits".into(),
    )?;
    let mut sigs = HashSet::new();
    for s in &a.sigactions {
        ensure(
            (1..=64).contains(&s.sig) && s.sig != 9 && s.sig != 19 && sigs.insert(s.sig),
            || format!("disposition of signal {}", s.sig),
        )?;
    }
    ensure(a.shared_pending.len() <= MAX_PENDING, || {
        "too many pending signals".into()
    })?;
    for si in &a.shared_pending {
        signo_of(si, "process-wide pending signal")?;
    }
    for t in &a.itimers {
        ensure(
            t[0] >= 0
                && t[2] >= 0
                && (0..1_000_000).contains(&t[1])
                && (0..1_000_000).contains(&t[3]),
            || "interval timer".into(),
        )?;
    }
    ensure(a.creds.groups.len() <= MAX_GROUPS, || {
        format!("{} supplementary groups", a.creds.groups.len())
    })
}
