//! The zombie's end of the channel: calls with ids, many in flight.
//!
//! Calls take turns on the channel's sending half (a channel carries one
//! whole message at a time); a reader task hands each reply to the call
//! waiting for its id. When the channel fails, every waiting call and every
//! later one fails at once with `EIO`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fuser::Errno;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use zos_netproto::mux::{ChannelReceiver, ChannelSender};

use crate::proto::{self, Answer, ClientMsg, Op, ServerMsg};

/// What to do with a call's result (run by the reader task).
pub type Done = Box<dyn FnOnce(Result<Answer, Errno>) + Send>;

/// Calls waiting for replies, and whether the channel is gone.
#[derive(Default)]
struct Pending {
    waiting: HashMap<u64, Done>,
    /// Why the channel is gone, once it is.
    lost: Option<String>,
}

/// The calling side of one file-service channel.
pub struct Core {
    tx: Arc<tokio::sync::Mutex<ChannelSender>>,
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
    for (_, done) in waiting {
        done(Err(Errno::EIO));
    }
}

/// Fails every waiting call when dropped (a no-op once the channel is lost).
struct LoseOnDrop(Arc<Mutex<Pending>>);

impl Drop for LoseOnDrop {
    fn drop(&mut self) {
        lose(&self.0, "the file service's runtime stopped".into(), false);
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
        let reader_pending = pending.clone();
        runtime.spawn(async move {
            // Should the runtime drop this task (shutdown), waiting calls
            // still fail instead of hanging.
            let _guard = LoseOnDrop(reader_pending.clone());
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
                            Some(done) => done(result.map_err(errno)),
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
            tx: Arc::new(tokio::sync::Mutex::new(tx)),
            pending,
            next_id: AtomicU64::new(1),
            runtime: runtime.clone(),
            forgets: Arc::default(),
        }
    }

    /// Sends one call to the master; `done` gets its result (`EIO` once the
    /// channel is gone). Callable from any thread.
    pub fn call_then(&self, op: Op, done: Done) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let msg = proto::encode(&ClientMsg::Call { id, op });
        {
            let mut p = lock(&self.pending);
            if p.lost.is_some() {
                drop(p);
                return done(Err(Errno::EIO));
            }
            p.waiting.insert(id, done);
        }
        let (tx, pending) = (self.tx.clone(), self.pending.clone());
        let send = async move {
            if let Err(e) = tx.lock().await.send(&msg).await {
                lose(&pending, e.to_string(), false);
            }
        };
        if Handle::try_current().is_ok() {
            self.runtime.spawn(send);
        } else {
            // A plain thread (the FUSE thread): send from here, saving a
            // hand-off; it waits only while the channel has no credit.
            self.runtime.block_on(send);
        }
    }

    /// Runs one call on the master; `EIO` once the channel is gone.
    pub async fn call(&self, op: Op) -> Result<Answer, Errno> {
        let (tx, rx) = oneshot::channel();
        self.call_then(
            op,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.await.unwrap_or(Err(Errno::EIO))
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
            let tx = self.tx.clone();
            self.runtime.spawn(async move {
                tokio::task::yield_now().await;
                let nodes = std::mem::take(&mut *forgets.lock().unwrap_or_else(|e| e.into_inner()));
                if !nodes.is_empty() {
                    let msg = proto::encode(&ClientMsg::Forget { nodes });
                    let _ = tx.lock().await.send(&msg).await;
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
