//! The zombie role: advertise, accept sessions from paired masters, pair,
//! and be dominated by one master at a time.
//!
//! | module | concept |
//! |---|---|
//! | `mod` | the daemon: listener, advert, state shared by the sessions |
//! | `connection` | one TCP connection: its place under the caps, handshake deadline, displacement |
//! | `session` | one session's loop: what a master may ask, idle timeouts, the lease |
//! | `pairing`, `attempts` | the SPAKE2 exchange; rate limits and the record of failed attempts |
//! | `consent` | asking the user whether a master may dominate; a master's withdrawal |
//! | `dominion` | the dominating master: shares, tasks, letting go |
//! | `migrant_channels` | the channels a master may open here: the migration's, at `complete` |
//! | `release` | the zombie's user ends the domination (`zos release`, tray, status window) |
//! | `viewers`, `helpers` | windows of ours on the user's display: viewers, consent prompt, status window |
//! | `control` | the control socket |
//! | `zos_session`, `session_input` | the ZOS session (Xephyr) and its `input` channel: the master's events injected there only |

mod attempts;
mod connection;
mod consent;
mod control;
mod dominion;
mod helpers;
mod migrant_channels;
mod pairing;
mod release;
mod session;
mod session_input;
mod variant;
mod viewers;
mod zos_session;

#[cfg(test)]
mod tests;

pub(crate) use variant::variant;
pub use zos_session::{SessionConfig, SessionEnv};

pub use crate::limits::{CONSENT_TIMEOUT, LEASE};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use zos_netproto::control::{SessionInfo, StatusInfo};
use zos_netproto::discovery::{Advert, Advertiser, Interfaces};
use zos_netproto::pairing::PendingCode;
use zos_netproto::trust::PeerStore;
use zos_netproto::wire::Role;
use zos_netproto::{Identity, Level, PublicKey};

use crate::accept::{LogLimiter, accept_loop};
use crate::admission::{Admission, Caps};
use crate::control_server;
use crate::error::{DaemonError, Result};
use crate::limits;
use crate::paths::Paths;
use crate::sysinfo;
use attempts::PairAttempts;
use dominion::Dominion;
use pairing::code_info;

/// How a zombie is configured.
#[derive(Clone, Debug)]
pub struct ZombieConfig {
    /// Its directories.
    pub paths: Paths,
    /// Instance name shown to masters.
    pub name: String,
    /// TCP port for sessions (0: any free port).
    pub port: u16,
    /// mDNS interfaces.
    pub interfaces: Interfaces,
    /// Control levels offered.
    pub levels: Vec<Level>,
    /// Accept every domination by a trusted master without asking the
    /// user (unattended hosts).
    pub auto_accept: bool,
    /// Open a viewer window for each shared app of the dominating master by
    /// itself (`viewers = true` in `zombie.toml`); otherwise only when the
    /// user asks (the consent prompt, the tray, `zos view`).
    pub open_viewers: bool,
    /// How long migrants wait, stopped, for a master that went away
    /// (`migrant_grace` in zombie.toml).
    pub migrant_grace: Duration,
    /// What of its user's desktop this zombie can reach.
    pub desktop: Desktop,
    /// The ZOS session: whether and how it opens, and whether the master's
    /// input may drive it.
    pub session: SessionConfig,
}

/// What of its user's desktop a zombie daemon can reach (from its
/// environment).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Desktop {
    /// A display (`DISPLAY`): viewers, the consent prompt's window, the
    /// status window.
    pub display: bool,
    /// A D-Bus session bus (`DBUS_SESSION_BUS_ADDRESS`): desktop
    /// notifications.
    pub session_bus: bool,
    /// Open the status window when a domination begins (`status_window` in
    /// `zombie.toml`).
    pub status_window: bool,
}

impl Desktop {
    /// What the environment offers, with the status window as `status_window` says.
    pub fn from_env(status_window: bool) -> Desktop {
        let set = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
        Desktop {
            display: set("DISPLAY"),
            session_bus: set("DBUS_SESSION_BUS_ADDRESS"),
            status_window,
        }
    }

    /// Whether the user can be asked on the desktop at all.
    pub fn any(&self) -> bool {
        self.display || self.session_bus
    }
}

