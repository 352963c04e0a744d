//! The FUSE file system on the zombie: each kernel request becomes a call
//! on the master, run as a task so that many are in flight at once.
//!
//! Inode 1 is a synthetic read-only directory with one entry per export;
//! every other inode number is a master node id. `flush` is answered here
//! (writes are acknowledged only once written on the master, so a close has
//! nothing left to report) and files are opened with `FOPEN_NOFLUSH`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyLseek, ReplyOpen, ReplyStatfs,
    ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use serde_bytes::ByteBuf;

use super::convert::{file_attr, file_type, set_time};
use super::core::Core;
use crate::proto::{Answer, DirEntry, ExportInfo, Op, Owner, SetAttr};

/// The root directory's inode.
const ROOT: u64 = 1;

/// Writes larger than this go to the master in parts of this size, in
/// parallel; the kernel's write is answered when every part was written.
const WRITE_PART: usize = 128 << 10;

/// How long the kernel may trust attributes and names.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Attribute cache.
    pub attr: Duration,
    /// Name (dentry) cache.
    pub entry: Duration,
}

/// The file system handed to fuser.
pub struct ShareFs {
    core: Arc<Core>,
    exports: Vec<ExportInfo>,
    root: FileAttr,
    ttl: Timeouts,
    /// The last batch of entries read for each open directory.
    dirs: Arc<Mutex<HashMap<u64, Arc<Vec<DirEntry>>>>>,
}

fn name_bytes(name: &OsStr) -> ByteBuf {
    ByteBuf::from(name.as_bytes().to_vec())
}

fn owner(req: &Request) -> Owner {
    Owner {
        uid: req.uid(),
        gid: req.gid(),
    }
}

impl ShareFs {
    /// A file system over `core` showing `exports` in its root.
    pub fn new(core: Arc<Core>, exports: Vec<ExportInfo>, ttl: Timeouts) -> ShareFs {
        let now = SystemTime::now();
        let root = FileAttr {
            ino: INodeNo(ROOT),
            size: 0,
            blocks: 0,
            atime: now,
            mtime: now,
            ctime: now,
            crtime: now,
            kind: FileType::Directory,
            perm: 0o555,
            nlink: 2,
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            rdev: 0,
            blksize: 4096,
            flags: 0,
        };
        ShareFs {
            core,
            exports,
            root,
            ttl,
            dirs: Arc::default(),
        }
    }

    /// Runs `op` on the master and hands the result to `done` (run when the
    /// reply comes).
    fn call<F>(&self, op: Op, done: F)
    where
        F: FnOnce(Result<Answer, Errno>) + Send + 'static,
    {
        self.core.call_then(op, Box::new(done));
    }

    /// A call answered with an entry.
    fn entry_call(&self, op: Op, reply: ReplyEntry) {
        let ttl = self.ttl;
        self.call(op, move |r| match r {
            Ok(Answer::Entry(e)) => reply.entry_with_ttls(
                &ttl.attr,
                &ttl.entry,
                &file_attr(e.node, &e.attr),
                Generation(0),
            ),
            Ok(_) => reply.error(Errno::EIO),
            Err(e) => reply.error(e),
        });
    }

    /// A call answered with nothing.
    fn empty_call(&self, op: Op, reply: ReplyEmpty) {
        self.call(op, move |r| match r {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(e),
        });
    }

    /// A call whose answer nobody waits for (release).
    fn detached_call(&self, op: Op) {
        self.call(op, |_| {});
    }

    fn attr_call(&self, node: u64, op: Op, reply: ReplyAttr) {
        let ttl = self.ttl.attr;
        self.call(op, move |r| match r {
            Ok(Answer::Attr(a)) => reply.attr(&ttl, &file_attr(node, &a)),
            Ok(_) => reply.error(Errno::EIO),
            Err(e) => reply.error(e),
        });
    }
}

