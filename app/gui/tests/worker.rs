//! The window's model and drawing fed by the real worker thread, talking to
//! a fake daemon over the control socket: live host updates, the log line
//! tests rely on, ping, pairing, and a daemon that goes away.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake_daemon::FakeDaemon;
use eframe::egui;
use zos_gui::model::{Model, PairState, PingState};
use zos_gui::worker::{Command, Worker};
use zos_netproto::Level;
use zos_netproto::PublicKey;
use zos_netproto::control::{Reply, Request};
use zos_netproto::discovery::HostInfo;
use zos_netproto::trust::PeerEntry;

fn z1_key() -> PublicKey {
    PublicKey([7; 32])
}

fn host(name: &str) -> HostInfo {
    HostInfo {
        instance: format!("{name}._zos._tcp.local."),
        name: name.into(),
        host: format!("{name}.local."),
        version: 1,
        fingerprint: z1_key().fingerprint().0,
        addrs: vec![],
        port: 4000,
        cores: 2,
        load1: 0.25,
        mem_free_mib: 1000,
        levels: vec![Level::Complete],
        dominated: None,
        revoked: false,
    }
}

fn fake_master(hosts: Arc<Mutex<Vec<HostInfo>>>) -> FakeDaemon {
    let trusted = Arc::new(Mutex::new(Vec::new()));
    FakeDaemon::start("gui-worker-test", move |request| match request {
        Request::TrustList => vec![Reply::Trust {
            entries: trusted.lock().unwrap().clone(),
        }],
        Request::Hosts => vec![Reply::Hosts {
            hosts: hosts.lock().unwrap().clone(),
        }],
        Request::Status => vec![Reply::Status(common::migrants::status())],
        Request::Ping { host, .. } => vec![
            Reply::Pong {
                seq: 0,
                rtt_us: 1500,
                peer: host,
            },
            Reply::Done,
        ],
        Request::Pair { code, .. } if code == "111111" => {
            trusted.lock().unwrap().push(PeerEntry {
                key: z1_key().to_hex(),
                name: "z1".into(),
                level: Level::Complete,
                added: 0,
            });
            vec![Reply::Paired {
                name: "z1".into(),
                fingerprint: "z1-fingerprint".into(),
                level: Level::Complete,
            }]
        }
        _ => vec![Reply::Error {
            message: "wrong code".into(),
        }],
    })
}

/// Log lines captured from the test's own thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines().map(str::to_owned).collect()
    }
}

/// Drains the worker into the model and draws, until `done` holds.
fn run_until(
    ctx: &egui::Context,
    worker: &Worker,
    model: &mut Model,
    mut done: impl FnMut(&Model) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(model) {
        assert!(Instant::now() < deadline, "timed out; model: {model:?}");
        for event in worker.drain() {
            model.apply(event);
        }
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(
                egui::Pos2::ZERO,
                egui::vec2(900.0, 600.0),
            )),
            ..Default::default()
        };
        let output = ctx.run_ui(input, |ui| {
            zos_gui::ui::draw(ui, model);
        });
        output.drop_without_applying_deltas();
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn live_hosts_ping_pair_and_a_vanishing_daemon() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let hosts = Arc::new(Mutex::new(vec![host("z2"), host("z1")]));
    let daemon = fake_master(hosts.clone());
    let worker = Worker::spawn(daemon.socket().to_path_buf(), || {});
    let ctx = egui::Context::default();
    let mut model = Model::default();

    run_until(&ctx, &worker, &mut model, |m| {
        m.hosts.len() == 2 && m.status.is_some()
    });
    assert_eq!(model.status.as_ref().unwrap().name, "laptop");

    hosts.lock().unwrap().retain(|h| h.name != "z2");
    run_until(&ctx, &worker, &mut model, |m| m.hosts.len() == 1);

    worker.send(model.start_ping("z1._zos._tcp.local."));
    run_until(&ctx, &worker, &mut model, |m| {
        m.pings.values().any(|p| *p != PingState::Busy)
    });
    assert_eq!(
        model.pings["z1._zos._tcp.local."],
        PingState::Rtt(Duration::from_micros(1500))
    );

    model.open_pairing(None);
    model.pair.code = "222222".into();
    worker.send(model.start_pairing().expect("ready to pair"));
    run_until(&ctx, &worker, &mut model, |m| {
        m.pair.state != PairState::Busy
    });
    assert_eq!(model.pair.state, PairState::Failed("wrong code".into()));
    model.pair.code = "111111".into();
    model.pair.state = PairState::Idle;
    worker.send(Command::Pair {
        host: "z1._zos._tcp.local.".into(),
        code: "111111".into(),
    });
    model.pair.state = PairState::Busy;
    run_until(&ctx, &worker, &mut model, |m| {
        m.pair.state != PairState::Busy
    });
    assert_eq!(
        model.pair.state,
        PairState::Paired("z1".into(), Level::Complete)
    );

    drop(daemon);
    run_until(&ctx, &worker, &mut model, |m| {
        m.daemon_error.is_some() && m.hosts.is_empty()
    });
    let error = model.daemon_error.clone().unwrap();
    assert!(error.contains("no daemon answers"), "{error}");

    let shown: Vec<String> = captured
        .lines()
        .into_iter()
        .filter_map(|l| l.split_once("zos_gui::model: ").map(|(_, m)| m.to_owned()))
        .collect();
    assert_eq!(
        shown,
        vec![
            "window shows 2 hosts: z1, z2",
            "window shows 1 hosts: z1",
            "window shows 0 hosts: ",
        ]
    );
}
