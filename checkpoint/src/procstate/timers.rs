//! POSIX timers (`timer_create`): read from `/proc/PID/timers` (id, clock, signal and value,
//! how they notify), their time left and interval from an injected `timer_gettime`, and made
//! again at restore with the same ids (`PR_TIMER_CREATE_RESTORE_IDS`, Linux 6.17+) and armed
//! for the time they had left. A timer's pending signal travels with the process's pending
//! signals.

use crate::error::{Error, Result};
use crate::freeze::Frozen;
use crate::inject::Tracee;
use crate::objects::fdinfo::pid_in_pod;
use crate::proc;
use crate::restore::child::Child;
use serde::{Deserialize, Serialize};

const TIMER_CREATE: u64 = 222;
const TIMER_SETTIME: u64 = 223;
const TIMER_GETTIME: u64 = 224;
const PR_TIMER_CREATE_RESTORE_IDS: u64 = 77;
const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD: i32 = 2;
const SIGEV_THREAD_ID: i32 = 4;

/// One POSIX timer of a process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PosixTimer {
    /// Its id.
    pub id: i32,
    /// Its clock.
    pub clock: i32,
    /// `sigev_notify` (`SIGEV_SIGNAL`, `SIGEV_NONE`, `SIGEV_THREAD`, `| SIGEV_THREAD_ID`).
    pub notify: i32,
    /// The signal.
    pub signo: i32,
    /// `sigev_value`.
    pub value: u64,
    /// The thread signalled (TID in the pod), for `SIGEV_THREAD_ID`.
    pub tid: i32,
    /// Time left: seconds, nanoseconds (zero: disarmed).
    pub left: [i64; 2],
    /// Interval.
    pub interval: [i64; 2],
}

/// The timers of `pid` as `/proc` shows them (time left not yet known), or why not.
pub(crate) fn list(pid: i32) -> std::result::Result<Vec<PosixTimer>, String> {
    let text = proc::read(pid, "timers").map_err(|e| e.to_string())?;
    let mut out: Vec<PosixTimer> = Vec::new();
    let bad = |l: &str| format!("cannot read its POSIX timer line `{l}`");
    for l in text.lines() {
        let (key, v) = l.split_once(':').ok_or_else(|| bad(l))?;
        let v = v.trim();
        if key == "ID" {
            out.push(PosixTimer {
                id: v.parse().map_err(|_| bad(l))?,
                clock: 0,
                notify: 0,
                signo: 0,
                value: 0,
                tid: 0,
                left: [0, 0],
                interval: [0, 0],
            });
            continue;
        }
        let t = out.last_mut().ok_or_else(|| bad(l))?;
        match key {
            "signal" => {
                let (s, val) = v.split_once('/').ok_or_else(|| bad(l))?;
                t.signo = s.parse().map_err(|_| bad(l))?;
                t.value = u64::from_str_radix(val, 16).map_err(|_| bad(l))?;
            }
            "notify" => {
                let (how, who) = v.split_once('/').ok_or_else(|| bad(l))?;
                t.notify = match how {
                    "signal" => SIGEV_SIGNAL,
                    "none" => SIGEV_NONE,
                    "thread" => SIGEV_THREAD,
                    _ => return Err(bad(l)),
                };
                if let Some(tid) = who.strip_prefix("tid.") {
                    let host: i32 = tid.parse().map_err(|_| bad(l))?;
                    t.notify |= SIGEV_THREAD_ID;
                    t.tid = pid_in_pod(host).ok_or_else(|| bad(l))?;
                }
            }
            "ClockID" => t.clock = v.parse().map_err(|_| bad(l))?,
            _ => {}
        }
    }
    if let Some(t) = out.iter().find(|t| t.clock < 0) {
        return Err(format!(
            "its POSIX timer {} runs on another process's CPU clock (not supported)",
            t.id
        ));
    }
    Ok(out)
}

/// The timers of frozen `f` with their time left (`timer_gettime` injected into it).
pub(crate) fn capture(f: &Frozen) -> Result<Vec<PosixTimer>> {
    let mut timers = list(f.pid).map_err(|r| Error::Refused {
        pid: f.pid,
        reasons: vec![r],
    })?;
    if timers.is_empty() {
        return Ok(timers);
    }
    let scratch = f
        .scratch
        .ok_or_else(|| Error::Restore("no scratch page".into()))?;
    let mut t = Tracee::new(f.pid, f.pid, f.gadget)?;
    for tm in &mut timers {
        t.call("timer_gettime", TIMER_GETTIME, &[tm.id as u64, scratch])?;
        let b = crate::dump::peek(f.pid, scratch, 32)?;
        let w = |i: usize| i64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        tm.interval = [w(0), w(1)];
        tm.left = [w(2), w(3)];
    }
    Ok(timers)
}

/// Make the timers again in restored process `c`, with their ids, and arm them.
pub(crate) fn recreate(c: &mut Child, timers: &[PosixTimer]) -> Result<()> {
    if timers.is_empty() {
        return Ok(());
    }
    c.main
        .call(
            "prctl(PR_TIMER_CREATE_RESTORE_IDS) (needs Linux 6.17 or later)",
            crate::sys::nr::PRCTL,
            &[PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0],
        )
        .map_err(|e| Error::Restore(format!("POSIX timers cannot keep their ids here: {e}")))?;
    // `/proc` lists the newest first: making them oldest first keeps that order.
    for t in timers.iter().rev() {
        let mut ev = [0u8; 64];
        ev[..8].copy_from_slice(&t.value.to_le_bytes());
        ev[8..12].copy_from_slice(&t.signo.to_le_bytes());
        ev[12..16].copy_from_slice(&t.notify.to_le_bytes());
        ev[16..20].copy_from_slice(&t.tid.to_le_bytes());
        let ev_at = c.put(0, &ev)?;
        let id_at = c.put(128, &t.id.to_le_bytes())?;
        c.main.call(
            &format!("timer_create id {}", t.id),
            TIMER_CREATE,
            &[t.clock as u64, ev_at, id_at],
        )?;
        let got = crate::dump::peek(c.pid, id_at, 4)?;
        if got != t.id.to_le_bytes() {
            return Err(Error::Restore(format!(
                "POSIX timer {} came back with another id",
                t.id
            )));
        }
        // A periodic timer whose signal is still pending is not running: arm it for its next
        // period (the pending signal itself is queued again with the process's signals).
        let left = if t.left == [0, 0] { t.interval } else { t.left };
        if left != [0, 0] {
            let spec: Vec<u8> = [t.interval[0], t.interval[1], left[0], left[1]]
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect();
            let p = c.put(256, &spec)?;
            c.main.call(
                &format!("timer_settime {}", t.id),
                TIMER_SETTIME,
                &[t.id as u64, 0, p, 0],
            )?;
        }
    }
    c.main.call(
        "prctl(PR_TIMER_CREATE_RESTORE_IDS off)",
        crate::sys::nr::PRCTL,
        &[PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0],
    )?;
    Ok(())
}
