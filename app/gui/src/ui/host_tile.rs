//! One zombie on screen: its glyph, its name and resources, and its actions.
//!
//! A tile is a drop zone: a task's tile dropped on it migrates the task
//! there ([`crate::drops`] says whether it may). Tiles keep to a fixed size
//! so they line up in rows.

use eframe::egui;
use egui::{
    Align, Color32, CornerRadius, Frame, Layout, Margin, Rect, RichText, Sense, Ui, Vec2, vec2,
};
use zos_netproto::Level;
use zos_netproto::discovery::HostInfo;

use super::drop_zone::{DropEvents, drop_zone};
use super::glyph::{self, GLYPH_SIZE, ZOMBIE_BLUE};
use crate::dominating::Pending;
use crate::drops::Verdict;
use crate::model::PingState;

/// The colour of the "paired" line.
const PAIRED: Color32 = Color32::from_rgb(0x5C, 0xC0, 0x6C);
/// The colour of errors and of a lost pairing.
const BAD: Color32 = Color32::from_rgb(0xE0, 0x60, 0x50);
/// The countdown while a zombie's user is asked.
const COUNTDOWN: Color32 = Color32::from_rgb(0xF0, 0xB0, 0x30);

/// The size every tile takes.
pub const TILE_SIZE: Vec2 = vec2(150.0, 250.0);

/// The tile's inner margin.
const MARGIN: i8 = 8;

/// The size a tile takes on screen, frame and margins included.
pub const OUTER_SIZE: Vec2 = vec2(
    TILE_SIZE.x + 2.0 * MARGIN as f32 + 2.0,
    TILE_SIZE.y + 2.0 * MARGIN as f32 + 2.0,
);

/// What the user did on a tile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TileActions {
    /// A task hovering over the tile, or dropped on it.
    pub drop: DropEvents,
    /// The glyph was clicked.
    pub selected: bool,
    /// "Ping" was clicked.
    pub ping: bool,
    /// "Pair…" was clicked.
    pub pair: bool,
    /// "Dominate" was clicked.
    pub dominate: bool,
    /// "Release" was clicked.
    pub release: bool,
    /// "Cancel" was clicked while the zombie's user is asked.
    pub cancel: bool,
    /// "Drive" (true) or "Stop driving" (false) was clicked.
    pub drive: Option<bool>,
}

/// What a tile shows of the host's domination.
#[derive(Clone, Copy, Debug)]
pub struct TileState<'a> {
    /// The level this master holds, if paired.
    pub paired: Option<Level>,
    /// Whether this master dominates the host.
    pub ours: bool,
    /// Whether this master's keyboard and mouse drive it now.
    pub driven: bool,
    /// A domination or release in progress, or its failure.
    pub domination: Option<&'a Pending>,
    /// The last ping.
    pub ping: Option<&'a PingState>,
    /// The zombie said it no longer trusts this master.
    pub revoked: bool,
}

/// The frame every tile (a zombie's, the master's own) is drawn in.
pub fn tile_frame(ui: &Ui) -> Frame {
    Frame::new()
        .fill(ui.visuals().faint_bg_color)
        .stroke(ui.visuals().widgets.noninteractive.bg_stroke)
        .corner_radius(CornerRadius::same(8))
        .inner_margin(Margin::same(MARGIN))
}

