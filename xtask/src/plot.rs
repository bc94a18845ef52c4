//! PNG curves for the attack reports: percentages (accuracy, detection) against one variable.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

/// One curve: its legend and its values in `[0, 1]`, one per x.
pub struct Series<'a> {
    /// Legend.
    pub label: &'a str,
    /// Values in `[0, 1]`, drawn as percentages.
    pub values: Vec<f64>,
}

const COLOURS: [RGBColor; 5] = [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44), RGBColor(255, 127, 14), RGBColor(148, 103, 189)];

/// Draws `series` against `x` into the PNG `path` (written atomically), titled `title`, with
/// `x_label` under the x axis and percentages on the y axis.
///
/// # Errors
/// No font to draw text with, or the file cannot be written.
pub fn curves(path: &Path, title: &str, x_label: &str, x: &[f64], series: &[Series<'_>]) -> Result<()> {
    // The encoder picks the format from the extension: the temporary name keeps `.png`.
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("curve.png");
    let tmp = path.with_file_name(format!(".tmp-{name}"));
    draw(&tmp, title, x_label, x, series).map_err(|e| anyhow!("cannot draw `{}`: {e}", path.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| anyhow!("cannot write `{}`: {e}", path.display()))?;
    Ok(())
}

fn draw(path: &Path, title: &str, x_label: &str, x: &[f64], series: &[Series<'_>]) -> Result<(), Box<dyn std::error::Error>> {
    let area = BitMapBackend::new(path, (760, 440)).into_drawing_area();
    area.fill(&WHITE)?;
    let (lo, hi) = x.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo.is_finite() && hi > lo { (lo, hi) } else { (0.0, 1.0) };
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(52)
        .build_cartesian_2d(lo..hi, 0.0..100.0)?;
    chart.configure_mesh().x_desc(x_label).y_desc("%").draw()?;
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<(f64, f64)> = x.iter().zip(&s.values).map(|(&a, &v)| (a, 100.0 * v)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
            .label(s.label)
            .legend(move |(px, py)| PathElement::new(vec![(px, py), (px + 18, py)], colour.stroke_width(2)));
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, colour.filled())))?;
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).position(SeriesLabelPosition::LowerLeft).draw()?;
    area.present()?;
    Ok(())
}
