//! [`MoveTicket`]: one move of a migrant in progress, as the mover holds it.
//!
//! While a ticket is out the task is `moving` and nothing else may move it. The ticket ends in
//! exactly one of: [`MoveTicket::committed_away`] (the task runs on the zombie now),
//! [`MoveTicket::adopt_restored`] / [`MoveTicket::adopt_pod`] (it runs here now, in a restored
//! pod), or [`MoveTicket::failed`] — which dropping the ticket also does: the task is back
//! where it was, with the same epoch.

use std::sync::Arc;

use zos_checkpoint::RestoredTree;
use zos_checkpoint::pod::Pod;

use super::Placement;
use super::registry::{Migrant, Migrants};
use crate::domination::PairedZombie;
use crate::error::{DaemonError, Result};

/// A move in progress (see the module docs).
pub struct MoveTicket {
    migrants: Arc<Migrants>,
    migrant: Arc<Migrant>,
    from: Placement,
    epoch: u64,
    resolved: bool,
}

impl std::fmt::Debug for MoveTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MoveTicket(task {} from {:?})",
            self.migrant.id, self.from
        )
    }
}

impl MoveTicket {
    pub(super) fn new(
        migrants: Arc<Migrants>,
        migrant: Arc<Migrant>,
        from: Placement,
        epoch: u64,
    ) -> MoveTicket {
        MoveTicket {
            migrants,
            migrant,
            from,
            epoch,
            resolved: false,
        }
    }

    /// The task's id.
    pub fn task(&self) -> u64 {
        self.migrant.id
    }

    /// The task's command line (for the migration offer).
    pub fn command(&self) -> &[String] {
        &self.migrant.command
    }

    /// The epoch the task has now (before this move).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The epoch this move gives the task (`epoch() + 1`).
    pub fn next_epoch(&self) -> u64 {
        self.epoch + 1
    }

    /// Where the task was when the move began (`Home`, `Away` or `Lost`).
    pub fn from(&self) -> &Placement {
        &self.from
    }

    /// The zombie the task runs on (moving home): its paired name and key.
    pub fn zombie(&self) -> Option<PairedZombie> {
        self.migrant.state.lock().zombie.clone()
    }

    /// Host PID of the local pod's init (moving away): the root to check and checkpoint.
    pub fn local_init_pid(&self) -> Option<i32> {
        let st = self.migrant.state.lock();
        st.local.as_ref().filter(|l| !l.handed_off).map(|l| l.pid)
    }

    /// The zombie has the task restored and stopped, and the mover is about to end the local
    /// frozen copy and send `Commit{epoch}`: the task is `Away` on `zombie` at `epoch`. Call
    /// this **before** killing the frozen copy, so its end is not taken for the task's. The
    /// local pty's last output is still logged; the zombie's `pty/<task>` relay follows.
    pub fn committed_away(mut self, zombie: &PairedZombie, epoch: u64) {
        let mut st = self.migrant.state.lock();
        if let Some(l) = st.local.as_mut() {
            l.handed_off = true;
        }
        st.epoch = epoch;
        st.zombie = Some(zombie.clone());
        st.ticket_out = false;
        st.set_placement(Placement::Away {
            host: zombie.name.clone(),
        });
        drop(st);
        self.migrant.terminal.drop_input();
        self.resolved = true;
        tracing::info!(
            "migrant task {} runs on {} now (epoch {epoch})",
            self.migrant.id,
            zombie.name
        );
        self.migrants.changed();
    }

    /// The zombie committed (its copy is gone): let the tree restored here run and make it
    /// the task's pod (`Home` at `epoch`). Call on the thread that restored it (the tree is
    /// held under ptrace by that thread). If it cannot resume, the task is `exited` with
    /// code 255 and the error is returned (the image the master holds may still restore it).
    pub fn adopt_restored(self, tree: RestoredTree, epoch: u64) -> Result<i32> {
        match tree.resume() {
            Ok(pod) => self.adopt_pod(pod, epoch),
            Err(e) => {
                self.end_failed_adoption(epoch);
                Err(DaemonError::User(format!(
                    "the restored task could not be resumed: {e}"
                )))
            }
        }
    }

    /// Like [`MoveTicket::adopt_restored`] with a pod already running (its pty master still
    /// in the handle). Returns the init's host PID.
    pub fn adopt_pod(mut self, mut pod: Pod, epoch: u64) -> Result<i32> {
        let pid = pod.pid();
        let pty = pod.take_pty_master();
        let generation = {
            let mut st = self.migrant.state.lock();
            st.generations += 1;
            let generation = st.generations;
            st.local = Some(super::registry::LocalPod {
                pid,
                generation,
                handed_off: false,
            });
            st.epoch = epoch;
            st.zombie = None;
            st.ticket_out = false;
            st.set_placement(Placement::Home);
            generation
        };
        self.resolved = true;
        super::supervisor::keep(
            self.migrants.clone(),
            self.migrant.clone(),
            pod,
            pty,
            generation,
        )?;
        tracing::info!(
            "migrant task {} runs on this master again (epoch {epoch})",
            self.migrant.id
        );
        self.migrants.changed();
        Ok(pid)
    }

    /// The task's pod has ended on purpose (`zos suspend`; see `replace`): the task is
    /// `suspended`, its terminal stays open for the copy `zos resume` brings back.
    pub fn suspended(mut self) {
        let mut st = self.migrant.state.lock();
        st.local = None;
        st.ticket_out = false;
        st.set_placement(Placement::Suspended);
        drop(st);
        self.migrant.terminal.drop_input();
        self.resolved = true;
        tracing::info!("migrant task {} is suspended", self.migrant.id);
        self.migrants.changed();
    }

    fn end_failed_adoption(mut self, epoch: u64) {
        let mut st = self.migrant.state.lock();
        st.epoch = epoch;
        st.zombie = None;
        st.ticket_out = false;
        st.set_placement(Placement::Exited { code: 255 });
        drop(st);
        self.migrant.terminal.finish();
        self.resolved = true;
        self.migrants.changed();
    }

    /// The move did not happen: the task is where it was (`from`), same epoch. `why` is logged.
    pub fn failed(mut self, why: &str) {
        self.fail(why);
    }

    fn fail(&mut self, why: &str) {
        if self.resolved {
            return;
        }
        self.resolved = true;
        let mut st = self.migrant.state.lock();
        st.ticket_out = false;
        st.set_placement(self.from.clone());
        drop(st);
        tracing::info!("migrant task {}: move failed: {why}", self.migrant.id);
        self.migrants.changed();
    }
}

impl Drop for MoveTicket {
    fn drop(&mut self) {
        self.fail("the mover let go without committing");
    }
}
