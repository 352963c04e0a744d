//! A migrant arriving on the zombie (`migrate/<task>`): the offer checked (authority, bounds,
//! memory, exports mounted here, nothing of the task here already), the files the zombie
//! lacks received into `RUNTIME/migrants/<task>/files/`, the image into memory, the tree
//! restored into a new pod — the zombie daemon's uid outside, the zombie's private places
//! masked, each export bound at its master path from the zombie's mount of the master's
//! folders, travelled files substituted (their directory bound at its own path, so the pod
//! can see them when it goes home) — and held stopped until `Commit{epoch}`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use zos_checkpoint::TreeRestoreOptions;
use zos_checkpoint::pod::{BindMount, MountPlan, ZOMBIE_MASKS};
use zos_netproto::PublicKey;
use zos_netproto::migration::{Executable, ExportPath, MoveMessage, Offer};
use zos_netproto::mux::Channel;

use super::engine::{self, Decision, ENGINE_LIMIT};
use super::files::{FileStore, HashCache, is_under};
use super::link::{MoveLink, STEP_TIMEOUT};
use super::progress::Progress;
use super::receiver::{self, memory_for_images};
use super::zombie::{Authority, Doubt, Pending, TaskMeta, ZombieMoves};
use crate::error::{DaemonError, Result};

/// How long the zombie waits for the master's `Commit` once it said `Restored`.
const COMMIT_WAIT: Duration = Duration::from_secs(60);

impl ZombieMoves {
    /// Receives `task` on `channel`, opened by the master with `key`.
    pub(super) async fn arrive(
        self: Arc<Self>,
        channel: Channel,
        task: u64,
        key: PublicKey,
        authority: Authority,
    ) {
        let mut link = MoveLink::new(channel, "the master");
        let offer = match link.recv(STEP_TIMEOUT, "an offer").await {
            Ok(MoveMessage::Offer(o)) => o,
            Ok(_) | Err(_) => {
                link.abort("a move starts with an offer").await;
                return;
            }
        };
        let master = match authority(&key) {
            Ok(m) => m,
            Err(reason) => {
                let _ = link.send(&MoveMessage::Refuse { reason }).await;
                return;
            }
        };
        link.peer = master.name.clone();
        if let Err(reason) = self.admit(&offer, task) {
            tracing::info!("refused task {task} from {}: {reason}", master.name);
            let _ = link.send(&MoveMessage::Refuse { reason }).await;
            return;
        }
        let result = self.clone().take_in(&mut link, offer, key).await;
        self.state.lock().moving.remove(&task);
        match result {
            Ok(()) => {}
            Err(e) => {
                tracing::info!("task {task} from {} did not arrive: {e}", master.name);
                link.abort(&e.to_string()).await;
                self.forget(task);
            }
        }
    }

    /// Whether this zombie takes the offer; marks the task as moving.
    fn admit(&self, offer: &Offer, task: u64) -> std::result::Result<(), String> {
        offer.check()?;
        if offer.task != task {
            return Err(format!(
                "the offer names task {} on the channel of task {task}",
                offer.task
            ));
        }
        let memory = memory_for_images();
        if offer.image_hint.saturating_mul(2) > memory {
            return Err(format!(
                "the task needs about {} MiB twice (image and copy); this zombie can give {} MiB",
                offer.image_hint >> 20,
                memory >> 20
            ));
        }
        for e in &offer.exports {
            let source = self.runtime.join("anima").join(&e.name);
            if !source.is_dir() {
                return Err(format!(
                    "the export {} ({}) is not mounted on this zombie",
                    e.name, e.path
                ));
            }
        }
        let mut st = self.state.lock();
        if self.hosted.list().iter().any(|h| h.task == task)
            || st.pending.contains_key(&task)
            || !st.moving.insert(task)
        {
            return Err(format!("a copy of task {task} is already here"));
        }
        Ok(())
    }

