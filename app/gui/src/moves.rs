//! The moves the window started: a migration, a trip home or a checkpoint
//! per task, from the user's request through the daemon's progress replies
//! to the phase times at the end (shown for [`RESULT_SHOWN`]) or the error
//! (shown until the user dismisses it or starts another move).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a tile shows the phase times of a move that ended.
pub const RESULT_SHOWN: Duration = Duration::from_secs(10);

/// What a move does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MoveKind {
    /// To a zombie, by the name the daemon knows it by.
    Migrate {
        /// The zombie.
        to: String,
    },
    /// Back to the master (`from_image`: restored from its last image).
    Home {
        /// Whether it comes from the last image the master holds.
        from_image: bool,
    },
    /// A suspended task brought back from its snapshot, on the master or
    /// (`on`) moved to a zombie after.
    Resume {
        /// The zombie, if not the master.
        on: Option<String>,
    },
    /// An image saved into a directory; the task runs on.
    Checkpoint {
        /// The directory.
        out: String,
    },
}

impl MoveKind {
    /// What is happening, for the tile: "moving to desk".
    pub fn doing(&self) -> String {
        match self {
            MoveKind::Migrate { to } => format!("moving to {to}"),
            MoveKind::Home { from_image: false } => "coming home".to_owned(),
            MoveKind::Home { from_image: true } => "coming home from its last image".to_owned(),
            MoveKind::Resume { on: None } => "resuming".to_owned(),
            MoveKind::Resume { on: Some(host) } => format!("resuming on {host}"),
            MoveKind::Checkpoint { .. } => "saving a checkpoint".to_owned(),
        }
    }
}

/// One `MoveProgress` reply.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// check, freeze, send files, send image, restore, commit.
    pub phase: String,
    /// Bytes done in this phase.
    pub bytes: u64,
    /// Bytes the phase will carry; 0 when unknown.
    pub total: u64,
    /// Bytes per second.
    pub rate_bps: u64,
    /// Time left, when the daemon knows it.
    pub eta: Option<Duration>,
}

impl Progress {
    /// The share done, when the total is known.
    pub fn fraction(&self) -> Option<f32> {
        (self.total > 0).then(|| (self.bytes as f64 / self.total as f64).clamp(0.0, 1.0) as f32)
    }
}

/// How a move ended well.
#[derive(Clone, Debug, PartialEq)]
pub struct MoveOutcome {
    /// In words: "moved to desk", "home", "checkpoint saved in …".
    pub summary: String,
    /// Each phase's time, in order (empty when the daemon gave none).
    pub phases: Vec<(String, Duration)>,
}

impl MoveOutcome {
    /// The time of all phases together.
    pub fn total(&self) -> Duration {
        self.phases.iter().map(|(_, d)| *d).sum()
    }
}

/// A task's move, as the window shows it.
#[derive(Clone, Debug, PartialEq)]
pub enum MoveState {
    /// Asked for; the daemon's latest word on it.
    Running {
        /// What it does.
        kind: MoveKind,
        /// A step before the move itself ("dominating desk at complete…").
        step: Option<String>,
        /// The latest progress reply.
        progress: Option<Progress>,
    },
    /// Ended well at `at`.
    Done {
        /// What happened.
        outcome: MoveOutcome,
        /// When the window heard it.
        at: Instant,
    },
    /// Did not happen (or failed before it could start), and why.
    Failed {
        /// The daemon's (or the window's) reason, in full.
        message: String,
    },
}

/// Every task's move, by task id, and the line the status bar shows.
#[derive(Debug, Default)]
pub struct Moves {
    by_task: BTreeMap<u64, MoveState>,
    /// The latest move that ended, for the status bar: its summary and
    /// phase times, or its error.
    pub last: Option<Result<(u64, MoveOutcome), (u64, String)>>,
}

impl Moves {
    /// The state of `task`'s move, if the window knows one.
    pub fn get(&self, task: u64) -> Option<&MoveState> {
        self.by_task.get(&task)
    }

    /// Whether `task` is moving now (the window asked and no answer came).
    pub fn is_running(&self, task: u64) -> bool {
        matches!(self.by_task.get(&task), Some(MoveState::Running { .. }))
    }

    /// Marks `task` as moving: the request is on its way.
    pub fn start(&mut self, task: u64, kind: MoveKind) {
        self.by_task.insert(
            task,
            MoveState::Running {
                kind,
                step: None,
                progress: None,
            },
        );
    }

    /// A step before the move itself.
    pub fn step(&mut self, task: u64, text: String) {
        if let Some(MoveState::Running { step, .. }) = self.by_task.get_mut(&task) {
            *step = Some(text);
        }
    }

    /// A progress reply (ignored unless the task is moving).
    pub fn progress(&mut self, task: u64, update: Progress) {
        if let Some(MoveState::Running { step, progress, .. }) = self.by_task.get_mut(&task) {
            tracing::debug!(
                "task {task} progress: {} {} of {} bytes",
                update.phase,
                update.bytes,
                update.total
            );
            *step = None;
            *progress = Some(update);
        }
    }

