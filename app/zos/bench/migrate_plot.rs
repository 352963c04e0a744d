//! The paper's experiment as a PNG: the time to dominate a zombie against the number of tasks,
//! tm and its parts (zt, fs, xt, Σ pt), with the 2 s goal, drawn with `plotters` into a
//! buffer and written with the `image` crate. Text uses DejaVu Sans (Debian's
//! `fonts-dejavu-core`).

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;

use super::migrate::DomRow;

/// Where the font is read from.
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const SIZE: (u32, u32) = (900, 560);

/// Draws `rows` into the PNG file `png`.
/// One plotted line: its legend, its colour and the figure it reads from a row.
type Series = (&'static str, RGBColor, fn(&DomRow) -> f64);

pub fn draw(rows: &[DomRow], png: &Path) -> Result<()> {
    let font = std::fs::read(FONT)
        .with_context(|| format!("the plot's font {FONT} (Debian: fonts-dejavu-core)"))?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into()))
        .map_err(|_| anyhow!("{FONT} is not a usable font"))?;
    let mut pixels = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let max_ms = rows.iter().map(|r| r.tm() * 1e3).fold(2000.0f64, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Time to dominate a zombie with n tasks (tm = zt + fs + xt + Σ pt)",
                ("sans-serif", 22),
            )
            .margin(20)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(0u32..17u32, 0f64..max_ms)
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc("tasks (half shared apps, half migrants of 64 MiB)")
            .y_desc("ms")
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        let series: [Series; 5] = [
            ("tm", BLACK, |r| r.tm()),
            ("Σ pt (migrants moved)", RED, |r| r.pt),
            ("zt (connect, authenticate)", BLUE, |r| r.zt),
            ("fs (shared folders)", GREEN, |r| r.fs),
            ("xt (display set-up)", MAGENTA, |r| r.xt),
        ];
        for (name, colour, value) in series {
            let points: Vec<(u32, f64)> = rows
                .iter()
                .map(|r| (r.tasks as u32, value(r) * 1e3))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(|e| anyhow!("{e}"))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 4, colour.filled())),
                )
                .map_err(|e| anyhow!("{e}"))?;
        }
        chart
            .draw_series(LineSeries::new(
                vec![(0u32, 2000.0), (17u32, 2000.0)],
                RGBColor(160, 160, 160).stroke_width(1),
            ))
            .map_err(|e| anyhow!("{e}"))?
            .label("goal: 2 s for 16 tasks")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(160, 160, 160)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    let img = image::RgbImage::from_raw(SIZE.0, SIZE.1, pixels)
        .ok_or_else(|| anyhow!("the plot's buffer has the wrong size"))?;
    img.save(png)
        .with_context(|| format!("write {}", png.display()))?;
    Ok(())
}
