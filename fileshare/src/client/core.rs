//! The zombie's end of the channel: calls with ids, many in flight.
//!
//! A writer task sends calls in the order they are queued (a channel carries
//! one whole message at a time); a reader task hands each reply to the call
//! waiting for its id. When the channel fails, every waiting call and every
//! later one fails at once with `EIO`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fuser::Errno;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use zos_netproto::mux::{ChannelReceiver, ChannelSender};

use crate::proto::{self, Answer, ClientMsg, Op, ServerMsg};

/// Calls queued for the writer.
const QUEUE: usize = 256;

type Waiter = oneshot::Sender<Result<Answer, Errno>>;

/// Calls waiting for replies, and whether the channel is gone.
#[derive(Default)]
struct Pending {
    waiting: HashMap<u64, Waiter>,
    /// Why the channel is gone, once it is.
    lost: Option<String>,
}

/// The calling side of one file-service channel.
pub struct Core {
    out: mpsc::Sender<Vec<u8>>,
    pending: Arc<Mutex<Pending>>,
    next_id: AtomicU64,
    runtime: Handle,
    forgets: Arc<Mutex<Vec<(u64, u64)>>>,
}

fn lock(p: &Mutex<Pending>) -> std::sync::MutexGuard<'_, Pending> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

fn lose(pending: &Mutex<Pending>, reason: String, clean: bool) {
    let waiting = {
        let mut p = lock(pending);
        if p.lost.is_none() {
            if clean {
                tracing::info!("file service ended: {reason}");
            } else {
                tracing::warn!("file service channel lost: {reason}");
            }
            p.lost = Some(reason);
        }
        std::mem::take(&mut p.waiting)
    };
    for (_, w) in waiting {
        let _ = w.send(Err(Errno::EIO));
    }
}

/// The errno a server sent, or `EIO` for nonsense.
fn errno(raw: i32) -> Errno {
    if (1..4096).contains(&raw) {
        Errno::from_i32(raw)
    } else {
        Errno::EIO
    }
}

impl Core {
    /// Starts the writer and reader tasks on `runtime`.
    pub fn start(tx: ChannelSender, mut rx: ChannelReceiver, runtime: &Handle) -> Core {
        let pending = Arc::new(Mutex::new(Pending::default()));
        let (out, mut out_rx) = mpsc::channel::<Vec<u8>>(QUEUE);
        let writer_pending = pending.clone();
        runtime.spawn(async move {
            while let Some(msg) = out_rx.recv().await {
                if let Err(e) = tx.send(&msg).await {
                    lose(&writer_pending, e.to_string(), false);
                    return;
                }
            }
            // Dropping `tx` closes our side: the server ends its service.
        });
        let reader_pending = pending.clone();
        runtime.spawn(async move {
            let mut clean = false;
            let reason = loop {
                let bytes = match rx.recv().await {
                    Ok(Some(b)) => b,
                    Ok(None) => {
                        clean = true;
                        break "the master closed the file service".to_string();
                    }
                    Err(e) => break e.to_string(),
                };
                match proto::decode_server(&bytes) {
                    Ok(ServerMsg::Reply { id, result }) => {
                        let waiter = lock(&reader_pending).waiting.remove(&id);
                        match waiter {
                            Some(w) => {
                                let _ = w.send(result.map_err(errno));
                            }
                            None => {
                                let reason = format!("reply to call {id}, which is not waiting");
                                rx.reset(&reason);
                                break reason;
                            }
                        }
                    }
                    Ok(_) => {
                        let reason = "unexpected message from the master".to_string();
                        rx.reset(&reason);
                        break reason;
                    }
                    Err(e) => {
                        rx.reset(&e.to_string());
                        break e.to_string();
                    }
                }
            };
            lose(&reader_pending, reason, clean);
        });
        Core {
            out,
            pending,
            next_id: AtomicU64::new(1),
            runtime: runtime.clone(),
            forgets: Arc::default(),
        }
    }

    /// Runs one call on the master; `EIO` once the channel is gone.
    pub async fn call(&self, op: Op) -> Result<Answer, Errno> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (waiter, answer) = oneshot::channel();
        {
            let mut p = lock(&self.pending);
            if p.lost.is_some() {
                return Err(Errno::EIO);
            }
            p.waiting.insert(id, waiter);
        }
        let msg = proto::encode(&ClientMsg::Call { id, op });
        if self.out.send(msg).await.is_err() {
            lock(&self.pending).waiting.remove(&id);
            return Err(Errno::EIO);
        }
        answer.await.unwrap_or(Err(Errno::EIO))
    }

    /// Tells the master the kernel dropped `count` lookups of `node` (no
    /// answer). Forgets that come in a burst travel in one message.
    pub fn forget(&self, node: u64, count: u64) {
        let first = {
            let mut f = self.forgets.lock().unwrap_or_else(|e| e.into_inner());
            f.push((node, count));
            f.len() == 1
        };
        if first {
            let forgets = self.forgets.clone();
            let out = self.out.clone();
            self.runtime.spawn(async move {
                tokio::task::yield_now().await;
                let nodes = std::mem::take(&mut *forgets.lock().unwrap_or_else(|e| e.into_inner()));
                if !nodes.is_empty() {
                    let _ = out.send(proto::encode(&ClientMsg::Forget { nodes })).await;
                }
            });
        }
    }

    /// The runtime the calls run on.
    pub fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// A handle that reports the channel's state after the core is gone.
    pub fn watcher(&self) -> Watcher {
        Watcher(self.pending.clone())
    }
}

/// Reports whether a [`Core`]'s channel is gone.
#[derive(Clone)]
pub struct Watcher(Arc<Mutex<Pending>>);

impl Watcher {
    /// Why the channel is gone, if it is.
    pub fn lost(&self) -> Option<String> {
        lock(&self.0).lost.clone()
    }
}
