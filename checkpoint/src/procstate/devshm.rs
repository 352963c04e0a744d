//! The pod's own `/dev/shm` (a tmpfs mounted there for every pod, so POSIX shared memory and
//! named semaphores belong to the pod): every file, directory and symbolic link in it, with
//! mode and content, made again in the new pod before anything opens or maps them.
//! A pod whose `/dev/shm` is the host's (the same file system as ours) carries nothing from
//! it: those files stay where they are.

use crate::error::{Error, Result, SysContext};
use crate::objects::RestoreCx;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

const MKDIRAT: u64 = 258;
const SYMLINKAT: u64 = 266;
const FCHMODAT: u64 = 268;

/// Longest path or link target carried.
const MAX_PATH: usize = 4000;

/// Where it is inside the pod.
pub(crate) const DIR: &str = "/dev/shm";
/// Most entries carried (a bound for images from a peer, too).
pub(crate) const MAX_ENTRIES: usize = 1 << 16;

/// What an entry is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum What {
    /// A directory.
    Dir,
    /// A regular file with its content (blob index).
    File {
        /// Blob of the content.
        content: u32,
    },
    /// A symbolic link and its target.
    Link {
        /// The target.
        target: String,
    },
}

/// One entry of the pod's `/dev/shm`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// Path below `/dev/shm` (no `..`, no leading `/`).
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// What it is.
    pub what: What,
}

/// Why the pod's `/dev/shm` cannot be carried, if so (checked before the pod is touched).
pub(crate) fn reasons(root: i32) -> Vec<String> {
    scan(root, None).err().into_iter().collect()
}

/// Read the `/dev/shm` of the pod whose init is `root` (frozen); blobs go to `add`.
pub(crate) fn capture(root: i32, add: &mut dyn FnMut(Vec<u8>) -> u32) -> Result<Vec<Entry>> {
    scan(root, Some(add)).map_err(|r| Error::Refused {
        pid: root,
        reasons: vec![r],
    })
}

/// Every entry, with its content kept through `add` (without it, contents are not read).
fn scan(
    root: i32,
    mut add: Option<&mut dyn FnMut(Vec<u8>) -> u32>,
) -> std::result::Result<Vec<Entry>, String> {
    let base = format!("/proc/{root}/root{DIR}");
    let (Ok(theirs), Ok(ours)) = (std::fs::metadata(&base), std::fs::metadata(DIR)) else {
        return Ok(Vec::new());
    };
    if theirs.dev() == ours.dev() {
        return Ok(Vec::new());
    }
    let fail = |p: &Path, e: std::io::Error| format!("cannot read {}: {e}", p.display());
    let mut out = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let dir = Path::new(&base).join(&rel);
        for e in std::fs::read_dir(&dir).map_err(|e| fail(&dir, e))? {
            let e = e.map_err(|e| fail(&dir, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let full = e.path();
            let md = std::fs::symlink_metadata(&full).map_err(|e| fail(&full, e))?;
            let mode = md.permissions().mode() & 0o7777;
            let ft = md.file_type();
            let what = if ft.is_dir() {
                stack.push(path.clone());
                What::Dir
            } else if ft.is_file() {
                let content = match add.as_mut() {
                    Some(add) => add(std::fs::read(&full).map_err(|e| fail(&full, e))?),
                    None => 0,
                };
                What::File { content }
            } else if ft.is_symlink() {
                let t = std::fs::read_link(&full).map_err(|e| fail(&full, e))?;
                What::Link {
                    target: t.to_string_lossy().into_owned(),
                }
            } else {
                let kind = if ft.is_fifo() {
                    "a FIFO"
                } else {
                    "a special file"
                };
                return Err(format!("{DIR}/{path} is {kind} (not carried)"));
            };
            out.push(Entry { path, mode, what });
            if out.len() > MAX_ENTRIES {
                return Err(format!("more than {MAX_ENTRIES} entries in {DIR}"));
            }
        }
    }
    // Parents before their children; links last, so that nothing is made through one.
    out.sort_by_key(|e| {
        (
            matches!(e.what, What::Link { .. }),
            e.path.matches('/').count(),
        )
    });
    Ok(out)
}

/// Is `path` a clean relative path (no `.`, `..`, empty or absolute parts)?
pub(crate) fn clean(path: &str) -> bool {
    !path.is_empty()
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Make the entries in the new pod's `/dev/shm`, through its root placeholder.
pub(crate) fn restore(cx: &mut RestoreCx<'_>, entries: &[Entry]) -> Result<()> {
    for e in entries {
        let target_len = match &e.what {
            What::Link { target } => target.len(),
            _ => 0,
        };
        if !clean(&e.path) || e.path.len() > MAX_PATH || target_len > MAX_PATH {
            return Err(Error::BadImage(format!("{DIR} entry {:?}", e.path)));
        }
        let path = format!("{DIR}/{}", e.path);
        match &e.what {
            What::Dir => {
                let p = cx.root.put_str(0, &path)?;
                cx.root.main.call(
                    &format!("mkdir {path}"),
                    MKDIRAT,
                    &[libc::AT_FDCWD as u64, p, u64::from(e.mode)],
                )?;
            }
            What::Link { target } => {
                let t = cx.root.put_str(0, target)?;
                let p = cx.root.put_str(4096, &path)?;
                cx.root.main.call(
                    &format!("symlink {path}"),
                    SYMLINKAT,
                    &[t, libc::AT_FDCWD as u64, p],
                )?;
                continue;
            }
            What::File { content } => {
                let bytes = cx.data(*content)?.to_vec();
                let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
                let fd = cx.open_in_pod(&path, flags, e.mode)?;
                std::fs::File::from(fd.try_clone().sys(|| "dup".into())?)
                    .write_all(&bytes)
                    .sys(|| format!("write {path}"))?;
                let again = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
                std::fs::set_permissions(&again, std::fs::Permissions::from_mode(e.mode))
                    .sys(|| format!("chmod {path}"))?;
                continue;
            }
        }
        // A directory made with the process's umask: give it its exact mode.
        let p = cx.root.put_str(0, &path)?;
        cx.root.main.call(
            &format!("chmod {path}"),
            FCHMODAT,
            &[libc::AT_FDCWD as u64, p, u64::from(e.mode)],
        )?;
    }
    Ok(())
}
