//! Errors of the display crate.

use std::path::PathBuf;

/// What can go wrong with a virtual display, an app in it, or a viewer of it.
#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    /// The runtime directory does not exist or is not a directory.
    #[error("runtime directory {0} is not a directory")]
    RuntimeDir(PathBuf),
    /// The RFB socket path would not fit in a `sockaddr_un`.
    #[error("socket path {0} is too long for a unix socket")]
    SocketPathTooLong(PathBuf),
    /// Xvnc (or an app) could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program that failed to start.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Xvnc did not report its display number in time, or exited first.
    #[error("Xvnc did not start: {0}")]
    XvncStartup(String),
    /// An app was launched with an empty argument vector.
    #[error("empty command line")]
    EmptyCommand,
    /// A system call failed.
    #[error("{call}: {source}")]
    Sys {
        /// The call that failed.
        call: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The VNC connection failed (handshake, protocol or transport).
    #[error("VNC: {0}")]
    Vnc(#[from] vnc::VncError),
    /// The viewer's connection task has ended; no more input can be sent.
    #[error("the viewer connection is closed")]
    ViewerClosed,
    /// Reading from or writing to a fan-out's viewer failed.
    #[error("viewer stream: {0}")]
    Io(#[from] std::io::Error),
    /// A fan-out's viewer broke the RFB protocol.
    #[error("RFB protocol error from a viewer: {0}")]
    Protocol(String),
    /// A fan-out's viewer asked for a pixel format it does not serve.
    #[error("unsupported pixel format: {0}")]
    PixelFormat(String),
    /// A fan-out's upstream connection never told the screen size.
    #[error("the app's display sent no screen within {0:?}")]
    NoScreen(std::time::Duration),
}

impl DisplayError {
    /// Whether this says only that the other end went away (the stream ended or broke, or
    /// the connection was already closed), rather than that something was wrong.
    pub fn is_disconnect(&self) -> bool {
        use std::io::ErrorKind::{BrokenPipe, ConnectionReset, UnexpectedEof};
        match self {
            DisplayError::ViewerClosed | DisplayError::Vnc(vnc::VncError::ClientNotRunning) => true,
            DisplayError::Vnc(vnc::VncError::IoError(e)) | DisplayError::Io(e) => {
                matches!(e.kind(), BrokenPipe | ConnectionReset | UnexpectedEof)
            }
            _ => false,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = DisplayError> = std::result::Result<T, E>;
