//! The placeholder process a restore works on: creating it, taking it over with ptrace, and
//! clearing its address space down to one scratch area that holds a `syscall` instruction and
//! room for system call arguments.

use crate::dump::peek;
use crate::error::{Error, Result, SysContext};
use crate::freeze::EVENT_STOP;
use crate::image::model::{Vma, VmaKind};
use crate::inject::{Tracee, find_syscall_insn, gone};
use crate::proc;
use crate::sys::ptrace::{self, Stop};
use crate::sys::{self, mem, nr, spawn};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;

/// Size of the scratch area (first page: code; the rest: arguments).
pub const SCRATCH: u64 = 64 * 1024;
const TASK_SIZE: u64 = 0x7fff_ffff_f000;
const ARCH_MAP_VDSO_64: u64 = 0x2003;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
const RSEQ_FLAG_UNREGISTER: u64 = 1;
/// Offset in the argument area of the `recvmsg` buffers.
const RECV_AREA: u64 = 16 * 1024;

/// What a placeholder of a pod has besides: the socket descriptors are passed over, and the
/// files that replace some paths.
#[derive(Clone)]
pub struct TreeLink {
    /// The restorer's end of the socket every placeholder of the pod inherited.
    pub sock: Rc<OwnedFd>,
    /// The number of the placeholders' end.
    pub sock_fd: i32,
    /// Path in the pod → an open file (executables and libraries that travelled).
    pub subst: Rc<HashMap<String, OwnedFd>>,
}

/// The process being built.
pub struct Child {
    /// Its PID.
    pub pid: i32,
    /// Its PID as it sees itself (in a pod: inside the pod's PID namespace).
    pub ns_pid: i32,
    /// Set for the placeholders of a pod.
    pub link: Option<TreeLink>,
    /// Its main thread, for injected calls.
    pub main: Tracee,
    /// Start of the scratch area.
    pub scratch: u64,
    armed: bool,
}

