//! Rebuilding one live process of a pod inside its placeholder, and ending defunct ones.

use super::super::model::{ProcEntry, TreeImage};
use crate::error::{Result, SysContext};
use crate::image::format::ParsedImage;
use crate::image::model::ThreadImage;
use crate::inject::Tracee;
use crate::objects::Installer;
use crate::restore::child::{Child, SCRATCH};
use crate::restore::{memory, task};
use crate::sys::{self, nr, ptrace};
use std::os::fd::OwnedFd;

/// Rebuild `c` as process `e` of the image (memory, descriptors, attributes, threads,
/// signals, capabilities) and leave every thread stopped; returns each thread's image with
/// its host TID, for the final release.
pub(super) fn rebuild(
    c: &mut Child,
    e: &ProcEntry,
    img: &ParsedImage<'_>,
    objects: &[OwnedFd],
    tree: &TreeImage,
    extras: &mut crate::procstate::PodState<'_>,
) -> Result<Vec<(ThreadImage, i32)>> {
    let m = &img.meta;
    let mut keep: Vec<(u64, u64)> = e.shm.iter().map(|u| (u.start, u.end)).collect();
    keep.sort();
    c.trim(&keep)?;
    c.map_vdso(&m.vmas)?;
    crate::procstate::map_objects(c, &e.extra, extras)?;
    let t = std::time::Instant::now();
    memory::build_with(c, &m.vmas, &img.pages, &keep)?;
    tracing::debug!(
        pid = e.pid,
        pieces = img.pages.len(),
        "memory rebuilt in {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let mut notes = Vec::new();
    memory::set_mm(c, &m.mm, &mut notes)?;
    for n in notes {
        tracing::warn!(pid = e.pid, "{n}");
    }
    for r in &e.fds {
        let fd = c.receive(&objects[r.object as usize])?;
        if fd != r.fd {
            let cl = if r.cloexec { libc::O_CLOEXEC as u64 } else { 0 };
            c.main
                .call("dup3", nr::DUP3, &[fd as u64, r.fd as u64, cl])?;
            c.main.call("close", nr::CLOSE, &[fd as u64])?;
        } else if r.cloexec {
            c.main.call(
                "F_SETFD",
                nr::FCNTL,
                &[fd as u64, libc::F_SETFD as u64, libc::FD_CLOEXEC as u64],
            )?;
        }
    }
    for r in &e.fds {
        tree.objects[r.object as usize].install(&mut Installer { child: c }, r.fd)?;
    }
    task::restore_attrs(c, &m.attrs, true)?;
    let tids = task::create_threads(c, &m.threads, true)?;
    let mut tracees = Vec::new();
    for (th, &tid) in m.threads.iter().skip(1).zip(&tids) {
        let mut t = Tracee::new(c.pid, tid, c.scratch)?;
        task::thread_state(c, &mut t, th)?;
        tracees.push(t);
    }
    let mut main = c.main.clone();
    task::thread_state(c, &mut main, &m.threads[0])?;
    crate::procstate::install(c, e, tree)?;
    let targets: Vec<(&ThreadImage, i32)> = m.threads.iter().map(|th| (th, th.tid)).collect();
    task::queue_signals(c, &m.attrs.shared_pending, &targets)?;
    let whole = [
        e.caps.inheritable,
        e.caps.permitted,
        e.caps.effective,
        e.caps.bounding,
        e.caps.ambient,
    ];
    let threads = tracees.iter_mut().enumerate().map(|(k, t)| (k + 1, t));
    for (i, t) in threads.chain(std::iter::once((0, &mut main))) {
        let s = crate::procstate::thread_caps(&e.extra, i, whole);
        let caps = task::CapSets {
            sets: [s[0], s[1], s[2]],
            bounding: s[3],
            ambient: s[4],
        };
        task::set_caps(c, t, &caps)?;
    }
    if let Some(link) = &c.link {
        main.call("close the pod's socket", nr::CLOSE, &[link.sock_fd as u64])?;
    }
    main.call("munmap scratch", nr::MUNMAP, &[c.scratch, SCRATCH])?;
    let mut out = vec![(m.threads[0].clone(), c.pid)];
    out.extend(m.threads.iter().skip(1).cloned().zip(tids));
    Ok(out)
}

/// End placeholder `c` the way the saved process ended (wait status `status`); it stays
/// defunct until its parent reaps it.
pub(super) fn exit_as(c: &mut Child, status: i32) -> Result<()> {
    let pid = c.pid;
    let g = |e| crate::inject::gone(pid, e);
    let sig = status & 0x7f;
    let mut regs = c.main.base;
    regs.rip = c.main.gadget;
    regs.orig_rax = u64::MAX;
    if sig == 0 {
        regs.rax = nr::EXIT_GROUP;
        regs.rdi = ((status >> 8) & 0xff) as u64;
        ptrace::set_regs(pid, &regs).map_err(g)?;
    } else {
        let dfl = c.put(0, &[0u8; 32])?;
        c.main.call(
            "rt_sigaction SIG_DFL",
            nr::RT_SIGACTION,
            &[sig as u64, dfl, 0, 8],
        )?;
        sys::set_rlimit(pid, libc::RLIMIT_CORE, 0, 0).sys(|| "prlimit RLIMIT_CORE".into())?;
        ptrace::set_sigmask(pid, !(1u64 << (sig - 1))).map_err(g)?;
        sys::kill(pid, sig).sys(|| format!("kill {pid} {sig}"))?;
    }
    ptrace::cont(pid, 0).map_err(g)?;
    loop {
        match ptrace::wait(pid).sys(|| format!("waitpid {pid}"))? {
            ptrace::Stop::Exited => return Ok(()),
            ptrace::Stop::Signal(s) => ptrace::cont(pid, s).map_err(g)?,
            _ => ptrace::cont(pid, 0).map_err(g)?,
        }
    }
}
