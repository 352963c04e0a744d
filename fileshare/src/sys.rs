//! The system calls the server makes, none of which follows a symbolic link.
//!
//! Every node is held as an `O_PATH | O_NOFOLLOW` descriptor reached one name
//! at a time from its parent's descriptor. Operations on a node go through
//! that descriptor: `AT_EMPTY_PATH` where the kernel allows it, otherwise the
//! node's `/proc/self/fd/N` magic link, which names exactly the inode the
//! descriptor holds (never a path that could be swapped). Operations on a
//! name (create, unlink, rename …) take the parent's descriptor and one
//! component, which the `*at` calls never follow.
//!
//! All of this crate's `unsafe` lives here, each block with its SAFETY line.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode};

use crate::proto::{SetTime, Time};

/// Result of a system call.
pub type SysResult<T> = Result<T, Errno>;

/// Checks that `name` is one path component and makes it a C string.
///
/// Refuses empty names, `.`, `..`, and names with `/` or NUL.
pub fn component(name: &[u8]) -> SysResult<CString> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(Errno::EINVAL);
    }
    if name.len() > 255 {
        return Err(Errno::ENAMETOOLONG);
    }
    CString::new(name).map_err(|_| Errno::EINVAL)
}

/// Opens an existing directory as the root of an export (`O_PATH`).
pub fn open_root(path: &std::path::Path) -> SysResult<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Opens `/proc/self/fd` for reopening nodes.
pub fn open_proc_fds() -> SysResult<OwnedFd> {
    nix::fcntl::open(
        "/proc/self/fd",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Opens the entry `name` of `dir` as a node, never following a symlink.
pub fn open_node(dir: BorrowedFd<'_>, name: &CStr) -> SysResult<OwnedFd> {
    nix::fcntl::openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// The attributes of a node.
pub fn stat(fd: BorrowedFd<'_>) -> SysResult<FileStat> {
    nix::sys::stat::fstat(fd)
}

/// The attributes of the entry `name` of `dir`, not following a symlink.
pub fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> SysResult<FileStat> {
    nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// The attributes of `path` itself (a symlink is not followed).
pub fn lstat_path(path: &std::path::Path) -> SysResult<FileStat> {
    nix::sys::stat::lstat(path)
}

/// The path by which the kernel names the inode of `fd` now (its
/// `/proc/self/fd` link, which follows renames), as bytes.
pub fn fd_path(proc_fds: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> SysResult<Vec<u8>> {
    nix::fcntl::readlinkat(proc_fds, fd_name(fd).as_c_str()).map(|s| s.into_vec())
}

fn fd_name(fd: BorrowedFd<'_>) -> CString {
    CString::new(fd.as_raw_fd().to_string()).expect("digits")
}

/// Opens a node (a regular file or directory) for I/O through its
/// `/proc/self/fd` entry. `O_CREAT`, `O_EXCL` and `O_NOFOLLOW` are dropped:
/// the node exists and is not a symlink.
pub fn reopen(proc_fds: BorrowedFd<'_>, node: BorrowedFd<'_>, flags: i32) -> SysResult<File> {
    let keep = OFlag::from_bits_truncate(flags)
        & !(OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_PATH);
    let fd = nix::fcntl::openat(
        proc_fds,
        fd_name(node).as_c_str(),
        keep | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// An `O_PATH` descriptor of the inode an open descriptor refers to.
pub fn path_of(proc_fds: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> SysResult<OwnedFd> {
    nix::fcntl::openat(
        proc_fds,
        fd_name(fd).as_c_str(),
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Creates and opens a regular file; fails on a symlink (`ELOOP`).
pub fn create(dir: BorrowedFd<'_>, name: &CStr, flags: i32, mode: u32) -> SysResult<File> {
    let keep = OFlag::from_bits_truncate(flags) & !(OFlag::O_PATH | OFlag::O_DIRECTORY);
    let fd = nix::fcntl::openat(
        dir,
        name,
        keep | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode),
    )?;
    Ok(File::from(fd))
}

/// The text of a symlink node.
pub fn readlink(fd: BorrowedFd<'_>) -> SysResult<Vec<u8>> {
    nix::fcntl::readlinkat(fd, c"").map(|s| s.as_bytes().to_vec())
}

/// Changes permission bits. A symlink has none: `EOPNOTSUPP`.
pub fn chmod(proc_fds: BorrowedFd<'_>, fd: BorrowedFd<'_>, mode: u32) -> SysResult<()> {
    nix::sys::stat::fchmodat(
        proc_fds,
        fd_name(fd).as_c_str(),
        Mode::from_bits_truncate(mode & 0o7777),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
}

/// Changes owner and group of the node itself (also of a symlink).
pub fn chown(fd: BorrowedFd<'_>, uid: Option<u32>, gid: Option<u32>) -> SysResult<()> {
    nix::unistd::fchownat(
        fd,
        c"",
        uid.map(nix::unistd::Uid::from_raw),
        gid.map(nix::unistd::Gid::from_raw),
        AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

/// Truncates a regular file node.
pub fn truncate(proc_fds: BorrowedFd<'_>, fd: BorrowedFd<'_>, size: u64) -> SysResult<()> {
    let file = reopen(proc_fds, fd, libc::O_WRONLY)?;
    file.set_len(size).map_err(errno_of)
}

fn timespec(t: Option<SetTime>) -> libc::timespec {
    match t {
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        Some(SetTime::Now) => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        Some(SetTime::At(Time { secs, nanos })) => libc::timespec {
            tv_sec: secs,
            tv_nsec: i64::from(nanos.min(999_999_999)),
        },
    }
}

/// Sets access and modification times of the node itself.
pub fn utimens(
    fd: BorrowedFd<'_>,
    atime: Option<SetTime>,
    mtime: Option<SetTime>,
) -> SysResult<()> {
    let times = [timespec(atime), timespec(mtime)];
    // SAFETY: `fd` is a live descriptor borrowed for the call, the path is a
    // NUL-terminated empty string and `times` points to two timespecs, as
    // utimensat(2) requires; nothing is retained after the call.
    let r = unsafe {
        libc::utimensat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            times.as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    Errno::result(r).map(drop)
}

/// Makes a hard link `dir/name` to the node (the node itself, even a symlink).
pub fn link(
    proc_fds: BorrowedFd<'_>,
    fd: BorrowedFd<'_>,
    dir: BorrowedFd<'_>,
    name: &CStr,
) -> SysResult<()> {
    nix::unistd::linkat(
        proc_fds,
        fd_name(fd).as_c_str(),
        dir,
        name,
        AtFlags::AT_SYMLINK_FOLLOW,
    )
}

/// Creates a directory.
pub fn mkdir(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> SysResult<()> {
    nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(mode))
}

/// Creates a special file (FIFO, socket, device) or an empty regular file.
pub fn mknod(dir: BorrowedFd<'_>, name: &CStr, mode: u32, rdev: u64) -> SysResult<()> {
    let kind = nix::sys::stat::SFlag::from_bits_truncate(mode & libc::S_IFMT);
    nix::sys::stat::mknodat(dir, name, kind, Mode::from_bits_truncate(mode), rdev)
}

/// Creates a symlink with the given text (never resolved here).
pub fn symlink(target: &[u8], dir: BorrowedFd<'_>, name: &CStr) -> SysResult<()> {
    nix::unistd::symlinkat(OsStr::from_bytes(target), dir, name)
}

/// Removes a name (a directory with `dir`).
pub fn unlink(dir: BorrowedFd<'_>, name: &CStr, is_dir: bool) -> SysResult<()> {
    let flag = if is_dir {
        nix::unistd::UnlinkatFlags::RemoveDir
    } else {
        nix::unistd::UnlinkatFlags::NoRemoveDir
    };
    nix::unistd::unlinkat(dir, name, flag)
}

/// Renames, with `renameat2` flags.
pub fn rename(
    dir: BorrowedFd<'_>,
    name: &CStr,
    new_dir: BorrowedFd<'_>,
    new_name: &CStr,
    flags: u32,
) -> SysResult<()> {
    nix::fcntl::renameat2(
        dir,
        name,
        new_dir,
        new_name,
        nix::fcntl::RenameFlags::from_bits(flags).ok_or(Errno::EINVAL)?,
    )
}

/// One entry read from a directory.
pub struct RawDirEntry {
    /// `d_ino`.
    pub ino: u64,
    /// File type bits, 0 when unknown.
    pub kind: u32,
    /// The name.
    pub name: CString,
}

/// Reads a whole directory node.
pub fn read_dir(proc_fds: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> SysResult<Vec<RawDirEntry>> {
    use nix::dir::Type;
    let file = reopen(proc_fds, fd, libc::O_RDONLY | libc::O_DIRECTORY)?;
    let mut dir = nix::dir::Dir::from_fd(OwnedFd::from(file))?;
    let mut out = Vec::new();
    for entry in dir.iter() {
        let entry = entry?;
        let kind = match entry.file_type() {
            Some(Type::Fifo) => libc::S_IFIFO,
            Some(Type::CharacterDevice) => libc::S_IFCHR,
            Some(Type::Directory) => libc::S_IFDIR,
            Some(Type::BlockDevice) => libc::S_IFBLK,
            Some(Type::File) => libc::S_IFREG,
            Some(Type::Symlink) => libc::S_IFLNK,
            Some(Type::Socket) => libc::S_IFSOCK,
            None => 0,
        };
        out.push(RawDirEntry {
            ino: entry.ino(),
            kind,
            name: entry.file_name().to_owned(),
        });
    }
    Ok(out)
}

/// File system statistics of the file system holding the node.
pub fn statfs(fd: BorrowedFd<'_>) -> SysResult<nix::sys::statvfs::Statvfs> {
    nix::sys::statvfs::fstatvfs(fd)
}

/// Allocates or punches space (`fallocate(2)` with its mode bits).
pub fn fallocate(file: &File, mode: i32, offset: u64, length: u64) -> SysResult<()> {
    let mode = nix::fcntl::FallocateFlags::from_bits_truncate(mode);
    nix::fcntl::fallocate(
        file.as_fd(),
        mode,
        i64::try_from(offset).map_err(|_| Errno::EINVAL)?,
        i64::try_from(length).map_err(|_| Errno::EINVAL)?,
    )
}

/// Repositions an open file (for `SEEK_DATA` / `SEEK_HOLE`).
pub fn lseek(file: &File, offset: i64, whence: i32) -> SysResult<i64> {
    let whence = match whence {
        libc::SEEK_SET => nix::unistd::Whence::SeekSet,
        libc::SEEK_CUR => nix::unistd::Whence::SeekCur,
        libc::SEEK_END => nix::unistd::Whence::SeekEnd,
        libc::SEEK_DATA => nix::unistd::Whence::SeekData,
        libc::SEEK_HOLE => nix::unistd::Whence::SeekHole,
        _ => return Err(Errno::EINVAL),
    };
    nix::unistd::lseek(file.as_fd(), offset, whence)
}

/// Raises the soft limit on open descriptors to the hard limit: every node
/// the zombie holds is one descriptor.
pub fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// The errno of an I/O error (EIO when it has none).
pub fn errno_of(e: std::io::Error) -> Errno {
    e.raw_os_error().map(Errno::from_raw).unwrap_or(Errno::EIO)
}

/// Lazily detaches a mount (`umount2(MNT_DETACH)`).
pub fn detach(path: &std::path::Path) -> SysResult<()> {
    nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH)
}
