//! Owners and set-id bits: what a zombie may do to them.
//!
//! The master serves files as its own user, whoever the caller on the
//! zombie is (its root included):
//!
//! - **New nodes** are made by the server's process and so belong to its
//!   uid and gid (a set-gid parent directory gives its group, as the kernel
//!   does). The owner the zombie names is not used.
//! - **chown/chgrp** to anything but the node's current owner and group:
//!   `EPERM`. Naming the current ones is allowed (tools that preserve owners
//!   do that) and changes nothing.
//! - **Set-id bits** are never set by a zombie: a chmod that would add
//!   `S_ISUID` or `S_ISGID` is refused with `EPERM` (an explicit request,
//!   so the caller learns it failed; bits the master set stay as they are
//!   unless asked to go), and a mode given at creation loses them silently
//!   (copying tools pass a source's mode, and refusing would lose the
//!   file). A directory still inherits `S_ISGID` from a set-gid parent: that
//!   only chooses the group of what is made in it.
//! - **Writes** clear `S_ISUID` and (with group execute) `S_ISGID`, as the
//!   kernel does for an unprivileged writer: the server may run as root,
//!   whose writes the kernel leaves them on. Truncating and `fallocate` too.

use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::sys::stat::FileStat;

use crate::sys::{self, SysResult};

const SET_ID: u32 = libc::S_ISUID | libc::S_ISGID;

/// The permission bits a node is created with: the zombie's, without
/// set-id bits.
pub fn creation_mode(mode: u32) -> u32 {
    mode & 0o7777 & !SET_ID
}

/// `EPERM` unless `uid` and `gid` (when given) are the node's own.
pub fn check_chown(st: &FileStat, uid: Option<u32>, gid: Option<u32>) -> SysResult<()> {
    if uid.is_some_and(|u| u != st.st_uid) || gid.is_some_and(|g| g != st.st_gid) {
        return Err(Errno::EPERM);
    }
    Ok(())
}

/// `EPERM` when `mode` would give the node a set-id bit it lacks.
pub fn check_chmod(st: &FileStat, mode: u32) -> SysResult<()> {
    if mode & SET_ID & !st.st_mode != 0 {
        return Err(Errno::EPERM);
    }
    Ok(())
}

/// The set-id bits a write removes from a file with mode `mode`.
fn killed_by_write(mode: u32) -> u32 {
    let mut kill = mode & libc::S_ISUID;
    if mode & libc::S_ISGID != 0 && mode & libc::S_IXGRP != 0 {
        kill |= libc::S_ISGID;
    }
    kill
}

/// Clears the set-id bits a write removes, before writing to the regular
/// file behind `fd` (an open file or a node; changed through `proc_fds`).
pub fn clear_set_id_for_write(proc_fds: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> SysResult<()> {
    let st = sys::stat(fd)?;
    let kill = killed_by_write(st.st_mode);
    if kill != 0 && st.st_mode & libc::S_IFMT == libc::S_IFREG {
        sys::chmod(proc_fds, fd, st.st_mode & 0o7777 & !kill)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_kill_setuid_and_executable_setgid_only() {
        assert_eq!(killed_by_write(0o4755), libc::S_ISUID);
        assert_eq!(killed_by_write(0o6755), SET_ID);
        assert_eq!(
            killed_by_write(0o2745),
            0,
            "setgid without g+x is a lock mark"
        );
        assert_eq!(killed_by_write(0o0755), 0);
        assert_eq!(creation_mode(0o6755), 0o755);
        assert_eq!(creation_mode(0o1777), 0o1777);
    }
}
