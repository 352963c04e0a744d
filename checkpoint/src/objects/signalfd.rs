//! signalfd: the set of signals it accepts and its status flags. The signals themselves are
//! the reading process's pending signals, restored with the process.

use super::fdinfo::{FdInfo, missing};
use super::{Claim, FdFacts, Kind, RestoreCx};
use crate::error::{Result, SysContext};
use crate::sys::{anon, fds};
use serde::{Deserialize, Serialize};
use std::os::fd::OwnedFd;

/// One signalfd.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SignalFd {
    /// Bit `n - 1` for signal `n`.
    mask: u64,
    /// Status flags.
    flags: u32,
}

impl Kind for SignalFd {
    const NAME: &'static str = "signalfd";

    fn inspect(f: &FdFacts<'_>) -> Claim<Self> {
        if f.link != "anon_inode:[signalfd]" {
            return Claim::NotMine;
        }
        match FdInfo::read(f.pid, f.fd).map(|i| i.hex("sigmask")) {
            Ok(Some(mask)) => Claim::Mine(SignalFd {
                mask,
                flags: f.flags,
            }),
            Ok(None) => Claim::Refused(missing("signalfd", "sigmask")),
            Err(e) => Claim::Refused(format!("signalfd: {e}")),
        }
    }

    fn create(&self, _cx: &mut RestoreCx<'_>) -> Result<OwnedFd> {
        let fd = anon::signalfd(self.mask, libc::SFD_NONBLOCK)
            .sys(|| format!("signalfd {:#x}", self.mask))?;
        fds::fcntl(&fd, libc::F_SETFL, self.flags as i32).sys(|| "F_SETFL".into())?;
        Ok(fd)
    }
}
