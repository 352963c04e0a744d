//! A throwaway control server standing in for the daemon: it answers each
//! request on its Unix socket with the replies a handler gives.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;

use zos_netproto::control::{Reply, Request};

/// A fake daemon listening until the process ends.
pub struct FakeDaemon {
    dir: PathBuf,
    socket: PathBuf,
}

impl FakeDaemon {
    /// Listens on a fresh socket named after `tag`, answering with `handler`.
    pub fn start(
        tag: &str,
        handler: impl Fn(Request) -> Vec<Reply> + Send + Sync + 'static,
    ) -> Self {
        let dir = std::env::temp_dir().join(format!("zos-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let socket = dir.join("control.sock");
        let listener = UnixListener::bind(&socket).expect("bind the fake control socket");
        let handler = Arc::new(handler);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let handler = handler.clone();
                thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let request: Request = serde_json::from_str(&line).expect("a valid request");
                    let mut out = stream;
                    for reply in handler(request) {
                        let mut text = serde_json::to_string(&reply).expect("serialise");
                        text.push('\n');
                        if out.write_all(text.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FakeDaemon { dir, socket }
    }

    /// The control socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
