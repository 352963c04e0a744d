//! Issue 4: a master's shared app seen and driven from a dominated zombie
//! through the session, and from the master, by our viewer and by an
//! independent one (TigerVNC's vncviewer); views end with the session. (Since
//! issue 11 the app keeps its own size on a 1280x800 screen, and `zos view`
//! shows its window as a window of its own.)

mod common;

use std::path::Path;

use common::dominated::Dominated;
use common::view::{self, View, XK_RETURN, XTERM_BLUE, XTERM_RED, bar_command, count_rgb};
use common::zos::{self, text};
use common::{Lan, secs};

/// The view tests' setting, checking what `zos dominate` printed.
fn dominated_lan(argv: &[&str]) -> Dominated {
    let d = common::dominated::dominated_lan(argv);
    let shown = &d.dominate_output;
    for part in ["dominating z1 at level complete", "zt", "xt"] {
        assert!(shown.contains(part), "dominate printed {shown:?}");
    }
    d
}

#[test]
fn a_zombie_sees_and_types_into_a_master_app_and_the_master_sees_it() {
    let d = dominated_lan(&["xterm", "-e", "bash", "--norc", "--noprofile"]);
    let (m, z) = (d.lan.host("m"), d.lan.host("z1"));

    // The zombie lists the master's app, as the master's.
    let tasks = zos::json(z, &["tasks", "--json"]);
    let tasks = tasks.as_array().expect("array");
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["id"], 1);
    assert_eq!(tasks[0]["command"][0], "xterm");
    assert!(tasks[0]["host"].is_string(), "{tasks:?}");

    let on_zombie = View::open(z, 1);
    let on_master = View::open(m, 1);
    for (side, v) in [("zombie", &on_zombie), ("master", &on_master)] {
        let frame = v.wait_frame(secs(30), |f| f.width == 1280 && f.height == 800);
        assert!(frame.is_ok(), "{side}: no 1280x800 frame");
    }
    // Both views come from the app's fan-out: Xvnc has one client.
    assert_eq!(app_socket_clients(m), 1, "Xvnc's clients");

    // Typed on the zombie, the command's output shows on the master.
    on_zombie.wait_prompt(secs(30)).expect("the shell's prompt");
    on_zombie.type_text(&bar_command(41, 40));
    on_zombie.key(XK_RETURN);
    let seen = on_master.wait_frame(secs(30), |f| count_rgb(f, XTERM_RED) > 2000);
    if let Err(last) = seen {
        panic!(
            "the master never saw the red bar typed on the zombie (see {})",
            view::save(&last, "master-view-no-red").display()
        );
    }
    // … and on the zombie too: both views show the same screen.
    assert!(
        on_zombie
            .wait_frame(secs(30), |f| count_rgb(f, XTERM_RED) > 2000)
            .is_ok()
    );

    // The other way round: typed on the master, seen on the zombie.
    on_master.type_text(&bar_command(44, 40));
    on_master.key(XK_RETURN);
    let seen = on_zombie.wait_frame(secs(30), |f| count_rgb(f, XTERM_BLUE) > 2000);
    assert!(
        seen.is_ok(),
        "the zombie never saw the blue bar typed on the master"
    );
    let a = on_master
        .wait_frame(secs(30), |f| count_rgb(f, XTERM_BLUE) > 2000)
        .unwrap();
    let b = on_zombie.frame();
    assert_eq!(
        (count_rgb(&a, XTERM_RED), count_rgb(&a, XTERM_BLUE)),
        (count_rgb(&b, XTERM_RED), count_rgb(&b, XTERM_BLUE)),
        "both sides show the same screen"
    );
}

#[test]
fn clicks_and_the_wheel_from_the_zombie_reach_the_app() {
    let lan_log = "xev.log";
    let d = dominated_lan(&["sh", "-c", &format!("exec xev > {lan_log}")]);
    let (m, z) = (d.lan.host("m"), d.lan.host("z1"));
    let log = m.home.join(lan_log);
    let on_zombie = View::open(z, 1);
    on_zombie
        .wait_frame(secs(30), |f| f.width > 0)
        .expect("a frame");
    // xev's window is at the top left corner of its display (a loaded machine may take a
    // while to show it).
    let seen = common::until(secs(40), || {
        on_zombie.click(40, 40, 1);
        on_zombie.click(40, 40, 4);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (text.contains("ButtonPress event") && text.contains("button 1,")).then_some(text)
    })
    .expect("xev never logged the click from the zombie");
    assert!(
        seen.contains("button 4,"),
        "the wheel did not reach xev:\n{seen}"
    );
}

