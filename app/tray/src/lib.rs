//! The ZOS zombie's tray helper.
//!
//! A StatusNotifierItem (via `ksni`, pure D-Bus, no GTK) that shows the
//! zombie's name, its live sessions, the master dominating it and, while one
//! is on offer, the pairing code with the seconds it has left. Its menu
//! repeats the status, answers a waiting domination request (accept, accept
//! and show the master's apps, refuse), ends the domination (Release: the
//! master is told this zombie's user ended it), lists the dominating
//! master's shared apps (choosing one opens a viewer for it; "Show all its
//! apps"), and offers new pairing codes (complete or partial) and Quit. It talks to the local daemon only through the control
//! socket ([`zos_netproto::control`]).

pub mod icon;
pub mod item;
pub mod poller;
pub mod view;

use std::path::PathBuf;
use std::sync::mpsc;

use anyhow::Context;
use ksni::blocking::TrayMethods;

/// Opens a viewer for a task of the dominating master (the `zos` binary
/// starts `zos view TASK`); called from the poller's thread.
pub type OpenView = Box<dyn Fn(u64) -> std::io::Result<()> + Send>;

/// Runs the tray item for the daemon whose control socket is `socket`,
/// until Quit is chosen from its menu. `open_view` is called when the user
/// picks one of the master's shared apps.
///
/// Needs a D-Bus session bus. If no tray host (StatusNotifierWatcher) is
/// there yet, the item waits for one to appear.
pub fn run(socket: PathBuf, open_view: OpenView) -> anyhow::Result<()> {
    let (actions_tx, actions_rx) = mpsc::channel();
    let handle = item::ZosTray::new(actions_tx)
        .assume_sni_available(true)
        .spawn()
        .context(
            "cannot put the tray item on the D-Bus session bus (is this a desktop session?)",
        )?;
    tracing::info!(socket = %socket.display(), "tray item up");
    poller::poll(&socket, &handle, &actions_rx, &open_view);
    handle.shutdown().wait();
    Ok(())
}
