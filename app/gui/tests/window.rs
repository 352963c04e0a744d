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

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::fake_daemon::FakeDaemon;
use libtest_mimic::{Arguments, Trial};
use zos_netproto::Level;
use zos_netproto::control::{Reply, Request, StatusInfo};
use zos_netproto::discovery::HostInfo;
use zos_netproto::wire::Role;

const INNER: &str = "ZOS_GUI_TEST_WINDOW_FLAG";

/// Kills and reaps a child process when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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
    let xvfb = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1024x768x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut xvfb = Reaped(xvfb.unwrap_or_else(|e| panic!("cannot start Xvfb: {e}")));
    let mut number = String::new();
    BufReader::new(xvfb.0.stdout.take().unwrap())
        .read_line(&mut number)
        .expect("Xvfb's display number");
    let display = format!(":{}", number.trim());

    let flag = std::env::temp_dir().join(format!("zos-gui-window-test-{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let mut window = Reaped(
        Command::new(std::env::current_exe().unwrap())
            .env(INNER, &flag)
            .env("DISPLAY", &display)
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::piped())
            .spawn()
            .expect("run the window"),
    );
    let (lines_tx, lines) = mpsc::channel();
    let stdout = window.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("window: {line}");
            let _ = lines_tx.send(line);
        }
    });
    let wait_for = |wanted: &str| {
        loop {
            match lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.ends_with(wanted) => return,
                Ok(_) => {}
                Err(e) => panic!("no {wanted:?} from the window: {e}"),
            }
        }
    };

    wait_for("window shows 2 hosts: z1, z2");
    // Give it a frame or two to reach the screen.
    std::thread::sleep(Duration::from_millis(500));
    check_window(&display);

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
fn check_window(display: &str) {
    let out = Command::new("xwininfo")
        .args(["-display", display, "-name", "ZOS master"])
        .output()
        .expect("run xwininfo");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "no window titled ZOS master: {text}");
    assert!(text.contains("Width: 900"), "{text}");
    assert!(text.contains("Height: 600"), "{text}");
    let shot = std::env::temp_dir().join(format!("zos-gui-window-{}.png", std::process::id()));
    let taken = Command::new("import")
        .args(["-display", display, "-window", "root"])
        .arg(&shot)
        .output()
        .expect("run ImageMagick's import");
    assert!(
        taken.status.success(),
        "import: {}",
        String::from_utf8_lossy(&taken.stderr)
    );
    let histogram = Command::new("convert")
        .arg(&shot)
        .args(["-format", "%c", "histogram:info:-"])
        .output()
        .expect("run ImageMagick's convert");
    let _ = std::fs::remove_file(&shot);
    let text = String::from_utf8_lossy(&histogram.stdout);
    assert!(histogram.status.success(), "convert: {text}");
    assert!(text.contains("#3C8CDC"), "no zombie blue on screen: {text}");
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
        Request::Status => vec![Reply::Status(StatusInfo {
            role: Role::Master,
            name: "laptop".into(),
            fingerprint: "7f3a91c2".into(),
            listen: None,
            trusted: 0,
            pairing: None,
            sessions: vec![],
            asking: None,
            pairing_attempts: Vec::new(),
            session: None,
        })],
        _ => vec![Reply::Error {
            message: "not in this test".into(),
        }],
    });
    zos_gui::run(daemon.socket().to_path_buf(), Box::new(|_| Ok(()))).expect("the window runs");
}
