//! The pod's System V IPC namespace: every shared memory segment (key, id, mode, size,
//! content, and whether it is marked for removal), semaphore set (key, id, mode, values) and
//! message queue (key, id, mode, messages in order). The pod has its own IPC namespace, so
//! everything in it is the pod's.
//!
//! Read by system calls injected into the frozen init (`*_STAT_ANY` walks, `shmat` to read a
//! segment, `msgrcv(MSG_COPY)` to read messages without taking them); made again by calls
//! injected into the new pod's root, with the same ids (`/proc/sys/kernel/*_next_id`).
//! Not carried: semaphore undo values (`SEM_UNDO`; the kernel does not show them) and the
//! times and last PIDs of each object.

use crate::error::{Error, Result, SysContext};
use crate::freeze::Frozen;
use crate::inject::Tracee;
use crate::objects::memfd::encode_extents;
use crate::restore::child::Child;
use crate::sys::{mem, nr};
use serde::{Deserialize, Serialize};

const SHMGET: u64 = 29;
const SHMAT: u64 = 30;
const SHMCTL: u64 = 31;
const SHMDT: u64 = 67;
const SEMGET: u64 = 64;
const SEMCTL: u64 = 66;
const MSGGET: u64 = 68;
const MSGSND: u64 = 69;
const MSGRCV: u64 = 70;
const MSGCTL: u64 = 71;
const SHM_INFO: u64 = 14;
const SHM_STAT_ANY: u64 = 15;
const SEM_INFO: u64 = 19;
const SEM_STAT_ANY: u64 = 20;
const MSG_INFO: u64 = 12;
const MSG_STAT_ANY: u64 = 13;
const GETALL: u64 = 13;
const SETALL: u64 = 17;
const MSG_COPY: u64 = 0o40000;
const SHM_DEST: u32 = 0o1000;
const SHM_RDONLY: u64 = 0o10000;
/// Most semaphores of one set we carry (their values fit the scratch page).
pub(crate) const MAX_SEMS: u64 = 2048;
/// Buffer for one message read with `MSG_COPY` (text up to `msgmax`, 8 KiB by default).
const MSG_BUF: u64 = 1 << 20;
/// Longest message carried (it is sent back from the restore's argument area).
pub(crate) const MAX_MSG: usize = 48 << 10;
const PAGE: usize = 4096;

/// One shared memory segment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Segment {
    /// Key (0: `IPC_PRIVATE`).
    pub key: i32,
    /// shmid.
    pub id: i32,
    /// Permission bits (and `SHM_DEST` if marked for removal).
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Blob of its content (non-zero pages as extents).
    pub content: u32,
}

/// One semaphore set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SemSet {
    /// Key.
    pub key: i32,
    /// semid.
    pub id: i32,
    /// Permission bits.
    pub mode: u32,
    /// Every semaphore's value.
    pub values: Vec<u16>,
}

/// One message queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Queue {
    /// Key.
    pub key: i32,
    /// msqid.
    pub id: i32,
    /// Permission bits.
    pub mode: u32,
    /// Most bytes it may hold.
    pub qbytes: u64,
    /// Its messages in order: type and text.
    pub messages: Vec<(i64, Vec<u8>)>,
}

/// Everything in the pod's IPC namespace.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Sysv {
    /// Shared memory segments.
    pub shm: Vec<Segment>,
    /// Semaphore sets.
    pub sems: Vec<SemSet>,
    /// Message queues.
    pub queues: Vec<Queue>,
}

/// The `ipc64_perm` fields we keep: key and mode.
fn perm(b: &[u8]) -> (i32, u32) {
    (
        i32::from_le_bytes(b[0..4].try_into().unwrap()),
        u32::from_le_bytes(b[20..24].try_into().unwrap()),
    )
}

fn word(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Injected calls into one frozen process, with its scratch page.
struct Probe<'a> {
    f: &'a Frozen,
    t: Tracee,
    scratch: u64,
}

impl Probe<'_> {
    /// Every id of one kind of object: `ctl(index, stat_any)` over the indexes `ctl(0, info)`
    /// reports; the raw `*id64_ds` (first `len` bytes) with each.
    /// (`semctl` takes a semaphore number before the command.)
    fn walk(&mut self, ctl: u64, info: u64, stat: u64, len: usize) -> Result<Vec<(i32, Vec<u8>)>> {
        let args = |idx: u64, cmd: u64| -> Vec<u64> {
            if ctl == SEMCTL {
                vec![idx, 0, cmd, self.scratch]
            } else {
                vec![idx, cmd, self.scratch]
            }
        };
        let max = self.t.raw(ctl, &args(0, info))?;
        let mut out = Vec::new();
        for idx in 0..=max.max(-1) {
            let id = self.t.raw(ctl, &args(idx as u64, stat))?;
            if id >= 0 {
                out.push((id as i32, crate::dump::peek(self.f.pid, self.scratch, len)?));
            }
        }
        Ok(out)
    }

    fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        let mut at = 0;
        while at < len {
            let n = (len - at).min(1 << 20);
            let got = mem::read_remote(self.f.pid, &[(addr + at as u64, n)], &mut buf[at..])
                .sys(|| "read System V shared memory".into())?;
            if got != n {
                return Err(Error::Restore(
                    "short read of System V shared memory".into(),
                ));
            }
            at += n;
        }
        Ok(buf)
    }
}

