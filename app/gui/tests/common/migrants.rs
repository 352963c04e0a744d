//! A fake master daemon with migrant tasks: it lists hosts, paired zombies
//! and tasks, and answers `Dominate`; `Migrate` and `Home` with scripted
//! progress (check, freeze, send-files, send-image in steps, restore,
//! commit) and the phase times at the end, as the real daemon's control
//! protocol says; and `CheckpointTask` with `Checkpointed`. Every move request is recorded. A
//! move can be held halfway through its image (`hold`) so a test can look
//! at the window while the progress bar shows.
#![allow(dead_code)]

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use zos_netproto::Level;
use zos_netproto::PublicKey;
use zos_netproto::control::{Reply, Request, StatusInfo, TaskInfo, task_state};
use zos_netproto::discovery::{Domination, HostInfo};
use zos_netproto::trust::PeerEntry;
use zos_netproto::wire::Role;

use super::fake_daemon::{FakeDaemon, Replier};

/// The master's name.
pub const MASTER: &str = "laptop";
/// The size of the scripted image.
pub const IMAGE_BYTES: u64 = 256 << 20;
/// The phase times every scripted move reports, microseconds.
pub const PHASES: [(&str, u64); 6] = [
    ("check", 3_100),
    ("freeze", 12_400),
    ("send-files", 850),
    ("send-image", 2_104_000),
    ("restore", 208_000),
    ("commit", 4_300),
];

/// What the fake master knows and what it was asked.
#[derive(Debug, Default)]
pub struct State {
    /// The zombies it sees.
    pub hosts: Vec<HostInfo>,
    /// The zombies it is paired with (name, key byte, level).
    pub paired: Vec<(String, u8, Level)>,
    /// Its tasks.
    pub tasks: Vec<TaskInfo>,
    /// Every `Dominate`, `Migrate`, `Home` and `CheckpointTask`, in order.
    pub requests: Vec<Request>,
    /// While true, a move waits halfway through its image.
    pub hold: bool,
    /// How many progress replies the current move has sent.
    pub progress_sent: usize,
}

/// The fake master: its daemon, its shared state and the pause between
/// progress replies.
pub struct FakeMaster {
    /// The control socket's server.
    pub daemon: FakeDaemon,
    /// What it knows; tests change it and read the requests.
    pub state: Arc<(Mutex<State>, Condvar)>,
}

impl FakeMaster {
    /// Starts the fake master with `state`, pausing `step` between progress
    /// replies.
    pub fn start(tag: &str, state: State, step: Duration) -> FakeMaster {
        let state = Arc::new((Mutex::new(state), Condvar::new()));
        let shared = state.clone();
        let daemon = FakeDaemon::start_scripted(tag, move |request, replier| {
            answer(&shared, step, request, replier)
        });
        FakeMaster { daemon, state }
    }

    /// Runs `f` on the state (and wakes a held move).
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let (lock, wake) = &*self.state;
        let r = f(&mut lock.lock().unwrap());
        wake.notify_all();
        r
    }

    /// The move requests so far.
    pub fn requests(&self) -> Vec<Request> {
        self.with(|s| s.requests.clone())
    }
}

/// The key of a paired zombie, from one byte.
pub fn key(byte: u8) -> PublicKey {
    PublicKey([byte; 32])
}

/// A zombie seen on the LAN, its key from `byte`.
pub fn host(name: &str, byte: u8) -> HostInfo {
    HostInfo {
        instance: format!("{name}._zos._tcp.local."),
        name: name.into(),
        host: format!("{name}.local."),
        version: 1,
        fingerprint: key(byte).fingerprint().0,
        addrs: vec![],
        port: 4000,
        cores: 8,
        load1: 0.2,
        mem_free_mib: 8192,
        levels: vec![Level::Partial, Level::Complete],
        dominated: None,
        revoked: false,
    }
}

