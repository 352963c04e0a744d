//! Opens the master window.
//!
//! `window SOCKET` talks to the daemon at SOCKET; `window --demo` first
//! starts an in-process fake daemon with three zombies whose load moves and
//! one of which leaves after 20 s (pairing code 123456 works, others fail);
//! `ZOS_DEMO_EXTRA=N` adds N more zombies. `window --migrants` starts the
//! tests' fake master instead: migrant tasks to drag onto desk (dominated),
//! lab (free: the window asks to dominate it) or attic (paired at partial:
//! refused), moves with scripted progress.

#[path = "../tests/common/fake_daemon.rs"]
mod fake_daemon;
#[path = "../tests/common/migrants.rs"]
mod migrants;

use std::time::{Duration, Instant};

use fake_daemon::FakeDaemon;
use zos_netproto::Level;
use zos_netproto::PublicKey;
use zos_netproto::control::{Reply, Request, StatusInfo};
use zos_netproto::discovery::HostInfo;
use zos_netproto::trust::PeerEntry;
use zos_netproto::wire::Role;

/// The demo key of a zombie, from its address's last byte.
fn key(last: u8) -> PublicKey {
    PublicKey([last; 32])
}

fn host(name: &str, cores: u32, load1: f32, mem_free_mib: u64, last: u8) -> HostInfo {
    HostInfo {
        instance: format!("{name}._zos._tcp.local."),
        name: name.into(),
        host: format!("{name}.local."),
        version: 1,
        fingerprint: key(last).fingerprint().0,
        addrs: vec![format!("10.0.0.{last}").parse().unwrap()],
        port: 40123,
        cores,
        load1,
        mem_free_mib,
        levels: vec![Level::Partial, Level::Complete],
        dominated: None,
        revoked: false,
    }
}

fn demo() -> FakeDaemon {
    let start = Instant::now();
    let extra: u8 = std::env::var("ZOS_DEMO_EXTRA")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    FakeDaemon::start("gui-demo", move |request| {
        let t = start.elapsed().as_secs_f32();
        match request {
            Request::Hosts => {
                let mut hosts = vec![
                    host("z1", 8, 0.4 + (t / 3.0).sin().abs(), 11_200, 2),
                    host("lab-pc", 4, 1.7, 2_900, 3),
                ];
                if t < 20.0 {
                    hosts.push(host("z2", 16, 0.05, 760, 4));
                }
                for i in 0..extra {
                    hosts.push(host(&format!("node-{i:02}"), 2, 2.5, 300, 10 + i));
                }
                vec![Reply::Hosts { hosts }]
            }
            Request::Status => vec![Reply::Status(StatusInfo {
                role: Role::Master,
                name: "laptop".into(),
                fingerprint: "7f3a91c2d4e5b608".into(),
                listen: None,
                trusted: 1,
                pairing: None,
                sessions: vec![],
                asking: None,
                pairing_attempts: Vec::new(),
                session: None,
            })],
            Request::TrustList => vec![Reply::Trust {
                entries: vec![PeerEntry {
                    key: key(2).to_hex(),
                    name: "z1".into(),
                    level: Level::Complete,
                    added: 0,
                }],
            }],
            Request::Pair { host, code } if code == "123456" => vec![Reply::Paired {
                name: host.split('.').next().unwrap_or_default().into(),
                fingerprint: "z10c4f9e2b7a11d3".into(),
                level: Level::Complete,
            }],
            Request::Pair { .. } => vec![Reply::Error {
                message: "pairing failed: wrong code (2 attempts left)".into(),
            }],
            Request::Ping { host, .. } => vec![
                Reply::Pong {
                    seq: 0,
                    rtt_us: 420,
                    peer: host,
                },
                Reply::Done,
            ],
            other => vec![Reply::Error {
                message: format!("not in the demo: {other:?}"),
            }],
        }
    })
}

/// Three zombies and three migrants (one lost), moves 250 ms a step.
fn migrants_demo() -> migrants::FakeMaster {
    use migrants::{MASTER, State, dominated, host, migrant};
    let mut lost = migrant(5, &["python3", "sim.py"], "gone");
    lost.state = "lost".into();
    let state = State {
        hosts: vec![
            dominated(host("desk", 2), Level::Complete),
            host("lab", 3),
            host("attic", 4),
        ],
        paired: vec![
            ("desk".into(), 2, Level::Complete),
            ("lab".into(), 3, Level::Complete),
            ("attic".into(), 4, Level::Partial),
        ],
        tasks: vec![
            migrant(3, &["/usr/bin/sleep", "1000"], MASTER),
            migrant(4, &["make", "-j2"], "desk"),
            lost,
        ],
        ..State::default()
    };
    migrants::FakeMaster::start("gui-demo-migrants", state, Duration::from_millis(250))
}

fn main() -> anyhow::Result<()> {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let arg = std::env::args().nth(1).unwrap_or_else(|| "--demo".into());
    let _demo;
    let _migrants;
    let socket = if arg == "--demo" {
        _demo = demo();
        _demo.socket().to_path_buf()
    } else if arg == "--migrants" {
        _migrants = migrants_demo();
        _migrants.daemon.socket().to_path_buf()
    } else {
        arg.into()
    };
    zos_gui::run(
        socket,
        Box::new(|task| {
            tracing::info!("the demo would open a viewer for task {task}");
            Ok(())
        }),
    )
}
