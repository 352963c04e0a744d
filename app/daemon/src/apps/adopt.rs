//! A starting daemon looks at the shared apps of the one before it: each
//! supervisor that still answers is adopted (same task id), and the files
//! of those that died — a supervisor killed with the daemon, or the apps of
//! a daemon from before supervisors — are removed: their sockets and
//! records, their displays' RFB sockets and X cookies, and the X server's
//! lock and socket in `/tmp` when the record names an Xvnc that is gone.

use std::collections::BTreeSet;
use std::path::Path;

use nix::sys::signal::kill;
use nix::unistd::Pid;

use super::link::{self, Supervised};
use super::record::{self, AppRecord};

/// What a scan found.
#[derive(Debug, Default)]
pub struct Found {
    /// Supervisors that answer, with what they run.
    pub live: Vec<Supervised>,
    /// The files removed, for the log.
    pub removed: Vec<String>,
    /// The highest task id found, live or dead (new ids go above it).
    pub highest_id: Option<u64>,
}

/// Whether process `pid` exists.
fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    pid > 0
        && !matches!(
            kill(Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        )
}

/// Whether `pid` is a supervisor (`zos supervise-app`) that may just be slow.
fn is_supervisor(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        c.split(|b| *b == 0)
            .any(|arg| arg == link::SUPERVISE_COMMAND.as_bytes())
    })
}

/// Looks at `runtime`'s shared apps: adopts live supervisors, removes what
/// dead ones left.
pub async fn scan(runtime: &Path) -> Found {
    let mut found = Found::default();
    let dir = record::apps_dir(runtime);
    let ids: BTreeSet<u64> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| record::id_of(e.file_name().to_str()?))
        .collect();
    found.highest_id = ids.last().copied();
    for id in ids {
        let socket = record::socket_path(runtime, id);
        let saved = record::read_record(runtime, id);
        match link::info(&socket).await {
            Ok(record) if record.id == id && record.files_are_in(runtime) => {
                found.live.push(Supervised {
                    record,
                    socket,
                    child: None,
                });
                continue;
            }
            Ok(other) => {
                tracing::warn!(
                    "{} describes task {} with files elsewhere; leaving it alone",
                    socket.display(),
                    other.id
                );
                continue;
            }
            Err(e) => {
                if let Some(r) = saved.as_ref().filter(|r| alive(r.supervisor_pid))
                    && is_supervisor(r.supervisor_pid)
                {
                    tracing::warn!(
                        "the supervisor of task {id} (pid {}) runs but does not answer ({e}); leaving it alone",
                        r.supervisor_pid
                    );
                    continue;
                }
            }
        }
        if let Some(r) = &saved {
            remove_display_files(r, &mut found.removed);
        }
        for path in [socket, record::record_path(runtime, id)] {
            if std::fs::remove_file(&path).is_ok() {
                found.removed.push(path.display().to_string());
            }
        }
    }
    remove_orphan_displays(runtime, &mut found.removed);
    found
}

/// Removes a dead app's display files, and the X server's lock and socket
/// when they are its Xvnc's and it is gone.
fn remove_display_files(r: &AppRecord, removed: &mut Vec<String>) {
    for path in [&r.rfb_socket, &r.xauthority] {
        if std::fs::remove_file(path).is_ok() {
            removed.push(path.display().to_string());
        }
    }
    let lock = format!("/tmp/.X{}-lock", r.display_number);
    let holder = std::fs::read_to_string(&lock)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok());
    if holder == Some(r.xvnc_pid) && !alive(r.xvnc_pid) {
        for path in [lock, format!("/tmp/.X11-unix/X{}", r.display_number)] {
            if std::fs::remove_file(&path).is_ok() {
                removed.push(path);
            }
        }
    }
}

/// `xvnc-PID-N.sock` / `.xauth` in `runtime` whose process (the supervisor,
/// or an old daemon that kept its displays itself) is gone.
fn remove_orphan_displays(runtime: &Path, removed: &mut Vec<String>) {
    for entry in std::fs::read_dir(runtime).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = display_file_pid(name) else {
            continue;
        };
        if !alive(pid) && std::fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path().display().to_string());
        }
    }
}

/// The pid in a display file's name `xvnc-PID-N.sock` or `xvnc-PID-N.xauth`.
fn display_file_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("xvnc-")?;
    let stem = rest
        .strip_suffix(".sock")
        .or_else(|| rest.strip_suffix(".xauth"))?;
    let (pid, n) = stem.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(n)).then(|| pid.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_files_are_recognised_by_their_exact_names() {
        assert_eq!(display_file_pid("xvnc-123-0.sock"), Some(123));
        assert_eq!(display_file_pid("xvnc-123-4.xauth"), Some(123));
        for other in [
            "xvnc-123.sock",
            "xvnc--0.sock",
            "xvnc-1-0.sock.tmp",
            "control.sock",
            "xvnc-a-0.xauth",
        ] {
            assert_eq!(display_file_pid(other), None, "{other}");
        }
    }

    #[tokio::test]
    async fn dead_apps_files_go_and_live_ones_stay() {
        let dir = std::env::temp_dir().join(format!("zos-adopt-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(record::apps_dir(&dir)).unwrap();
        // A dead supervisor's record and files (pid 0x7fff_fff0 does not exist).
        let dead = 0x7fff_fff0u32;
        let r = AppRecord {
            id: 4,
            argv: vec!["xterm".into()],
            since: 0,
            supervisor_pid: dead,
            app_pid: dead,
            display_number: 999_999,
            xvnc_pid: dead,
            rfb_socket: dir.join(format!("xvnc-{dead}-0.sock")),
            xauthority: dir.join(format!("xvnc-{dead}-0.xauth")),
        };
        record::write_record(&dir, &r).unwrap();
        for p in [&r.rfb_socket, &r.xauthority, &record::socket_path(&dir, 4)] {
            std::fs::write(p, b"").unwrap();
        }
        // Files of a live process (ours) and an orphan of a dead one.
        let mine = dir.join(format!("xvnc-{}-0.sock", std::process::id()));
        let orphan = dir.join(format!("xvnc-{dead}-9.xauth"));
        std::fs::write(&mine, b"").unwrap();
        std::fs::write(&orphan, b"").unwrap();

        let found = scan(&dir).await;
        assert!(found.live.is_empty());
        let left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .chain(std::fs::read_dir(record::apps_dir(&dir)).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left.len(), 2, "{left:?} (removed {:?})", found.removed);
        assert!(left.contains(&"apps".to_string()));
        assert!(mine.exists(), "a live process's display file was removed");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
