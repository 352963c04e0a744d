//! The StatusNotifierItem: what ksni serves on D-Bus. It only reads the
//! [`View`] and forwards menu clicks as [`Action`]s to the poller, so no
//! D-Bus call ever waits on the daemon.

use std::sync::mpsc::Sender;

use ksni::menu::StandardItem;
use ksni::{Category, MenuItem, OfflineReason, Status, ToolTip, Tray};
use zos_netproto::Level;

use crate::icon::{self, Look};
use crate::view::{View, view_label};

/// A menu choice, for the poller to carry out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Ask the daemon for a new pairing code of this level.
    NewCode(Level),
    /// Open a viewer for the dominating master's task with this id.
    View(u64),
    /// Accept or refuse the waiting domination request.
    Answer {
        /// Accept (or refuse).
        accept: bool,
        /// Also show the master's apps.
        show_apps: bool,
    },
    /// End the domination (the master is told this zombie's user ended it).
    Release,
    /// Open a viewer for each of the dominating master's apps, now and as
    /// they come.
    ShowMasterApps,
    /// Allow (true) or refuse the dominating master's input in the ZOS
    /// session.
    AllowInput(bool),
    /// Leave.
    Quit,
}

/// The tray item.
pub struct ZosTray {
    /// What it shows.
    pub view: View,
    actions: Sender<Action>,
}

impl ZosTray {
    /// An item that sends menu choices to `actions`.
    pub fn new(actions: Sender<Action>) -> ZosTray {
        ZosTray {
            view: View::default(),
            actions,
        }
    }

    fn look(&self) -> Look {
        Look {
            body: if self.view.status.is_some() && self.view.error.is_none() {
                icon::BLUE
            } else {
                icon::GREY
            },
            badge: self.view.pairing().is_some(),
        }
    }

    fn action_item(&self, label: &str, action: Action) -> MenuItem<ZosTray> {
        StandardItem {
            label: label.into(),
            enabled: action == Action::Quit || self.view.status.is_some(),
            activate: Box::new(move |tray: &mut ZosTray| {
                // The poller is gone only while the tray shuts down.
                let _ = tray.actions.send(action);
            }),
            ..Default::default()
        }
        .into()
    }
}

impl Tray for ZosTray {
    fn id(&self) -> String {
        "zos-zombie".into()
    }

    fn category(&self) -> Category {
        Category::SystemServices
    }

    fn title(&self) -> String {
        self.view.title()
    }

    fn status(&self) -> Status {
        if self.view.pairing().is_some() || self.view.asking().is_some() {
            Status::NeedsAttention
        } else {
            Status::Active
        }
    }

    fn icon_pixmap(&self) -> Vec<ksni::Icon> {
        icon::icons(self.look())
    }

    fn attention_icon_pixmap(&self) -> Vec<ksni::Icon> {
        icon::icons(self.look())
    }

    fn tool_tip(&self) -> ToolTip {
        ToolTip {
            title: self.view.tooltip_title(),
            description: self.view.tooltip_body(),
            icon_name: String::new(),
            icon_pixmap: Vec::new(),
        }
    }

    fn menu(&self) -> Vec<MenuItem<Self>> {
        let mut items: Vec<MenuItem<Self>> = self
            .view
            .lines()
            .into_iter()
            .map(|line| {
                StandardItem {
                    label: line,
                    enabled: false,
                    ..Default::default()
                }
                .into()
            })
            .collect();
        items.push(MenuItem::Separator);
        if let Some(ask) = self.view.asking() {
            items.push(self.action_item(
                &format!("Accept domination by {} ({})", ask.master, ask.level),
                Action::Answer {
                    accept: true,
                    show_apps: false,
                },
            ));
            items.push(self.action_item(
                "Accept and show its apps",
                Action::Answer {
                    accept: true,
                    show_apps: true,
                },
            ));
            items.push(self.action_item(
                "Refuse",
                Action::Answer {
                    accept: false,
                    show_apps: false,
                },
            ));
            items.push(MenuItem::Separator);
        }
        if let Some((label, allow)) = self.view.input_toggle() {
            items.push(self.action_item(&label, Action::AllowInput(allow)));
            items.push(MenuItem::Separator);
        }
        if let Some(master) = self.view.dominating_master() {
            items.push(self.action_item(
                &format!("Release (end the domination by {master})"),
                Action::Release,
            ));
            if !self.view.tasks.is_empty() {
                items.push(self.action_item("Show all its apps", Action::ShowMasterApps));
            }
            for task in &self.view.tasks {
                items.push(self.action_item(&view_label(task), Action::View(task.id)));
            }
            items.push(MenuItem::Separator);
        }
        items.push(self.action_item(
            "New pairing code (complete)",
            Action::NewCode(Level::Complete),
        ));
        items.push(self.action_item(
            "New pairing code (partial)",
            Action::NewCode(Level::Partial),
        ));
        items.push(MenuItem::Separator);
        items.push(self.action_item("Quit", Action::Quit));
        items
    }

    fn watcher_online(&self) {
        tracing::info!("tray host is back");
    }

    fn watcher_offline(&self, reason: OfflineReason) -> bool {
        tracing::warn!("no tray host to show the item ({reason:?}); waiting for one");
        true
    }
}
