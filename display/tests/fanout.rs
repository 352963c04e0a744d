//! The fan-out against a real Xvnc: several viewers through one upstream connection see
//! exactly the server's pixels, drive the app, resize it and get the pointer shape; a stalled
//! viewer holds back only itself; TigerVNC's vncviewer views through it; the app ending closes
//! every viewer.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{
    RuntimeDir, assert_matches_server, button_xev, init_tracing, read, wait_for_xterm, wait_until,
    x_tool, xterm,
};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use zos_display::{
    DisplayError, Fanout, ResizeStatus, ViewEnd, ViewerConnection, VirtualDisplay, Wheel,
    launch_app,
};

const XK_RETURN: u32 = 0xff0d;

/// A fan-out of `vd` listening on `dir/fanout.sock`; each served viewer's outcome is sent on
/// the returned channel.
struct Exposed {
    fanout: Arc<Fanout>,
    socket: PathBuf,
    ends: mpsc::UnboundedReceiver<Result<ViewEnd, DisplayError>>,
}

async fn expose(vd: &VirtualDisplay, dir: &Path) -> Exposed {
    let fanout = Arc::new(Fanout::start(vd.rfb_socket()).await.unwrap());
    let socket = dir.join("fanout.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let (tx, ends) = mpsc::unbounded_channel();
    let serving = Arc::clone(&fanout);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (fanout, tx) = (Arc::clone(&serving), tx.clone());
            tokio::spawn(async move {
                let _ = tx.send(fanout.serve(stream).await);
            });
        }
    });
    Exposed {
        fanout,
        socket,
        ends,
    }
}

async fn viewer(socket: &Path) -> ViewerConnection {
    let stream = UnixStream::connect(socket).await.unwrap();
    ViewerConnection::connect(stream).await.unwrap()
}

