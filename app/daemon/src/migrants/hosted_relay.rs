//! The zombie's side of a `pty/<task>` relay (see `relay` for the messages): a reader thread
//! takes the pod's output from its pty master, a writer thread types the master's input into
//! it, and a task carries both over the current link to the master. Without a link the reader
//! is not drained (so the pod blocks once its pty is full) and nothing is lost; on the next
//! link the channel is opened again, starting with what could not be sent.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use zos_netproto::PublicKey;
use zos_netproto::mux::{Channel, Mux};

use super::hosted::Link;
use super::local_pty;
use super::relay::{MAX_OUTPUT_CHUNK, MAX_PTY_MESSAGE, PtyMessage, pty_label};
use super::terminal::SourceCmd;

/// Reads the pty until it is drained (EIO once every slave is closed).
fn read_pty(mut pty: File, out: mpsc::Sender<Bytes>) {
    let mut buf = vec![0u8; MAX_OUTPUT_CHUNK];
    loop {
        match pty.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if out
                    .blocking_send(Bytes::copy_from_slice(&buf[..n]))
                    .is_err()
                {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

fn write_pty(mut commands: mpsc::Receiver<SourceCmd>, mut pty: File, what: &str) {
    use std::io::Write;
    while let Some(cmd) = commands.blocking_recv() {
        match cmd {
            SourceCmd::Input(bytes) => {
                if pty.write_all(&bytes).is_err() {
                    break;
                }
            }
            SourceCmd::Resize { cols, rows } => {
                local_pty::apply_size(pty.as_fd(), cols, rows, what)
            }
        }
    }
}

/// One pod's relay to the master (see the module docs).
pub(super) struct Relay {
    /// The master the pod runs for.
    pub master: PublicKey,
    /// The master's task id.
    pub task: u64,
    /// The epoch it runs at.
    pub epoch: u64,
    /// The current link to a master.
    pub link: watch::Receiver<Link>,
    /// The pod's end is expected: no `Exited` goes to the master.
    pub handed_off: Arc<AtomicBool>,
    /// The pod's exit code, once reaped.
    pub exit: oneshot::Receiver<i32>,
}

/// A started relay's moving parts.
struct Running {
    relay: Relay,
    out: mpsc::Receiver<Bytes>,
    commands: mpsc::Sender<SourceCmd>,
}

/// How one link's session of the relay ended.
enum LinkEnd {
    /// The link broke: wait for the next; this output is still to be sent.
    Broken(Option<Bytes>),
    /// Every output byte was sent.
    Drained,
}

impl Relay {
    /// Starts the reader and writer threads on `pty` and the relay task on `runtime`.
    pub fn start(self, pty: OwnedFd, runtime: &tokio::runtime::Handle) -> std::io::Result<()> {
        let task = self.task;
        let reader = File::from(pty);
        let writer = reader.try_clone()?;
        let (out_tx, out) = mpsc::channel::<Bytes>(64);
        let (commands, cmd_rx) = mpsc::channel::<SourceCmd>(64);
        std::thread::Builder::new()
            .name(format!("hosted-{task}-out"))
            .spawn(move || read_pty(reader, out_tx))?;
        let what = format!("hosted task {task}");
        std::thread::Builder::new()
            .name(format!("hosted-{task}-in"))
            .spawn(move || write_pty(cmd_rx, writer, &what))?;
        let running = Running {
            relay: self,
            out,
            commands,
        };
        runtime.spawn(running.run());
        Ok(())
    }
}

impl Running {
    async fn run(mut self) {
        let mut pending: Option<Bytes> = None;
        let mut used = 0u64;
        loop {
            let Some((n, mux)) = self.next_link(used).await else {
                return;
            };
            used = n;
            let channel = match mux.open(&pty_label(self.relay.task)) {
                Ok(c) => c,
                Err(e) => {
                    tracing::info!("task {}: cannot open its pty channel: {e}", self.relay.task);
                    continue;
                }
            };
            match self.serve(channel, pending.take()).await {
                LinkEnd::Broken(unsent) => pending = unsent,
                LinkEnd::Drained => return,
            }
        }
    }

    /// The next link to our master newer than `used`; `None` when the daemon stops.
    async fn next_link(&mut self, used: u64) -> Option<(u64, Mux)> {
        loop {
            if let Some((n, key, mux)) = self.relay.link.borrow_and_update().clone()
                && n > used
                && key == self.relay.master
            {
                return Some((n, mux));
            }
            self.relay.link.changed().await.ok()?;
        }
    }

    async fn serve(&mut self, mut channel: Channel, pending: Option<Bytes>) -> LinkEnd {
        channel.set_max_message(MAX_PTY_MESSAGE);
        let (sender, mut receiver) = channel.split();
        let hello = PtyMessage::Hello {
            task: self.relay.task,
            epoch: self.relay.epoch,
        };
        if sender.send_msg(&hello).await.is_err() {
            return LinkEnd::Broken(pending);
        }
        if let Some(bytes) = pending
            && sender
                .send_msg(&PtyMessage::Output(bytes.to_vec()))
                .await
                .is_err()
        {
            return LinkEnd::Broken(Some(bytes));
        }
        loop {
            tokio::select! {
                chunk = self.out.recv() => match chunk {
                    Some(bytes) => {
                        if sender.send_msg(&PtyMessage::Output(bytes.to_vec())).await.is_err() {
                            return LinkEnd::Broken(Some(bytes));
                        }
                    }
                    None => break,
                },
                message = receiver.recv_msg::<PtyMessage>() => match message {
                    Ok(Some(PtyMessage::Input(bytes))) => {
                        let _ = self.commands.send(SourceCmd::Input(bytes.into())).await;
                    }
                    Ok(Some(PtyMessage::Resize { cols, rows })) => {
                        let _ = self.commands.send(SourceCmd::Resize { cols, rows }).await;
                    }
                    Ok(Some(other)) => {
                        tracing::warn!("task {}: unexpected {other:?} from the master", self.relay.task);
                        return LinkEnd::Broken(None);
                    }
                    Ok(None) | Err(_) => return LinkEnd::Broken(None),
                },
            }
        }
        // The pty is drained: the pod ended (or its copy was killed after going home).
        let code = (&mut self.relay.exit).await.unwrap_or(255);
        if !self.relay.handed_off.load(Ordering::Acquire) {
            let _ = sender.send_msg(&PtyMessage::Exited { code }).await;
        }
        drop(sender);
        LinkEnd::Drained
    }
}
