//! `zos attach` and `zos logs` on a control connection (after the final `Stream` reply).

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

use super::terminal::Terminal;

/// Written to a client that fell too far behind the task's output.
const LAGGED_NOTICE: &[u8] =
    b"\r\n[zos: output skipped here, this client read too slowly; `zos logs` has it]\r\n";
/// Bytes read from a client at once.
const INPUT_CHUNK: usize = 4096;

/// Serves one attached client: the recent output, then everything new; what it sends is
/// typed in. Ends when the task ended (after its last output) or the client closes.
pub async fn serve_attach(stream: UnixStream, terminal: Arc<Terminal>) {
    let (tail, live) = terminal.subscribe_with_tail();
    let (mut from_client, mut to_client) = stream.into_split();
    if to_client.write_all(&tail).await.is_err() {
        return;
    }
    let typing = {
        let terminal = terminal.clone();
        async move {
            let mut buf = vec![0u8; INPUT_CHUNK];
            loop {
                match from_client.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if let Err(e) = terminal.input(Bytes::copy_from_slice(&buf[..n])).await {
                            tracing::debug!("attached input dropped: {e}");
                        }
                    }
                }
            }
        }
    };
    pump_live(live, terminal.ended(), to_client, typing).await;
}

/// Serves `zos logs`: the log as it is, then with `follow` everything new until the task ended
/// or the client closes.
pub async fn serve_logs(mut stream: UnixStream, terminal: Arc<Terminal>, follow: bool) {
    let (snapshot, live) = match terminal.log_and_subscribe() {
        Ok(v) => v,
        Err(e) => {
            let _ = stream.write_all(format!("zos: {e}\n").as_bytes()).await;
            return;
        }
    };
    for (file, len) in snapshot.segments {
        let read = tokio::task::spawn_blocking(move || {
            let mut data = Vec::new();
            file.take(len).read_to_end(&mut data).map(|_| data)
        })
        .await;
        let Ok(Ok(data)) = read else {
            return;
        };
        if stream.write_all(&data).await.is_err() {
            return;
        }
    }
    if !follow {
        let _ = stream.shutdown().await;
        return;
    }
    let (mut from_client, to_client) = stream.into_split();
    let hang_up = async move {
        let mut sink = [0u8; 64];
        while matches!(from_client.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    pump_live(live, terminal.ended(), to_client, hang_up).await;
}

/// Sends live output to a client until the task ended (and its last output went), the client
/// is gone, or `stop` completes.
async fn pump_live(
    mut live: broadcast::Receiver<Bytes>,
    mut ended: watch::Receiver<bool>,
    mut to_client: OwnedWriteHalf,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            chunk = live.recv() => {
                let bytes = match chunk {
                    Ok(b) => b,
                    Err(RecvError::Lagged(_)) => Bytes::from_static(LAGGED_NOTICE),
                    Err(RecvError::Closed) => return,
                };
                if to_client.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            () = until_true(&mut ended) => {
                // Whatever came before the end is still queued.
                while let Ok(bytes) = live.try_recv() {
                    if to_client.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                let _ = to_client.shutdown().await;
                return;
            }
        }
    }
}

/// Returns once `flag` is true (or its sender is gone).
async fn until_true(flag: &mut watch::Receiver<bool>) {
    while !*flag.borrow_and_update() {
        if flag.changed().await.is_err() {
            return;
        }
    }
}
