//! The keeper's X connection to a virtual display, authenticated with its cookie
//! (through the crate's one X-connect helper, [`crate::xconn`]).

use std::path::Path;

use x11rb::rust_connection::RustConnection;

use crate::error::Result;

pub(crate) use crate::xconn::x_error;

/// Connects to X display `number` with the cookie in the file `xauthority`.
pub(crate) fn connect_to(number: u32, xauthority: &Path) -> Result<RustConnection> {
    crate::xconn::connect(&format!(":{number}"), Some(xauthority)).map(|(conn, _)| conn)
}
