//! The eframe application: joins the [`Worker`], the [`Model`] and the
//! drawing in [`crate::ui`].

use eframe::egui;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::Model;
use crate::ui;
use crate::worker::{Command, Worker};

/// Opens a viewer window for a shared app (the `zos` binary starts
/// `zos view TASK`, a process of its own).
pub type OpenView = Box<dyn Fn(u64) -> std::io::Result<()>>;

/// The master window's application state.
pub struct MasterApp {
    model: Model,
    worker: Worker,
    open_view: OpenView,
}

impl MasterApp {
    /// Starts polling the daemon at `socket`; `ctx` is asked to repaint
    /// whenever an answer arrives; `open_view` opens viewers.
    pub fn new(socket: PathBuf, ctx: &egui::Context, open_view: OpenView) -> MasterApp {
        tracing::info!(socket = %socket.display(), "master window talks to its daemon");
        let ctx = ctx.clone();
        let worker = Worker::spawn(socket, move || ctx.request_repaint());
        MasterApp {
            model: Model::default(),
            worker,
            open_view,
        }
    }
}

impl eframe::App for MasterApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        for event in self.worker.drain() {
            self.model.apply(event);
        }
        for command in ui::draw(ui, &mut self.model) {
            match command {
                Command::View { task } => {
                    tracing::info!("opening a viewer for task {task}");
                    if let Err(e) = (self.open_view)(task) {
                        tracing::warn!("cannot open a viewer for task {task}: {e}");
                    }
                }
                other => self.worker.send(other),
            }
        }
        // The worker wakes us on news; this is only a safety net.
        ui.ctx().request_repaint_after(Duration::from_secs(1));
    }
}