/// Shows `host` as a tile; `verdict` says what dropping a task on it does.
pub fn host_tile(
    ui: &mut Ui,
    host: &HostInfo,
    selected: bool,
    state: TileState<'_>,
    verdict: impl Fn(u64) -> Verdict,
) -> TileActions {
    let mut actions = TileActions::default();
    let frame = tile_frame(ui);
    let ((), drop) = drop_zone(ui, &format!("host {}", host.name), frame, verdict, |ui| {
        ui.allocate_ui_with_layout(TILE_SIZE, Layout::top_down(Align::Center), |ui| {
            ui.set_min_size(TILE_SIZE);
            ui.spacing_mut().item_spacing.y = 3.0;
            let (rect, response) = ui.allocate_exact_size(GLYPH_SIZE, Sense::click());
            glyph::paint_monitor(ui.painter(), rect, ZOMBIE_BLUE, selected);
            actions.selected = response.on_hover_text(hover_text(host)).clicked();

            ui.label(RichText::new(&host.name).strong().size(16.0));
            match state.paired {
                Some(_) if state.revoked => wrapped(
                    ui,
                    RichText::new(format!(
                        "not trusted by {} any more — pair again",
                        host.name
                    ))
                    .color(BAD),
                ),
                Some(level) => {
                    ui.label(RichText::new(format!("paired · {level}")).color(PAIRED));
                }
                None => {
                    ui.label(RichText::new("not paired").weak());
                }
            };
            match (&host.dominated, state.ours) {
                (Some(d), true) => ui.label(RichText::new(format!("yours · {}", d.level)).strong()),
                (Some(d), false) => ui.label(format!("held by {}", d.master)),
                (None, _) => ui.label(RichText::new("free").weak()),
            };
            load_bar(ui, host);
            ui.label(format!("{} cores · load {:.2}", host.cores, host.load1));
            ui.label(format!("{} free", mem(host.mem_free_mib)));
            ui.add_space(2.0);
            let trusted = state.paired.is_some() && !state.revoked;
            ui.horizontal(|ui| {
                // Centre the two buttons under the glyph.
                let buttons = 100.0;
                ui.add_space(((ui.available_width() - buttons) / 2.0).max(0.0));
                // A ping needs a pairing; pairing again only once it is lost.
                let pinging = matches!(state.ping, Some(PingState::Busy));
                actions.ping = ui
                    .add_enabled(trusted && !pinging, egui::Button::new("Ping"))
                    .clicked();
                actions.pair = ui
                    .add_enabled(!trusted, egui::Button::new("Pair…"))
                    .clicked();
            });
            let busy = state.domination.is_some_and(Pending::busy);
            ui.horizontal(|ui| {
                let width = if state.ours { 130.0 } else { 80.0 };
                ui.add_space(((ui.available_width() - width) / 2.0).max(0.0));
                if state.ours {
                    actions.release = ui
                        .add_enabled(!busy, egui::Button::new("Release"))
                        .clicked();
                    let (label, on) = if state.driven {
                        ("Stop driving", false)
                    } else {
                        ("Drive", true)
                    };
                    if ui
                        .add_enabled(!busy, egui::Button::new(label))
                        .on_hover_text("Send this machine's keyboard and mouse to its ZOS session (Ctrl+Alt+Right / Ctrl+Alt+Left switch too)")
                        .clicked()
                    {
                        actions.drive = Some(on);
                    }
                } else {
                    let can = trusted && host.dominated.is_none() && !busy;
                    actions.dominate = ui.add_enabled(can, egui::Button::new("Dominate")).clicked();
                }
            });
            match state.domination {
                Some(Pending::Busy) => {
                    ui.label(RichText::new("waiting for the zombie…").weak());
                }
                Some(asking @ Pending::Asking { .. }) => {
                    let now = std::time::Instant::now();
                    let left = asking.seconds_left(now).unwrap_or(0);
                    wrapped(ui, RichText::new(format!("{}'s user is asked", host.name)));
                    ui.add(
                        egui::ProgressBar::new(asking.share_left(now).unwrap_or(0.0))
                            .desired_width(GLYPH_SIZE.x)
                            .fill(COUNTDOWN)
                            .text(format!("{left} s left")),
                    );
                    actions.cancel = ui.button("Cancel").clicked();
                    ui.ctx()
                        .request_repaint_after(std::time::Duration::from_millis(250));
                }
                Some(Pending::Cancelling) => {
                    ui.label(RichText::new("withdrawing…").weak());
                }
                Some(Pending::Failed(message)) => {
                    wrapped(ui, RichText::new(message).color(BAD));
                }
                None => {}
            }
            if let Some(ping) = state.ping {
                ping_label(ui, ping);
            }
        });
    });
    actions.drop = drop;
    actions
}

/// A thin bar: the 1-minute load as a share of the cores, green when idle,
/// amber when busy, red when overloaded.
fn load_bar(ui: &mut Ui, host: &HostInfo) {
    let share = host.load1 / host.cores.max(1) as f32;
    let (rect, _) = ui.allocate_exact_size(vec2(GLYPH_SIZE.x, 5.0), Sense::hover());
    let painter = ui.painter();
    painter.rect_filled(rect, CornerRadius::same(2), ui.visuals().extreme_bg_color);
    let color = match share {
        s if s < 0.5 => Color32::from_rgb(0x5C, 0xC0, 0x6C),
        s if s < 1.0 => Color32::from_rgb(0xF0, 0xB0, 0x30),
        _ => Color32::from_rgb(0xE8, 0x64, 0x54),
    };
    let filled = Rect::from_min_size(
        rect.min,
        vec2(rect.width() * share.clamp(0.03, 1.0), rect.height()),
    );
    painter.rect_filled(filled, CornerRadius::same(2), color);
}

fn ping_label(ui: &mut Ui, ping: &PingState) {
    match ping {
        PingState::Busy => {
            ui.label(RichText::new("pinging…").weak());
        }
        PingState::Rtt(rtt) => {
            let ms = rtt.as_secs_f64() * 1000.0;
            ui.label(format!("round trip {ms:.2} ms"));
        }
        PingState::Failed(message) => {
            wrapped(
                ui,
                RichText::new(format!("ping failed: {message}")).color(BAD),
            );
        }
    }
}

/// A label wrapped to the tile's width: messages are read in full.
fn wrapped(ui: &mut Ui, text: RichText) {
    ui.add(egui::Label::new(text).wrap());
}

fn hover_text(host: &HostInfo) -> String {
    let addrs: Vec<String> = host.addrs.iter().map(|a| a.to_string()).collect();
    let levels: Vec<String> = host.levels.iter().map(|l| l.to_string()).collect();
    format!(
        "{}\nhost {}\naddresses {} port {}\nfingerprint {}\noffers {}\nprotocol v{}",
        host.name,
        host.host,
        addrs.join(", "),
        host.port,
        host.fingerprint,
        levels.join(", "),
        host.version
    )
}

/// Free memory for people: MiB below 1 GiB, GiB with one decimal above.
pub fn mem(mib: u64) -> String {
    if mib < 1024 {
        format!("{mib} MiB")
    } else {
        format!("{:.1} GiB", mib as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_reads_well() {
        assert_eq!(super::mem(512), "512 MiB");
        assert_eq!(super::mem(2048), "2.0 GiB");
        assert_eq!(super::mem(1536), "1.5 GiB");
    }
}
