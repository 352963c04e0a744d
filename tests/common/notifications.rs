//! A real desktop notification server for a host: a private D-Bus session
//! bus (`dbus-daemon --session` on a socket in the host's home) and
//! `dunst` on the host's X display. The user's pick of an action is played
//! by dunst's own context menu: `dunstctl action 0` opens it, and the
//! "dmenu" dunst runs for it (set in its config) picks the line with the
//! chosen label, so dunst itself sends `ActionInvoked`.

use std::path::PathBuf;
use std::time::Duration;

use super::host::Host;
use super::poll;
use super::proc::Proc;

/// A session bus with dunst on it; both killed on drop.
pub struct Notifications<'h> {
    host: &'h Host,
    /// `DBUS_SESSION_BUS_ADDRESS` of the bus.
    pub bus_address: String,
    dunst: Proc,
    _bus: Proc,
}

impl<'h> Notifications<'h> {
    /// Starts the bus and dunst (on `display`); a context menu picks the
    /// action labelled `pick` (e.g. "Refuse").
    pub fn start(host: &'h Host, display: &str, pick: &str) -> Notifications<'h> {
        let dir = host.home.join("notifications");
        std::fs::create_dir_all(&dir).unwrap();
        let socket: PathBuf = dir.join("session_bus");
        let bus_address = format!("unix:path={}", socket.display());
        let bus = host.spawn_program(
            "dbus-daemon",
            &[
                "--session",
                "--nofork",
                "--nopidfile",
                "--address",
                &bus_address,
            ],
            &[],
        );
        let up = poll::until(Duration::from_secs(20), || socket.exists().then_some(()));
        assert!(up.is_some(), "dbus-daemon did not start\n{}", bus.log());
        let config = dir.join("dunstrc");
        std::fs::write(
            &config,
            format!(
                "[global]\n    dmenu = /bin/sh -c \"grep -m1 '^#{pick} '\"\n    show_indicators = no\n"
            ),
        )
        .unwrap();
        let dunst = host.spawn_program(
            "dunst",
            &["-config", config.to_str().unwrap(), "-verbosity", "info"],
            &[
                ("DISPLAY", display),
                ("DBUS_SESSION_BUS_ADDRESS", &bus_address),
            ],
        );
        let owned = poll::until(Duration::from_secs(20), || {
            let out = host.exec_env(
                "dunstctl",
                &["is-paused"],
                &[("DBUS_SESSION_BUS_ADDRESS", &bus_address)],
            );
            out.status.success().then_some(())
        });
        assert!(
            owned.is_some(),
            "dunst did not take the bus name\n{}",
            dunst.log()
        );
        Notifications {
            host,
            bus_address,
            dunst,
            _bus: bus,
        }
    }

    /// How many notifications dunst shows.
    pub fn displayed(&self) -> usize {
        let out = self.host.exec_env(
            "dunstctl",
            &["count", "displayed"],
            &[("DBUS_SESSION_BUS_ADDRESS", &self.bus_address)],
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }

    /// Opens the context menu of the newest notification, as its user
    /// would; the configured pick is invoked.
    pub fn pick_action(&self) {
        let out = self.host.exec_env(
            "dunstctl",
            &["action", "0"],
            &[("DBUS_SESSION_BUS_ADDRESS", &self.bus_address)],
        );
        assert!(
            out.status.success(),
            "dunstctl action: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.dunst.log()
        );
    }

    /// dunst's log.
    pub fn log(&self) -> String {
        self.dunst.log()
    }
}