    /// The final answer, heard at `now`.
    pub fn end(&mut self, task: u64, result: Result<MoveOutcome, String>, now: Instant) {
        match result {
            Ok(outcome) => {
                tracing::info!("task {task} {}", describe(&outcome));
                self.last = Some(Ok((task, outcome.clone())));
                self.by_task
                    .insert(task, MoveState::Done { outcome, at: now });
            }
            Err(message) => self.fail(task, message),
        }
    }

    /// A move that did not happen, with its reason.
    pub fn fail(&mut self, task: u64, message: String) {
        tracing::warn!("task {task}: {message}");
        self.last = Some(Err((task, message.clone())));
        self.by_task.insert(task, MoveState::Failed { message });
    }

    /// The user closed the error on `task`'s tile.
    pub fn dismiss(&mut self, task: u64) {
        if matches!(self.by_task.get(&task), Some(MoveState::Failed { .. })) {
            self.by_task.remove(&task);
        }
    }

    /// Drops the phase times shown for longer than [`RESULT_SHOWN`] at
    /// `now`; returns how long until the next one goes, if any is shown.
    pub fn expire(&mut self, now: Instant) -> Option<Duration> {
        self.by_task.retain(|_, state| match state {
            MoveState::Done { at, .. } => now.saturating_duration_since(*at) < RESULT_SHOWN,
            _ => true,
        });
        self.by_task
            .values()
            .filter_map(|state| match state {
                MoveState::Done { at, .. } => {
                    Some(RESULT_SHOWN.saturating_sub(now.saturating_duration_since(*at)))
                }
                _ => None,
            })
            .min()
    }

    /// Forgets the moves of tasks that no longer exist.
    pub fn retain_tasks(&mut self, exists: impl Fn(u64) -> bool) {
        self.by_task.retain(|task, _| exists(*task));
    }
}

/// "moved to desk in 2.41 s: check 3 ms · freeze 12 ms · …".
pub fn describe(outcome: &MoveOutcome) -> String {
    if outcome.phases.is_empty() {
        return outcome.summary.clone();
    }
    format!(
        "{} in {}: {}",
        outcome.summary,
        crate::units::duration(outcome.total()),
        phase_times(&outcome.phases)
    )
}

/// "check 3 ms · freeze 12 ms · send image 2.10 s".
pub fn phase_times(phases: &[(String, Duration)]) -> String {
    phases
        .iter()
        .map(|(name, d)| format!("{name} {}", crate::units::duration(*d)))
        .collect::<Vec<_>>()
        .join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(bytes: u64, total: u64) -> Progress {
        Progress {
            phase: "send image".into(),
            bytes,
            total,
            rate_bps: 1 << 20,
            eta: Some(Duration::from_secs(3)),
        }
    }

    #[test]
    fn progress_counts_only_while_moving_and_the_result_expires() {
        let mut moves = Moves::default();
        moves.progress(3, progress(1, 2));
        assert_eq!(moves.get(3), None, "no move asked for");
        moves.start(3, MoveKind::Migrate { to: "desk".into() });
        moves.step(3, "dominating desk at complete…".into());
        moves.progress(3, progress(1, 4));
        let Some(MoveState::Running { step, progress, .. }) = moves.get(3) else {
            panic!("running")
        };
        assert_eq!(step, &None, "progress replaces the step");
        assert_eq!(progress.as_ref().unwrap().fraction(), Some(0.25));

        let now = Instant::now();
        let outcome = MoveOutcome {
            summary: "moved to desk".into(),
            phases: vec![
                ("check".into(), Duration::from_millis(3)),
                ("send image".into(), Duration::from_millis(2100)),
            ],
        };
        moves.end(3, Ok(outcome.clone()), now);
        assert!(!moves.is_running(3));
        assert_eq!(
            describe(&outcome),
            "moved to desk in 2.10 s: check 3 ms · send image 2.10 s"
        );
        assert_eq!(
            moves.expire(now + Duration::from_secs(4)),
            Some(Duration::from_secs(6))
        );
        assert!(moves.get(3).is_some());
        assert_eq!(moves.expire(now + RESULT_SHOWN), None);
        assert_eq!(moves.get(3), None);
        assert!(moves.last.is_some(), "the status bar keeps it");
    }

    #[test]
    fn an_error_stays_until_dismissed() {
        let mut moves = Moves::default();
        moves.start(5, MoveKind::Home { from_image: false });
        moves.end(5, Err("desk refused: level partial".into()), Instant::now());
        assert!(moves.expire(Instant::now() + RESULT_SHOWN * 2).is_none());
        assert!(matches!(moves.get(5), Some(MoveState::Failed { .. })));
        moves.dismiss(5);
        assert_eq!(moves.get(5), None);
    }
}
