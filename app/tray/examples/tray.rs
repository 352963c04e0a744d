//! Runs the tray item.
//!
//! `tray SOCKET` talks to the daemon at SOCKET; `tray --demo` first starts
//! an in-process fake zombie daemon that offers code 123456 and hands out
//! new codes from the menu.

#[path = "../tests/common/fake_daemon.rs"]
mod fake_daemon;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use fake_daemon::FakeDaemon;
use zos_netproto::Level;
use zos_netproto::control::{PairCodeInfo, Reply, Request, SessionInfo, StatusInfo};
use zos_netproto::wire::Role;

fn demo() -> FakeDaemon {
    let offered = Arc::new(Mutex::new((
        String::from("123456"),
        Level::Complete,
        Instant::now(),
    )));
    FakeDaemon::start("tray-demo", move |request| {
        let mut offered = offered.lock().unwrap();
        match request {
            Request::Status => {
                let left = 120u64.saturating_sub(offered.2.elapsed().as_secs());
                vec![Reply::Status(StatusInfo {
                    role: Role::Zombie,
                    name: "z1".into(),
                    fingerprint: "1a2b-3c4d-5e6f-7a8b-9c0d".into(),
                    listen: Some("10.0.0.2:40123".into()),
                    trusted: 1,
                    pairing: (left > 0).then(|| PairCodeInfo {
                        code: offered.0.clone(),
                        level: offered.1,
                        expires_in_s: left,
                        attempts_left: 3,
                    }),
                    sessions: vec![SessionInfo {
                        peer: "laptop".into(),
                        fingerprint: "7f3a-91c2".into(),
                        addr: "10.0.0.1:51234".into(),
                        age_s: 42,
                        dominating: None,
                        mount: None,
                        driven: false,
                    }],
                    asking: None,
                    pairing_attempts: Vec::new(),
                    session: None,
                })]
            }
            Request::PairCode { level } => {
                let nanos = std::time::UNIX_EPOCH
                    .elapsed()
                    .unwrap_or_default()
                    .subsec_nanos();
                let code = format!("{:06}", nanos % 1_000_000);
                *offered = (code.clone(), level, Instant::now());
                vec![Reply::PairCode(PairCodeInfo {
                    code,
                    level,
                    expires_in_s: 120,
                    attempts_left: 3,
                })]
            }
            other => vec![Reply::Error {
                message: format!("not in the demo: {other:?}"),
            }],
        }
    })
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let arg = std::env::args().nth(1).unwrap_or_else(|| "--demo".into());
    let _demo;
    let socket = if arg == "--demo" {
        _demo = demo();
        _demo.socket().to_path_buf()
    } else {
        arg.into()
    };
    zos_tray::run(
        socket,
        Box::new(|task| {
            tracing::info!("the demo would open a viewer for task {task}");
            Ok(())
        }),
    )
}
