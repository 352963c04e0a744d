//! The tray item seen from D-Bus, as a desktop's tray host sees it.
//!
//! The test re-runs itself under `dbus-run-session` (a private session bus),
//! starts a stand-in StatusNotifierWatcher and a fake daemon, runs
//! `zos_tray::run`, then reads the item's Title and ToolTip, clicks its menu
//! items over `com.canonical.dbusmenu` (accept, a new code, a viewer,
//! Release), and checks that Quit ends `run`.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::fake_daemon::FakeDaemon;
use common::watcher::Watcher;
use zbus::proxy::CacheProperties;
use zbus::zvariant::{OwnedValue, Value};
use zos_netproto::Level;
use zos_netproto::control::{
    AskInfo, PairCodeInfo, Reply, Request, SessionInfo, StatusInfo, TaskInfo, ZosSessionInfo,
};
use zos_netproto::wire::Role;

const INNER: &str = "ZOS_TRAY_TEST_PRIVATE_BUS";
const TEST: &str = "tray_shows_the_daemons_pairing_code_over_dbus";

#[test]
fn tray_shows_the_daemons_pairing_code_over_dbus() {
    if std::env::var_os(INNER).is_some() {
        return inner();
    }
    let exe = std::env::current_exe().expect("own path");
    let status = Command::new("dbus-run-session")
        .arg("--")
        .arg(exe)
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .status();
    match status {
        Ok(status) => assert!(status.success(), "the test under dbus-run-session failed"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("dbus-run-session is not installed (apt-get install dbus): {e}")
        }
        Err(e) => panic!("cannot run dbus-run-session: {e}"),
    }
}

/// A zombie daemon whose code changes when a new one is asked for, and
/// which has a domination request waiting until it is answered (the answer
/// goes to `answers`).
fn fake_zombie(answers: mpsc::Sender<bool>, released: mpsc::Sender<String>) -> FakeDaemon {
    let answers = Mutex::new(answers);
    let released = Mutex::new(released);
    let asking = Arc::new(Mutex::new(Some(AskInfo {
        master: "laptop".into(),
        fingerprint: "0011-2233".into(),
        level: Level::Partial,
        expires_in_s: 40,
    })));
    let asked = asking.clone();
    let pairing = Arc::new(Mutex::new(PairCodeInfo {
        code: "123456".into(),
        level: Level::Complete,
        expires_in_s: 90,
        attempts_left: 3,
    }));
    // The ZOS session's input state, as the tray's item changes it.
    let input = Arc::new(Mutex::new("on".to_string()));
    let input_seen = input.clone();
    FakeDaemon::start("tray-test", move |request| match request {
        Request::Status => vec![Reply::Status(StatusInfo {
            role: Role::Zombie,
            name: "z1".into(),
            fingerprint: "ab12cd34ef56".into(),
            listen: Some("127.0.0.1:4000".into()),
            trusted: 0,
            pairing: Some(pairing.lock().unwrap().clone()),
            sessions: vec![SessionInfo {
                peer: "laptop".into(),
                fingerprint: "0011223344".into(),
                addr: "127.0.0.1:5000".into(),
                age_s: 7,
                dominating: Some(Level::Partial),
                mount: Some("/run/user/0/zos-x/anima".into()),
                driven: false,
            }],
            asking: asking.lock().unwrap().clone(),
            pairing_attempts: Vec::new(),
            session: Some(Box::new(ZosSessionInfo {
                display: ":3".into(),
                xauthority: "/run/user/0/zos-x/zos-session.xauth".into(),
                master: "laptop".into(),
                input: input_seen.lock().unwrap().clone(),
            })),
        })],
        Request::Release { host, .. } => {
            let _ = released.lock().unwrap().send(host);
            vec![Reply::Released {
                name: "laptop".into(),
            }]
        }
        Request::AllowInput { allow } => {
            *input.lock().unwrap() = if allow { "off" } else { "refused" }.into();
            vec![Reply::Done]
        }
        Request::Answer { accept, .. } => {
            asked.lock().unwrap().take();
            let _ = answers.lock().unwrap().send(accept);
            vec![Reply::Done]
        }
        Request::Tasks => vec![Reply::Tasks {
            tasks: vec![TaskInfo {
                id: 4,
                kind: "shared".into(),
                command: vec!["xterm".into()],
                display: None,
                state: "running".into(),
                pid: None,
                host: Some("laptop".into()),
                ..TaskInfo::default()
            }],
        }],
        Request::PairCode { level } => {
            let info = PairCodeInfo {
                code: "654321".into(),
                level,
                expires_in_s: 120,
                attempts_left: 3,
            };
            *pairing.lock().unwrap() = info.clone();
            vec![Reply::PairCode(info)]
        }
        other => vec![Reply::Error {
            message: format!("not here: {other:?}"),
        }],
    })
}