impl Child {
    /// Create the placeholder (PID `want` if given), seize it and wipe its address space.
    pub fn create(want: Option<i32>, layout: &[Vma]) -> Result<Child> {
        let pid = match spawn::spawn_placeholder(want) {
            // Taken since we looked, or the caller may not choose PIDs: any PID will do.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::EPERM)) => {
                spawn::spawn_placeholder(None)
            }
            r => r,
        }
        .sys(|| format!("create process (PID {want:?})"))?;
        let mut child = Child {
            pid,
            ns_pid: pid,
            link: None,
            main: Tracee {
                tid: pid,
                pid,
                base: Default::default(),
                gadget: 0,
                new_threads: vec![],
            },
            scratch: 0,
            armed: true,
        };
        ptrace::seize(pid, ptrace::SEIZE_OPTIONS).sys(|| format!("seize {pid}"))?;
        ptrace::interrupt(pid).sys(|| format!("interrupt {pid}"))?;
        loop {
            match ptrace::wait(pid).sys(|| format!("waitpid {pid}"))? {
                Stop::Event(EVENT_STOP, _) => break,
                Stop::Exited => return Err(Error::Restore("placeholder died".into())),
                _ => ptrace::cont(pid, 0).map_err(|e| gone(pid, e))?,
            }
        }
        ptrace::set_sigmask(pid, !0).map_err(|e| gone(pid, e))?;
        child.bootstrap(layout)?;
        Ok(child)
    }

    /// Take over the stopped-or-running process `pid` (`ns_pid` inside its namespace), which
    /// a tree restore created, with the tree's ptrace options; all its signals blocked.
    pub fn adopt(pid: i32, ns_pid: i32, link: TreeLink) -> Result<Child> {
        ptrace::seize(pid, ptrace::SEIZE_OPTIONS | libc::PTRACE_O_TRACEFORK)
            .sys(|| format!("seize {pid}"))?;
        ptrace::interrupt(pid).sys(|| format!("interrupt {pid}"))?;
        Self::stopped(pid, ns_pid, link, 0)
    }

    /// Wrap a process already traced by us (a placeholder forked by an injected `clone3`,
    /// auto-attached) once it reports its first stop; `gadget` is the scratch area it
    /// inherited.
    pub fn stopped(pid: i32, ns_pid: i32, link: TreeLink, gadget: u64) -> Result<Child> {
        let mut child = Child {
            pid,
            ns_pid,
            link: Some(link),
            main: Tracee {
                tid: pid,
                pid,
                base: Default::default(),
                gadget,
                new_threads: vec![],
            },
            scratch: gadget,
            armed: true,
        };
        loop {
            match ptrace::wait(pid).sys(|| format!("waitpid {pid}"))? {
                Stop::Event(EVENT_STOP, _) | Stop::Signal(libc::SIGSTOP) => break,
                Stop::Exited => return Err(Error::Restore(format!("placeholder {pid} died"))),
                _ => ptrace::cont(pid, 0).map_err(|e| gone(pid, e))?,
            }
        }
        ptrace::set_sigmask(pid, !0).map_err(|e| gone(pid, e))?;
        child.main = Tracee::new(pid, pid, gadget)?;
        Ok(child)
    }

    fn bootstrap(&mut self, layout: &[Vma]) -> Result<()> {
        self.wipe(layout, None)?;
        self.map_vdso(layout)
    }

    /// Close every descriptor (but `keep`), unregister rseq, map the scratch area where
    /// nothing of `layout` lies, and unmap everything else (the vDSO included).
    pub fn wipe(&mut self, layout: &[Vma], keep: Option<i32>) -> Result<()> {
        let pid = self.pid;
        let own = proc::maps(pid)?;
        let vdso = own
            .iter()
            .find(|m| m.path == "[vdso]")
            .ok_or_else(|| Error::Restore("placeholder has no vDSO".into()))?;
        let code = peek(pid, vdso.start, (vdso.end - vdso.start) as usize)?;
        let gadget = find_syscall_insn(&code, vdso.start)
            .ok_or_else(|| Error::Restore("no syscall instruction in the vDSO".into()))?;
        self.main = Tracee::new(pid, pid, gadget)?;
        // The placeholder closes the descriptors it inherited from us, but we
        // may have stopped it before it got there: close them for certain.
        let ranges = match keep {
            None => vec![(0, u64::from(u32::MAX))],
            Some(k) if k > 0 => vec![(0, k as u64 - 1), (k as u64 + 1, u64::from(u32::MAX))],
            Some(_) => vec![(1, u64::from(u32::MAX))],
        };
        for (lo, hi) in ranges {
            self.main
                .call("close inherited descriptors", nr::CLOSE_RANGE, &[lo, hi, 0])?;
        }
        if let Some((area, len, sig)) = ptrace::rseq_config(pid).map_err(|e| gone(pid, e))? {
            self.main.call(
                "rseq unregister",
                nr::RSEQ,
                &[area, len as u64, RSEQ_FLAG_UNREGISTER, sig as u64],
            )?;
        }
        let overlaps = |a: u64, b: u64| {
            own.iter().any(|m| m.start < b && a < m.end)
                || layout.iter().any(|v| v.start < b && a < v.end)
        };
        let scratch = (1..0x7f00u64)
            .map(|k| k << 32)
            .find(|&a| !overlaps(a, a + SCRATCH))
            .ok_or_else(|| Error::Restore("no room for the scratch area".into()))?;
        let prot = (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u64;
        let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64 | MAP_FIXED_NOREPLACE;
        self.main.call(
            "mmap scratch",
            nr::MMAP,
            &[scratch, SCRATCH, prot, flags, u64::MAX, 0],
        )?;
        mem::write_remote(pid, scratch, &[0x0f, 0x05]).sys(|| "write gadget".into())?;
        self.scratch = scratch;
        self.main.gadget = scratch;
        self.main.call("munmap low", nr::MUNMAP, &[0, scratch])?;
        let hi = scratch + SCRATCH;
        self.main
            .call("munmap high", nr::MUNMAP, &[hi, TASK_SIZE - hi])?;
        Ok(())
    }

    /// Unmap everything but the scratch area and the ranges `keep` (sorted, disjoint).
    pub fn trim(&mut self, keep: &[(u64, u64)]) -> Result<()> {
        let mut keep: Vec<(u64, u64)> = keep.to_vec();
        keep.push((self.scratch, self.scratch + SCRATCH));
        keep.sort();
        let mut at = 0u64;
        for (a, b) in keep {
            if a > at {
                self.main.call("munmap", nr::MUNMAP, &[at, a - at])?;
            }
            at = at.max(b);
        }
        if at < TASK_SIZE {
            self.main
                .call("munmap", nr::MUNMAP, &[at, TASK_SIZE - at])?;
        }
        Ok(())
    }

    /// Map the vDSO (and its data pages) where `layout` had them, checking the kernel's layout
    /// is the same.
    pub fn map_vdso(&mut self, layout: &[Vma]) -> Result<()> {
        let pid = self.pid;
        let vstart = layout
            .iter()
            .filter(|v| matches!(v.kind, VmaKind::Vdso | VmaKind::Vvar))
            .map(|v| v.start)
            .min();
        if let Some(at) = vstart {
            self.main
                .call("map vDSO", nr::ARCH_PRCTL, &[ARCH_MAP_VDSO_64, at])?;
            let now = proc::maps(pid)?;
            for v in layout
                .iter()
                .filter(|v| matches!(v.kind, VmaKind::Vdso | VmaKind::Vvar))
            {
                if !now.iter().any(|m| m.start == v.start && m.end == v.end) {
                    return Err(Error::Restore(format!(
                        "vDSO/vvar layout differs from the image at {:#x} (other kernel?)",
                        v.start
                    )));
                }
            }
        }
        Ok(())
    }

    /// Address `off` bytes into the argument area.
    pub fn arg_addr(&self, off: u64) -> u64 {
        self.scratch + 4096 + off
    }

    /// Copy `bytes` to the argument area at `off`; returns their address in the child.
    pub fn put(&self, off: u64, bytes: &[u8]) -> Result<u64> {
        assert!(off + bytes.len() as u64 <= SCRATCH - 4096);
        let a = self.arg_addr(off);
        mem::write_remote(self.pid, a, bytes).sys(|| "write arguments".into())?;
        Ok(a)
    }

    /// Copy a NUL-terminated string to the argument area at `off`.
    pub fn put_str(&self, off: u64, s: &str) -> Result<u64> {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.put(off, &b)
    }

    /// Open `path` for a mapping or the executable: a substituted file (see [`TreeLink`]) is
    /// passed in, anything else opened by the child itself ([`Child::open_here`]).
    pub fn open(&mut self, path: &str, flags: i32, mode: u32) -> Result<i32> {
        let link = self.link.clone();
        if let Some(f) = link.as_ref().and_then(|l| l.subst.get(path)) {
            return self.receive(f);
        }
        self.open_here(path, flags, mode)
    }

    /// Pass `fd` into the child over the pod's socket: an injected `recvmsg`; returns the
    /// number it got there (the lowest free one; not close-on-exec).
    pub fn receive(&mut self, fd: &OwnedFd) -> Result<i32> {
        let Some(link) = self.link.clone() else {
            return Err(Error::Restore("no socket to pass descriptors".into()));
        };
        crate::sys::fds::send_fd(link.sock.as_raw_fd(), fd.as_raw_fd())
            .sys(|| "sendmsg SCM_RIGHTS".into())?;
        let at = self.arg_addr(RECV_AREA);
        let words = |w: &[u64]| -> Vec<u8> { w.iter().flat_map(|x| x.to_le_bytes()).collect() };
        // iovec at +0 (one byte at +64); msghdr at +16: name, namelen, iov, iovlen, control,
        // controllen, flags; control buffer at +128.
        let mut b = words(&[at + 64, 1]);
        b.extend(words(&[0, 0, at, 1, at + 128, 64, 0]));
        b.resize(192, 0);
        self.put(RECV_AREA, &b)?;
        let n = self.main.call(
            "recvmsg (descriptor passing)",
            nr::RECVMSG,
            &[link.sock_fd as u64, at + 16, 0],
        )?;
        let cmsg = crate::dump::peek(self.pid, at + 128, 20)?;
        let level = i32::from_le_bytes(cmsg[8..12].try_into().unwrap());
        let kind = i32::from_le_bytes(cmsg[12..16].try_into().unwrap());
        if n != 1 || level != libc::SOL_SOCKET || kind != libc::SCM_RIGHTS {
            return Err(Error::Restore(format!(
                "descriptor passing into {} failed",
                self.pid
            )));
        }
        Ok(i32::from_le_bytes(cmsg[16..20].try_into().unwrap()))
    }

    /// `openat(AT_FDCWD, path, flags, mode)` inside the child.
    pub fn open_here(&mut self, path: &str, flags: i32, mode: u32) -> Result<i32> {
        let p = self.put_str(0, path)?;
        let fd = self.main.call(
            &format!("open {path}"),
            nr::OPENAT,
            &[libc::AT_FDCWD as u64, p, flags as u64, mode as u64],
        )?;
        Ok(fd as i32)
    }

    /// The child is complete and detached: do not kill it on drop.
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.armed {
            let threads = crate::proc::tasks(self.pid).unwrap_or_default();
            let _ = sys::kill(self.pid, libc::SIGKILL);
            // A traced thread that dies stays until its tracer reaps it, and the leader's end
            // is reported only once every other thread is gone: reap the threads first (a
            // restore that failed after making them waited for the leader for ever).
            for tid in threads.into_iter().filter(|&t| t != self.pid) {
                while let Ok(s) = ptrace::wait(tid) {
                    if s == Stop::Exited {
                        break;
                    }
                }
            }
            while let Ok(s) = ptrace::wait(self.pid) {
                if s == Stop::Exited {
                    break;
                }
            }
        }
    }
}
