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

use super::terminal::Terminal;
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
    /// Called with a task's id when a move away begins (the snapshot keeper lets go of
    /// the task's dirty-page tracker then: only one tracker per pod works).
    pub(super) before_move: Mutex<Option<MoveHook>>,
}

/// See [`Migrants::set_before_move`].
pub type MoveHook = Arc<dyn Fn(u64) + Send + Sync>;

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
    /// A zombie's `pty/<task>` relay feeds the terminal now (one at a time).
    pub relay_open: bool,
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
    /// A migrant's state from now on, with no pod, zombie or image yet.
    fn new(placement: Placement, epoch: u64) -> State {
        State {
            placement,
            since: SystemTime::now(),
            epoch,
            last_image: None,
            local: None,
            zombie: None,
            ticket_out: false,
            relay_open: false,
            generations: 0,
        }
    }

    pub fn set_placement(&mut self, placement: Placement) {
        self.placement = placement;
        self.since = SystemTime::now();
    }
}

impl Migrants {
    /// An empty registry keeping its files under `runtime/migrants`, starting pods with the
    /// init at `init` (the daemon's: `zos_checkpoint::pod::default_init_path()`, next to
    /// `zos`); `ids` and `changes` are shared with the task registry (one id space, one change
    /// signal). Every local pod ends when `shutdown` is cancelled.
    pub fn new(
        runtime: &std::path::Path,
        master_name: String,
        init: PathBuf,
        ids: Arc<AtomicU64>,
        changes: Arc<watch::Sender<u64>>,
        shutdown: CancellationToken,
    ) -> Arc<Migrants> {
        Arc::new(Migrants {
            dir: runtime.join("migrants"),
            master_name,
            init,
            shutdown,
            ids,
            changes,
            map: Mutex::new(BTreeMap::new()),
            live_pods: AtomicUsize::new(0),
            before_move: Mutex::new(None),
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
        // The pod sees this host's files: say now what would only fail inside it.
        if !std::path::Path::new(&cwd).is_dir() {
            return Err(DaemonError::User(format!("no directory {cwd}")));
        }
        let path = env.iter().find_map(|e| e.strip_prefix("PATH="));
        if find_program(&argv[0], path).is_none() {
            return Err(DaemonError::User(format!(
                "cannot find {:?} (not an executable file, nor in the PATH it was given)",
                argv[0]
            )));
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
            state: Mutex::new(State::new(Placement::Home, 1)),
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

    /// Lists task `id` again, `suspended` (by an earlier daemon: `zos suspend` then a
    /// restart), with its command, directory and epoch; its terminal log starts afresh if the
    /// runtime dir lost it. New task ids start above it.
    pub fn add_suspended(
        &self,
        id: u64,
        command: Vec<String>,
        cwd: String,
        epoch: u64,
    ) -> Result<()> {
        self.ids.fetch_max(id + 1, Ordering::Relaxed);
        if self.contains(id) {
            return Err(DaemonError::User(format!("task {id} is listed already")));
        }
        let dir = self.task_dir(id);
        make_private_dir(&self.dir)?;
        make_private_dir(&dir)?;
        let migrant = Arc::new(Migrant {
            id,
            command,
            cwd,
            terminal: Arc::new(Terminal::new(&dir)),
            state: Mutex::new(State::new(Placement::Suspended, epoch)),
        });
        self.map.lock().insert(id, migrant);
        self.changed();
        Ok(())
    }

    /// New task ids start at `id` or above (ids an earlier daemon gave out and that still
    /// name something, such as a task's snapshots).
    pub fn reserve_ids_below(&self, id: u64) {
        self.ids.fetch_max(id, Ordering::Relaxed);
    }

    /// Calls `hook` with a task's id whenever a move of it away begins ([`Migrants::begin_move`]).
    pub fn set_before_move(&self, hook: MoveHook) {
        *self.before_move.lock() = Some(hook);
    }

    /// Every migrant as `zos tasks` shows it (ended ones for [`EXITED_LISTED_S`]).
    pub fn list(&self) -> Vec<TaskInfo> {
        self.prune();
        let all: Vec<Arc<Migrant>> = self.map.lock().values().cloned().collect();
        all.iter().map(|m| self.info_of(m)).collect()
    }

    /// Whether task `id` is a migrant running on a zombie now.
    pub fn runs_away(&self, id: u64) -> bool {
        self.info(id)
            .is_ok_and(|i| matches!(i.placement, Placement::Away { .. }))
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
            Placement::Suspended => (self.master_name.clone(), None, None),
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

/// Where `program` is, as `execvp` would find it with `path` (relative names with a slash are
/// not looked up; the pod resolves them in its directory).
fn find_program(program: &str, path: Option<&str>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return (p.is_relative() || executable(&p)).then_some(p);
    }
    path.unwrap_or("/usr/local/bin:/usr/bin:/bin")
        .split(':')
        .map(|dir| std::path::Path::new(if dir.is_empty() { "." } else { dir }).join(program))
        .find(|p| executable(p))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    use super::{Migrants, find_program};

    #[tokio::test]
    async fn a_missing_directory_or_program_is_refused_before_any_pod() {
        let dir = std::env::temp_dir().join(format!("zos-migrants-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let m = Migrants::new(
            &dir,
            "m".into(),
            "/nonexistent/zos-pod-init".into(),
            Arc::new(AtomicU64::new(1)),
            Arc::new(tokio::sync::watch::channel(0).0),
            Default::default(),
        );
        let sh = || vec!["sh".to_string()];
        let e = m.run(sh(), "/nonexistent-zos-dir".into(), vec![]).await;
        assert!(e.unwrap_err().to_string().contains("no directory"));
        let e = m.run(sh(), "relative".into(), vec![]).await;
        assert!(e.unwrap_err().to_string().contains("absolute"));
        let e = m.run(sh(), "/".into(), vec!["NOEQUALS".into()]).await;
        assert!(e.unwrap_err().to_string().contains("KEY=VALUE"));
        let nothing = vec!["zos-no-such".to_string()];
        let e = m.run(nothing, "/".into(), vec!["PATH=/bin".into()]).await;
        assert!(e.unwrap_err().to_string().contains("cannot find"));
        assert!(m.list().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn programs_are_found_as_execvp_would() {
        assert!(find_program("sh", Some("/nonexistent:/bin:/usr/bin")).is_some());
        assert!(find_program("sh", Some("/nonexistent")).is_none());
        assert!(find_program("/bin/sh", None).is_some());
        assert!(
            find_program("/etc/passwd", None).is_none(),
            "not executable"
        );
        assert!(find_program("zos-no-such-program", None).is_none());
    }
}