fn inner() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let (answers_tx, answers) = mpsc::channel();
    let (released_tx, released) = mpsc::channel();
    let daemon = fake_zombie(answers_tx, released_tx);
    let socket = daemon.socket().to_path_buf();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (conn, watcher) = rt.block_on(Watcher::start()).expect("stand-in watcher");

    let (done_tx, done_rx) = mpsc::channel();
    let (viewed_tx, viewed_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let open_view = Box::new(move |task| {
            let _ = viewed_tx.send(task);
            Ok(())
        });
        let _ = done_tx.send(zos_tray::run(socket, open_view).map_err(|e| format!("{e:#}")));
    });

    rt.block_on(async {
        let item = wait_for(
            || watcher.items().into_iter().next(),
            "the item to register",
        )
        .await;
        let sni = proxy(
            &conn,
            &item,
            "/StatusNotifierItem",
            "org.kde.StatusNotifierItem",
        )
        .await;
        let menu = proxy(&conn, &item, "/MenuBar", "com.canonical.dbusmenu").await;

        // A waiting domination request comes first: the user answers it.
        let title = wait_for_title(&sni, "laptop asks to dominate").await;
        assert!(title.starts_with("ZOS z1"), "{title}");
        let labels = menu_labels(&menu).await;
        let accept = "Accept domination by laptop (partial)";
        assert!(labels.contains_key(accept), "{labels:?}");
        assert!(labels.contains_key("Refuse"), "{labels:?}");
        click(&menu, labels[accept]).await;
        assert_eq!(answers.recv_timeout(Duration::from_secs(10)), Ok(true));

        let title = wait_for_title(&sni, "code 123456").await;
        assert!(title.starts_with("ZOS z1"), "{title}");
        let (_, _, tip_title, tip_body) = tool_tip(&sni).await;
        assert_eq!(tip_title, "ZOS zombie z1");
        assert!(
            tip_body.contains("Pairing code 123456 (complete,"),
            "{tip_body}"
        );
        assert!(tip_body.contains("s left)"), "{tip_body}");

        let icons: Vec<(i32, i32, Vec<u8>)> = sni.get_property("IconPixmap").await.unwrap();
        assert!(!icons.is_empty());
        for (w, h, data) in &icons {
            assert_eq!(data.len(), (w * h * 4) as usize);
        }

        let labels = menu_labels(&menu).await;
        for wanted in [
            "New pairing code (complete)",
            "New pairing code (partial)",
            "Quit",
        ] {
            assert!(
                labels.contains_key(wanted),
                "menu lacks {wanted}: {labels:?}"
            );
        }
        assert!(
            labels.keys().any(|l| l.contains("Pairing code 123456")),
            "{labels:?}"
        );

        click(&menu, labels["New pairing code (partial)"]).await;
        wait_for_title(&sni, "code 654321").await;
        let (_, _, _, tip_body) = tool_tip(&sni).await;
        assert!(
            tip_body.contains("Pairing code 654321 (partial,"),
            "{tip_body}"
        );

        // The dominating master and its shared app; choosing it opens a viewer.
        assert!(
            tip_body.contains("dominated by master laptop (127.0.0.1:5000) at level partial"),
            "{tip_body}"
        );
        let labels = menu_labels(&menu).await;
        let view = "View xterm (task 4 on laptop)";
        assert!(labels.contains_key(view), "{labels:?}");
        click(&menu, labels[view]).await;
        let viewed = viewed_rx.recv_timeout(Duration::from_secs(10));
        assert_eq!(viewed, Ok(4), "the viewer of task 4 was not opened");

        // The zombie's user ends the domination from the tray.
        let labels = menu_labels(&menu).await;
        let release = "Release (end the domination by laptop)";
        assert!(labels.contains_key(release), "{labels:?}");
        click(&menu, labels[release]).await;
        let asked = released.recv_timeout(Duration::from_secs(10));
        assert_eq!(
            asked.as_deref(),
            Ok(""),
            "Release sent for this zombie's own domination"
        );
        // The ZOS session: the master drives it; the user refuses its input.
        assert!(
            tip_body.contains("ZOS session of laptop on :3: laptop drives it now"),
            "{tip_body}"
        );
        let labels = menu_labels(&menu).await;
        let refuse = "Refuse input from laptop";
        assert!(labels.contains_key(refuse), "{labels:?}");
        click(&menu, labels[refuse]).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !menu_labels(&menu)
            .await
            .contains_key("Allow input from laptop")
        {
            assert!(
                Instant::now() < deadline,
                "the item never offered to allow input again"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let labels = menu_labels(&menu).await;
        click(&menu, labels["Quit"]).await;
    });

    let outcome = done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("run returns after Quit");
    assert_eq!(outcome, Ok(()));
}

async fn proxy<'a>(
    conn: &zbus::Connection,
    dest: &str,
    path: &'static str,
    interface: &'static str,
) -> zbus::Proxy<'a> {
    zbus::proxy::Builder::new(conn)
        .destination(dest.to_owned())
        .unwrap()
        .path(path)
        .unwrap()
        .interface(interface)
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .expect("proxy")
}

