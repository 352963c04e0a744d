//! The viewer features a window needs, against a real Xvnc: the pointer shape, desktop resize
//! requests, the wheel, counters and partial updates.

mod common;

use std::time::Duration;

use common::{
    RuntimeDir, assert_matches_server, button_xev, connect, init_tracing, non_background, read,
    wait_for_xterm, wait_until, x_tool, xterm,
};
use tokio::net::UnixStream;
use zos_display::{
    Codec, ResizeStatus, ViewerConnection, ViewerOptions, VirtualDisplay, Wheel, launch_app,
};

/// The screen size the X server itself reports.
fn server_size(vd: &VirtualDisplay) -> String {
    let info = x_tool(vd, "xdpyinfo", &[]);
    info.lines()
        .find_map(|l| l.trim().strip_prefix("dimensions:"))
        .and_then(|d| d.split_whitespace().next())
        .unwrap_or("?")
        .to_owned()
}

/// The pointer shape comes as its own image: the xterm's text cursor over the xterm (with its
/// hotspot inside), another shape over the root window, each with a new version; and since the
/// server no longer paints the pointer, the pixels equal the server's own screenshot exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pointer_shape_follows_the_window_under_it() {
    init_tracing();
    let dir = RuntimeDir::new("cursor");
    let vd = VirtualDisplay::start(dir.path(), (640, 480)).unwrap();
    let _xterm = xterm(&vd, &[]);
    let viewer = connect(&vd).await;
    wait_for_xterm(&viewer).await;
    // Over the xterm, then over the root window (bottom right), then the xterm again. Each
    // change of shape comes with a new version. (Before the pointer first moves, Xvnc may
    // announce an empty shape.)
    let mut last = viewer.cursor().map_or(0, |c| c.version);
    let mut shapes = Vec::new();
    for (x, y) in [(100, 60), (600, 450), (100, 60)] {
        viewer.pointer(x, y, 0).await.unwrap();
        assert!(
            wait_until(Duration::from_secs(10), || viewer
                .cursor()
                .is_some_and(|c| c.version > last))
            .await,
            "no new pointer shape at {x},{y}"
        );
        // Let any further shape of the same move arrive.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let shape = viewer.cursor().unwrap();
        last = shape.version;
        assert!(!shape.is_hidden(), "{shape:?}");
        assert!(
            shape.hotspot_x < shape.width && shape.hotspot_y < shape.height,
            "{shape:?}"
        );
        assert_eq!(
            shape.rgba.len(),
            usize::from(shape.width) * usize::from(shape.height) * 4
        );
        shapes.push(shape);
    }
    let (text, root, text_again) = (&shapes[0], &shapes[1], &shapes[2]);
    // xterm's text cursor is taller than wide.
    assert!(text.height > text.width, "{text:?}");
    assert_ne!(
        (root.width, root.height, &root.rgba),
        (text.width, text.height, &text.rgba),
        "the same shape over the xterm and the root window"
    );
    assert_eq!(
        (text.hotspot_x, text.hotspot_y, &text.rgba),
        (text_again.hotspot_x, text_again.hotspot_y, &text_again.rgba)
    );
    assert_matches_server(&vd, &viewer).await;
    viewer.close().await.unwrap();
}

/// A resize request changes the X screen itself (no xrandr), the viewer follows with pixels,
/// and a refused request is reported without ending the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_request_changes_the_server_screen() {
    init_tracing();
    let dir = RuntimeDir::new("resize-request");
    let vd = VirtualDisplay::start(dir.path(), (640, 480)).unwrap();
    let _xterm = xterm(&vd, &[]);
    let viewer = connect(&vd).await;
    wait_for_xterm(&viewer).await;
    assert_eq!(viewer.resize_status(), ResizeStatus::None);

    // Impossible dimensions: refused, reported, and the connection lives on.
    viewer.request_resize(0, 0).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || matches!(
            viewer.resize_status(),
            ResizeStatus::Failed { .. }
        ))
        .await,
        "{:?}",
        viewer.resize_status()
    );
    assert!(!viewer.is_closed());

    viewer.request_resize(800, 600).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || viewer.resize_status()
            == ResizeStatus::Done {
                width: 800,
                height: 600
            })
        .await,
        "{:?}",
        viewer.resize_status()
    );
    assert!(wait_until(Duration::from_secs(10), || viewer.size() == (800, 600)).await);
    assert_eq!(server_size(&vd), "800x600");
    assert_matches_server(&vd, &viewer).await;

    // Several requests in a row: the last one wins.
    for (w, h) in [(700, 500), (720, 520), (1024, 700)] {
        viewer.request_resize(w, h).await.unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(15), || viewer.size() == (1024, 700)
            && viewer.resize_status()
                == ResizeStatus::Done {
                    width: 1024,
                    height: 700
                })
        .await,
        "{:?} {:?}",
        viewer.size(),
        viewer.resize_status()
    );
    assert_eq!(server_size(&vd), "1024x700");
    viewer.close().await.unwrap();
}

/// Each wheel direction arrives as a press and a release of X buttons 4–7.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wheel_reaches_an_x_client() {
    init_tracing();
    let dir = RuntimeDir::new("wheel");
    let log = dir.path().join("xev.log");
    let vd = VirtualDisplay::start(dir.path(), (640, 480)).unwrap();
    let _xev = button_xev(&vd, &log).await;
    let viewer = connect(&vd).await;
    viewer.pointer(150, 100, 0).await.unwrap();
    for wheel in [Wheel::Up, Wheel::Down, Wheel::Left, Wheel::Right] {
        viewer.wheel(150, 100, 0, wheel).await.unwrap();
    }
    let wanted = [4, 5, 6, 7].map(|b| format!("button {b},"));
    assert!(
        wait_until(Duration::from_secs(10), || {
            let l = read(&log);
            wanted.iter().all(|w| l.matches(w.as_str()).count() == 2)
        })
        .await,
        "xev log: {}",
        read(&log)
    );
    let l = read(&log);
    assert_eq!(l.matches("ButtonPress").count(), 4, "{l}");
    assert_eq!(l.matches("ButtonRelease").count(), 4, "{l}");
    viewer.close().await.unwrap();
}

