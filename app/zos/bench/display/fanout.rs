//! The fan-out path of `zos bench display`: a helper process (`zos bench display --fanout-of
//! RFB_SOCKET --fanout-listen PATH`) holds the app's [`Fanout`] — the one client of its Xvnc —
//! and serves every viewer that connects to `PATH`, as the master daemon does. Being a process
//! of its own, its CPU is measured apart from the viewers'.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tokio::net::UnixListener;
use zos_display::Fanout;

/// What the helper prints once it accepts viewers.
const READY: &str = "fan-out ready";

/// The helper process: serves `rfb_socket`'s display on `listen` until the display ends.
pub fn serve(rfb_socket: &Path, listen: &Path) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let fanout = Arc::new(Fanout::start(rfb_socket).await?);
        let _ = std::fs::remove_file(listen);
        let listener = UnixListener::bind(listen)
            .with_context(|| format!("listen on {}", listen.display()))?;
        println!("{READY}");
        loop {
            let (stream, _) = listener.accept().await?;
            let fanout = Arc::clone(&fanout);
            tokio::spawn(async move {
                let _ = fanout.serve(stream).await;
            });
        }
    })
}

/// A running helper, killed on drop.
pub struct Helper {
    child: Child,
    /// Where viewers connect.
    pub socket: PathBuf,
}

impl Helper {
    /// Starts `exe bench display --fanout-of rfb_socket --fanout-listen socket` and waits
    /// until it accepts viewers.
    pub fn start(exe: &Path, rfb_socket: &Path, socket: PathBuf) -> Result<Helper> {
        let mut child = Command::new(exe)
            .args(["bench", "display", "--fanout-of"])
            .arg(rfb_socket)
            .arg("--fanout-listen")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("start the fan-out helper")?;
        let stdout = child.stdout.take().context("the helper's stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() != READY {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the fan-out helper did not start: {line:?}");
        }
        Ok(Helper { child, socket })
    }

    /// The helper's process id (its CPU is the fan-out's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
