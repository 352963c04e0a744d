//! Seamless windows for real: a real Xvnc with its window manager (`AppWindows`) and fan-out
//! in this process, and `zos_viewer::run` in child processes on an Xvfb screen, with and
//! without a window manager (openbox).
//!
//! Checks: a 200×200 xclock opens as a 200×200 window of its own whose pixels are the app
//! window's, titled with the app's title; xterm's Ctrl+click menu opens as a separate
//! override-redirect window where the app put it relative to the xterm window, with the
//! menu's pixels; an xmessage opens as a window of its own; closing a window hides that view
//! only (the app keeps it); a second viewer resized to a smaller size scales the picture while
//! the first stays one to one, neither cut off, and the app's window keeps its size; an app
//! window larger than the viewer's screen opens scaled down within it, frame included, all
//! of it shown; the clipboard goes both ways between xclip on the viewer's screen and on the
//! app's.
//! Screenshots are kept under `target/seamless-screenshots/`.

mod support;
#[path = "../../../tests/common/tools.rs"]
mod tools;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use libtest_mimic::{Arguments, Trial};
use support::{Image, Lines, Reaped, TempDir, XDisplay, Xvfb, wait_until};
use tokio::runtime::Runtime;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ClientMessageEvent, ConnectionExt as _, EventMask};
use zos_display::{
    AppWindow, AppWindows, Fanout, ViewerConnection, VirtualDisplay, WindowKind, WindowList,
    launch_app,
};
use zos_viewer::ViewerWindowOptions;

/// Set in a window process: the fan-out socket to view.
const INNER: &str = "ZOS_SEAMLESS_TEST_SOCKET";
/// Set in a window process that resizes the app's windows (`--resize-remote`).
const RESIZE_REMOTE: &str = "ZOS_SEAMLESS_TEST_RESIZE_REMOTE";
const TITLE: &str = "apps on test";
const TOOLS: [&str; 10] = [
    "Xvfb", "Xvnc", "xdotool", "xdpyinfo", "xwininfo", "import", "xterm", "xclock", "xmessage",
    "xclip",
];
/// xterm's default ANSI red and blue backgrounds.
const RED: [u8; 3] = [205, 0, 0];
const BLUE: [u8; 3] = [0, 0, 238];

fn main() {
    if let Some(socket) = std::env::var_os(INNER) {
        return inner(PathBuf::from(socket));
    }
    let _ = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "zos_display=info".into()))
        .with_test_writer()
        .try_init();
    let trials = vec![
        Trial::test(
            "seamless_windows_menus_dialogs_and_clipboard_without_a_window_manager",
            || {
                seamless_windows(false);
                Ok(())
            },
        ),
        Trial::test(
            "seamless_windows_menus_dialogs_and_clipboard_under_openbox",
            || {
                seamless_windows(true);
                Ok(())
            },
        ),
        Trial::test(
            "two_viewers_scale_independently_and_neither_cuts_off",
            || {
                two_viewers_scale_independently();
                Ok(())
            },
        ),
        Trial::test(
            "a_window_larger_than_the_screen_opens_scaled_within_it_without_a_window_manager",
            || {
                larger_than_the_screen(false);
                Ok(())
            },
        ),
        Trial::test(
            "a_window_larger_than_the_screen_opens_scaled_within_it_under_openbox",
            || {
                larger_than_the_screen(true);
                Ok(())
            },
        ),
        Trial::test(
            "a_resize_remote_viewer_resizes_the_app_window_not_the_screen",
            || {
                resize_remote_resizes_the_app_window();
                Ok(())
            },
        ),
    ];
    libtest_mimic::run(&Arguments::from_args(), trials).exit();
}

/// The window process.
fn inner(socket: PathBuf) {
    let _ = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(
            std::env::var("ZOS_SEAMLESS_INNER_LOG")
                .unwrap_or_else(|_| "zos_viewer=debug,zos_display=info".into()),
        )
        .try_init();
    let mut options = ViewerWindowOptions::new(TITLE, move || {
        std::os::unix::net::UnixStream::connect(socket)
    });
    options.resize_remote = std::env::var_os(RESIZE_REMOTE).is_some();
    match zos_viewer::run(options) {
        Ok(()) => println!("run returned Ok"),
        Err(e) => {
            println!("run returned an error: {e:#}");
            std::process::exit(1);
        }
    }
}

