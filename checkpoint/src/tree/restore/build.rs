//! Forking the tree: every process at its PID under its parent, sessions, the controlling
//! terminal, process groups and the foreground group.

use super::super::model::TreeImage;
use crate::error::{Error, Result};
use crate::restore::child::Child;
use crate::sys::{nr, spawn};
use std::collections::HashMap;
use std::os::fd::OwnedFd;

/// The placeholders of a pod, parents before children. Dropped (a failed restore), they are
/// killed children first: a dying init waits to reap its children, which it cannot while we
/// still trace them.
pub(super) struct Procs(pub Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        while let Some(c) = self.0.pop() {
            drop(c);
        }
    }
}

impl std::ops::Deref for Procs {
    type Target = Vec<Child>;
    fn deref(&self) -> &Vec<Child> {
        &self.0
    }
}

impl std::ops::DerefMut for Procs {
    fn deref_mut(&mut self) -> &mut Vec<Child> {
        &mut self.0
    }
}

/// Fork every process of `tree` (parents before children) from `root`; each is an empty
/// placeholder sharing the root's scratch area, in its saved session with its controlling
/// terminal or none. Index `i` of the result is `tree.processes[i]`.
pub(super) fn fork_tree(tree: &TreeImage, root: Child, slave: &OwnedFd) -> Result<Procs> {
    let index: HashMap<i32, usize> = tree
        .processes
        .iter()
        .enumerate()
        .map(|(i, e)| (e.pid, i))
        .collect();
    let mut procs = Procs(vec![root]);
    session(&mut procs[0], tree, 0, false, slave)?;
    for (i, e) in tree.processes.iter().enumerate().skip(1) {
        let pi = index[&e.ppid];
        let child = fork_one(&mut procs[pi], e.pid)?;
        procs.push(child);
        let parent = &tree.processes[pi];
        let inherits_tty = parent.has_ctty && parent.sid == e.sid;
        session(&mut procs[i], tree, i, inherits_tty, slave)?;
    }
    Ok(procs)
}

/// An injected `clone3` in `parent` creating PID `ns_pid` of the pod; the new placeholder,
/// auto-attached and stopped.
fn fork_one(parent: &mut Child, ns_pid: i32) -> Result<Child> {
    let set_tid = parent.put(512, &ns_pid.to_le_bytes())?;
    let args = parent.put(0, &spawn::process_clone_args(set_tid))?;
    let r = parent
        .main
        .raw(nr::CLONE3, &[args, spawn::CLONE_ARGS_SIZE as u64])?;
    if r != i64::from(ns_pid) {
        let why = if r < 0 {
            std::io::Error::from_raw_os_error(-r as i32).to_string()
        } else {
            format!("got PID {r}")
        };
        return Err(Error::Restore(format!("fork of pid {ns_pid}: {why}")));
    }
    let host = parent
        .main
        .new_threads
        .pop()
        .ok_or_else(|| Error::Restore(format!("fork of pid {ns_pid}: no fork event")))?;
    let link = parent
        .link
        .clone()
        .ok_or_else(|| Error::Restore("placeholder outside a pod".into()))?;
    Child::stopped(host, ns_pid, link, parent.scratch)
}

/// `ioctl(slave, req, arg)` inside `c`, with the pty slave passed in for the call.
fn tty_ioctl(c: &mut Child, slave: &OwnedFd, what: &str, req: u64, arg: u64) -> Result<()> {
    let fd = c.receive(slave)?;
    let r = c.main.call(what, nr::IOCTL, &[fd as u64, req, arg]);
    c.main.call("close", nr::CLOSE, &[fd as u64])?;
    r.map(drop)
}

/// Session and controlling terminal of process `i`, right after it was forked (before it
/// forks its own children, which inherit both).
fn session(
    c: &mut Child,
    tree: &TreeImage,
    i: usize,
    inherits_tty: bool,
    slave: &OwnedFd,
) -> Result<()> {
    let e = &tree.processes[i];
    if e.pid == e.sid && i > 0 {
        c.main.call("setsid", nr::SETSID, &[])?;
    }
    if e.pid == e.sid && e.has_ctty {
        tty_ioctl(c, slave, "TIOCSCTTY", libc::TIOCSCTTY, 0)?;
    } else if e.pid != e.sid && inherits_tty && !e.has_ctty {
        tty_ioctl(c, slave, "TIOCNOTTY", libc::TIOCNOTTY, 0)?;
    }
    Ok(())
}

/// Process groups (leaders first), then the terminal's foreground group.
pub(super) fn groups(tree: &TreeImage, procs: &mut [Child], slave: &OwnedFd) -> Result<()> {
    for leaders in [true, false] {
        for (e, c) in tree.processes.iter().zip(procs.iter_mut()) {
            if e.pid == e.sid || (e.pgid == e.pid) != leaders {
                continue;
            }
            c.main
                .call("setpgid", nr::SETPGID, &[0, e.pgid as u64])
                .map_err(|err| Error::Restore(format!("pid {}: {err}", e.pid)))?;
        }
    }
    let Some(fg) = tree.pty.as_ref().map(|p| p.foreground).filter(|&f| f > 0) else {
        return Ok(());
    };
    let Some(i) = tree
        .processes
        .iter()
        .position(|e| e.pid == e.sid && e.has_ctty)
    else {
        return Ok(());
    };
    let c = &mut procs[i];
    let p = c.put(512, &fg.to_le_bytes())?;
    tty_ioctl(c, slave, "TIOCSPGRP", libc::TIOCSPGRP, p)
}

/// Set the pod's `ns_last_pid` (from its init, which may: it has every capability in the
/// pod's user namespace), so that the next fork gets the PID it would have got.
pub(super) fn last_pid(root: &mut Child, last: i32) -> Result<()> {
    if last <= 1 {
        return Ok(());
    }
    let fd = root.open_here("/proc/sys/kernel/ns_last_pid", libc::O_WRONLY, 0)?;
    let text = last.to_string();
    let p = root.put(256, text.as_bytes())?;
    let r = root.main.call(
        "write ns_last_pid",
        nr::WRITE,
        &[fd as u64, p, text.len() as u64],
    );
    root.main.call("close", nr::CLOSE, &[fd as u64])?;
    r.map(drop)
}
