//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while checking, checkpointing or restoring.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No process with this PID exists (or it is a zombie).
    #[error("no such process: {0}")]
    NoProcess(i32),
    /// The process has state this engine cannot save; every reason is listed.
    #[error("process {pid} cannot be checkpointed: {}", reasons.join("; "))]
    Refused {
        /// The process.
        pid: i32,
        /// One line per problem.
        reasons: Vec<String>,
    },
    /// A system call failed.
    #[error("{op}: {source}")]
    Sys {
        /// What was attempted.
        op: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The process exited while it was being checkpointed.
    #[error("process {0} exited during the checkpoint")]
    Gone(i32),
    /// The image is corrupt, truncated, from another version or another CPU.
    #[error("invalid image: {0}")]
    BadImage(String),
    /// The caller may not do this (another user's image or directory, credentials it does not
    /// have, an image not signed by this machine); says what differs.
    #[error("not allowed: {0}")]
    Denied(String),
    /// The process an image was taken from still runs (same PID, start time and boot).
    #[error("the original process still runs as PID {0}; stop it first, or force a second copy")]
    OriginalRunning(i32),
    /// Restoring failed; nothing of the half-built process is left.
    #[error("restore failed: {0}")]
    Restore(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Attach a description to an `io::Result` coming from a system call.
pub(crate) trait SysContext<T> {
    /// Wrap the error as [`Error::Sys`] with `op` as description.
    fn sys(self, op: impl FnOnce() -> String) -> Result<T>;
}

impl<T> SysContext<T> for std::io::Result<T> {
    fn sys(self, op: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Sys { op: op(), source })
    }
}

/// Wrap an I/O error on `path`.
pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
