//! One call from the zombie, handed to the method that answers it.

use super::state::Server;
use crate::proto::{Answer, Op};
use crate::sys::SysResult;

impl Server {
    /// Runs one call. The owners the zombie names for new nodes are not
    /// used: new nodes belong to the server's user.
    pub fn handle(&self, op: Op) -> SysResult<Answer> {
        match op {
            Op::Lookup { parent, name } => self.lookup(parent, &name).map(Into::into),
            Op::GetAttr { node } => self.getattr(node),
            Op::SetAttr { node, fh, set } => self.setattr(node, fh, &set),
            Op::ReadLink { node } => self.readlink(node),
            Op::Mknod {
                parent,
                name,
                mode,
                rdev,
                owner: _,
            } => self.mknod(parent, &name, mode, rdev),
            Op::Mkdir {
                parent,
                name,
                mode,
                owner: _,
            } => self.mkdir(parent, &name, mode),
            Op::Symlink {
                parent,
                name,
                target,
                owner: _,
            } => self.symlink(parent, &name, &target),
            Op::Link { node, parent, name } => self.link(node, parent, &name),
            Op::Unlink { parent, name } => self.unlink(parent, &name, false),
            Op::Rmdir { parent, name } => self.unlink(parent, &name, true),
            Op::Rename {
                parent,
                name,
                new_parent,
                new_name,
                flags,
            } => self.rename(parent, &name, new_parent, &new_name, flags),
            Op::Open { node, flags } => self.open(node, flags),
            Op::Create {
                parent,
                name,
                mode,
                flags,
                owner: _,
            } => self.create(parent, &name, mode, flags),
            Op::Read { fh, offset, size } => self.read(fh, offset, size),
            Op::Write { fh, offset, data } => self.write(fh, offset, &data),
            Op::Release { fh } => self.release(fh),
            Op::Fsync { fh, datasync } => self.fsync(fh, datasync),
            Op::OpenDir { node } => self.opendir(node),
            Op::ReadDir { fh, offset } => self.readdir(fh, offset),
            Op::ReleaseDir { fh } => self.releasedir(fh),
            Op::FsyncDir { fh, datasync } => self.fsyncdir(fh, datasync),
            Op::StatFs { node } => self.statfs(node),
            Op::Fallocate {
                fh,
                offset,
                length,
                mode,
            } => self.fallocate(fh, offset, length, mode),
            Op::Lseek { fh, offset, whence } => self.lseek(fh, offset, whence),
        }
    }
}
