//! The ZOS master window.
//!
//! It shows the zombies the local daemon sees on the LAN, live, as icons
//! with their resources; pairs with them; pings them; shows this
//! instance's identity and its tasks; and moves migrant tasks: a task's
//! tile dragged onto a host's icon migrates it there (onto the master's own
//! icon: home), with a progress bar on the tile while it moves. It talks to the daemon only through the control
//! socket ([`zos_netproto::control`]), from a [`worker`] thread.
//!
//! The crate is split so the drawing can run headless: [`model`] holds the
//! state, [`ui`] draws it into any `egui::Ui` and returns [`worker::Command`]s,
//! and [`app`] joins them to eframe.

use eframe::egui;
pub mod app;
pub mod dominating;
pub mod drops;
pub mod migrant;
pub mod model;
pub mod move_requests;
pub mod moves;
pub mod ui;
pub mod units;
pub mod worker;

use std::path::PathBuf;

/// The window's title.
pub const TITLE: &str = "ZOS master";

/// Opens the master window for the daemon whose control socket is `socket`,
/// and returns when the window is closed. `open_view` opens a viewer window
/// for a shared app (each new one, and on the user's request).
pub fn run(socket: PathBuf, open_view: app::OpenView) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(TITLE)
            .with_app_id("zos-master")
            .with_inner_size([900.0, 600.0])
            .with_min_inner_size([520.0, 360.0]),
        ..Default::default()
    };
    eframe::run_native(
        TITLE,
        options,
        Box::new(move |cc| {
            Ok(Box::new(app::MasterApp::new(
                socket,
                &cc.egui_ctx,
                open_view,
            )))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the master window failed: {e}"))
}
