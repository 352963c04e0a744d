//! What the tray says: its title, tooltip and status lines, computed from
//! the daemon's latest [`StatusInfo`] (or the reason it could not be had).
//! Pure functions, so they are tested without D-Bus.

use zos_netproto::control::{
    AskInfo, PairAttemptInfo, PairCodeInfo, StatusInfo, TaskInfo, ZosSessionInfo,
};

/// The daemon's state as last seen by the tray.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct View {
    /// The daemon's latest status.
    pub status: Option<StatusInfo>,
    /// Why the daemon could not be reached, while it cannot.
    pub error: Option<String>,
    /// The outcome of the last menu action, shown in the menu.
    pub notice: Option<String>,
    /// The shared apps of the master dominating this zombie.
    pub tasks: Vec<TaskInfo>,
}

impl View {
    /// The offered pairing code, if any and not yet expired.
    pub fn pairing(&self) -> Option<&PairCodeInfo> {
        self.status
            .as_ref()
            .and_then(|s| s.pairing.as_ref())
            .filter(|p| p.expires_in_s > 0)
    }

    /// The master dominating this zombie, if any.
    pub fn dominating_master(&self) -> Option<&str> {
        self.status
            .as_ref()?
            .sessions
            .iter()
            .find(|s| s.dominating.is_some())
            .map(|s| s.peer.as_str())
    }

    /// The domination request waiting for the user, if any.
    pub fn asking(&self) -> Option<&AskInfo> {
        self.status
            .as_ref()
            .and_then(|s| s.asking.as_ref())
            .filter(|a| a.expires_in_s > 0)
    }

    /// The ZOS session open for the dominating master, if any.
    pub fn session(&self) -> Option<&ZosSessionInfo> {
        self.status.as_ref().and_then(|s| s.session.as_deref())
    }

    /// The menu item that allows or refuses the master's input, and what
    /// choosing it asks for (allow: true), while a ZOS session is open.
    pub fn input_toggle(&self) -> Option<(String, bool)> {
        let session = self.session()?;
        Some(if session.input == "refused" {
            (format!("Allow input from {}", session.master), true)
        } else {
            (format!("Refuse input from {}", session.master), false)
        })
    }

    /// The item's title: one line with name, sessions and any code.
    pub fn title(&self) -> String {
        let Some(status) = &self.status else {
            return "ZOS: daemon unreachable".to_owned();
        };
        let mut title = format!("ZOS {} · {}", status.name, sessions(status.sessions.len()));
        if self.error.is_some() {
            title.push_str(" · daemon unreachable");
        } else if let Some(a) = self.asking() {
            title.push_str(&format!(" · {} asks to dominate", a.master));
        } else if let Some(p) = self.pairing() {
            title.push_str(&format!(" · code {} ({} s left)", p.code, p.expires_in_s));
        } else if let Some(s) = self.session().filter(|s| s.input == "on") {
            title.push_str(&format!(" · {} drives the ZOS session", s.master));
        }
        title
    }

    /// The tooltip's heading.
    pub fn tooltip_title(&self) -> String {
        match &self.status {
            Some(status) => format!("ZOS zombie {}", status.name),
            None => "ZOS zombie".to_owned(),
        }
    }

    /// The tooltip's body: the status lines, one per line.
    pub fn tooltip_body(&self) -> String {
        self.lines().join("\n")
    }

    /// The status lines, for the tooltip and the top of the menu.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(error) = &self.error {
            lines.push(format!("Daemon unreachable: {error}"));
        }
        if let Some(status) = &self.status {
            lines.push(format!(
                "{}: {}",
                status.name,
                sessions(status.sessions.len())
            ));
            for s in &status.sessions {
                lines.push(match s.dominating {
                    Some(level) => format!(
                        "  dominated by master {} ({}) at level {level}, {} s",
                        s.peer, s.addr, s.age_s
                    ),
                    None => format!("  master {} ({}), {} s", s.peer, s.addr, s.age_s),
                });
            }
            if let Some(z) = self.session() {
                lines.push(format!(
                    "ZOS session of {} on {}: {}",
                    z.master,
                    z.display,
                    match z.input.as_str() {
                        "on" => format!("{} drives it now", z.master),
                        "refused" => format!("input from {} refused", z.master),
                        _ => format!("{} may drive it", z.master),
                    }
                ));
            }
            if let Some(a) = self.asking() {
                lines.push(format!(
                    "Master {} ({}) asks to dominate at level {} ({} s left)",
                    a.master, a.fingerprint, a.level, a.expires_in_s
                ));
            }
            match self.pairing() {
                Some(p) => lines.push(format!(
                    "Pairing code {} ({}, {} s left)",
                    p.code, p.level, p.expires_in_s
                )),
                None => lines.push("No pairing code on offer".to_owned()),
            }
            lines.extend(attempt_lines(&status.pairing_attempts));
            lines.push(format!("{} trusted master(s)", status.trusted));
            lines.push(format!("Fingerprint {}", status.fingerprint));
        }
        if let Some(notice) = &self.notice {
            lines.push(notice.clone());
        }
        lines
    }
}

/// The menu label that opens a viewer for `task`.
pub fn view_label(task: &TaskInfo) -> String {
    let program = task
        .command
        .first()
        .map(|p| p.rsplit('/').next().unwrap_or(p))
        .unwrap_or("app");
    match &task.host {
        Some(host) => format!("View {program} (task {} on {host})", task.id),
        None => format!("View {program} (task {})", task.id),
    }
}

