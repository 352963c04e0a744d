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

/// Size of the scratch area (first page: code; the rest: arguments).
pub const SCRATCH: u64 = 64 * 1024;
const TASK_SIZE: u64 = 0x7fff_ffff_f000;
const ARCH_MAP_VDSO_64: u64 = 0x2003;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
const RSEQ_FLAG_UNREGISTER: u64 = 1;

/// The process being built.
pub struct Child {
    /// Its PID.
    pub pid: i32,
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

    fn bootstrap(&mut self, layout: &[Vma]) -> Result<()> {
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
        self.main.call(
            "close inherited descriptors",
            nr::CLOSE_RANGE,
            &[0, u64::from(u32::MAX), 0],
        )?;
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

    /// `openat(AT_FDCWD, path, flags, mode)` inside the child.
    pub fn open(&mut self, path: &str, flags: i32, mode: u32) -> Result<i32> {
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
            let _ = sys::kill(self.pid, libc::SIGKILL);
            while let Ok(s) = ptrace::wait(self.pid) {
                if s == Stop::Exited {
                    break;
                }
            }
        }
    }
}
