//! Issue 9: what an unpaired host on the LAN can do to a zombie. It can
//! complete a Noise handshake with a key of its own; after that it may only
//! try to pair. It holds no session for long, no descriptors beyond small
//! fixed caps, opens no channels, sends no endless control message, makes
//! the accept loop neither spin nor flood the log — and the paired master
//! pings through all of it.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::attacker::{self, Intruder, descriptors, intrude, on, rss_kib};
use common::zos::{self, text};
use common::{Host, Lan, Proc, secs};
use zos_daemon::limits;

/// A master `m` paired with the zombie `sturdy` on `z1`, and a host `a`
/// for the attacker.
struct Setup {
    lan: Lan,
    _master: Proc,
    zombie: zos::Zombie,
}

impl Setup {
    fn new(zombie_args: &[&str]) -> Setup {
        let lan = Lan::new(&["m", "z1", "a"]);
        let master = zos::start_master(lan.host("m"));
        let zombie = zos::start_zombie(lan.host("z1"), "sturdy", zombie_args);
        zos::pair(lan.host("m"), lan.host("z1"), "sturdy", "complete");
        Setup {
            lan,
            _master: master,
            zombie,
        }
    }

    fn target(&self) -> SocketAddr {
        SocketAddr::new(self.lan.host("z1").addr.into(), self.zombie.port)
    }

    fn attacker(&self) -> &Host {
        self.lan.host("a")
    }

    fn assert_ping_works(&self, during: &str) {
        let out = self
            .lan
            .host("m")
            .run(&["ping", "sturdy", "--count", "3", "--interval", "0.1"]);
        assert!(
            out.status.success() && text(&out).matches("rtt=").count() == 3,
            "the paired master's ping failed {during}:\n{}\n--- zombie log ---\n{}",
            text(&out),
            self.zombie.proc.log()
        );
    }
}

/// Adds `n` more addresses to `host`'s interface; returns them.
fn add_addresses(host: &Host, n: u8) -> Vec<IpAddr> {
    let o = host.addr.octets();
    (0..n)
        .map(|i| {
            let ip = std::net::Ipv4Addr::new(o[0], o[1], o[2], 100 + i);
            common::lan::ip(&[
                "-n",
                &host.ns,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                "eth0",
            ]);
            IpAddr::V4(ip)
        })
        .collect()
}

/// Opens `per_source` handshaken unpaired sessions from each source
/// address at once, on a thread of the attacker's host, and keeps those the
/// zombie let through until `hold` says to let go. Sends how many got
/// through and are still open; returns how many of those the zombie had
/// ended by then.
fn flood(
    attacker: &Host,
    target: SocketAddr,
    sources: Vec<Option<IpAddr>>,
    per_source: usize,
    hold: std::sync::mpsc::Receiver<()>,
    open: std::sync::mpsc::Sender<usize>,
) -> std::thread::JoinHandle<(usize, usize)> {
    attacker::spawn_on(&attacker.ns, move || async move {
        let mut set = tokio::task::JoinSet::new();
        for from in sources {
            for _ in 0..per_source {
                set.spawn(intrude(target, from));
            }
        }
        let held: Vec<Intruder> = set.join_all().await.into_iter().flatten().collect();
        // Some got through and were displaced by later ones.
        let open_now = held.iter().filter(|i| !i.ended()).count();
        open.send(open_now).unwrap();
        // The channel layer's tasks keep the sessions until told to let go.
        let _ = tokio::task::spawn_blocking(move || hold.recv()).await;
        (held.len(), held.iter().filter(|i| i.ended()).count())
    })
}

#[test]
fn a_flood_of_unpaired_sessions_holds_few_descriptors_and_never_keeps_the_paired_master_out() {
    let s = Setup::new(&[]);
    let pid = s.zombie.proc.pid();
    let (fds_before, rss_before) = (descriptors(pid), rss_kib(pid));
    let sources: [(&str, Vec<Option<IpAddr>>); 2] = [
        ("one address", vec![None]),
        (
            "twelve addresses",
            add_addresses(s.attacker(), 12)
                .into_iter()
                .map(Some)
                .collect(),
        ),
    ];
    for (what, sources) in sources {
        let per_source = 1100 / sources.len();
        let (hold_tx, hold_rx) = std::sync::mpsc::channel();
        let (open_tx, open_rx) = std::sync::mpsc::channel();
        let started = Instant::now();
        let attack = flood(
            s.attacker(),
            s.target(),
            sources,
            per_source,
            hold_rx,
            open_tx,
        );
        let through = open_rx.recv().expect("the flood ran");
        let (fds, rss) = (descriptors(pid), rss_kib(pid));
        eprintln!(
            "{what}: {through} of 1100 unpaired sessions got through in {:.1} s; the zombie holds {fds} descriptors (before: {fds_before}), RSS {} MiB (before: {} MiB)",
            started.elapsed().as_secs_f64(),
            rss / 1024,
            rss_before / 1024
        );
        s.assert_ping_works(&format!(
            "while {through} unpaired sessions from {what} are held"
        ));
        assert!(
            through <= limits::MAX_UNPAIRED,
            "{what}: {through} unpaired sessions got through; the cap is {}",
            limits::MAX_UNPAIRED
        );
        assert!(
            fds <= fds_before + limits::MAX_UNPAIRED + 8,
            "{what}: the zombie holds {fds} descriptors (before: {fds_before})"
        );
        // Unpaired sessions that say nothing end after the idle timeout.
        std::thread::sleep(limits::UNPAIRED_IDLE_TIMEOUT + secs(5));
        hold_tx.send(()).unwrap();
        let (held, ended) = attack.join().expect("the attacker's thread");
        assert_eq!(
            ended,
            held,
            "{what}: only {ended} of {held} idle unpaired sessions were ended by the zombie after {:?}",
            limits::UNPAIRED_IDLE_TIMEOUT
        );
        let settled = common::until(secs(5), || {
            (descriptors(pid) <= fds_before + 2).then_some(())
        });
        assert!(
            settled.is_some(),
            "{what}: the zombie still holds {} descriptors (before: {fds_before})",
            descriptors(pid)
        );
    }
    s.assert_ping_works("after the floods");
}