/// The failed or refused pairing attempts, newest first: a heading with
/// the total, then one line for each of the latest three.
fn attempt_lines(attempts: &[PairAttemptInfo]) -> Vec<String> {
    if attempts.is_empty() {
        return Vec::new();
    }
    let total: u32 = attempts.iter().map(|a| a.count).sum();
    let mut lines = vec![format!("{total} failed pairing attempt(s):")];
    for a in attempts.iter().take(3) {
        let times = if a.count > 1 {
            format!(" ×{}", a.count)
        } else {
            String::new()
        };
        lines.push(format!(
            "  {} (key {}), {} s ago: {}{times}",
            a.addr, a.fingerprint, a.age_s, a.why
        ));
    }
    lines
}

fn sessions(n: usize) -> String {
    match n {
        1 => "1 session".to_owned(),
        n => format!("{n} sessions"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zos_netproto::Level;
    use zos_netproto::wire::Role;

    fn status(pairing: Option<PairCodeInfo>) -> StatusInfo {
        StatusInfo {
            role: Role::Zombie,
            name: "z1".into(),
            fingerprint: "ab12cd34".into(),
            listen: Some("10.0.0.2:4000".into()),
            trusted: 1,
            pairing,
            sessions: vec![],
            asking: None,
            pairing_attempts: Vec::new(),
            session: None,
        }
    }

    #[test]
    fn title_shows_code_and_seconds_left() {
        let view = View {
            status: Some(status(Some(PairCodeInfo {
                code: "123456".into(),
                level: Level::Complete,
                expires_in_s: 42,
                attempts_left: 3,
            }))),
            ..View::default()
        };
        assert_eq!(
            view.title(),
            "ZOS z1 · 0 sessions · code 123456 (42 s left)"
        );
        assert!(
            view.tooltip_body()
                .contains("Pairing code 123456 (complete, 42 s left)")
        );
    }

    #[test]
    fn failed_pairing_attempts_are_listed_newest_first() {
        let mut s = status(None);
        s.pairing_attempts = (0..5)
            .map(|n| PairAttemptInfo {
                addr: format!("10.0.0.{n}"),
                fingerprint: "aaaa-bbbb".into(),
                at_unix: 0,
                age_s: n,
                why: "wrong code".into(),
                count: 2,
            })
            .collect();
        let view = View {
            status: Some(s),
            ..View::default()
        };
        let lines = view.lines();
        let at = lines
            .iter()
            .position(|l| l == "10 failed pairing attempt(s):")
            .unwrap_or_else(|| panic!("{lines:#?}"));
        assert_eq!(
            lines[at + 1],
            "  10.0.0.0 (key aaaa-bbbb), 0 s ago: wrong code ×2"
        );
        assert!(lines[at + 3].starts_with("  10.0.0.2 "));
        assert!(!lines[at + 4].starts_with("  10.0.0.3 "), "three at most");
    }

    #[test]
    fn the_zos_session_and_its_input_are_shown_and_can_be_refused() {
        let mut s = status(None);
        s.session = Some(Box::new(ZosSessionInfo {
            display: ":3".into(),
            xauthority: "/run/user/0/zos-x/zos-session.xauth".into(),
            master: "laptop".into(),
            input: "on".into(),
        }));
        let mut view = View {
            status: Some(s),
            ..View::default()
        };
        assert_eq!(
            view.title(),
            "ZOS z1 · 0 sessions · laptop drives the ZOS session"
        );
        assert!(
            view.lines()
                .contains(&"ZOS session of laptop on :3: laptop drives it now".to_string())
        );
        assert_eq!(
            view.input_toggle(),
            Some(("Refuse input from laptop".into(), false))
        );
        view.status
            .as_mut()
            .unwrap()
            .session
            .as_mut()
            .unwrap()
            .input = "refused".into();
        assert_eq!(view.title(), "ZOS z1 · 0 sessions");
        assert!(
            view.lines()
                .contains(&"ZOS session of laptop on :3: input from laptop refused".to_string())
        );
        assert_eq!(
            view.input_toggle(),
            Some(("Allow input from laptop".into(), true))
        );
        view.status.as_mut().unwrap().session = None;
        assert_eq!(view.input_toggle(), None);
    }

    #[test]
    fn unreachable_daemon_is_said_plainly() {
        let view = View {
            error: Some("no daemon answers".into()),
            ..View::default()
        };
        assert_eq!(view.title(), "ZOS: daemon unreachable");
        assert_eq!(view.lines(), vec!["Daemon unreachable: no daemon answers"]);
    }

    #[test]
    fn expired_code_is_not_shown() {
        let view = View {
            status: Some(status(Some(PairCodeInfo {
                code: "123456".into(),
                level: Level::Partial,
                expires_in_s: 0,
                attempts_left: 3,
            }))),
            ..View::default()
        };
        assert_eq!(view.title(), "ZOS z1 · 0 sessions");
    }

    #[test]
    fn a_task_is_labelled_with_its_program_and_master() {
        let task = TaskInfo {
            id: 3,
            kind: "shared".into(),
            command: vec!["/usr/bin/xterm".into(), "-e".into(), "top".into()],
            display: None,
            state: "running".into(),
            pid: None,
            host: Some("laptop".into()),
            ..TaskInfo::default()
        };
        assert_eq!(view_label(&task), "View xterm (task 3 on laptop)");
    }
}
