//! Opening an X connection the way Xlib and xcb do on Linux, for the clients
//! of this crate that talk to a display they did not start (the master's
//! screen, the ZOS session): the display name's number, the abstract socket
//! first (it belongs to this network namespace, so a server of another
//! namespace with the same number cannot answer), then the socket file; the
//! cookie from an authority file.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use x11rb::rust_connection::{DefaultStream, RustConnection};

use crate::error::{DisplayError, Result};
use crate::xauth;

/// The display number of a local display name: `:N` or `:N.S` (`unix:N`
/// too). TCP displays (`host:N`) are refused: ZOS only talks to local ones.
pub fn display_number(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("unix").unwrap_or(name);
    let rest = rest.strip_prefix(':')?;
    let number = rest.split('.').next()?;
    number.parse().ok()
}

/// Connects to X display `number` over a unix socket.
pub(crate) fn connect_socket(number: u32) -> std::io::Result<UnixStream> {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("/tmp/.X11-unix/X{number}");
    let abstract_addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    UnixStream::connect_addr(&abstract_addr).or_else(|_| UnixStream::connect(&name))
}

/// The authority file to use when none is named: `XAUTHORITY`, else
/// `~/.Xauthority` if it exists.
fn default_authority() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("XAUTHORITY").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let home = PathBuf::from(std::env::var_os("HOME")?).join(".Xauthority");
    home.exists().then_some(home)
}

/// Opens a connection to the local display `name` (`:N`), authenticated
/// with the cookie `xauthority` holds for it (or the default authority
/// file's, or none). Returns the connection and its default screen.
pub fn connect(name: &str, xauthority: Option<&Path>) -> Result<(RustConnection, usize)> {
    let number = display_number(name).ok_or_else(|| DisplayError::Sys {
        call: "parse the display name",
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{name:?} is not a local display such as :0"),
        ),
    })?;
    let screen = name
        .rsplit_once('.')
        .filter(|(head, _)| head.contains(':'))
        .and_then(|(_, s)| s.parse().ok())
        .unwrap_or(0);
    let authority = xauthority.map(Path::to_path_buf).or_else(default_authority);
    let (auth_name, auth_data) = match authority {
        Some(path) => match xauth::cookie_for(&path, number) {
            Ok(Some(cookie)) => cookie,
            Ok(None) => (Vec::new(), Vec::new()),
            // A named file that cannot be read is the caller's mistake.
            Err(e) if xauthority.is_some() => return Err(e),
            Err(_) => (Vec::new(), Vec::new()),
        },
        None => (Vec::new(), Vec::new()),
    };
    let stream = connect_socket(number).map_err(|source| DisplayError::Sys {
        call: "connect to the X display",
        source,
    })?;
    let (stream, _) =
        DefaultStream::from_unix_stream(stream).map_err(|source| DisplayError::Sys {
            call: "X connection",
            source,
        })?;
    let conn =
        RustConnection::connect_to_stream_with_auth_info(stream, screen, auth_name, auth_data)
            .map_err(|e| x_error("X connection set-up", e))?;
    Ok((conn, screen))
}

/// An X protocol or connection error as a [`DisplayError`].
pub(crate) fn x_error(call: &'static str, e: impl std::fmt::Display) -> DisplayError {
    DisplayError::Sys {
        call,
        source: std::io::Error::other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_display_names_and_nothing_else() {
        assert_eq!(display_number(":0"), Some(0));
        assert_eq!(display_number(":12.0"), Some(12));
        assert_eq!(display_number("unix:3"), Some(3));
        assert_eq!(display_number("host:1"), None);
        assert_eq!(display_number(""), None);
        assert_eq!(display_number(":x"), None);
    }
}
