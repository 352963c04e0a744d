//! The real viewer window on a real (virtual) X screen: `zos_viewer::run` in a child process
//! under Xvfb with Mesa's software GL, showing a real Xvnc with an xterm and an xev in it.
//!
//! Checks, in one window's life: the window's pixels equal Xvnc's own screenshot; the app's
//! pointer shape is drawn at the pointer; typed text with capitals and symbols reaches bash
//! exactly; Ctrl+C interrupts `sleep 100`; clicks of buttons 1–3 and the wheel (4–7) reach
//! xev; resizing the window resizes the Xvnc screen and the picture follows; the texture is
//! patched, not re-uploaded; killing Xvnc closes the window and `run` returns. And a connect
//! failure is a clear error.
//!
//! winit wants the main thread, so this test has its own `main` (no libtest harness;
//! libtest-mimic reads cargo's and libtest's arguments: filters, `--exact`, `--list`,
//! `--test-threads`, …); it re-runs itself as the window process. Xvfb, Xvnc and the X tools
//! it drives are required: a missing one fails the test naming its package.

mod support;
#[path = "../../../tests/common/tools.rs"]
mod tools;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Trial};
use support::{Image, Lines, Reaped, TempDir, XDisplay, Xvfb, read, wait_until};
use zos_display::{ViewerConnection, VirtualDisplay, launch_app};
use zos_viewer::ViewerWindowOptions;

/// Set in the window process: the RFB socket to view.
const INNER: &str = "ZOS_VIEWER_TEST_SOCKET";
const TITLE: &str = "xterm on test";
/// Typed into bash between single quotes; printed back exactly.
const TEXT: &str = r#"Hello, World! ABC xyz 0123 #$%&*()_+-=[]{};:,.<>/?|~^@"\`"#;
/// What the window test runs, in Xvfb, in Xvnc and against the window.
const TOOLS: [&str; 9] = [
    "Xvfb", "Xvnc", "xdotool", "xdpyinfo", "import", "xsetroot", "xterm", "xev", "stdbuf",
];

fn main() {
    if let Some(socket) = std::env::var_os(INNER) {
        return inner(PathBuf::from(socket));
    }
    let trials = vec![
        Trial::test("viewer_window_shows_and_drives_an_app", || {
            viewer_window_shows_and_drives_an_app();
            Ok(())
        }),
        Trial::test("viewer_connect_failure_is_a_clear_error", || {
            viewer_connect_failure_is_a_clear_error();
            Ok(())
        }),
    ];
    libtest_mimic::run(&Arguments::from_args(), trials).exit();
}

/// The window process: shows the display at `socket` until the view ends.
fn inner(socket: PathBuf) {
    let _ = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter("zos_viewer=debug,zos_display=info")
        .try_init();
    // The whole display (a plain Xvnc lists no windows anyway), resized with the window.
    let mut options = ViewerWindowOptions::new(TITLE, move || {
        std::os::unix::net::UnixStream::connect(socket)
    });
    options.desktop = true;
    options.resize_remote = true;
    match zos_viewer::run(options) {
        Ok(()) => println!("run returned Ok"),
        Err(e) => {
            println!("run returned an error: {e:#}");
            std::process::exit(1);
        }
    }
}

fn viewer_connect_failure_is_a_clear_error() {
    let missing = std::env::temp_dir().join(format!("zos-viewer-missing-{}", std::process::id()));
    let options = ViewerWindowOptions::new("nothing on nowhere", move || {
        std::os::unix::net::UnixStream::connect(missing)
    });
    let err = zos_viewer::run(options).expect_err("a view of a missing socket");
    let text = format!("{err:#}");
    assert!(
        text.contains("cannot open the view of nothing on nowhere")
            && text.contains("No such file"),
        "{text}"
    );
    // A stream that is not RFB: the handshake fails with a clear error, before any window.
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    drop(theirs);
    let err = zos_viewer::run(ViewerWindowOptions::new("closed on nowhere", move || {
        Ok(ours)
    }))
    .expect_err("a closed stream");
    let text = format!("{err:#}");
    assert!(
        text.contains("cannot connect to the display of closed on nowhere"),
        "{text}"
    );
    // A peer that never speaks: the handshake times out instead of hanging.
    let (ours, silent) = std::os::unix::net::UnixStream::pair().unwrap();
    let err = zos_viewer::run(ViewerWindowOptions::new("silent on nowhere", move || {
        Ok(ours)
    }))
    .expect_err("a silent stream");
    let text = format!("{err:#}");
    assert!(
        text.contains("cannot connect to the display of silent on nowhere")
            && text.contains("did not complete the RFB handshake"),
        "{text}"
    );
    drop(silent);
}

