//! `zos bench`: figures, not pass/fail.
//!
//! `zos bench net` measures, on loopback, in one run: the Noise handshake,
//! the session cipher alone (AES-256-GCM sealing and opening, one core),
//! one session channel's throughput and CPU per GB, plain TCP, and an
//! `ssh -L` tunnel (a private sshd on 127.0.0.1), and prints the ratios.
//! `zos bench discovery` measures the time from starting a zombie to a
//! master seeing it over mDNS. `zos bench fs` compares shared folders with
//! sshfs (see `bench/fs.rs`). `zos bench migrate` moves migrants between two
//! daemons on this machine and dominates with n tasks (see `bench/migrate.rs`).
//! `zos bench snapshot` snapshots a large migrant, whole then incrementally, and rolls it
//! back (see `bench/snapshot.rs`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zos_netproto::session::Session;
use zos_netproto::wire::Role;
use zos_netproto::{Identity, noise};

use crate::cli::BenchKind;

mod cpu;
mod discovery;
mod display;
mod fs;
mod input;
mod migrate;
mod migrate_live;
mod migrate_plot;
mod snapshot;
mod ssh;

/// Runs a benchmark and prints its figures.
pub fn run(which: BenchKind) -> Result<ExitCode> {
    match which {
        BenchKind::Net { mib, runs } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(net(mib, runs.max(1)))?;
        }
        BenchKind::Discovery { runs, interface } => discovery::run(runs.max(1), &interface)?,
        BenchKind::Checkpoint => zos_checkpoint::bench::run(&mut std::io::stdout())?,
        BenchKind::Display {
            runs,
            seconds,
            windows_only,
            viewer_socket,
            animate,
            animate_size,
            fanout_of,
            fanout_listen,
        } => display::run(
            runs,
            seconds,
            windows_only,
            display::Helpers {
                viewer_socket,
                animate: animate.then_some(animate_size),
                fanout: fanout_of.zip(fanout_listen),
            },
        )?,
        BenchKind::Fs { mib, files, runs } => fs::run(mib, files, runs.max(1))?,
        BenchKind::Migrate {
            runs,
            live: true,
            sizes,
            ..
        } => migrate_live::run(runs.max(1), sizes.first().copied().unwrap_or(1024))?,
        BenchKind::Migrate {
            runs, sizes, png, ..
        } => {
            let sizes = if sizes.is_empty() {
                vec![4, 256, 1024]
            } else {
                sizes
            };
            migrate::run(runs.max(1), &sizes, &png)?
        }
        BenchKind::Snapshot {
            mib,
            changed_mib,
            runs,
        } => snapshot::run(mib.max(1), changed_mib, runs)?,
        BenchKind::Input {
            samples,
            seconds,
            rate,
        } => input::run(samples.max(1), seconds.max(1), rate.max(1))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// One throughput measurement.
#[derive(Clone, Copy)]
pub(crate) struct Throughput {
    /// Bytes per second.
    pub rate: f64,
    /// CPU seconds (all parties) per GB moved.
    pub cpu_per_gb: f64,
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

fn median_tp(v: &[Throughput]) -> Throughput {
    Throughput {
        rate: median(v.iter().map(|t| t.rate).collect()),
        cpu_per_gb: median(v.iter().map(|t| t.cpu_per_gb).collect()),
    }
}

async fn net(mib: u64, runs: usize) -> Result<()> {
    let bytes = mib << 20;
    println!("zos bench net: loopback, {mib} MiB per run, median of {runs} runs");

    let hs = handshake_times(200).await?;
    println!(
        "noise handshake (XX, 25519, AES-GCM, SHA-256): median {:.3} ms, p95 {:.3} ms (n=200)",
        hs.0 * 1e3,
        hs.1 * 1e3
    );

    let crypto = median_tp(
        &(0..runs)
            .map(|_| crypto_cost(bytes))
            .collect::<Result<Vec<_>>>()?,
    );
    println!(
        "AES-256-GCM alone (seal + open, one core): {:.1} MB/s, {:.2} CPU-s/GB",
        crypto.rate / 1e6,
        crypto.cpu_per_gb
    );

    let mut ours = Vec::new();
    let mut tcp = Vec::new();
    let mut ssh_runs = Vec::new();
    let tunnel = match ssh::Tunnel::start().await {
        Ok(t) => Some(t),
        Err(e) => {
            println!("ssh -L: skipped ({e:#})");
            None
        }
    };
    for _ in 0..runs {
        ours.push(session_throughput(bytes).await?);
        tcp.push(tcp_throughput(bytes, None).await?);
        if let Some(t) = &tunnel {
            ssh_runs.push(tcp_throughput(bytes, Some(t)).await?);
        }
    }
    let ours = median_tp(&ours);
    let tcp = median_tp(&tcp);
    let row = |name: &str, t: Throughput| {
        println!(
            "{name:<28} {:>9.1} MB/s   {:>6.2} CPU-s/GB",
            t.rate / 1e6,
            t.cpu_per_gb
        )
    };
    println!(
        "{:<28} {:>14}   {:>14}",
        "path", "throughput", "CPU (all ends)"
    );
    row("zos session, one channel", ours);
    row("plain TCP", tcp);
    if !ssh_runs.is_empty() {
        let ssh = median_tp(&ssh_runs);
        row("ssh -L tunnel", ssh);
        println!(
            "ratios: zos/ssh throughput {:.2}x, zos/TCP {:.2}x; CPU per GB zos/ssh {:.2}x",
            ours.rate / ssh.rate,
            ours.rate / tcp.rate,
            ours.cpu_per_gb / ssh.cpu_per_gb
        );
    } else {
        println!("ratios: zos/TCP {:.2}x", ours.rate / tcp.rate);
    }
    if let Some(t) = tunnel {
        t.stop();
    }
    Ok(())
}

/// Median and p95 seconds of a Noise handshake over a fresh TCP connection.
async fn handshake_times(n: usize) -> Result<(f64, f64)> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let zid = Identity::generate()?;
    let server = tokio::spawn(async move {
        for _ in 0..n {
            let (mut s, _) = l.accept().await?;
            noise::respond(&mut s, &zid).await?;
        }
        anyhow::Ok(())
    });
    let mid = Identity::generate()?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let t = Instant::now();
        noise::initiate(&mut s, &mid).await?;
        times.push(t.elapsed().as_secs_f64());
    }
    server.await??;
    times.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    Ok((times[n / 2], times[n * 95 / 100]))
}

