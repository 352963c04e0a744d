//! Two [`Peer`]s joined in memory, for tests of the daemons' rules: what
//! one sends the other receives, in order; closing either ends both.

use tokio::sync::mpsc;
use zos_netproto::mux::Mux;
use zos_netproto::wire::Message;
use zos_netproto::{Error as NetError, Result as NetResult};

use super::{Peer, PeerInfo};

/// One end of an in-memory session.
pub struct MemoryPeer {
    info: PeerInfo,
    tx: Option<mpsc::Sender<Message>>,
    rx: mpsc::Receiver<Message>,
}

/// Two joined ends: `a` sees `b_info` as its peer and `b` sees `a_info`.
pub fn pair(a_info: PeerInfo, b_info: PeerInfo) -> (MemoryPeer, MemoryPeer) {
    let (to_b, from_a) = mpsc::channel(64);
    let (to_a, from_b) = mpsc::channel(64);
    (
        MemoryPeer {
            info: b_info,
            tx: Some(to_b),
            rx: from_b,
        },
        MemoryPeer {
            info: a_info,
            tx: Some(to_a),
            rx: from_a,
        },
    )
}

impl Peer for MemoryPeer {
    fn info(&self) -> &PeerInfo {
        &self.info
    }

    async fn send(&mut self, message: &Message) -> NetResult<()> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| NetError::Closed("this side closed the session".into()))?;
        tx.send(message.clone())
            .await
            .map_err(|_| NetError::Closed("peer closed the session".into()))
    }

    async fn recv(&mut self) -> NetResult<Message> {
        self.rx
            .recv()
            .await
            .ok_or_else(|| NetError::Closed("peer closed the session".into()))
    }

    fn mux(&self) -> Option<&Mux> {
        None
    }

    fn close(&mut self) {
        self.tx = None;
        self.rx.close();
    }

    fn abort(&mut self, _reason: &str) {
        self.close();
    }
}
