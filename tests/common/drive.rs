//! Issue 12's set-up: a master and a zombie, each with a screen (Xvfb), the
//! zombie dominated at `complete` so it opened its ZOS session (Xephyr),
//! and the witnesses the tests read — xev windows, xdotool, xclip — on the
//! master's screen, on the zombie's own screen and inside the session.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::host::Host;
use super::proc::Proc;
use super::xvfb::Xvfb;
use super::zos::{self, text};
use super::{Lan, poll, secs};

/// The ZOS session as `zos status --json` on the zombie reports it.
#[derive(Clone, Debug)]
pub struct Session {
    /// Its `DISPLAY`.
    pub display: String,
    /// Its `XAUTHORITY`.
    pub xauthority: PathBuf,
}

impl Session {
    /// `DISPLAY` and `XAUTHORITY` for a program run inside the session.
    pub fn env(&self) -> [(&'static str, &str); 2] {
        [
            ("DISPLAY", &self.display),
            ("XAUTHORITY", self.xauthority.to_str().unwrap()),
        ]
    }
}

/// A master `m` and a zombie `z1` with screens, `z1` dominated at complete
/// with its ZOS session open. Fields drop in order: the LAN first (it kills
/// everything in its namespaces), the screens' guards after.
pub struct Driven {
    pub lan: Lan,
    pub master: Proc,
    pub zombie: zos::Zombie,
    pub master_screen: Xvfb,
    pub zombie_screen: Xvfb,
    pub session: Session,
}

impl Driven {
    pub fn m(&self) -> &Host {
        self.lan.host("m")
    }

    pub fn z(&self) -> &Host {
        self.lan.host("z1")
    }

    /// Runs xdotool ARGS on the master's screen (the user at the master).
    pub fn master_xdotool(&self, args: &[&str]) {
        let out = self
            .m()
            .exec_env("xdotool", args, &[("DISPLAY", &self.master_screen.display)]);
        assert!(
            out.status.success(),
            "xdotool {args:?} on the master: {}",
            text(&out)
        );
    }