#[test]
fn an_unpaired_peer_gets_no_channel_and_no_endless_control_message() {
    let s = Setup::new(&[]);
    let target = s.target();
    let outcome: Result<(), String> = on(s.attacker(), move || async move {
        // A channel is reset at once, whatever its label.
        let intruder = intrude(target, None).await?;
        let mut channel = intruder
            .mux
            .open(zos_netproto::wire::FILESHARE_LABEL)
            .map_err(|e| e.to_string())?;
        let _ = channel.send(&[0u8; 1 << 16]).await;
        match tokio::time::timeout(attacker::ANSWER, channel.recv()).await {
            Ok(Err(e)) if e.to_string().contains("reset") => {}
            other => {
                return Err(format!(
                    "the channel was not reset by the zombie: {other:?}"
                ));
            }
        }
        // A control message that never ends: the zombie ends the session
        // long before 16 MiB are through.
        let intruder = intrude(target, None).await?;
        let sent =
            tokio::time::timeout(secs(20), intruder.control.send(&vec![0u8; 16 << 20])).await;
        match sent {
            Ok(Err(_)) => Ok(()),
            Ok(Ok(())) => Err("the zombie took a 16 MiB control message whole".into()),
            Err(_) => {
                Err("the 16 MiB control message neither went through nor failed in 20 s".into())
            }
        }
    });
    if let Err(e) = outcome {
        panic!("{e}\n--- zombie log ---\n{}", s.zombie.proc.log());
    }
    s.assert_ping_works("after the channel and the endless message");
}

#[test]
fn accept_errors_pause_the_listener_instead_of_spinning() {
    let lan = Lan::new(&["z1", "a"]);
    let z = lan.host("z1");
    // A zombie's own descriptors, measured on a first run.
    let baseline = {
        let zombie = zos::start_zombie(z, "sturdy", &[]);
        std::thread::sleep(secs(1));
        descriptors(zombie.proc.pid())
    };
    // Room for a few connections only: a handful of them exhaust it.
    let limit = (baseline + 4).to_string();
    let nofile = format!("--nofile={limit}:{limit}");
    let proc = z.spawn_program(
        "prlimit",
        &[&nofile, common::host::ZOS, "zombie", "--name", "sturdy"],
        &[],
    );
    let line = proc.wait_log("listening on", zos::STARTUP);
    let port = zos::parse_port(&line).expect("a port");
    let target = SocketAddr::new(z.addr.into(), port);
    // Plain TCP connections that say nothing: the zombie accepts until it
    // has no descriptor left; the rest wait in its queue.
    let hold = on(lan.host("a"), move || async move {
        let mut held = Vec::new();
        for _ in 0..12 {
            if let Ok(s) = tokio::net::TcpStream::connect(target).await {
                held.push(s.into_std().unwrap());
            }
        }
        held
    });
    assert!(
        proc.try_wait_log("Too many open files", secs(5)).is_some(),
        "the zombie never ran out of descriptors ({} connections, limit {limit}):\n{}",
        hold.len(),
        proc.log()
    );
    let pid = proc.pid();
    let cpu_before = attacker::cpu_ticks(pid);
    let lines_before = proc.log().lines().count();
    let window = Duration::from_secs(5);
    std::thread::sleep(window);
    let cpu = attacker::cpu_ticks(pid) - cpu_before;
    let lines = proc
        .log()
        .lines()
        .skip(lines_before)
        .filter(|l| l.contains("accept"))
        .count();
    // SAFETY: sysconf(3) has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let cpu_share = cpu as f64 / hz as f64 / window.as_secs_f64();
    eprintln!(
        "out of descriptors for {window:?}: {:.0} % of a core, {lines} log lines about accept",
        cpu_share * 100.0
    );
    // One warning per back-off period (1 s) at most.
    assert!(
        lines <= 7,
        "{lines} log lines about accept in {window:?} while out of descriptors:\n{}",
        proc.log()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        cpu_share < 0.2,
        "the zombie used {:.0} % of a core while out of descriptors",
        cpu_share * 100.0
    );
    assert!(
        proc.log().contains(&format!("descriptor limit {limit}")),
        "the daemon did not log its descriptor limit:\n{}",
        proc.log()
    );
    drop(hold);
}