/// Non-zero pages of `bytes`, as extents.
fn extents(bytes: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
    for (i, page) in bytes.chunks(PAGE).enumerate() {
        if page.iter().all(|&b| b == 0) {
            continue;
        }
        let off = (i * PAGE) as u64;
        match out.last_mut() {
            Some((o, b)) if *o + b.len() as u64 == off => b.extend_from_slice(page),
            _ => out.push((off, page.to_vec())),
        }
    }
    out
}

/// Read the IPC namespace of the pod through its frozen init `f`; blobs go to `add`.
pub(crate) fn capture(f: &Frozen, add: &mut dyn FnMut(Vec<u8>) -> u32) -> Result<Sysv> {
    let scratch = f
        .scratch
        .ok_or_else(|| Error::Restore("no scratch page".into()))?;
    let mut p = Probe {
        f,
        t: Tracee::new(f.pid, f.pid, f.gadget)?,
        scratch,
    };
    let mut out = Sysv::default();
    for (id, ds) in p.walk(SHMCTL, SHM_INFO, SHM_STAT_ANY, 112)? {
        let (key, mode) = perm(&ds);
        let size = word(&ds, 48);
        let addr = p.t.call("shmat", SHMAT, &[id as u64, 0, SHM_RDONLY])?;
        let bytes = p.read(addr, size as usize);
        p.t.call("shmdt", SHMDT, &[addr])?;
        let content = add(encode_extents(&extents(&bytes?)));
        out.shm.push(Segment {
            key,
            id,
            mode,
            size,
            content,
        });
    }
    // x86-64's semid64_ds: perm, otime, pad, ctime, pad, nsems.
    for (id, ds) in p.walk(SEMCTL, SEM_INFO, SEM_STAT_ANY, 104)? {
        let (key, mode) = perm(&ds);
        let n = word(&ds, 80);
        if n > MAX_SEMS {
            return Err(Error::Refused {
                pid: f.pid,
                reasons: vec![format!(
                    "System V semaphore set {id} has {n} semaphores (at most {MAX_SEMS} are carried)"
                )],
            });
        }
        p.t.call("semctl GETALL", SEMCTL, &[id as u64, 0, GETALL, scratch])?;
        let raw = crate::dump::peek(f.pid, scratch, 2 * n as usize)?;
        let values = raw
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        out.sems.push(SemSet {
            key,
            id,
            mode,
            values,
        });
    }
    let queues = p.walk(MSGCTL, MSG_INFO, MSG_STAT_ANY, 120)?;
    if !queues.is_empty() {
        let prot = (libc::PROT_READ | libc::PROT_WRITE) as u64;
        let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
        let buf =
            p.t.call("mmap", nr::MMAP, &[0, MSG_BUF, prot, flags, u64::MAX, 0])?;
        let r = read_queues(&mut p, &queues, buf);
        p.t.call("munmap", nr::MUNMAP, &[buf, MSG_BUF])?;
        out.queues = r?;
    }
    Ok(out)
}

fn read_queues(p: &mut Probe<'_>, queues: &[(i32, Vec<u8>)], buf: u64) -> Result<Vec<Queue>> {
    let mut out = Vec::new();
    for (id, ds) in queues {
        let (key, mode) = perm(ds);
        let qnum = word(ds, 80);
        let mut messages = Vec::new();
        for i in 0..qnum {
            let flags = MSG_COPY | libc::IPC_NOWAIT as u64;
            let n = p.t.call(
                "msgrcv(MSG_COPY)",
                MSGRCV,
                &[*id as u64, buf, MSG_BUF - 8, i, flags],
            )?;
            if n as usize > MAX_MSG {
                return Err(Error::Refused {
                    pid: p.f.pid,
                    reasons: vec![format!(
                        "System V message queue {id} holds a message of {n} bytes (at most \
                         {MAX_MSG} are carried)"
                    )],
                });
            }
            let m = p.read(buf, 8 + n as usize)?;
            let kind = i64::from_le_bytes(m[..8].try_into().unwrap());
            messages.push((kind, m[8..].to_vec()));
        }
        out.push(Queue {
            key,
            id: *id,
            mode,
            qbytes: word(ds, 88),
            messages,
        });
    }
    Ok(out)
}

/// Write `value` to `/proc/sys/kernel/NAME` inside `root` (the pod's root placeholder).
fn next_id(root: &mut Child, name: &str, value: i32) -> Result<()> {
    let fd = root.open_here(&format!("/proc/sys/kernel/{name}"), libc::O_WRONLY, 0)?;
    let text = value.to_string();
    let p = root.put(256, text.as_bytes())?;
    let r = root.main.call(
        &format!("write {name}"),
        nr::WRITE,
        &[fd as u64, p, text.len() as u64],
    );
    root.main.call("close", nr::CLOSE, &[fd as u64])?;
    r.map(drop)
}

