//! Serving the local control socket.
//!
//! The socket is created mode 0600 in the runtime dir (itself 0700). A stale
//! socket from a crashed daemon is replaced; a live one (another daemon on
//! the same home) is refused.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use zos_netproto::control::{Reply, Request};

use crate::accept::{LogLimiter, accept_loop};
use crate::error::{DaemonError, Result};
use crate::limits::{
    CONTROL_REQUEST_TIMEOUT, MAX_CONTROL_CLIENTS, MAX_CONTROL_REQUEST, REFUSAL_LOG_INTERVAL,
};

/// What a connection turns into after a final [`Reply::Stream`]: it gets
/// the whole connection and runs until the stream ends.
pub type Upgrade = Box<dyn FnOnce(UnixStream) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Where intermediate replies of a streaming request go.
pub struct Replies {
    /// `None` for work the daemon does on its own: nobody waits for its progress.
    writer: Option<OwnedWriteHalf>,
    /// Cancelled when the client hangs up (not watched for stream requests,
    /// whose bytes after the request belong to the stream).
    pub gone: CancellationToken,
    upgrade: Option<Upgrade>,
}

impl Replies {
    /// Sends a non-final reply; fails if the client went away.
    pub async fn send(&mut self, reply: &Reply) -> Result<()> {
        match &mut self.writer {
            Some(w) => write_reply(w, reply).await,
            None => Ok(()),
        }
    }

    /// Replies that go nowhere, for a request the daemon makes of itself (a
    /// release its zombie's user asked for): progress is dropped, and it never
    /// counts as hung up.
    pub fn nowhere() -> Replies {
        Replies {
            writer: None,
            gone: CancellationToken::new(),
            upgrade: None,
        }
    }

    /// Hands the connection to `upgrade` once the final reply
    /// ([`Reply::Stream`]) is written.
    pub fn upgrade(&mut self, upgrade: Upgrade) {
        self.upgrade = Some(upgrade);
    }
}

async fn write_reply(w: &mut OwnedWriteHalf, reply: &Reply) -> Result<()> {
    let mut line = serde_json::to_string(reply).expect("replies serialise");
    line.push('\n');
    w.write_all(line.as_bytes())
        .await
        .map_err(|e| DaemonError::io("write control reply", e))
}

/// A daemon role's request handler.
pub trait Handler: Send + Sync + 'static {
    /// Serves one request; returns the final reply.
    fn handle(
        self: Arc<Self>,
        request: Request,
        out: &mut Replies,
    ) -> impl Future<Output = Reply> + Send;
}

/// Binds the control socket at `path`.
pub fn bind(path: &Path) -> Result<UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(DaemonError::User(format!(
                "another daemon already serves {} (same --home); stop it first with `zos stop`",
                path.display()
            )));
        }
        std::fs::remove_file(path)
            .map_err(|e| DaemonError::io(format!("remove stale {}", path.display()), e))?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| DaemonError::io(format!("bind {}", path.display()), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| DaemonError::io(format!("chmod {}", path.display()), e))?;
    Ok(listener)
}

/// Serves clients until `shutdown` is cancelled, then removes the socket.
/// At most [`MAX_CONTROL_CLIENTS`] at once; beyond, a client is closed at
/// once (logged at most once per [`REFUSAL_LOG_INTERVAL`]).
pub async fn serve<H: Handler>(
    listener: UnixListener,
    path: PathBuf,
    handler: Arc<H>,
    shutdown: CancellationToken,
) {
    let places = Arc::new(Semaphore::new(MAX_CONTROL_CLIENTS));
    let mut refusals = LogLimiter::new(REFUSAL_LOG_INTERVAL);
    accept_loop(&listener, "control socket", &shutdown, |stream, _| {
        match places.clone().try_acquire_owned() {
            Ok(place) => {
                let handler = handler.clone();
                tokio::spawn(async move {
                    serve_client(stream, handler).await;
                    drop(place);
                });
            }
            Err(_) => {
                drop(stream);
                if let Some(left_out) = refusals.allow(tokio::time::Instant::now()) {
                    tracing::warn!(
                        "control socket: refused a client, {MAX_CONTROL_CLIENTS} are served already ({left_out} more refusals not logged)"
                    );
                }
            }
        }
    })
    .await;
    let _ = std::fs::remove_file(&path);
}

