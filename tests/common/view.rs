//! Viewing shared apps from the test: a real `ViewerConnection` over the
//! stream a host's daemon gives for `View { task }` on its control socket
//! (the same path `zos view` takes), and checks on the frames it receives.

use std::path::PathBuf;
use std::time::Duration;

use tokio::runtime::Runtime;
use zos_display::{Frame, ViewerConnection};
use zos_netproto::control::{self, Request};

use super::host::Host;

/// X keysym of Return.
pub const XK_RETURN: u32 = 0xff0d;

/// The control socket of the daemon on `host` (the only one in its runtime dir).
pub fn control_socket(host: &Host) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(&host.runtime)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("control.sock"))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(found.len(), 1, "{}: control sockets {found:?}", host.label);
    found.into_iter().next().unwrap()
}

/// A view of one task, driven on its own runtime.
pub struct View {
    /// The runtime the viewer's task runs on.
    pub rt: Runtime,
    /// The viewer.
    pub viewer: ViewerConnection,
}

impl View {
    /// Asks `host`'s daemon for a view of `task` and connects a viewer.
    pub fn open(host: &Host, task: u64) -> View {
        let stream = control::open_stream(&control_socket(host), &Request::View { task })
            .unwrap_or_else(|e| panic!("{}: view task {task}: {e}", host.label));
        stream.set_nonblocking(true).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let viewer = rt.block_on(async {
            let stream = tokio::net::UnixStream::from_std(stream).unwrap();
            ViewerConnection::connect(stream).await.unwrap()
        });
        View { rt, viewer }
    }

    /// The current frame.
    pub fn frame(&self) -> Frame {
        self.viewer.frame()
    }

    /// Types `text` (Latin-1 characters: their keysyms are their code points).
    pub fn type_text(&self, text: &str) {
        self.rt.block_on(async {
            for c in text.chars() {
                self.viewer.key(c as u32, true).await.unwrap();
                self.viewer.key(c as u32, false).await.unwrap();
            }
        });
    }

    /// Presses and releases one key.
    pub fn key(&self, keysym: u32) {
        self.rt.block_on(async {
            self.viewer.key(keysym, true).await.unwrap();
            self.viewer.key(keysym, false).await.unwrap();
        });
    }

    /// Clicks `button` (1 left … 3 right, 4/5 wheel) at (x, y).
    pub fn click(&self, x: u16, y: u16, button: u8) {
        let mask = 1u8 << (button - 1);
        self.rt.block_on(async {
            self.viewer.pointer(x, y, 0).await.unwrap();
            self.viewer.pointer(x, y, mask).await.unwrap();
            self.viewer.pointer(x, y, 0).await.unwrap();
        });
    }

    /// Waits until a frame satisfies `check`; returns it, or the last frame
    /// seen as the error.
    pub fn wait_frame(
        &self,
        timeout: Duration,
        check: impl Fn(&Frame) -> bool,
    ) -> Result<Frame, Frame> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let frame = self.frame();
            if frame.width > 0 && check(&frame) {
                return Ok(frame);
            }
            if std::time::Instant::now() > deadline {
                return Err(frame);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the shared xterm shows its shell's prompt (see [`shows_prompt`]): keys
    /// typed before may be lost on a loaded machine (the window not yet mapped or focused).
    pub fn wait_prompt(&self, timeout: Duration) -> Result<Frame, Frame> {
        self.wait_frame(timeout, shows_prompt)
    }

    /// Waits until the view has ended (server or session gone).
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        super::poll::until(timeout, || self.viewer.is_closed().then_some(())).is_some()
    }
}

/// Pixels of exactly `rgb` in a frame.
pub fn count_rgb(frame: &Frame, rgb: [u8; 3]) -> usize {
    frame.rgba.chunks_exact(4).filter(|p| p[..3] == rgb).count()
}

/// Whether the frame shows a terminal's prompt at the top left, where the window keeper puts
/// an app's first window: the first text row (60 x 14 pixels) mostly white with dark text in
/// it — not the black root (no window yet) and not an empty terminal (no shell yet).
pub fn shows_prompt(frame: &Frame) -> bool {
    if frame.width < 60 || frame.height < 14 {
        return false;
    }
    let (mut white, mut dark) = (0, 0);
    for y in 0..14usize {
        for x in 0..60usize {
            let i = (y * usize::from(frame.width) + x) * 4;
            let p = &frame.rgba[i..i + 3];
            if p.iter().all(|&c| c > 200) {
                white += 1;
            } else if p.iter().all(|&c| c < 80) {
                dark += 1;
            }
        }
    }
    white > 60 * 14 / 2 && dark > 20
}

/// xterm's default ANSI red background (red3).
pub const XTERM_RED: [u8; 3] = [205, 0, 0];
/// xterm's default ANSI blue background (blue2).
pub const XTERM_BLUE: [u8; 3] = [0, 0, 238];

/// A shell command that paints a bar of `cells` cells with background colour
/// `sgr` (41 red, 44 blue) in a terminal.
pub fn bar_command(sgr: u8, cells: u32) -> String {
    format!("printf '\\033[{sgr}m%{cells}s\\033[0m\\n' ''")
}

/// Saves a frame under `target/e2e-screenshots/NAME.png` and returns the path.
pub fn save(frame: &Frame, name: &str) -> PathBuf {
    let path = super::screen::screenshot_dir().join(format!("{name}.png"));
    image::save_buffer(
        &path,
        &frame.rgba,
        u32::from(frame.width),
        u32::from(frame.height),
        image::ExtendedColorType::Rgba8,
    )
    .unwrap();
    path
}
