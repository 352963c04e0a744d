//! Issue 11: shared apps that behave like local windows, end to end — a master and a zombie
//! it dominates, each with an Xvfb screen, `zos view TASK` on both. A shared
//! `xclock -geometry 200x200` opens as a 200×200 window (not a full-screen one) on the master
//! and on the zombie that asked for it, with and without a window manager (openbox), and
//! nothing else covers the screen; the clipboard goes both ways between xclip on the zombie's
//! screen and xclip on the app's display on the master. Screenshots are kept under
//! `target/e2e-screenshots/seamless-*.png`.

mod common;

use std::path::PathBuf;

use common::dominated::dominated_lan;
use common::screen::{screenshot, screenshot_dir};
use common::zos::{self, text};
use common::{Host, Proc, secs};

/// A screen of a host: its Xvfb and, if asked, an openbox on it.
struct Screen {
    xvfb: common::xvfb::Xvfb,
    _wm: Option<Proc>,
}

impl Screen {
    fn start(host: &Host, with_wm: bool) -> Screen {
        let xvfb = host.xvfb();
        let wm = with_wm.then(|| {
            let wm =
                host.spawn_program("openbox", &["--sm-disable"], &[("DISPLAY", &xvfb.display)]);
            let running = common::until(secs(10), || {
                let out = host.exec_env(
                    "xprop",
                    &["-root", "_NET_SUPPORTING_WM_CHECK"],
                    &[("DISPLAY", &xvfb.display)],
                );
                text(&out).contains("window id").then_some(())
            });
            assert!(running.is_some(), "{}: openbox did not start", host.label);
            wm
        });
        Screen { xvfb, _wm: wm }
    }

    fn env(&self) -> [(&str, &str); 1] {
        [("DISPLAY", self.xvfb.display.as_str())]
    }
}

/// The visible windows on `screen` whose name matches `pattern`, with their geometry
/// (x, y, width, height).
fn windows(host: &Host, screen: &Screen, pattern: &str) -> Vec<(String, [i32; 4])> {
    let out = host.exec_env(
        "xdotool",
        &["search", "--onlyvisible", "--name", pattern],
        &screen.env(),
    );
    // Window ids only: xdotool's stderr (an X error for a window that went away meanwhile)
    // is not one, and xwininfo without a valid id would wait for a click.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|id| {
            let info = text(&host.exec_env("xwininfo", &["-id", id], &screen.env()));
            let get = |name: &str| -> Option<i32> {
                info.lines()
                    .find_map(|l| l.trim().strip_prefix(name))?
                    .trim()
                    .parse()
                    .ok()
            };
            let g = [
                get("Absolute upper-left X:")?,
                get("Absolute upper-left Y:")?,
                get("Width:")?,
                get("Height:")?,
            ];
            Some((id.to_owned(), g))
        })
        .collect()
}

/// Pixels of exactly `rgb` inside `rect` of a screenshot.
fn count_in(host: &Host, png: &std::path::Path, rect: [i32; 4], rgb: [u8; 3]) -> usize {
    let crop = format!("{}x{}+{}+{}", rect[2], rect[3], rect[0], rect[1]);
    let out = host.exec(
        "convert",
        &[
            png.to_str().unwrap(),
            "-crop",
            &crop,
            "-depth",
            "8",
            "rgb:-",
        ],
    );
    out.stdout.chunks_exact(3).filter(|p| *p == rgb).count()
}

/// `zos view 1` on `host`'s `screen` opens the clock as a 200×200 window, the only one.
fn clock_opens_at_its_size(host: &Host, screen: &Screen, shot: &str) -> Proc {
    let viewer = host.spawn_env(&["view", "1"], &screen.env());
    let pattern = r"^xclock .* xclock on .* \(task 1\)$";
    let found = common::until(secs(30), || {
        let w = windows(host, screen, pattern);
        (w.len() == 1).then(|| w[0].clone())
    });
    let Some((_, g)) = found else {
        host.dump_logs();
        panic!("{}: no clock window on its screen", host.label);
    };
    assert_eq!(
        (g[2], g[3]),
        (200, 200),
        "{}: the clock window is {g:?}",
        host.label
    );
    // Nothing else of ours covers the screen: every visible window of the view is the clock's.
    let all = windows(host, screen, r"\(task 1\)");
    assert_eq!(all.len(), 1, "{}: windows of the view: {all:?}", host.label);
    // It shows the clock: the face is white, with dark hands and marks.
    let png = screenshot_dir().join(format!("{shot}.png"));
    let drawn = common::until(secs(20), || {
        screenshot(host, &screen.xvfb.display, &png);
        let white = count_in(host, &png, g, [255, 255, 255]);
        let black = count_in(host, &png, g, [0, 0, 0]);
        (white > 25_000 && black > 300).then_some(())
    });
    assert!(
        drawn.is_some(),
        "{}: the clock window does not show a clock (see {})",
        host.label,
        png.display()
    );
    viewer
}

