//! When things go wrong: the master process dies mid-read and mid-write,
//! and a peer sends malformed or unexpected messages.

mod common;

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{RawClient, TempTree, mounts_under, pair_of_sessions, runtime};
use tokio::net::TcpListener;
use zos_fileshare::proto::{self, ClientMsg, ServerMsg};
use zos_fileshare::{Export, ExportPolicy};
use zos_netproto::Identity;
use zos_netproto::session::Session;
use zos_netproto::wire::Role;

const HELPER_ENV: &str = "ZOS_FS_TEST_SERVE";

/// Not a test: the master process the tests below start (with `--ignored
/// --exact`) and kill. It serves the directory named in the environment to
/// one zombie, then waits. Run on its own it fails, so it never counts as a
/// pass.
#[test]
#[ignore = "helper process of the master-dies tests"]
fn helper_master_process() {
    let dir = std::env::var(HELPER_ENV).unwrap_or_else(|_| {
        panic!(
            "helper_master_process is started by the tests of failure.rs, \
             which set {HELPER_ENV}; it is not a test on its own"
        )
    });
    let rt = runtime();
    rt.block_on(async move {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("PORT {}", l.local_addr().unwrap().port());
        std::io::stdout().flush().unwrap();
        let (s, _) = l.accept().await.unwrap();
        let id = Identity::generate().unwrap();
        let m = Session::accept(s, &id, Role::Master, "helper")
            .await
            .unwrap();
        let channel = m.mux.open("fileshare").unwrap();
        let policy = ExportPolicy::new(
            vec![Export {
                path: PathBuf::from(dir),
                read_only: false,
            }],
            vec![],
        );
        let _ = zos_fileshare::serve(channel, policy).await;
        std::future::pending::<()>().await;
    });
}

/// A master in its own process; killed on drop.
struct MasterProcess {
    child: Child,
    port: u16,
}

impl MasterProcess {
    fn start(dir: &Path) -> MasterProcess {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "helper_master_process",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HELPER_ENV, dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // libtest prints "test … ... " before it on the same line.
                if let Some(p) = line.split("PORT ").nth(1) {
                    let _ = tx.send(p.trim().parse::<u16>().unwrap());
                }
            }
        });
        let mut master = MasterProcess { child, port: 0 };
        master.port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the helper printed its port");
        master
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }
}

impl Drop for MasterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A zombie mounting a master process's share.
struct Zombie {
    mount: Option<zos_fileshare::Mount>,
    _session: Session,
    rt: tokio::runtime::Runtime,
}

impl Zombie {
    fn mount(port: u16, mnt: &Path) -> Zombie {
        let rt = runtime();
        let session = rt.block_on(async {
            let id = Identity::generate().unwrap();
            Session::connect(([127, 0, 0, 1], port).into(), &id, Role::Zombie, "z")
                .await
                .unwrap()
        });
        let channel = rt.block_on(session.mux.accept()).unwrap();
        let mount = zos_fileshare::mount(channel, mnt, rt.handle().clone()).unwrap();
        Zombie {
            mount: Some(mount),
            _session: session,
            rt,
        }
    }
}

impl Drop for Zombie {
    fn drop(&mut self) {
        drop(self.mount.take());
        let rt = std::mem::replace(&mut self.rt, runtime());
        rt.shutdown_timeout(Duration::from_secs(2));
    }
}

fn set_up(tag: &str) -> (TempTree, PathBuf, PathBuf) {
    let tree = TempTree::new(tag);
    let (dir, mnt) = (tree.0.join("master"), tree.0.join("mnt"));
    fs::create_dir_all(&dir).unwrap();
    fs::create_dir_all(&mnt).unwrap();
    (tree, dir, mnt)
}

/// Joins a thread, failing the test (instead of hanging) after `limit`.
fn join_within<T>(t: std::thread::JoinHandle<T>, limit: Duration) -> T {
    let deadline = Instant::now() + limit;
    while !t.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the call hung after the master died"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    t.join().unwrap()
}

fn pattern_at(offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| ((offset + i) % 251) as u8)
        .collect()
}