async fn serve_client<H: Handler>(stream: UnixStream, handler: Arc<H>) {
    let (reader, writer) = stream.into_split();
    let mut reader = BufReader::new(reader).take(MAX_CONTROL_REQUEST as u64);
    let mut line = String::new();
    let gone = CancellationToken::new();
    let mut out = Replies {
        writer: Some(writer),
        gone: gone.clone(),
        upgrade: None,
    };
    let read = tokio::time::timeout(CONTROL_REQUEST_TIMEOUT, reader.read_line(&mut line)).await;
    let request = match read {
        Ok(Ok(0)) => return,
        Ok(Ok(_)) => {
            serde_json::from_str::<Request>(&line).map_err(|e| format!("bad control request: {e}"))
        }
        Ok(Err(e)) => Err(format!("bad control request: {e}")),
        Err(_) => Err(format!(
            "no request within {} s",
            CONTROL_REQUEST_TIMEOUT.as_secs()
        )),
    };
    let request = match request {
        Ok(r) => r,
        Err(message) => {
            let _ = out.send(&Reply::Error { message }).await;
            return;
        }
    };
    tracing::debug!(?request, "control request");
    if zos_netproto::control::is_stream_request(&request) {
        let reply = handler.handle(request, &mut out).await;
        let upgrade = out.upgrade.take();
        if out.send(&reply).await.is_err() {
            return;
        }
        let (Reply::Stream, Some(upgrade)) = (reply, upgrade) else {
            return;
        };
        let buffered = reader.get_ref().buffer().len();
        if buffered > 0 {
            tracing::warn!("a stream client sent {buffered} bytes before the stream began");
            return;
        }
        let Some(writer) = out.writer else { return };
        match reader.into_inner().into_inner().reunite(writer) {
            Ok(stream) => upgrade(stream).await,
            Err(e) => tracing::warn!("control connection: {e}"),
        }
        return;
    }
    // Notice the client hanging up while a long request runs.
    let mut rest = reader.into_inner();
    let watch = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        loop {
            match rest.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        gone.cancel();
    });
    let reply = handler.handle(request, &mut out).await;
    watch.abort();
    let _ = out.send(&reply).await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncBufReadExt;

    use super::*;
    use crate::limits::{CONTROL_REQUEST_TIMEOUT, MAX_CONTROL_CLIENTS};

    /// Answers every request with `Done`.
    struct Done;

    impl Handler for Done {
        async fn handle(self: Arc<Self>, _request: Request, _out: &mut Replies) -> Reply {
            Reply::Done
        }
    }

    async fn reply_line(stream: UnixStream) -> String {
        let mut line = String::new();
        let _ = BufReader::new(stream).read_line(&mut line).await;
        line
    }

    #[tokio::test(start_paused = true)]
    async fn silent_clients_are_capped_and_dropped_after_the_request_timeout() {
        let dir = std::env::temp_dir().join(format!("zos-control-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("control.sock");
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(
            bind(&path).unwrap(),
            path.clone(),
            Arc::new(Done),
            shutdown.clone(),
        ));
        let mut silent = Vec::new();
        for _ in 0..MAX_CONTROL_CLIENTS {
            silent.push(UnixStream::connect(&path).await.unwrap());
        }
        // One more is closed at once, without an answer.
        let extra = UnixStream::connect(&path).await.unwrap();
        assert_eq!(reply_line(extra).await, "");
        // The silent ones are answered with an error once their time is up.
        let start = tokio::time::Instant::now();
        let first = reply_line(silent.remove(0)).await;
        assert!(first.contains("no request within"), "{first:?}");
        assert_eq!(start.elapsed().as_secs(), CONTROL_REQUEST_TIMEOUT.as_secs());
        for s in silent {
            assert!(reply_line(s).await.contains("no request within"));
        }
        // Then there is room again.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let mut client = UnixStream::connect(&path).await.unwrap();
        client.write_all(b"{\"op\":\"status\"}\n").await.unwrap();
        assert!(reply_line(client).await.contains("done"));
        shutdown.cancel();
        server.await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
