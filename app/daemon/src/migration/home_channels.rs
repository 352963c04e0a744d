//! The `home/<task>` channels a master expects: a zombie opens one only when the master
//! recalled that task, and the master takes it only from that very zombie (by key); anything
//! else is reset.

use std::collections::HashMap;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use zos_netproto::PublicKey;
use zos_netproto::mux::Channel;

/// The recalls waiting for their channel.
#[derive(Default)]
pub struct HomeChannels {
    waiting: Mutex<HashMap<u64, (PublicKey, oneshot::Sender<Channel>)>>,
}

impl HomeChannels {
    /// Expects `home/<task>` from the zombie with `key`; the receiver gets the channel.
    pub fn expect(&self, task: u64, key: PublicKey) -> oneshot::Receiver<Channel> {
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().insert(task, (key, tx));
        rx
    }

    /// No longer expects `home/<task>`.
    pub fn forget(&self, task: u64) {
        self.waiting.lock().remove(&task);
    }

    /// A zombie (with `key`) opened `home/<task>`: handed to the recall waiting for it, or
    /// reset.
    pub fn deliver(&self, task: u64, key: &PublicKey, mut channel: Channel) {
        let mut waiting = self.waiting.lock();
        match waiting.remove(&task) {
            Some((k, tx)) if k == *key => {
                drop(waiting);
                if let Err(mut channel) = tx.send(channel) {
                    channel.reset("the master stopped waiting for this task");
                }
            }
            other => {
                if let Some(entry) = other {
                    waiting.insert(task, entry);
                }
                drop(waiting);
                channel.reset(&format!("the master did not ask for task {task}"));
            }
        }
    }
}