async fn type_text(viewer: &ViewerConnection, text: &str) {
    for c in text.chars() {
        viewer.key(c as u32, true).await.unwrap();
        viewer.key(c as u32, false).await.unwrap();
    }
    viewer.key(XK_RETURN, true).await.unwrap();
    viewer.key(XK_RETURN, false).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_see_the_server_pixels_and_type_into_the_app() {
    init_tracing();
    let dir = RuntimeDir::new("fanout-type");
    let vd = VirtualDisplay::start(dir.path(), (640, 480)).unwrap();
    let _xterm = xterm(&vd, &["-e", "bash", "--norc", "--noprofile"]);
    let exposed = expose(&vd, dir.path()).await;
    let viewers = [
        viewer(&exposed.socket).await,
        viewer(&exposed.socket).await,
        viewer(&exposed.socket).await,
    ];
    assert!(wait_until(Duration::from_secs(5), || exposed.fanout.viewers() == 3).await);
    for v in &viewers {
        wait_for_xterm(v).await;
        assert_matches_server(&vd, v).await;
    }
    // Without a window manager the focus follows the pointer: put it on the xterm.
    viewers[1].pointer(100, 60, 0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (a, b) = (dir.path().join("from-a"), dir.path().join("from-b"));
    // One after the other: keys from two viewers at once would interleave.
    type_text(&viewers[0], &format!("touch {}", a.display())).await;
    assert!(
        wait_until(Duration::from_secs(10), || a.exists()).await,
        "the first viewer's command did not run"
    );
    type_text(&viewers[2], &format!("touch {}", b.display())).await;
    assert!(
        wait_until(Duration::from_secs(10), || b.exists()).await,
        "the third viewer's command did not run"
    );
    // Scrolling (which Xvnc sends as copies, replayed by each viewer): every viewer shows the
    // new screen, exactly.
    type_text(
        &viewers[1],
        "for i in $(seq 40); do echo $i; sleep 0.02; done",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for v in &viewers {
        assert_matches_server(&vd, v).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_and_the_wheel_from_either_viewer_reach_the_app() {
    init_tracing();
    let dir = RuntimeDir::new("fanout-click");
    let log = dir.path().join("xev.log");
    let vd = VirtualDisplay::start(dir.path(), (640, 480)).unwrap();
    let _xev = button_xev(&vd, &log).await;
    let exposed = expose(&vd, dir.path()).await;
    let (one, two) = (viewer(&exposed.socket).await, viewer(&exposed.socket).await);
    one.pointer(150, 100, 0).await.unwrap();
    one.pointer(150, 100, 1).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || read(&log).contains("button 1,")).await,
        "xev saw no press: {}",
        read(&log)
    );
    // While the first holds its button, the second's pointer events are dropped.
    two.pointer(10, 10, 4).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    one.pointer(150, 100, 0).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || read(&log)
            .contains("ButtonRelease"))
        .await,
        "xev saw no release: {}",
        read(&log)
    );
    two.pointer(120, 90, 0).await.unwrap();
    two.wheel(120, 90, 0, Wheel::Down).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || {
            let l = read(&log);
            l.matches("button 1,").count() == 2 && l.matches("button 5,").count() == 2
        })
        .await,
        "xev log: {}",
        read(&log)
    );
    assert!(!read(&log).contains("button 3,"), "{}", read(&log));
    let location = x_tool(&vd, "xdotool", &["getmouselocation"]);
    assert!(location.starts_with("x:120 y:90 "), "{location}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resize_asked_by_one_viewer_reaches_the_app_and_every_viewer() {
    init_tracing();
    let dir = RuntimeDir::new("fanout-resize");
    let vd = VirtualDisplay::start(dir.path(), (640, 480)).unwrap();
    let _xterm = xterm(&vd, &[]);
    let exposed = expose(&vd, dir.path()).await;
    let (one, two) = (viewer(&exposed.socket).await, viewer(&exposed.socket).await);
    wait_for_xterm(&one).await;
    wait_for_xterm(&two).await;

    one.request_resize(800, 600).await.unwrap();
    let done = ResizeStatus::Done {
        width: 800,
        height: 600,
    };
    assert!(
        wait_until(Duration::from_secs(10), || one.resize_status() == done).await,
        "{:?}",
        one.resize_status()
    );
    let size = x_tool(&vd, "xdpyinfo", &[]);
    assert!(size.contains("800x600 pixels"), "{size}");
    for v in [&one, &two] {
        assert!(wait_until(Duration::from_secs(10), || v.size() == (800, 600)).await);
        assert_matches_server(&vd, v).await;
    }
    // The other viewer may resize too (its layout was announced), and a refusal is answered.
    two.request_resize(0, 0).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || matches!(
            two.resize_status(),
            ResizeStatus::Failed { .. }
        ))
        .await,
        "{:?}",
        two.resize_status()
    );
    two.request_resize(700, 500).await.unwrap();
    for v in [&one, &two] {
        assert!(wait_until(Duration::from_secs(10), || v.size() == (700, 500)).await);
        assert_matches_server(&vd, v).await;
    }
    assert!(matches!(
        two.resize_status(),
        ResizeStatus::Done {
            width: 700,
            height: 500
        }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pointer_shape_reaches_every_viewer() {
    init_tracing();
    let dir = RuntimeDir::new("fanout-cursor");
    let vd = VirtualDisplay::start(dir.path(), (640, 480)).unwrap();
    let _xterm = xterm(&vd, &[]);
    let exposed = expose(&vd, dir.path()).await;
    let (one, two) = (viewer(&exposed.socket).await, viewer(&exposed.socket).await);
    wait_for_xterm(&one).await;
    let mut shapes = Vec::new();
    for (x, y) in [(100, 60), (600, 450)] {
        one.pointer(x, y, 0).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let same = wait_until(Duration::from_secs(10), || {
            let (a, b) = (one.cursor(), two.cursor());
            a.zip(b).is_some_and(|(a, b)| {
                !a.is_hidden()
                    && (a.width, a.height, a.hotspot_x, a.hotspot_y, &a.rgba)
                        == (b.width, b.height, b.hotspot_x, b.hotspot_y, &b.rgba)
            })
        })
        .await;
        assert!(same, "{:?} vs {:?}", one.cursor(), two.cursor());
        shapes.push(two.cursor().unwrap());
    }
    assert_ne!(shapes[0].rgba, shapes[1].rgba, "the shape did not follow");
    // xterm's text cursor is taller than wide.
    assert!(shapes[0].height > shapes[0].width, "{:?}", shapes[0]);
    // The server does not paint the pointer into anyone's pixels.
    assert_matches_server(&vd, &two).await;
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Connects as a bare RFB 3.8 client (security None, shared) and returns the stream and the
/// ServerInit's size.
fn bare_client(socket: &Path) -> (std::os::unix::net::UnixStream, [u8; 4]) {
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut version = [0u8; 12];
    s.read_exact(&mut version).unwrap();
    s.write_all(b"RFB 003.008\n").unwrap();
    let mut types = [0u8; 2];
    s.read_exact(&mut types).unwrap();
    s.write_all(&[1]).unwrap();
    let mut result = [0u8; 4];
    s.read_exact(&mut result).unwrap();
    s.write_all(&[1]).unwrap();
    let mut init = [0u8; 24];
    s.read_exact(&mut init).unwrap();
    let mut name = vec![0u8; u32::from_be_bytes(init[20..24].try_into().unwrap()) as usize];
    s.read_exact(&mut name).unwrap();
    (s, init[0..4].try_into().unwrap())
}

/// Asks for the whole screen of `size` (ServerInit's first 4 bytes), not incrementally.
fn full_request(size: [u8; 4]) -> Vec<u8> {
    let mut request = vec![3u8, 0, 0, 0, 0, 0];
    request.extend_from_slice(&size);
    request
}

/// Does the handshake with only Raw, asks for many full updates, and never reads again.
fn stalled_viewer(socket: &Path) -> std::os::unix::net::UnixStream {
    let (mut s, size) = bare_client(socket);
    s.write_all(&[2, 0, 0, 1, 0, 0, 0, 0]).unwrap();
    for _ in 0..50 {
        s.write_all(&full_request(size)).unwrap();
    }
    s
}

fn queued_bytes(s: &std::os::unix::net::UnixStream) -> i32 {
    let mut queued: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the pointer given.
    let rc = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(s),
            libc::FIONREAD,
            &mut queued,
        )
    };
    assert_eq!(rc, 0);
    queued
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_viewer_holds_back_only_itself() {
    init_tracing();
    let dir = RuntimeDir::new("fanout-stall");
    let counter = dir.path().join("counter");
    let vd = VirtualDisplay::start(dir.path(), (640, 480)).unwrap();
    let script = format!(
        "i=0; while :; do i=$((i+1)); echo $i; echo $i > {}; done",
        counter.display()
    );
    let _xterm = xterm(&vd, &["-e", "bash", "-c", &script]);
    let exposed = expose(&vd, dir.path()).await;
    let healthy = viewer(&exposed.socket).await;
    wait_for_xterm(&healthy).await;
    let read_counter = || -> u64 {
        (0..100)
            .find_map(|_| {
                let n = std::fs::read_to_string(&counter)
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                if n.is_none() {
                    std::thread::sleep(Duration::from_millis(2));
                }
                n
            })
            .unwrap_or(0)
    };
    let stuck = [
        stalled_viewer(&exposed.socket),
        stalled_viewer(&exposed.socket),
    ];
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before = rss_kib();
    for round in 0..4 {
        let (c0, v0) = (read_counter(), healthy.frame().version);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (c1, v1) = (read_counter(), healthy.frame().version);
        assert!(c1 > c0, "round {round}: the app stalled ({c0} → {c1})");
        assert!(v1 > v0, "round {round}: the healthy viewer stalled");
    }
    for s in &stuck {
        let queued = queued_bytes(s);
        assert!(
            queued > 64 << 10,
            "only {queued} bytes wait for a stuck viewer"
        );
    }
    let rss_after = rss_kib();
    assert!(
        rss_after < rss_before + 32 * 1024,
        "memory grew from {rss_before} to {rss_after} KiB behind stalled viewers"
    );
    assert_eq!(exposed.fanout.viewers(), 3);
    assert!(!healthy.is_closed());
}

/// Pixels of an RGBA picture equal to `rgb`.
fn count_rgb(rgba: &[u8], rgb: [u8; 3]) -> usize {
    rgba.chunks_exact(4).filter(|p| p[..3] == rgb).count()
}

/// An Xvfb screen, killed on drop.
struct Xvfb(std::process::Child, String);

impl Xvfb {
    fn start() -> Xvfb {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "800x600x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut number = String::new();
        let stdout = child.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut number).unwrap();
        Xvfb(child, format!(":{}", number.trim()))
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Pixels of an RGB(A) screenshot of X display `display` equal to `rgb`.
fn count_on_screen(display: &str, rgb: [u8; 3]) -> usize {
    let out = Command::new("import")
        .args([
            "-display", display, "-window", "root", "-depth", "8", "rgb:-",
        ])
        .output()
        .unwrap();
    out.stdout.chunks_exact(3).filter(|p| *p == rgb).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tigervnc_vncviewer_views_through_the_fanout() {
    init_tracing();
    let dir = RuntimeDir::new("fanout-vncviewer");
    let vd = VirtualDisplay::start(dir.path(), (640, 480)).unwrap();
    let _xterm = launch_app(
        &vd,
        &[
            "xterm",
            "-geometry",
            "60x12+0+0",
            "-bg",
            "#00ff00",
            "-fg",
            "black",
        ],
    )
    .unwrap();
    let exposed = expose(&vd, dir.path()).await;
    // Our own viewer alongside.
    let ours = viewer(&exposed.socket).await;
    wait_for_xterm(&ours).await;
    let screen = Xvfb::start();
    let mut vncviewer = Command::new("vncviewer")
        .args([
            "-display",
            &screen.1,
            "-FullScreen=0",
            "-geometry",
            "640x480+0+0",
        ])
        .arg(&exposed.socket)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let green = [0, 255, 0];
    let want = count_rgb(&common::server_screenshot(&vd), green);
    assert!(want > 20_000, "the xterm is not green on Xvnc: {want}");
    let seen = wait_until(Duration::from_secs(20), || {
        count_on_screen(&screen.1, green) >= want
    })
    .await;
    let shown = count_on_screen(&screen.1, green);
    let _ = vncviewer.kill();
    let _ = vncviewer.wait();
    assert!(seen, "vncviewer showed {shown} of {want} green pixels");
    assert!(wait_until(Duration::from_secs(5), || exposed.fanout.viewers() == 1).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_pixel_formats_are_converted_or_refused() {
    init_tracing();
    let dir = RuntimeDir::new("fanout-format");
    let vd = VirtualDisplay::start(dir.path(), (320, 200)).unwrap();
    let _xterm = launch_app(
        &vd,
        &[
            "xterm",
            "-geometry",
            "20x5+0+0",
            "-bg",
            "#204080",
            "-fg",
            "white",
        ],
    )
    .unwrap();
    let exposed = expose(&vd, dir.path()).await;
    let ours = viewer(&exposed.socket).await;
    assert!(
        wait_until(Duration::from_secs(15), || count_rgb(
            &ours.frame().rgba,
            [0x20, 0x40, 0x80]
        ) > 5000)
        .await
    );
    // Red in the lowest byte: every pixel arrives as red, green, blue, padding.
    let rgba: [u8; 16] = [32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0];
    let socket = exposed.socket.clone();
    let pixels = tokio::task::spawn_blocking(move || raw_full_update(&socket, rgba))
        .await
        .unwrap()
        .expect("an update in the RGB format");
    let shot = common::server_screenshot(&vd);
    let differing = pixels
        .chunks_exact(4)
        .zip(shot.chunks_exact(4))
        .filter(|(a, b)| a[..3] != b[..3])
        .count();
    assert_eq!(differing, 0, "of {} pixels", pixels.len() / 4);

    // 8 bits per pixel is refused: the connection closes, the reason is returned.
    let eight: [u8; 16] = [8, 8, 0, 1, 0, 7, 0, 7, 0, 3, 0, 3, 6, 0, 0, 0];
    let socket = exposed.socket.clone();
    let refused = tokio::task::spawn_blocking(move || raw_full_update(&socket, eight))
        .await
        .unwrap();
    assert!(refused.is_none());
    let mut ends = exposed.ends;
    let end = loop {
        let end = tokio::time::timeout(Duration::from_secs(5), ends.recv())
            .await
            .unwrap()
            .unwrap();
        if !matches!(end, Ok(ViewEnd::ViewerLeft)) {
            break end;
        }
    };
    let Err(DisplayError::PixelFormat(reason)) = end else {
        panic!("{end:?}")
    };
    assert!(reason.contains("8 bits per pixel"), "{reason}");
}

/// Connects as a bare RFB client asking for `format` and Raw only, requests the whole screen
/// and returns its pixels (4 bytes each), or `None` if the server closed the connection.
fn raw_full_update(socket: &Path, format: [u8; 16]) -> Option<Vec<u8>> {
    let (mut s, size) = bare_client(socket);
    let (w, h) = (
        usize::from(u16::from_be_bytes([size[0], size[1]])),
        usize::from(u16::from_be_bytes([size[2], size[3]])),
    );
    let mut set = vec![0u8, 0, 0, 0];
    set.extend_from_slice(&format);
    // A server that refuses the format may close before the rest is written.
    s.write_all(&set).ok()?;
    s.write_all(&[2, 0, 0, 1, 0, 0, 0, 0]).ok()?;
    s.write_all(&full_request(size)).ok()?;
    let mut screen = vec![0u8; w * h * 4];
    let mut header = [0u8; 4];
    s.read_exact(&mut header).ok()?;
    assert_eq!(header[0], 0, "a FramebufferUpdate");
    for _ in 0..u16::from_be_bytes([header[2], header[3]]) {
        let mut r = [0u8; 12];
        s.read_exact(&mut r).ok()?;
        let field = |i: usize| usize::from(u16::from_be_bytes([r[i], r[i + 1]]));
        let (x, y, rw, rh) = (field(0), field(2), field(4), field(6));
        assert_eq!(&r[8..12], &[0, 0, 0, 0], "only Raw was asked for");
        for row in 0..rh {
            let start = ((y + row) * w + x) * 4;
            s.read_exact(&mut screen[start..start + rw * 4]).ok()?;
        }
    }
    Some(screen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_ending_closes_every_viewer() {
    init_tracing();
    let dir = RuntimeDir::new("fanout-end");
    let vd = VirtualDisplay::start(dir.path(), (320, 200)).unwrap();
    let mut exposed = expose(&vd, dir.path()).await;
    let viewers = [viewer(&exposed.socket).await, viewer(&exposed.socket).await];
    let stuck = stalled_viewer(&exposed.socket);
    assert!(wait_until(Duration::from_secs(5), || exposed.fanout.viewers() == 3).await);
    drop(vd);
    for v in &viewers {
        assert!(
            wait_until(Duration::from_secs(10), || v.is_closed()).await,
            "a viewer outlived the app"
        );
    }
    for _ in 0..3 {
        let end = tokio::time::timeout(Duration::from_secs(10), exposed.ends.recv())
            .await
            .expect("a viewer's serve did not return")
            .unwrap();
        assert!(matches!(end, Ok(ViewEnd::AppEnded)), "{end:?}");
    }
    assert!(exposed.fanout.is_closed());
    assert_eq!(exposed.fanout.viewers(), 0);
    drop(stuck);
}
