//! epoll: every registration (target descriptor, events, data, `EPOLLET` / `EPOLLONESHOT` /
//! `EPOLLEXCLUSIVE`), re-added at restore by an injected `epoll_ctl` in the process whose
//! descriptors they name.
//!
//! A registration names a descriptor number of the process that added it; it is checked with
//! `kcmp(KCMP_EPOLL_TFD)` against the first holder's descriptor of that number, and refused
//! when that descriptor is closed or now another file (the kernel keeps such registrations
//! alive as long as the file is open elsewhere, but nothing could re-add them). An
//! edge-triggered registration whose target is ready reports once more after a restore;
//! a one-shot registration that has fired comes back still disarmed, except that it reports
//! errors and hang-ups (the kernel adds `EPOLLERR | EPOLLHUP` to every registration made).

use super::fdinfo::{FdInfo, pid_in_pod};
use super::{Claim, FdFacts, Installer, Kind, RestoreCx};
use crate::error::{Result, SysContext};
use crate::sys::{anon, fds};
use serde::{Deserialize, Serialize};
use std::os::fd::OwnedFd;

const EPOLL_CTL: u64 = 233;
const EPOLL_CTL_ADD: u64 = 1;

/// One registration.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Registration {
    /// Target descriptor number in the owning process.
    tfd: i32,
    /// Event mask as the kernel keeps it.
    events: u32,
    /// User data.
    data: u64,
}

/// One epoll instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Epoll {
    /// Status flags.
    flags: u32,
    /// PID (in the pod) of the process whose descriptors the registrations name.
    owner: i32,
    /// The registrations.
    registrations: Vec<Registration>,
}

/// A `tfd:` line: (tfd, events, data).
fn parse_line(l: &str) -> Option<Registration> {
    let mut it = l.split_whitespace();
    let mut field = |name: &str| {
        while let Some(w) = it.next() {
            if w == name {
                return it.next();
            }
        }
        None
    };
    Some(Registration {
        tfd: field("tfd:")?.parse().ok()?,
        events: u32::from_str_radix(field("events:")?, 16).ok()?,
        data: u64::from_str_radix(field("data:")?, 16).ok()?,
    })
}

impl Kind for Epoll {
    const NAME: &'static str = "epoll";

    fn inspect(f: &FdFacts<'_>) -> Claim<Self> {
        if f.link != "anon_inode:[eventpoll]" {
            return Claim::NotMine;
        }
        let info = match FdInfo::read(f.pid, f.fd) {
            Ok(i) => i,
            Err(e) => return Claim::Refused(format!("epoll: {e}")),
        };
        let mut registrations = Vec::new();
        for l in info.lines().filter(|l| l.starts_with("tfd:")) {
            let Some(r) = parse_line(l) else {
                return Claim::Refused(format!("epoll: cannot read registration `{l}`"));
            };
            match anon::epoll_target_is(f.pid, r.tfd, f.fd, r.tfd) {
                Ok(true) => registrations.push(r),
                _ => {
                    return Claim::Refused(format!(
                        "epoll: registration of fd {} whose target is not an open \
                         descriptor of this process any more",
                        r.tfd
                    ));
                }
            }
        }
        let Some(owner) = pid_in_pod(f.pid) else {
            return Claim::Refused("epoll: holder vanished".into());
        };
        Claim::Mine(Epoll {
            flags: f.flags,
            owner,
            registrations,
        })
    }

    fn create(&self, _cx: &mut RestoreCx<'_>) -> Result<OwnedFd> {
        let fd = anon::epoll_create().sys(|| "epoll_create1".into())?;
        fds::fcntl(&fd, libc::F_SETFL, self.flags as i32).sys(|| "F_SETFL".into())?;
        Ok(fd)
    }

    fn install(&self, target: &mut Installer<'_>, fd: i32) -> Result<()> {
        if target.child.ns_pid != self.owner {
            return Ok(());
        }
        for r in &self.registrations {
            let mut ev = r.events.to_le_bytes().to_vec();
            ev.extend(r.data.to_le_bytes());
            let p = target.put(0, &ev)?;
            target.call(
                &format!("epoll_ctl ADD fd {} to epoll {fd}", r.tfd),
                EPOLL_CTL,
                &[fd as u64, EPOLL_CTL_ADD, r.tfd as u64, p],
            )?;
        }
        Ok(())
    }
}
