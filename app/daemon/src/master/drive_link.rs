//! The master's end of one zombie's `input` channel: a reader that hands
//! the zombie's messages to the drive controller, and a writer with a
//! bounded queue, so a stalled link never blocks the controller (nor the
//! master's keyboard).

use tokio::sync::mpsc;
use zos_netproto::PublicKey;
use zos_netproto::mux::Channel;

use super::drive::Event;
use crate::input_link::{InputMessage, MAX_INPUT_MESSAGE, MAX_QUEUED_MESSAGES};

/// A zombie's link as the controller holds it.
pub(crate) struct Link {
    /// The name the zombie was paired under.
    pub name: String,
    /// Its key.
    pub key: PublicKey,
    /// Messages for it.
    pub out: mpsc::Sender<InputMessage>,
    /// Its ZOS session's size, once it said.
    pub size: Option<(u16, u16)>,
    /// Whether its user allows input.
    pub allowed: bool,
}

impl Link {
    /// Queues `message`; false if the queue is full or the link gone.
    pub fn send(&self, message: InputMessage) -> bool {
        self.out.try_send(message).is_ok()
    }

    /// Whether it can be driven now.
    pub fn drivable(&self) -> bool {
        self.size.is_some() && self.allowed
    }
}

/// Starts the reader and writer of link `id` (zombie `name`, `key`) on
/// `channel`; returns the link for the controller.
pub(crate) fn start(
    id: u64,
    name: String,
    key: PublicKey,
    mut channel: Channel,
    events: mpsc::UnboundedSender<Event>,
) -> Link {
    channel.set_max_message(MAX_INPUT_MESSAGE);
    let (tx, mut rx) = channel.split();
    let (out, mut queue) = mpsc::channel::<InputMessage>(MAX_QUEUED_MESSAGES);
    tokio::spawn(async move {
        while let Some(message) = queue.recv().await {
            if tx.send_msg(&message).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let why = loop {
            match rx.recv_msg::<InputMessage>().await {
                Ok(Some(message)) => {
                    if events.send(Event::Link { id, message }).is_err() {
                        return;
                    }
                }
                Ok(None) => break "the zombie closed the input channel".to_string(),
                Err(e) => break format!("the input channel failed: {e}"),
            }
        };
        let _ = events.send(Event::LinkClosed { id, why });
    });
    Link {
        name,
        key,
        out,
        size: None,
        allowed: false,
    }
}
