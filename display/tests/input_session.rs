//! The ZOS session and input redirection on real X servers, without a
//! network: Xvfb stands for each machine's screen, Xephyr (our
//! `ZosSession`) for the session, xev and xdotool are the independent
//! witnesses.

mod common;

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{RuntimeDir, init_tracing};
use zos_display::input::{
    Capture, CaptureEvent, CaptureOptions, ClipboardAgent, Hotkey, Injector, InputEvent, Selection,
    denormalise,
};
use zos_display::{SessionOptions, ZosSession};

/// An Xvfb on a display it picks; killed on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start(geometry: &str) -> Xvfb {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills the two-element array it is given.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both descriptors were just made by pipe2 and are owned only here.
        let (read_end, write_end) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let wfd = write_end.as_raw_fd();
        let mut cmd = Command::new("Xvfb");
        cmd.args(["-displayfd", &wfd.to_string(), "-screen", "0", geometry])
            .args(["-nolisten", "tcp", "-noreset"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: runs between fork and exec and only calls fcntl, which is
        // async-signal-safe: the pipe's write end survives exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::fcntl(wfd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("Xvfb is installed (package xvfb)");
        drop(write_end);
        let mut text = String::new();
        std::fs::File::from(read_end)
            .read_to_string(&mut text)
            .unwrap();
        Xvfb {
            child,
            display: format!(":{}", text.trim()),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn session_on(screen: &Xvfb, dir: &Path, windowed: Option<(u16, u16)>) -> ZosSession {
    ZosSession::start(&SessionOptions {
        runtime_dir: dir.to_path_buf(),
        host_display: screen.display.clone(),
        host_xauthority: None,
        windowed,
        title: "ZOS session of test".into(),
        panel_text: "ZOS session of test".into(),
    })
    .expect("Xephyr starts (package xserver-xephyr)")
}

/// Runs an X tool on `display` with `xauthority`; its output, or None if it failed.
fn x_tool(
    display: &str,
    xauthority: Option<&Path>,
    program: &str,
    args: &[&str],
) -> Option<String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("DISPLAY", display)
        .env_remove("XAUTHORITY");
    if let Some(path) = xauthority {
        cmd.env("XAUTHORITY", path);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("{program}: {e}"));
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An xev on `display` logging to `log`, focused; killed on drop.
struct Xev(Child);

impl Xev {
    fn start(display: &str, xauthority: Option<&Path>, log: &Path) -> Xev {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            &format!(
                "exec stdbuf -oL xev -geometry 400x300+100+100 > '{}'",
                log.display()
            ),
        ])
        .env("DISPLAY", display)
        .env_remove("XAUTHORITY");
        if let Some(path) = xauthority {
            cmd.env("XAUTHORITY", path);
        }
        let xev = Xev(cmd.spawn().unwrap());
        let window = common_wait(|| {
            x_tool(
                display,
                xauthority,
                "xdotool",
                &["search", "--onlyvisible", "--name", "Event Tester"],
            )
        })
        .expect("an xev window");
        let id = window.lines().next().unwrap().trim().to_string();
        x_tool(
            display,
            xauthority,
            "xdotool",
            &["windowfocus", "--sync", &id],
        );
        xev
    }
}

impl Drop for Xev {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn common_wait<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..200 {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn wait_log(log: &Path, needle: &str) -> Result<String, String> {
    common_wait(|| {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        text.contains(needle).then_some(text)
    })
    .ok_or_else(|| std::fs::read_to_string(log).unwrap_or_default())
}

#[test]
fn a_session_opens_with_its_own_cookie_and_leaves_nothing_when_dropped() {
    init_tracing();
    let screen = Xvfb::start("1024x768x24");
    let dir = RuntimeDir::new("session-files");
    let session = session_on(&screen, dir.path(), None);
    let cookie = session.xauthority().to_path_buf();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&cookie).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the cookie file is private");
    // Full screen: the session's screen is the zombie's.
    let info = x_tool(&session.display(), Some(&cookie), "xdpyinfo", &[])
        .expect("xdpyinfo with the cookie");
    assert!(info.contains("1024x768 pixels"), "{info}");
    assert!(info.contains("XTEST"), "{info}");
    // Without the cookie nobody gets in.
    assert!(
        x_tool(&session.display(), None, "xdpyinfo", &[]).is_none(),
        "no cookie, no entry"
    );
    // Its window is on the zombie's screen.
    let tree = x_tool(&screen.display, None, "xwininfo", &["-root", "-tree"]).unwrap();
    assert!(tree.contains("ZOS session of test"), "{tree}");
    let pid = session.pid();
    let number = session.display().trim_start_matches(':').to_string();
    drop(session);
    assert!(!common::process_alive(pid), "Xephyr ended");
    assert!(!cookie.exists(), "the cookie is gone");
    assert!(!Path::new(&format!("/tmp/.X{number}-lock")).exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn injected_keys_and_pointer_reach_the_session_and_not_the_screen_below() {
    init_tracing();
    let screen = Xvfb::start("1024x768x24");
    let dir = RuntimeDir::new("session-inject");
    let session = session_on(&screen, dir.path(), Some((800, 600)));
    let cookie = session.xauthority().to_path_buf();
    let inside_log = dir.path().join("inside.log");
    let outside_log = dir.path().join("outside.log");
    let _outside = Xev::start(&screen.display, None, &outside_log);
    let _inside = Xev::start(&session.display(), Some(&cookie), &inside_log);
    let mut injector = Injector::connect(&session.display(), Some(&cookie)).unwrap();
    assert_eq!(injector.size(), (800, 600));
    let (shift_l, ctrl_l, a, one, c, smiley) = (0xffe1, 0xffe3, 0x61, 0x21, 0x63, 0x100_263a);
    let events = [
        // Into xev's window (at 100,100 of 800x600).
        InputEvent::Motion { x: 20000, y: 20000 },
        InputEvent::KeyDown {
            keysym: a,
            code: 38,
        },
        InputEvent::KeyUp { code: 38 },
        // "!" as the master's Shift+1.
        InputEvent::KeyDown {
            keysym: shift_l,
            code: 50,
        },
        InputEvent::KeyDown {
            keysym: one,
            code: 10,
        },
        InputEvent::KeyUp { code: 10 },
        InputEvent::KeyUp { code: 50 },
        // Ctrl+C.
        InputEvent::KeyDown {
            keysym: ctrl_l,
            code: 37,
        },
        InputEvent::KeyDown {
            keysym: c,
            code: 54,
        },
        InputEvent::KeyUp { code: 54 },
        InputEvent::KeyUp { code: 37 },
        // A keysym no keymap here has.
        InputEvent::KeyDown {
            keysym: smiley,
            code: 99,
        },
        InputEvent::KeyUp { code: 99 },
        InputEvent::ButtonDown(1),
        InputEvent::ButtonUp(1),
    ];
    injector.inject(&events).unwrap();
    let seen = wait_log(&inside_log, "ButtonRelease")
        .unwrap_or_else(|t| panic!("xev in the session saw:\n{t}"));
    for needle in [
        "(keysym 0x61, a)",
        "(keysym 0x21, exclam)",
        "(keysym 0x63, c)",
        "keysym 0x100263a",
        "button 1,",
        "MotionNotify",
    ] {
        assert!(seen.contains(needle), "{needle} missing from:\n{seen}");
    }
    assert!(
        seen.contains("state 0x4, keycode 54"),
        "Ctrl held for c:\n{seen}"
    );
    let outside = std::fs::read_to_string(&outside_log).unwrap_or_default();
    for kind in ["KeyPress", "KeyRelease", "ButtonPress", "MotionNotify"] {
        assert!(
            !outside.contains(kind),
            "the screen below saw a {kind}:\n{outside}"
        );
    }
    // Held keys and buttons are let go.
    injector
        .inject(&[
            InputEvent::KeyDown {
                keysym: ctrl_l,
                code: 37,
            },
            InputEvent::ButtonDown(3),
        ])
        .unwrap();
    assert_eq!(injector.held(), (1, 1));
    injector.release_all().unwrap();
    assert_eq!(injector.held(), (0, 0));
    // xev logs the releases a moment after the presses: wait for the
    // counts to match, up to the common timeout.
    let balanced = |text: &str| {
        text.matches("KeyPress").count() == text.matches("KeyRelease").count()
            && text.matches("ButtonPress").count() == text.matches("ButtonRelease").count()
    };
    let text = common_wait(|| {
        let text = std::fs::read_to_string(&inside_log).unwrap_or_default();
        (text.contains("button 3,") && balanced(&text)).then_some(text)
    })
    .unwrap_or_else(|| {
        panic!(
            "keys or buttons stay held in the session:\n{}",
            std::fs::read_to_string(&inside_log).unwrap_or_default()
        )
    });
    assert!(text.contains("state 0x4, button 3,"), "{text}");
}

#[test]
fn the_capture_turns_typing_on_the_master_display_into_keysyms() {
    init_tracing();
    let master = Xvfb::start("1280x800x24");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let capture = Capture::start(
        CaptureOptions {
            display: master.display.clone(),
            xauthority: None,
            next: "Ctrl+Alt+Right".parse::<Hotkey>().unwrap(),
            previous: "Ctrl+Alt+Left".parse::<Hotkey>().unwrap(),
        },
        tx,
    )
    .unwrap();
    // The hotkey is seen while not grabbed.
    x_tool(&master.display, None, "xdotool", &["key", "ctrl+alt+Right"]).unwrap();
    let event = rx.blocking_recv().unwrap();
    assert_eq!(
        event,
        CaptureEvent::Hotkey(zos_display::input::Switch::Next)
    );
    capture.grab("Input → test", None);
    assert_eq!(rx.blocking_recv().unwrap(), CaptureEvent::Grabbed);
    x_tool(&master.display, None, "xdotool", &["type", "a!"]).unwrap();
    x_tool(
        &master.display,
        None,
        "xdotool",
        &["mousemove", "640", "400", "click", "2"],
    )
    .unwrap();
    let mut got = Vec::new();
    while !got.contains(&InputEvent::ButtonUp(2)) {
        match rx.blocking_recv().unwrap() {
            CaptureEvent::Input(events) => got.extend(events),
            other => panic!("unexpected {other:?}"),
        }
    }
    let keysyms: Vec<u32> = got
        .iter()
        .filter_map(|e| match e {
            InputEvent::KeyDown { keysym, .. } => Some(*keysym),
            _ => None,
        })
        .collect();
    assert_eq!(keysyms, vec![0x61, 0xffe1, 0x21], "{got:?}");
    let last_motion = got.iter().rev().find_map(|e| match e {
        InputEvent::Motion { x, y } => Some((denormalise(*x, 1280), denormalise(*y, 800))),
        _ => None,
    });
    assert_eq!(last_motion, Some((640, 400)), "{got:?}");
    // While grabbed, the master's own clients get nothing.
    capture.release(None);
    drop(capture);
}

#[test]
fn clipboard_text_goes_both_ways_between_two_displays() {
    init_tracing();
    let (a, b) = (Xvfb::start("640x480x24"), Xvfb::start("640x480x24"));
    let (tx_a, mut rx_a) = tokio::sync::mpsc::unbounded_channel();
    let (tx_b, _rx_b) = tokio::sync::mpsc::unbounded_channel();
    let agent_a = ClipboardAgent::start(&a.display, None, tx_a).unwrap();
    let agent_b = ClipboardAgent::start(&b.display, None, tx_b).unwrap();
    agent_a.report(true);
    // Copied on A with xclip: A's agent reports it …
    let mut xclip = Command::new("xclip")
        .args(["-selection", "clipboard", "-i"])
        .env("DISPLAY", &a.display)
        .stdin(Stdio::piped())
        .spawn()
        .expect("xclip is installed (package xclip)");
    use std::io::Write;
    xclip
        .stdin
        .take()
        .unwrap()
        .write_all("héllo from A".as_bytes())
        .unwrap();
    xclip.wait().unwrap();
    let change = rx_a.blocking_recv().unwrap();
    assert_eq!(change.selection, Selection::Clipboard);
    assert_eq!(change.text, "héllo from A");
    // … and offered on B, xclip pastes it there.
    agent_b.set(Selection::Primary, change.text.clone());
    let pasted = common_wait(|| {
        x_tool(&b.display, None, "xclip", &["-o", "-selection", "primary"])
            .filter(|t| t == "héllo from A")
    });
    assert!(pasted.is_some(), "B's PRIMARY holds the text");
    // A big selection (INCR) arrives whole.
    let big = "z".repeat(300_000);
    let mut xclip = Command::new("xclip")
        .args(["-selection", "primary", "-i"])
        .env("DISPLAY", &a.display)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    xclip
        .stdin
        .take()
        .unwrap()
        .write_all(big.as_bytes())
        .unwrap();
    xclip.wait().unwrap();
    let change = rx_a.blocking_recv().unwrap();
    assert_eq!(
        (change.selection, change.text.len()),
        (Selection::Primary, big.len())
    );
}
