//! Process attributes, threads, signals, credentials, and letting the restored process go.

use super::child::Child;
use crate::error::{Error, Result, SysContext};
use crate::freeze::EVENT_STOP;
use crate::image::model::{Creds, ProcAttrs, ThreadImage};
use crate::inject::{Tracee, gone};
use crate::proc;
use crate::restart::resume_regs;
use crate::sys::ptrace::{self, Stop};
use crate::sys::{self, nr, spawn};

const PR_SET_NAME: u64 = 15;
const PR_SET_NO_NEW_PRIVS: u64 = 38;
const SS_ONSTACK: u32 = 1;

/// Working directory, umask, personality, signal dispositions, timers, rlimits, session (a
/// new one, unless `in_pod`, where sessions are rebuilt as they were; there a limit that cannot
/// be raised is only a warning).
pub fn restore_attrs(child: &mut Child, a: &ProcAttrs, in_pod: bool) -> Result<()> {
    let p = child.put_str(0, &a.cwd)?;
    child
        .main
        .call(&format!("chdir {}", a.cwd), nr::CHDIR, &[p])?;
    child.main.call("umask", nr::UMASK, &[a.umask as u64])?;
    child
        .main
        .call("personality", nr::PERSONALITY, &[a.personality as u64])?;
    // Dispositions inherited from the restorer that the image does not have: back to default.
    let st = proc::status(child.pid, None)?;
    let inherited = proc::hex_mask(st.get("SigCgt")) | proc::hex_mask(st.get("SigIgn"));
    let dfl = child.put(0, &[0u8; 32])?;
    for sig in 1..=64u32 {
        if inherited & (1 << (sig - 1)) != 0 && !a.sigactions.iter().any(|s| s.sig == sig) {
            child.main.call(
                "rt_sigaction SIG_DFL",
                nr::RT_SIGACTION,
                &[sig as u64, dfl, 0, 8],
            )?;
        }
    }
    for s in &a.sigactions {
        let b: Vec<u8> = [s.handler, s.flags, s.restorer, s.mask]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let p = child.put(0, &b)?;
        child.main.call(
            &format!("rt_sigaction {}", s.sig),
            nr::RT_SIGACTION,
            &[s.sig as u64, p, 0, 8],
        )?;
    }
    for (which, t) in a.itimers.iter().enumerate() {
        if t.iter().any(|&x| x != 0) {
            let b: Vec<u8> = t.iter().flat_map(|w| w.to_le_bytes()).collect();
            let p = child.put(0, &b)?;
            child
                .main
                .call("setitimer", nr::SETITIMER, &[which as u64, p, 0])?;
        }
    }
    if !in_pod {
        child.main.call("setsid", nr::SETSID, &[])?;
    }
    if a.no_new_privs {
        child.main.call(
            "PR_SET_NO_NEW_PRIVS",
            nr::PRCTL,
            &[PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0],
        )?;
    }
    for &(res, soft, hard) in &a.rlimits {
        match sys::set_rlimit(child.pid, res, soft, hard) {
            Err(e) if in_pod => tracing::warn!(pid = child.pid, res, "cannot set limit: {e}"),
            r => r.sys(|| format!("prlimit {res}"))?,
        }
    }
    Ok(())
}

