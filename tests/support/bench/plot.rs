//! Line charts of a figure against N, one line per operator, drawn on a `Canvas`.

use std::path::Path;

use super::canvas::{BLACK, Canvas, GREY, Rgb};

pub const OURS: Rgb = [31, 119, 180];
pub const PEER: Rgb = [214, 39, 40];
pub const REFERENCE: Rgb = [120, 120, 120];

/// One line: its legend, colour and (N, value) points.
pub struct Series {
    pub label: String,
    pub color: Rgb,
    pub points: Vec<(f64, f64)>,
}

const WIDTH: usize = 720;
const HEIGHT: usize = 440;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

/// Draws `series` against N (logarithmic when N spans a factor of ten or more) under `title`,
/// with the value axis from zero, and saves it as PNG at `path`.
pub fn chart(title: &str, series: &[Series], path: &Path) -> std::io::Result<()> {
    let mut canvas = Canvas::new(WIDTH, HEIGHT);
    let xs: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
    let ys: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).collect();
    let (x_min, x_max) =
        (xs.iter().copied().fold(f64::MAX, f64::min), xs.iter().copied().fold(0.0, f64::max));
    let log = x_min > 0.0 && x_max / x_min >= 10.0;
    let scale_x = |x: f64| if log { x.log10() } else { x };
    let (lo, hi) = if xs.is_empty() || x_min == x_max {
        (scale_x(x_min.max(1.0)) * 0.5, scale_x(x_max.max(1.0)) * 1.5)
    } else {
        let pad = (scale_x(x_max) - scale_x(x_min)) * 0.08;
        (scale_x(x_min) - pad, scale_x(x_max) + pad)
    };
    let y_top = nice_ceiling(ys.iter().copied().fold(0.0, f64::max) * 1.1);
    let (plot_w, plot_h) = (WIDTH as f64 - LEFT - RIGHT, HEIGHT as f64 - TOP - BOTTOM);
    let px = |x: f64| LEFT + (scale_x(x) - lo) / (hi - lo) * plot_w;
    let py = |y: f64| TOP + plot_h - y / y_top * plot_h;

    canvas.text(LEFT as i64, 16, title, 2, BLACK);
    for i in 0..=5 {
        let value = y_top * i as f64 / 5.0;
        let y = py(value);
        canvas.line((LEFT, y), (LEFT + plot_w, y), 1, GREY);
        let label = short_number(value);
        canvas.text(LEFT as i64 - 8 - Canvas::text_width(&label, 2), y as i64 - 7, &label, 2, BLACK);
    }
    let mut ticks = xs.clone();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    for x in ticks {
        let label = short_number(x);
        let at = px(x);
        canvas.line((at, TOP + plot_h), (at, TOP + plot_h + 6.0), 2, BLACK);
        canvas.text(
            at as i64 - Canvas::text_width(&label, 2) / 2,
            (TOP + plot_h + 12.0) as i64,
            &label,
            2,
            BLACK,
        );
    }
    canvas.line((LEFT, TOP), (LEFT, TOP + plot_h), 2, BLACK);
    canvas.line((LEFT, TOP + plot_h), (LEFT + plot_w, TOP + plot_h), 2, BLACK);
    let axis = if log { "N (KEYS, LOG SCALE)" } else { "N (KEYS)" };
    let axis_x = LEFT as i64 + (plot_w as i64 - Canvas::text_width(axis, 2)) / 2;
    canvas.text(axis_x, HEIGHT as i64 - 24, axis, 2, BLACK);

    for (i, s) in series.iter().enumerate() {
        let mut points = s.points.clone();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        for pair in points.windows(2) {
            canvas.line((px(pair[0].0), py(pair[0].1)), (px(pair[1].0), py(pair[1].1)), 3, s.color);
        }
        for (x, y) in &points {
            canvas.fill(px(*x) as i64 - 5, py(*y) as i64 - 5, 11, 11, s.color);
        }
        let legend_y = TOP as i64 + 10 + i as i64 * 22;
        canvas.fill(LEFT as i64 + 16, legend_y + 2, 24, 10, s.color);
        canvas.text(LEFT as i64 + 48, legend_y, &s.label, 2, BLACK);
    }
    canvas.save_png(path)
}

/// The smallest of 1, 2, 2.5 or 5 times a power of ten at or above `value` (1 for zero).
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * power).find(|v| *v >= value).unwrap_or(10.0 * power)
}

/// `1200` → `1200`, `2.5` → `2.5`, `12000` → `12000`: integers plainly, the rest to one decimal.
fn short_number(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        format!("{}", value.round() as i64)
    } else {
        format!("{value:.1}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nice_ceilings() {
        use super::nice_ceiling;
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.1), 5.0);
        assert_eq!(nice_ceiling(220.0), 250.0);
        assert_eq!(nice_ceiling(1000.0), 1000.0);
    }
}