    /// `zos drive ARGS` on the master; panics unless it succeeds.
    pub fn drive(&self, args: &[&str]) -> String {
        let mut all = vec!["drive"];
        all.extend_from_slice(args);
        self.m().run_ok(&all)
    }
}

/// Builds it; `zombie_args` are added to `zos zombie`, `before_dominate`
/// runs on the master once the two are paired.
pub fn driven(zombie_args: &[&str], before_dominate: impl FnOnce(&Host)) -> Driven {
    driven_with_settings("", zombie_args, before_dominate)
}

/// [`driven`], the zombie started with `zombie_toml` as its settings file
/// (`HOME/zombie.toml`; none when empty).
pub fn driven_with_settings(
    zombie_toml: &str,
    zombie_args: &[&str],
    before_dominate: impl FnOnce(&Host),
) -> Driven {
    super::tools::require_all(&["Xvfb", "Xephyr", "xev", "xdotool"]);
    let lan = Lan::new(&["m", "z1"]);
    let (m, z) = (lan.host("m"), lan.host("z1"));
    if !zombie_toml.is_empty() {
        std::fs::write(z.home.join("zombie.toml"), zombie_toml).unwrap();
    }
    let master_screen = m.xvfb();
    let zombie_screen = z.xvfb();
    let master = m.spawn_env(
        &["master", "--name", "m"],
        &[("DISPLAY", &master_screen.display)],
    );
    master.wait_log("master daemon ready", zos::STARTUP);
    let mut args = vec!["zombie", "--name", "z1", "--auto-accept"];
    args.extend_from_slice(zombie_args);
    let proc = z.spawn_env(&args, &[("DISPLAY", &zombie_screen.display)]);
    let line = proc.wait_log("listening on", zos::STARTUP);
    let zombie = zos::Zombie {
        proc,
        name: "z1".into(),
        port: zos::parse_port(&line).expect("a port"),
    };
    zos::pair(m, z, "z1", "complete");
    before_dominate(m);
    let out = m.run(&["dominate", "z1"]);
    assert!(out.status.success(), "zos dominate: {}", text(&out));
    let session = wait_session(z, secs(20)).expect("zos status on z1 reports a ZOS session");
    let driven = Driven {
        lan,
        master,
        zombie,
        master_screen,
        zombie_screen,
        session,
    };
    // The master hears the session's input channel before it can drive it.
    driven.master.wait_log("ZOS session is open", secs(10));
    driven
}

/// Polls `zos status --json` on `zombie` until it reports a ZOS session.
pub fn wait_session(zombie: &Host, timeout: Duration) -> Option<Session> {
    poll::until(timeout, || {
        let status = zos::json(zombie, &["status", "--json"]);
        let s = &status["session"];
        Some(Session {
            display: s["display"].as_str()?.to_string(),
            xauthority: PathBuf::from(s["xauthority"].as_str()?),
        })
    })
}

/// The `input` field of the zombie's session status.
pub fn session_input(zombie: &Host) -> Option<String> {
    let status = zos::json(zombie, &["status", "--json"]);
    status["session"]["input"].as_str().map(str::to_string)
}

/// The zombie the master drives, as its `zos status --json` says.
pub fn driving(master: &Host) -> Option<String> {
    let status = zos::json(master, &["status", "--json"]);
    status["sessions"]
        .as_array()?
        .iter()
        .find(|s| s["driven"] == true)
        .and_then(|s| s["peer"].as_str())
        .map(str::to_string)
}

/// An xev window on a display of `host`, focused, logging every event to a
/// file the test reads; it dies with the LAN.
pub struct Xev {
    pub log: PathBuf,
    _proc: Proc,
}

impl Xev {
    /// Starts xev on the display `env` names, at 100,100 (400x300), and
    /// gives it the keyboard focus.
    pub fn start(host: &Host, name: &str, env: &[(&str, &str)]) -> Xev {
        let log = host.home.join(format!("xev-{name}.log"));
        let title = format!("xev-{name}");
        let script = format!(
            "exec stdbuf -oL xev -name {title} -geometry 400x300+100+100 > '{}'",
            log.display()
        );
        let proc = host.spawn_program("sh", &["-c", &script], env);
        let found = poll::until(secs(15), || {
            let out = host.exec_env(
                "xdotool",
                &["search", "--onlyvisible", "--name", &title],
                env,
            );
            let id = text(&out).lines().next()?.trim().to_string();
            (out.status.success() && !id.is_empty()).then_some(id)
        })
        .unwrap_or_else(|| panic!("no {title} window"));
        let out = host.exec_env("xdotool", &["windowfocus", "--sync", &found], env);
        assert!(out.status.success(), "focus {title}: {}", text(&out));
        Xev { log, _proc: proc }
    }

    /// What it logged so far.
    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until its log contains `needle`; the log, or the log so far as
    /// the error.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Result<String, String> {
        poll::until(timeout, || {
            let t = self.text();
            t.contains(needle).then_some(t)
        })
        .ok_or_else(|| self.text())
    }
}

/// How many events of `kind` (e.g. `KeyPress`) a log holds.
pub fn count(log: &str, kind: &str) -> usize {
    log.lines()
        .filter(|l| l.starts_with(&format!("{kind} event")))
        .count()
}

/// Writes `text` to `selection` with xclip on the display `env` names (xclip
/// stays in the background serving it, its output away from our pipes).
pub fn copy(host: &Host, env: &[(&str, &str)], selection: &str, text_to_copy: &str) {
    let file = host.home.join(format!("clip-{selection}.txt"));
    std::fs::write(&file, text_to_copy).unwrap();
    let script = format!(
        "xclip -selection {selection} -i '{}' > /dev/null 2>&1",
        file.display()
    );
    let out = host.exec_env("sh", &["-c", &script], env);
    assert!(out.status.success(), "xclip -i: {}", text(&out));
}

/// What `selection` holds on the display `env` names (xclip -o).
pub fn paste(host: &Host, env: &[(&str, &str)], selection: &str) -> Option<String> {
    let out = host.exec_env("xclip", &["-selection", selection, "-o"], env);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The file's mode bits.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0)
}