/// Where the viewer window is on the Xvfb screen: x, y, width, height.
fn window_geometry(screen: &XDisplay, wid: &str) -> (usize, usize, usize, usize) {
    let out = screen.xdotool(&["getwindowgeometry", wid]);
    let field = |name: &str, sep: char| -> (usize, usize) {
        let v = out
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {out}"));
        let v = v.split_whitespace().next().unwrap();
        let (a, b) = v.split_once(sep).unwrap();
        (a.parse().unwrap(), b.parse().unwrap())
    };
    let (x, y) = field("Position:", ',');
    let (w, h) = field("Geometry:", 'x');
    (x, y, w, h)
}

/// Waits until the viewer's region of the Xvfb screen equals Xvnc's own screenshot, apart
/// from `skip` (the pointer).
fn assert_shows(
    screen: &XDisplay,
    app: &XDisplay,
    origin: (usize, usize),
    skip: Option<(usize, usize, usize, usize)>,
) -> Image {
    let mut left = usize::MAX;
    let mut shot = None;
    let ok = wait_until(Duration::from_secs(15), || {
        let remote = app.screenshot();
        let local = screen.screenshot();
        left = local.differences(origin.0, origin.1, &remote, skip);
        shot = Some(remote);
        left == 0
    });
    assert!(
        ok,
        "{left} pixels of the window differ from Xvnc's screenshot"
    );
    shot.unwrap()
}

