//! The ZOS daemons.
//!
//! One process per instance runs either the **zombie** role (advertise over
//! mDNS, accept sessions from paired masters, issue pairing codes) or the
//! **master** role (browse for zombies, pair with them, open sessions). Both
//! serve their local clients on a control socket (see
//! [`zos_netproto::control`]). This is the only crate that combines the
//! protocol, display and checkpoint libraries.

pub mod accept;
pub mod admission;
pub mod apps;
pub mod control_server;
pub mod domination;
pub mod error;
pub mod hosts;
pub mod input_link;
pub mod limits;
pub mod master;
pub mod migrants;
pub mod migration;
pub mod paths;
pub mod peer;
pub mod rlimit;
pub mod settings;
pub mod snapshots;
pub mod sysinfo;
pub mod tasks;
pub mod views;
pub mod zombie;

pub use error::DaemonError;
pub use paths::Paths;
pub use tokio_util::sync::CancellationToken;

/// Cancels `token` on SIGINT or SIGTERM.
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::warn!("cannot install signal handlers");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        token.cancel();
    });
}