/// Create the non-leader threads (same TIDs when `same_ids`); returns their new TIDs.
pub fn create_threads(
    child: &mut Child,
    threads: &[ThreadImage],
    same_ids: bool,
) -> Result<Vec<i32>> {
    let mut tids = Vec::new();
    for th in threads.iter().skip(1) {
        // In a pod the namespace is new: every saved TID is free there.
        let free = same_ids
            && (child.link.is_some()
                || !std::path::Path::new(&format!("/proc/{}", th.tid)).exists());
        let set_tid = if free {
            child.put(512, &th.tid.to_le_bytes())?
        } else {
            0
        };
        let args = child.put(0, &spawn::thread_clone_args(set_tid))?;
        let size = spawn::CLONE_ARGS_SIZE as u64;
        let mut r = child.main.raw(nr::CLONE3, &[args, size])?;
        if (r == -(libc::EEXIST as i64) || r == -(libc::EPERM as i64)) && set_tid != 0 {
            // The TID was taken since we looked, or we may not choose it: any TID will do.
            let args = child.put(0, &spawn::thread_clone_args(0))?;
            r = child.main.raw(nr::CLONE3, &[args, size])?;
        }
        if r < 0 {
            let e = std::io::Error::from_raw_os_error(-r as i32);
            return Err(Error::Restore(format!("clone3 for thread {}: {e}", th.tid)));
        }
        // The clone event names the thread in our PID namespace (`r` is in the child's).
        let tid = match child.main.new_threads.pop() {
            Some(t) => t,
            None => r as i32,
        };
        loop {
            match ptrace::wait(tid).sys(|| format!("waitpid {tid}"))? {
                Stop::Event(EVENT_STOP, _) | Stop::Signal(libc::SIGSTOP) => break,
                Stop::Exited => return Err(Error::Restore(format!("new thread {tid} died"))),
                _ => ptrace::cont(tid, 0).map_err(|e| gone(child.pid, e))?,
            }
        }
        ptrace::set_sigmask(tid, !0).map_err(|e| gone(child.pid, e))?;
        tids.push(tid);
    }
    Ok(tids)
}

/// Per-thread kernel state: clear-child-tid, robust list, rseq, name.
pub fn thread_state(child: &Child, t: &mut Tracee, th: &ThreadImage) -> Result<()> {
    t.call(
        "set_tid_address",
        nr::SET_TID_ADDRESS,
        &[th.clear_child_tid],
    )?;
    if th.robust_list.0 != 0 {
        t.call(
            "set_robust_list",
            nr::SET_ROBUST_LIST,
            &[th.robust_list.0, th.robust_list.1],
        )?;
    }
    if let Some((area, len, sig)) = th.rseq {
        t.call("rseq", nr::RSEQ, &[area, len as u64, 0, sig as u64])?;
    }
    let (sp, flags, size) = th.altstack;
    let mut ss = Vec::with_capacity(24);
    ss.extend(sp.to_le_bytes());
    ss.extend(u64::from(flags & !SS_ONSTACK).to_le_bytes());
    ss.extend(size.to_le_bytes());
    let p = child.put(4096 + 2048 + 32 * (t.tid as u64 % 64), &ss)?;
    t.call("sigaltstack", nr::SIGALTSTACK, &[p, 0])?;
    let mut comm = th.comm.as_bytes().to_vec();
    comm.truncate(15);
    comm.push(0);
    let p = child.put(2048 + 32 * (t.tid as u64 % 64), &comm)?;
    t.call("PR_SET_NAME", nr::PRCTL, &[PR_SET_NAME, p])?;
    Ok(())
}

/// Queue saved pending signals again (from the leader, which the kernel allows with the
/// original siginfo). `targets` pairs each thread image with its TID as the process sees it.
pub fn queue_signals(
    child: &mut Child,
    shared: &[Vec<u8>],
    targets: &[(&ThreadImage, i32)],
) -> Result<()> {
    let pid = child.ns_pid as u64;
    for si in shared {
        let sig = u32::from_le_bytes(si[..4].try_into().unwrap()) as u64;
        let p = child.put(0, si)?;
        child
            .main
            .call("rt_sigqueueinfo", nr::RT_SIGQUEUEINFO, &[pid, sig, p])?;
    }
    for (th, tid) in targets {
        for si in &th.pending {
            let sig = u32::from_le_bytes(si[..4].try_into().unwrap()) as u64;
            let p = child.put(0, si)?;
            child.main.call(
                "rt_tgsigqueueinfo",
                nr::RT_TGSIGQUEUEINFO,
                &[pid, *tid as u64, sig, p],
            )?;
        }
    }
    Ok(())
}