/// A migrant task running at `place`.
pub fn migrant(id: u64, argv: &[&str], place: &str) -> TaskInfo {
    TaskInfo {
        id,
        kind: "migrant".into(),
        command: argv.iter().map(|a| a.to_string()).collect(),
        display: None,
        state: if place == MASTER {
            task_state::HOME
        } else {
            task_state::RUNNING
        }
        .into(),
        pid: Some(4000 + id as u32),
        host: None,
        r#where: place.to_owned(),
        since: now_unix().saturating_sub(240),
        epoch: Some(1),
        image_age_s: Some(720),
        ..TaskInfo::default()
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The master's status: MASTER.
pub fn status() -> StatusInfo {
    StatusInfo {
        role: Role::Master,
        name: MASTER.into(),
        fingerprint: "7f3a91c2d4e5b608".into(),
        listen: None,
        trusted: 0,
        pairing: None,
        sessions: vec![],
        asking: None,
        pairing_attempts: Vec::new(),
        session: None,
    }
}

/// Marks `host` dominated by this master at `level`.
pub fn dominated(mut host: HostInfo, level: Level) -> HostInfo {
    host.dominated = Some(Domination {
        master: MASTER.into(),
        level,
    });
    host
}

fn answer(shared: &(Mutex<State>, Condvar), step: Duration, request: Request, out: &mut Replier) {
    let (lock, _) = shared;
    let reply = {
        let mut state = lock.lock().unwrap();
        match &request {
            Request::Hosts => Reply::Hosts {
                hosts: state.hosts.clone(),
            },
            Request::Status => Reply::Status(status()),
            Request::Tasks => Reply::Tasks {
                tasks: state.tasks.clone(),
            },
            Request::TrustList => Reply::Trust {
                entries: state
                    .paired
                    .iter()
                    .map(|(name, byte, level)| PeerEntry {
                        key: key(*byte).to_hex(),
                        name: name.clone(),
                        level: *level,
                        added: 0,
                    })
                    .collect(),
            },
            Request::Dominate { host, level } => {
                state.requests.push(request.clone());
                let level = *level;
                match state.hosts.iter_mut().find(|h| &h.name == host) {
                    Some(h) => {
                        *h = dominated(h.clone(), level);
                        Reply::Dominated {
                            name: host.clone(),
                            level,
                            timing: vec![("zt".into(), 80_000)],
                        }
                    }
                    None => Reply::Error {
                        message: format!("no zombie called {host}"),
                    },
                }
            }
            Request::Migrate { .. } | Request::Home { .. } => {
                state.requests.push(request.clone());
                drop(state);
                return scripted_move(shared, step, &request, out);
            }
            Request::CheckpointTask { task, out } => {
                state.requests.push(request.clone());
                Reply::Checkpointed {
                    task: *task,
                    path: format!("{out}/image.zckpt"),
                    bytes: 64 << 20,
                    frozen_us: 41_000,
                }
            }
            other => Reply::Error {
                message: format!("not in this fake: {other:?}"),
            },
        }
    };
    out.send(&reply);
}

/// Progress through every phase, then `Moved`; the task's place and state
/// follow, as `zos tasks` would show them.
fn scripted_move(
    shared: &(Mutex<State>, Condvar),
    step: Duration,
    request: &Request,
    out: &mut Replier,
) {
    let (lock, wake) = shared;
    let (task, to) = match request {
        Request::Migrate { task, host, .. } => (*task, host.clone()),
        Request::Home { task, .. } => (*task, MASTER.to_owned()),
        _ => unreachable!("only moves"),
    };
    {
        let mut state = lock.lock().unwrap();
        let allowed = to == MASTER
            || state.hosts.iter().any(|h| {
                h.name == to
                    && h.dominated
                        .as_ref()
                        .is_some_and(|d| d.level == Level::Complete)
            });
        if !allowed {
            drop(state);
            out.send(&Reply::Error {
                message: format!("{to} is not dominated at complete: it refuses migrants"),
            });
            return;
        }
        state.progress_sent = 0;
        if let Some(t) = state.tasks.iter_mut().find(|t| t.id == task) {
            t.state = task_state::MOVING.into();
            t.since = now_unix();
            t.to = Some(to.clone());
        }
    }
    let progress = |phase: &str, bytes: u64, total: u64| Reply::MoveProgress {
        task,
        phase: phase.into(),
        bytes,
        total,
        rate_bps: 120 << 20,
        eta_s: Some((total - bytes) / (120 << 20) + 1),
        round: None,
        detail: None,
    };
    let mut replies = vec![
        progress("check", 0, 0),
        progress("freeze", 0, 0),
        progress("send-files", 2 << 20, 2 << 20),
    ];
    for tenth in 1..=10 {
        replies.push(progress(
            "send-image",
            IMAGE_BYTES * tenth / 10,
            IMAGE_BYTES,
        ));
    }
    replies.push(progress("restore", 0, 0));
    replies.push(progress("commit", 0, 0));
    for (i, reply) in replies.iter().enumerate() {
        std::thread::sleep(step);
        if !out.send(reply) {
            return;
        }
        let mut state = lock.lock().unwrap();
        state.progress_sent += 1;
        // Hold at 40 % of the image while the test looks.
        if i == 6 {
            while state.hold {
                state = wake.wait(state).unwrap();
            }
        }
    }
    {
        let mut state = lock.lock().unwrap();
        if let Some(t) = state.tasks.iter_mut().find(|t| t.id == task) {
            t.state = if to == MASTER {
                task_state::HOME
            } else {
                task_state::RUNNING
            }
            .into();
            t.to = None;
            t.since = now_unix();
            t.r#where = to.clone();
            t.epoch = t.epoch.map(|e| e + 1);
            t.image_age_s = Some(0);
        }
    }
    out.send(&Reply::Moved {
        task,
        to,
        phases: PHASES.iter().map(|(n, us)| (n.to_string(), *us)).collect(),
        image_bytes: 64 << 20,
        precopy: None,
    });
}
