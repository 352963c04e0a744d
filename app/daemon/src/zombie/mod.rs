//! The zombie role: advertise, accept sessions from paired masters, pair,
//! and be dominated by one master at a time.

mod control;
mod dominion;
mod pairing;
mod variant;
mod viewers;

pub(crate) use variant::variant;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use zos_netproto::control::{SessionInfo, StatusInfo};
use zos_netproto::discovery::{Advert, Advertiser, Interfaces};
use zos_netproto::pairing::PendingCode;
use zos_netproto::session::Session;
use zos_netproto::trust::PeerStore;
use zos_netproto::wire::{Message, Role};
use zos_netproto::{Error as NetError, Identity, Level, PublicKey};

use crate::control_server;
use crate::error::{DaemonError, Result};
use crate::paths::Paths;
use crate::sysinfo;
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
    /// Open a viewer window on this machine's display for each shared app
    /// of the dominating master.
    pub open_viewers: bool,
}

/// How often the advertisement is refreshed with current load and memory.
const ADVERT_REFRESH: Duration = Duration::from_secs(3);
/// How long a master may take between pairing steps.
const PAIR_STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the zombie's user has to accept a domination.
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(45);
/// A dominating master that says nothing for this long has lost its lease:
/// the zombie ends the session and cleans up by itself.
pub const LEASE: Duration = Duration::from_secs(10);

struct LiveSession {
    id: u64,
    master: PublicKey,
    master_name: String,
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
    sessions: Mutex<Vec<LiveSession>>,
    /// The master dominating this zombie, if any (one at a time).
    dominion: Mutex<Option<Dominion>>,
    /// A domination request waiting for the user's answer.
    asking: Mutex<Option<dominion::Ask>>,
    /// Wakes the advertiser when what it says has changed.
    advert_changed: tokio::sync::Notify,
    next_session: AtomicU64,
    listen: SocketAddr,
    shutdown: CancellationToken,
}