fn xclock_is_a_200x200_window_on_both_sides(master_wm: bool, zombie_wm: bool, tag: &str) {
    let d = dominated_lan(&["xclock", "-geometry", "200x200"]);
    let (m, z) = (d.lan.host("m"), d.lan.host("z1"));
    let on_master = Screen::start(m, master_wm);
    let on_zombie = Screen::start(z, zombie_wm);
    let _mv = clock_opens_at_its_size(m, &on_master, &format!("seamless-{tag}-master"));
    let _zv = clock_opens_at_its_size(z, &on_zombie, &format!("seamless-{tag}-zombie"));
    // The app's screen was not made to fit a viewer: it holds the clock, whatever the views.
    let tasks = zos::json(m, &["tasks", "--json"]);
    assert_eq!(tasks[0]["command"][0], "xclock", "{tasks}");
}

#[test]
fn a_shared_xclock_is_a_200x200_window_on_the_master_and_on_a_zombie_without_window_managers() {
    xclock_is_a_200x200_window_on_both_sides(false, false, "bare");
}

#[test]
fn a_shared_xclock_is_a_200x200_window_on_the_master_and_on_a_zombie_under_openbox() {
    xclock_is_a_200x200_window_on_both_sides(true, true, "openbox");
}

/// The master's app display: `DISPLAY` and `XAUTHORITY` for X tools run on the master.
fn app_display(m: &Host) -> (String, PathBuf) {
    let tasks = zos::json(m, &["tasks", "--json"]);
    let display = tasks[0]["display"]
        .as_str()
        .expect("the task's display")
        .to_owned();
    let mut cookies = Vec::new();
    for dir in std::fs::read_dir(&m.runtime).unwrap().flatten() {
        for e in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("xvnc-") && name.ends_with(".xauth") {
                cookies.push(e.path());
            }
        }
    }
    assert_eq!(cookies.len(), 1, "app cookies {cookies:?}");
    (display, cookies.remove(0))
}

#[test]
fn the_clipboard_goes_both_ways_between_a_zombie_window_and_the_master_app() {
    let d = dominated_lan(&["xterm"]);
    let (m, z) = (d.lan.host("m"), d.lan.host("z1"));
    let screen = Screen::start(z, false);
    let _viewer = z.spawn_env(&["view", "1"], &screen.env());
    let found = common::until(secs(30), || {
        (windows(z, &screen, r"\(task 1\)").len() == 1).then_some(())
    });
    assert!(found.is_some(), "no viewer window on the zombie");
    let (display, cookie) = app_display(m);
    let app_env = [
        ("DISPLAY", display.as_str()),
        ("XAUTHORITY", cookie.to_str().unwrap()),
    ];
    let read = |host: &Host, env: &[(&str, &str)], selection: &str| {
        let out = host.exec_env("xclip", &["-o", "-selection", selection], env);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };

    // Copied on the zombie's screen: the master's app can paste it.
    let copied = "copied on the zombie ✓ ünïcode";
    let _xclip = z.spawn_program(
        "sh",
        &[
            "-c",
            &format!("printf %s '{copied}' | exec xclip -quiet -selection clipboard -i"),
        ],
        &screen.env(),
    );
    let got = common::until(secs(15), || {
        (read(m, &app_env, "clipboard").as_deref() == Some(copied)).then_some(())
    });
    assert!(
        got.is_some(),
        "the app's clipboard is {:?}",
        read(m, &app_env, "clipboard")
    );

    // Copied in the app on the master: the zombie's screen has it, as CLIPBOARD and PRIMARY.
    let from_app = "copied in the app ✓ — 日本語";
    let _xclip_app = m.spawn_program(
        "sh",
        &[
            "-c",
            &format!("printf %s '{from_app}' | exec xclip -quiet -selection clipboard -i"),
        ],
        &app_env,
    );
    for selection in ["clipboard", "primary"] {
        let got = common::until(secs(15), || {
            (read(z, &screen.env(), selection).as_deref() == Some(from_app)).then_some(())
        });
        assert!(
            got.is_some(),
            "the zombie's {selection} is {:?}",
            read(z, &screen.env(), selection)
        );
    }
}
