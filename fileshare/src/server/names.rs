//! Calls on names: lookup, creating nodes, link, unlink, rename.

use std::ffi::{CStr, CString};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;

use nix::errno::Errno;

use super::modes;
use super::nodes::Node;
use super::state::{OpenFile, Server, lock};
use crate::proto::{Answer, Entry};
use crate::sys::{self, SysResult, component};

impl Server {
    pub(super) fn lookup(&self, parent: u64, name: &[u8]) -> SysResult<Entry> {
        let (parent, dir) = self.dir(parent)?;
        self.lookup_name(&parent, &dir, &component(name)?)
    }

    /// Refuses creating `name` in `parent`: read-only export or never-path.
    fn may_create(&self, parent: u64, name: &[u8]) -> SysResult<(Node, PathBuf, CString)> {
        let (parent, dir) = self.dir(parent)?;
        let name = component(name)?;
        self.writable(parent.export)?;
        if self.is_never_name(&dir, &name) {
            return Err(Errno::EACCES);
        }
        Ok((parent, dir, name))
    }

    /// Looks up a node just made, gives it its mode.
    fn made(
        &self,
        parent: &Node,
        dir: &std::path::Path,
        name: &CStr,
        mode: Option<u32>,
    ) -> SysResult<Answer> {
        if let Some(mode) = mode {
            let fd = sys::open_node(parent.fd.as_fd(), name)?;
            self.settle_new(fd.as_fd(), mode)?;
        }
        self.lookup_name(parent, dir, name).map(Answer::Entry)
    }

    pub(super) fn mknod(
        &self,
        parent: u64,
        name: &[u8],
        mode: u32,
        rdev: u64,
    ) -> SysResult<Answer> {
        let (parent, dir, name) = self.may_create(parent, name)?;
        match mode & libc::S_IFMT {
            libc::S_IFREG | libc::S_IFIFO | libc::S_IFSOCK => {}
            libc::S_IFCHR | libc::S_IFBLK => return Err(Errno::EPERM),
            _ => return Err(Errno::EINVAL),
        }
        let kind_and_mode = (mode & libc::S_IFMT) | modes::creation_mode(mode);
        sys::mknod(parent.fd.as_fd(), &name, kind_and_mode, rdev)?;
        self.made(&parent, &dir, &name, Some(mode))
    }

    pub(super) fn mkdir(&self, parent: u64, name: &[u8], mode: u32) -> SysResult<Answer> {
        let (parent, dir, name) = self.may_create(parent, name)?;
        sys::mkdir(parent.fd.as_fd(), &name, modes::creation_mode(mode))?;
        self.made(&parent, &dir, &name, Some(mode))
    }

    pub(super) fn symlink(&self, parent: u64, name: &[u8], target: &[u8]) -> SysResult<Answer> {
        let (parent, dir, name) = self.may_create(parent, name)?;
        if target.is_empty() || target.contains(&0) {
            return Err(Errno::EINVAL);
        }
        sys::symlink(target, parent.fd.as_fd(), &name)?;
        self.made(&parent, &dir, &name, None)
    }

    pub(super) fn link(&self, node: u64, parent: u64, name: &[u8]) -> SysResult<Answer> {
        let (source, _) = self.located(node)?;
        let (parent, dir, name) = self.may_create(parent, name)?;
        if source.export != parent.export {
            return Err(Errno::EXDEV);
        }
        if source.is_dir() {
            return Err(Errno::EPERM);
        }
        self.stat_node(&source)?;
        sys::link(
            self.places.proc_fds(),
            source.fd.as_fd(),
            parent.fd.as_fd(),
            &name,
        )?;
        self.lookup_name(&parent, &dir, &name).map(Answer::Entry)
    }

    pub(super) fn unlink(&self, parent: u64, name: &[u8], is_dir: bool) -> SysResult<Answer> {
        let (parent, dir) = self.dir(parent)?;
        let name = component(name)?;
        self.writable(parent.export)?;
        self.stat_visible(&parent, &dir, &name)?;
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
        let (from, from_dir) = self.dir(parent)?;
        let (to, to_dir) = self.dir(new_parent)?;
        let name = component(name)?;
        let new_name = component(new_name)?;
        if from.export != to.export {
            return Err(Errno::EXDEV);
        }
        self.writable(from.export)?;
        if flags & !(libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE) != 0 {
            return Err(Errno::EINVAL);
        }
        let moving = self.stat_visible(&from, &from_dir, &name)?;
        if self.is_never_name(&to_dir, &new_name) {
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
        self.renamed(from.export, &moving, to.id, &new_name);
        if flags & libc::RENAME_EXCHANGE != 0
            && let Some(other) = &replaced
        {
            self.renamed(from.export, other, from.id, &name);
        }
        Ok(Answer::Done)
    }

    pub(super) fn create(
        &self,
        parent: u64,
        name: &[u8],
        mode: u32,
        flags: i32,
    ) -> SysResult<Answer> {
        let (parent, dir, name) = self.may_create(parent, name)?;
        // The handle's descriptor first: a refused create makes nothing.
        let charge = self.charge_handle()?;
        // Only a file made here gets the caller's mode; one that appeared
        // meanwhile is opened as it is (unless O_EXCL was asked).
        let created = sys::create(
            parent.fd.as_fd(),
            &name,
            flags | libc::O_EXCL,
            modes::creation_mode(mode),
        );
        let (file, fresh) = match created {
            Ok(f) => (f, true),
            Err(Errno::EEXIST) if flags & libc::O_EXCL == 0 => {
                let st = self.stat_visible(&parent, &dir, &name)?;
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
            self.settle_new(file.as_fd(), mode)?;
        } else if flags & libc::O_TRUNC != 0 {
            modes::clear_set_id_for_write(self.places.proc_fds(), file.as_fd())?;
        }
        let entry = self.lookup_name(&parent, &dir, &name)?;
        let fh = self.next_handle();
        lock(&self.files).insert(
            fh,
            OpenFile {
                file: Arc::new(file),
                node: entry.node,
                export: parent.export,
                _charge: charge,
                checked: Arc::default(),
            },
        );
        Ok(Answer::Created(entry, fh))
    }
}
