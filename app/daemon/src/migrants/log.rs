//! The bounded log of a task's terminal: `terminal.log` in the task's directory under the
//! runtime dir (mode 0600), rotated to `terminal.log.1` when it reaches [`SEGMENT`] bytes, so
//! the last 8 to 16 MiB of output are kept (the older segment is replaced at each rotation).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Size at which the current segment is rotated.
pub const SEGMENT: u64 = 8 << 20;

/// The log of one terminal.
pub struct TermLog {
    dir: PathBuf,
    current: File,
    len: u64,
}

/// The log's content at one moment: the open segments, oldest first, and how many bytes of
/// each belong to it (later appends are not part of it).
pub struct LogSnapshot {
    /// (segment, length).
    pub segments: Vec<(File, u64)>,
}

impl TermLog {
    /// A fresh log in `dir` (which must exist and be private).
    pub fn create(dir: &Path) -> io::Result<TermLog> {
        let _ = std::fs::remove_file(dir.join("terminal.log.1"));
        let current = open_new(&dir.join("terminal.log"))?;
        Ok(TermLog {
            dir: dir.to_path_buf(),
            current,
            len: 0,
        })
    }

    /// Appends output, rotating first when the segment is full.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.len >= SEGMENT {
            std::fs::rename(
                self.dir.join("terminal.log"),
                self.dir.join("terminal.log.1"),
            )?;
            self.current = open_new(&self.dir.join("terminal.log"))?;
            self.len = 0;
        }
        self.current.write_all(bytes)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// The segments as they are now (call under the terminal's lock, so that what follows is
    /// exactly what subscribers see live).
    pub fn snapshot(&self) -> io::Result<LogSnapshot> {
        let mut segments = Vec::new();
        if let Ok(old) = File::open(self.dir.join("terminal.log.1")) {
            let len = old.metadata()?.len();
            segments.push((old, len));
        }
        let current = File::open(self.dir.join("terminal.log"))?;
        segments.push((current, self.len));
        Ok(LogSnapshot { segments })
    }
}

fn open_new(path: &Path) -> io::Result<File> {
    let _ = std::fs::remove_file(path);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn read_all(snap: LogSnapshot) -> Vec<u8> {
        let mut out = Vec::new();
        for (f, len) in snap.segments {
            f.take(len).read_to_end(&mut out).unwrap();
        }
        out
    }

    #[test]
    fn log_keeps_between_one_and_two_segments_of_the_latest_output() {
        let dir = std::env::temp_dir().join(format!("zos-termlog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut log = TermLog::create(&dir).unwrap();
        let chunk = vec![b'a'; 1 << 20];
        for i in 0..20u8 {
            let mut c = chunk.clone();
            c[0] = i;
            log.append(&c).unwrap();
        }
        let all = read_all(log.snapshot().unwrap());
        assert!(all.len() as u64 >= SEGMENT && all.len() as u64 <= 2 * SEGMENT);
        // The newest chunk is last, complete.
        assert_eq!(all[all.len() - (1 << 20)], 19);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("terminal.log"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A snapshot ignores later appends.
        let snap = log.snapshot().unwrap();
        log.append(b"later").unwrap();
        assert_eq!(read_all(snap), all);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
