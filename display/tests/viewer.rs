//! A ViewerConnection over the real unix socket of a real Xvnc with real X clients.

mod common;

use std::time::Duration;

use common::{
    RuntimeDir, assert_matches_server, connect, init_tracing, non_background, read, wait_for_xterm,
    wait_until, x_tool, xterm,
};
use tokio::net::UnixStream;
use zos_display::{Codec, Frame, ViewerConnection, ViewerOptions, VirtualDisplay, launch_app};

const XK_RETURN: u32 = 0xff0d;

fn differing(a: &Frame, b: &Frame) -> usize {
    a.rgba
        .chunks_exact(4)
        .zip(b.rgba.chunks_exact(4))
        .filter(|(x, y)| x[..3] != y[..3])
        .count()
}

async fn type_text(viewer: &ViewerConnection, text: &str) {
    for c in text.chars() {
        // Latin-1 characters have keysyms equal to their code points.
        viewer.key(c as u32, true).await.unwrap();
        viewer.key(c as u32, false).await.unwrap();
    }
}

async fn see_xterm(codec: Codec) {
    init_tracing();
    let dir = RuntimeDir::new(&format!("see-{codec:?}"));
    let vd = VirtualDisplay::start(dir.path(), (640, 480)).unwrap();
    let _xterm = xterm(&vd, &[]);
    let stream = UnixStream::connect(vd.rfb_socket()).await.unwrap();
    let viewer = ViewerConnection::connect_with(stream, ViewerOptions { codec })
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || {
            let f = viewer.frame();
            (f.width, f.height) == (640, 480) && non_background(&f.rgba) > 20_000
        })
        .await,
        "no xterm in the framebuffer: {} non-background pixels",
        non_background(&viewer.frame().rgba)
    );
    assert!(!viewer.take_dirty().is_empty());

    assert_matches_server(&vd, &viewer).await;
    viewer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_sees_xterm_and_matches_server_screenshot() {
    see_xterm(Codec::Raw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tight_viewer_matches_server_screenshot() {
    see_xterm(Codec::Tight).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zrle_viewer_matches_server_screenshot() {
    see_xterm(Codec::Zrle).await;
}

/// Trap 3: after a server-side resize the viewer follows and gets the pixels too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_follows_a_server_side_resize() {
    init_tracing();
    let dir = RuntimeDir::new("resize");
    let vd = VirtualDisplay::start(dir.path(), (640, 480)).unwrap();
    let _xterm = xterm(&vd, &[]);
    let viewer = connect(&vd).await;
    wait_for_xterm(&viewer).await;
    x_tool(&vd, "xrandr", &["--fb", "800x600"]);
    assert!(
        wait_until(Duration::from_secs(10), || viewer.size() == (800, 600)).await,
        "viewer size {:?}",
        viewer.size()
    );
    assert_matches_server(&vd, &viewer).await;
    assert!(non_background(&viewer.frame().rgba) > 20_000);
    viewer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_command_runs_in_xterm_and_changes_the_screen() {
    init_tracing();
    let dir = RuntimeDir::new("type");
    let log = dir.path().join("xterm.log");
    let vd = VirtualDisplay::start(dir.path(), (640, 480)).unwrap();
    let _xterm = xterm(
        &vd,
        &[
            "-l",
            "-lf",
            log.to_str().unwrap(),
            "-e",
            "bash",
            "--norc",
            "--noprofile",
        ],
    );
    let viewer = connect(&vd).await;
    wait_for_xterm(&viewer).await;
    // Without a window manager the focus follows the pointer: put it on the xterm.
    viewer.pointer(100, 60, 0).await.unwrap();
    // Let the prompt settle, then remember the screen.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = viewer.frame();

    type_text(&viewer, "echo zos-$((6*7))").await;
    viewer.key(XK_RETURN, true).await.unwrap();
    viewer.key(XK_RETURN, false).await.unwrap();

    // Independent check: the shell in the xterm received the keys and printed the answer
    // (xterm logs its output).
    assert!(
        wait_until(Duration::from_secs(10), || read(&log)
            .contains("zos-42\r\n")
            || read(&log).contains("zos-42\n"))
        .await,
        "xterm log: {:?}",
        read(&log)
    );
    // And the viewer saw the text appear: a line of typed text plus a line of output.
    assert!(
        wait_until(Duration::from_secs(10), || differing(
            &before,
            &viewer.frame()
        ) > 200)
        .await,
        "the screen did not change: {} pixels",
        differing(&before, &viewer.frame())
    );
    viewer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pointer_moves_and_clicks_reach_an_x_client() {
    init_tracing();
    let dir = RuntimeDir::new("click");
    let log = dir.path().join("xev.log");
    let vd = VirtualDisplay::start(dir.path(), (640, 480)).unwrap();
    let script = format!(
        "exec stdbuf -oL xev -geometry 300x200+0+0 > '{}'",
        log.display()
    );
    let _xev = launch_app(&vd, &["sh", "-c", &script]).unwrap();
    let viewer = connect(&vd).await;
    assert!(
        wait_until(Duration::from_secs(15), || read(&log).contains("Expose")).await,
        "xev did not map: {:?}",
        read(&log)
    );

    viewer.pointer(150, 100, 0).await.unwrap();
    viewer.pointer(150, 100, 1).await.unwrap();
    viewer.pointer(150, 100, 0).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || {
            let l = read(&log);
            l.contains("ButtonPress") && l.contains("ButtonRelease") && l.contains("button 1,")
        })
        .await,
        "xev saw no click: {:?}",
        read(&log)
    );

    // Independent check of the pointer position with xdotool.
    let location = x_tool(&vd, "xdotool", &["getmouselocation"]);
    assert!(location.starts_with("x:150 y:100 "), "{location}");
    viewer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_reports_closed_when_xvnc_stops() {
    init_tracing();
    let dir = RuntimeDir::new("gone");
    let vd = VirtualDisplay::start(dir.path(), (320, 200)).unwrap();
    let viewer = connect(&vd).await;
    let mut versions = viewer.subscribe();
    assert!(wait_until(Duration::from_secs(10), || viewer.size() == (320, 200)).await);
    drop(vd);
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while versions.changed().await.is_ok() {}
    })
    .await;
    assert!(
        closed.is_ok(),
        "the viewer did not notice the server going away"
    );
    assert!(viewer.is_closed());
    assert!(viewer.key(u32::from('a'), true).await.is_err());
}

/// Traps 1 and 2: on an idle screen a key's echo reaches the framebuffer at once (an update
/// request is always outstanding, and input is never stuck behind `recv_event`), not after the
/// fallback refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_to_pixel_latency_is_small() {
    init_tracing();
    let dir = RuntimeDir::new("latency");
    let vd = VirtualDisplay::start(dir.path(), (640, 480)).unwrap();
    let _xterm = xterm(&vd, &["-e", "bash", "--norc", "--noprofile"]);
    let viewer = connect(&vd).await;
    wait_for_xterm(&viewer).await;
    viewer.pointer(100, 60, 0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut versions = viewer.subscribe();
    let mut latencies = Vec::new();
    for c in "abcdefghij".chars() {
        // Let the screen go idle so the next change needs a fresh update.
        tokio::time::sleep(Duration::from_millis(100)).await;
        versions.borrow_and_update();
        let start = std::time::Instant::now();
        viewer.key(c as u32, true).await.unwrap();
        viewer.key(c as u32, false).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), versions.changed())
            .await
            .expect("no update after a key")
            .unwrap();
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    eprintln!("key-to-pixel latencies: {latencies:?}");
    assert!(median < Duration::from_millis(150), "median {median:?}");
    viewer.close().await.unwrap();
}
