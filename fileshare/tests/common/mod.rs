//! A real share for tests: two Noise sessions on loopback, a server on a
//! temporary master directory, a FUSE mount in a temporary directory. The
//! [`Share`] guard unmounts and removes everything on drop, also when the
//! test panics; it never recurses into a mount that is still there.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use zos_fileshare::{Export, ExportPolicy, Mount};
use zos_netproto::Identity;
use zos_netproto::session::Session;
use zos_netproto::wire::Role;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh directory under the system temp dir, removed by [`TempTree`].
pub struct TempTree(pub PathBuf);

impl TempTree {
    pub fn new(tag: &str) -> TempTree {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("zos-fs-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempTree(std::fs::canonicalize(&dir).unwrap())
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        // Never walk into a mount left behind.
        for m in mounts_under(&self.0) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&m)
                .status();
        }
        if mounts_under(&self.0).is_empty() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            eprintln!("leaving {} behind: still mounted", self.0.display());
        }
    }
}

/// Mount points at or below `dir` (from /proc/self/mountinfo).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// Connects a master session to a zombie session on loopback.
pub async fn pair_of_sessions() -> (Session, Session) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let zid = Identity::generate().unwrap();
    let mid = Identity::generate().unwrap();
    let zombie = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        Session::accept(s, &zid, Role::Zombie, "z").await.unwrap()
    });
    let m = Session::connect(addr, &mid, Role::Master, "m")
        .await
        .unwrap();
    (m, zombie.await.unwrap())
}

/// A running share. Field order is drop order: mount, then sessions and
/// runtime, then the directories.
pub struct Share {
    pub mount: Option<Mount>,
    pub server: Option<tokio::task::JoinHandle<zos_fileshare::Result<()>>>,
    pub master_session: Session,
    pub zombie_session: Session,
    pub rt: Option<Runtime>,
    /// The master's side: exports are folders below it.
    pub master: PathBuf,
    /// The mount point.
    pub mnt: PathBuf,
    pub tree: TempTree,
}

/// An export list built against the master directory.
pub struct Setup {
    pub exports: Vec<(&'static str, bool)>,
    pub never: Vec<&'static str>,
}

impl Setup {
    /// Makes the master directory with the exports (filled by `prepare`) and
    /// the policy.
    fn build(&self, tag: &str, prepare: impl FnOnce(&Path)) -> (TempTree, PathBuf, ExportPolicy) {
        let tree = TempTree::new(tag);
        let master = tree.0.join("master");
        for (name, _) in &self.exports {
            std::fs::create_dir_all(master.join(name)).unwrap();
        }
        prepare(&master);
        let policy = ExportPolicy::new(
            self.exports
                .iter()
                .map(|(name, ro)| Export {
                    path: master.join(name),
                    read_only: *ro,
                })
                .collect(),
            self.never.iter().map(|n| master.join(n)).collect(),
        );
        (tree, master, policy)
    }

    /// One read-write export `rw`.
    pub fn rw() -> Setup {
        Setup {
            exports: vec![("rw", false)],
            never: vec![],
        }
    }
}

pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

impl Share {
    /// Starts a share; `prepare` fills the master directory before serving.
    pub fn start(setup: Setup, prepare: impl FnOnce(&Path)) -> Share {
        let (tree, master, policy) = setup.build("share", prepare);
        let mnt = tree.0.join("mnt");
        std::fs::create_dir_all(&mnt).unwrap();
        let rt = runtime();
        let (m, z) = rt.block_on(pair_of_sessions());
        let channel = m.mux.open("fileshare").unwrap();
        let server = rt.spawn(zos_fileshare::serve(channel, policy));
        let accepted = rt.block_on(z.mux.accept()).unwrap();
        let mount = zos_fileshare::mount(accepted, &mnt, rt.handle().clone()).unwrap();
        Share {
            mount: Some(mount),
            server: Some(server),
            master_session: m,
            zombie_session: z,
            rt: Some(rt),
            master,
            mnt,
            tree,
        }
    }