/// The RFB socket of the master's only shared app.
fn app_socket(master_runtime: &Path) -> std::path::PathBuf {
    for dir in std::fs::read_dir(master_runtime).unwrap().flatten() {
        for e in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("xvnc-") && name.ends_with(".sock") {
                return e.path();
            }
        }
    }
    panic!("no app socket under {}", master_runtime.display());
}

/// How many connections the app's Xvnc has accepted on its RFB socket and
/// still holds (from `ss`, in the master's network namespace).
fn app_socket_clients(m: &common::Host) -> usize {
    let socket = app_socket(&m.runtime);
    let out = m.exec("ss", &["-xH", "state", "connected"]);
    text(&out)
        .lines()
        .filter(|l| l.split_whitespace().any(|w| Path::new(w) == socket))
        .count()
}

#[test]
fn tigervnc_vncviewer_on_the_master_shows_what_the_zombie_typed() {
    let d = dominated_lan(&["xterm", "-e", "bash", "--norc", "--noprofile"]);
    let (m, z) = (d.lan.host("m"), d.lan.host("z1"));
    let on_zombie = View::open(z, 1);
    // Keys typed before the xterm and its shell are up may be lost on a loaded machine (a
    // full run beside a CPU burner once typed into nothing).
    on_zombie.wait_prompt(secs(30)).expect("the shell's prompt");
    on_zombie.type_text(&bar_command(41, 60));
    on_zombie.key(XK_RETURN);
    on_zombie
        .wait_frame(secs(30), |f| count_rgb(f, XTERM_RED) > 3000)
        .expect("the bar on the zombie's own view");

    // An independent client, on the master's screen, on the app's socket.
    let screen = m.xvfb();
    let socket = app_socket(&m.runtime);
    let _vncviewer = m.spawn_program(
        "vncviewer",
        &[
            "-display",
            &screen.display,
            "-FullScreen=0",
            "-geometry",
            "1280x800+0+0",
            socket.to_str().unwrap(),
        ],
        &[],
    );
    let png = common::screen::screenshot_dir().join("vncviewer-master.png");
    let red = common::until(secs(20), || {
        common::screen::screenshot(m, &screen.display, &png);
        let n = common::screen::count_pixels(m, &png, XTERM_RED);
        (n > 3000).then_some(n)
    });
    assert!(
        red.is_some(),
        "vncviewer never showed the red bar (see {})",
        png.display()
    );
}

#[test]
fn views_close_and_the_list_empties_when_the_domination_ends() {
    let d = dominated_lan(&["xterm"]);
    let (m, z) = (d.lan.host("m"), d.lan.host("z1"));
    let on_zombie = View::open(z, 1);
    on_zombie.wait_frame(secs(30), |f| f.width > 0).unwrap();
    // A task registered during the domination is announced live, and so is
    // its end.
    let count = || zos::json(z, &["tasks", "--json"]).as_array().map(Vec::len);
    m.run_ok(&["run", "--shared", "--", "xterm", "-e", "sleep", "1000"]);
    assert!(
        common::until(secs(10), || (count() == Some(2)).then_some(())).is_some(),
        "the new task never reached the zombie"
    );
    let pid = zos::json(m, &["tasks", "--json"])[1]["pid"]
        .as_u64()
        .unwrap() as i32;
    // SAFETY: kill(2) on the app this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert!(
        common::until(secs(10), || (count() == Some(1)).then_some(())).is_some(),
        "the ended task stayed listed on the zombie"
    );
    let out = m.run(&["release", "z1"]);
    assert!(out.status.success(), "zos release: {}", text(&out));
    assert!(text(&out).contains("released z1"), "{}", text(&out));
    assert!(
        on_zombie.wait_closed(secs(10)),
        "the zombie's view outlived the release"
    );
    let tasks = zos::json(z, &["tasks", "--json"]);
    assert_eq!(tasks.as_array().map(Vec::len), Some(0), "{tasks}");
    // Nothing to view any more, with a clear reason.
    let out = z.run(&["view", "1", "--snapshot", "/dev/null"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("not dominated"),
        "unclear error: {}",
        text(&out)
    );
    // The master's own view of its app is unaffected.
    let on_master = View::open(m, 1);
    assert!(on_master.wait_frame(secs(30), |f| f.width > 0).is_ok());
    drop(d.zombie);
    drop(d.master);
}