/// Give a thread the saved credentials (each thread has its own in the kernel); only called
/// once [`crate::creds::authorize`] allowed them.
pub fn set_creds(child: &Child, t: &mut Tracee, c: &Creds) -> Result<()> {
    let g: Vec<u8> = c.groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    let p = child.put(4096, &g)?;
    t.call("setgroups", nr::SETGROUPS, &[c.groups.len() as u64, p])?;
    t.call(
        "setresgid",
        nr::SETRESGID,
        &[c.gids[0] as u64, c.gids[1] as u64, c.gids[2] as u64],
    )?;
    t.call(
        "setresuid",
        nr::SETRESUID,
        &[c.uids[0] as u64, c.uids[1] as u64, c.uids[2] as u64],
    )?;
    Ok(())
}

/// Load the final registers, FPU state and signal mask of a thread and let it run.
pub fn release_thread(pid: i32, tid: i32, th: &ThreadImage) -> Result<()> {
    let g = |e| gone(pid, e);
    // Scheduling hints are best effort: another machine may have other CPUs.
    if let Err(e) = sys::set_nice(tid, th.nice) {
        tracing::warn!(tid, nice = th.nice, "cannot set nice value: {e}");
    }
    if let Err(e) = sys::set_affinity(tid, &th.affinity) {
        tracing::warn!(tid, "cannot set CPU affinity: {e}");
    }
    let unblocked_pending = th.pending.iter().any(|si| {
        let sig = u32::from_le_bytes(si[..4].try_into().unwrap());
        th.sigmask & (1u64 << (sig - 1)) == 0
    });
    let regs = if unblocked_pending {
        th.regs
    } else {
        resume_regs(&th.regs, false)
    };
    // The kernel wants a buffer of exactly its own XSAVE size; another CPU may have a larger
    // one (more features; the image's header says which are in use), so pad with zeros.
    let mut xs = th.xstate.clone();
    let here = ptrace::get_xstate(tid).map_err(g)?.len();
    xs.resize(here, 0);
    ptrace::set_xstate(tid, &xs).map_err(g)?;
    ptrace::set_regs(tid, &regs).map_err(g)?;
    ptrace::set_sigmask(tid, th.sigmask).map_err(g)?;
    ptrace::detach(tid, 0).map_err(g)
}

/// Capability sets of one thread, as saved (`/proc` Cap* lines).
#[derive(Debug, Clone, Copy)]
pub struct CapSets {
    /// Inheritable, permitted, effective.
    pub sets: [u64; 3],
    /// Bounding set.
    pub bounding: u64,
    /// Ambient set.
    pub ambient: u64,
}

/// Reduce a thread's capabilities to `c` (a placeholder has them all in its user namespace):
/// the bounding set, then `capset`, then the ambient set.
pub fn set_caps(child: &Child, t: &mut Tracee, c: &CapSets) -> Result<()> {
    const PR_CAPBSET_DROP: u64 = 24;
    const PR_CAP_AMBIENT: u64 = 47;
    const PR_CAP_AMBIENT_RAISE: u64 = 2;
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    for cap in 0..64u64 {
        if c.bounding & (1 << cap) == 0 {
            // Capabilities this kernel does not know report EINVAL: nothing to drop.
            let r = t.raw(nr::PRCTL, &[PR_CAPBSET_DROP, cap, 0, 0, 0])?;
            if r < 0 && r != -(libc::EINVAL as i64) {
                t.call(
                    "PR_CAPBSET_DROP",
                    nr::PRCTL,
                    &[PR_CAPBSET_DROP, cap, 0, 0, 0],
                )?;
            }
        }
    }
    let mut b = Vec::with_capacity(32);
    b.extend(LINUX_CAPABILITY_VERSION_3.to_le_bytes());
    b.extend(0i32.to_le_bytes());
    for half in 0..2 {
        for set in [c.sets[2], c.sets[1], c.sets[0]] {
            b.extend(((set >> (32 * half)) as u32).to_le_bytes());
        }
    }
    let hdr = child.put(3072 + 64 * (t.tid as u64 % 16), &b)?;
    t.call("capset", nr::CAPSET, &[hdr, hdr + 8])?;
    for cap in 0..64u64 {
        if c.ambient & (1 << cap) != 0 {
            t.call(
                "PR_CAP_AMBIENT_RAISE",
                nr::PRCTL,
                &[PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0],
            )?;
        }
    }
    Ok(())
}
