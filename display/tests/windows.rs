//! AppWindows with a real Xvnc and real X clients: windows keep the size they ask for and sit
//! side by side; the screen grows to hold them and shrinks back; the newest window has the
//! keyboard; menus and dialogs are listed with their parents; viewers' requests resize and
//! activate windows.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{RuntimeDir, init_tracing, try_x_tool, wait_until};
use zos_display::{
    AppWindow, AppWindows, VirtualDisplay, WindowKind, WindowList, WindowRect, WindowRequest,
    launch_app,
};

/// (x, y, width, height) of `window` (an id, or "getwindowfocus"'s pick) from xdotool.
fn geometry(vd: &VirtualDisplay, window: &str) -> Option<(i32, i32, u32, u32)> {
    let args: Vec<&str> = if window == "focus" {
        vec!["getwindowfocus", "getwindowgeometry", "--shell"]
    } else {
        vec!["getwindowgeometry", "--shell", window]
    };
    let text = try_x_tool(vd, "xdotool", &args)?;
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    Some((
        get("X")? as i32,
        get("Y")? as i32,
        get("WIDTH")? as u32,
        get("HEIGHT")? as u32,
    ))
}

/// The screen size, from xdpyinfo.
fn screen_size(vd: &VirtualDisplay) -> Option<(u16, u16)> {
    let text = try_x_tool(vd, "xdpyinfo", &[])?;
    let dims = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("dimensions:"))?;
    let (w, h) = dims.split_whitespace().next()?.split_once('x')?;
    Some((w.parse().ok()?, h.parse().ok()?))
}

/// Waits until the window list satisfies `check`; returns it (or panics with the last one).
async fn wait_list(
    windows: &AppWindows,
    what: &str,
    check: impl Fn(&WindowList) -> bool,
) -> WindowList {
    let ok = wait_until(Duration::from_secs(15), || check(&windows.list())).await;
    let list = (*windows.list()).clone();
    assert!(ok, "{what}: the window list stayed {list:#?}");
    list
}

fn titled<'a>(list: &'a WindowList, title: &str) -> Option<&'a AppWindow> {
    list.windows.iter().find(|w| w.title == title)
}

