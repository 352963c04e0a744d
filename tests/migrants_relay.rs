//! Issue 10, the registry and the pty relay the mover builds on, with real pods, a real
//! checkpoint and restore of the tree, and a real Noise session between a "master" and a
//! "zombie" side in this process: the mover's steps done by hand (no migration protocol). A
//! task's terminal follows it to the zombie and back — the same attached client sees its
//! output and reaches it with its input, the log has everything in order, the state and epoch
//! say where it is — and when it ends on the zombie the master records its exit code.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::sync::watch;
use zos_checkpoint::{
    AfterDump, FrozenTree, RestoredTree, TreeDumpOptions, TreeRestoreOptions, checkpoint_tree,
    restore_tree,
};
use zos_daemon::CancellationToken;
use zos_daemon::domination::PairedZombie;
use zos_daemon::migrants::{HostedPods, Migrants, Placement, PtyMessage, pty_label};
use zos_netproto::Identity;
use zos_netproto::session::Session;
use zos_netproto::wire::Role;

/// The task: numbers each line it reads, so its state shows across moves.
const COUNTER: &str = "i=0; while read x; do i=$((i+1)); echo \"got $x #$i\"; done; echo bye";

/// What an attached client has seen.
struct Client {
    stream: UnixStream,
    seen: Arc<std::sync::Mutex<Vec<u8>>>,
    ended: Arc<std::sync::atomic::AtomicBool>,
}

impl Client {
    fn attach(migrants: &Arc<Migrants>, id: u64) -> Client {
        let (ours, theirs) = UnixStream::pair().unwrap();
        theirs.set_nonblocking(true).unwrap();
        let terminal = migrants.terminal(id).unwrap();
        tokio::spawn(async move {
            let theirs = tokio::net::UnixStream::from_std(theirs).unwrap();
            zos_daemon::migrants::serve_attach(theirs, terminal).await;
        });
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut reader = ours.try_clone().unwrap();
        let (s, e) = (seen.clone(), ended.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                s.lock().unwrap().extend_from_slice(&buf[..n]);
            }
            e.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        Client {
            stream: ours,
            seen,
            ended,
        }
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    async fn wait_for(&self, text: &str) {
        for _ in 0..400 {
            if self.screen().contains(text) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the attached client never saw {text:?}; it saw:\n{}",
            self.screen()
        );
    }

    fn type_line(&mut self, line: &str) {
        self.stream
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }
}

/// Freezes the pod at `root` (held) and restores its image into a new pod (held stopped).
fn checkpoint_and_restore(root: i32) -> (FrozenTree, RestoredTree) {
    let mut image = Vec::new();
    let opts = TreeDumpOptions {
        after: AfterDump::KeepFrozen,
    };
    let stats = checkpoint_tree(root, &opts, &mut image).expect("checkpoint the pod");
    let frozen = stats.held.expect("the tree is held frozen");
    let tree = restore_tree(&image, &TreeRestoreOptions::default()).expect("restore the pod");
    (frozen, tree)
}

/// The two daemons' parts, joined by a session: the master's registry, the zombie's pods.
struct Pair {
    migrants: Arc<Migrants>,
    hosted: Arc<HostedPods>,
    zombie: PairedZombie,
    master_key: zos_netproto::PublicKey,
    zombie_mux: zos_netproto::mux::Mux,
    _dir: tempdir::Dir,
    shutdown: CancellationToken,
}

impl Drop for Pair {
    /// Pods end with a failing test too: the zombie's are killed, the master's stopped.
    fn drop(&mut self) {
        self.hosted.kill_all();
        self.shutdown.cancel();
    }
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

async fn pair() -> Pair {
    let init = common::pod_init::ensure_built();
    let dir = std::env::temp_dir().join(format!(
        "zos-relay-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let shutdown = CancellationToken::new();
    let migrants = Migrants::new(
        &dir,
        "laptop".into(),
        init,
        Arc::new(AtomicU64::new(1)),
        Arc::new(watch::channel(0).0),
        shutdown.clone(),
    );
    let hosted = HostedPods::new(shutdown.clone());
    // A real session: the zombie listens, the master connects.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (zid, mid) = (Identity::generate().unwrap(), Identity::generate().unwrap());
    let master_key = mid.public();
    let accept = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        Session::accept(s, &zid, Role::Zombie, "desk")
            .await
            .unwrap()
    });
    let master_session = Session::connect(addr, &mid, Role::Master, "laptop")
        .await
        .unwrap();
    let zombie_session = accept.await.unwrap();
    let zombie = PairedZombie {
        name: "desk".into(),
        key: master_session.remote,
    };
    // The master serves the pty channels the zombie opens (as its channel policy does).
    {
        let (migrants, zombie, mux) =
            (migrants.clone(), zombie.clone(), master_session.mux.clone());
        tokio::spawn(async move {
            let _keep = master_session;
            while let Some(channel) = mux.accept().await {
                migrants.serve_relay(channel, &zombie);
            }
        });
    }
    let zombie_mux = zombie_session.mux.clone();
    hosted.connect(master_key, zombie_mux.clone());
    tokio::spawn(async move {
        let _keep = zombie_session;
        std::future::pending::<()>().await
    });
    Pair {
        migrants,
        hosted,
        zombie,
        master_key,
        zombie_mux,
        _dir: tempdir::Dir(dir),
        shutdown,
    }
}

impl Pair {
    /// Starts the [`COUNTER`] task at home; its id.
    async fn start_counter(&self) -> u64 {
        let task = self
            .migrants
            .run(
                vec!["sh".into(), "-c".into(), COUNTER.into()],
                "/".into(),
                vec!["PATH=/usr/bin:/bin".into()],
            )
            .await
            .unwrap();
        task.id
    }

