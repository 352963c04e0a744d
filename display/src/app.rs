//! Launching X11 apps inside a [`VirtualDisplay`].

use std::ffi::OsStr;
use std::process::Stdio;

use tokio::process::{Child, Command};
use tracing::info;

use crate::error::{DisplayError, Result};
use crate::xvnc::VirtualDisplay;

/// Starts `argv[0]` with arguments `argv[1..]` as an X11 client of the virtual display `vd`.
///
/// `DISPLAY` and `XAUTHORITY` are set to the virtual display's, and `WAYLAND_DISPLAY` is removed so toolkits pick
/// X11. Standard input is closed; output goes where ours goes. The child is killed when the
/// returned handle is dropped. Must be called inside a Tokio runtime.
pub fn launch_app<S: AsRef<OsStr>>(vd: &VirtualDisplay, argv: &[S]) -> Result<Child> {
    let (program, args) = argv.split_first().ok_or(DisplayError::EmptyCommand)?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("DISPLAY", vd.display())
        .env("XAUTHORITY", vd.xauthority())
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|source| DisplayError::Spawn {
        program: program.as_ref().to_string_lossy().into_owned(),
        source,
    })?;
    info!(display = %vd.display(), program = %program.as_ref().to_string_lossy(), pid = child.id(), "app launched");
    Ok(child)
}
