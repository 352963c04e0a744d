//! Tests of the test harness itself, with plain tools only: so that a
//! failure of the product tests can be told apart from a broken test LAN.

mod common;

use common::avahi::Avahi;
use common::{Lan, lan, secs, until};

const MCAST_RECV: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", 5007))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack("4s4s", socket.inet_aton("239.255.0.77"), socket.inet_aton(sys.argv[1])))
print("ready", flush=True)
data, addr = s.recvfrom(1500)
print("got", data.decode(), "from", addr[0], flush=True)
"#;

const MCAST_SEND: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
s.sendto(b"hello-lan", ("239.255.0.77", 5007))
"#;

const TCP_SERVE: &str = r#"
import socket
s = socket.socket()
s.bind(("0.0.0.0", 7007))
s.listen()
print("ready", flush=True)
c, addr = s.accept()
print("accepted", addr[0], flush=True)
"#;

const TCP_SERVE_LOOP: &str = r#"
import socket
s = socket.socket()
s.bind(("0.0.0.0", 7007))
s.listen()
print("ready", flush=True)
while True:
    c, addr = s.accept()
    c.close()
"#;

#[test]
fn harness_lan_carries_unicast_and_multicast_between_namespaces() {
    let lan = Lan::new(&["m", "z1", "z2"]);
    let (m, z1, z2) = (lan.host("m"), lan.host("z1"), lan.host("z2"));

    // Unicast TCP from m to z1.
    let server = z1.spawn_program("python3", &["-c", TCP_SERVE], &[]);
    server.wait_log("ready", secs(20));
    let connect = format!(
        "import socket; socket.create_connection(('{}', 7007), timeout=5).close()",
        z1.addr
    );
    let out = m.exec("python3", &["-c", &connect]);
    assert!(
        out.status.success(),
        "m could not reach z1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.wait_log(&format!("accepted {}", m.addr), secs(10));

    // Multicast from m reaches both z1 and z2.
    let r1 = z1.spawn_program("python3", &["-c", MCAST_RECV, &z1.addr.to_string()], &[]);
    let r2 = z2.spawn_program("python3", &["-c", MCAST_RECV, &z2.addr.to_string()], &[]);
    r1.wait_log("ready", secs(20));
    r2.wait_log("ready", secs(20));
    let both = until(secs(10), || {
        let out = m.exec("python3", &["-c", MCAST_SEND]);
        assert!(
            out.status.success(),
            "multicast send: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (r1.count_log("got hello-lan") > 0 && r2.count_log("got hello-lan") > 0).then_some(())
    });
    assert!(
        both.is_some(),
        "multicast did not cross the bridge:\nz1: {}\nz2: {}",
        r1.log(),
        r2.log()
    );
    assert!(r1.log().contains(&format!("from {}", m.addr)));
}

#[test]
fn harness_link_down_cuts_a_host_off_and_link_up_plugs_it_back() {
    let lan = Lan::new(&["m", "z1"]);
    let (m, z1) = (lan.host("m"), lan.host("z1"));
    let server = z1.spawn_program("python3", &["-c", TCP_SERVE_LOOP], &[]);
    server.wait_log("ready", secs(20));
    let connect = format!(
        "import socket; socket.create_connection(('{}', 7007), timeout=2).close()",
        z1.addr
    );
    assert!(
        m.exec("python3", &["-c", &connect]).status.success(),
        "no connection before the cut"
    );
    z1.link_down();
    assert!(
        !m.exec("python3", &["-c", &connect]).status.success(),
        "z1 still reachable with its cable pulled"
    );
    z1.link_up();
    let back = until(secs(10), || {
        m.exec("python3", &["-c", &connect])
            .status
            .success()
            .then_some(())
    });
    assert!(back.is_some(), "z1 unreachable after plugging it back in");
}

#[test]
fn harness_configures_nothing_in_the_root_namespace() {
    let lan = Lan::new(&["m", "z1"]);
    let root = lan::ip_quiet(&["-4", "addr"]);
    let subnet = lan.host("m").addr.to_string();
    let prefix = subnet.rsplit_once('.').unwrap().0;
    assert!(
        !root.contains(prefix),
        "root namespace has a test address:\n{root}"
    );
    let links = lan::ip_quiet(&["link"]);
    assert!(
        !links.contains("v-m") && !links.contains("br0"),
        "root namespace has test links:\n{links}"
    );
    // The bridge forwards multicast to every port (no IGMP snooping).
    let br = lan::ip_quiet(&["-n", &lan.bridge_ns, "-d", "link", "show", "br0"]);
    assert!(
        br.contains("mcast_snooping 0"),
        "bridge has snooping on:\n{br}"
    );
}

#[test]
fn harness_removes_everything_even_when_a_test_panics() {
    let mut names = Vec::new();
    let mut dirs = Vec::new();
    let mut pid = 0;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lan = Lan::new(&["m", "z1"]);
        names.extend(lan.hosts.iter().map(|h| h.ns.clone()));
        names.push(lan.bridge_ns.clone());
        dirs.extend(
            lan.hosts
                .iter()
                .map(|h| h.home.parent().unwrap().to_path_buf()),
        );
        let sleeper = lan.host("z1").spawn_program("sleep", &["1000"], &[]);
        pid = sleeper.pid();
        // A process the test forgot about: the LAN's cleanup must kill it.
        std::mem::forget(sleeper);
        panic!("deliberate failure inside a test");
    }));
    assert!(result.is_err());
    let left = lan::namespaces();
    for n in &names {
        assert!(!left.contains(n), "namespace {n} left behind");
    }
    for d in &dirs {
        assert!(!d.exists(), "directory {} left behind", d.display());
    }
    let dead = until(secs(5), || {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Gone, or dead and only waiting to be reaped ('Z').
        (state.is_empty() || state.split_whitespace().nth(2) == Some("Z")).then_some(())
    });
    assert!(dead.is_some(), "process {pid} of the LAN still runs");
}

