//! The fan-out's extras against a real Xvnc: seamless viewers get the app's window list and
//! their window requests reach the app; the clipboard goes both ways between the app (xclip
//! on its display) and viewers, UTF-8 intact, and from one viewer to the others.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{RuntimeDir, init_tracing, try_x_tool, wait_until};
use tokio::net::{UnixListener, UnixStream};
use zos_display::{
    AppWindows, Fanout, ViewerConnection, VirtualDisplay, WindowKind, WindowRequest, launch_app,
};

/// Serves `fanout` on `dir/fanout.sock` and returns the socket's path.
fn expose(fanout: Arc<Fanout>, dir: &Path) -> std::path::PathBuf {
    let socket = dir.join("fanout.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let fanout = Arc::clone(&fanout);
            tokio::spawn(async move {
                let _ = fanout.serve(stream).await;
            });
        }
    });
    socket
}

async fn viewer(socket: &Path) -> ViewerConnection {
    ViewerConnection::connect(UnixStream::connect(socket).await.unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seamless_viewers_get_the_window_list_and_their_requests_reach_the_app() {
    init_tracing();
    let dir = RuntimeDir::new("fanout-windows");
    let vd = VirtualDisplay::start(dir.path(), (1024, 768)).unwrap();
    let windows = AppWindows::start(&vd).unwrap();
    let fanout = Fanout::start(vd.rfb_socket())
        .await
        .unwrap()
        .with_windows(windows.feed());
    let socket = expose(Arc::new(fanout), dir.path());
    let _clock = launch_app(&vd, &["xclock", "-geometry", "200x200"]).unwrap();
    let a = viewer(&socket).await;
    let b = viewer(&socket).await;
    for v in [&a, &b] {
        let source = v.source();
        assert!(
            wait_until(Duration::from_secs(15), || source.windows().is_some_and(
                |l| l
                    .windows
                    .iter()
                    .any(|w| w.title == "xclock" && (w.rect.width, w.rect.height) == (200, 200))
            ))
            .await,
            "no 200x200 xclock in {:#?}",
            source.windows()
        );
    }
    let clock = a.source().windows().unwrap().windows[0].clone();
    assert_eq!(clock.kind, WindowKind::Normal);
    // A window opened later reaches viewers already there.
    let _xterm = launch_app(&vd, &["xterm", "-T", "later"]).unwrap();
    let source = b.source();
    assert!(
        wait_until(Duration::from_secs(15), || source
            .windows()
            .is_some_and(|l| l.windows.len() == 2))
        .await,
        "{:#?}",
        source.windows()
    );
    // A viewer asks for the clock at 300x250: the app's window takes it, every viewer sees it.
    a.request_window(WindowRequest::Resize {
        id: clock.id,
        width: 300,
        height: 250,
    })
    .unwrap();
    for v in [&a, &b] {
        let source = v.source();
        assert!(
            wait_until(Duration::from_secs(10), || source.windows().is_some_and(
                |l| l
                    .get(clock.id)
                    .is_some_and(|w| (w.rect.width, w.rect.height) == (300, 250))
            ))
            .await,
            "{:#?}",
            source.windows()
        );
    }
    let geometry = try_x_tool(&vd, "xwininfo", &["-id", &clock.id.to_string()]).unwrap();
    assert!(
        geometry.contains("Width: 300") && geometry.contains("Height: 250"),
        "{geometry}"
    );
}

/// The app display's selection, from xclip.
fn app_selection(vd: &VirtualDisplay, selection: &str) -> Option<String> {
    try_x_tool(vd, "xclip", &["-o", "-selection", selection])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clipboard_goes_both_ways_in_utf8() {
    // (Without AppWindows the fan-out lists no windows: a plain Xvnc view.)
    init_tracing();
    let dir = RuntimeDir::new("fanout-clipboard");
    let vd = VirtualDisplay::start(dir.path(), (800, 600)).unwrap();
    let fanout = Arc::new(Fanout::start(vd.rfb_socket()).await.unwrap());
    let socket = expose(fanout, dir.path());
    let a = viewer(&socket).await;
    let b = viewer(&socket).await;
    // Give both time to exchange clipboard capabilities.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        a.source().windows().is_none(),
        "a window list without a window manager"
    );

    // Copied in the app: every viewer gets it.
    let copied = "copié dans le programme ✓ — 日本";
    let _xclip = launch_app(
        &vd,
        &[
            "sh",
            "-c",
            &format!("printf %s '{copied}' | exec xclip -quiet -selection clipboard -i"),
        ],
    )
    .unwrap();
    for (name, v) in [("a", &a), ("b", &b)] {
        let source = v.source();
        assert!(
            wait_until(Duration::from_secs(10), || &*source.clipboard().text
                == copied)
            .await,
            "viewer {name} got {:?}",
            source.clipboard()
        );
    }

    // Copied in viewer a: the app has it as CLIPBOARD and PRIMARY, and viewer b gets it.
    let from_a = "from a: ünïcode ✓\nsecond line";
    let before = a.source().clipboard().serial;
    a.send_clipboard(from_a.to_owned()).unwrap();
    for selection in ["clipboard", "primary"] {
        assert!(
            wait_until(Duration::from_secs(10), || app_selection(&vd, selection)
                .as_deref()
                == Some(from_a))
            .await,
            "the app's {selection} is {:?}",
            app_selection(&vd, selection)
        );
    }
    let source = b.source();
    assert!(
        wait_until(Duration::from_secs(10), || &*source.clipboard().text
            == from_a)
        .await,
        "viewer b got {:?}",
        source.clipboard()
    );
    // The sender is not sent its own text back.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.source().clipboard().serial, before);

    // Too large a clipboard is refused at the viewer, with a reason.
    let huge = "x".repeat(zos_display::clipboard::MAX_CLIPBOARD + 1);
    assert!(a.send_clipboard(huge).is_err());
}