#[test]
fn master_dying_mid_read_gives_eio_quickly_and_unmount_works() {
    let (tree, dir, mnt) = set_up("die-read");
    fs::write(dir.join("big"), pattern_at(0, 64 << 20)).unwrap();
    let master = MasterProcess::start(&dir);
    let mut zombie = Zombie::mount(master.port, &mnt);
    let path = mnt.join("master/big");
    assert_eq!(fs::read(&path).unwrap().len(), 64 << 20);
    // Freeze the master so reads hang in flight, then kill it.
    master.signal(libc::SIGSTOP);
    let reader = std::thread::spawn(move || {
        let mut f = fs::File::open(&path)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            if f.read(&mut buf)? == 0 {
                return Ok(());
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !reader.is_finished(),
        "the read waits for the frozen master"
    );
    let killed = Instant::now();
    master.signal(libc::SIGKILL);
    let result: std::io::Result<()> = join_within(reader, Duration::from_secs(20));
    assert_eq!(result.unwrap_err().raw_os_error(), Some(libc::EIO));
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "EIO took {:?}",
        killed.elapsed()
    );
    // Later operations fail at once too.
    let t = Instant::now();
    assert_eq!(
        fs::metadata(mnt.join("master/other"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EIO)
    );
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(zombie.mount.as_ref().unwrap().connection_lost().is_some());
    zombie.mount.take().unwrap().unmount().unwrap();
    assert!(mounts_under(&tree.0).is_empty(), "nothing left mounted");
}

#[test]
fn acknowledged_writes_are_on_the_masters_disk_after_it_dies() {
    let (tree, dir, mnt) = set_up("die-write");
    let master = MasterProcess::start(&dir);
    let zombie = Zombie::mount(master.port, &mnt);
    let acked = Arc::new(AtomicU64::new(0));
    let path = mnt.join("master/log");
    let writer = {
        let acked = acked.clone();
        std::thread::spawn(move || -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)?;
            let mut offset = 0u64;
            loop {
                let chunk = pattern_at(offset, 256 << 10);
                f.write_all(&chunk)?;
                offset += chunk.len() as u64;
                acked.store(offset, Ordering::SeqCst);
            }
        })
    };
    while acked.load(Ordering::SeqCst) < 8 << 20 {
        std::thread::sleep(Duration::from_millis(10));
    }
    master.signal(libc::SIGKILL);
    let err = join_within(writer, Duration::from_secs(20)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    let acked = acked.load(Ordering::SeqCst);
    let on_disk = fs::read(dir.join("log")).unwrap();
    assert!(
        on_disk.len() as u64 >= acked,
        "{} bytes on disk, {acked} acknowledged",
        on_disk.len()
    );
    assert!(
        on_disk[..acked as usize] == pattern_at(0, acked as usize)[..],
        "acknowledged bytes intact"
    );
    drop(zombie);
    assert!(mounts_under(&tree.0).is_empty());
}

#[test]
fn malformed_messages_end_one_channel_and_the_server_serves_others() {
    let tree = TempTree::new("malformed");
    fs::write(tree.0.join("f"), b"fine").unwrap();
    let policy = ExportPolicy::new(
        vec![Export {
            path: tree.0.clone(),
            read_only: false,
        }],
        vec![],
    );
    let rt = runtime();
    rt.block_on(async move {
        let (m, z) = pair_of_sessions().await;
        let mut servers = Vec::new();
        for _ in 0..5 {
            let channel = m.mux.open("fileshare").unwrap();
            servers.push(tokio::spawn(zos_fileshare::serve(channel, policy.clone())));
        }
        let mut accepted = Vec::new();
        for _ in 0..5 {
            accepted.push(z.mux.accept().await.unwrap());
        }
        let good = accepted.pop().unwrap();
        // 1: garbage as the first message.
        let (tx, mut rx1) = accepted.remove(0).split();
        tx.send(&[0xff, 0x13, 0x37]).await.unwrap();
        // 2: garbage after a good Hello.
        let (tx2, mut rx2) = accepted.remove(0).split();
        tx2.send(&proto::encode(&ClientMsg::Hello {
            version: proto::VERSION,
        }))
        .await
        .unwrap();
        let welcome = rx2.recv().await.unwrap().unwrap();
        assert!(matches!(
            proto::decode_server(&welcome),
            Ok(ServerMsg::Welcome { .. })
        ));
        let mut bad = proto::encode(&ClientMsg::Forget {
            nodes: vec![(1, 1)],
        });
        bad.push(0);
        tx2.send(&bad).await.unwrap();
        // 3: a second Hello.
        let three = RawClient::connect(accepted.remove(0)).await;
        three
            .tx
            .send(&proto::encode(&ClientMsg::Hello {
                version: proto::VERSION,
            }))
            .await
            .unwrap();
        // 4: another version.
        let (tx4, mut rx4) = accepted.remove(0).split();
        tx4.send(&proto::encode(&ClientMsg::Hello { version: 999 }))
            .await
            .unwrap();
        let refused = proto::decode_server(&rx4.recv().await.unwrap().unwrap()).unwrap();
        let ServerMsg::Refused { reason } = refused else {
            panic!("{refused:?}")
        };
        assert!(
            reason.contains("999") && reason.contains(&proto::VERSION.to_string()),
            "{reason}"
        );

        let results: Vec<String> = futures_join(servers.drain(..4).collect()).await;
        assert!(results[0].contains("undecodable"), "{}", results[0]);
        assert!(results[1].contains("stray"), "{}", results[1]);
        assert!(results[2].contains("second Hello"), "{}", results[2]);
        assert!(results[3].contains("999"), "{}", results[3]);
        // The peers saw their channels reset with the reason.
        let e = rx1.recv().await.unwrap_err().to_string();
        assert!(e.contains("undecodable"), "{e}");
        assert!(rx2.recv().await.unwrap_err().to_string().contains("stray"));
        // The fifth channel, served all along, still works.
        let mut client = RawClient::connect(good).await;
        let root = client.exports[0].node;
        let f = client.lookup(root, "f").await.unwrap();
        let opened = client
            .call(proto::Op::Open {
                node: f,
                flags: libc::O_RDONLY,
            })
            .await
            .unwrap();
        let proto::Answer::Opened(fh) = opened else {
            panic!()
        };
        let data = client
            .call(proto::Op::Read {
                fh,
                offset: 0,
                size: 100,
            })
            .await
            .unwrap();
        assert_eq!(
            data,
            proto::Answer::Data(serde_bytes::ByteBuf::from(b"fine".to_vec()))
        );
        assert!(m.mux.end_reason().is_none(), "the session lives on");
    });
}

async fn futures_join(
    handles: Vec<tokio::task::JoinHandle<zos_fileshare::Result<()>>>,
) -> Vec<String> {
    let mut out = Vec::new();
    for h in handles {
        let r = tokio::time::timeout(Duration::from_secs(10), h)
            .await
            .expect("serve ended")
            .unwrap();
        out.push(r.expect_err("serve fails").to_string());
    }
    out
}