    async fn take_in(
        self: Arc<Self>,
        link: &mut MoveLink,
        offer: Offer,
        key: PublicKey,
    ) -> Result<()> {
        let task = offer.task;
        let epoch = offer.epoch;
        let store = FileStore::new(&self.runtime, task);
        let exports = offer.exports.clone();
        let cache = self.cache.clone();
        let need_of = |list: &[Executable]| {
            tokio::task::block_in_place(|| zombie_needs(list, &exports, &store, &cache))
        };
        let need = need_of(&offer.executables);
        link.send(&MoveMessage::Accept { need: need.clone() })
            .await?;
        let progress = Progress::new(task);
        let received = receiver::receive(
            link,
            offer.executables.clone(),
            need,
            &store,
            receiver::ImageSize {
                limit: memory_for_images(),
                hint: offer.image_hint,
            },
            need_of,
            &progress,
        )
        .await?;
        let (substitutions, originals) = substitutions(&received.executables, &exports, &store);
        let mut binds: Vec<BindMount> = exports
            .iter()
            .map(|e| BindMount {
                source: self.runtime.join("anima").join(&e.name),
                target: PathBuf::from(&e.path),
            })
            .collect();
        if !substitutions.is_empty() {
            binds.push(BindMount {
                source: store.dir().to_path_buf(),
                target: store.dir().to_path_buf(),
            });
        }
        let opts = TreeRestoreOptions {
            mounts: MountPlan::zombie(binds),
            substitutions,
            ..Default::default()
        };
        let hosted = self.hosted.clone();
        let adopt: engine::Adopt =
            Box::new(move |tree| hosted.adopt_restored(key, task, epoch, tree));
        tracing::info!("restoring task {task} ({} bytes)", received.image.len());
        let (restored, hold) =
            engine::start_restore(task, received.image, received.base, opts, adopt)?;
        match tokio::time::timeout(ENGINE_LIMIT, restored).await {
            Ok(Ok(Ok(r))) => tracing::info!(
                "task {task} restored (epoch {epoch}): {} process(es), init pid {}, held stopped",
                r.processes,
                r.pid
            ),
            Ok(Ok(Err(e))) => return Err(e),
            _ => return Err(DaemonError::User("the restore did not finish".into())),
        }
        self.state.lock().meta.insert(
            task,
            TaskMeta {
                master: key,
                command: offer.command.clone(),
                exports: exports.clone(),
                originals,
            },
        );
        link.send(&MoveMessage::Restored { epoch }).await.ok();
        match link.recv_raw(COMMIT_WAIT, "the commit").await {
            Ok(MoveMessage::Commit { epoch: e }) if e == epoch => {
                match hold.decide(Decision::Commit).await {
                    Some(Ok(pid)) => {
                        tracing::info!("task {task} runs here (epoch {epoch}), init pid {pid}");
                        let _ = link.send(&MoveMessage::Running { epoch }).await;
                        let every = Duration::from_secs(offer.image_every_s as u64);
                        self.keep_images(task, epoch, key, every);
                    }
                    other => tracing::error!(
                        "task {task} was committed here but could not run: {other:?}"
                    ),
                }
                Ok(())
            }
            Ok(MoveMessage::Abort { reason }) => {
                hold.decide(Decision::Abort).await;
                Err(DaemonError::User(format!(
                    "the master gave up: {}",
                    super::link::bounded(&reason)
                )))
            }
            other => {
                // Did the master commit? Only it knows: keep the copy stopped until it says.
                tracing::warn!(
                    "task {task}: no commit ({other:?}); held stopped for the master's word"
                );
                self.state.lock().pending.insert(
                    task,
                    Pending {
                        master: key,
                        epoch,
                        doubt: Doubt::Uncommitted(hold),
                        deadline: Some(std::time::Instant::now() + self.grace),
                    },
                );
                Ok(())
            }
        }
    }
}

/// Which offered files the zombie needs: not in an export (the same file there), not here
/// already, and either in a place masked in the pod or different from (or missing in) the
/// zombie's own file at that path. Only files any user may read are compared, so an offer
/// learns nothing of the zombie's private files.
fn zombie_needs(
    list: &[Executable],
    exports: &[ExportPath],
    store: &FileStore,
    cache: &HashCache,
) -> Vec<[u8; 32]> {
    let mut need = Vec::new();
    for x in list {
        if exports.iter().any(|e| is_under(&x.path, &e.path))
            || store.has(&x.sha256, x.size)
            || need.contains(&x.sha256)
        {
            continue;
        }
        if !same_here(x, cache) {
            need.push(x.sha256);
        }
    }
    need
}

