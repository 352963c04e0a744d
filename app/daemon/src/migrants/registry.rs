//! [`Migrants`]: the master's migrant tasks, each with its placement, epoch, last image, local
//! pod and terminal.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use zos_checkpoint::pod::PodSpec;
use zos_netproto::control::{EXITED_LISTED_S, TaskInfo};
use zos_netproto::mux::Channel;

use super::terminal::Terminal;
use super::ticket::MoveTicket;
use super::{ImageRecord, MigrantInfo, Placement, unix_seconds};
use crate::domination::PairedZombie;
use crate::error::{DaemonError, Result};

/// The kind `zos tasks` shows for migrants.
pub const KIND: &str = "migrant";
/// The most environment bytes a `RunMigrant` may carry (the request itself is capped too).
const MAX_ENV_ENTRIES: usize = 4096;

/// The master's migrants.
pub struct Migrants {
    /// `RUNTIME/migrants`: one directory per task (its terminal log, images).
    dir: PathBuf,
    master_name: String,
    init: PathBuf,
    pub(super) shutdown: CancellationToken,
    ids: Arc<AtomicU64>,
    changes: Arc<watch::Sender<u64>>,
    map: Mutex<BTreeMap<u64, Arc<Migrant>>>,
    /// Local pods still running (their supervisors have not finished).
    pub(super) live_pods: AtomicUsize,
}

/// One migrant.
pub(crate) struct Migrant {
    pub id: u64,
    pub command: Vec<String>,
    pub cwd: String,
    pub terminal: Arc<Terminal>,
    pub state: Mutex<State>,
}

/// A migrant's mutable state.
pub(crate) struct State {
    pub placement: Placement,
    pub since: SystemTime,
    pub epoch: u64,
    pub last_image: Option<ImageRecord>,
    pub local: Option<LocalPod>,
    /// The zombie it runs on (away, lost, or moving home from there).
    pub zombie: Option<PairedZombie>,
    pub ticket_out: bool,
    /// The pod generation numbers handed out so far.
    pub generations: u64,
}

/// The pod a migrant has on this host.
pub(crate) struct LocalPod {
    pub pid: i32,
    pub generation: u64,
    /// Its end is expected (the task lives on elsewhere).
    pub handed_off: bool,
}

impl State {
    pub fn set_placement(&mut self, placement: Placement) {
        self.placement = placement;
        self.since = SystemTime::now();
    }
}

impl Migrants {
    /// An empty registry keeping its files under `runtime/migrants`; `ids` and `changes` are
    /// shared with the task registry (one id space, one change signal). Every local pod ends
    /// when `shutdown` is cancelled.
    pub fn new(
        runtime: &std::path::Path,
        master_name: String,
        ids: Arc<AtomicU64>,
        changes: Arc<watch::Sender<u64>>,
        shutdown: CancellationToken,
    ) -> Arc<Migrants> {
        Arc::new(Migrants {
            dir: runtime.join("migrants"),
            master_name,
            init: zos_checkpoint::pod::default_init_path(),
            shutdown,
            ids,
            changes,
            map: Mutex::new(BTreeMap::new()),
            live_pods: AtomicUsize::new(0),
        })
    }

    /// This master's own name (a migrant's `where` when home).
    pub fn master_name(&self) -> &str {
        &self.master_name
    }

    /// The directory of task `id`'s files (its terminal log; a place for its images).
    pub fn task_dir(&self, id: u64) -> PathBuf {
        self.dir.join(id.to_string())
    }

    pub(super) fn changed(&self) {
        self.changes.send_modify(|v| *v += 1);
    }

    pub(super) fn get(&self, id: u64) -> Result<Arc<Migrant>> {
        self.map
            .lock()
            .get(&id)
            .cloned()
            .ok_or_else(|| DaemonError::User(format!("no migrant task {id} (see `zos tasks`)")))
    }

    /// Whether `id` is a migrant of ours.
    pub fn contains(&self, id: u64) -> bool {
        self.map.lock().contains_key(&id)
    }

