//! A migrant's pod replaced in place, for snapshots: `zos rollback` (a copy restored from a
//! snapshot takes the running pod's place), `zos suspend` (the pod ends, the task stays
//! listed as `suspended`) and `zos resume` (a restored copy of a suspended task).
//!
//! Each goes through a [`MoveTicket`] like a move, so nothing else moves the task meanwhile
//! and the pod's supervisor takes the end of the old pod for what it is (not the task's end):
//!
//! ```text
//! let ticket = migrants.begin_replace(id)?;      // Home → Moving{to: master}
//! … restore the snapshot, held stopped …         // a failure: drop(ticket), the task runs on
//! end_local_pod(&ticket)?;                       // SIGKILL to the old pod's init, until it is gone
//! ticket.adopt_restored(tree, epoch)             // Home, the restored copy
//! ```

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::registry::Migrants;
use super::ticket::MoveTicket;
use super::{Placement, sys};
use crate::error::{DaemonError, Result};

/// How long the old pod may take to die after SIGKILL.
const END_WAIT: Duration = Duration::from_secs(10);

impl Migrants {
    /// Starts replacing the pod of task `id`, at home: `Home → Moving{to: master}`.
    pub fn begin_replace(self: &Arc<Self>, id: u64) -> Result<MoveTicket> {
        let m = self.get(id)?;
        let st = m.state.lock();
        if st.ticket_out {
            return Err(DaemonError::User(format!("task {id} is moving")));
        }
        match (&st.placement, &st.local) {
            (Placement::Home, Some(l)) if !l.handed_off => {}
            (p, _) => return Err(not_here(id, p)),
        }
        let to = self.master_name().to_owned();
        Ok(self.hand_out_ticket(&m, st, to, Placement::Home))
    }

    /// Starts bringing back the suspended task `id`: `Suspended → Moving{to: master}`.
    pub fn begin_resume(self: &Arc<Self>, id: u64) -> Result<MoveTicket> {
        let m = self.get(id)?;
        let st = m.state.lock();
        if st.ticket_out || st.placement != Placement::Suspended {
            return Err(DaemonError::User(format!(
                "task {id} is not suspended ({})",
                st.placement.state_word()
            )));
        }
        let to = self.master_name().to_owned();
        Ok(self.hand_out_ticket(&m, st, to, Placement::Suspended))
    }
}

/// Why task `id`, at `placement`, has no pod here to snapshot or replace.
pub fn not_here(id: u64, placement: &Placement) -> DaemonError {
    DaemonError::User(match placement {
        Placement::Away { host } | Placement::Lost { host } => {
            format!("task {id} runs on {host}: bring it home first (zos home {id})")
        }
        Placement::Moving { to } => format!("task {id} is moving to {to}"),
        Placement::Suspended => format!("task {id} is suspended (zos resume {id})"),
        Placement::Exited { code } => format!("task {id} is not running (it exited: {code})"),
        Placement::Home => format!("task {id} has no pod on this master"),
    })
}

/// Ends the pod the ticket's task had here (SIGKILL to its init, which takes the whole pod
/// with it) and waits until its init has exited. Its supervisor, seeing the ticket out,
/// reaps it once the ticket is settled.
pub fn end_local_pod(ticket: &MoveTicket) -> Result<()> {
    let task = ticket.task();
    let Some(pid) = ticket.local_init_pid() else {
        return Ok(());
    };
    // The init is the supervisor's child, unreaped while the ticket is out: its PID cannot
    // name another process.
    let pidfd =
        sys::pidfd_open(pid).map_err(|e| DaemonError::io(format!("task {task}: pidfd"), e))?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL)
        .map_err(|e| DaemonError::User(format!("task {task}: cannot end its pod: {e}")))?;
    let start = Instant::now();
    while start.elapsed() < END_WAIT {
        match sys::wait_readable(pidfd.as_fd(), 100) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => {
                return Err(DaemonError::io(
                    format!("task {task}: waiting for its pod"),
                    e,
                ));
            }
        }
    }
    Err(DaemonError::User(format!(
        "task {task}: its pod did not end within {END_WAIT:?} of SIGKILL"
    )))
}