/// Whether the zombie's own file at `x.path` is what the task maps, and visible in its pod.
fn same_here(x: &Executable, cache: &HashCache) -> bool {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    if ZOMBIE_MASKS.iter().any(|m| is_under(&x.path, m)) {
        return false;
    }
    let Ok(mut f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&x.path)
    else {
        return false;
    };
    let readable_by_all = f
        .metadata()
        .is_ok_and(|m| m.is_file() && m.mode() & 0o004 != 0);
    readable_by_all
        && cache
            .hash(&mut f)
            .is_ok_and(|(sha, size)| sha == x.sha256 && size == x.size)
}

/// The substitutions for the restore (each travelled file in place of its path) and, for the
/// way home, where each came from.
fn substitutions(
    list: &[Executable],
    exports: &[ExportPath],
    store: &FileStore,
) -> (HashMap<String, PathBuf>, HashMap<String, String>) {
    let mut subst = HashMap::new();
    let mut originals = HashMap::new();
    let mut seen = HashSet::new();
    for x in list {
        if exports.iter().any(|e| is_under(&x.path, &e.path)) || !store.has(&x.sha256, x.size) {
            continue;
        }
        let here = store.path_of(&x.sha256);
        subst.insert(x.path.clone(), here.clone());
        if seen.insert(x.sha256) {
            originals.insert(
                here.display().to_string(),
                x.original.clone().unwrap_or(x.path.clone()),
            );
        }
    }
    (subst, originals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::PermissionsExt;

    fn exe(path: &std::path::Path, content: &[u8]) -> Executable {
        Executable {
            path: path.display().to_string(),
            original: None,
            sha256: Sha256::digest(content).into(),
            size: content.len() as u64,
        }
    }

    #[test]
    fn the_zombie_needs_what_its_pod_would_not_see_the_same() {
        // A place no mask hides: the build's target directory.
        let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/zos-needs-test")
            .join(std::process::id().to_string());
        std::fs::create_dir_all(&here).unwrap();
        let same = here.join("same");
        std::fs::write(&same, b"same bytes").unwrap();
        std::fs::set_permissions(&same, std::fs::Permissions::from_mode(0o644)).unwrap();
        let private = here.join("private");
        std::fs::write(&private, b"private bytes").unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
        let changed = here.join("changed");
        std::fs::write(&changed, b"the zombie's version").unwrap();
        std::fs::set_permissions(&changed, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(here.join("runtime")).unwrap();
        let store = FileStore::new(&here.join("runtime"), 9);
        let cache = HashCache::default();
        let offered = [
            exe(&same, b"same bytes"),
            exe(&private, b"private bytes"),
            exe(&changed, b"the master's version"),
            exe(
                std::path::Path::new("/tmp/zos-needs/tool"),
                b"a tool in /tmp",
            ),
            exe(std::path::Path::new("/home/u/work/run.sh"), b"in an export"),
            exe(&here.join("missing"), b"nowhere here"),
        ];
        let exports = [ExportPath {
            name: "work".into(),
            path: "/home/u/work".into(),
        }];
        let need = zombie_needs(&offered, &exports, &store, &cache);
        let wanted = |x: &Executable| need.contains(&x.sha256);
        assert!(
            !wanted(&offered[0]),
            "identical and readable by all: not sent"
        );
        assert!(
            wanted(&offered[1]),
            "not readable by all: never compared, sent"
        );
        assert!(wanted(&offered[2]), "different: sent");
        assert!(wanted(&offered[3]), "under a mask: sent");
        assert!(!wanted(&offered[4]), "in an export: the same file");
        assert!(wanted(&offered[5]), "missing: sent");
        // Once here, a travelled file is reused and substituted; the others are not.
        let mut f = store.incoming(offered[3].sha256, offered[3].size).unwrap();
        f.write(b"a tool in /tmp").unwrap();
        f.finish().unwrap();
        assert!(
            !zombie_needs(&offered[3..4], &exports, &store, &cache).contains(&offered[3].sha256)
        );
        let (subst, originals) = substitutions(&offered, &exports, &store);
        assert_eq!(subst.len(), 1, "{subst:?}");
        let here_path = store.path_of(&offered[3].sha256);
        assert_eq!(subst.get("/tmp/zos-needs/tool"), Some(&here_path));
        assert_eq!(
            originals
                .get(&here_path.display().to_string())
                .map(String::as_str),
            Some("/tmp/zos-needs/tool")
        );
        let _ = std::fs::remove_dir_all(&here);
    }
}
