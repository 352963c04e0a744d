//! Errors of the file service.

use std::io;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong outside a single file operation.
///
/// Failures of one file operation are not errors of this kind: they travel
/// to the zombie as an errno and the service goes on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The export store file is invalid.
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An export the store refuses to hold (relative, missing, `/` …).
    #[error("refused export: {0}")]
    BadExport(String),
    /// The peer sent a message that is malformed or unexpected here.
    #[error("file service protocol violation: {0}")]
    Protocol(String),
    /// The peer speaks another version of the file protocol.
    #[error("peer speaks file protocol version {peer}, this side speaks {ours}")]
    Version {
        /// The peer's version.
        peer: u16,
        /// Ours.
        ours: u16,
    },
    /// The server refused the client, with its reason.
    #[error("file server refused: {0}")]
    Refused(String),
    /// The session channel failed.
    #[error("session: {0}")]
    Session(#[from] zos_netproto::Error),
    /// Mounting or unmounting failed.
    #[error("mount {path}: {reason}")]
    Mount {
        /// The mount point.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
