//! Issue 11: the zombie's user stays in control. A zombie with a display
//! asks with a window of ours (answered here with xdotool, bare and under a
//! window manager), and with a desktop notification where a notification
//! server runs (a real one, dunst, on a D-Bus session bus); `Ctrl-C` on
//! `zos dominate` withdraws the request at once; the zombie's user ends a
//! domination with the status window's Release or `zos release`, which ends
//! the master's session; a master revoked by the zombie's user learns it.
//! Screenshots of the consent and status windows are kept in
//! `target/e2e-screenshots/` for a person to look at.

mod common;

use common::notifications::Notifications;
use common::zos::{self, text};
use common::{Host, Lan, Proc, secs};

/// Logs where our windows' buttons are (window-relative pixels).
const LAYOUT_LOG: &str = "info,zos_gui::ui::layout_log=debug";

/// A rectangle from the last `layout: NAME at x=… y=… w=… h=…` line.
fn layout(log: &str, name: &str) -> Option<(i32, i32, i32, i32)> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains(&format!("layout: {name} at ")))?;
    let numbers: Vec<i32> = line
        .rsplit(" at ")
        .next()?
        .split_whitespace()
        .filter_map(|kv| kv.split_once('=')?.1.parse().ok())
        .collect();
    match numbers[..] {
        [x, y, w, h] => Some((x, y, w, h)),
        _ => None,
    }
}

/// The id of the visible window whose name matches `pattern`.
fn window(host: &Host, display: &str, pattern: &str) -> Option<String> {
    let out = host.exec_env(
        "xdotool",
        &["search", "--onlyvisible", "--name", pattern],
        &[("DISPLAY", display)],
    );
    let id = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()?
        .trim()
        .to_string();
    (!id.is_empty()).then_some(id)
}