#[test]
fn harness_removes_namespaces_of_dead_runs() {
    common::require_root();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let stale = format!("zos-{dead_pid}x0-m");
    let live = format!("zos-{}x9999-m", std::process::id());
    lan::ip(&["netns", "add", &stale]);
    lan::ip(&["netns", "add", &live]);
    lan::remove_stale();
    let left = lan::namespaces();
    lan::destroy_namespace(&live);
    assert!(!left.contains(&stale), "stale namespace {stale} survived");
    assert!(
        left.contains(&live),
        "a live run's namespace {live} was removed"
    );
    assert_eq!(
        lan::owner_pid("zos-m"),
        None,
        "only harness-shaped names are touched"
    );
    assert_eq!(lan::owner_pid("zos-12x3-z1"), Some(12));
}

#[test]
fn harness_xvfb_runs_inside_a_host_and_goes_away() {
    let lan = Lan::new(&["m"]);
    let m = lan.host("m");
    let number;
    {
        let x = m.xvfb();
        number = x.display.trim_start_matches(':').to_string();
        let out = m.exec_env(
            "xdotool",
            &["getdisplaygeometry"],
            &[("DISPLAY", &x.display)],
        );
        assert!(
            out.status.success(),
            "xdotool: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1280 800");
    }
    let gone = until(secs(5), || {
        (!std::path::Path::new(&format!("/tmp/.X{number}-lock")).exists()).then_some(())
    });
    assert!(gone.is_some(), "Xvfb :{number} lock file left behind");
}

#[test]
fn harness_avahi_observer_sees_a_service_published_on_another_host() {
    let lan = Lan::new(&["a", "z1"]);
    let (a, z1) = (lan.host("a"), lan.host("z1"));
    let publisher = Avahi::start_with(z1, true);
    let _service = publisher.publish(
        "harness probe",
        "_zosprobe._tcp",
        4242,
        &["k=v", "fp=ab-cd"],
    );
    let observer = Avahi::start(a);
    let seen = observer
        .wait_for("_zosprobe._tcp", "harness probe", secs(20))
        .expect("observer never resolved the probe service");
    assert_eq!(seen.port, 4242);
    assert_eq!(seen.address, z1.addr.to_string());
    assert_eq!(seen.txt.get("k").map(String::as_str), Some("v"));
    assert_eq!(seen.txt.get("fp").map(String::as_str), Some("ab-cd"));
    drop(observer);
    drop(publisher);
    assert!(
        !std::path::Path::new("/run/avahi-daemon").exists(),
        "avahi's private /run leaked into the root mount namespace"
    );
}

#[test]
fn harness_screenshot_finds_a_colour_drawn_on_the_display() {
    use common::screen::{count_pixels, screenshot, screenshot_dir};
    let lan = Lan::new(&["m"]);
    let m = lan.host("m");
    let x = m.xvfb();
    let swatch = m.home.join("swatch.png");
    let out = m.exec(
        "convert",
        &["-size", "40x30", "xc:#3C8CDC", swatch.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "convert: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = screenshot_dir().join(format!("harness-{}.png", lan.id));
    screenshot(m, &x.display, &png);
    assert_eq!(
        count_pixels(m, &png, [0x3c, 0x8c, 0xdc]),
        0,
        "an empty screen has no swatch pixels"
    );
    // ImageMagick's own viewer shows the swatch in a window on that display.
    let _viewer = m.spawn_program(
        "display",
        &["-geometry", "+10+10", swatch.to_str().unwrap()],
        &[("DISPLAY", &x.display)],
    );
    let n = until(secs(15), || {
        screenshot(m, &x.display, &png);
        let n = count_pixels(m, &png, [0x3c, 0x8c, 0xdc]);
        (n > 0).then_some(n)
    });
    assert_eq!(
        n,
        Some(40 * 30),
        "the whole swatch should be on screen; see {}",
        png.display()
    );
    let _ = std::fs::remove_file(&png);
}
