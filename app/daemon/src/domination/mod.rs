//! The master's side of domination: one long-lived session per dominated
//! zombie.
//!
//! | module | concept |
//! |---|---|
//! | `mod` | [`Dominions`]: the zombies this master holds, by key; release, shutdown |
//! | `handshake` | `Dominate → [Asking] → Dominated`, the mount, the task list; the breakdown (zt, fs, xt) |
//! | `driver` | the kept session: task-list changes, pings (the lease), silence, `Release → Released` |
//! | `channels` | the channels a dominated zombie opens: the file service (policy by the name it was paired under), views |
//!
//! A zombie is known by the key and name it was paired under (the
//! master's `zombies.toml`), never by the name it gives itself.

mod channels;
mod driver;
mod handshake;

pub use handshake::{Dominated, Progress};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use zos_netproto::mux::{Channel, Mux};
use zos_netproto::{Level, PublicKey};

use crate::error::{DaemonError, Result};
use crate::limits::RELEASE_TIMEOUT;
use crate::migration::HomeChannels;
use crate::tasks::Tasks;

pub use crate::limits::{KEEPALIVE, SILENCE_LIMIT};

/// A zombie this master has paired with, as its `zombies.toml` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairedZombie {
    /// The name it was paired under.
    pub name: String,
    /// Its key.
    pub key: PublicKey,
}

/// One dominated zombie.
struct Dominion {
    zombie: PairedZombie,
    level: Level,
    addr: std::net::SocketAddr,
    started: Instant,
    release: CancellationToken,
    /// Fires when the driver has finished (the zombie is free).
    ended: Option<oneshot::Receiver<()>>,
    /// The session's channels (the mover opens its channels here).
    mux: Option<Mux>,
}

/// A dominated zombie's session, as the mover needs it.
#[derive(Clone)]
pub struct DominionSession {
    /// The zombie.
    pub zombie: PairedZombie,
    /// The level granted.
    pub level: Level,
    /// The session's channels.
    pub mux: Mux,
    /// When the domination began (tells two sessions with the same zombie apart).
    pub started: Instant,
}

/// What `zos status` shows of a dominion.
#[derive(Clone, Debug)]
pub struct DominionInfo {
    /// The name the zombie was paired under.
    pub name: String,
    /// Its key.
    pub key: PublicKey,
    /// The level granted.
    pub level: Level,
    /// Since when.
    pub started: Instant,
    /// The zombie's address.
    pub addr: std::net::SocketAddr,
}

/// Called with a zombie whose domination it ended itself (`Bye`).
pub type OnZombieEnded = Box<dyn Fn(PairedZombie) + Send + Sync>;

/// Called with a dominated zombie whose user ended the domination (its
/// `Release`) and the reason it gave: the master runs its release.
pub type OnReleaseAsked = Box<dyn Fn(PairedZombie, String) + Send + Sync>;

/// The zombies this master dominates, by key.
pub struct Dominions {
    tasks: Arc<Tasks>,
    on_zombie_ended: Mutex<Option<OnZombieEnded>>,
    on_release_asked: Mutex<Option<OnReleaseAsked>>,
    /// The export list (`exports.toml`), read afresh for each zombie.
    exports: PathBuf,
    shutdown: CancellationToken,
    live: Mutex<BTreeMap<PublicKey, Dominion>>,
    /// The `home/<task>` channels the mover waits for.
    pub home_channels: Arc<HomeChannels>,
    /// Takes the `input` channels of the zombies' ZOS sessions.
    input: std::sync::OnceLock<Arc<crate::master::Drive>>,
    /// Takes the `image/<task>` channels (snapshots of migrants a zombie sends home).
    images: std::sync::OnceLock<ImageSink>,
}

/// Takes a zombie's `image/<task>` channel: (task, the zombie's key and name, channel).
pub type ImageSink = Box<dyn Fn(u64, PublicKey, String, Channel) + Send + Sync>;