/// The session's cipher alone: every frame sealed (as the sending end
/// does) and opened (as the receiving end does) on this thread.
fn crypto_cost(bytes: u64) -> Result<Throughput> {
    use zos_netproto::cipher::{Opener, Sealer};
    use zos_netproto::frame::{INNER_HEADER, MAX_PIECE};
    let key = [0x5au8; 32];
    let (mut sealer, mut opener) = (Sealer::new(&key), Opener::new(&key));
    let mut frame = Vec::with_capacity(zos_netproto::frame::MAX_NOISE_MESSAGE);
    let tid = cpu::thread_id();
    let cpu0 = cpu::thread_seconds(tid);
    let t = Instant::now();
    let mut done = 0u64;
    while done < bytes {
        frame.clear();
        frame.resize(INNER_HEADER + MAX_PIECE, 0x5a);
        sealer.seal(&mut frame, 0)?;
        opener.open(&mut frame)?;
        done += MAX_PIECE as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu::thread_seconds(tid) - cpu0;
    Ok(Throughput {
        rate: done as f64 / secs,
        cpu_per_gb: cpu / (done as f64 / 1e9),
    })
}

pub(crate) async fn session_throughput(bytes: u64) -> Result<Throughput> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let zid = Identity::generate()?;
    let receiver = tokio::spawn(async move {
        let (s, _) = l.accept().await?;
        let z = Session::accept(s, &zid, Role::Zombie, "bench-z").await?;
        let mut ch = z.mux.accept().await.context("no channel")?;
        let mut got = 0u64;
        while got < bytes {
            match ch.recv().await? {
                Some(m) => got += m.len() as u64,
                None => break,
            }
        }
        anyhow::Ok((got, z))
    });
    let mid = Identity::generate()?;
    let m = Session::connect(addr, &mid, Role::Master, "bench-m").await?;
    let ch = m.mux.open("bench")?;
    let chunk = vec![0x5au8; zos_netproto::frame::MAX_PIECE];
    let cpu0 = cpu::process_seconds();
    let t = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        let n = chunk.len().min((bytes - sent) as usize);
        ch.send(&chunk[..n]).await?;
        sent += n as u64;
    }
    let (got, _z) = receiver.await??;
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu::process_seconds() - cpu0;
    anyhow::ensure!(got == bytes, "received {got} of {bytes} bytes");
    Ok(Throughput {
        rate: bytes as f64 / secs,
        cpu_per_gb: cpu / (bytes as f64 / 1e9),
    })
}

/// Plain TCP from us to a sink of ours, directly or through the tunnel.
async fn tcp_throughput(bytes: u64, tunnel: Option<&ssh::Tunnel>) -> Result<Throughput> {
    let sink = match tunnel {
        Some(t) => t.sink.clone(),
        None => Sink::start().await?,
    };
    let target: SocketAddr = tunnel.map(|t| t.local).unwrap_or(sink.addr);
    let cpu0 = cpu::process_seconds() + tunnel.map(|t| t.cpu_seconds()).unwrap_or(0.0);
    let t = Instant::now();
    let mut s = TcpStream::connect(target).await?;
    let buf = vec![0x5au8; 256 << 10];
    let mut sent = 0u64;
    while sent < bytes {
        let n = buf.len().min((bytes - sent) as usize);
        s.write_all(&buf[..n]).await?;
        sent += n as u64;
    }
    s.shutdown().await?;
    let got = sink.wait().await?;
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu::process_seconds() + tunnel.map(|t| t.cpu_seconds()).unwrap_or(0.0) - cpu0;
    anyhow::ensure!(got == bytes, "sink received {got} of {bytes} bytes");
    Ok(Throughput {
        rate: bytes as f64 / secs,
        cpu_per_gb: cpu / (bytes as f64 / 1e9),
    })
}

/// A TCP sink that counts what one connection at a time sends it.
#[derive(Clone)]
pub(crate) struct Sink {
    pub addr: SocketAddr,
    counts: std::sync::Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<u64>>>,
}

impl Sink {
    pub async fn start() -> Result<Sink> {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 256 << 10];
                    let mut total = 0u64;
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        total += n as u64;
                    }
                    let _ = tx.send(total).await;
                });
            }
        });
        Ok(Sink {
            addr,
            counts: std::sync::Arc::new(tokio::sync::Mutex::new(rx)),
        })
    }

    pub async fn wait(&self) -> Result<u64> {
        tokio::time::timeout(Duration::from_secs(120), self.counts.lock().await.recv())
            .await
            .context("sink timed out")?
            .context("sink ended")
    }
}
