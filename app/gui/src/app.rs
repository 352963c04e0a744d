//! The eframe application: joins the [`Worker`], the [`Model`] and the
//! drawing in [`crate::ui`].

use eframe::egui;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::Model;
use crate::ui;
use crate::worker::Worker;

/// The master window's application state.
pub struct MasterApp {
    model: Model,
    worker: Worker,
}

impl MasterApp {
    /// Starts polling the daemon at `socket`; `ctx` is asked to repaint
    /// whenever an answer arrives.
    pub fn new(socket: PathBuf, ctx: &egui::Context) -> MasterApp {
        tracing::info!(socket = %socket.display(), "master window talks to its daemon");
        let ctx = ctx.clone();
        let worker = Worker::spawn(socket, move || ctx.request_repaint());
        MasterApp {
            model: Model::default(),
            worker,
        }
    }
}

impl eframe::App for MasterApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        for event in self.worker.drain() {
            self.model.apply(event);
        }
        for command in ui::draw(ui, &mut self.model) {
            self.worker.send(command);
        }
        // The worker wakes us on news; this is only a safety net.
        ui.ctx().request_repaint_after(Duration::from_secs(1));
    }
}
