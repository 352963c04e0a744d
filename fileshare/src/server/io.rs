//! Calls on nodes and handles: attributes, open files, directories.

use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use nix::errno::Errno;
use serde_bytes::ByteBuf;

use super::modes;
use super::state::{DirHandle, OpenFile, Server, attr, lock};
use crate::proto::{Answer, DirEntry, MAX_IO, SetAttr, StatFs};
use crate::sys::{self, SysResult, errno_of};

/// Directory entries per `ReadDir` answer.
const DIR_BATCH: usize = 512;

impl Server {
    pub(super) fn getattr(&self, node: u64) -> SysResult<Answer> {
        let (node, _) = self.located(node)?;
        Ok(Answer::Attr(attr(&self.stat_node(&node)?)))
    }

    pub(super) fn setattr(&self, id: u64, fh: Option<u64>, set: &SetAttr) -> SysResult<Answer> {
        let (node, _) = self.located(id)?;
        self.writable(node.export)?;
        let st = self.stat_node(&node)?;
        // Every refusal before any change.
        modes::check_chown(&st, set.uid, set.gid)?;
        if let Some(mode) = set.mode {
            modes::check_chmod(&st, mode)?;
        }
        let fd = node.fd.as_fd();
        let proc_fds = self.places.proc_fds();
        if let Some(size) = set.size {
            if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                return Err(if node.is_dir() {
                    Errno::EISDIR
                } else {
                    Errno::EINVAL
                });
            }
            modes::clear_set_id_for_write(proc_fds, fd)?;
            match fh.map(|fh| self.open_file_of(fh, id)) {
                Some(Ok(file)) => file.set_len(size).map_err(errno_of)?,
                _ => sys::truncate(proc_fds, fd, size)?,
            }
        }
        if set.uid.is_some() || set.gid.is_some() {
            // The owner and group it has (checked above): the ctime moves.
            sys::chown(fd, set.uid, set.gid)?;
        }
        if let Some(mode) = set.mode {
            sys::chmod(proc_fds, fd, mode)?;
        }
        if set.atime.is_some() || set.mtime.is_some() {
            sys::utimens(fd, set.atime, set.mtime)?;
        }
        Ok(Answer::Attr(attr(&sys::stat(fd)?)))
    }

    pub(super) fn readlink(&self, node: u64) -> SysResult<Answer> {
        let (node, _) = self.located(node)?;
        if node.kind != libc::S_IFLNK {
            return Err(Errno::EINVAL);
        }
        Ok(Answer::Data(ByteBuf::from(sys::readlink(node.fd.as_fd())?)))
    }

    pub(super) fn open(&self, id: u64, flags: i32) -> SysResult<Answer> {
        let (node, _) = self.located(id)?;
        if node.kind != libc::S_IFREG {
            return Err(if node.is_dir() {
                Errno::EISDIR
            } else {
                Errno::EACCES
            });
        }
        let writes = flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0;
        if writes {
            self.writable(node.export)?;
        }
        self.stat_node(&node)?;
        let charge = self.charge_handle()?;
        let proc_fds = self.places.proc_fds();
        if flags & libc::O_TRUNC != 0 {
            modes::clear_set_id_for_write(proc_fds, node.fd.as_fd())?;
        }
        let file = sys::reopen(proc_fds, node.fd.as_fd(), flags)?;
        let fh = self.next_handle();
        lock(&self.files).insert(
            fh,
            OpenFile {
                file: Arc::new(file),
                node: id,
                export: node.export,
                _charge: charge,
                checked: Arc::default(),
            },
        );
        Ok(Answer::Opened(fh))
    }

    pub(super) fn read(&self, fh: u64, offset: u64, size: u32) -> SysResult<Answer> {
        let file = self.open_file(fh)?;
        let size = size.min(MAX_IO) as usize;
        let mut buf = vec![0u8; size];
        let mut got = 0;
        while got < size {
            match file.read_at(&mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(errno_of(e)),
            }
        }
        buf.truncate(got);
        Ok(Answer::Data(ByteBuf::from(buf)))
    }

    pub(super) fn write(&self, fh: u64, offset: u64, data: &[u8]) -> SysResult<Answer> {
        let file = self.open_file(fh)?;
        if data.len() > MAX_IO as usize {
            return Err(Errno::EINVAL);
        }
        modes::clear_set_id_for_write(self.places.proc_fds(), file.as_fd())?;
        file.write_all_at(data, offset).map_err(errno_of)?;
        Ok(Answer::Written(data.len() as u32))
    }

    pub(super) fn release(&self, fh: u64) -> SysResult<Answer> {
        lock(&self.files).remove(&fh).ok_or(Errno::EBADF)?;
        Ok(Answer::Done)
    }

    pub(super) fn fsync(&self, fh: u64, datasync: bool) -> SysResult<Answer> {
        let file = self.open_file(fh)?;
        if datasync {
            file.sync_data()
        } else {
            file.sync_all()
        }
        .map_err(errno_of)?;
        Ok(Answer::Done)
    }

    pub(super) fn opendir(&self, node: u64) -> SysResult<Answer> {
        let (dir, path) = self.dir(node)?;
        self.stat_node(&dir)?;
        let charge = self.charge_handle()?;
        let check_names = self.places.has_never_in(&path);
        let check_inodes = !self.never.is_empty();
        let mut entries = Vec::new();
        for raw in sys::read_dir(self.places.proc_fds(), dir.fd.as_fd())? {
            let dots = matches!(raw.name.to_bytes(), b"." | b"..");
            if !dots {
                if check_names && self.is_never_name(&path, &raw.name) {
                    continue;
                }
                if check_inodes {
                    match sys::stat_at(dir.fd.as_fd(), &raw.name) {
                        Ok(st) if self.never.hides(&st) => continue,
                        Ok(_) => {}
                        Err(_) => continue, // gone meanwhile
                    }
                }
            }
            entries.push(DirEntry {
                ino: raw.ino,
                offset: entries.len() as u64 + 1,
                kind: raw.kind,
                name: ByteBuf::from(raw.name.into_bytes()),
            });
        }
        let listing = self.charge_listing(entries.len())?;
        let fh = self.next_handle();
        lock(&self.dirs).insert(
            fh,
            DirHandle {
                node,
                entries: Arc::new(entries),
                _charge: charge,
                _listing: listing,
            },
        );
        Ok(Answer::Opened(fh))
    }

    pub(super) fn readdir(&self, fh: u64, offset: u64) -> SysResult<Answer> {
        let (node, entries) = lock(&self.dirs)
            .get(&fh)
            .map(|d| (d.node, d.entries.clone()))
            .ok_or(Errno::EBADF)?;
        // The listing was read at open; it is handed out only while the
        // directory is still where the zombie may see it.
        self.dir(node)?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(entries.len());
        let end = (start + DIR_BATCH).min(entries.len());
        Ok(Answer::Dir(entries[start..end].to_vec()))
    }

    pub(super) fn releasedir(&self, fh: u64) -> SysResult<Answer> {
        lock(&self.dirs).remove(&fh).ok_or(Errno::EBADF)?;
        Ok(Answer::Done)
    }

    pub(super) fn fsyncdir(&self, fh: u64, datasync: bool) -> SysResult<Answer> {
        let node = lock(&self.dirs)
            .get(&fh)
            .map(|d| d.node)
            .ok_or(Errno::EBADF)?;
        let (node, _) = self.dir(node)?;
        let dir = sys::reopen(
            self.places.proc_fds(),
            node.fd.as_fd(),
            libc::O_RDONLY | libc::O_DIRECTORY,
        )?;
        if datasync {
            dir.sync_data()
        } else {
            dir.sync_all()
        }
        .map_err(errno_of)?;
        Ok(Answer::Done)
    }

    pub(super) fn statfs(&self, node: u64) -> SysResult<Answer> {
        let (node, _) = self.located(node)?;
        let s = sys::statfs(node.fd.as_fd())?;
        Ok(Answer::StatFs(StatFs {
            blocks: s.blocks(),
            bfree: s.blocks_free(),
            bavail: s.blocks_available(),
            files: s.files(),
            ffree: s.files_free(),
            bsize: s.block_size() as u32,
            namelen: s.name_max() as u32,
            frsize: s.fragment_size() as u32,
        }))
    }

    pub(super) fn fallocate(
        &self,
        fh: u64,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> SysResult<Answer> {
        let file = self.open_file(fh)?;
        modes::clear_set_id_for_write(self.places.proc_fds(), file.as_fd())?;
        sys::fallocate(&file, mode, offset, length)?;
        Ok(Answer::Done)
    }

    pub(super) fn lseek(&self, fh: u64, offset: i64, whence: i32) -> SysResult<Answer> {
        let file = self.open_file(fh)?;
        sys::lseek(&file, offset, whence).map(Answer::Offset)
    }
}
