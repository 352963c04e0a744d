//! Gathering a frozen process's metadata from /proc, ptrace and injected system calls.

use crate::error::{Error, Result, SysContext};
use crate::freeze::Frozen;
use crate::image::model::{
    Creds, MmInfo, ProcAttrs, ProcessImage, SigAction, ThreadImage, Vma, VmaKind,
};
use crate::inject::{Tracee, find_syscall_insn, gone};
use crate::proc::{self, stat_field};
use crate::restart::rseq_fixup;
use crate::sys::{self, mem, nr, ptrace};
use crate::vmas::{self, VmaClass};

const PR_GET_TID_ADDRESS: u64 = 40;
const RLIMIT_COUNT: usize = 16;

/// Read `len` bytes of the tracee's memory.
pub fn peek(pid: i32, addr: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let n = mem::read_remote(pid, &[(addr, len)], &mut buf).sys(|| format!("read {addr:#x}"))?;
    if n != len {
        return Err(Error::Sys {
            op: format!("short read at {addr:#x}"),
            source: std::io::Error::from_raw_os_error(libc::EFAULT),
        });
    }
    Ok(buf)
}

fn words(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// The saved mappings of `pid` (refuses if one cannot be saved).
pub fn vmas(pid: i32) -> Result<Vec<Vma>> {
    vmas_with(pid, &|p| std::fs::metadata(p))
}

/// The saved mappings of `pid`, looking files up with `stat` (see [`vmas::classify_with`]).
pub fn vmas_with(
    pid: i32,
    stat: &dyn Fn(&str) -> std::io::Result<std::fs::Metadata>,
) -> Result<Vec<Vma>> {
    let mut out = Vec::new();
    let mut reasons = Vec::new();
    for m in proc::maps(pid)? {
        match vmas::classify_with(&m, stat) {
            VmaClass::Keep(v) => out.push(v),
            VmaClass::Skip => {}
            VmaClass::Unsupported(r) => reasons.push(r),
        }
    }
    if reasons.is_empty() {
        Ok(out)
    } else {
        Err(Error::Refused { pid, reasons })
    }
}

/// Collect everything but memory contents and file contents.
pub fn collect(f: &mut Frozen, vmas: Vec<Vma>) -> Result<ProcessImage> {
    let pid = f.pid;
    let vdso = vmas
        .iter()
        .find(|v| v.kind == VmaKind::Vdso)
        .ok_or_else(|| Error::Restore("process has no vDSO".into()))?;
    let code = peek(pid, vdso.start, (vdso.end - vdso.start) as usize)?;
    f.gadget = find_syscall_insn(&code, vdso.start)
        .ok_or_else(|| Error::Restore("no syscall instruction in the vDSO".into()))?;
    let mut main = Tracee::new(pid, pid, f.gadget)?;
    let prot = (libc::PROT_READ | libc::PROT_WRITE) as u64;
    let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
    let scratch = main.call(
        "mmap scratch",
        nr::MMAP,
        &[0, 4096, prot, flags, u64::MAX, 0],
    )?;
    f.scratch = Some(scratch);

    let status = proc::status(pid, None)?;
    let caught = proc::hex_mask(status.get("SigCgt")) | proc::hex_mask(status.get("SigIgn"));
    let mut sigactions = Vec::new();
    for sig in 1..=64u32 {
        if caught & (1 << (sig - 1)) == 0 || sig == 9 || sig == 19 {
            continue;
        }
        main.call(
            "rt_sigaction",
            nr::RT_SIGACTION,
            &[sig as u64, 0, scratch, 8],
        )?;
        let w = words(&peek(pid, scratch, 32)?);
        sigactions.push(SigAction {
            sig,
            handler: w[0],
            flags: w[1],
            restorer: w[2],
            mask: w[3],
        });
    }
    let mut itimers = [[0i64; 4]; 3];
    for (which, slot) in itimers.iter_mut().enumerate() {
        main.call("getitimer", nr::GETITIMER, &[which as u64, scratch])?;
        let w = words(&peek(pid, scratch, 32)?);
        *slot = [w[0] as i64, w[1] as i64, w[2] as i64, w[3] as i64];
    }
    let brk = main.call("brk", nr::BRK, &[0])?;

    let mut threads = Vec::new();
    for th in &f.threads {
        let mut t = Tracee::new(pid, th.tid, f.gadget)?;
        t.call(
            "PR_GET_TID_ADDRESS",
            nr::PRCTL,
            &[PR_GET_TID_ADDRESS, scratch],
        )?;
        let clear_child_tid = words(&peek(pid, scratch, 8)?)[0];
        t.call("sigaltstack", nr::SIGALTSTACK, &[0, scratch])?;
        let ss = words(&peek(pid, scratch, 24)?);
        let altstack = (ss[0], ss[1] as u32, ss[2]);
        let g = |e| gone(pid, e);
        let rseq = ptrace::rseq_config(th.tid).map_err(g)?;
        let mut regs = th.regs;
        rseq_fixup(&mut regs, rseq.map(|r| r.0), |a, n| peek(pid, a, n).ok());
        let mut pending = th.delivered.clone();
        pending.extend(ptrace::peek_siginfo(th.tid, false).map_err(g)?);
        threads.push(ThreadImage {
            tid: th.tid,
            regs,
            xstate: ptrace::get_xstate(th.tid).map_err(g)?,
            sigmask: th.sigmask,
            pending,
            rseq,
            robust_list: sys::robust_list(th.tid).map_err(g)?,
            clear_child_tid,
            comm: proc::read(pid, &format!("task/{}/comm", th.tid))?
                .trim_end()
                .to_string(),
            altstack,
            nice: sys::get_nice(th.tid).map_err(g)?,
            affinity: sys::get_affinity(th.tid).map_err(g)?,
        });
    }

    let st = proc::stat_fields(pid)?;
    let mm = MmInfo {
        start_code: stat_field(&st, 26),
        end_code: stat_field(&st, 27),
        start_stack: stat_field(&st, 28),
        start_data: stat_field(&st, 45),
        end_data: stat_field(&st, 46),
        start_brk: stat_field(&st, 47),
        brk,
        arg_start: stat_field(&st, 48),
        arg_end: stat_field(&st, 49),
        env_start: stat_field(&st, 50),
        env_end: stat_field(&st, 51),
        auxv: proc::auxv(pid)?,
        exe: proc::link(pid, "exe")?,
    };
    let ids = |k: &str| -> [u32; 4] {
        let v = proc::numbers(status.get(k).map(String::as_str).unwrap_or(""));
        [0, 1, 2, 3].map(|i| v.get(i).copied().unwrap_or(0))
    };
    let rlimits = proc::limits(pid)?;
    if rlimits.len() != RLIMIT_COUNT {
        return Err(Error::Restore(format!("cannot parse /proc/{pid}/limits")));
    }
    let attrs = ProcAttrs {
        cwd: proc::link(pid, "cwd")?,
        umask: status
            .get("Umask")
            .and_then(|u| u32::from_str_radix(u, 8).ok())
            .unwrap_or(0o022),
        rlimits,
        sigactions,
        shared_pending: ptrace::peek_siginfo(pid, true).map_err(|e| gone(pid, e))?,
        itimers,
        personality: u32::from_str_radix(proc::read(pid, "personality")?.trim(), 16).unwrap_or(0),
        creds: Creds {
            uids: ids("Uid"),
            gids: ids("Gid"),
            groups: proc::numbers(status.get("Groups").map(String::as_str).unwrap_or("")),
        },
        no_new_privs: status.get("NoNewPrivs").map(|v| v == "1").unwrap_or(false),
    };
    Ok(ProcessImage {
        pid,
        origin: proc::origin(pid)?,
        xcr0: sys::xcr0(),
        mm,
        vmas,
        threads,
        files: Vec::new(),
        attrs,
    })
}