/// Polls `f` every 50 ms for up to 10 s.
async fn wait_for<T>(mut f: impl FnMut() -> Option<T>, what: &str) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_title(sni: &zbus::Proxy<'_>, wanted: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let title: String = sni.get_property("Title").await.expect("Title");
        if title.contains(wanted) {
            return title;
        }
        assert!(
            Instant::now() < deadline,
            "title {title:?} never showed {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

type Pixmaps = Vec<(i32, i32, Vec<u8>)>;

async fn tool_tip(sni: &zbus::Proxy<'_>) -> (String, Pixmaps, String, String) {
    sni.get_property("ToolTip").await.expect("ToolTip")
}

type Node = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);

/// Every menu item's label with its id.
async fn menu_labels(menu: &zbus::Proxy<'_>) -> HashMap<String, i32> {
    let (_revision, root): (u32, Node) = menu
        .call("GetLayout", &(0i32, -1i32, Vec::<String>::new()))
        .await
        .expect("GetLayout");
    let mut labels = HashMap::new();
    collect(root, &mut labels);
    labels
}

fn collect((id, props, children): Node, labels: &mut HashMap<String, i32>) {
    if let Some(label) = props.get("label") {
        let label: String = label.try_clone().unwrap().try_into().unwrap();
        labels.insert(label, id);
    }
    for child in children {
        let value: Value = child.into();
        let value = match value {
            Value::Value(inner) => *inner,
            other => other,
        };
        collect(Node::try_from(value).expect("a menu node"), labels);
    }
}

async fn click(menu: &zbus::Proxy<'_>, id: i32) {
    let () = menu
        .call("Event", &(id, "clicked", Value::from(0i32), 0u32))
        .await
        .expect("Event");
}
