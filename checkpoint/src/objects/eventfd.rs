//! eventfd: its counter, semaphore mode and status flags.

use super::fdinfo::{FdInfo, missing};
use super::{Claim, FdFacts, Kind, RestoreCx};
use crate::error::{Result, SysContext};
use crate::sys::{anon, fds};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::fd::OwnedFd;

/// One eventfd.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EventFd {
    /// The counter (what the next `read` returns, or 1 per read in semaphore mode).
    count: u64,
    /// `EFD_SEMAPHORE`.
    semaphore: bool,
    /// Status flags (`O_NONBLOCK`, …).
    flags: u32,
}

impl Kind for EventFd {
    const NAME: &'static str = "eventfd";

    fn inspect(f: &FdFacts<'_>) -> Claim<Self> {
        if f.link != "anon_inode:[eventfd]" {
            return Claim::NotMine;
        }
        let info = match FdInfo::read(f.pid, f.fd) {
            Ok(i) => i,
            Err(e) => return Claim::Refused(format!("eventfd: {e}")),
        };
        let (Some(count), Some(sem)) = (info.hex("eventfd-count"), info.dec("eventfd-semaphore"))
        else {
            return Claim::Refused(missing("eventfd", "eventfd-count"));
        };
        Claim::Mine(EventFd {
            count,
            semaphore: sem != 0,
            flags: f.flags,
        })
    }

    fn create(&self, _cx: &mut RestoreCx<'_>) -> Result<OwnedFd> {
        let sem = if self.semaphore {
            libc::EFD_SEMAPHORE
        } else {
            0
        };
        let fd = anon::eventfd(sem | libc::EFD_NONBLOCK).sys(|| "eventfd".into())?;
        if self.count > 0 {
            std::fs::File::from(fd.try_clone().sys(|| "dup".into())?)
                .write_all(&self.count.to_ne_bytes())
                .sys(|| format!("set the eventfd counter to {}", self.count))?;
        }
        fds::fcntl(&fd, libc::F_SETFL, self.flags as i32).sys(|| "F_SETFL".into())?;
        Ok(fd)
    }
}