fn xdotool_id(w: &AppWindow) -> String {
    w.id.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn windows_keep_their_size_side_by_side_and_the_newest_has_the_keyboard() {
    init_tracing();
    let dir = RuntimeDir::new("windows-side");
    let vd = VirtualDisplay::start(dir.path(), (1024, 768)).unwrap();
    let windows = AppWindows::start(&vd).unwrap();
    let _clock = launch_app(&vd, &["xclock", "-geometry", "200x200"]).unwrap();
    let list = wait_list(&windows, "xclock listed", |l| titled(l, "xclock").is_some()).await;
    let clock = titled(&list, "xclock").unwrap().clone();
    assert_eq!(clock.rect, WindowRect::new(0, 0, 200, 200), "{clock:?}");
    assert_eq!((clock.kind, clock.parent), (WindowKind::Normal, None));
    let _xterm = launch_app(&vd, &["xterm", "-T", "the terminal"]).unwrap();
    let list = wait_list(&windows, "xterm listed and focused", |l| {
        titled(l, "the terminal").is_some_and(|w| w.focused)
    })
    .await;
    let term = titled(&list, "the terminal").unwrap();
    // The terminal keeps its own size (80x24 cells), beside the clock, not over it.
    assert!(term.rect.width > 300 && term.rect.width < 1024, "{term:?}");
    assert_eq!(
        term.rect.overlap(&clock.rect),
        0,
        "{term:?} overlaps {clock:?}"
    );
    assert!(term.rect.x >= 200, "{term:?}");
    let xterm_geometry = geometry(&vd, &xdotool_id(term)).unwrap();
    assert_eq!(
        xterm_geometry,
        (
            i32::from(term.rect.x),
            i32::from(term.rect.y),
            u32::from(term.rect.width),
            u32::from(term.rect.height)
        )
    );
    assert_eq!(
        geometry(&vd, "focus"),
        Some(xterm_geometry),
        "the keyboard is the terminal's"
    );
    assert_eq!(
        screen_size(&vd),
        Some((1024, 768)),
        "the screen stays as it was"
    );
    assert!(!titled(&list, "xclock").unwrap().focused);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_screen_grows_to_hold_the_windows_and_shrinks_back() {
    init_tracing();
    let dir = RuntimeDir::new("windows-grow");
    let vd = VirtualDisplay::start(dir.path(), (800, 600)).unwrap();
    let windows = AppWindows::start(&vd).unwrap();
    let mut wide = launch_app(&vd, &["xclock", "-geometry", "1500x300"]).unwrap();
    let list = wait_list(&windows, "a wide clock", |l| {
        l.windows.iter().any(|w| w.rect.width == 1500)
    })
    .await;
    assert_eq!(list.windows[0].rect, WindowRect::new(0, 0, 1500, 300));
    assert!(
        wait_until(Duration::from_secs(10), || screen_size(&vd)
            == Some((1500, 600)))
        .await,
        "the screen is {:?}, not 1500x600",
        screen_size(&vd)
    );
    // xrandr sees one output covering the whole screen (toolkits place menus by it).
    let randr = try_x_tool(&vd, "xrandr", &[]).unwrap();
    assert!(randr.contains("connected 1500x600+0+0"), "{randr}");
    wide.kill().await.unwrap();
    wait_list(&windows, "the clock gone", |l| l.windows.is_empty()).await;
    assert!(
        wait_until(Duration::from_secs(10), || screen_size(&vd)
            == Some((800, 600)))
        .await,
        "the screen stayed {:?}",
        screen_size(&vd)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn menus_and_dialogs_are_listed_with_their_parents() {
    init_tracing();
    let dir = RuntimeDir::new("windows-popups");
    let vd = VirtualDisplay::start(dir.path(), (1024, 768)).unwrap();
    let windows = AppWindows::start(&vd).unwrap();
    let _xterm = launch_app(&vd, &["xterm", "-T", "term"]).unwrap();
    let list = wait_list(&windows, "xterm", |l| titled(l, "term").is_some()).await;
    let term = titled(&list, "term").unwrap().clone();
    // Ctrl + left button in xterm pops up its main menu (override-redirect) at the pointer.
    let (x, y) = (i32::from(term.rect.x) + 50, i32::from(term.rect.y) + 50);
    let xdo = |args: &[&str]| try_x_tool(&vd, "xdotool", args);
    xdo(&["mousemove", &x.to_string(), &y.to_string()]).unwrap();
    xdo(&["keydown", "ctrl", "mousedown", "1"]).unwrap();
    let list = wait_list(&windows, "xterm's menu", |l| {
        l.windows.iter().any(|w| w.kind == WindowKind::Menu)
    })
    .await;
    let menu = list
        .windows
        .iter()
        .find(|w| w.kind == WindowKind::Menu)
        .unwrap();
    assert_eq!(menu.parent, Some(term.id), "{menu:?}");
    assert!(menu.rect.width > 50 && menu.rect.height > 50, "{menu:?}");
    assert_eq!(
        list.windows.last().map(|w| w.id),
        Some(menu.id),
        "the menu is on top"
    );
    xdo(&["mouseup", "1", "keyup", "ctrl"]).unwrap();
    wait_list(&windows, "the menu gone", |l| {
        l.windows.iter().all(|w| w.kind != WindowKind::Menu)
    })
    .await;

    // A Tk dialog: a transient window of its main window.
    let tk = Command::new("python3")
        .args(["-c", "import tkinter"])
        .status();
    assert!(
        tk.is_ok_and(|s| s.success()),
        "python3's tkinter is not installed (Debian package python3-tk)"
    );
    let script = "import tkinter as tk\nr = tk.Tk(); r.title('main'); r.geometry('300x200')\n\
                  d = tk.Toplevel(r); d.title('dialog'); d.geometry('150x100'); d.transient(r)\n\
                  r.mainloop()";
    let _tk = launch_app(&vd, &["python3", "-c", script]).unwrap();
    let list = wait_list(&windows, "a dialog", |l| {
        titled(l, "dialog").is_some() && titled(l, "main").is_some()
    })
    .await;
    let (main, dialog) = (
        titled(&list, "main").unwrap(),
        titled(&list, "dialog").unwrap(),
    );
    assert_eq!(
        (dialog.kind, dialog.parent),
        (WindowKind::Dialog, Some(main.id))
    );
    assert_eq!((dialog.rect.width, dialog.rect.height), (150, 100));
    for (i, a) in list.top_levels().enumerate() {
        for b in list.top_levels().skip(i + 1) {
            assert_eq!(a.rect.overlap(&b.rect), 0, "{a:?} overlaps {b:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn viewers_requests_resize_and_activate_windows() {
    init_tracing();
    let dir = RuntimeDir::new("windows-requests");
    let vd = VirtualDisplay::start(dir.path(), (1024, 768)).unwrap();
    // Mapped before the keeper starts: adopted and placed all the same. (Waiting for it to be
    // named only is not enough: under load it was mapped after "second", which is then the
    // newest window and rightly takes the first place and the keyboard.)
    let _first = launch_app(&vd, &["xterm", "-T", "first"]).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || try_x_tool(
            &vd,
            "xdotool",
            &["search", "--onlyvisible", "--name", "first"]
        )
        .is_some())
        .await
    );
    let windows = AppWindows::start(&vd).unwrap();
    let _second = launch_app(&vd, &["xterm", "-T", "second"]).unwrap();
    let list = wait_list(&windows, "both", |l| {
        titled(l, "first").is_some() && titled(l, "second").is_some_and(|w| w.focused)
    })
    .await;
    let first = titled(&list, "first").unwrap().clone();
    assert_eq!((first.rect.x, first.rect.y), (0, 0));
    let control = windows.feed().control;
    control
        .send(WindowRequest::Resize {
            id: first.id,
            width: 500,
            height: 300,
        })
        .unwrap();
    control
        .send(WindowRequest::Activate { id: first.id })
        .unwrap();
    let list = wait_list(&windows, "first resized and focused", |l| {
        titled(l, "first").is_some_and(|w| (w.rect.width, w.rect.height) == (500, 300) && w.focused)
    })
    .await;
    let first = titled(&list, "first").unwrap();
    let (_, _, w, h) = geometry(&vd, &xdotool_id(first)).unwrap();
    assert_eq!((w, h), (500, 300));
    let second = titled(&list, "second").unwrap();
    assert_eq!(
        first.rect.overlap(&second.rect),
        0,
        "{first:?} and {second:?}"
    );
    // A request about a window that is not there changes nothing.
    control
        .send(WindowRequest::Resize {
            id: 0x12345,
            width: 9,
            height: 9,
        })
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(titled(&windows.list(), "first").unwrap().rect, first.rect);
}
