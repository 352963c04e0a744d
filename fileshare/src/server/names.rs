//! Calls on names: lookup, creating nodes, link, unlink, rename.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;

use super::state::Server;
use crate::proto::{Answer, Entry, Owner};
use crate::sys::{self, SysResult, component};

impl Server {
    pub(super) fn lookup(&self, parent: u64, name: &[u8]) -> SysResult<Entry> {
        let parent = self.dir(parent)?;
        self.lookup_name(&parent, &component(name)?)
    }

    /// Refuses creating `name` in `parent`: read-only export or never-path.
    fn may_create(
        &self,
        parent: u64,
        name: &[u8],
    ) -> SysResult<(super::nodes::Node, std::ffi::CString)> {
        let parent = self.dir(parent)?;
        let name = component(name)?;
        self.writable(parent.export)?;
        if self.is_never_name(&parent, &name) {
            return Err(Errno::EACCES);
        }
        Ok((parent, name))
    }

    /// Looks up a node just made, gives it its owner and mode.
    fn made(
        &self,
        parent: &super::nodes::Node,
        name: &std::ffi::CStr,
        owner: Owner,
        mode: Option<u32>,
    ) -> SysResult<Answer> {
        let fd = sys::open_node(parent.fd.as_fd(), name)?;
        self.settle_new(fd.as_fd(), owner, mode)?;
        drop(fd);
        self.lookup_name(parent, name).map(Answer::Entry)
    }

    pub(super) fn mknod(
        &self,
        parent: u64,
        name: &[u8],
        mode: u32,
        rdev: u64,
        owner: Owner,
    ) -> SysResult<Answer> {
        let (parent, name) = self.may_create(parent, name)?;
        match mode & libc::S_IFMT {
            libc::S_IFREG | libc::S_IFIFO | libc::S_IFSOCK => {}
            libc::S_IFCHR | libc::S_IFBLK => return Err(Errno::EPERM),
            _ => return Err(Errno::EINVAL),
        }
        sys::mknod(parent.fd.as_fd(), &name, mode, rdev)?;
        self.made(&parent, &name, owner, Some(mode))
    }

    pub(super) fn mkdir(
        &self,
        parent: u64,
        name: &[u8],
        mode: u32,
        owner: Owner,
    ) -> SysResult<Answer> {
        let (parent, name) = self.may_create(parent, name)?;
        sys::mkdir(parent.fd.as_fd(), &name, mode & 0o7777)?;
        self.made(&parent, &name, owner, Some(mode))
    }

    pub(super) fn symlink(
        &self,
        parent: u64,
        name: &[u8],
        target: &[u8],
        owner: Owner,
    ) -> SysResult<Answer> {
        let (parent, name) = self.may_create(parent, name)?;
        if target.is_empty() || target.contains(&0) {
            return Err(Errno::EINVAL);
        }
        sys::symlink(target, parent.fd.as_fd(), &name)?;
        self.made(&parent, &name, owner, None)
    }

    pub(super) fn link(&self, node: u64, parent: u64, name: &[u8]) -> SysResult<Answer> {
        let source = self.node(node)?;
        let (parent, name) = self.may_create(parent, name)?;
        if source.export != parent.export {
            return Err(Errno::EXDEV);
        }
        if source.is_dir() {
            return Err(Errno::EPERM);
        }
        self.stat_node(&source)?;
        sys::link(
            self.proc_fds.as_fd(),
            source.fd.as_fd(),
            parent.fd.as_fd(),
            &name,
        )?;
        self.lookup_name(&parent, &name).map(Answer::Entry)
    }

    pub(super) fn unlink(&self, parent: u64, name: &[u8], is_dir: bool) -> SysResult<Answer> {
        let parent = self.dir(parent)?;
        let name = component(name)?;
        self.writable(parent.export)?;
        self.stat_visible(&parent, &name)?;
        sys::unlink(parent.fd.as_fd(), &name, is_dir)?;
        Ok(Answer::Done)
    }

    pub(super) fn rename(
        &self,
        parent: u64,
        name: &[u8],
        new_parent: u64,
        new_name: &[u8],
        flags: u32,
    ) -> SysResult<Answer> {
        let from = self.dir(parent)?;
        let to = self.dir(new_parent)?;
        let name = component(name)?;
        let new_name = component(new_name)?;
        if from.export != to.export {
            return Err(Errno::EXDEV);
        }
        self.writable(from.export)?;
        if flags & !(libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE) != 0 {
            return Err(Errno::EINVAL);
        }
        let moving = self.stat_visible(&from, &name)?;
        if self.is_never_name(&to, &new_name) {
            return Err(Errno::EACCES);
        }
        let replaced = match sys::stat_at(to.fd.as_fd(), &new_name) {
            Ok(st) => {
                if self.never.hides(&st) {
                    return Err(Errno::EACCES);
                }
                Some(st)
            }
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(e),
        };
        sys::rename(from.fd.as_fd(), &name, to.fd.as_fd(), &new_name, flags)?;
        let rel = |dir: &super::nodes::Node, n: &std::ffi::CStr| {
            dir.rel
                .clone()
                .unwrap_or_default()
                .join(OsStr::from_bytes(n.to_bytes()))
        };
        let (old_path, new_path) = (rel(&from, &name), rel(&to, &new_name));
        let is_dir = |st: &nix::sys::stat::FileStat| st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        if flags & libc::RENAME_EXCHANGE != 0 {
            let parked = old_path.join("\0exchange");
            if is_dir(&moving) {
                self.moved(from.export, &old_path, &parked);
            }
            if replaced.as_ref().is_some_and(is_dir) {
                self.moved(from.export, &new_path, &old_path);
            }
            if is_dir(&moving) {
                self.moved(from.export, &parked, &new_path);
            }
        } else if is_dir(&moving) {
            self.moved(from.export, &old_path, &new_path);
        }
        Ok(Answer::Done)
    }

    pub(super) fn create(
        &self,
        parent: u64,
        name: &[u8],
        mode: u32,
        flags: i32,
        owner: Owner,
    ) -> SysResult<Answer> {
        let (parent, name) = self.may_create(parent, name)?;
        // Only a file made here gets the caller's owner and mode; one that
        // appeared meanwhile is opened as it is (unless O_EXCL was asked).
        let (file, fresh) = match sys::create(parent.fd.as_fd(), &name, flags | libc::O_EXCL, mode)
        {
            Ok(f) => (f, true),
            Err(Errno::EEXIST) if flags & libc::O_EXCL == 0 => {
                let st = self.stat_visible(&parent, &name)?;
                match st.st_mode & libc::S_IFMT {
                    libc::S_IFREG => {}
                    libc::S_IFLNK => return Err(Errno::ELOOP),
                    libc::S_IFDIR => return Err(Errno::EISDIR),
                    // Never open a FIFO or device on the master.
                    _ => return Err(Errno::EACCES),
                }
                (sys::create(parent.fd.as_fd(), &name, flags, mode)?, false)
            }
            Err(e) => return Err(e),
        };
        if fresh {
            self.settle_new(file.as_fd(), owner, Some(mode))?;
        }
        let entry = self.lookup_name(&parent, &name)?;
        let fh = self.next_handle();
        super::state::lock(&self.files).insert(
            fh,
            super::state::OpenFile {
                file: std::sync::Arc::new(file),
                node: entry.node,
            },
        );
        Ok(Answer::Created(entry, fh))
    }
}
