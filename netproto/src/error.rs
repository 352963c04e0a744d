//! Errors of the network protocol.

use std::io;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the protocol layer.
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
    /// The Noise layer failed (bad handshake message, failed decryption …).
    #[error("noise: {0}")]
    Noise(#[from] snow::Error),
    /// The peer sent bytes that do not form a valid frame or message.
    #[error("malformed input from peer: {0}")]
    Malformed(String),
    /// The peer speaks another protocol version.
    #[error("peer speaks protocol version {peer}, this side speaks {ours}")]
    Version {
        /// The peer's version.
        peer: u16,
        /// Ours.
        ours: u16,
    },
    /// The peer refused what we asked, with its reason.
    #[error("refused by peer: {0}")]
    Refused(String),
    /// The session or channel was closed.
    #[error("closed: {0}")]
    Closed(String),
    /// A limit of the channel layer was reached (channels, message size,
    /// queued frames).
    #[error("limit reached: {0}")]
    Limit(String),
    /// Something took longer than allowed.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A stored file (identity, trust store) is invalid.
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Pairing failed.
    #[error("pairing failed: {0}")]
    Pairing(String),
    /// mDNS discovery failed.
    #[error("mdns: {0}")]
    Mdns(String),
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

impl From<mdns_sd::Error> for Error {
    fn from(e: mdns_sd::Error) -> Self {
        Error::Mdns(e.to_string())
    }
}
