//! The run as an SVG: the line, admissions per second and bookings over simulated time.

use std::path::Path;

use plotters::prelude::*;

use crate::sim::{Report, Sample};

/// A panel: its title, its colour, and the value it plots.
type Panel = (&'static str, RGBColor, fn(&Sample) -> f64);

const PANELS: [Panel; 3] = [
    ("visitors waiting in line", BLUE, |s| s.waiting as f64),
    ("admissions per second", RED, |s| {
        s.admissions_per_sec as f64
    }),
    ("bookings (confirmed, not cancelled)", GREEN, |s| {
        s.bookings as f64
    }),
];

pub fn draw(path: &Path, report: &Report) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1000, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let areas = root.split_evenly((3, 1));
    let t_max = report.samples.last().map_or(1.0, |s| s.t_secs).max(1.0) / 60.0;
    for (area, (title, color, value)) in areas.iter().zip(PANELS) {
        let y_max = report.samples.iter().map(value).fold(1.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..t_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("simulated minutes")
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        chart.draw_series(LineSeries::new(
            report.samples.iter().map(|s| (s.t_secs / 60.0, value(s))),
            color,
        ))?;
    }
    root.present()?;
    Ok(())
}