#[test]
fn a_zombie_whose_master_vanishes_ends_the_lease_and_closes_views() {
    let d = dominated_lan(&["xterm"]);
    let (m, z) = (d.lan.host("m"), d.lan.host("z1"));
    let on_zombie = View::open(z, 1);
    on_zombie.wait_frame(secs(30), |f| f.width > 0).unwrap();
    // The master's cable is pulled: no goodbye, no TCP reset.
    m.link_down();
    let started = std::time::Instant::now();
    d.zombie.proc.wait_log("its lease ended", secs(15));
    assert!(
        on_zombie.wait_closed(secs(5)),
        "the view outlived the lease"
    );
    let tasks = zos::json(z, &["tasks", "--json"]);
    assert_eq!(tasks.as_array().map(Vec::len), Some(0), "{tasks}");
    eprintln!(
        "lease ended {:.1} s after the cable was pulled",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn only_paired_masters_dominate_and_one_at_a_time() {
    let lan = Lan::new(&["m", "m2", "z1"]);
    let (m, m2, z) = (lan.host("m"), lan.host("m2"), lan.host("z1"));
    let _master = zos::start_master(m);
    let _master2 = zos::start_master(m2);
    let _zombie = zos::start_zombie(z, "z1", &["--auto-accept"]);
    zos::pair(m, z, "z1", "partial");
    // Asking for more than the trust entry allows gives what it allows.
    let out = m.run(&["dominate", "z1", "--level", "complete"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("at level partial"), "{}", text(&out));
    let status = zos::json(z, &["status", "--json"]);
    assert_eq!(status["sessions"][0]["dominating"], "partial", "{status}");
    // An unpaired master is refused.
    zos::wait_listed(m2, "z1", zos::DISCOVERY).expect("m2 sees z1");
    let out = m2.run(&["dominate", "z1"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("not paired"), "{}", text(&out));
    // A second paired master is refused while the first dominates.
    let code = zos::pair_code(z, "complete");
    m2.run_ok(&["pair", "z1", "--code", &code]);
    let out = m2.run(&["dominate", "z1"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("already dominated by"),
        "{}",
        text(&out)
    );
    // Once the first lets go, the second may.
    m.run_ok(&["release", "z1"]);
    let out = m2.run(&["dominate", "z1"]);
    assert!(out.status.success(), "{}", text(&out));
    let _ = view::control_socket(z);
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A viewer that does the RFB handshake, asks for many full updates and then
/// never reads again: the worst a stuck viewer can do.
fn stalled_viewer(host: &common::Host, task: u64) -> std::os::unix::net::UnixStream {
    use std::io::{Read, Write};
    let mut s = zos_netproto::control::open_stream(
        &view::control_socket(host),
        &zos_netproto::control::Request::View { task },
    )
    .expect("view stream");
    let mut version = [0u8; 12];
    s.read_exact(&mut version).unwrap();
    assert_eq!(&version, b"RFB 003.008\n");
    s.write_all(b"RFB 003.008\n").unwrap();
    let mut n = [0u8; 1];
    s.read_exact(&mut n).unwrap();
    let mut types = vec![0u8; usize::from(n[0])];
    s.read_exact(&mut types).unwrap();
    assert!(types.contains(&1), "security type None offered: {types:?}");
    s.write_all(&[1]).unwrap();
    let mut result = [0u8; 4];
    s.read_exact(&mut result).unwrap();
    assert_eq!(result, [0; 4], "security result");
    s.write_all(&[1]).unwrap(); // ClientInit: shared
    let mut init = [0u8; 24];
    s.read_exact(&mut init).unwrap();
    let name_len = u32::from_be_bytes(init[20..24].try_into().unwrap()) as usize;
    let mut name = vec![0u8; name_len];
    s.read_exact(&mut name).unwrap();
    let (w, h) = (
        u16::from_be_bytes([init[0], init[1]]),
        u16::from_be_bytes([init[2], init[3]]),
    );
    s.write_all(&[2, 0, 0, 1, 0, 0, 0, 0]).unwrap(); // SetEncodings: Raw only
    let mut request = vec![3u8, 0, 0, 0, 0, 0];
    request.extend_from_slice(&w.to_be_bytes());
    request.extend_from_slice(&h.to_be_bytes());
    for _ in 0..50 {
        s.write_all(&request).unwrap();
    }
    s
}

#[test]
fn a_stalled_viewer_slows_neither_the_app_nor_the_other_viewers() {
    let counter = "counter";
    let script = format!("i=0; while :; do i=$((i+1)); echo $i; echo $i > {counter}; done");
    let d = dominated_lan(&["xterm", "-e", "bash", "-c", &script]);
    let (m, z) = (d.lan.host("m"), d.lan.host("z1"));
    let counter = m.home.join(counter);
    // The loop truncates and rewrites the file: retry a read that falls
    // between the two (for up to 2 s: on a loaded machine bash may be
    // descheduled in between for a while, which is no stall of the app).
    let read_counter = || -> u64 {
        common::until(secs(2), || {
            std::fs::read_to_string(&counter)
                .ok()
                .and_then(|s| s.trim().parse().ok())
        })
        .unwrap_or(0)
    };
    let on_master = View::open(m, 1);
    let on_zombie = View::open(z, 1);
    on_zombie.wait_frame(secs(30), |f| f.width > 0).unwrap();
    assert!(
        common::until(secs(10), || (read_counter() > 0).then_some(())).is_some(),
        "the app never ran: no {}",
        counter.display()
    );

    let _stuck = stalled_viewer(z, 1);
    let _stuck_too = stalled_viewer(m, 1);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let rss_before = [rss_kib(d.master.pid()), rss_kib(d.zombie.proc.pid())];
    // For several seconds, both healthy views keep changing and the app
    // keeps running.
    for round in 0..4 {
        let (c0, vm0, vz0) = (
            read_counter(),
            on_master.frame().version,
            on_zombie.frame().version,
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
        let (c1, vm1, vz1) = (
            read_counter(),
            on_master.frame().version,
            on_zombie.frame().version,
        );
        assert!(c1 > c0, "round {round}: the app stalled ({c0} → {c1})");
        assert!(vm1 > vm0, "round {round}: the master's view stalled");
        assert!(vz1 > vz0, "round {round}: the zombie's other view stalled");
    }
    // The stuck viewers really are behind: updates wait unread for them.
    for stuck in [&_stuck, &_stuck_too] {
        let mut queued: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int to the pointer given.
        let rc = unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(stuck),
                libc::FIONREAD,
                &mut queued,
            )
        };
        assert_eq!(rc, 0);
        assert!(
            queued > 64 << 10,
            "only {queued} bytes wait for a stuck viewer"
        );
    }
    let rss_after = [rss_kib(d.master.pid()), rss_kib(d.zombie.proc.pid())];
    for (who, (a, b)) in ["master", "zombie"]
        .iter()
        .zip(rss_before.iter().zip(rss_after.iter()))
    {
        assert!(
            *b < *a + 64 * 1024,
            "the {who} daemon's memory grew from {a} to {b} KiB behind a stalled viewer"
        );
    }
}

#[test]
fn zos_view_on_the_zombie_opens_a_window_that_shows_and_drives_the_app() {
    let d = dominated_lan(&["xterm", "-e", "bash", "--norc", "--noprofile"]);
    let (m, z) = (d.lan.host("m"), d.lan.host("z1"));
    let screen = z.xvfb();
    let _window = z.spawn_env(&["view", "1"], &[("DISPLAY", &screen.display)]);
    // The app's window appears as a window of its own, titled with its title, the app and
    // its master.
    let found = common::until(secs(20), || {
        let out = z.exec_env(
            "xdotool",
            &[
                "search",
                "--onlyvisible",
                "--name",
                " xterm on .* \\(task 1\\)$",
            ],
            &[("DISPLAY", &screen.display)],
        );
        let id = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()?
            .to_string();
        Some(id)
    })
    .expect("no viewer window on the zombie's screen");
    // Once it shows the app (xterm's white page, 80x24 cells: the app keeps its size) …
    let png = common::screen::screenshot_dir().join("zombie-viewer-window.png");
    let up = common::until(secs(20), || {
        common::screen::screenshot(z, &screen.display, &png);
        (common::screen::count_pixels(z, &png, [255, 255, 255]) > 100_000).then_some(())
    });
    assert!(
        up.is_some(),
        "the window never showed the app (see {})",
        png.display()
    );
    // … what is typed into the window on the zombie's screen …
    let env = [("DISPLAY", screen.display.as_str())];
    z.exec_env("xdotool", &["windowfocus", "--sync", &found], &env);
    let command = bar_command(41, 40);
    z.exec_env("xdotool", &["type", "--delay", "15", &command], &env);
    z.exec_env("xdotool", &["key", "Return"], &env);
    // … shows in that window …
    let shown = common::until(secs(15), || {
        common::screen::screenshot(z, &screen.display, &png);
        (common::screen::count_pixels(z, &png, XTERM_RED) > 2000).then_some(())
    });
    assert!(
        shown.is_some(),
        "the zombie's window never showed the red bar (see {})",
        png.display()
    );
    // … and on the master, from the same app.
    let on_master = View::open(m, 1);
    assert!(
        on_master
            .wait_frame(secs(30), |f| count_rgb(f, XTERM_RED) > 2000)
            .is_ok(),
        "the master does not see what was typed in the zombie's window"
    );
    // Releasing the zombie closes its window.
    m.run_ok(&["release", "z1"]);
    let mut window = _window;
    assert!(
        window.wait_exit(secs(10)).is_some(),
        "the viewer window outlived the domination"
    );
}
