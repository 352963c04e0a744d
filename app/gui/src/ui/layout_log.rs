//! Where the task tiles and drop zones are on screen, logged at debug level
//! (`layout: task 3 at x=… y=… w=… h=…`, physical pixels inside the
//! window) whenever one moves, so a test driving the real window with
//! xdotool — or a person reading the log — knows where to point.

use std::collections::HashMap;

use eframe::egui;
use egui::{Context, Id, Rect};

/// Logs `what`'s rectangle if it changed since it was last logged.
pub fn note(ctx: &Context, what: &str, rect: Rect) {
    let ppp = ctx.pixels_per_point();
    let px =
        [rect.min.x, rect.min.y, rect.width(), rect.height()].map(|v| (v * ppp).round() as i32);
    let changed = ctx.data_mut(|data| {
        let seen =
            data.get_temp_mut_or_default::<HashMap<String, [i32; 4]>>(Id::unique("layout-log"));
        seen.insert(what.to_owned(), px) != Some(px)
    });
    if changed {
        let [x, y, w, h] = px;
        tracing::debug!("layout: {what} at x={x} y={y} w={w} h={h}");
    }
}
