//! The zombie's rules — idle sessions, the lease, consent, pairing
//! attempts — and the master's domination hand-shake, run against each
//! other over in-memory peers in paused time: no network, no root.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use zos_netproto::pairing::{PendingCode, Side};
use zos_netproto::trust::PeerStore;
use zos_netproto::wire::Message;
use zos_netproto::{Identity, Level};

use super::{Zombie, ZombieConfig};
use crate::admission::Ticket;
use crate::domination::{Dominions, PairedZombie};
use crate::limits::{
    ANSWER_TIMEOUT, CONSENT_TIMEOUT, LEASE, PAIR_ATTEMPTS_PER_KEY, PAIRED_IDLE_TIMEOUT,
    SILENCE_LIMIT, UNPAIRED_IDLE_TIMEOUT, UNPAIRED_SESSION_LIFETIME,
};
use crate::paths::Paths;
use crate::peer::memory::{self, MemoryPeer};
use crate::peer::{Peer, PeerInfo};
use crate::tasks::Tasks;

mod domination;
mod pair_attempts;
mod sessions;
mod user_control;

/// A directory removed when the test ends.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("zos-daemon-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("home")).unwrap();
        std::fs::create_dir_all(dir.join("run")).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A zombie daemon's state, without its listener and advertiser.
pub(super) struct TestZombie {
    zombie: Arc<Zombie>,
    identity: Identity,
    _dir: TempDir,
}

pub(super) fn zombie(auto_accept: bool) -> TestZombie {
    let dir = TempDir::new();
    let paths = Paths {
        home: dir.0.join("home"),
        runtime: dir.0.join("run"),
    };
    let identity = Identity::generate().unwrap();
    let trust = PeerStore::load(&paths.trust()).unwrap();
    let cfg = ZombieConfig {
        paths,
        name: "z1".into(),
        port: 0,
        interfaces: Default::default(),
        levels: vec![Level::Partial, Level::Complete],
        auto_accept,
        open_viewers: false,
        migrant_grace: crate::migration::DEFAULT_GRACE,
        desktop: Default::default(),
        session: Default::default(),
    };
    let listen: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    TestZombie {
        zombie: Zombie::new(
            cfg,
            identity.clone(),
            trust,
            listen,
            CancellationToken::new(),
        ),
        identity,
        _dir: dir,
    }
}

/// A master's identity and where it connects from.
pub(super) struct TestMaster {
    identity: Identity,
    addr: SocketAddr,
}

pub(super) fn master(n: u8) -> TestMaster {
    TestMaster {
        identity: Identity::generate().unwrap(),
        addr: SocketAddr::from(([10, 0, 0, n], 5000)),
    }
}

pub(super) const HASH: [u8; 32] = [7; 32];

impl TestZombie {
    fn trust(&self, m: &TestMaster, name: &str, level: Level) {
        self.zombie
            .trust
            .lock()
            .insert(&m.identity.public(), name, level)
            .unwrap();
    }

    /// A session of `m` with this zombie: the master's end, and the task
    /// running the zombie's.
    fn connect(&self, m: &TestMaster) -> (MemoryPeer, JoinHandle<crate::error::Result<()>>) {
        let (master_end, zombie_end) = memory::pair(
            PeerInfo {
                key: m.identity.public(),
                announced_name: "laptop".into(),
                addr: m.addr,
                handshake_hash: HASH,
            },
            PeerInfo {
                key: self.identity.public(),
                announced_name: "z1".into(),
                addr: "10.0.0.100:4000".parse().unwrap(),
                handshake_hash: HASH,
            },
        );
        let z = self.zombie.clone();
        let task = tokio::spawn(async move {
            let mut peer = zombie_end;
            let ticket = Ticket::detached();
            z.session(&mut peer, &ticket).await
        });
        (master_end, task)
    }
}

pub(super) async fn welcome(peer: &mut MemoryPeer) -> Option<Level> {
    match peer.recv().await.unwrap() {
        Message::Welcome { level } => level,
        other => panic!("expected Welcome, got {other:?}"),
    }
}

/// Receives until the session ends; returns the last message's `Bye`
/// reason, if the zombie said goodbye.
pub(super) async fn until_closed(peer: &mut MemoryPeer) -> Option<String> {
    let mut bye = None;
    while let Ok(m) = peer.recv().await {
        if let Message::Bye { reason } = m {
            bye = Some(reason);
        }
    }
    bye
}

/// A session of `m` that has asked to dominate `z` at level complete.
pub(super) async fn ask_domination(
    z: &TestZombie,
    m: &TestMaster,
) -> (MemoryPeer, JoinHandle<crate::error::Result<()>>) {
    let (mut peer, task) = z.connect(m);
    welcome(&mut peer).await;
    peer.send(&Message::Dominate {
        level: Level::Complete,
    })
    .await
    .unwrap();
    (peer, task)
}

/// Dominates `z` as `m` over a fresh session; the zombie accepts by itself.
pub(super) async fn dominated(
    z: &TestZombie,
    m: &TestMaster,
) -> (MemoryPeer, JoinHandle<crate::error::Result<()>>) {
    let (mut peer, task) = ask_domination(z, m).await;
    assert_eq!(
        peer.recv().await.unwrap(),
        Message::Dominated {
            level: Level::Partial
        }
    );
    match peer.recv().await.unwrap() {
        // An in-memory session carries no channels to mount over.
        Message::MountFailed { .. } => {}
        other => panic!("expected MountFailed, got {other:?}"),
    }
    (peer, task)
}
