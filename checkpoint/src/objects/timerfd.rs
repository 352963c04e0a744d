//! timerfd: clock, time left and interval, absolute or relative arming, and the expirations
//! nobody has read yet.
//!
//! A relative timer comes back with the time it had left (it does not run while the task is
//! frozen or moving); an absolute one (`TFD_TIMER_ABSTIME`) keeps its deadline on its clock.
//! At capture an injected-equivalent `timerfd_gettime` (on a copy of the descriptor) first
//! accounts for periodic expirations not yet read, as a `read` would.

use super::fdinfo::{FdInfo, dup_of, missing};
use super::{Claim, DumpCx, FdFacts, Kind, RestoreCx};
use crate::error::{Error, Result, SysContext};
use crate::sys::anon::{self, Timespec};
use crate::sys::fds;
use serde::{Deserialize, Serialize};
use std::os::fd::OwnedFd;

const NSEC: i64 = 1_000_000_000;

/// One timerfd.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TimerFd {
    /// Its clock (`CLOCK_REALTIME`, `CLOCK_MONOTONIC`, …).
    clock: i32,
    /// Status flags.
    flags: u32,
    /// `TFD_TIMER_ABSTIME` / `TFD_TIMER_CANCEL_ON_SET` as last armed.
    settime_flags: u32,
    /// Time left (zero: disarmed).
    left: Timespec,
    /// Period (zero: one-shot).
    interval: Timespec,
    /// Expirations not read yet.
    ticks: u64,
    /// The deadline on `clock`, for an absolute timer.
    deadline: Option<Timespec>,
}

fn from_info(info: &FdInfo, flags: u32) -> std::result::Result<TimerFd, String> {
    let get = |k: &str| info.get(k).ok_or_else(|| missing("timerfd", k));
    let clock = get("clockid")?
        .parse()
        .map_err(|_| missing("timerfd", "clockid"))?;
    let ticks = get("ticks")?
        .parse()
        .map_err(|_| missing("timerfd", "ticks"))?;
    let settime_flags = info
        .oct("settime flags")
        .ok_or_else(|| missing("timerfd", "settime flags"))?;
    let left = info
        .pair("it_value")
        .ok_or_else(|| missing("timerfd", "it_value"))?;
    let interval = info
        .pair("it_interval")
        .ok_or_else(|| missing("timerfd", "it_interval"))?;
    Ok(TimerFd {
        clock,
        flags,
        settime_flags,
        left,
        interval,
        ticks,
        deadline: None,
    })
}

fn add(a: Timespec, b: Timespec) -> Timespec {
    let n = a[1] + b[1];
    [a[0] + b[0] + n / NSEC, n % NSEC]
}

impl Kind for TimerFd {
    const NAME: &'static str = "timerfd";

    fn inspect(f: &FdFacts<'_>) -> Claim<Self> {
        if f.link != "anon_inode:[timerfd]" {
            return Claim::NotMine;
        }
        match FdInfo::read(f.pid, f.fd).map(|i| from_info(&i, f.flags)) {
            Ok(Ok(t)) => Claim::Mine(t),
            Ok(Err(r)) => Claim::Refused(r),
            Err(e) => Claim::Refused(format!("timerfd: {e}")),
        }
    }

    fn capture(&mut self, f: &FdFacts<'_>, _cx: &mut DumpCx) -> Result<()> {
        let copy = dup_of(f.pid, f.fd)?;
        let (left, interval) = anon::timerfd_gettime(&copy).sys(|| "timerfd_gettime".into())?;
        let info = FdInfo::read(f.pid, f.fd)?;
        *self = from_info(&info, f.flags).map_err(Error::Restore)?;
        self.left = left;
        self.interval = interval;
        if self.settime_flags & libc::TFD_TIMER_ABSTIME as u32 != 0 && left != [0, 0] {
            let now = anon::clock_now(self.clock).sys(|| "clock_gettime".into())?;
            self.deadline = Some(add(now, left));
        }
        Ok(())
    }

    fn create(&self, _cx: &mut RestoreCx<'_>) -> Result<OwnedFd> {
        let fd = anon::timerfd_create(self.clock, libc::TFD_NONBLOCK)
            .sys(|| format!("timerfd_create (clock {})", self.clock))?;
        if self.left != [0, 0] {
            let (flags, value) = match self.deadline {
                Some(d) => (self.settime_flags as i32, d),
                None => (0, self.left),
            };
            anon::timerfd_settime(&fd, flags, value, self.interval)
                .sys(|| "timerfd_settime".into())?;
        }
        if self.ticks > 0 {
            anon::timerfd_set_ticks(&fd, self.ticks).sys(|| "TFD_IOC_SET_TICKS".into())?;
        }
        fds::fcntl(&fd, libc::F_SETFL, self.flags as i32).sys(|| "F_SETFL".into())?;
        Ok(fd)
    }
}