/// How often the advertisement is refreshed with current load and memory.
const ADVERT_REFRESH: Duration = Duration::from_secs(3);

struct LiveSession {
    id: u64,
    master: PublicKey,
    /// The name the master was paired under, or the one it gives itself
    /// while unpaired.
    master_name: String,
    paired: bool,
    addr: SocketAddr,
    started: Instant,
    cancel: CancellationToken,
}

/// A running zombie daemon's state.
pub struct Zombie {
    cfg: ZombieConfig,
    identity: Identity,
    trust: Mutex<PeerStore>,
    pending: Mutex<Option<PendingCode>>,
    attempts: Mutex<PairAttempts>,
    sessions: Mutex<Vec<LiveSession>>,
    /// The master dominating this zombie, if any (one at a time).
    dominion: Mutex<Option<Dominion>>,
    /// A domination request waiting for the user's answer.
    asking: Mutex<Option<consent::Ask>>,
    /// Wakes the advertiser when what it says has changed.
    advert_changed: tokio::sync::Notify,
    /// The migrants this zombie runs for its master (the mover's, see
    /// [`crate::migrants::HostedPods`]).
    pub hosted: Arc<crate::migrants::HostedPods>,
    /// Migrants arriving, leaving, and held for a master that went away.
    pub moves: Arc<crate::migration::ZombieMoves>,
    /// Whether the user allows the master's input into the ZOS session.
    input_allowed: tokio::sync::watch::Sender<bool>,
    next_session: AtomicU64,
    listen: SocketAddr,
    shutdown: CancellationToken,
}

/// Runs a zombie daemon until `shutdown` is cancelled.
pub async fn run(cfg: ZombieConfig, shutdown: CancellationToken) -> Result<()> {
    crate::rlimit::raise_descriptor_limit();
    let identity = Identity::load_or_create(&cfg.paths.identity())?;
    let trust = PeerStore::load(&cfg.paths.trust())?;
    let listener = TcpListener::bind(("0.0.0.0", cfg.port))
        .await
        .map_err(|e| DaemonError::io(format!("listen on port {}", cfg.port), e))?;
    let listen = listener
        .local_addr()
        .map_err(|e| DaemonError::io("listener address", e))?;
    let socket = cfg.paths.socket();
    let control = control_server::bind(&socket)?;
    let zombie = Zombie::new(cfg, identity, trust, listen, shutdown.clone());
    let mut advertiser = Advertiser::start(zombie.advert(), &zombie.cfg.interfaces)?;
    tracing::info!("listening on {listen}");
    tracing::info!(
        "zombie {} ready, fingerprint {}, control socket {}",
        zombie.cfg.name,
        zombie.identity.public().fingerprint(),
        socket.display()
    );
    tokio::spawn(control_server::serve(
        control,
        socket,
        zombie.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(zombie.clone().listen(listener));
    let mut refresh = tokio::time::interval(ADVERT_REFRESH);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = refresh.tick() => {}
            _ = zombie.advert_changed.notified() => {}
        }
        if let Err(e) = advertiser.update(zombie.advert()) {
            tracing::warn!("refreshing mDNS advertisement: {e}");
        }
    }
    zombie.end_sessions(|_| true, "the zombie is shutting down");
    tokio::task::spawn_blocking(move || advertiser.stop())
        .await
        .ok();
    tokio::time::sleep(Duration::from_millis(100)).await;
    tracing::info!("zombie stopped");
    Ok(())
}

impl Zombie {
    fn new(
        cfg: ZombieConfig,
        identity: Identity,
        trust: PeerStore,
        listen: SocketAddr,
        shutdown: CancellationToken,
    ) -> Arc<Zombie> {
        let hosted = crate::migrants::HostedPods::new(shutdown.clone());
        let moves = crate::migration::ZombieMoves::new(
            hosted.clone(),
            cfg.paths.runtime.clone(),
            cfg.migrant_grace,
            shutdown.clone(),
        );
        Arc::new(Zombie {
            identity,
            trust: Mutex::new(trust),
            pending: Mutex::new(None),
            attempts: Mutex::new(PairAttempts::default()),
            sessions: Mutex::new(Vec::new()),
            dominion: Mutex::new(None),
            asking: Mutex::new(None),
            advert_changed: tokio::sync::Notify::new(),
            hosted,
            moves,
            input_allowed: tokio::sync::watch::Sender::new(cfg.session.allow_input),
            next_session: AtomicU64::new(1),
            listen,
            shutdown,
            cfg,
        })
    }