impl Dominions {
    /// No dominions yet; every one ends when `shutdown` is cancelled.
    /// `exports` is the master's export list file.
    pub fn new(tasks: Arc<Tasks>, exports: PathBuf, shutdown: CancellationToken) -> Arc<Dominions> {
        Arc::new(Dominions {
            tasks,
            on_zombie_ended: Mutex::new(None),
            on_release_asked: Mutex::new(None),
            exports,
            shutdown,
            live: Mutex::new(BTreeMap::new()),
            home_channels: Arc::new(HomeChannels::default()),
            input: std::sync::OnceLock::new(),
            images: std::sync::OnceLock::new(),
        })
    }

    /// Who takes the zombies' `image/<task>` channels (the mover).
    pub fn set_image_sink(&self, sink: ImageSink) {
        let _ = self.images.set(sink);
    }

    /// The session of the dominated zombie `query` (paired name or fingerprint prefix).
    pub fn session(&self, query: &str) -> Option<DominionSession> {
        let key = self.find(query)?;
        self.session_of(&key)
    }

    /// The session of the dominated zombie with `key`.
    pub fn session_of(&self, key: &PublicKey) -> Option<DominionSession> {
        let live = self.live.lock();
        let d = live.get(key)?;
        Some(DominionSession {
            zombie: d.zombie.clone(),
            level: d.level,
            mux: d.mux.clone()?,
            started: d.started,
        })
    }

    /// Has `f` called with each zombie that ends its domination itself
    /// (it says `Bye`: shutting down, or its user revoked this master).
    pub fn on_zombie_ended(&self, f: OnZombieEnded) {
        *self.on_zombie_ended.lock() = Some(f);
    }

    /// Has `f` called when a dominated zombie's user ends the domination:
    /// `f` runs the master's release (the same as `zos release` there, so
    /// migrants come home first). Without it the driver releases the
    /// zombie itself.
    pub fn on_release_asked(&self, f: OnReleaseAsked) {
        *self.on_release_asked.lock() = Some(f);
    }

    /// Hands the zombies' `input` channels to `drive` from now on.
    pub fn set_input(&self, drive: Arc<crate::master::Drive>) {
        let _ = self.input.set(drive);
    }

    /// Whether the zombie with `key` is dominated by us, and at what level.
    pub fn level_of(&self, key: &PublicKey) -> Option<Level> {
        self.live.lock().get(key).map(|d| d.level)
    }

    /// Every live dominion.
    pub fn list(&self) -> Vec<DominionInfo> {
        self.live
            .lock()
            .values()
            .map(|d| DominionInfo {
                name: d.zombie.name.clone(),
                key: d.zombie.key,
                level: d.level,
                started: d.started,
                addr: d.addr,
            })
            .collect()
    }

    /// Finds a dominion by the zombie's paired name or key fingerprint
    /// prefix.
    pub fn find(&self, query: &str) -> Option<PublicKey> {
        let live = self.live.lock();
        live.values()
            .find(|d| d.zombie.name == query || d.zombie.key.fingerprint().matches(query))
            .map(|d| d.zombie.key)
    }

    /// Releases the zombie with `key` and waits until it has let go.
    pub async fn release(&self, key: &PublicKey) -> Result<String> {
        let (name, ended) = {
            let mut live = self.live.lock();
            let Some(d) = live.get_mut(key) else {
                return Err(DaemonError::User(
                    "that zombie is not dominated by this master".into(),
                ));
            };
            d.release.cancel();
            (d.zombie.name.clone(), d.ended.take())
        };
        if let Some(ended) = ended {
            let _ = tokio::time::timeout(RELEASE_TIMEOUT + Duration::from_secs(1), ended).await;
        }
        Ok(name)
    }

    /// Waits (up to `limit`) until every dominion has ended after a shutdown.
    pub async fn wait_all_ended(&self, limit: Duration) {
        let end = tokio::time::Instant::now() + limit;
        while !self.live.lock().is_empty() && tokio::time::Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
