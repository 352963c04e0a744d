//! Issue 11's master window polish, drawn headless: a domination waiting
//! for the zombie's user shows a countdown and Cancel (which withdraws it),
//! errors are shown in full (wrapped, never cut), Pair and Ping are enabled
//! only when they make sense, and a zombie that revoked this master says
//! "pair again".

mod common;

use std::time::Duration;

use common::harness::Harness;
use zos_gui::worker::{Command, Event as WorkerEvent};
use zos_netproto::Level;
use zos_netproto::discovery::HostInfo;

fn host(name: &str) -> HostInfo {
    common::migrants::host(name, 7)
}

fn paired(h: &mut Harness, name: &str) {
    let fp = h
        .model
        .hosts
        .iter()
        .find(|x| x.name == name)
        .unwrap()
        .fingerprint
        .clone();
    h.model.paired.insert(fp, Level::Complete);
    h.frames(2, vec![]);
}

#[test]
fn a_domination_waiting_for_the_zombies_user_counts_down_and_cancel_withdraws_it() {
    let mut h = Harness::new(vec![host("desk")]);
    paired(&mut h, "desk");
    let desk = h.model.hosts[0].instance.clone();
    let dominate = h.text_rect("Dominate", 0.0).center();
    h.click(dominate);
    assert_eq!(h.commands, vec![Command::Dominate { host: desk.clone() }]);
    h.commands.clear();
    h.model.apply(WorkerEvent::DominationAsking {
        host: desk.clone(),
        timeout: Duration::from_secs(45),
    });
    h.frames(2, vec![]);
    let texts: Vec<String> = h.texts().into_iter().map(|(t, _)| t).collect();
    assert!(
        texts.iter().any(|t| t == "desk's user is asked"),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t == "45 s left" || t == "44 s left"),
        "{texts:?}"
    );
    let cancel = h.text_rect("Cancel", 0.0).center();
    h.click(cancel);
    assert_eq!(
        h.commands,
        vec![Command::CancelDomination { host: desk.clone() }]
    );
    assert!(h.texts().iter().any(|(t, _)| t == "withdrawing…"));
    // The daemon's answer to a withdrawn request is no error to show.
    h.model.apply(WorkerEvent::Domination {
        host: desk,
        result: Err("daemon closed the control connection without a reply".into()),
    });
    h.frames(2, vec![]);
    assert!(!h.texts().iter().any(|(t, _)| t.contains("closed")));
    assert!(h.texts().iter().any(|(t, _)| t == "Dominate"));
}

#[test]
fn a_long_error_is_shown_in_full() {
    let mut h = Harness::new(vec![host("desk")]);
    paired(&mut h, "desk");
    let desk = h.model.hosts[0].instance.clone();
    let message = "zombie desk refused domination: the user of desk refused, and this sentence goes on for long enough to need several lines in a tile";
    h.model.start_domination(&desk, false);
    h.model.apply(WorkerEvent::Domination {
        host: desk,
        result: Err(message.into()),
    });
    h.frames(2, vec![]);
    let (_, rect) = h
        .texts()
        .into_iter()
        .find(|(t, _)| t == message)
        .unwrap_or_else(|| panic!("the message is cut: {:?}", h.texts()));
    assert!(rect.height() > 30.0, "wrapped over lines: {rect:?}");
}

#[test]
fn pair_and_ping_are_enabled_only_when_they_make_sense() {
    let mut h = Harness::new(vec![host("desk")]);
    // Not paired: Pair… works, Ping does nothing.
    let ping = h.text_rect("Ping", 0.0).center();
    h.click(ping);
    assert_eq!(h.commands, vec![]);
    let pair = h.text_rect("Pair…", 0.0).center();
    h.click(pair);
    assert!(h.model.pair.open, "Pair… opens the dialog");
    h.model.pair.open = false;
    // Paired: Ping works, Pair… does nothing.
    paired(&mut h, "desk");
    h.click(pair);
    assert!(!h.model.pair.open, "a paired zombie needs no pairing");
    h.click(ping);
    assert!(matches!(h.commands[..], [Command::Ping { .. }]));
}

#[test]
fn a_zombie_that_revoked_this_master_says_pair_again() {
    let mut revoked = host("desk");
    revoked.revoked = true;
    let mut h = Harness::new(vec![revoked]);
    paired(&mut h, "desk");
    assert!(
        h.texts()
            .iter()
            .any(|(t, _)| t == "not trusted by desk any more — pair again"),
        "{:?}",
        h.texts()
    );
    let dominate = h.text_rect("Dominate", 0.0).center();
    h.click(dominate);
    let ping = h.text_rect("Ping", 0.0).center();
    h.click(ping);
    assert_eq!(h.commands, vec![], "neither Dominate nor Ping");
    let pair = h.text_rect("Pair…", 0.0).center();
    h.click(pair);
    assert!(h.model.pair.open, "pairing again is offered");
}

/// The real worker against a fake daemon whose zombie asks its user: the
/// countdown comes as an event, and Cancel closes the connection (the
/// daemon sees its client leave, which withdraws the request).
#[test]
fn cancel_closes_the_dominate_connection_so_the_daemon_withdraws() {
    use std::sync::mpsc;
    use zos_netproto::control::{Reply, Request};
    let (left_tx, left) = mpsc::channel();
    let left_tx = std::sync::Mutex::new(left_tx);
    let daemon =
        common::fake_daemon::FakeDaemon::start_scripted("gui-cancel", move |request, replier| {
            if let Request::Dominate { .. } = request {
                replier.send(&Reply::Asking {
                    zombie: "desk".into(),
                    timeout_s: 45,
                });
                // Wait for the client to leave: sending fails once it has.
                let started = std::time::Instant::now();
                while replier.send(&Reply::Progress {
                    message: "still asking".into(),
                }) {
                    std::thread::sleep(Duration::from_millis(50));
                    if started.elapsed() > Duration::from_secs(20) {
                        return;
                    }
                }
                let _ = left_tx.lock().unwrap().send(started.elapsed());
            }
        });
    let worker = zos_gui::worker::Worker::spawn(daemon.socket().to_path_buf(), || {});
    worker.send(Command::Dominate {
        host: "desk".into(),
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut asked = false;
    while !asked && std::time::Instant::now() < deadline {
        asked = worker.drain().into_iter().any(|e| {
            e == WorkerEvent::DominationAsking {
                host: "desk".into(),
                timeout: Duration::from_secs(45),
            }
        });
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(asked, "no countdown event");
    worker.send(Command::CancelDomination {
        host: "desk".into(),
    });
    left.recv_timeout(Duration::from_secs(5))
        .expect("the daemon never saw the client leave");
}