/// What to make: which `*get` call, its `*_next_id` file, and the object's key, size or
/// count argument (none for `msgget`), mode and id.
struct Make<'a> {
    what: &'a str,
    next: &'a str,
    call: u64,
    key: i32,
    arg: Option<u64>,
    mode: u32,
    id: i32,
}

/// `get(key, arg, mode | IPC_CREAT | IPC_EXCL)` with the next id set to `id`, checked.
fn make(root: &mut Child, m: Make<'_>) -> Result<()> {
    next_id(root, m.next, m.id)?;
    let flags = u64::from(m.mode & 0o777) | (libc::IPC_CREAT | libc::IPC_EXCL) as u64;
    let key = m.key as u32 as u64;
    let args = match m.arg {
        Some(arg) => vec![key, arg, flags],
        None => vec![key, flags],
    };
    let got = root
        .main
        .call(&format!("{} key {:#x}", m.what, m.key), m.call, &args)?;
    if got != m.id as u64 {
        return Err(Error::Restore(format!(
            "{} {} came back as {got}",
            m.what, m.id
        )));
    }
    Ok(())
}

/// Make everything again in the new pod's IPC namespace, from its root placeholder.
pub(crate) fn restore(root: &mut Child, s: &Sysv, data: &[&[u8]]) -> Result<()> {
    for seg in &s.shm {
        make(
            root,
            Make {
                what: "shmget",
                next: "shm_next_id",
                call: SHMGET,
                key: seg.key,
                arg: Some(seg.size),
                mode: seg.mode,
                id: seg.id,
            },
        )?;
        let blob = data
            .get(seg.content as usize)
            .ok_or_else(|| Error::BadImage("System V segment content missing".into()))?;
        let addr = root.main.call("shmat", SHMAT, &[seg.id as u64, 0, 0])?;
        let mut r = Ok(());
        for (off, bytes) in crate::objects::memfd::decode_extents(blob, seg.size)? {
            r = mem::write_remote(root.pid, addr + off, bytes)
                .sys(|| "fill System V shared memory".into());
            if r.is_err() {
                break;
            }
        }
        root.main.call("shmdt", SHMDT, &[addr])?;
        r?;
    }
    for set in &s.sems {
        let n = set.values.len() as u64;
        make(
            root,
            Make {
                what: "semget",
                next: "sem_next_id",
                call: SEMGET,
                key: set.key,
                arg: Some(n),
                mode: set.mode,
                id: set.id,
            },
        )?;
        let vals: Vec<u8> = set.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let p = root.put(1024, &vals)?;
        root.main
            .call("semctl SETALL", SEMCTL, &[set.id as u64, 0, SETALL, p])?;
    }
    for q in &s.queues {
        make(
            root,
            Make {
                what: "msgget",
                next: "msg_next_id",
                call: MSGGET,
                key: q.key,
                arg: None,
                mode: q.mode,
                id: q.id,
            },
        )?;
        set_qbytes(root, q)?;
        for (kind, text) in &q.messages {
            if text.len() > MAX_MSG {
                return Err(Error::BadImage("System V message too long".into()));
            }
            let mut m = kind.to_le_bytes().to_vec();
            m.extend_from_slice(text);
            let p = root.put(1024, &m)?;
            root.main.call(
                "msgsnd",
                MSGSND,
                &[q.id as u64, p, text.len() as u64, libc::IPC_NOWAIT as u64],
            )?;
        }
    }
    Ok(())
}

/// Give queue `q` its saved size limit (raising it past the system's default needs a privilege
/// the pod may not have: then it keeps the default, and a fuller queue fails to restore).
fn set_qbytes(root: &mut Child, q: &Queue) -> Result<()> {
    let p = root.put(1024, &[0u8; 120])?;
    root.main.call(
        "msgctl IPC_STAT",
        MSGCTL,
        &[q.id as u64, libc::IPC_STAT as u64, p],
    )?;
    let mut ds = crate::dump::peek(root.pid, p, 120)?;
    if word(&ds, 88) == q.qbytes {
        return Ok(());
    }
    ds[88..96].copy_from_slice(&q.qbytes.to_le_bytes());
    let p = root.put(1024, &ds)?;
    let r = root
        .main
        .raw(MSGCTL, &[q.id as u64, libc::IPC_SET as u64, p])?;
    if r < 0 {
        tracing::warn!(
            id = q.id,
            qbytes = q.qbytes,
            "cannot set the queue's size limit ({r})"
        );
    }
    Ok(())
}

/// Whether segment `s` is marked for removal (removed once its last mapping is back).
pub(crate) fn doomed(s: &Segment) -> bool {
    s.mode & SHM_DEST != 0
}