    /// The mover's path to the zombie, by hand: begin, checkpoint (held), restore there,
    /// commit, end the local copy, let the zombie's copy run.
    async fn move_away(&self, id: u64) -> u64 {
        let ticket = self.migrants.begin_move(id, "desk").unwrap();
        let (migrants, hosted, zombie, master) = (
            self.migrants.clone(),
            self.hosted.clone(),
            self.zombie.clone(),
            self.master_key,
        );
        tokio::task::spawn_blocking(move || {
            let epoch = ticket.next_epoch();
            let root = ticket.local_init_pid().expect("a local pod");
            let (frozen, tree) = checkpoint_and_restore(root);
            ticket.committed_away(&zombie, epoch);
            frozen.kill();
            hosted.adopt_restored(master, id, epoch, tree).unwrap();
            assert!(migrants.info(id).unwrap().init_pid.is_none());
            epoch
        })
        .await
        .unwrap()
    }

    /// The mover's path home: the zombie hands off and freezes, the master restores, the
    /// zombie's copy ends, the master's runs.
    async fn move_home(&self, id: u64) -> u64 {
        let ticket = self.migrants.begin_home(id).unwrap();
        let hosted = self.hosted.clone();
        tokio::task::spawn_blocking(move || {
            let epoch = ticket.next_epoch();
            let root = hosted.init_pid(id).expect("the zombie holds it");
            hosted.hand_off(id).unwrap();
            let (frozen, tree) = checkpoint_and_restore(root);
            frozen.kill();
            ticket.adopt_restored(tree, epoch).unwrap();
            epoch
        })
        .await
        .unwrap()
    }
}

fn log_of(migrants: &Migrants, id: u64) -> String {
    let (snapshot, _) = migrants.terminal(id).unwrap().log_and_subscribe().unwrap();
    let mut out = Vec::new();
    for (f, len) in snapshot.segments {
        f.take(len).read_to_end(&mut out).unwrap();
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_follows_its_task_to_the_zombie_and_back_and_its_end_there_is_recorded() {
    let p = pair().await;
    let id = p.start_counter().await;
    let mut client = Client::attach(&p.migrants, id);
    client.type_line("a");
    client.wait_for("got a #1").await;

    // Away: the same client reaches the task on the zombie, which counts on.
    let epoch = p.move_away(id).await;
    assert_eq!(epoch, 2);
    let info = p.migrants.info(id).unwrap();
    assert_eq!(
        info.placement,
        Placement::Away {
            host: "desk".into()
        }
    );
    assert_eq!(info.epoch, 2);
    let listed = p.migrants.list().into_iter().find(|t| t.id == id).unwrap();
    assert_eq!(
        (listed.state.as_str(), listed.r#where.as_str()),
        ("running", "desk")
    );
    assert_eq!(p.hosted.list().len(), 1);
    // The relay opens once the zombie's copy runs; typing goes through it.
    wait_relayed(&p, id).await;
    client.type_line("b");
    client.wait_for("got b #2").await;

    // Home again, at epoch 3: the zombie lets go, the master's copy takes the terminal.
    assert_eq!(p.move_home(id).await, 3);
    let info = p.migrants.info(id).unwrap();
    assert_eq!(info.placement, Placement::Home);
    assert!(info.init_pid.is_some());
    wait_until(|| p.hosted.list().is_empty()).await;
    client.type_line("c");
    client.wait_for("got c #3").await;

    // Away once more, and the task ends there: its last words and exit code reach the master.
    assert_eq!(p.move_away(id).await, 4);
    wait_relayed(&p, id).await;
    client.type_line("d");
    client.wait_for("got d #4").await;
    client.stream.write_all(&[4]).unwrap(); // Ctrl-D: end of input
    client.wait_for("bye").await;
    wait_until(|| {
        matches!(
            p.migrants.info(id).unwrap().placement,
            Placement::Exited { code: 0 }
        )
    })
    .await;
    wait_until(|| client.ended.load(std::sync::atomic::Ordering::SeqCst)).await;

    let log = log_of(&p.migrants, id);
    let order: Vec<usize> = ["got a #1", "got b #2", "got c #3", "got d #4", "bye"]
        .iter()
        .map(|l| {
            log.find(l)
                .unwrap_or_else(|| panic!("{l:?} not in the log:\n{log}"))
        })
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "out of order:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pty_channel_at_a_stale_epoch_or_beside_the_live_one_is_refused() {
    let p = pair().await;
    let id = p.start_counter().await;
    // At home, no zombie may feed its terminal.
    assert!(
        refused(&p, id, 1).await,
        "a relay for a task at home was accepted"
    );
    p.move_away(id).await;
    wait_relayed(&p, id).await;
    // An old epoch (a zombie that held it before) is refused; the log takes nothing from it.
    assert!(
        refused(&p, id, 1).await,
        "a relay at a stale epoch was accepted"
    );
    // So is a second relay while one feeds the terminal.
    assert!(refused(&p, id, 2).await, "a second relay was accepted");
    assert!(!log_of(&p.migrants, id).contains("forged"));
}

/// Opens a pty channel for `id` at `epoch` from the zombie side and says whether the master
/// reset it.
async fn refused(p: &Pair, id: u64, epoch: u64) -> bool {
    let mut ch = p.zombie_mux.open(&pty_label(id)).unwrap();
    ch.send_msg(&PtyMessage::Hello { task: id, epoch })
        .await
        .unwrap();
    let _ = ch.send_msg(&PtyMessage::Output(b"forged".to_vec())).await;
    matches!(
        tokio::time::timeout(Duration::from_secs(10), ch.recv()).await,
        Ok(Err(_))
    )
}

/// Waits until the zombie's relay for `id` is the terminal's source (input goes through).
async fn wait_relayed(p: &Pair, id: u64) {
    let terminal = p.migrants.terminal(id).unwrap();
    for _ in 0..400 {
        if terminal.has_input() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("task {id}'s terminal never got its relay");
}

async fn wait_until(mut cond: impl FnMut() -> bool) {
    for _ in 0..400 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not met within 20 s");
}
