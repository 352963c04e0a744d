//! The zombie role: advertise, accept sessions from paired masters, pair.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use zos_netproto::control::{PairCodeInfo, Reply, Request, SessionInfo, StatusInfo};
use zos_netproto::discovery::{Advert, Advertiser, Interfaces};
use zos_netproto::pairing::{self, PendingCode, Side};
use zos_netproto::session::Session;
use zos_netproto::trust::PeerStore;
use zos_netproto::wire::{Message, Role};
use zos_netproto::{Error as NetError, Identity, Level, PublicKey};

use crate::control_server::{self, Handler, Replies};
use crate::error::{DaemonError, Result};
use crate::paths::Paths;
use crate::sysinfo;

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
}

/// How often the advertisement is refreshed with current load and memory.
const ADVERT_REFRESH: Duration = Duration::from_secs(3);
/// How long a master may take between pairing steps.
const PAIR_STEP_TIMEOUT: Duration = Duration::from_secs(30);

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
        self.trust.lock().expect("trust").get(key).map(|e| e.level)
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
        self.sessions.lock().expect("sessions").push(LiveSession {
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
        let result = self.session_loop(&mut session, &mut level, &cancel).await;
        self.sessions
            .lock()
            .expect("sessions")
            .retain(|s| s.id != id);
        session.mux.close();
        tracing::info!("session {id} ended");
        result
    }

    async fn session_loop(
        &self,
        session: &mut Session,
        level: &mut Option<Level>,
        cancel: &CancellationToken,
    ) -> Result<()> {
        loop {
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
                m = session.recv() => m?,
            };
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

    fn not_paired(&self) -> String {
        format!(
            "this master is not paired with zombie {}: run `zos pair-code` on the zombie, then `zos pair {} --code CODE` on the master",
            self.cfg.name, self.cfg.name
        )
    }

    /// Runs the zombie's side of pairing; returns the level granted.
    async fn pair(
        &self,
        session: &mut Session,
        master_name: &str,
        spake: &[u8],
    ) -> Result<Option<Level>> {
        let taken: std::result::Result<(String, Level), String> = {
            let mut pending = self.pending.lock().expect("pending code");
            match pending.as_mut() {
                None => Err(format!(
                    "no pairing code is active on {}: run `zos pair-code` there first",
                    self.cfg.name
                )),
                Some(code) => match code.take_attempt() {
                    Ok(()) => Ok((code.code().to_string(), code.level())),
                    Err(e) => {
                        *pending = None;
                        Err(e.to_string())
                    }
                },
            }
        };
        let (code, level) = match taken {
            Ok(x) => x,
            Err(reason) => {
                session.send(&Message::PairFailed { reason }).await?;
                return Ok(None);
            }
        };
        let me = self.identity.public();
        let (key, challenge) = match pairing::zombie_respond(&code, &session.remote, &me, spake) {
            Ok(x) => x,
            Err(e) => {
                session
                    .send(&Message::PairFailed {
                        reason: e.to_string(),
                    })
                    .await?;
                return Ok(None);
            }
        };
        session
            .send(&Message::PairChallenge { spake: challenge })
            .await?;
        let confirm = tokio::time::timeout(PAIR_STEP_TIMEOUT, session.recv())
            .await
            .map_err(|_| DaemonError::User("master did not confirm pairing in time".into()))??;
        let Message::PairConfirm { mac } = confirm else {
            return Err(DaemonError::User(format!(
                "expected PairConfirm, got {}",
                variant(&confirm)
            )));
        };
        if !pairing::verify_confirmation(&key, Side::Master, &session.handshake_hash, &mac) {
            let left = {
                let mut pending = self.pending.lock().expect("pending code");
                let left = pending.as_ref().map(|c| c.attempts_left()).unwrap_or(0);
                if left == 0 {
                    *pending = None;
                }
                left
            };
            tracing::warn!(
                "pairing attempt by {} with a wrong code ({left} attempts left)",
                session.remote.fingerprint()
            );
            let reason = if left == 0 {
                "wrong code; it was the third try, so the code is no longer valid: make a new one with `zos pair-code`".to_string()
            } else {
                format!(
                    "wrong code ({left} {} left)",
                    if left == 1 { "attempt" } else { "attempts" }
                )
            };
            session.send(&Message::PairFailed { reason }).await?;
            return Ok(None);
        }
        self.trust
            .lock()
            .expect("trust")
            .insert(&session.remote, master_name, level)?;
        *self.pending.lock().expect("pending code") = None;
        tracing::info!(
            "paired with master {master_name} ({}), level {level}",
            session.remote.fingerprint()
        );
        let mac = pairing::confirmation(&key, Side::Zombie, &session.handshake_hash);
        session.send(&Message::PairDone { level, mac }).await?;
        Ok(Some(level))
    }

    fn end_sessions(&self, which: impl Fn(&LiveSession) -> bool, why: &str) -> usize {
        let sessions = self.sessions.lock().expect("sessions");
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
            .expect("pending code")
            .as_ref()
            .filter(|c| c.usable())
            .map(code_info);
        StatusInfo {
            role: Role::Zombie,
            name: self.cfg.name.clone(),
            fingerprint: self.identity.public().fingerprint().0,
            listen: Some(self.listen.to_string()),
            trusted: self.trust.lock().expect("trust").entries().len(),
            pairing,
            sessions: self
                .sessions
                .lock()
                .expect("sessions")
                .iter()
                .map(|s| SessionInfo {
                    peer: s.master_name.clone(),
                    fingerprint: s.master.fingerprint().0,
                    addr: s.addr.to_string(),
                    age_s: s.started.elapsed().as_secs(),
                })
                .collect(),
        }
    }
}

fn code_info(c: &PendingCode) -> PairCodeInfo {
    PairCodeInfo {
        code: c.code().to_string(),
        level: c.level(),
        expires_in_s: c.remaining().as_secs(),
        attempts_left: c.attempts_left(),
    }
}

/// The name of a message's variant, for error texts (never its contents).
pub(crate) fn variant(m: &Message) -> &'static str {
    match m {
        Message::Hello { .. } => "Hello",
        Message::Welcome { .. } => "Welcome",
        Message::Refused { .. } => "Refused",
        Message::PairStart { .. } => "PairStart",
        Message::PairChallenge { .. } => "PairChallenge",
        Message::PairConfirm { .. } => "PairConfirm",
        Message::PairDone { .. } => "PairDone",
        Message::PairFailed { .. } => "PairFailed",
        Message::Ping { .. } => "Ping",
        Message::Pong { .. } => "Pong",
        Message::Bye { .. } => "Bye",
    }
}

