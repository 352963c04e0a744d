//! A real Xvnc per display: unix socket only, RFB banner, X clients, clean stop.

mod common;

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use common::{RuntimeDir, init_tracing, process_alive};
use zos_display::{VirtualDisplay, launch_app};

#[test]
fn rfb_only_on_private_unix_socket_and_no_tcp() {
    init_tracing();
    let dir = RuntimeDir::new("notcp");
    let vd = VirtualDisplay::start(dir.path(), (640, 480)).unwrap();
    assert!(vd.display().starts_with(':'), "{}", vd.display());
    assert!(vd.rfb_socket().starts_with(dir.path()));
    let meta = std::fs::metadata(vd.rfb_socket()).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // No listening TCP socket of any kind belongs to this Xvnc (neither RFB nor X11).
    let out = Command::new("ss").args(["-ltnpH"]).output().unwrap();
    assert!(out.status.success());
    let tcp = String::from_utf8_lossy(&out.stdout);
    let needle = format!("pid={},", vd.pid());
    assert!(!tcp.contains(&needle), "Xvnc listens on TCP:\n{tcp}");
    // ... while it does listen on our unix socket (the check above sees its sockets).
    let out = Command::new("ss").args(["-lxpH"]).output().unwrap();
    let unix = String::from_utf8_lossy(&out.stdout);
    assert!(
        unix.lines()
            .any(|l| l.contains(&needle) && l.contains(vd.rfb_socket().to_str().unwrap())),
        "Xvnc not seen on its unix socket:\n{unix}"
    );
}

#[test]
fn unix_socket_speaks_rfb_3_8() {
    init_tracing();
    let dir = RuntimeDir::new("banner");
    let vd = VirtualDisplay::start(dir.path(), (320, 200)).unwrap();
    let mut s = UnixStream::connect(vd.rfb_socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut banner = [0u8; 12];
    s.read_exact(&mut banner).unwrap();
    assert_eq!(&banner, b"RFB 003.008\n");
}

#[test]
fn drop_stops_xvnc_and_removes_its_files() {
    init_tracing();
    let dir = RuntimeDir::new("drop");
    let vd = VirtualDisplay::start(dir.path(), (320, 200)).unwrap();
    let pid = vd.pid();
    let socket = vd.rfb_socket().to_owned();
    let x_socket = format!("/tmp/.X11-unix/X{}", vd.number());
    let lock = format!("/tmp/.X{}-lock", vd.number());
    assert!(process_alive(pid));
    assert!(std::path::Path::new(&x_socket).exists());
    drop(vd);
    assert!(!process_alive(pid), "Xvnc {pid} still running");
    assert!(!socket.exists());
    // Another X server started beside us (tests run in parallel) may take the
    // freed display number at once: its files are then not ours. An X server
    // writes its lock before it creates its socket, so a socket seen first and
    // a lock read after it tell whose socket it is.
    // A server beside us may also be coming or going on that number between the two
    // looks: a socket with no lock counts as ours only if it stays so for a second.
    let mut settled = false;
    for _ in 0..10 {
        let socket_left = std::path::Path::new(&x_socket).exists();
        let owner = std::fs::read_to_string(&lock)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        assert_ne!(
            owner,
            Some(pid),
            "the lock file of Xvnc {pid} is left behind"
        );
        if !socket_left || owner.is_some() {
            settled = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(settled, "the X socket of Xvnc {pid} is left behind");
}

#[test]
fn two_displays_get_distinct_numbers() {
    init_tracing();
    let dir = RuntimeDir::new("two");
    let a = VirtualDisplay::start(dir.path(), (320, 200)).unwrap();
    let b = VirtualDisplay::start(dir.path(), (320, 200)).unwrap();
    assert_ne!(a.display(), b.display());
    assert_ne!(a.rfb_socket(), b.rfb_socket());
}

#[test]
fn missing_runtime_dir_is_an_error() {
    let err = VirtualDisplay::start(std::path::Path::new("/nonexistent/zos"), (320, 200));
    assert!(err.is_err());
}

#[tokio::test]
async fn launched_app_talks_to_the_virtual_display() {
    init_tracing();
    let dir = RuntimeDir::new("app");
    let vd = VirtualDisplay::start(dir.path(), (800, 600)).unwrap();
    // xdpyinfo (x11-utils) connects to $DISPLAY and reports the screen size.
    let script = format!(
        "xdpyinfo | grep -q 'dimensions: *800x600' && test \"$DISPLAY\" = '{}'",
        vd.display()
    );
    let mut child = launch_app(&vd, &["sh", "-c", &script]).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    assert!(launch_app::<&str>(&vd, &[]).is_err());
}

#[test]
fn x_display_needs_the_cookie() {
    init_tracing();
    let dir = RuntimeDir::new("cookie");
    let vd = VirtualDisplay::start(dir.path(), (320, 200)).unwrap();
    let meta = std::fs::metadata(vd.xauthority()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let xdpyinfo = |xauthority: &std::path::Path| {
        Command::new("xdpyinfo")
            .env("DISPLAY", vd.display())
            .env("XAUTHORITY", xauthority)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(xdpyinfo(vd.xauthority()), "refused with the cookie");
    assert!(
        !xdpyinfo(std::path::Path::new("/dev/null")),
        "accepted without a cookie"
    );
    let xauth = vd.xauthority().to_owned();
    drop(vd);
    assert!(!xauth.exists());
}

/// Not a test: the process `xvnc_dies_with_the_process_that_started_it` starts (with
/// `--ignored --exact`) and kills. Run on its own it fails, so it never counts as a pass.
#[test]
#[ignore = "helper process of xvnc_dies_with_the_process_that_started_it"]
fn pdeathsig_helper() {
    let dir = std::env::var_os("ZOS_DISPLAY_HELPER_DIR").expect(
        "pdeathsig_helper is started by xvnc_dies_with_the_process_that_started_it, \
         which sets ZOS_DISPLAY_HELPER_DIR; it is not a test on its own",
    );
    let vd = VirtualDisplay::start(std::path::Path::new(&dir), (320, 200)).unwrap();
    println!("XVNC {} {}", vd.pid(), vd.number());
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn xvnc_dies_with_the_process_that_started_it() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    init_tracing();
    let dir = RuntimeDir::new("orphan");
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args(["pdeathsig_helper", "--exact", "--ignored", "--nocapture"])
        .env("ZOS_DISPLAY_HELPER_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(helper.stdout.take().unwrap()).lines();
    let (pid, number) = loop {
        let line = lines.next().expect("helper ended early").unwrap();
        if let Some(rest) = line.strip_prefix("XVNC ") {
            let mut it = rest.split(' ').map(|n| n.parse::<u32>().unwrap());
            break (it.next().unwrap(), it.next().unwrap());
        }
    };
    assert!(process_alive(pid));
    helper.kill().unwrap();
    helper.wait().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while process_alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let alive = process_alive(pid);
    // Killed by SIGKILL, Xvnc could not remove its lock and socket: do it for it.
    let lock = format!("/tmp/.X{number}-lock");
    if std::fs::read_to_string(&lock).is_ok_and(|t| t.trim() == pid.to_string()) {
        let _ = std::fs::remove_file(&lock);
        let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{number}"));
    }
    assert!(!alive, "Xvnc {pid} outlived the process that started it");
}
