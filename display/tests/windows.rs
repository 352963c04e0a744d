//! AppWindows with a real Xvnc and real X clients: the app's window fills the
//! screen, follows a screen resize, and has the keyboard; dialogs-style
//! windows keep their size.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{RuntimeDir, init_tracing, wait_until};
use zos_display::{AppWindows, VirtualDisplay, launch_app};

/// Runs an X client tool against `vd` and returns its stdout.
fn x_tool(vd: &VirtualDisplay, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .env("DISPLAY", vd.display())
        .env("XAUTHORITY", vd.xauthority())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (x, y, width, height) of the focused window, from xdotool.
fn focused_geometry(vd: &VirtualDisplay) -> Option<(i32, i32, u32, u32)> {
    let text = x_tool(
        vd,
        "xdotool",
        &["getwindowfocus", "getwindowgeometry", "--shell"],
    );
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

#[tokio::test(flavor = "multi_thread")]
async fn the_app_fills_the_screen_follows_resizes_and_has_the_keyboard() {
    init_tracing();
    let dir = RuntimeDir::new("windows-fill");
    let vd = VirtualDisplay::start(dir.path(), (1024, 768)).unwrap();
    let _keeper = AppWindows::start(&vd).unwrap();
    let _xterm = launch_app(&vd, &["xterm"]).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || focused_geometry(&vd)
            == Some((0, 0, 1024, 768)))
        .await,
        "focused window geometry {:?}",
        focused_geometry(&vd)
    );
    // xrandr resizes the screen, then complains that the (virtual) output
    // no longer fits: its exit status says nothing here; the size does.
    let _ = Command::new("xrandr")
        .args(["--fb", "800x600"])
        .env("DISPLAY", vd.display())
        .env("XAUTHORITY", vd.xauthority())
        .output()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || focused_geometry(&vd)
            == Some((0, 0, 800, 600)))
        .await,
        "after the resize: {:?}",
        focused_geometry(&vd)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn windows_mapped_before_it_started_are_fitted_too() {
    init_tracing();
    let dir = RuntimeDir::new("windows-before");
    let vd = VirtualDisplay::start(dir.path(), (900, 700)).unwrap();
    let _xterm = launch_app(&vd, &["xterm"]).unwrap();
    // Wait until xterm's window is up (in its corner, at its own size).
    assert!(
        wait_until(Duration::from_secs(10), || x_tool(
            &vd,
            "xdotool",
            &["search", "--class", "xterm"]
        )
        .lines()
        .count()
            > 0)
        .await
    );
    let _keeper = AppWindows::start(&vd).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || focused_geometry(&vd)
            == Some((0, 0, 900, 700)))
        .await,
        "{:?}",
        focused_geometry(&vd)
    );
}