/// A window's size, from `xdotool getwindowgeometry`.
fn window_size(host: &Host, display: &str, id: &str) -> (i32, i32) {
    let out = host.exec_env(
        "xdotool",
        &["getwindowgeometry", id],
        &[("DISPLAY", display)],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let geometry = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Geometry: "))
        .unwrap_or_else(|| panic!("no geometry in {text:?}"));
    let (w, h) = geometry.split_once('x').unwrap();
    (w.parse().unwrap(), h.parse().unwrap())
}

/// Clicks the middle of `area` in window `id`, raised first (as a user
/// brings a window to the front; another window may have opened over it).
fn click(host: &Host, display: &str, id: &str, area: (i32, i32, i32, i32)) {
    let (x, y) = (area.0 + area.2 / 2, area.1 + area.3 / 2);
    let out = host.exec_env(
        "xdotool",
        &[
            "windowraise",
            id,
            "sleep",
            "0.3",
            "mousemove",
            "--window",
            id,
            &x.to_string(),
            &y.to_string(),
            "click",
            "1",
        ],
        &[("DISPLAY", display)],
    );
    assert!(out.status.success(), "xdotool: {}", text(&out));
}

/// Waits until the window matching `pattern` shows and its logged `button`
/// lies inside it; saves a screenshot as `png`; returns the window's id.
fn shown_whole(
    z: &Host,
    display: &str,
    zombie: &Proc,
    pattern: &str,
    button: &str,
    png: &str,
) -> String {
    let id = common::until(secs(30), || window(z, display, pattern))
        .unwrap_or_else(|| panic!("no window {pattern:?}:\n{}", zombie.log()));
    let area = common::until(secs(15), || layout(&zombie.log(), button))
        .unwrap_or_else(|| panic!("{button} never drawn:\n{}", zombie.log()));
    // Nothing cut off: the window fits the 1280x800 screen and holds the
    // button whole.
    let (w, h) = window_size(z, display, &id);
    assert!(w <= 1280 && h <= 800, "{pattern}: {w}x{h}");
    assert!(
        area.0 >= 0 && area.1 >= 0 && area.0 + area.2 <= w && area.1 + area.3 <= h,
        "{button} at {area:?} is outside the {w}x{h} window"
    );
    let shot = common::screen::screenshot_dir().join(png);
    std::thread::sleep(secs(1));
    common::screen::screenshot(z, display, &shot);
    eprintln!("screenshot: {}", shot.display());
    id
}

/// The master's live sessions, from `zos status --json`.
fn master_sessions(m: &Host) -> usize {
    zos::json(m, &["status", "--json"])["sessions"]
        .as_array()
        .map_or(0, Vec::len)
}

/// The consent window answered with xdotool (showing the master's apps),
/// then the status window's Release.
fn consent_and_release_by_window(wm: Option<&str>) {
    let label = wm.unwrap_or("bare");
    let lan = Lan::new(&["m", "z1"]);
    let (m, z) = (lan.host("m"), lan.host("z1"));
    let master = zos::start_master_with(m, &["--name", "laptop"]);
    m.run_ok(&["run", "--shared", "--", "xterm"]);
    let screen = z.xvfb();
    let display = screen.display.clone();
    let _wm = wm.map(|wm| z.spawn_program(wm, &[], &[("DISPLAY", &display)]));
    // No ZOS session (issue 12): the viewer the user asks for opens on the
    // zombie's own screen, where this test looks.
    let zombie = z.spawn_env(
        &["zombie", "--name", "z1", "--no-session"],
        &[("DISPLAY", &display), ("RUST_LOG", LAYOUT_LOG)],
    );
    zombie.wait_log("listening on", zos::STARTUP);
    zos::pair(m, z, "z1", "complete");

    let mut dominate = m.spawn(&["dominate", "z1"]);
    zombie.wait_log("consent prompt: ZOS: laptop asks to dominate z1", secs(30));
    let id = shown_whole(
        z,
        &display,
        &zombie,
        "laptop asks to dominate z1",
        "consent Accept",
        &format!("zombie-consent-{label}.png"),
    );
    let log = zombie.log();
    click(z, &display, &id, layout(&log, "consent show apps").unwrap());
    click(z, &display, &id, layout(&log, "consent Accept").unwrap());
    let status = dominate.wait_exit(secs(20)).expect("zos dominate returns");
    assert!(status.success(), "{}", dominate.log());
    assert!(dominate.log().contains("dominating z1 at level complete"));
    zombie.wait_log("the user accepted laptop, showing its apps", secs(5));
    assert!(
        common::until(secs(5), || window(z, &display, "laptop asks")
            .is_none()
            .then_some(()))
        .is_some(),
        "the consent window stayed after the answer"
    );
    // "Show the master's apps": a viewer of its xterm opens here.
    common::until(secs(30), || {
        // A seamless viewer window: "WINDOW TITLE — xterm on laptop (task 1)".
        window(z, &display, "xterm on laptop \\(task 1\\)$")
    })
    .unwrap_or_else(|| panic!("no viewer of the master's xterm:\n{}", zombie.log()));

    // The status window: Release ends the master's session.
    let id = shown_whole(
        z,
        &display,
        &zombie,
        "^ZOS zombie$",
        "status Release",
        &format!("zombie-status-{label}.png"),
    );
    assert_eq!(master_sessions(m), 1);
    click(
        z,
        &display,
        &id,
        layout(&zombie.log(), "status Release").unwrap(),
    );
    zombie.wait_log("the user ends the domination by laptop", secs(10));
    assert!(
        common::until(secs(15), || (master_sessions(m) == 0).then_some(())).is_some(),
        "the master still holds the zombie:\n{}",
        master.log()
    );
    master.wait_log("released at z1's request", secs(5));
    assert!(
        common::until(secs(10), || (window(z, &display, "^ZOS zombie$").is_none()
            && window(z, &display, "xterm on laptop").is_none())
        .then_some(()))
        .is_some(),
        "the status window or the viewer outlived the domination"
    );
}

#[test]
fn the_consent_window_answered_with_xdotool_and_the_status_windows_release() {
    consent_and_release_by_window(None);
}

#[test]
fn the_consent_window_and_the_status_window_under_a_window_manager() {
    consent_and_release_by_window(Some("openbox"));
}

#[test]
fn a_real_notification_servers_action_answers_the_request_and_it_goes_when_answered_elsewhere() {
    let lan = Lan::new(&["m", "z1"]);
    let (m, z) = (lan.host("m"), lan.host("z1"));
    let _master = zos::start_master_with(m, &["--name", "laptop"]);
    let screen = z.xvfb();
    let notifications = Notifications::start(z, &screen.display, "Refuse");
    // A zombie with a session bus but no display: it asks by notification only.
    let zombie = z.spawn_env(
        &["zombie", "--name", "z1"],
        &[("DBUS_SESSION_BUS_ADDRESS", &notifications.bus_address)],
    );
    zombie.wait_log("listening on", zos::STARTUP);
    zos::pair(m, z, "z1", "complete");

    let mut dominate = m.spawn(&["dominate", "z1"]);
    common::until(secs(30), || (notifications.displayed() == 1).then_some(())).unwrap_or_else(
        || {
            panic!(
                "no notification:\n{}\n{}",
                zombie.log(),
                notifications.log()
            )
        },
    );
    notifications.pick_action();
    zombie.wait_log(
        "answered from the notification: Answer { accept: false",
        secs(10),
    );
    dominate.wait_exit(secs(10)).expect("zos dominate returns");
    assert!(dominate.log().contains("refused"), "{}", dominate.log());
    assert!(
        common::until(secs(5), || (notifications.displayed() == 0).then_some(())).is_some(),
        "the notification stayed"
    );

    // Answered elsewhere (`zos accept`): the notification goes at once.
    let mut dominate = m.spawn(&["dominate", "z1"]);
    common::until(secs(30), || (notifications.displayed() == 1).then_some(()))
        .expect("a second notification");
    z.run_ok(&["accept"]);
    assert!(
        dominate
            .wait_exit(secs(10))
            .expect("dominate returns")
            .success()
    );
    assert!(
        common::until(secs(5), || (notifications.displayed() == 0).then_some(())).is_some(),
        "the notification outlived the answer"
    );
}

#[test]
fn ctrl_c_on_zos_dominate_withdraws_the_request_at_once() {
    let lan = Lan::new(&["m", "z1"]);
    let (m, z) = (lan.host("m"), lan.host("z1"));
    let _master = zos::start_master_with(m, &["--name", "laptop"]);
    let screen = z.xvfb();
    let zombie = z.spawn_env(&["zombie", "--name", "z1"], &[("DISPLAY", &screen.display)]);
    zombie.wait_log("listening on", zos::STARTUP);
    zos::pair(m, z, "z1", "complete");
    let mut dominate = m.spawn(&["dominate", "z1"]);
    common::until(secs(30), || {
        window(z, &screen.display, "laptop asks to dominate")
    })
    .expect("the consent window");
    assert!(
        dominate.log().contains("Ctrl-C withdraws the request"),
        "{}",
        dominate.log()
    );
    dominate.signal(libc::SIGINT);
    dominate
        .wait_exit(secs(5))
        .expect("zos dominate ends on Ctrl-C");
    let withdrawn = std::time::Instant::now();
    let gone = common::until(secs(5), || {
        zos::json(z, &["status", "--json"])["asking"]
            .is_null()
            .then_some(())
    });
    assert!(gone.is_some(), "the request still waits:\n{}", zombie.log());
    assert!(
        withdrawn.elapsed() < secs(3),
        "withdrawn after {:?}",
        withdrawn.elapsed()
    );
    zombie.wait_log("master laptop withdrew its request", secs(5));
    assert!(
        common::until(secs(5), || window(z, &screen.display, "laptop asks")
            .is_none()
            .then_some(()))
        .is_some(),
        "the consent window stayed"
    );
}

#[test]
fn zos_release_on_the_zombie_ends_the_masters_session_and_a_revoked_master_is_told() {
    let lan = Lan::new(&["m", "z1"]);
    let (m, z) = (lan.host("m"), lan.host("z1"));
    let master = zos::start_master_with(m, &["--name", "laptop"]);
    let _zombie = zos::start_zombie(z, "z1", &["--auto-accept"]);
    zos::pair(m, z, "z1", "complete");
    m.run_ok(&["dominate", "z1"]);
    assert_eq!(master_sessions(m), 1);
    // A name that is not the master's is refused, saying who dominates.
    let out = z.run(&["release", "desk"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("dominated by laptop"), "{}", text(&out));
    let out = z.run_ok(&["release"]);
    assert!(out.contains("released laptop"), "{out}");
    assert_eq!(master_sessions(m), 0);
    master.wait_log("released at z1's request", secs(5));
    let out = z.run(&["release"]);
    assert!(text(&out).contains("not dominated"), "{}", text(&out));

    // Dominated again, then the zombie's user revokes the master.
    m.run_ok(&["dominate", "z1"]);
    z.run_ok(&["trust", "revoke", "laptop"]);
    let host = common::until(secs(15), || {
        zos::hosts(m)
            .into_iter()
            .find(|h| h["name"] == "z1" && h["revoked"] == true)
    });
    assert!(host.is_some(), "the master never learnt:\n{}", master.log());
    let out = m.run(&["dominate", "z1"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("not trusted by z1 any more"),
        "{}",
        text(&out)
    );
    // Paired again: trusted again.
    let code = zos::pair_code(z, "complete");
    m.run_ok(&["pair", "z1", "--code", &code]);
    let hosts = zos::hosts(m);
    assert!(
        hosts
            .iter()
            .any(|h| h["name"] == "z1" && h["revoked"].is_null()),
        "{hosts:?}"
    );
}
