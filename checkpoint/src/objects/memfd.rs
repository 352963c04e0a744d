//! memfd: name, size, content (only the parts that hold data), seals, mode, flags and
//! offset. Several descriptions of one memfd (reopened through `/proc`) and every mapping
//! of it share one file again after a restore: the file is made once per inode.

use super::{Claim, DumpCx, FdFacts, Kind, RestoreCx, TypeMap};
use crate::error::{Error, Result, SysContext};
use crate::sys::{anon, fds};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;

const PREFIX: &str = "/memfd:";
const MEMFD_CREATE: u64 = 319;
/// Longest memfd name the kernel takes.
const MAX_NAME: usize = 249;
const DELETED: &str = " (deleted)";

/// The file behind one or more memfd descriptions and mappings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MemfdFile {
    /// Inode number (names the file within the image).
    pub ino: u64,
    /// The name given to `memfd_create`.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// `F_GET_SEALS`.
    pub seals: u32,
    /// Permission bits.
    pub mode: u32,
    /// Blob of the content (see [`encode_extents`]).
    pub content: Option<u32>,
}

/// One open description of a memfd.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Memfd {
    /// The file.
    file: MemfdFile,
    /// Status flags.
    flags: u32,
    /// Offset.
    pos: u64,
}

/// The memfd name shown in `/proc` links and maps (`/memfd:NAME (deleted)`), if it is one.
pub(crate) fn name_of(link: &str) -> Option<&str> {
    link.strip_prefix(PREFIX)?.strip_suffix(DELETED)
}

/// Dump state: files whose content is captured already.
#[derive(Default)]
struct Captured(HashMap<u64, MemfdFile>);

/// Restore state: each memfd made, read-write, by inode.
#[derive(Default)]
pub(crate) struct Made(HashMap<u64, OwnedFd>);

/// The memfd made for inode `ino`, if any (for mapping it).
pub(crate) fn made(state: &mut TypeMap, ino: u64) -> Option<&OwnedFd> {
    state.get::<Made>().0.get(&ino)
}

