//! The keeper's X connection to a virtual display, authenticated with its cookie.

use std::os::unix::net::UnixStream;
use std::path::Path;

use x11rb::rust_connection::{DefaultStream, RustConnection};

use crate::error::{DisplayError, Result};
use crate::{VirtualDisplay, xauth};

/// Connects to `display` with its cookie.
pub(crate) fn connect(display: &VirtualDisplay) -> Result<RustConnection> {
    connect_to(display.number(), display.xauthority())
}

/// Connects to X display `number` with the cookie in the file `xauthority`.
pub(crate) fn connect_to(number: u32, xauthority: &Path) -> Result<RustConnection> {
    let stream = connect_x(number).map_err(|source| DisplayError::Sys {
        call: "connect to the virtual display",
        source,
    })?;
    let (auth_name, auth_data) = xauth::read_cookie(xauthority)?;
    let (stream, _) =
        DefaultStream::from_unix_stream(stream).map_err(|source| DisplayError::Sys {
            call: "X connection",
            source,
        })?;
    RustConnection::connect_to_stream_with_auth_info(stream, 0, auth_name, auth_data)
        .map_err(|e| x_error("X connection set-up", e))
}

/// Connects to X display `number` the way Xlib and xcb do on Linux: the
/// abstract socket first (it belongs to this network namespace, so a server
/// of another namespace with the same number cannot answer), then the file.
fn connect_x(number: u32) -> std::io::Result<UnixStream> {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("/tmp/.X11-unix/X{number}");
    let abstract_addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    UnixStream::connect_addr(&abstract_addr).or_else(|_| UnixStream::connect(&name))
}

/// An X failure as a [`DisplayError`].
pub(crate) fn x_error(call: &'static str, e: impl std::fmt::Display) -> DisplayError {
    DisplayError::Sys {
        call,
        source: std::io::Error::other(e.to_string()),
    }
}