    /// Starts `argv` in a new pod, in `cwd` with exactly `env` (`KEY=VALUE`); returns once it
    /// runs.
    pub async fn run(
        self: &Arc<Self>,
        argv: Vec<String>,
        cwd: String,
        env: Vec<String>,
    ) -> Result<TaskInfo> {
        if argv.is_empty() {
            return Err(DaemonError::User(
                "no command given (zos run --migrant -- COMMAND …)".into(),
            ));
        }
        if !cwd.starts_with('/') {
            return Err(DaemonError::User(format!(
                "the working directory must be absolute, not {cwd:?}"
            )));
        }
        if env.len() > MAX_ENV_ENTRIES || env.iter().any(|e| !e.contains('=')) {
            return Err(DaemonError::User(
                "the environment must be at most 4096 KEY=VALUE entries".into(),
            ));
        }
        if self.shutdown.is_cancelled() {
            return Err(DaemonError::User("the daemon is stopping".into()));
        }
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let dir = self.task_dir(id);
        make_private_dir(&self.dir)?;
        make_private_dir(&dir)?;
        // The daemon's own uid and gid inside and outside: the task keeps the user's files.
        let spec = PodSpec {
            init: self.init.clone(),
            argv: argv.iter().map(Into::into).collect(),
            cwd: PathBuf::from(&cwd),
            env: env.iter().map(Into::into).collect(),
            inside_uid: nix::unistd::geteuid().as_raw(),
            inside_gid: nix::unistd::getegid().as_raw(),
            mounts: Default::default(),
        };
        let migrant = Arc::new(Migrant {
            id,
            command: argv,
            cwd,
            terminal: Arc::new(Terminal::new(&dir)),
            state: Mutex::new(State {
                placement: Placement::Home,
                since: SystemTime::now(),
                epoch: 1,
                last_image: None,
                local: None,
                zombie: None,
                ticket_out: false,
                generations: 0,
            }),
        });
        let started = super::supervisor::spawn(self.clone(), migrant.clone(), spec).await;
        if let Err(e) = started {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        self.map.lock().insert(id, migrant.clone());
        self.changed();
        tracing::info!("migrant task {id} started: {:?}", migrant.command);
        Ok(self.info_of(&migrant))
    }

    /// Every migrant as `zos tasks` shows it (ended ones for [`EXITED_LISTED_S`]).
    pub fn list(&self) -> Vec<TaskInfo> {
        self.prune();
        let all: Vec<Arc<Migrant>> = self.map.lock().values().cloned().collect();
        all.iter().map(|m| self.info_of(m)).collect()
    }

    /// One migrant's registry entry.
    pub fn info(&self, id: u64) -> Result<MigrantInfo> {
        let m = self.get(id)?;
        let st = m.state.lock();
        Ok(MigrantInfo {
            id,
            command: m.command.clone(),
            cwd: m.cwd.clone(),
            placement: st.placement.clone(),
            since: st.since,
            epoch: st.epoch,
            last_image: st.last_image.clone(),
            init_pid: st.local.as_ref().filter(|l| !l.handed_off).map(|l| l.pid),
            zombie_key: st.zombie.as_ref().map(|z| z.key),
        })
    }

    /// Every migrant's registry entry.
    pub fn infos(&self) -> Vec<MigrantInfo> {
        let ids: Vec<u64> = self.map.lock().keys().copied().collect();
        ids.into_iter()
            .filter_map(|id| self.info(id).ok())
            .collect()
    }

    fn info_of(&self, m: &Migrant) -> TaskInfo {
        let st = m.state.lock();
        let (place, to, exit) = match &st.placement {
            Placement::Home => (self.master_name.clone(), None, None),
            Placement::Moving { to } => {
                let from = match &st.zombie {
                    Some(z) => z.name.clone(),
                    None => self.master_name.clone(),
                };
                (from, Some(to.clone()), None)
            }
            Placement::Away { host } | Placement::Lost { host } => (host.clone(), None, None),
            Placement::Exited { code } => (self.master_name.clone(), None, Some(*code)),
        };
        let away = place != self.master_name;
        TaskInfo {
            id: m.id,
            kind: KIND.into(),
            command: m.command.clone(),
            display: None,
            state: st.placement.state_word().into(),
            pid: st
                .local
                .as_ref()
                .filter(|l| !l.handed_off)
                .map(|l| l.pid as u32),
            host: away.then(|| place.clone()),
            r#where: place,
            since: unix_seconds(st.since),
            epoch: Some(st.epoch),
            image_age_s: st.last_image.as_ref().map(|i| {
                SystemTime::now()
                    .duration_since(i.at)
                    .unwrap_or_default()
                    .as_secs()
            }),
            to,
            exit,
        }
    }

    /// Forgets migrants that ended more than [`EXITED_LISTED_S`] ago (and their files).
    fn prune(&self) {
        let limit = Duration::from_secs(EXITED_LISTED_S);
        let mut gone = Vec::new();
        self.map.lock().retain(|id, m| {
            let st = m.state.lock();
            let old = matches!(st.placement, Placement::Exited { .. })
                && st.since.elapsed().unwrap_or_default() > limit;
            if old {
                gone.push(*id);
            }
            !old
        });
        for id in gone {
            let _ = std::fs::remove_dir_all(self.task_dir(id));
            self.changed();
        }
    }

    /// The terminal of task `id` (for attach, logs and resizes).
    pub fn terminal(&self, id: u64) -> Result<Arc<Terminal>> {
        Ok(self.get(id)?.terminal.clone())
    }

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
        let m = self.get(id)?;
        let mut st = m.state.lock();
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
        st.ticket_out = true;
        st.set_placement(Placement::Moving { to: to.into() });
        let epoch = st.epoch;
        drop(st);
        self.changed();
        Ok(MoveTicket::new(self.clone(), m, from, epoch))
    }

    /// Starts bringing task `id` home (from `Away` or `Lost`): `→ Moving{to: master}`.
    pub fn begin_home(self: &Arc<Self>, id: u64) -> Result<MoveTicket> {
        let m = self.get(id)?;
        let mut st = m.state.lock();
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
        st.ticket_out = true;
        st.set_placement(Placement::Moving {
            to: self.master_name.clone(),
        });
        let epoch = st.epoch;
        drop(st);
        self.changed();
        Ok(MoveTicket::new(self.clone(), m, from, epoch))
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

    /// Checks a relay's hello: the task's terminal if it runs on `zombie` at `epoch`.
    pub(super) fn relay_target(
        &self,
        id: u64,
        zombie: &PairedZombie,
        epoch: u64,
    ) -> Result<Arc<Terminal>> {
        let m = self.get(id)?;
        let st = m.state.lock();
        let away_there = matches!(&st.placement, Placement::Away { .. })
            && st.zombie.as_ref().map(|z| z.key) == Some(zombie.key);
        if !away_there || st.epoch != epoch {
            return Err(DaemonError::User(format!(
                "task {id} does not run on {} at epoch {epoch}",
                zombie.name
            )));
        }
        Ok(m.terminal.clone())
    }

    /// Waits (up to `limit`) until every local pod has ended after a shutdown.
    pub async fn wait_all_ended(&self, limit: Duration) {
        let end = tokio::time::Instant::now() + limit;
        while self.live_pods.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn make_private_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(DaemonError::io(format!("create {}", dir.display()), e)),
    }
}
