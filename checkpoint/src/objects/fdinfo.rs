//! `/proc/PID/fdinfo/FD` of one descriptor, field by field (the kinds of anonymous-inode
//! descriptors keep their whole state there).

use crate::error::Result;
use crate::proc;

/// The lines of one fdinfo file.
#[derive(Debug, Clone)]
pub(crate) struct FdInfo {
    text: String,
}

impl FdInfo {
    /// Read descriptor `fd` of process `pid`.
    pub fn read(pid: i32, fd: i32) -> Result<FdInfo> {
        Ok(FdInfo {
            text: proc::read(pid, &format!("fdinfo/{fd}"))?,
        })
    }

    /// Every line, in order.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.text.lines()
    }

    /// The value of the first line `key: value`, trimmed.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.text.lines().find_map(|l| {
            l.strip_prefix(key)
                .and_then(|r| r.strip_prefix(':'))
                .map(str::trim)
        })
    }

    /// A hexadecimal field.
    pub fn hex(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| u64::from_str_radix(v, 16).ok())
    }

    /// A decimal field.
    pub fn dec(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(|v| v.parse().ok())
    }

    /// An octal field.
    pub fn oct(&self, key: &str) -> Option<u32> {
        self.get(key).and_then(|v| u32::from_str_radix(v, 8).ok())
    }

    /// A field written `(A, B)`.
    pub fn pair(&self, key: &str) -> Option<[i64; 2]> {
        let v = self.get(key)?.strip_prefix('(')?.strip_suffix(')')?;
        let (a, b) = v.split_once(',')?;
        Some([a.trim().parse().ok()?, b.trim().parse().ok()?])
    }
}

/// A field the kernel always writes is missing: the kind cannot read this descriptor.
pub(crate) fn missing(what: &str, key: &str) -> String {
    format!("{what}: no `{key}` in its fdinfo (kernel too old or too new?)")
}

/// PID (or TID) in its own PID namespace of host process `pid` (the last `NSpid` field).
pub(crate) fn pid_in_pod(pid: i32) -> Option<i32> {
    proc::status(pid, None)
        .ok()?
        .get("NSpid")?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// A copy of the holder's descriptor in our own table (`pidfd_getfd`: same open file
/// description), for kinds that cannot be reopened through `/proc/PID/fd/N`.
pub(crate) fn dup_of(pid: i32, fd: i32) -> Result<std::os::fd::OwnedFd> {
    use crate::error::SysContext;
    use crate::sys::fds;
    let pidfd = fds::pidfd_open(pid).sys(|| format!("pidfd_open {pid}"))?;
    fds::pidfd_getfd(&pidfd, fd).sys(|| format!("pidfd_getfd {pid}:{fd}"))
}
