//! `zos bench fs`: shared folders against sshfs on the same loopback.
//!
//! Ours: `zos_fileshare::serve` and a FUSE mount over a real Noise session on
//! 127.0.0.1. sshfs: the private sshd of `ssh.rs` (AES-128-GCM, the faster
//! of sshfs's ciphers here). For each: (a) sequential write of one file in
//! 1 MiB writes with fsync at the end, (b) cold sequential read of it (page
//! caches dropped on both sides), (c) create+stat+delete of many small
//! files. Median of the runs; needs root (mounting).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::net::TcpListener;
use zos_fileshare::{Export, ExportPolicy};
use zos_netproto::Identity;
use zos_netproto::session::Session;
use zos_netproto::wire::Role;

use super::median;
use super::ssh::Sshd;

/// One file system under test: where its files go, and where they land.
struct Target {
    name: &'static str,
    /// The directory inside the mount.
    dir: PathBuf,
    /// The same directory on the serving side.
    backing: PathBuf,
}

/// Figures of one target: write MB/s, read MB/s, seconds for the files.
#[derive(Default)]
struct Figures {
    write: Vec<f64>,
    read: Vec<f64>,
    files: Vec<f64>,
}

/// Runs the benchmark and prints its table.
pub fn run(mib: u64, files: usize, runs: usize) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("zos bench fs mounts file systems: run it as root");
    }
    let base = std::env::temp_dir().join(format!("zos-bench-fs-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    let _cleanup = Cleanup(base.clone());
    let (master, ours_mnt, ssh_mnt) = (base.join("master"), base.join("zos"), base.join("sshfs"));
    for d in [&master, &ours_mnt, &ssh_mnt] {
        fs::create_dir_all(d)?;
    }
    println!("zos bench fs: loopback, {mib} MiB file, {files} small files, median of {runs} runs");
    (|| {
        let rt = tokio::runtime::Runtime::new()?;
        let share = Share::start(&rt, &master, &ours_mnt)?;
        let sshd = Sshd::start()?;
        let sshfs = mount_sshfs(&sshd, &master, &ssh_mnt);
        let targets = [
            Some(Target {
                name: "zos",
                dir: ours_mnt.join("master"),
                backing: master.clone(),
            }),
            match &sshfs {
                Ok(()) => Some(Target {
                    name: "sshfs",
                    dir: ssh_mnt.clone(),
                    backing: master.clone(),
                }),
                Err(e) => {
                    println!("sshfs: skipped ({e:#})");
                    None
                }
            },
        ];
        let mut figures: Vec<Figures> = vec![Figures::default(), Figures::default()];
        for _ in 0..runs {
            for (t, f) in targets.iter().zip(figures.iter_mut()) {
                if let Some(t) = t {
                    measure(t, mib, files, f)?;
                }
            }
        }
        if sshfs.is_ok() {
            let _ = Command::new("fusermount3").arg("-u").arg(&ssh_mnt).status();
        }
        sshd.stop();
        drop(share);
        print_table(&figures, targets[1].is_some(), mib, files);
        anyhow::Ok(())
    })()
}

/// Removes the benchmark's mounts and directory, also after a panic.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for m in ["zos", "sshfs"] {
            let _ = nix::mount::umount2(&self.0.join(m), nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn print_table(figures: &[Figures], with_sshfs: bool, mib: u64, files: usize) {
    let (z, s) = (&figures[0], &figures[1]);
    let rows = [
        (
            format!("(a) write {mib} MiB + fsync"),
            median(z.write.clone()),
            "MB/s",
            true,
            &s.write,
        ),
        (
            format!("(b) cold read {mib} MiB"),
            median(z.read.clone()),
            "MB/s",
            true,
            &s.read,
        ),
        (
            format!("(c) {files} create+stat+delete"),
            median(z.files.clone()),
            "s",
            false,
            &s.files,
        ),
    ];
    println!(
        "{:<34} {:>12} {:>12} {:>18}",
        "operation", "zos", "sshfs", "speed zos/sshfs"
    );
    for (name, ours, unit, higher_better, theirs) in rows {
        if with_sshfs {
            let theirs = median(theirs.clone());
            let ratio = if higher_better {
                ours / theirs
            } else {
                theirs / ours
            };
            println!(
                "{name:<34} {:>7.1} {unit:<4} {:>7.1} {unit:<4} {:>13.2}x",
                ours, theirs, ratio
            );
        } else {
            println!("{name:<34} {:>7.1} {unit:<4}", ours);
        }
    }
}

fn measure(t: &Target, mib: u64, files: usize, f: &mut Figures) -> Result<()> {
    let path = t.dir.join("bench-big");
    let bytes = mib << 20;
    let buf: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    let start = Instant::now();
    let mut file = File::create(&path).with_context(|| format!("create {}", path.display()))?;
    let mut written = 0;
    while written < bytes {
        file.write_all(&buf)?;
        written += buf.len() as u64;
    }
    file.sync_all()?;
    drop(file);
    f.write
        .push(bytes as f64 / start.elapsed().as_secs_f64() / 1e6);

    drop_caches(&path)?;
    drop_caches(&t.backing.join("bench-big"))?;
    let start = Instant::now();
    let mut file = File::open(&path)?;
    let mut rbuf = vec![0u8; 1 << 20];
    let mut read = 0u64;
    loop {
        let n = file.read(&mut rbuf)?;
        if n == 0 {
            break;
        }
        read += n as u64;
    }
    f.read
        .push(read as f64 / start.elapsed().as_secs_f64() / 1e6);
    anyhow::ensure!(read == bytes, "{}: read {read} of {bytes} bytes", t.name);
    fs::remove_file(&path)?;

    let dir = t.dir.join("bench-files");
    fs::create_dir(&dir)?;
    let start = Instant::now();
    for i in 0..files {
        let p = dir.join(format!("f{i}"));
        OpenOptions::new().write(true).create_new(true).open(&p)?;
        fs::metadata(&p)?;
        fs::remove_file(&p)?;
    }
    f.files.push(start.elapsed().as_secs_f64());
    fs::remove_dir(&dir)?;
    Ok(())
}

/// Drops a file's cached pages (after writing them back).
fn drop_caches(path: &Path) -> Result<()> {
    let f = File::open(path)?;
    f.sync_all()?;
    nix::fcntl::posix_fadvise(
        &f,
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    )?;
    Ok(())
}

fn mount_sshfs(sshd: &Sshd, dir: &Path, mnt: &Path) -> Result<()> {
    let mut opts = sshd.client_options();
    opts.extend([
        format!("IdentityFile={}", sshd.client_key().display()),
        format!("port={}", sshd.port),
        "Ciphers=aes128-gcm@openssh.com".into(),
    ]);
    let status = Command::new("sshfs")
        .arg(format!("{}@127.0.0.1:{}", sshd.user, dir.display()))
        .arg(mnt)
        .arg("-o")
        .arg(opts.join(","))
        .status()
        .context("sshfs not installed (apt-get install sshfs)")?;
    if !status.success() {
        bail!("sshfs failed ({status})");
    }
    Ok(())
}

/// Our share: a master and a zombie session on loopback, the server and the
/// FUSE mount of its one export (`master`).
struct Share {
    mount: Option<zos_fileshare::Mount>,
    _sessions: (Session, Session),
}

impl Share {
    fn start(rt: &tokio::runtime::Runtime, master: &Path, mnt: &Path) -> Result<Share> {
        let policy = ExportPolicy::new(
            vec![Export {
                path: master.to_path_buf(),
                read_only: false,
            }],
            vec![],
        );
        let (m, z) = rt.block_on(async {
            let l = TcpListener::bind("127.0.0.1:0").await?;
            let addr = l.local_addr()?;
            let zid = Identity::generate()?;
            let zombie = tokio::spawn(async move {
                let (s, _) = l.accept().await?;
                anyhow::Ok(Session::accept(s, &zid, Role::Zombie, "bench-z").await?)
            });
            let mid = Identity::generate()?;
            let m = Session::connect(addr, &mid, Role::Master, "bench-m").await?;
            anyhow::Ok((m, zombie.await??))
        })?;
        let channel = m.mux.open("fileshare")?;
        rt.spawn(zos_fileshare::serve(channel, policy));
        let accepted = rt
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(10), z.mux.accept()).await
            })?
            .context("no file service channel")?;
        let mount = zos_fileshare::mount(accepted, mnt, rt.handle().clone())?;
        Ok(Share {
            mount: Some(mount),
            _sessions: (m, z),
        })
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        if let Some(m) = self.mount.take() {
            let _ = m.unmount();
        }
    }
}
