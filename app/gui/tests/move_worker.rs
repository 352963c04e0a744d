//! Moves through the real worker thread and the control socket, against
//! the fake master of `common::migrants`: `Dominate` then `Migrate` with
//! each progress reply reaching the model while the worker keeps polling,
//! `Home`, a zombie that refuses, and `CheckpointTask`.

mod common;

use std::time::{Duration, Instant};

use common::migrants::{self, FakeMaster, MASTER, State, dominated, host, migrant};
use zos_gui::model::Model;
use zos_gui::moves::MoveState;
use zos_gui::worker::{Command, Event, Worker};
use zos_netproto::Level;
use zos_netproto::control::{Compression, Request};

/// The fake master, pausing `step` between progress replies.
fn master(tag: &str, step: Duration) -> FakeMaster {
    let state = State {
        hosts: vec![dominated(host("desk", 2), Level::Complete), host("lab", 3)],
        paired: vec![
            ("desk".into(), 2, Level::Complete),
            ("lab".into(), 3, Level::Complete),
        ],
        tasks: vec![migrant(3, &["sleep", "1000"], MASTER)],
        ..State::default()
    };
    FakeMaster::start(tag, state, step)
}

/// Feeds the worker's events to the model until `done`; returns the events.
fn pump(worker: &Worker, model: &mut Model, mut done: impl FnMut(&Model) -> bool) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while !done(model) {
        assert!(Instant::now() < deadline, "timed out; model: {model:?}");
        for event in worker.drain() {
            seen.push(event.clone());
            model.apply(event);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    seen
}

fn ended(model: &Model, task: u64) -> bool {
    matches!(
        model.moves.get(task),
        Some(MoveState::Done { .. } | MoveState::Failed { .. })
    )
}

#[test]
fn dominate_then_migrate_streams_progress_to_the_model_while_polling_goes_on() {
    // 15 replies 80 ms apart: the move lasts longer than two polls.
    let fake = master("gui-move-worker", Duration::from_millis(80));
    let worker = Worker::spawn(fake.daemon.socket().to_path_buf(), || {});
    let mut model = Model::default();
    pump(&worker, &mut model, |m| {
        m.tasks.len() == 1 && m.hosts.len() == 2
    });

    let command = model.begin(Command::Migrate {
        task: 3,
        host: "lab".into(),
        dominate_first: true,
    });
    worker.send(command);
    let events = pump(&worker, &mut model, |m| ended(m, 3));

    assert_eq!(
        fake.requests(),
        vec![
            Request::Dominate {
                host: "lab".into(),
                level: Level::Complete
            },
            Request::Migrate {
                task: 3,
                host: "lab".into(),
                compress: Compression::Auto,
                stop_and_copy: false,
                image_every_s: None,
            },
        ]
    );
    let steps: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::MoveStep { step, .. } => Some(step.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(steps, ["dominating lab at complete…"]);
    let progress: Vec<(String, u64)> = events
        .iter()
        .filter_map(|e| match e {
            Event::MoveProgress { task: 3, progress } => {
                Some((progress.phase.clone(), progress.bytes))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        progress.len(),
        15,
        "every progress reply arrives: {progress:?}"
    );
    assert_eq!(progress[0].0, "check");
    assert_eq!(
        progress[7],
        ("send image".into(), migrants::IMAGE_BYTES / 2),
        "phases named as people write them"
    );
    assert_eq!(progress[14].0, "commit");
    // The move took 15 × 80 ms; the worker polled (every 500 ms) meanwhile.
    let polls_during_move = events
        .iter()
        .filter(|e| matches!(e, Event::Tasks(_)))
        .count();
    assert!(polls_during_move >= 1, "polling went on during the move");

    let Some(MoveState::Done { outcome, .. }) = model.moves.get(3) else {
        panic!("the move ended well: {:?}", model.moves.get(3))
    };
    assert_eq!(outcome.summary, "moved to lab");
    let phases: Vec<(&str, u64)> = outcome
        .phases
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_micros() as u64))
        .collect();
    let expected: Vec<(String, u64)> = migrants::PHASES
        .iter()
        .map(|(n, us)| (n.replace('-', " "), *us))
        .collect();
    let phases: Vec<(String, u64)> = phases
        .into_iter()
        .map(|(n, us)| (n.to_owned(), us))
        .collect();
    assert_eq!(phases, expected);
    pump(&worker, &mut model, |m| {
        m.task(3).is_some_and(|t| t.r#where == "lab")
    });
}

#[test]
fn home_and_checkpoint_reach_the_daemon_and_a_refusal_comes_back_in_full() {
    let fake = master("gui-move-worker-2", Duration::from_millis(10));
    let worker = Worker::spawn(fake.daemon.socket().to_path_buf(), || {});
    let mut model = Model::default();
    pump(&worker, &mut model, |m| m.tasks.len() == 1);

    // lab is not dominated and the window did not ask to dominate it.
    worker.send(model.begin(Command::Migrate {
        task: 3,
        host: "lab".into(),
        dominate_first: false,
    }));
    pump(&worker, &mut model, |m| ended(m, 3));
    assert_eq!(
        model.moves.get(3),
        Some(&MoveState::Failed {
            message: "lab is not dominated at complete: it refuses migrants".into()
        })
    );

    worker.send(model.begin(Command::Migrate {
        task: 3,
        host: "desk".into(),
        dominate_first: false,
    }));
    pump(&worker, &mut model, |m| {
        matches!(m.moves.get(3), Some(MoveState::Done { .. }))
    });
    worker.send(model.begin(Command::Home {
        task: 3,
        from_image: false,
    }));
    pump(
        &worker,
        &mut model,
        |m| matches!(m.moves.get(3), Some(MoveState::Done { outcome, .. }) if outcome.summary == "came home"),
    );
    worker.send(model.begin(Command::Checkpoint {
        task: 3,
        out: "/home/u/zos-checkpoints/sleep-3".into(),
    }));
    pump(
        &worker,
        &mut model,
        |m| matches!(m.moves.get(3), Some(MoveState::Done { outcome, .. }) if outcome.summary.starts_with("checkpoint")),
    );
    let Some(MoveState::Done { outcome, .. }) = model.moves.get(3) else {
        unreachable!()
    };
    assert_eq!(
        outcome.summary,
        "checkpoint saved: /home/u/zos-checkpoints/sleep-3/image.zckpt (64.0 MiB, frozen 41 ms)"
    );
    assert_eq!(
        fake.requests()[1..],
        [
            Request::Migrate {
                task: 3,
                host: "desk".into(),
                compress: Compression::Auto,
                stop_and_copy: false,
                image_every_s: None,
            },
            Request::Home {
                task: 3,
                from_image: false,
                stop_and_copy: false,
            },
            Request::CheckpointTask {
                task: 3,
                out: "/home/u/zos-checkpoints/sleep-3".into()
            },
        ]
    );
}
