//! Views of shared apps: an app's RFB stream carried to a viewer.
//!
//! A viewer asks its local daemon with `View { task }` on the control socket;
//! after the `Stream` reply that connection carries raw RFB. On the master
//! the daemon serves it from the app's [`Fanout`] ([`serve_local`]); on a
//! zombie it opens a `view/<id>` channel on the dominating master's session
//! and splices the two, and the master serves that channel from the fan-out
//! ([`serve_channel`]). The fan-out is the app's Xvnc's only client and our
//! own RFB server paces every viewer separately: it sends an update only when
//! that viewer asked for one, with the latest pixels of whatever changed
//! meanwhile. A viewer that stops reading therefore holds back only its own
//! stream — bounded by its region, one update, the socket buffers and the
//! channel's credit window — and never the app or the other viewers.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixStream;
use zos_display::{Fanout, ViewEnd};
use zos_netproto::mux::Channel;
use zos_netproto::pipe::splice;

/// Bytes buffered between a view channel and the fan-out.
const CHANNEL_BUFFER: usize = 256 << 10;
/// How long a channel may take to pass on the last bytes once its view ended.
const CHANNEL_LINGER: Duration = Duration::from_secs(2);

fn log_end(what: &str, end: zos_display::Result<ViewEnd>) {
    match end {
        Ok(end) => tracing::debug!(?end, "{what} ended"),
        Err(e) if e.is_disconnect() => tracing::debug!("{what} ended: {e}"),
        Err(e) => tracing::info!("{what} ended: {e}"),
    }
}

/// Serves a zombie's view channel from the app's fan-out until either ends.
pub async fn serve_channel(channel: Channel, fanout: Arc<Fanout>) {
    let (ours, theirs) = tokio::io::duplex(CHANNEL_BUFFER);
    let spliced = splice(channel, theirs);
    tokio::pin!(spliced);
    tokio::select! {
        end = fanout.serve(ours) => {
            log_end("view channel", end);
            // Let the last bytes through; a stalled peer does not hold us.
            let _ = tokio::time::timeout(CHANNEL_LINGER, &mut spliced).await;
        }
        moved = &mut spliced => match moved {
            Ok(moved) => tracing::debug!(?moved, "view channel ended"),
            Err(e) => tracing::info!("view channel ended: {e}"),
        },
    }
}

/// Serves a local viewer's connection from the app's fan-out until either
/// side ends.
pub async fn serve_local(viewer: UnixStream, fanout: Arc<Fanout>) {
    log_end("local view", fanout.serve(viewer).await);
}

/// Joins a local viewer's connection to a view channel on a session.
pub async fn serve_remote(viewer: UnixStream, channel: Channel) {
    match splice(channel, viewer).await {
        Ok(moved) => tracing::debug!(?moved, "remote view ended"),
        Err(e) => tracing::info!("remote view ended: {e}"),
    }
}