impl Handler for Zombie {
    async fn handle(self: Arc<Self>, request: Request, _out: &mut Replies) -> Reply {
        match request {
            Request::Status => Reply::Status(self.status()),
            Request::PairCode { level } => {
                if !self.cfg.levels.contains(&level) {
                    return Reply::Error {
                        message: format!("this zombie does not offer level {level} (see --levels)"),
                    };
                }
                let code = PendingCode::issue(level);
                let info = code_info(&code);
                *self.pending.lock().expect("pending code") = Some(code);
                tracing::info!(
                    "pairing code issued for level {level}, valid {} s",
                    info.expires_in_s
                );
                Reply::PairCode(info)
            }
            Request::TrustList => Reply::Trust {
                entries: self.trust.lock().expect("trust").entries().to_vec(),
            },
            Request::TrustRevoke { what } => {
                let removed = match self.trust.lock().expect("trust").remove(&what) {
                    Ok(r) => r,
                    Err(e) => {
                        return Reply::Error {
                            message: e.to_string(),
                        };
                    }
                };
                if removed.is_empty() {
                    return Reply::Error {
                        message: format!(
                            "no trusted master matches {what:?} (see `zos trust list`)"
                        ),
                    };
                }
                let keys: Vec<PublicKey> =
                    removed.iter().filter_map(|e| e.public_key().ok()).collect();
                let sessions_ended =
                    self.end_sessions(|s| keys.contains(&s.master), "its key was revoked");
                Reply::Revoked {
                    entries: removed,
                    sessions_ended,
                }
            }
            Request::Shutdown => {
                self.shutdown.cancel();
                Reply::Done
            }
            Request::Hosts
            | Request::Pair { .. }
            | Request::Ping { .. }
            | Request::Run { .. }
            | Request::Tasks => Reply::Error {
                message:
                    "this is a zombie daemon; run that command against a master (`zos master`)"
                        .into(),
            },
        }
    }
}
