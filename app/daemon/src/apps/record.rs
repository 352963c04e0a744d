//! What a supervisor and its daemon say to each other, and where a
//! supervisor keeps its files.
//!
//! Files of shared app `ID`, all in the runtime dir (0700):
//!
//! - `apps/ID.sock` (0600): the supervisor's socket. One JSON line per
//!   connection asks [`SupervisorRequest::Info`], [`SupervisorRequest::Watch`]
//!   or [`SupervisorRequest::Stop`]; the answers are [`SupervisorEvent`]
//!   lines.
//! - `apps/ID.json` (0600): the [`AppRecord`], written once the app runs, so
//!   that a daemon starting after a crash knows what a dead supervisor left
//!   behind.
//! - `xvnc-PID-N.sock` and `xvnc-PID-N.xauth`: the app's display (RFB socket
//!   and X cookie), named after the supervisor's pid (`zos_display`).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DaemonError, Result};

/// The largest request line a supervisor reads, and the largest record or
/// event line a daemon reads.
pub const MAX_LINE: usize = 64 << 10;

/// What the daemon tells a new supervisor (one JSON line on its stdin).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisorSpec {
    /// The daemon's runtime dir.
    pub runtime: PathBuf,
    /// The task id.
    pub id: u64,
    /// The app's command line.
    pub argv: Vec<String>,
}

/// A running shared app as its supervisor describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRecord {
    /// The task id (the same across daemon restarts).
    pub id: u64,
    /// The app's command line.
    pub argv: Vec<String>,
    /// When it started, seconds since the Unix epoch.
    pub since: u64,
    /// The supervisor's process id.
    pub supervisor_pid: u32,
    /// The app's process id.
    pub app_pid: u32,
    /// The X display number of its Xvnc.
    pub display_number: u32,
    /// Xvnc's process id.
    pub xvnc_pid: u32,
    /// The display's RFB socket (in the runtime dir).
    pub rfb_socket: PathBuf,
    /// The display's X cookie file (in the runtime dir).
    pub xauthority: PathBuf,
}

impl AppRecord {
    /// The X display name, e.g. `:12`.
    pub fn display(&self) -> String {
        format!(":{}", self.display_number)
    }

    /// Whether the files it names are where a supervisor of this runtime
    /// dir puts them (a record is only trusted that far).
    pub fn files_are_in(&self, runtime: &Path) -> bool {
        let ours = |p: &Path, ext: &str| {
            p.parent() == Some(runtime)
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("xvnc-") && n.ends_with(ext))
        };
        ours(&self.rfb_socket, ".sock") && ours(&self.xauthority, ".xauth")
    }
}

/// A request on a supervisor's socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum SupervisorRequest {
    /// Answered with [`SupervisorEvent::Running`]; then the connection closes.
    Info,
    /// Answered with [`SupervisorEvent::Running`]; the connection then stays
    /// open until the app has ended and its display is gone
    /// ([`SupervisorEvent::Ended`], then the end of the stream).
    Watch,
    /// Ends the app (SIGTERM, SIGKILL 2 s later) and its display; answered
    /// with [`SupervisorEvent::Stopping`].
    Stop,
}

/// A line from a supervisor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum SupervisorEvent {
    /// The app runs.
    Running(AppRecord),
    /// The app has ended (its exit status, in words) and its display is gone.
    Ended {
        /// How it ended.
        status: String,
    },
    /// A stop was asked for and is under way.
    Stopping,
    /// The request was not understood.
    Error {
        /// Why.
        message: String,
    },
}

/// Where supervisors keep their sockets and records.
pub fn apps_dir(runtime: &Path) -> PathBuf {
    runtime.join("apps")
}

/// The socket of the supervisor of task `id`.
pub fn socket_path(runtime: &Path, id: u64) -> PathBuf {
    apps_dir(runtime).join(format!("{id}.sock"))
}

/// The record of task `id`.
pub fn record_path(runtime: &Path, id: u64) -> PathBuf {
    apps_dir(runtime).join(format!("{id}.json"))
}

/// The task id of a file in [`apps_dir`] (`ID.sock`, `ID.json`).
pub fn id_of(file_name: &str) -> Option<u64> {
    let stem = file_name
        .strip_suffix(".sock")
        .or_else(|| file_name.strip_suffix(".json"))?;
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Writes `record` to its file (0600, replaced atomically).
pub fn write_record(runtime: &Path, record: &AppRecord) -> Result<()> {
    let path = record_path(runtime, record.id);
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| DaemonError::io(format!("create {}", tmp.display()), e))?;
    let text = serde_json::to_string(record).expect("records serialise");
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| DaemonError::io(format!("write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, &path)
        .map_err(|e| DaemonError::io(format!("rename {}", path.display()), e))
}

/// Reads the record of task `id`, if there is a valid one.
pub fn read_record(runtime: &Path, id: u64) -> Option<AppRecord> {
    let path = record_path(runtime, id);
    let text = std::fs::read(&path).ok()?;
    if text.len() > MAX_LINE {
        return None;
    }
    serde_json::from_slice::<AppRecord>(&text)
        .ok()
        .filter(|r| r.id == id && r.files_are_in(runtime))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(runtime: &Path) -> AppRecord {
        AppRecord {
            id: 7,
            argv: vec!["xterm".into()],
            since: 1,
            supervisor_pid: 10,
            app_pid: 11,
            display_number: 3,
            xvnc_pid: 12,
            rfb_socket: runtime.join("xvnc-10-0.sock"),
            xauthority: runtime.join("xvnc-10-0.xauth"),
        }
    }

    #[test]
    fn ids_come_only_from_our_own_file_names() {
        assert_eq!(id_of("12.sock"), Some(12));
        assert_eq!(id_of("12.json"), Some(12));
        for bad in [
            "x.sock",
            ".sock",
            "12.json.tmp",
            "-1.sock",
            "1 2.sock",
            "12",
        ] {
            assert_eq!(id_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_record_naming_files_elsewhere_is_not_trusted() {
        let runtime = Path::new("/run/user/0/zos-abc");
        assert!(record(runtime).files_are_in(runtime));
        let mut r = record(runtime);
        r.rfb_socket = PathBuf::from("/etc/passwd.sock");
        assert!(!r.files_are_in(runtime));
        let mut r = record(runtime);
        r.xauthority = runtime.join("apps/../../x.xauth");
        assert!(!r.files_are_in(runtime));
    }

    #[test]
    fn events_have_stable_json_shapes() {
        let runtime = Path::new("/r");
        let line = serde_json::to_string(&SupervisorEvent::Running(record(runtime))).unwrap();
        assert!(line.starts_with(r#"{"event":"running","id":7,"#), "{line}");
        assert_eq!(
            serde_json::to_string(&SupervisorRequest::Watch).unwrap(),
            r#"{"op":"watch"}"#
        );
        let back: SupervisorEvent = serde_json::from_str(&line).unwrap();
        assert_eq!(back, SupervisorEvent::Running(record(runtime)));
    }
}