/// Content as extents: for each, offset (u64 LE), length (u64 LE), bytes.
pub(crate) fn encode_extents(extents: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (off, bytes) in extents {
        out.extend(off.to_le_bytes());
        out.extend((bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

pub(crate) fn decode_extents(blob: &[u8], size: u64) -> Result<Vec<(u64, &[u8])>> {
    let bad = || Error::BadImage("memfd content: broken extent".into());
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < blob.len() {
        let word = |i: usize| -> Result<u64> {
            blob.get(i..i + 8)
                .map(|w| u64::from_le_bytes(w.try_into().unwrap()))
                .ok_or_else(bad)
        };
        let (off, len) = (word(at)?, word(at + 8)?);
        let bytes = usize::try_from(len)
            .ok()
            .and_then(|l| blob.get(at + 16..(at + 16).checked_add(l)?))
            .ok_or_else(bad)?;
        if off.checked_add(len).is_none_or(|end| end > size) {
            return Err(bad());
        }
        out.push((off, bytes));
        at += 16 + bytes.len();
    }
    Ok(out)
}

/// The parts of `file` that hold data (`SEEK_DATA` / `SEEK_HOLE`).
fn read_extents(f: &OwnedFd, size: u64) -> Result<Vec<(u64, Vec<u8>)>> {
    let file = std::fs::File::from(f.try_clone().sys(|| "dup".into())?);
    let mut out = Vec::new();
    let mut at = 0;
    while at < size {
        let Some(start) = anon::seek_to(f, at, libc::SEEK_DATA).sys(|| "SEEK_DATA".into())? else {
            break;
        };
        let end = anon::seek_to(f, start, libc::SEEK_HOLE)
            .sys(|| "SEEK_HOLE".into())?
            .unwrap_or(size)
            .min(size);
        let mut bytes = vec![0u8; (end - start) as usize];
        file.read_exact_at(&mut bytes, start)
            .sys(|| "read the memfd".into())?;
        out.push((start, bytes));
        at = end;
    }
    Ok(out)
}

/// Make the memfd `m` (once per inode), with its content and seals: created by the pod's
/// root (so the pod's user owns it), filled and sealed by the restorer.
pub(crate) fn make(cx: &mut RestoreCx<'_>, m: &MemfdFile, data: &[u8]) -> Result<()> {
    if cx.state.get::<Made>().0.contains_key(&m.ino) {
        return Ok(());
    }
    if m.name.len() > MAX_NAME || m.name.contains('\0') {
        return Err(Error::BadImage(format!(
            "memfd name of {} bytes",
            m.name.len()
        )));
    }
    let name = cx.root.put_str(0, &m.name)?;
    let flags = u64::from(libc::MFD_ALLOW_SEALING | libc::MFD_CLOEXEC);
    let made = cx.root.main.call(
        &format!("memfd_create {}", m.name),
        MEMFD_CREATE,
        &[name, flags],
    )?;
    let fd = cx.take_from_root(made as i32)?;
    let file = std::fs::File::from(fd.try_clone().sys(|| "dup".into())?);
    file.set_len(m.size)
        .sys(|| format!("size memfd {}", m.name))?;
    for (off, bytes) in decode_extents(data, m.size)? {
        file.write_all_at(bytes, off)
            .sys(|| format!("fill memfd {}", m.name))?;
    }
    std::fs::set_permissions(
        format!("/proc/self/fd/{}", fd.as_raw_fd()),
        std::os::unix::fs::PermissionsExt::from_mode(m.mode),
    )
    .sys(|| "chmod the memfd".into())?;
    if m.seals != 0 {
        fds::fcntl(&fd, libc::F_ADD_SEALS, m.seals as i32).sys(|| "F_ADD_SEALS".into())?;
    }
    cx.state.get::<Made>().0.insert(m.ino, fd);
    Ok(())
}

impl Memfd {
    /// The memfd's inode number.
    pub(crate) fn ino(&self) -> u64 {
        self.file.ino
    }
}

impl Kind for Memfd {
    const NAME: &'static str = "memfd";

    fn inspect(f: &FdFacts<'_>) -> Claim<Self> {
        if f.file_type() != libc::S_IFREG {
            return Claim::NotMine;
        }
        let Some(name) = name_of(&f.link) else {
            return Claim::NotMine;
        };
        Claim::Mine(Memfd {
            file: MemfdFile {
                ino: f.ino,
                name: name.to_string(),
                size: 0,
                seals: 0,
                mode: f.mode & 0o7777,
                content: None,
            },
            flags: f.flags,
            pos: f.pos,
        })
    }

    fn capture(&mut self, f: &FdFacts<'_>, cx: &mut DumpCx) -> Result<()> {
        if let Some(file) = cx.state.get::<Captured>().0.get(&self.file.ino) {
            self.file = file.clone();
            return Ok(());
        }
        let src = fds::open(&f.proc_path(), libc::O_RDONLY)
            .sys(|| format!("reopen {}", f.proc_path()))?;
        let size = std::fs::File::from(src.try_clone().sys(|| "dup".into())?)
            .metadata()
            .sys(|| "fstat".into())?
            .len();
        self.file.size = size;
        self.file.seals =
            fds::fcntl(&src, libc::F_GET_SEALS, 0).sys(|| "F_GET_SEALS".into())? as u32;
        let extents = read_extents(&src, size)?;
        self.file.content = Some(cx.data.add(encode_extents(&extents)));
        cx.state
            .get::<Captured>()
            .0
            .insert(self.file.ino, self.file.clone());
        Ok(())
    }

    fn create(&self, cx: &mut RestoreCx<'_>) -> Result<OwnedFd> {
        let data = match self.file.content {
            Some(i) => cx.data(i)?.to_vec(),
            None => Vec::new(),
        };
        make(cx, &self.file, &data)?;
        let made = &cx.state.get::<Made>().0[&self.file.ino];
        let again = format!("/proc/self/fd/{}", made.as_raw_fd());
        let acc = self.flags as i32 & libc::O_ACCMODE;
        let fd = fds::open(&again, acc).sys(|| format!("reopen memfd {}", self.file.name))?;
        fds::fcntl(&fd, libc::F_SETFL, self.flags as i32).sys(|| "F_SETFL".into())?;
        if self.pos != 0 {
            fds::seek(&fd, self.pos).sys(|| "lseek".into())?;
        }
        Ok(fd)
    }
}