/// The app's side: Xvnc, its window manager and fan-out (serving on `socket`), and a viewer
/// of our own to read the window list.
struct AppSide {
    rt: Runtime,
    vd: VirtualDisplay,
    _windows: AppWindows,
    socket: PathBuf,
    observer: ViewerConnection,
    apps: Vec<tokio::process::Child>,
}

impl AppSide {
    fn start(dir: &Path) -> AppSide {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let vd = VirtualDisplay::start(dir, (1280, 800)).unwrap();
        let windows = AppWindows::start(&vd).unwrap();
        let socket = dir.join("fanout.sock");
        let observer = rt.block_on(async {
            let fanout = Fanout::start(vd.rfb_socket())
                .await
                .unwrap()
                .with_windows(windows.feed());
            let fanout = Arc::new(fanout);
            let listener = tokio::net::UnixListener::bind(&socket).unwrap();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let fanout = Arc::clone(&fanout);
                    tokio::spawn(async move {
                        let _ = fanout.serve(stream).await;
                    });
                }
            });
            let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
            ViewerConnection::connect(stream).await.unwrap()
        });
        AppSide {
            rt,
            vd,
            _windows: windows,
            socket,
            observer,
            apps: Vec::new(),
        }
    }

    fn launch(&mut self, argv: &[&str]) {
        let _guard = self.rt.enter();
        self.apps.push(launch_app(&self.vd, argv).unwrap());
    }

    fn display(&self) -> XDisplay {
        XDisplay {
            display: self.vd.display(),
            xauthority: Some(self.vd.xauthority().to_owned()),
        }
    }

    /// Waits for a window list satisfying `check`.
    fn wait_list(&self, what: &str, check: impl Fn(&WindowList) -> bool) -> Arc<WindowList> {
        let source = self.observer.source();
        let ok = wait_until(Duration::from_secs(20), || {
            source.windows().is_some_and(|l| check(&l))
        });
        let list = source.windows().unwrap_or_default();
        assert!(ok, "{what}: the app's window list stayed {list:#?}");
        list
    }

    /// The app window with this title.
    fn window(&self, title: &str) -> AppWindow {
        let list = self.wait_list(title, |l| l.windows.iter().any(|w| w.title == title));
        list.windows
            .iter()
            .find(|w| w.title == title)
            .unwrap()
            .clone()
    }
}

/// A viewer window process on `screen`.
struct Viewer {
    _child: Reaped,
    _lines: Lines,
}

fn viewer(socket: &Path, screen: &XDisplay, name: &'static str) -> Viewer {
    viewer_with(socket, screen, name, false)
}

fn viewer_with(
    socket: &Path,
    screen: &XDisplay,
    name: &'static str,
    resize_remote: bool,
) -> Viewer {
    let mut command = Command::new(std::env::current_exe().unwrap());
    if resize_remote {
        command.env(RESIZE_REMOTE, "1");
    }
    let mut child = command
        .env(INNER, socket)
        .env("DISPLAY", &screen.display)
        .env_remove("XAUTHORITY")
        .env_remove("WAYLAND_DISPLAY")
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = Lines::follow(&mut child, name);
    Viewer {
        _child: Reaped(child),
        _lines: lines,
    }
}

/// Where a window is on its screen, and whether it is override-redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    x: i32,
    y: i32,
    width: u32,
    height: u32,
    override_redirect: bool,
}

