//! Helpers shared by the integration tests: private runtime directories and logging.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::net::UnixStream;
use zos_display::{ViewerConnection, VirtualDisplay, launch_app};

/// A private (0700) directory removed on drop.
pub struct RuntimeDir(PathBuf);

impl RuntimeDir {
    pub fn new(name: &str) -> RuntimeDir {
        let dir = std::env::temp_dir().join(format!("zos-display-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        RuntimeDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "zos_display=debug".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Polls `f` every 20 ms until it returns true or `timeout` passes.
pub async fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// Whether a process with this pid exists (and is not a defunct entry).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// A viewer of `vd` over its unix socket.
pub async fn connect(vd: &VirtualDisplay) -> ViewerConnection {
    let stream = UnixStream::connect(vd.rfb_socket()).await.unwrap();
    ViewerConnection::connect(stream).await.unwrap()
}

/// An X tool run against `vd`; `None` if it fails.
pub fn try_x_tool(vd: &VirtualDisplay, program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .env("DISPLAY", vd.display())
        .env("XAUTHORITY", vd.xauthority())
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An X tool run against `vd` that must succeed; its output.
pub fn x_tool(vd: &VirtualDisplay, program: &str, args: &[&str]) -> String {
    try_x_tool(vd, program, args).unwrap_or_else(|| panic!("{program} {args:?} failed"))
}

/// The X server's own picture of the root window, RGBA, taken with ImageMagick's `import`.
pub fn server_screenshot(vd: &VirtualDisplay) -> Vec<u8> {
    let out = Command::new("import")
        .env("XAUTHORITY", vd.xauthority())
        .args(["-display", &vd.display(), "-window", "root", "-depth", "8"])
        .arg("rgba:-")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Pixels of `rgba` that differ from its last one (the bottom-right corner: the bare root
/// window).
pub fn non_background(rgba: &[u8]) -> usize {
    let Some(bg) = rgba.len().checked_sub(4).map(|i| &rgba[i..]) else {
        return 0;
    };
    rgba.chunks_exact(4).filter(|p| p != &bg).count()
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A 60×12 black-on-white xterm at the top left of `vd`, with `extra` arguments.
pub fn xterm(vd: &VirtualDisplay, extra: &[&str]) -> tokio::process::Child {
    let mut argv = vec![
        "xterm",
        "-geometry",
        "60x12+0+0",
        "-bg",
        "white",
        "-fg",
        "black",
    ];
    argv.extend_from_slice(extra);
    launch_app(vd, &argv).unwrap()
}

/// Waits until `viewer` shows the xterm of [`xterm`].
pub async fn wait_for_xterm(viewer: &ViewerConnection) {
    assert!(
        wait_until(Duration::from_secs(15), || non_background(
            &viewer.frame().rgba
        ) > 20_000)
        .await,
        "no xterm in the framebuffer: {} non-background pixels",
        non_background(&viewer.frame().rgba)
    );
}

/// Waits until the viewer's framebuffer equals the X server's own screenshot, pixel for pixel
/// (with the Cursor pseudo-encoding the server no longer paints the pointer into it).
pub async fn assert_matches_server(vd: &VirtualDisplay, viewer: &ViewerConnection) {
    let mut mismatched = usize::MAX;
    let ok = wait_until(Duration::from_secs(10), || {
        let shot = server_screenshot(vd);
        let frame = viewer.frame();
        if shot.len() != frame.rgba.len() {
            return false;
        }
        mismatched = shot
            .chunks_exact(4)
            .zip(frame.rgba.chunks_exact(4))
            .filter(|(a, b)| a[..3] != b[..3])
            .count();
        mismatched == 0
    })
    .await;
    assert!(
        ok,
        "{mismatched} pixels differ from the server's screenshot"
    );
}

/// An `xev -event button` window at the top left of `vd`, logging to `log`; returns once the
/// window is mapped (xev prints nothing for button events until the first one; a click on a
/// window not yet mapped is lost).
pub async fn button_xev(vd: &VirtualDisplay, log: &Path) -> tokio::process::Child {
    let script = format!(
        "exec stdbuf -oL xev -event button -geometry 300x200+0+0 > '{}'",
        log.display()
    );
    let xev = launch_app(vd, &["sh", "-c", &script]).unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || try_x_tool(
            vd,
            "xdotool",
            &["search", "--onlyvisible", "--name", "Event Tester"]
        )
        .is_some())
        .await,
        "no xev window"
    );
    xev
}