fn viewer_window_shows_and_drives_an_app() {
    tools::require_all(&TOOLS);
    let xvfb = Xvfb::start(1280, 1024);
    let screen = XDisplay {
        display: xvfb.display.clone(),
        xauthority: None,
    };
    let dir = TempDir::new("window");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vd = VirtualDisplay::start(dir.path(), (800, 600))
        .unwrap_or_else(|e| panic!("cannot start Xvnc (tigervnc-standalone-server): {e}"));
    let app = XDisplay {
        display: vd.display(),
        xauthority: Some(vd.xauthority().to_owned()),
    };
    // A coloured root: the pixel comparisons then also catch swapped channels and colour
    // conversion errors on the way through egui and GL.
    app.run("xsetroot", &["-solid", "#204060"]);
    let xterm_log = dir.path().join("xterm.log");
    let xev_log = dir.path().join("xev.log");
    let (_xterm, _xev) = {
        let _guard = runtime.enter();
        let xterm = launch_app(
            &vd,
            &[
                "xterm",
                "-geometry",
                "60x12+0+0",
                "-bg",
                "white",
                "-fg",
                "black",
                "-l",
                "-lf",
                xterm_log.to_str().unwrap(),
                "-e",
                "bash",
                "--norc",
                "--noprofile",
            ],
        )
        .unwrap();
        let script = format!(
            "exec stdbuf -oL xev -geometry 300x200+450+0 > '{}'",
            xev_log.display()
        );
        let xev = launch_app(&vd, &["sh", "-c", &script]).unwrap();
        (xterm, xev)
    };
    // A second viewer of our own, in the test, to learn the pointer shape Xvnc announces.
    let witness = runtime.block_on(async {
        let s = tokio::net::UnixStream::connect(vd.rfb_socket())
            .await
            .unwrap();
        ViewerConnection::connect(s).await.unwrap()
    });
    assert!(
        wait_until(Duration::from_secs(15), || read(&xev_log)
            .contains("Expose")
            && !read(&xterm_log).is_empty()),
        "the apps did not start"
    );

    let mut window = Reaped(
        Command::new(std::env::current_exe().unwrap())
            .env(INNER, vd.rfb_socket())
            .env("DISPLAY", &screen.display)
            .env_remove("XAUTHORITY")
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::piped())
            .spawn()
            .expect("run the window"),
    );
    let lines = Lines::follow(&mut window.0, "window");
    lines.wait_for("viewer window shows 800x600", Duration::from_secs(60));
    let wid = {
        let mut found = String::new();
        assert!(wait_until(Duration::from_secs(10), || {
            found = screen
                .try_run("xdotool", &["search", "--name", TITLE])
                .unwrap_or_default();
            !found.trim().is_empty()
        }));
        found.lines().next().unwrap().trim().to_owned()
    };
    let (wx, wy, ww, wh) = window_geometry(&screen, &wid);
    assert_eq!(
        (ww, wh),
        (800, 600),
        "the window holds the screen one to one"
    );

    // 1. Pixels: with the pointer outside the window, exactly Xvnc's picture.
    screen.xdotool(&["mousemove", "1279", "1023"]);
    let before = assert_shows(&screen, &app, (wx, wy), None);

    // 2. The pointer over the xterm: Xvnc's text cursor, drawn with its hotspot at the pointer.
    // Xvnc gives the pointer's shape only to the viewer that moved it last (the others get an
    // empty shape and the pointer painted into their pixels). So the witness learns the shape
    // first, then the window's pointer moves there (from a pixel aside, so it really moves).
    screen.xdotool(&["windowfocus", "--sync", &wid]);
    std::thread::sleep(Duration::from_millis(300));
    let (rx, ry) = (100usize, 60usize);
    let mut shape = None;
    let mut nudge = 0;
    assert!(
        wait_until(Duration::from_secs(10), || {
            nudge = 1 - nudge;
            runtime
                .block_on(witness.pointer((rx + nudge) as u16, ry as u16, 0))
                .unwrap();
            std::thread::sleep(Duration::from_millis(100));
            shape = witness
                .cursor()
                .filter(|c| !c.is_hidden() && c.height > c.width);
            shape.is_some()
        }),
        "Xvnc announced no text cursor: {:?}",
        witness.cursor().map(|c| (c.width, c.height, c.version))
    );
    let shape = shape.unwrap();
    for dx in [1, 0] {
        let x = (wx + rx + dx).to_string();
        screen.xdotool(&["mousemove", &x, &(wy + ry).to_string()]);
        std::thread::sleep(Duration::from_millis(100));
    }
    let (hx, hy) = (usize::from(shape.hotspot_x), usize::from(shape.hotspot_y));
    let (cw, ch) = (usize::from(shape.width), usize::from(shape.height));
    let mut wrong = usize::MAX;
    let drawn = wait_until(Duration::from_secs(10), || {
        let local = screen.screenshot();
        wrong = 0;
        for y in 0..ch {
            for x in 0..cw {
                let i = (y * cw + x) * 4;
                if shape.rgba[i + 3] == 255 {
                    let want = [shape.rgba[i], shape.rgba[i + 1], shape.rgba[i + 2]];
                    if local.pixel(wx + rx + x - hx, wy + ry + y - hy) != want {
                        wrong += 1;
                    }
                }
            }
        }
        wrong == 0
    });
    assert!(
        drawn,
        "{wrong} pixels of the pointer shape not drawn at the pointer"
    );
    // Everything else still equals Xvnc's picture.
    let skip = Some((rx - hx, ry - hy, cw, ch));
    assert_shows(&screen, &app, (wx, wy), skip);

    // 3. Typing: capitals and symbols arrive exactly.
    screen.xdotool(&["type", "--delay", "20", &format!("echo '{TEXT}'")]);
    screen.xdotool(&["key", "Return"]);
    let printed = |log: &str, text: &str| {
        log.contains(&format!("{text}\r\n")) || log.contains(&format!("{text}\n"))
    };
    assert!(
        wait_until(Duration::from_secs(10), || printed(&read(&xterm_log), TEXT)),
        "bash did not print the text: {:?}",
        read(&xterm_log)
    );

    // 4. Ctrl+C reaches the terminal: `sleep 100` ends at once.
    screen.xdotool(&["type", "--delay", "20", "sleep 100"]);
    screen.xdotool(&["key", "Return"]);
    std::thread::sleep(Duration::from_millis(500));
    screen.xdotool(&["key", "ctrl+c"]);
    screen.xdotool(&["type", "--delay", "20", "echo after-$((40+2))"]);
    screen.xdotool(&["key", "Return"]);
    assert!(
        wait_until(Duration::from_secs(10), || printed(
            &read(&xterm_log),
            "after-42"
        )),
        "Ctrl+C did not interrupt sleep: {:?}",
        read(&xterm_log)
    );
    // The output is on screen, in the window too.
    screen.xdotool(&["mousemove", "1279", "1023"]);
    let after = assert_shows(&screen, &app, (wx, wy), None);
    assert!(
        before.differences(0, 0, &after, None) > 500,
        "the typed text did not change the picture"
    );

    // 5. Buttons 1-3 and the wheel reach xev.
    screen.xdotool(&[
        "mousemove",
        &(wx + 600).to_string(),
        &(wy + 100).to_string(),
    ]);
    std::thread::sleep(Duration::from_millis(300));
    for button in 1..=7 {
        screen.xdotool(&["click", &button.to_string()]);
    }
    let clicked = |log: &str, b: u32| {
        log.split("ButtonPress event")
            .skip(1)
            .any(|e| e.contains(&format!("button {b},")))
            && log
                .split("ButtonRelease event")
                .skip(1)
                .any(|e| e.contains(&format!("button {b},")))
    };
    assert!(
        wait_until(Duration::from_secs(10), || {
            let log = read(&xev_log);
            (1..=7).all(|b| clicked(&log, b))
        }),
        "xev missed some buttons: {}",
        read(&xev_log)
            .lines()
            .filter(|l| l.contains("button"))
            .collect::<Vec<_>>()
            .join(" | ")
    );

    // 6. Resizing the window resizes the Xvnc screen; the picture follows.
    screen.xdotool(&["windowsize", &wid, "900", "700"]);
    lines.wait_for("asks for a 900x700 desktop", Duration::from_secs(10));
    assert!(
        wait_until(Duration::from_secs(10), || app.size() == (900, 700)),
        "Xvnc's screen is {:?}",
        app.size()
    );
    lines.wait_for("viewer window shows 900x700", Duration::from_secs(10));
    screen.xdotool(&["mousemove", "1279", "1023"]);
    assert_shows(&screen, &app, (wx, wy), None);

    // 7. Xvnc goes away: the window closes by itself and `run` returns.
    drop(witness);
    drop(vd);
    lines.wait_for("closes:", Duration::from_secs(15));
    let uploads = lines.wait_for("viewer frames:", Duration::from_secs(15));
    lines.wait_for("run returned Ok", Duration::from_secs(15));
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = window.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the window process did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    // The texture was uploaded whole only for the first frame and the resize.
    let count = |what: &str| -> u64 {
        let before = uploads.split(what).next().unwrap();
        before.split_whitespace().last().unwrap().parse().unwrap()
    };
    assert!(count(" full") <= 2, "{uploads}");
    assert!(count(" partial") >= 1, "{uploads}");
    drop(runtime);
    drop(dir);
    assert_no_leftovers(Path::new("/tmp"));
}

/// No socket or cookie of this test's Xvnc is left.
fn assert_no_leftovers(tmp: &Path) {
    let ours = format!("zos-viewer-{}-", std::process::id());
    let left: Vec<_> = std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&ours))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