/// The counters move with what arrives, and a frame source hands out the latest pixels of the
/// changed rectangles only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_and_partial_updates() {
    init_tracing();
    let dir = RuntimeDir::new("stats");
    let vd = VirtualDisplay::start(dir.path(), (640, 480)).unwrap();
    let viewer = connect(&vd).await;
    let source = viewer.source();
    assert!(wait_until(Duration::from_secs(10), || source.size() == (640, 480)).await);
    assert!(
        wait_until(Duration::from_secs(10), || source.stats().pixel_bytes
            >= 640 * 480 * 4)
        .await,
        "{:?}",
        source.stats()
    );
    let first = source.take_update().expect("the first screen");
    assert!(first.resized);
    assert_eq!((first.width, first.height), (640, 480));
    assert_eq!(first.rects[0].rgba.len(), 640 * 480 * 4);
    let stats = source.stats();
    assert!(stats.updates >= 1 && stats.rects >= 1, "{stats:?}");
    assert!(stats.wire_bytes >= stats.pixel_bytes, "{stats:?}");

    // A small window appears: the update covers it, not the whole screen, and its pixels
    // are those of the frame.
    let _xterm = launch_app(&vd, &["xterm", "-geometry", "20x5+50+40", "-bg", "white"]).unwrap();
    let mut rects = Vec::new();
    assert!(
        wait_until(Duration::from_secs(15), || {
            if let Some(u) = source.take_update() {
                assert!(!u.resized);
                rects.extend(u.rects);
            }
            non_background(&source.frame().rgba) > 5_000
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    rects.extend(source.take_update().map(|u| u.rects).unwrap_or_default());
    assert!(!rects.is_empty());
    let area: usize = rects
        .iter()
        .map(|r| usize::from(r.rect.width) * usize::from(r.rect.height))
        .sum();
    assert!(
        area < 640 * 480,
        "the whole screen was resent: {area} pixels"
    );
    let frame = source.frame();
    let last = rects.last().unwrap();
    for row in 0..usize::from(last.rect.height) {
        let at = ((usize::from(last.rect.y) + row) * 640 + usize::from(last.rect.x)) * 4;
        let len = usize::from(last.rect.width) * 4;
        assert_eq!(
            &frame.rgba[at..at + len],
            &last.rgba[row * len..(row + 1) * len]
        );
    }
    assert!(source.stats().updates > stats.updates);
    viewer.close().await.unwrap();
    assert!(source.is_closed());
}

/// Colours arrive with red and blue in their places, in every codec (the wire format is
/// Xvnc's own BGRx; the framebuffer is RGBA).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colours_are_exact_in_every_codec() {
    init_tracing();
    let dir = RuntimeDir::new("colours");
    let vd = VirtualDisplay::start(dir.path(), (320, 200)).unwrap();
    x_tool(&vd, "xsetroot", &["-solid", "#123456"]);
    let _xterm = launch_app(
        &vd,
        &[
            "xterm",
            "-geometry",
            "20x4+0+0",
            "-bg",
            "#ff8000",
            "-fg",
            "#0040ff",
        ],
    )
    .unwrap();
    for codec in [Codec::Raw, Codec::Tight, Codec::Zrle] {
        let stream = UnixStream::connect(vd.rfb_socket()).await.unwrap();
        let viewer = ViewerConnection::connect_with(stream, ViewerOptions { codec })
            .await
            .unwrap();
        let source = viewer.source();
        assert!(
            wait_until(Duration::from_secs(15), || source.pixel(319, 199)
                == Some([0x12, 0x34, 0x56, 255])
                && source.pixel(2, 2) == Some([0xff, 0x80, 0x00, 255]))
            .await,
            "{codec:?}: corner {:?}, xterm {:?}",
            source.pixel(319, 199),
            source.pixel(2, 2)
        );
        assert_matches_server(&vd, &viewer).await;
        viewer.close().await.unwrap();
    }
}

/// A reader that stalls while the app keeps drawing makes nothing queue up: afterwards it gets
/// one bounded set of merged rectangles with their latest pixels, however much arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_reader_gets_only_the_latest_pixels() {
    init_tracing();
    let dir = RuntimeDir::new("stall");
    let vd = VirtualDisplay::start(dir.path(), (640, 480)).unwrap();
    // A terminal that scrolls a counter as fast as it can.
    let _xterm = xterm(
        &vd,
        &[
            "-e",
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo $i; done",
        ],
    );
    let viewer = connect(&vd).await;
    let source = viewer.source();
    wait_for_xterm(&viewer).await;
    let _ = source.take_update();
    let before = source.stats();
    // The reader stalls for two seconds.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = source.stats();
    assert!(
        during.rects > before.rects + 50,
        "the app did not draw much: {before:?} -> {during:?}"
    );
    let update = source.take_update().expect("changes while stalled");
    assert!(
        update.rects.len() <= 64,
        "{} rectangles",
        update.rects.len()
    );
    let bytes: usize = update.rects.iter().map(|r| r.rgba.len()).sum();
    assert!(bytes <= 64 * 640 * 480 * 4, "{bytes} bytes");
    viewer.close().await.unwrap();
}