    /// A path inside the mount.
    pub fn at(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    /// The same path on the master.
    pub fn on_master(&self, rel: &str) -> PathBuf {
        self.master.join(rel)
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        drop(self.mount.take());
        self.master_session.mux.abort("test over");
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// The errno of an I/O result that must have failed.
pub fn errno<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.expect_err("the call should fail")
        .raw_os_error()
        .unwrap_or(-1)
}

/// A server and a raw protocol client (no mount): for calls a kernel would
/// never send.
pub struct RawShare {
    pub client: RawClient,
    pub server: tokio::task::JoinHandle<zos_fileshare::Result<()>>,
    pub master_session: Session,
    pub zombie_session: Session,
    pub rt: Runtime,
    pub master: PathBuf,
    pub tree: TempTree,
}

/// Speaks the file protocol by hand.
pub struct RawClient {
    pub tx: zos_netproto::mux::ChannelSender,
    pub rx: zos_netproto::mux::ChannelReceiver,
    pub exports: Vec<zos_fileshare::proto::ExportInfo>,
    next: u64,
}

impl RawClient {
    pub async fn connect(channel: zos_netproto::mux::Channel) -> RawClient {
        use zos_fileshare::proto::{self, ClientMsg, ServerMsg};
        let (tx, mut rx) = channel.split();
        tx.send(&proto::encode(&ClientMsg::Hello {
            version: proto::VERSION,
        }))
        .await
        .unwrap();
        let answer = rx.recv().await.unwrap().unwrap();
        let ServerMsg::Welcome { exports, .. } = proto::decode_server(&answer).unwrap() else {
            panic!("no welcome");
        };
        RawClient {
            tx,
            rx,
            exports,
            next: 1,
        }
    }

    pub async fn call(
        &mut self,
        op: zos_fileshare::proto::Op,
    ) -> Result<zos_fileshare::proto::Answer, i32> {
        use zos_fileshare::proto::{self, ClientMsg, ServerMsg};
        let id = self.next;
        self.next += 1;
        self.tx
            .send(&proto::encode(&ClientMsg::Call { id, op }))
            .await
            .unwrap();
        let bytes = self.rx.recv().await.unwrap().unwrap();
        match proto::decode_server(&bytes).unwrap() {
            ServerMsg::Reply { id: got, result } => {
                assert_eq!(got, id);
                result
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Looks `name` up under `parent`, giving the node id.
    pub async fn lookup(&mut self, parent: u64, name: &str) -> Result<u64, i32> {
        let op = zos_fileshare::proto::Op::Lookup {
            parent,
            name: serde_bytes::ByteBuf::from(name.as_bytes().to_vec()),
        };
        match self.call(op).await? {
            zos_fileshare::proto::Answer::Entry(e) => Ok(e.node),
            other => panic!("lookup answered {other:?}"),
        }
    }
}

impl RawShare {
    pub fn start(setup: Setup, prepare: impl FnOnce(&Path)) -> RawShare {
        let (tree, master, policy) = setup.build("raw", prepare);
        let rt = runtime();
        let (m, z) = rt.block_on(pair_of_sessions());
        let channel = m.mux.open("fileshare").unwrap();
        let server = rt.spawn(zos_fileshare::serve(channel, policy));
        let accepted = rt.block_on(z.mux.accept()).unwrap();
        let client = rt.block_on(RawClient::connect(accepted));
        RawShare {
            client,
            server,
            master_session: m,
            zombie_session: z,
            rt,
            master,
            tree,
        }
    }

    /// Runs one call.
    pub fn call(
        &mut self,
        op: zos_fileshare::proto::Op,
    ) -> Result<zos_fileshare::proto::Answer, i32> {
        self.rt.block_on(self.client.call(op))
    }

    /// Resolves a relative path below export `export` one name at a time.
    pub fn resolve(&mut self, export: usize, rel: &str) -> Result<u64, i32> {
        let mut node = self.client.exports[export].node;
        for name in rel.split('/').filter(|n| !n.is_empty()) {
            node = self.rt.block_on(self.client.lookup(node, name))?;
        }
        Ok(node)
    }
}