    /// Accepts connections on the session port, each under the caps of
    /// [`crate::limits`]; those over a cap are closed at once.
    async fn listen(self: Arc<Self>, listener: TcpListener) {
        let admission = Admission::new(Caps::ZOMBIE);
        let mut refusals = LogLimiter::new(limits::REFUSAL_LOG_INTERVAL);
        let shutdown = self.shutdown.clone();
        accept_loop(&listener, "session port", &shutdown, |stream, addr| {
            match admission.admit(addr.ip()) {
                Ok(ticket) => {
                    tokio::spawn(self.clone().serve_connection(stream, addr, ticket));
                }
                Err(why) => {
                    drop(stream);
                    if let Some(left_out) = refusals.allow(tokio::time::Instant::now()) {
                        let (all, unpaired) = admission.counts();
                        tracing::warn!(
                            "refused a connection from {addr}: {why} ({all} held, {unpaired} of them unpaired; {left_out} more refusals not logged)"
                        );
                    }
                }
            }
        })
        .await;
    }

    fn advert(&self) -> Advert {
        Advert {
            name: self.cfg.name.clone(),
            host: sysinfo::hostname(),
            fingerprint: self.identity.public().fingerprint().0,
            port: self.listen.port(),
            cores: sysinfo::cores(),
            load1: (sysinfo::load1() * 10.0).round() / 10.0,
            mem_free_mib: sysinfo::mem_available_mib() / 16 * 16,
            levels: self.cfg.levels.clone(),
            dominated: self
                .dominion
                .lock()
                .as_ref()
                .map(|d| zos_netproto::discovery::Domination {
                    master: d.master_name.clone(),
                    level: d.level,
                }),
        }
    }

    /// The level `key`'s trust entry grants, if it has one.
    fn trusted_level(&self, key: &PublicKey) -> Option<Level> {
        self.trust.lock().get(key).map(|e| e.level)
    }

    /// The name `key` was paired under, if it is paired.
    fn paired_name(&self, key: &PublicKey) -> Option<String> {
        self.trust.lock().get(key).map(|e| e.name.clone())
    }

    pub(super) fn not_paired(&self) -> String {
        format!(
            "this master is not paired with zombie {}: run `zos pair-code` on the zombie, then `zos pair {} --code CODE` on the master",
            self.cfg.name, self.cfg.name
        )
    }

    fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    fn end_sessions(&self, which: impl Fn(&LiveSession) -> bool, why: &str) -> usize {
        let sessions = self.sessions.lock();
        let mut n = 0;
        for s in sessions.iter().filter(|s| which(s)) {
            tracing::info!("ending session {} with {}: {why}", s.id, s.master_name);
            s.cancel.cancel();
            n += 1;
        }
        n
    }

    fn status(&self) -> StatusInfo {
        let pairing = self
            .pending
            .lock()
            .as_ref()
            .filter(|c| c.usable())
            .map(code_info);
        StatusInfo {
            role: Role::Zombie,
            name: self.cfg.name.clone(),
            fingerprint: self.identity.public().fingerprint().0,
            listen: Some(self.listen.to_string()),
            trusted: self.trust.lock().entries().len(),
            pairing,
            asking: self.ask_info(),
            sessions: self
                .sessions
                .lock()
                .iter()
                .filter(|s| s.paired)
                .map(|s| SessionInfo {
                    peer: s.master_name.clone(),
                    fingerprint: s.master.fingerprint().0,
                    addr: s.addr.to_string(),
                    age_s: s.started.elapsed().as_secs(),
                    dominating: self.dominion_level(s.id),
                    mount: self.mount_of(s.id),
                    driven: false,
                })
                .collect(),
            pairing_attempts: self.attempts.lock().recent(tokio::time::Instant::now()),
            session: self.zos_session_info(),
        }
    }
}