fn geometry(screen: &XDisplay, id: &str) -> Option<Geometry> {
    let info = screen.try_run("xwininfo", &["-id", id])?;
    let field = |name: &str| -> Option<String> {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    Some(Geometry {
        x: field("Absolute upper-left X:")?.parse().ok()?,
        y: field("Absolute upper-left Y:")?.parse().ok()?,
        width: field("Width:")?.parse().ok()?,
        height: field("Height:")?.parse().ok()?,
        override_redirect: field("Override Redirect State:")? == "yes",
    })
}

/// The one viewable window on `screen` whose name matches `pattern` (a regex for xdotool).
fn find(screen: &XDisplay, pattern: &str) -> Option<String> {
    let out = screen.try_run("xdotool", &["search", "--onlyvisible", "--name", pattern])?;
    let ids: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    (ids.len() == 1).then(|| ids[0].to_owned())
}

fn wait_find(screen: &XDisplay, pattern: &str) -> String {
    let mut found = None;
    assert!(
        wait_until(Duration::from_secs(20), || {
            found = find(screen, pattern);
            found.is_some()
        }),
        "no window named {pattern:?} on {}",
        screen.display
    );
    found.unwrap()
}

/// A window's own pixels, from `import -window`.
fn window_image(screen: &XDisplay, id: &str, size: (u32, u32)) -> Option<Image> {
    let out = screen.try_run_bytes("import", &["-window", id, "-depth", "8", "rgba:-"])?;
    (out.len() == (size.0 * size.1 * 4) as usize).then_some(Image {
        width: size.0 as usize,
        height: size.1 as usize,
        rgba: out,
    })
}

/// What the app's screen shows of `window` (border included, as the list has it).
fn app_image(app: &XDisplay, window: &AppWindow) -> Option<Image> {
    let r = window.rect;
    let crop = format!("{}x{}+{}+{}", r.width, r.height, r.x, r.y);
    let out = app.try_run_bytes(
        "import",
        &["-window", "root", "-crop", &crop, "-depth", "8", "rgba:-"],
    )?;
    let (w, h) = (usize::from(r.width), usize::from(r.height));
    (out.len() == w * h * 4).then_some(Image {
        width: w,
        height: h,
        rgba: out,
    })
}

/// Waits until local window `local` shows exactly what the app's screen shows of `window`.
fn assert_same_pixels(
    screen: &XDisplay,
    local: &str,
    app: &XDisplay,
    window: &AppWindow,
    what: &str,
) {
    let size = (u32::from(window.rect.width), u32::from(window.rect.height));
    let mut differ = usize::MAX;
    let mut last = None;
    let ok = wait_until(Duration::from_secs(15), || {
        let (Some(a), Some(b)) = (window_image(screen, local, size), app_image(app, window)) else {
            return false;
        };
        differ = a.differences(0, 0, &b, None);
        last = Some((a, b));
        differ == 0
    });
    if !ok && let Some((a, b)) = last {
        let name = what.replace(' ', "-");
        save(&a, &format!("{name}-here"));
        save(&b, &format!("{name}-in-the-app"));
    }
    assert!(
        ok,
        "{what}: {differ} pixels differ from the app's window (both kept in {})",
        shots().display()
    );
}

/// `target/seamless-screenshots/`.
fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("seamless-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves an RGBA picture as a PNG in [`shots`].
fn save(image: &Image, name: &str) {
    use std::io::Write;
    let png = shots().join(format!("{name}.png"));
    let mut convert = Command::new("convert")
        .args([
            "-size",
            &format!("{}x{}", image.width, image.height),
            "-depth",
            "8",
            "rgba:-",
        ])
        .arg(&png)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    convert
        .stdin
        .take()
        .unwrap()
        .write_all(&image.rgba)
        .unwrap();
    let _ = convert.wait();
}

/// Keeps a screenshot of `screen` for people to look at.
fn keep_screenshot(screen: &XDisplay, name: &str) -> PathBuf {
    let png = shots().join(format!("{name}.png"));
    screen.run("import", &["-window", "root", png.to_str().unwrap()]);
    png
}

/// Asks a window to close, as a window manager's close button does (WM_DELETE_WINDOW).
fn close_window(screen: &XDisplay, id: &str) {
    let (conn, _) = x11rb::connect(Some(&screen.display)).unwrap();
    let atom = |n: &str| {
        conn.intern_atom(false, n.as_bytes())
            .unwrap()
            .reply()
            .unwrap()
            .atom
    };
    let (protocols, delete) = (atom("WM_PROTOCOLS"), atom("WM_DELETE_WINDOW"));
    let window: u32 = id.parse().unwrap();
    let event = ClientMessageEvent::new(32, window, protocols, [delete, 0, 0, 0, 0]);
    conn.send_event(false, window, EventMask::NO_EVENT, event)
        .unwrap();
    conn.flush().unwrap();
}

/// An openbox on `screen`, if asked for; killed on drop.
fn window_manager(screen: &XDisplay, wanted: bool) -> Option<Reaped> {
    if !wanted {
        return None;
    }
    tools::require_all(&["openbox"]);
    let child = Command::new("openbox")
        .args(["--sm-disable"])
        .env("DISPLAY", &screen.display)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Running once it owns the screen's WM selection.
    assert!(wait_until(Duration::from_secs(10), || screen
        .try_run("xprop", &["-root", "_NET_SUPPORTING_WM_CHECK"])
        .is_some_and(|o| o.contains("window id"))));
    Some(Reaped(child))
}

/// The tools checked, a private directory and a 1280×1024 Xvfb screen for the viewers (dropped
/// in reverse order: the screen first).
fn stage(tag: &str) -> (TempDir, Xvfb, XDisplay) {
    stage_sized(tag, (1280, 1024))
}

/// [`stage`] with a screen of `size`.
fn stage_sized(tag: &str, size: (u16, u16)) -> (TempDir, Xvfb, XDisplay) {
    tools::require_all(&TOOLS);
    let dir = TempDir::new(tag);
    let xvfb = Xvfb::start(size.0, size.1);
    let screen = XDisplay {
        display: xvfb.display.clone(),
        xauthority: None,
    };
    (dir, xvfb, screen)
}

fn seamless_windows(with_wm: bool) {
    let tag = if with_wm { "openbox" } else { "bare" };
    let (dir, _xvfb, screen) = stage(&format!("seamless-{tag}"));
    let _wm = window_manager(&screen, with_wm);
    let mut app = AppSide::start(dir.path());
    let appd = app.display();
    app.launch(&["xclock", "-geometry", "200x200"]);
    app.launch(&["xterm", "-T", "term", "-geometry", "60x15"]);
    let clock = app.window("xclock");
    let term = app.window("term");
    let v = viewer(&app.socket, &screen, "viewer");

    // The clock: a 200x200 window of its own with the app window's pixels.
    let local_clock = wait_find(&screen, "^xclock .* apps on test$");
    let g = geometry(&screen, &local_clock).unwrap();
    assert_eq!((g.width, g.height), (200, 200), "{g:?}");
    assert!(!g.override_redirect);
    screen.xdotool(&["mousemove", "1270", "1010"]);
    assert_same_pixels(&screen, &local_clock, &appd, &clock, "the clock");
    // The terminal, at its own size.
    let local_term = wait_find(&screen, "^term .* apps on test$");
    let tg = geometry(&screen, &local_term).unwrap();
    assert_eq!(
        (tg.width, tg.height),
        (u32::from(term.rect.width), u32::from(term.rect.height))
    );
    assert_same_pixels(&screen, &local_term, &appd, &term, "the terminal");
    keep_screenshot(&screen, &format!("{tag}-clock-and-term"));

    // Ctrl+left click in the terminal's window: xterm's menu, a window of its own. (Without a
    // window manager nobody gives the keyboard focus: give it as one would.)
    screen.xdotool(&["windowfocus", "--sync", &local_term]);
    let (px, py) = (tg.x + 40, tg.y + 40);
    screen.xdotool(&["mousemove", &px.to_string(), &py.to_string()]);
    screen.xdotool(&["keydown", "ctrl", "mousedown", "1"]);
    let list = app.wait_list("xterm's menu", |l| {
        l.windows.iter().any(|w| w.kind == WindowKind::Menu)
    });
    let menu = list
        .windows
        .iter()
        .find(|w| w.kind == WindowKind::Menu)
        .unwrap()
        .clone();
    assert_eq!(menu.parent, Some(term.id));
    let local_menu = wait_find(&screen, "^menu .* apps on test$");
    let mg = geometry(&screen, &local_menu).unwrap();
    let png = keep_screenshot(&screen, &format!("{tag}-xterm-menu"));
    assert!(
        mg.override_redirect,
        "the menu window is not override-redirect: {mg:?}"
    );
    assert_eq!(
        (mg.width, mg.height),
        (u32::from(menu.rect.width), u32::from(menu.rect.height))
    );
    // Where the app put it relative to the terminal, relative to the terminal's window here.
    let expected = (
        tg.x + i32::from(menu.rect.x) - i32::from(term.rect.x),
        tg.y + i32::from(menu.rect.y) - i32::from(term.rect.y),
    );
    assert_eq!(
        (mg.x, mg.y),
        expected,
        "menu at {mg:?} (see {})",
        png.display()
    );
    // Compared away from the pointer, which the app does not paint but we do.
    screen.xdotool(&[
        "mousemove",
        &(mg.x + mg.width as i32 + 30).to_string(),
        &(mg.y + 5).to_string(),
    ]);
    assert_same_pixels(&screen, &local_menu, &appd, &menu, "the menu");
    screen.xdotool(&["mouseup", "1", "keyup", "ctrl"]);
    assert!(
        wait_until(Duration::from_secs(10), || find(
            &screen,
            "^menu .* apps on test$"
        )
        .is_none()),
        "the menu window stayed after the app closed its menu"
    );

    // A real app's dialog window: xmessage.
    app.launch(&["xmessage", "-title", "note", "seamless dialog test"]);
    let note = app.window("note");
    let local_note = wait_find(&screen, "^note .* apps on test$");
    let ng = geometry(&screen, &local_note).unwrap();
    assert_eq!(
        (ng.width, ng.height),
        (u32::from(note.rect.width), u32::from(note.rect.height))
    );
    keep_screenshot(&screen, &format!("{tag}-xmessage"));

    // The clipboard, both ways.
    let copied_here = format!("copied on the viewer's screen ✓ {tag}");
    let _xclip = screen.spawn_stdin(
        "xclip",
        &["-quiet", "-selection", "clipboard", "-i"],
        &copied_here,
    );
    assert!(
        wait_until(Duration::from_secs(10), || appd
            .try_run("xclip", &["-o", "-selection", "clipboard"])
            .as_deref()
            == Some(copied_here.as_str())),
        "the app's clipboard is {:?}",
        appd.try_run("xclip", &["-o", "-selection", "clipboard"])
    );
    let copied_there = format!("copié dans l'app ✓ {tag}");
    let _xclip_app = appd.spawn_stdin(
        "xclip",
        &["-quiet", "-selection", "clipboard", "-i"],
        &copied_there,
    );
    for selection in ["clipboard", "primary"] {
        assert!(
            wait_until(Duration::from_secs(10), || screen
                .try_run("xclip", &["-o", "-selection", selection])
                .as_deref()
                == Some(copied_there.as_str())),
            "the viewer screen's {selection} is {:?}",
            screen.try_run("xclip", &["-o", "-selection", selection])
        );
    }

    // Closing the dialog's window hides that view only: the app keeps the window.
    // Asked again each second while it stays, as a user would click again: under Xvfb
    // without a window manager the first WM_DELETE_WINDOW is sometimes never reported by
    // winit (about one run in six; eframe logs no CloseRequested for it).
    let mut asked = 0;
    let closed = wait_until(Duration::from_secs(10), || {
        if find(&screen, "^note .* apps on test$").is_none() {
            return true;
        }
        if asked % 10 == 0 {
            close_window(&screen, &local_note);
        }
        asked += 1;
        false
    });
    assert!(closed, "the closed window stayed");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        app.observer
            .source()
            .windows()
            .is_some_and(|l| l.get(note.id).is_some()),
        "the app lost its window"
    );
    assert!(
        find(&screen, "^xclock .* apps on test$").is_some(),
        "the other windows went too"
    );
    keep_screenshot(&screen, &format!("{tag}-after-close"));
    drop(v);
}

/// A shell script for an xterm of `columns` × `lines` that draws a blue bar on its first line
/// and a red one on its last: a cut-off picture loses one.
fn bars_script(columns: u32, lines: u32) -> String {
    format!(
        "printf '\\033[44m%{columns}s\\033[0m\\n' ''; i=0; while [ $i -lt {} ]; do echo; i=$((i+1)); done; \
         printf '\\033[41m%{columns}s\\033[0m' ''; exec sleep 1000",
        lines - 3
    )
}

fn two_viewers_scale_independently() {
    let (dir, _xvfb, screen) = stage("seamless-scale");
    let mut app = AppSide::start(dir.path());
    let appd = app.display();
    let script = bars_script(60, 15);
    app.launch(&[
        "xterm",
        "-T",
        "bars",
        "-geometry",
        "60x15",
        "-e",
        "sh",
        "-c",
        &script,
    ]);
    let bars = app.window("bars");
    let size = (u32::from(bars.rect.width), u32::from(bars.rect.height));
    let first = viewer(&app.socket, &screen, "first");
    let second = viewer(&app.socket, &screen, "second");
    let windows = {
        let mut ids = Vec::new();
        let found = wait_until(Duration::from_secs(20), || {
            ids = screen
                .try_run(
                    "xdotool",
                    &[
                        "search",
                        "--onlyvisible",
                        "--name",
                        "^bars .* apps on test$",
                    ],
                )
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect();
            ids.sort();
            ids.dedup();
            ids.len() == 2
        });
        assert!(
            found,
            "two viewer windows of the terminal wanted, found {ids:?}"
        );
        ids
    };
    screen.xdotool(&["mousemove", "1270", "1010"]);
    let (one, small) = (&windows[0], &windows[1]);
    // Side by side (without a window manager both open at the corner).
    screen.xdotool(&["windowmove", one, "0", "0"]);
    screen.xdotool(&["windowmove", small, "0", "500"]);
    screen.xdotool(&[
        "windowsize",
        small,
        &(size.0 * 6 / 10).to_string(),
        &(size.1 * 6 / 10).to_string(),
    ]);
    let remote = || app_image(&appd, &bars);
    assert!(wait_until(Duration::from_secs(10), || remote()
        .is_some_and(
            |i| count(&i, RED) > 1000 && count(&i, BLUE) > 1000
        )));
    let app_image = remote().unwrap();
    let (red, blue) = (count(&app_image, RED), count(&app_image, BLUE));
    // The one-to-one viewer shows the app window exactly.
    assert_same_pixels(&screen, one, &appd, &bars, "the one-to-one viewer");
    // The scaled one shows all of it, smaller: both bars, at about the area ratio.
    let sg = geometry(&screen, small).unwrap();
    assert_eq!((sg.width, sg.height), (size.0 * 6 / 10, size.1 * 6 / 10));
    let mut seen = (0, 0);
    let ok = wait_until(Duration::from_secs(15), || {
        let Some(img) = window_image(&screen, small, (sg.width, sg.height)) else {
            return false;
        };
        seen = (count(&img, RED), count(&img, BLUE));
        let expect = |n: usize| (n as f64 * 0.36 * 0.7) as usize..=(n as f64 * 0.36 * 1.3) as usize;
        expect(red).contains(&seen.0) && expect(blue).contains(&seen.1)
    });
    let png = keep_screenshot(&screen, "two-viewers-scaled");
    assert!(
        ok,
        "the scaled viewer shows {seen:?} red/blue pixels of the app's {red}/{blue} (see {})",
        png.display()
    );
    // Nobody asked the app to resize: its window kept its size.
    std::thread::sleep(Duration::from_millis(500));
    let now = app.window("bars");
    assert_eq!(
        (now.rect.width, now.rect.height),
        (bars.rect.width, bars.rect.height)
    );
    drop((first, second));
}

/// `_NET_FRAME_EXTENTS` of a window (left, right, top, bottom), zero without a window manager.
fn frame_extents(screen: &XDisplay, id: &str) -> [i32; 4] {
    let out = screen
        .try_run("xprop", &["-id", id, "_NET_FRAME_EXTENTS"])
        .unwrap_or_default();
    let values: Vec<i32> = out
        .split('=')
        .nth(1)
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_default();
    values.try_into().unwrap_or([0; 4])
}

/// An app window larger than the viewer's screen (the "its bottom is cut off"): its
/// viewer window opens scaled down, decorations included within the screen, showing all of
/// the app's window.
fn larger_than_the_screen(with_wm: bool) {
    const SCREEN: (u16, u16) = (1024, 700);
    let tag = if with_wm { "openbox" } else { "bare" };
    let (dir, _xvfb, screen) = stage_sized(&format!("seamless-large-{tag}"), SCREEN);
    let _wm = window_manager(&screen, with_wm);
    let mut app = AppSide::start(dir.path());
    let appd = app.display();
    let script = bars_script(180, 60);
    app.launch(&[
        "xterm",
        "-T",
        "bars",
        "-geometry",
        "180x60",
        "-e",
        "sh",
        "-c",
        &script,
    ]);
    let bars = app.window("bars");
    let size = (u32::from(bars.rect.width), u32::from(bars.rect.height));
    assert!(
        size.0 > u32::from(SCREEN.0) && size.1 > u32::from(SCREEN.1),
        "the app window ({size:?}) should be larger than the viewer's screen"
    );
    let _v = viewer(&app.socket, &screen, "viewer");
    let local = wait_find(&screen, "^bars .* apps on test$");
    screen.xdotool(&[
        "mousemove",
        &(SCREEN.0 - 1).to_string(),
        &(SCREEN.1 - 1).to_string(),
    ]);
    // Settled: placed by the window manager, if any.
    std::thread::sleep(Duration::from_millis(700));
    let g = geometry(&screen, &local).unwrap();
    let [left, right, top, bottom] = frame_extents(&screen, &local);
    let png = keep_screenshot(&screen, &format!("{tag}-larger-than-the-screen"));
    let frame = (
        g.x - left,
        g.y - top,
        g.x + g.width as i32 + right,
        g.y + g.height as i32 + bottom,
    );
    assert!(
        frame.0 >= 0
            && frame.1 >= 0
            && frame.2 <= i32::from(SCREEN.0)
            && frame.3 <= i32::from(SCREEN.1),
        "the viewer window {g:?} (frame {frame:?}) goes past the {SCREEN:?} screen (see {})",
        png.display()
    );
    // Scaled down uniformly, not cut.
    let aspect = |w: u32, h: u32| f64::from(w) / f64::from(h);
    assert!(
        (aspect(g.width, g.height) / aspect(size.0, size.1) - 1.0).abs() < 0.02,
        "{g:?} does not keep the app window's {size:?} shape"
    );
    let scale = f64::from(g.width) / f64::from(size.0);
    let remote = || app_image(&appd, &bars);
    assert!(wait_until(Duration::from_secs(10), || remote()
        .is_some_and(
            |i| count(&i, RED) > 1000 && count(&i, BLUE) > 1000
        )));
    let app_image = remote().unwrap();
    let (red, blue) = (count(&app_image, RED), count(&app_image, BLUE));
    let mut seen = (0, 0);
    let ok = wait_until(Duration::from_secs(15), || {
        let Some(img) = window_image(&screen, &local, (g.width, g.height)) else {
            return false;
        };
        seen = (count(&img, RED), count(&img, BLUE));
        let area = scale * scale;
        let expect = |n: usize| (n as f64 * area * 0.7) as usize..=(n as f64 * area * 1.3) as usize;
        expect(red).contains(&seen.0) && expect(blue).contains(&seen.1)
    });
    assert!(
        ok,
        "the viewer window at scale {scale:.2} shows {seen:?} red/blue pixels of the app's {red}/{blue} (see {})",
        png.display()
    );
}

/// Pixels of exactly `rgb`.
fn count(image: &Image, rgb: [u8; 3]) -> usize {
    image.rgba.chunks_exact(4).filter(|p| p[..3] == rgb).count()
}

fn resize_remote_resizes_the_app_window() {
    let (dir, _xvfb, screen) = stage("seamless-resize-remote");
    let mut app = AppSide::start(dir.path());
    let appd = app.display();
    app.launch(&["xclock", "-geometry", "200x200"]);
    let clock = app.window("xclock");
    let v = viewer_with(&app.socket, &screen, "resizer", true);
    let local = wait_find(&screen, "^xclock .* apps on test$");
    screen.xdotool(&["mousemove", "1270", "1010"]);
    screen.xdotool(&["windowsize", &local, "320", "240"]);
    // The app's window takes the size; the screen does not change.
    let list = app.wait_list("the clock at 320x240", |l| {
        l.get(clock.id)
            .is_some_and(|w| (w.rect.width, w.rect.height) == (320, 240))
    });
    assert_eq!(appd.size(), (1280, 800), "the app's screen changed");
    // … and is drawn one to one again, the app's new pixels exactly.
    let clock = list.get(clock.id).unwrap().clone();
    assert_same_pixels(&screen, &local, &appd, &clock, "the resized clock");
    v._lines
        .wait_for("asks the app's window for 320x240", Duration::from_secs(5));
}
