//! The set-up of `zos bench display`'s direct and fan-out measurements: two virtual displays
//! with their apps, a fan-out helper for each, and Xvfb screens for the viewer windows.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use zos_display::{VirtualDisplay, launch_app};

use super::{ANIMATED, Target, fanout};

/// This bench's own set-up: two virtual displays with their apps, a fan-out helper for each,
/// two Xvfb screens for the windows, all stopped and removed on drop.
pub(super) struct Bench {
    pub(super) xterm: Target,
    pub(super) animated: Target,
    pub(super) fanout_xterm: Target,
    pub(super) fanout_animated: Target,
    pub(super) screens: [String; 2],
    // Dropped in this order: fan-outs, apps, displays, screens, the runtime, the directory.
    _fanouts: Vec<fanout::Helper>,
    pub(super) _apps: Vec<tokio::process::Child>,
    pub(super) _displays: Vec<VirtualDisplay>,
    pub(super) _xvfbs: Vec<Xvfb>,
    _runtime: tokio::runtime::Runtime,
    _dir: TempDir,
}

impl Bench {
    pub(super) fn start() -> Result<Bench> {
        let dir = TempDir::new("direct")?;
        let runtime = tokio::runtime::Runtime::new()?;
        let exe = std::env::current_exe()?;
        let xterm_vd = VirtualDisplay::start(dir.0.as_path(), (640, 480))?;
        let anim_vd = VirtualDisplay::start(dir.0.as_path(), ANIMATED)?;
        let apps = {
            let _guard = runtime.enter();
            vec![
                launch_app(
                    &xterm_vd,
                    &["xterm", "-geometry", "60x12+0+0", "-e", "bash", "--norc"],
                )?,
                launch_app(
                    &anim_vd,
                    &[
                        exe.as_os_str(),
                        "bench".as_ref(),
                        "display".as_ref(),
                        "--animate".as_ref(),
                    ],
                )?,
            ]
        };
        let xvfbs = vec![Xvfb::start()?, Xvfb::start()?];
        let screens = [xvfbs[0].display.clone(), xvfbs[1].display.clone()];
        let target = |socket: &std::path::Path, server_pids: Vec<u32>| {
            let socket = socket.to_owned();
            let window_socket = socket.clone();
            let exe = exe.clone();
            Target {
                connect: Arc::new(move || UnixStream::connect(&socket)),
                spawn_window: Arc::new(move |screen: &str| {
                    let mut command = Command::new(&exe);
                    command
                        .args(["bench", "display", "--viewer-socket"])
                        .arg(&window_socket);
                    spawn_quiet_window(command, screen)
                }),
                server_pids,
            }
        };
        let fanouts = vec![
            fanout::Helper::start(&exe, xterm_vd.rfb_socket(), dir.0.join("fanout-xterm.sock"))?,
            fanout::Helper::start(&exe, anim_vd.rfb_socket(), dir.0.join("fanout-anim.sock"))?,
        ];
        Ok(Bench {
            xterm: target(xterm_vd.rfb_socket(), vec![xterm_vd.pid()]),
            animated: target(anim_vd.rfb_socket(), vec![anim_vd.pid()]),
            fanout_xterm: target(&fanouts[0].socket, vec![xterm_vd.pid(), fanouts[0].pid()]),
            fanout_animated: target(&fanouts[1].socket, vec![anim_vd.pid(), fanouts[1].pid()]),
            screens,
            _fanouts: fanouts,
            _apps: apps,
            _displays: vec![xterm_vd, anim_vd],
            _xvfbs: xvfbs,
            _runtime: runtime,
            _dir: dir,
        })
    }
}

/// Starts `command` as a viewer window on X display `screen`, with no
/// output, no inherited X cookie and no shader cache left behind.
pub(crate) fn spawn_quiet_window(
    mut command: Command,
    screen: &str,
) -> std::io::Result<std::process::Child> {
    command
        .env("DISPLAY", screen)
        .env("MESA_SHADER_CACHE_DISABLE", "true")
        .env_remove("XAUTHORITY")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

/// A private directory for the displays' sockets, removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Result<TempDir> {
        let dir =
            std::env::temp_dir().join(format!("zos-bench-display-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An Xvfb screen for viewer windows, killed on drop.
pub(super) struct Xvfb {
    child: std::process::Child,
    pub(super) display: String,
}

impl Xvfb {
    pub(super) fn start() -> Result<Xvfb> {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1400x900x24",
                "-nolisten",
                "tcp",
                // No reset when the last viewer window closes between two measurements.
                "-noreset",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("start Xvfb (package xvfb)")?;
        let mut number = String::new();
        let stdout = child.stdout.take().context("Xvfb's stdout")?;
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut number)?;
        Ok(Xvfb {
            child,
            display: format!(":{}", number.trim()),
        })
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // SIGTERM lets Xvfb remove its socket and lock file.
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
