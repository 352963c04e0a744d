//! Errors of the daemons.

/// What can stop a daemon or fail a request.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A protocol-layer error.
    #[error(transparent)]
    Net(#[from] zos_netproto::Error),
    /// An I/O error with context.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// A request that cannot be served, in words for the user.
    #[error("{0}")]
    User(String),
}

impl DaemonError {
    /// Wraps an I/O error.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        DaemonError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result with [`DaemonError`].
pub type Result<T, E = DaemonError> = std::result::Result<T, E>;
