//! A migrant task as the window reads it from the daemon's [`TaskInfo`]:
//! where it runs, in what state, since when, and how old its last image is.
//! The one place that knows the task list's migrant fields.

use zos_netproto::control::{TaskInfo, task_state};

/// The kind of a task that moves between hosts.
pub const MIGRANT: &str = "migrant";

/// Whether `task` can move (a migrant, not a shared app).
pub fn is_migrant(task: &TaskInfo) -> bool {
    task.kind == MIGRANT
}

/// Where `task` runs: a host name, the master's own when home; empty if
/// the daemon did not say.
pub fn where_(task: &TaskInfo) -> &str {
    &task.r#where
}

/// Whether `task` runs on the master whose name is `master` (or the daemon
/// did not say otherwise).
pub fn is_home(task: &TaskInfo, master: &str) -> bool {
    let place = where_(task);
    place.is_empty() || place == master
}

/// Whether the zombie holding `task` vanished (`lost`).
pub fn is_lost(task: &TaskInfo) -> bool {
    task.state == task_state::LOST
}

/// Whether the daemon reports `task` in the middle of a move.
pub fn is_moving(task: &TaskInfo) -> bool {
    task.state == task_state::MOVING
}

/// Whether `task` was suspended (`zos suspend`): it runs nowhere until resumed.
pub fn is_suspended(task: &TaskInfo) -> bool {
    task.state == task_state::SUSPENDED
}

/// Whether `task` has ended (it stays listed a while).
pub fn is_exited(task: &TaskInfo) -> bool {
    task.state == task_state::EXITED
}

/// Where, in words, and what it does: "at home", "running on desk",
/// "moving to desk", "lost on desk", "exited 0", "suspended" (`master` is the master's
/// own name).
pub fn place(task: &TaskInfo, master: &str) -> String {
    let at = where_(task);
    match task.state.as_str() {
        task_state::MOVING => match &task.to {
            Some(to) if to == master => "coming home".to_owned(),
            Some(to) => format!("moving to {to}"),
            None => format!("moving from {at}"),
        },
        task_state::LOST => format!("lost on {at}"),
        task_state::EXITED => match task.exit {
            Some(code) => format!("exited {code}"),
            None => "exited".to_owned(),
        },
        task_state::SUSPENDED => "suspended".to_owned(),
        _ if is_home(task, master) => "at home".to_owned(),
        task_state::RUNNING => format!("running on {at}"),
        other => format!("{other} on {at}"),
    }
}

/// Seconds since the task's state last changed, at `now_unix`.
pub fn since_s(task: &TaskInfo, now_unix: u64) -> Option<u64> {
    (task.since > 0).then(|| now_unix.saturating_sub(task.since))
}

/// The age of the last image the master holds, in seconds.
pub fn image_age_s(task: &TaskInfo) -> Option<u64> {
    task.image_age_s
}

/// The program's name: the last component of the command's first word.
pub fn program(task: &TaskInfo) -> String {
    task.command
        .first()
        .map(|p| p.rsplit('/').next().unwrap_or(p).to_owned())
        .unwrap_or_default()
}

/// The seconds since the Unix epoch now.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
