//! One TCP connection to the zombie's session port: its handshake within
//! [`HANDSHAKE_DEADLINE`], its place under the caps ([`Ticket`]), and its
//! end when a newcomer displaces it or, while unpaired, when its
//! [`UNPAIRED_SESSION_LIFETIME`] is over whatever it is doing.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use zos_netproto::Error as NetError;
use zos_netproto::session::Session;
use zos_netproto::wire::{Message, Role};

use super::Zombie;
use crate::admission::Ticket;
use crate::error::{DaemonError, Result};
use crate::limits::{HANDSHAKE_DEADLINE, UNPAIRED_SESSION_LIFETIME};
use crate::peer::{Peer, SessionPeer};

impl Zombie {
    /// Serves one accepted connection until it ends, and logs how it ended.
    pub(super) async fn serve_connection(
        self: Arc<Self>,
        stream: TcpStream,
        addr: SocketAddr,
        ticket: Ticket,
    ) {
        let evicted = ticket.evicted().clone();
        let result = tokio::select! {
            r = self.connection(stream, &ticket) => r,
            _ = evicted.cancelled() => Err(DaemonError::User(
                "displaced by a newer connection (too many unpaired connections)".into(),
            )),
            _ = unpaired_lifetime(&ticket) => Err(DaemonError::User(format!(
                "still unpaired after {} s",
                UNPAIRED_SESSION_LIFETIME.as_secs()
            ))),
        };
        match result {
            Ok(()) => {}
            Err(DaemonError::Net(NetError::Closed(reason)))
                if reason.contains("during handshake") =>
            {
                tracing::debug!("connection from {addr} closed before a handshake (probe)");
            }
            Err(DaemonError::Net(NetError::Closed(reason))) => {
                tracing::info!("connection from {addr} closed: {reason}");
            }
            Err(e) => tracing::warn!("connection from {addr} dropped: {e}"),
        }
    }

    async fn connection(self: &Arc<Self>, stream: TcpStream, ticket: &Ticket) -> Result<()> {
        let session = tokio::time::timeout(
            HANDSHAKE_DEADLINE,
            Session::accept(stream, &self.identity, Role::Zombie, &self.cfg.name),
        )
        .await
        .map_err(|_| {
            DaemonError::User(format!(
                "no handshake and hello within {} s",
                HANDSHAKE_DEADLINE.as_secs()
            ))
        })??;
        let role = session.remote_role;
        // Masters open only the migration's channels on a zombie; the rest are reset.
        let policy = self.master_channels(session.remote, session.mux.clone());
        let mut peer = SessionPeer::new(session, policy);
        if role != Role::Master {
            peer.send(&Message::Refused {
                reason: "zombies only accept sessions from masters".into(),
            })
            .await?;
            peer.close();
            return Ok(());
        }
        let result = self.session(&mut peer, ticket).await;
        peer.close();
        result
    }
}

/// Completes once the connection has been unpaired for its whole lifetime
/// (never, once it is paired).
async fn unpaired_lifetime(ticket: &Ticket) {
    tokio::time::sleep(UNPAIRED_SESSION_LIFETIME).await;
    if ticket.is_paired() {
        std::future::pending::<()>().await;
    }
}
