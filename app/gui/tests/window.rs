//! The real window on a real (virtual) X display: `zos_gui::run` under Xvfb
//! with Mesa's software GL, fed by a fake daemon. Checks the log line other
//! tests rely on, the window's title and size, the zombie blue on screen, and
//! that a zombie leaving the list leaves the window.
//!
//! winit wants the main thread, so this test has its own `main` (no libtest
//! harness; libtest-mimic reads cargo's and libtest's arguments: filters,
//! `--exact`, `--list`, `--test-threads`, …). It re-runs itself inside the
//! display. Xvfb, xwininfo (x11-utils) and ImageMagick are required: a
//! missing one fails the test naming its package.

mod common;
#[path = "../../../tests/common/tools.rs"]
mod tools;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::fake_daemon::FakeDaemon;
use common::xdisplay::{Screen, count_color, spawn_window, wait_for};
use libtest_mimic::{Arguments, Trial};
use zos_netproto::Level;
use zos_netproto::control::{Reply, Request};
use zos_netproto::discovery::HostInfo;

const INNER: &str = "ZOS_GUI_TEST_WINDOW_FLAG";

fn main() {
    if let Some(flag) = std::env::var_os(INNER) {
        return inner(PathBuf::from(flag));
    }
    let trials = vec![Trial::test("window_on_xvfb_shows_hosts_live", || {
        window_on_xvfb_shows_hosts_live();
        Ok(())
    })];
    libtest_mimic::run(&Arguments::from_args(), trials).exit();
}

fn window_on_xvfb_shows_hosts_live() {
    tools::require_all(&["Xvfb", "xwininfo", "import", "convert"]);
    let screen = Screen::start("1024x768x24");
    let display = screen.display.clone();
    let flag = std::env::temp_dir().join(format!("zos-gui-window-test-{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let (window, lines) = spawn_window(&display, &[(INNER, flag.to_str().unwrap())]);
    let wait_for = |wanted: &str| {
        wait_for(&lines, wanted);
    };

    wait_for("window shows 2 hosts: z1, z2");
    // Give it a frame or two to reach the screen.
    std::thread::sleep(Duration::from_millis(500));
    check_window(&screen);

    std::fs::write(&flag, b"z2 leaves").unwrap();
    wait_for("window shows 1 hosts: z1");
    let _ = std::fs::remove_file(&flag);

    // The window is killed, so its fake daemon cannot tidy up after itself.
    let pid = window.0.id();
    drop(window);
    let _ =
        std::fs::remove_dir_all(std::env::temp_dir().join(format!("zos-gui-window-test-{pid}")));
}

/// Title and size with xwininfo, the zombie blue with ImageMagick.
fn check_window(screen: &Screen) {
    let display = screen.display.as_str();
    let out = Command::new("xwininfo")
        .args(["-display", display, "-name", "ZOS master"])
        .output()
        .expect("run xwininfo");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "no window titled ZOS master: {text}");
    assert!(text.contains("Width: 900"), "{text}");
    assert!(text.contains("Height: 600"), "{text}");
    let shot = std::env::temp_dir().join(format!("zos-gui-window-{}.png", std::process::id()));
    screen.screenshot(&shot);
    let blue = count_color(&shot, "#3C8CDC", None);
    let _ = std::fs::remove_file(&shot);
    assert!(blue > 0, "no zombie blue on screen");
}

fn host(name: &str) -> HostInfo {
    HostInfo {
        instance: format!("{name}._zos._tcp.local."),
        name: name.into(),
        host: format!("{name}.local."),
        version: 1,
        fingerprint: format!("{name}-fingerprint"),
        addrs: vec![],
        port: 4000,
        cores: 4,
        load1: 0.3,
        mem_free_mib: 4096,
        levels: vec![Level::Complete],
        dominated: None,
        revoked: false,
    }
}

/// The window itself, in the child process: z2 is listed until `flag` exists.
fn inner(flag: PathBuf) {
    let _ = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter("zos_gui=info")
        .try_init();
    let daemon = FakeDaemon::start("gui-window-test", move |request| match request {
        Request::Hosts => {
            let mut hosts = vec![host("z1")];
            if !flag.exists() {
                hosts.push(host("z2"));
            }
            vec![Reply::Hosts { hosts }]
        }
        Request::Status => vec![Reply::Status(common::migrants::status())],
        _ => vec![Reply::Error {
            message: "not in this test".into(),
        }],
    });
    zos_gui::run(daemon.socket().to_path_buf(), Box::new(|_| Ok(()))).expect("the window runs");
}
