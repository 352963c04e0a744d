//! Viewer windows a dominated zombie opens on its own display: one
//! `zos view TASK` process per shared app of the master
//! ([`super::helpers::Helper`]), ended when the domination ends (each also
//! ends by itself when its view's stream closes).
//!
//! Which apps get one is the zombie's user's choice: none by itself,
//! unless the user chose "show the master's apps" (in the consent prompt,
//! the tray, the status window: [`Viewers::show_all`], which also follows
//! apps started later) or `viewers = true` in `zombie.toml` says so for
//! every domination. `zos view TASK` opens one by hand. While the ZOS
//! session is open ([`Viewers::show_in`]) every shared app gets a viewer,
//! inside that session.

use std::collections::BTreeMap;
use std::path::PathBuf;

use zos_netproto::wire::TaskSummary;

use super::helpers::Helper;

/// The viewer processes of one domination.
pub(crate) struct Viewers {
    home: PathBuf,
    /// Whether this zombie has a display to open them on.
    display: bool,
    /// Whether every shared app of the master gets one.
    follow: bool,
    /// The ZOS session the windows open in, if one is open.
    session: Option<super::SessionEnv>,
    open: BTreeMap<u64, Helper>,
}

impl Viewers {
    /// Viewers for the zombie whose home is `home`; none are opened without
    /// a `display`, and only when asked unless `follow`.
    pub(crate) fn new(home: PathBuf, display: bool, follow: bool) -> Viewers {
        Viewers {
            home,
            display,
            follow,
            session: None,
            open: BTreeMap::new(),
        }
    }

    /// Opens the viewers from now on inside the ZOS session `env` (every
    /// shared app gets one there), or again on the zombie's own display
    /// (`None`: as the user chose before).
    pub(crate) fn show_in(&mut self, env: Option<super::SessionEnv>) {
        if env.is_some() {
            self.follow = true;
            self.display = true;
        }
        self.session = env;
    }

    /// Whether every shared app gets a viewer.
    pub(crate) fn follows(&self) -> bool {
        self.follow && self.display
    }

    /// From now on every shared app gets a viewer: opens one for each in
    /// `tasks` not shown yet. Returns how many it opened, or why none can be.
    pub(crate) fn show_all(&mut self, tasks: &[TaskSummary]) -> Result<u32, String> {
        if !self.display {
            return Err("this zombie has no display to show the master's apps on".into());
        }
        self.follow = true;
        Ok(self.follow_tasks(tasks))
    }

    /// Opens a viewer for each shared app not shown yet, when every app
    /// gets one; forgets viewers that have exited. Returns how many it
    /// opened.
    pub(crate) fn follow_tasks(&mut self, tasks: &[TaskSummary]) -> u32 {
        self.open.retain(|_, viewer| viewer.running());
        let mut opened = 0;
        if !self.follows() {
            return opened;
        }
        for task in tasks.iter().filter(|t| t.kind == "shared") {
            if self.open.contains_key(&task.id) {
                continue;
            }
            let what = format!("viewer for the master's task {}", task.id);
            let args = ["view", &task.id.to_string()];
            match Helper::spawn_in(&self.home, &args, what, self.session.as_ref()) {
                Ok(viewer) => {
                    self.open.insert(task.id, viewer);
                    opened += 1;
                }
                Err(e) => tracing::warn!("cannot open a viewer for task {}: {e}", task.id),
            }
        }
        opened
    }

    /// Ends every viewer (SIGTERM, then SIGKILL) and reaps it; blocks.
    pub(crate) fn close_all(&mut self) {
        for (_, viewer) in std::mem::take(&mut self.open) {
            viewer.close();
        }
    }
}
