//! The master's side: [`serve`] answers one zombie's calls on one channel.
//!
//! The channel's first message must be `Hello`; the server answers with the
//! exports of its [`ExportPolicy`]. Then each call runs on the blocking
//! thread pool as soon as it arrives (up to [`MAX_IN_FLIGHT`] at once) and
//! that thread sends its reply when it finishes, so many reads and writes are
//! in flight at once. A write is answered only after `pwrite` returned on the master;
//! `fsync` is `fsync` on the master.
//!
//! The policy is enforced here, on every call (the zombie is not trusted):
//! see the `state` module for how names are resolved and what is refused.

mod budget;
mod dispatch;
mod io;
mod modes;
mod names;
mod never;
mod nodes;
mod place;
pub(crate) mod state;

use std::sync::Arc;

use tokio::sync::Semaphore;
use zos_netproto::mux::Channel;

use crate::error::{Error, Result};
use crate::policy::ExportPolicy;
use crate::proto::{self, ClientMsg, ServerMsg};
use state::Server;

/// Calls the server runs at once for one zombie; more wait their turn.
pub const MAX_IN_FLIGHT: usize = 64;

/// Descriptors the master holds for one zombie at most, between calls: its
/// open files and directories and the nodes' cached descriptors together
/// (servers for the same zombie share them). An open beyond fails with
/// `EMFILE` on the zombie. A call in flight may hold a few more for its
/// duration (at most about three each, [`MAX_IN_FLIGHT`] calls).
pub const MAX_DESCRIPTORS: usize = 4096;

/// Directory entries the master keeps for one zombie's open directories at
/// most (the listing read at `opendir`, about 80 bytes each). An opendir
/// beyond fails with `ENOMEM` on the zombie; a single directory with more
/// entries cannot be listed.
pub const MAX_LISTED_ENTRIES: usize = 1 << 20;

pub use nodes::{MAX_NODES, NODE_FDS};
pub use place::RECHECK_AFTER;

/// Serves `policy`'s exports to the zombie at the other end of `channel`
/// until it closes the channel (`Ok`) or the channel fails or carries a
/// malformed or unexpected message (`Err`, and the channel is reset with the
/// reason). Calls already running finish before this returns.
pub async fn serve(channel: Channel, policy: ExportPolicy) -> Result<()> {
    let (tx, mut rx) = channel.split();
    rx.set_max_message(proto::MAX_MESSAGE);
    let hello = match rx.recv().await? {
        Some(bytes) => proto::decode_client(&bytes),
        None => return Ok(()),
    };
    let version = match hello {
        Ok(ClientMsg::Hello { version }) => version,
        Ok(other) => {
            let e = Error::Protocol(format!("expected Hello, got {}", kind(&other)));
            rx.reset(&e.to_string());
            return Err(e);
        }
        Err(e) => {
            rx.reset(&e.to_string());
            return Err(e);
        }
    };
    if version != proto::VERSION {
        let e = Error::Version {
            peer: version,
            ours: proto::VERSION,
        };
        let reason = e.to_string();
        tx.send(&proto::encode(&ServerMsg::Refused { reason }))
            .await?;
        return Err(e);
    }
    let server = tokio::task::spawn_blocking(move || Server::new(&policy))
        .await
        .map_err(|e| Error::Protocol(format!("server set-up panicked: {e}")))?;
    let server = Arc::new(server);
    tx.send(&proto::encode(&ServerMsg::Welcome {
        version: proto::VERSION,
        exports: server.export_infos(),
    }))
    .await?;
    tracing::info!(
        exports = server.export_infos().len(),
        "file service started"
    );

    // Replies take turns on the sending half: each message goes whole.
    let tx = Arc::new(tokio::sync::Mutex::new(tx));
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut calls = tokio::task::JoinSet::new();
    let result = loop {
        let bytes = match rx.recv().await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => break Ok(()),
            Err(e) => break Err(Error::from(e)),
        };
        let msg = match proto::decode_client(&bytes) {
            Ok(msg) => msg,
            Err(e) => {
                rx.reset(&e.to_string());
                break Err(e);
            }
        };
        match msg {
            ClientMsg::Call { id, op } => {
                let permit = limit.clone().acquire_owned().await.expect("never closed");
                let server = server.clone();
                let tx = tx.clone();
                let runtime = tokio::runtime::Handle::current();
                // The blocking thread runs the call and sends its reply.
                calls.spawn_blocking(move || {
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        server.handle(op)
                    }))
                    .unwrap_or(Err(nix::errno::Errno::EIO));
                    let reply = proto::encode(&ServerMsg::Reply {
                        id,
                        result: result.map_err(|e| e as i32),
                    });
                    drop(permit);
                    runtime.block_on(async {
                        if let Err(e) = tx.lock().await.send(&reply).await {
                            tracing::debug!("file service: reply not sent: {e}");
                        }
                    });
                });
            }
            ClientMsg::Forget { nodes } => server.forget(&nodes),
            ClientMsg::Hello { .. } => {
                let e = Error::Protocol("a second Hello".into());
                rx.reset(&e.to_string());
                break Err(e);
            }
        }
        while calls.try_join_next().is_some() {}
    };
    while calls.join_next().await.is_some() {}
    let (held, descriptors) = (server.node_count(), server.descriptors());
    match &result {
        Ok(()) => tracing::info!(
            held,
            descriptors,
            "file service ended: the zombie closed the channel"
        ),
        Err(e) => tracing::warn!(held, descriptors, "file service ended: {e}"),
    }
    result
}

fn kind(msg: &ClientMsg) -> &'static str {
    match msg {
        ClientMsg::Hello { .. } => "Hello",
        ClientMsg::Call { .. } => "Call",
        ClientMsg::Forget { .. } => "Forget",
    }
}
