//! A throwaway control server standing in for the daemon: it answers each
//! request on its Unix socket with the replies a handler gives, all at once
//! ([`FakeDaemon::start`]) or one by one as a script sends them, pausing
//! between them as it likes ([`FakeDaemon::start_scripted`]).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
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
        Self::start_scripted(tag, move |request, replier| {
            for reply in handler(request) {
                if !replier.send(&reply) {
                    return;
                }
            }
        })
    }

    /// Listens on a fresh socket named after `tag`; `script` answers each
    /// request (on a thread of its own) through the [`Replier`], at its pace.
    pub fn start_scripted(
        tag: &str,
        script: impl Fn(Request, &mut Replier) + Send + Sync + 'static,
    ) -> Self {
        let dir = std::env::temp_dir().join(format!("zos-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let socket = dir.join("control.sock");
        let listener = UnixListener::bind(&socket).expect("bind the fake control socket");
        let script = Arc::new(script);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let script = script.clone();
                thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let request: Request = serde_json::from_str(&line).expect("a valid request");
                    script(request, &mut Replier(stream));
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

/// Where a script writes its replies: one JSON line each, sent at once.
pub struct Replier(UnixStream);

impl Replier {
    /// Sends `reply`; false once the client has gone.
    pub fn send(&mut self, reply: &Reply) -> bool {
        let mut text = serde_json::to_string(reply).expect("serialise");
        text.push('\n');
        self.0.write_all(text.as_bytes()).is_ok()
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