impl Filesystem for ShareFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        for flag in [
            InitFlags::FUSE_ATOMIC_O_TRUNC,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_CACHE_SYMLINKS,
            InitFlags::FUSE_AUTO_INVAL_DATA,
            InitFlags::FUSE_ASYNC_DIO,
        ] {
            if config.add_capabilities(flag).is_err() {
                tracing::debug!("kernel lacks FUSE capability {flag:?}");
            }
        }
        let _ = config
            .set_max_write(1 << 20)
            .or_else(|n| config.set_max_write(n));
        let _ = config.set_max_background(64);
        let _ = config.set_congestion_threshold(48);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent.0 != ROOT {
            return self.entry_call(
                Op::Lookup {
                    parent: parent.0,
                    name: name_bytes(name),
                },
                reply,
            );
        }
        let Some(export) = self
            .exports
            .iter()
            .find(|x| x.name.as_bytes() == name.as_bytes())
        else {
            return reply.error(Errno::ENOENT);
        };
        let node = export.node;
        let ttl = self.ttl;
        self.call(Op::GetAttr { node }, move |r| match r {
            Ok(Answer::Attr(a)) => {
                reply.entry_with_ttls(&ttl.attr, &ttl.entry, &file_attr(node, &a), Generation(0))
            }
            Ok(_) => reply.error(Errno::EIO),
            Err(e) => reply.error(e),
        });
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        if ino.0 != ROOT {
            self.core.forget(ino.0, nlookup);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        if ino.0 == ROOT {
            return reply.attr(&self.ttl.attr, &self.root);
        }
        self.attr_call(ino.0, Op::GetAttr { node: ino.0 }, reply);
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        if ino.0 == ROOT {
            return reply.error(Errno::EROFS);
        }
        let set = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: atime.map(set_time),
            mtime: mtime.map(set_time),
        };
        let op = Op::SetAttr {
            node: ino.0,
            fh: fh.map(|f| f.0),
            set,
        };
        self.attr_call(ino.0, op, reply);
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.call(Op::ReadLink { node: ino.0 }, move |r| match r {
            Ok(Answer::Data(d)) => reply.data(&d),
            Ok(_) => reply.error(Errno::EIO),
            Err(e) => reply.error(e),
        });
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        if parent.0 == ROOT {
            return reply.error(Errno::EROFS);
        }
        let op = Op::Mknod {
            parent: parent.0,
            name: name_bytes(name),
            mode,
            rdev: u64::from(rdev),
            owner: owner(req),
        };
        self.entry_call(op, reply);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        if parent.0 == ROOT {
            return reply.error(Errno::EROFS);
        }
        let op = Op::Mkdir {
            parent: parent.0,
            name: name_bytes(name),
            mode,
            owner: owner(req),
        };
        self.entry_call(op, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        if parent.0 == ROOT {
            return reply.error(Errno::EROFS);
        }
        let op = Op::Unlink {
            parent: parent.0,
            name: name_bytes(name),
        };
        self.empty_call(op, reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        if parent.0 == ROOT {
            return reply.error(Errno::EROFS);
        }
        let op = Op::Rmdir {
            parent: parent.0,
            name: name_bytes(name),
        };
        self.empty_call(op, reply);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        if parent.0 == ROOT {
            return reply.error(Errno::EROFS);
        }
        let op = Op::Symlink {
            parent: parent.0,
            name: name_bytes(link_name),
            target: ByteBuf::from(target.as_os_str().as_bytes().to_vec()),
            owner: owner(req),
        };
        self.entry_call(op, reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if parent.0 == ROOT || newparent.0 == ROOT {
            return reply.error(Errno::EROFS);
        }
        let op = Op::Rename {
            parent: parent.0,
            name: name_bytes(name),
            new_parent: newparent.0,
            new_name: name_bytes(newname),
            flags: flags.bits(),
        };
        self.empty_call(op, reply);
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        if newparent.0 == ROOT || ino.0 == ROOT {
            return reply.error(Errno::EROFS);
        }
        let op = Op::Link {
            node: ino.0,
            parent: newparent.0,
            name: name_bytes(newname),
        };
        self.entry_call(op, reply);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if ino.0 == ROOT {
            return reply.error(Errno::EISDIR);
        }
        self.call(
            Op::Open {
                node: ino.0,
                flags: flags.0,
            },
            move |r| match r {
                Ok(Answer::Opened(fh)) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_NOFLUSH),
                Ok(_) => reply.error(Errno::EIO),
                Err(e) => reply.error(e),
            },
        );
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let op = Op::Read {
            fh: fh.0,
            offset,
            size,
        };
        self.call(op, move |r| match r {
            Ok(Answer::Data(d)) => reply.data(&d),
            Ok(_) => reply.error(Errno::EIO),
            Err(e) => reply.error(e),
        });
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        // The kernel sends one write at a time per file: split big ones so
        // the transfer of one part overlaps the master's pwrite of another.
        // (Not with O_APPEND: each part would land at the end.)
        if data.len() <= WRITE_PART || flags.0 & libc::O_APPEND != 0 {
            let op = Op::Write {
                fh: fh.0,
                offset,
                data: ByteBuf::from(data.to_vec()),
            };
            return self.call(op, move |r| match r {
                Ok(Answer::Written(n)) => reply.written(n),
                Ok(_) => reply.error(Errno::EIO),
                Err(e) => reply.error(e),
            });
        }
        let core = self.core.clone();
        let parts: Vec<(u64, Vec<u8>)> = data
            .chunks(WRITE_PART)
            .enumerate()
            .map(|(i, c)| (offset + (i * WRITE_PART) as u64, c.to_vec()))
            .collect();
        self.core.runtime().spawn(async move {
            let calls: Vec<_> = parts
                .into_iter()
                .map(|(offset, data)| {
                    let core = core.clone();
                    let len = data.len() as u32;
                    let op = Op::Write {
                        fh: fh.0,
                        offset,
                        data: ByteBuf::from(data),
                    };
                    tokio::spawn(async move { (len, core.call(op).await) })
                })
                .collect();
            // Acknowledge the bytes written from the start without a gap.
            let (mut written, mut whole, mut error) = (0u32, true, None);
            for call in calls {
                match call.await {
                    Ok((len, Ok(Answer::Written(n)))) => {
                        if whole {
                            written += n;
                            whole = n == len;
                        }
                    }
                    Ok((_, Err(e))) => {
                        whole = false;
                        error.get_or_insert(e);
                    }
                    _ => {
                        whole = false;
                        error.get_or_insert(Errno::EIO);
                    }
                }
            }
            match (written, error) {
                (0, Some(e)) => reply.error(e),
                (n, _) => reply.written(n),
            }
        });
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.detached_call(Op::Release { fh: fh.0 });
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.empty_call(Op::Fsync { fh: fh.0, datasync }, reply);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if ino.0 == ROOT {
            return reply.opened(FileHandle(0), FopenFlags::empty());
        }
        self.call(Op::OpenDir { node: ino.0 }, move |r| match r {
            Ok(Answer::Opened(fh)) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Ok(_) => reply.error(Errno::EIO),
            Err(e) => reply.error(e),
        });
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if ino.0 == ROOT {
            let dots = [(ROOT, "."), (ROOT, "..")];
            let all = dots
                .into_iter()
                .chain(self.exports.iter().map(|x| (x.node, x.name.as_str())));
            for (i, (node, name)) in all.enumerate().skip(offset as usize) {
                if reply.add(INodeNo(node), i as u64 + 1, FileType::Directory, name) {
                    break;
                }
            }
            return reply.ok();
        }
        let fill = move |entries: &[DirEntry], mut reply: ReplyDirectory| {
            for e in entries.iter().filter(|e| e.offset > offset) {
                let name = OsStr::from_bytes(&e.name);
                if reply.add(INodeNo(e.ino), e.offset, file_type(e.kind), name) {
                    break;
                }
            }
            reply.ok();
        };
        let cached = self.dirs.lock().expect("dir cache").get(&fh.0).cloned();
        if let Some(batch) = cached
            && let (Some(first), Some(last)) = (batch.first(), batch.last())
            && first.offset <= offset + 1
            && offset < last.offset
        {
            return fill(&batch, reply);
        }
        let dirs = self.dirs.clone();
        self.call(Op::ReadDir { fh: fh.0, offset }, move |r| match r {
            Ok(Answer::Dir(entries)) => {
                let entries = Arc::new(entries);
                dirs.lock()
                    .expect("dir cache")
                    .insert(fh.0, entries.clone());
                fill(&entries, reply)
            }
            Ok(_) => reply.error(Errno::EIO),
            Err(e) => reply.error(e),
        });
    }

    fn releasedir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        if ino.0 != ROOT {
            self.dirs.lock().expect("dir cache").remove(&fh.0);
            self.detached_call(Op::ReleaseDir { fh: fh.0 });
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        if ino.0 == ROOT {
            return reply.ok();
        }
        self.empty_call(Op::FsyncDir { fh: fh.0, datasync }, reply);
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        let node = match (ino.0, self.exports.first()) {
            (ROOT, Some(x)) => x.node,
            (ROOT, None) => return reply.statfs(0, 0, 0, 0, 0, 4096, 255, 4096),
            (n, _) => n,
        };
        self.call(Op::StatFs { node }, move |r| match r {
            Ok(Answer::StatFs(s)) => reply.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
            ),
            Ok(_) => reply.error(Errno::EIO),
            Err(e) => reply.error(e),
        });
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        // Only called without default_permissions; the kernel checks modes.
        reply.ok();
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        if parent.0 == ROOT {
            return reply.error(Errno::EROFS);
        }
        let op = Op::Create {
            parent: parent.0,
            name: name_bytes(name),
            mode,
            flags,
            owner: owner(req),
        };
        let ttl = self.ttl;
        self.call(op, move |r| match r {
            Ok(Answer::Created(e, fh)) => reply.created(
                &ttl.entry,
                &file_attr(e.node, &e.attr),
                Generation(0),
                FileHandle(fh),
                FopenFlags::FOPEN_NOFLUSH,
            ),
            Ok(_) => reply.error(Errno::EIO),
            Err(e) => reply.error(e),
        });
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let op = Op::Fallocate {
            fh: fh.0,
            offset,
            length,
            mode,
        };
        self.empty_call(op, reply);
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        let op = Op::Lseek {
            fh: fh.0,
            offset,
            whence,
        };
        self.call(op, move |r| match r {
            Ok(Answer::Offset(o)) => reply.offset(o),
            Ok(_) => reply.error(Errno::EIO),
            Err(e) => reply.error(e),
        });
    }

    // No extended attributes: ENOSYS makes the kernel stop asking.
    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS);
    }
}