/// Runs a zombie daemon until `shutdown` is cancelled.
pub async fn run(cfg: ZombieConfig, shutdown: CancellationToken) -> Result<()> {
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
    let zombie = Arc::new(Zombie {
        identity,
        trust: Mutex::new(trust),
        pending: Mutex::new(None),
        sessions: Mutex::new(Vec::new()),
        dominion: Mutex::new(None),
        asking: Mutex::new(None),
        advert_changed: tokio::sync::Notify::new(),
        next_session: AtomicU64::new(1),
        listen,
        shutdown: shutdown.clone(),
        cfg,
    });
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
    let mut refresh = tokio::time::interval(ADVERT_REFRESH);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = refresh.tick() => {
                if let Err(e) = advertiser.update(zombie.advert()) {
                    tracing::warn!("refreshing mDNS advertisement: {e}");
                }
            }
            _ = zombie.advert_changed.notified() => {
                if let Err(e) = advertiser.update(zombie.advert()) {
                    tracing::warn!("refreshing mDNS advertisement: {e}");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    tokio::spawn(zombie.clone().serve_connection(stream, addr));
                }
                Err(e) => tracing::warn!("accept: {e}"),
            }
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

    async fn serve_connection(self: Arc<Self>, stream: TcpStream, addr: SocketAddr) {
        match self.session(stream, addr).await {
            Ok(()) => {}
            Err(DaemonError::Net(NetError::Closed(reason)))
                if reason.contains("during handshake") =>
            {
                tracing::debug!("connection from {addr} closed before a handshake (probe)");
            }
            Err(DaemonError::Net(NetError::Closed(reason))) => {
                tracing::info!("connection from {addr} closed: {reason}");
            }
            Err(e) => tracing::warn!("connection from {addr} dropped: {e}"),
        }
    }

    fn trusted_level(&self, key: &PublicKey) -> Option<Level> {
        self.trust.lock().get(key).map(|e| e.level)
    }

    async fn session(self: &Arc<Self>, stream: TcpStream, addr: SocketAddr) -> Result<()> {
        let mut session =
            Session::accept(stream, &self.identity, Role::Zombie, &self.cfg.name).await?;
        if session.remote_role != Role::Master {
            session
                .send(&Message::Refused {
                    reason: "zombies only accept sessions from masters".into(),
                })
                .await?;
            session.mux.close();
            return Ok(());
        }
        let mut level = self.trusted_level(&session.remote);
        session.send(&Message::Welcome { level }).await?;
        let cancel = CancellationToken::new();
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        self.sessions.lock().push(LiveSession {
            id,
            master: session.remote,
            master_name: session.remote_name.clone(),
            addr,
            started: Instant::now(),
            cancel: cancel.clone(),
        });
        tracing::info!(
            "session {id} from master {} ({}) at {addr}, {}",
            session.remote_name,
            session.remote.fingerprint(),
            level
                .map(|l| format!("paired, level {l}"))
                .unwrap_or_else(|| "not paired".into())
        );
        let result = self
            .session_loop(id, &mut session, &mut level, &cancel)
            .await;
        self.sessions.lock().retain(|s| s.id != id);
        if let Some(dominion) = self.take_dominion(id) {
            let why = match &result {
                Ok(()) => "the session ended".to_string(),
                Err(e) => format!("the session was lost ({e})"),
            };
            self.let_go(dominion, &why).await;
        }
        session.mux.close();
        tracing::info!("session {id} ended");
        result
    }

    async fn session_loop(
        &self,
        id: u64,
        session: &mut Session,
        level: &mut Option<Level>,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let mut last_heard = tokio::time::Instant::now();
        loop {
            let dominated = self.dominated_by(id);
            let lease_end = last_heard + LEASE;
            let msg = tokio::select! {
                _ = cancel.cancelled() => {
                    let reason = if self.shutdown.is_cancelled() {
                        "the zombie is shutting down".to_string()
                    } else {
                        format!("this master's key was revoked on {}", self.cfg.name)
                    };
                    let _ = session.send(&Message::Bye { reason }).await;
                    return Ok(());
                }
                _ = tokio::time::sleep_until(lease_end), if dominated => {
                    tracing::warn!(
                        "session {id}: the dominating master said nothing for {} s; its lease ended",
                        LEASE.as_secs()
                    );
                    session.mux.abort("lease expired");
                    return Ok(());
                }
                m = session.recv() => m?,
            };
            last_heard = tokio::time::Instant::now();
            match msg {
                Message::Ping { seq } => {
                    // The trust store is authoritative on every request.
                    *level = self.trusted_level(&session.remote);
                    if level.is_none() {
                        session
                            .send(&Message::Refused {
                                reason: self.not_paired(),
                            })
                            .await?;
                        return Ok(());
                    }
                    session.send(&Message::Pong { seq }).await?;
                }
                Message::PairStart { name, spake } => {
                    if let Some(granted) = self.pair(session, &name, &spake).await? {
                        *level = Some(granted);
                    }
                }
                Message::Dominate { level: asked } => {
                    *level = self.trusted_level(&session.remote);
                    match self.decide_domination(id, session, asked, *level).await? {
                        Ok(granted) => {
                            session.send(&Message::Dominated { level: granted }).await?;
                            self.mount_share(id, session).await?;
                        }
                        Err(reason) => {
                            session.send(&Message::Refused { reason }).await?;
                            return Ok(());
                        }
                    }
                }
                Message::Tasks { tasks } if dominated => {
                    let viewers = self.set_master_tasks(id, tasks);
                    session.send(&Message::Shown { viewers }).await?;
                }
                Message::Release { reason } if dominated => {
                    if let Some(dominion) = self.take_dominion(id) {
                        self.let_go(dominion, &format!("released by the master ({reason})"))
                            .await;
                    }
                    session.send(&Message::Released).await?;
                }
                Message::Bye { .. } => return Ok(()),
                other => {
                    session
                        .send(&Message::Refused {
                            reason: format!("unexpected message {}", variant(&other)),
                        })
                        .await?;
                    return Ok(());
                }
            }
        }
    }

    pub(super) fn not_paired(&self) -> String {
        format!(
            "this master is not paired with zombie {}: run `zos pair-code` on the zombie, then `zos pair {} --code CODE` on the master",
            self.cfg.name, self.cfg.name
        )
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
                .map(|s| SessionInfo {
                    peer: s.master_name.clone(),
                    fingerprint: s.master.fingerprint().0,
                    addr: s.addr.to_string(),
                    age_s: s.started.elapsed().as_secs(),
                    dominating: self.dominion_level(s.id),
                    mount: self.mount_of(s.id),
                })
                .collect(),
        }
    }
}
