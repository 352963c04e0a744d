//! The state changes of a migrant the mover drives: tickets for moves, lost and found, the
//! last image, the end of a task away, and which zombie may feed a task's terminal.

use std::sync::Arc;

use zos_netproto::mux::Channel;

use parking_lot::MutexGuard;

use super::registry::{Migrant, Migrants, State};
use super::terminal::Terminal;
use super::ticket::MoveTicket;
use super::{ImageRecord, Placement};
use crate::domination::PairedZombie;
use crate::error::{DaemonError, Result};

impl Migrants {
    /// Host PID of the init of task `id`'s pod on this host (the root for `check_tree` and
    /// `checkpoint_tree`), if it is home.
    pub fn local_init_pid(&self, id: u64) -> Result<i32> {
        let m = self.get(id)?;
        let st = m.state.lock();
        match (&st.placement, &st.local) {
            (Placement::Home | Placement::Moving { .. }, Some(l)) if !l.handed_off => Ok(l.pid),
            (p, _) => Err(DaemonError::User(format!(
                "task {id} does not run on this master ({})",
                p.state_word()
            ))),
        }
    }

    /// Starts moving task `id` (home) to the zombie `to`: `Home → Moving{to}`. The ticket is
    /// the mover's handle until it commits or fails (dropping it fails the move).
    pub fn begin_move(self: &Arc<Self>, id: u64, to: &str) -> Result<MoveTicket> {
        let hook = self.before_move.lock().clone();
        if let Some(hook) = hook {
            hook(id);
        }
        let m = self.get(id)?;
        let st = m.state.lock();
        if st.ticket_out {
            return Err(DaemonError::User(format!("task {id} is already moving")));
        }
        match (&st.placement, &st.local) {
            (Placement::Home, Some(l)) if !l.handed_off => {}
            (p, _) => {
                return Err(DaemonError::User(format!(
                    "task {id} is not at home ({}), so it cannot move from here",
                    p.state_word()
                )));
            }
        }
        let from = st.placement.clone();
        Ok(self.hand_out_ticket(&m, st, to.into(), from))
    }

    /// Starts bringing task `id` home (from `Away` or `Lost`): `→ Moving{to: master}`.
    pub fn begin_home(self: &Arc<Self>, id: u64) -> Result<MoveTicket> {
        let m = self.get(id)?;
        let st = m.state.lock();
        if st.ticket_out {
            return Err(DaemonError::User(format!("task {id} is already moving")));
        }
        if !matches!(
            st.placement,
            Placement::Away { .. } | Placement::Lost { .. }
        ) {
            return Err(DaemonError::User(format!(
                "task {id} is not away ({})",
                st.placement.state_word()
            )));
        }
        let from = st.placement.clone();
        let to = self.master_name().to_owned();
        Ok(self.hand_out_ticket(&m, st, to, from))
    }

    /// The ticket of a move of `m` (whose state `st` is locked and checked): `Moving{to}`
    /// until the ticket commits or fails back to `from`.
    pub(super) fn hand_out_ticket(
        self: &Arc<Self>,
        m: &Arc<Migrant>,
        mut st: MutexGuard<'_, State>,
        to: String,
        from: Placement,
    ) -> MoveTicket {
        st.ticket_out = true;
        st.set_placement(Placement::Moving { to });
        let epoch = st.epoch;
        drop(st);
        self.changed();
        MoveTicket::new(self.clone(), m.clone(), from, epoch)
    }

    /// The zombie holding task `id` vanished: `Away{host} → Lost{host}`.
    pub fn mark_lost(&self, id: u64) -> Result<()> {
        let m = self.get(id)?;
        let mut st = m.state.lock();
        let Placement::Away { host } = st.placement.clone() else {
            return Err(DaemonError::User(format!("task {id} is not away")));
        };
        st.set_placement(Placement::Lost { host });
        drop(st);
        self.changed();
        Ok(())
    }

    /// The zombie that held task `id` when it was lost is back with it at `epoch` (the
    /// current one): `Lost → Away`.
    pub fn mark_found(&self, id: u64, zombie: &PairedZombie, epoch: u64) -> Result<()> {
        let m = self.get(id)?;
        let mut st = m.state.lock();
        if !matches!(st.placement, Placement::Lost { .. })
            || st.epoch != epoch
            || st.zombie.as_ref().map(|z| z.key) != Some(zombie.key)
        {
            return Err(DaemonError::User(format!(
                "task {id} is not lost on {} at epoch {epoch}",
                zombie.name
            )));
        }
        st.set_placement(Placement::Away {
            host: zombie.name.clone(),
        });
        drop(st);
        self.changed();
        Ok(())
    }

    /// Records the last image the master holds of task `id`.
    pub fn set_last_image(&self, id: u64, image: ImageRecord) -> Result<()> {
        let m = self.get(id)?;
        m.state.lock().last_image = Some(image);
        self.changed();
        Ok(())
    }

    /// Task `id` ended on its zombie (its relay said so) with `code`, at `epoch`.
    pub(super) fn ended_away(&self, id: u64, epoch: u64, code: i32) {
        let Ok(m) = self.get(id) else { return };
        let mut st = m.state.lock();
        if st.epoch != epoch || !matches!(st.placement, Placement::Away { .. }) {
            tracing::info!("task {id}: a stale end (epoch {epoch}) is ignored");
            return;
        }
        st.set_placement(Placement::Exited { code });
        st.zombie = None;
        drop(st);
        m.terminal.finish();
        tracing::info!("migrant task {id} ended on its zombie: exit {code}");
        self.changed();
    }

    /// Serves a `pty/<task>` channel the dominated `zombie` opened: the terminal of a task it
    /// runs for us. Refused unless the task is away on that very zombie at the epoch it names.
    pub fn serve_relay(self: &Arc<Self>, channel: Channel, zombie: &PairedZombie) {
        super::relay::serve_master_side(self.clone(), channel, zombie.clone());
    }

    /// Checks a relay's hello: the task's terminal if it runs on `zombie` at `epoch` and no
    /// other relay feeds it (then this one does, until [`Migrants::relay_closed`]).
    pub(super) fn relay_target(
        &self,
        id: u64,
        zombie: &PairedZombie,
        epoch: u64,
    ) -> Result<Arc<Terminal>> {
        let m = self.get(id)?;
        let mut st = m.state.lock();
        let away_there = matches!(&st.placement, Placement::Away { .. })
            && st.zombie.as_ref().map(|z| z.key) == Some(zombie.key);
        if !away_there || st.epoch != epoch {
            return Err(DaemonError::User(format!(
                "task {id} does not run on {} at epoch {epoch}",
                zombie.name
            )));
        }
        if st.relay_open {
            return Err(DaemonError::User(format!(
                "task {id}'s terminal is relayed already"
            )));
        }
        st.relay_open = true;
        Ok(m.terminal.clone())
    }

    /// The relay accepted by [`Migrants::relay_target`] has ended.
    pub(super) fn relay_closed(&self, id: u64) {
        if let Ok(m) = self.get(id) {
            m.state.lock().relay_open = false;
        }
    }
}
