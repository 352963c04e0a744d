//! Views of shared apps: an app's RFB stream carried to a viewer.
//!
//! A viewer asks its local daemon with `View { task }` on the control socket;
//! after the `Stream` reply that connection carries raw RFB. On the master
//! the daemon splices it to the app's Xvnc socket ([`serve_local`]); on a
//! zombie it opens a `view/<id>` channel on the dominating master's session
//! and splices the two, and the master splices that channel to the Xvnc
//! socket ([`serve_channel`]). Each view is its own RFB connection to Xvnc,
//! so the server paces every viewer separately: it sends an update only when
//! that viewer asked for one, merging whatever changed meanwhile. A viewer
//! that stops reading therefore holds back only its own stream — bounded by
//! the socket buffers and the channel's credit window — and never the app or
//! the other viewers.

use std::path::Path;

use tokio::net::UnixStream;
use zos_netproto::mux::Channel;
use zos_netproto::pipe::splice;

/// Splices a zombie's view channel to the app's RFB socket until either ends.
pub async fn serve_channel(mut channel: Channel, rfb_socket: &Path) {
    match UnixStream::connect(rfb_socket).await {
        Ok(xvnc) => match splice(channel, xvnc).await {
            Ok(moved) => tracing::debug!(?moved, "view channel ended"),
            Err(e) => tracing::info!("view channel ended: {e}"),
        },
        Err(e) => {
            tracing::warn!("cannot reach {}: {e}", rfb_socket.display());
            channel.reset(&format!("the app's display is not reachable: {e}"));
        }
    }
}

/// Joins a local viewer's connection to the app's RFB socket until either
/// side ends.
pub async fn serve_local(viewer: UnixStream, rfb_socket: &Path) {
    let mut xvnc = match UnixStream::connect(rfb_socket).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot reach {}: {e}", rfb_socket.display());
            return;
        }
    };
    let mut viewer = viewer;
    match tokio::io::copy_bidirectional(&mut viewer, &mut xvnc).await {
        Ok((up, down)) => tracing::debug!(up, down, "local view ended"),
        Err(e) => tracing::debug!("local view ended: {e}"),
    }
}

/// Joins a local viewer's connection to a view channel on a session.
pub async fn serve_remote(viewer: UnixStream, channel: Channel) {
    match splice(channel, viewer).await {
        Ok(moved) => tracing::debug!(?moved, "remote view ended"),
        Err(e) => tracing::info!("remote view ended: {e}"),
    }
}
