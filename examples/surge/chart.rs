//! The run as an SVG: the line, admissions per second, bookings under each appointment mode, and
//! the share of bookings fast clients hold and of given-back units they take under each mode, over
//! simulated time.

use std::path::Path;

use plotters::prelude::*;

use crate::booking::{MODES, Mode};
use crate::sim::{Report, Sample};

/// A series: its name, its colour, and the value it plots.
type Series = (&'static str, RGBColor, Box<dyn Fn(&Sample) -> f64>);

/// The colour of each mode's series.
const MODE_COLORS: [RGBColor; MODES] = [
    RGBColor(0, 128, 0),
    RGBColor(0, 90, 200),
    RGBColor(200, 0, 120),
    RGBColor(230, 130, 0),
];

/// A panel: its title, its series, and the top of its y axis if the data's own would hide the
/// part that matters (values above are drawn at the top).
type Panel = (&'static str, Vec<Series>, Option<f64>, Span);

/// How much of the run a panel shows.
#[derive(Clone, Copy)]
enum Span {
    /// Until the line has been empty a while: the room's part of the run.
    Line,
    /// The whole run.
    Run,
}

fn panels(report: &Report) -> Vec<Panel> {
    let per_mode = |value: fn(&Sample, usize) -> f64| -> Vec<Series> {
        Mode::ALL
            .iter()
            .filter(|&&m| report.modes[m as usize].ran)
            .map(|&m| {
                let series: Series = (
                    m.name(),
                    MODE_COLORS[m as usize],
                    Box::new(move |s: &Sample| value(s, m as usize)),
                );
                series
            })
            .collect()
    };
    let fast_applicants = 100.0 * report.fast_registered as f64 / report.registered.max(1) as f64;
    // A fast-client share per mode, drawn against their share of applicants.
    let against_applicants = |value: fn(&Sample, usize) -> f64| -> Vec<Series> {
        let mut series = per_mode(value);
        series.push((
            "their share of applicants",
            BLACK,
            Box::new(move |_: &Sample| fast_applicants),
        ));
        series
    };
    let shares =
        against_applicants(|s, m| 100.0 * s.fast_bookings[m] as f64 / s.bookings[m].max(1) as f64);
    let taken = against_applicants(|s, m| {
        100.0 * s.fast_given_back[m] as f64 / s.given_back_taken[m].max(1) as f64
    });
    let claims = report.without_claims.is_some();
    let ours = if claims {
        "with claims"
    } else {
        "waiting room"
    };
    // Without claims first, so that the room's own line is drawn over it.
    let mut waiting: Vec<Series> = Vec::new();
    let mut admissions: Vec<Series> = Vec::new();
    if claims {
        waiting.push((
            "without claims",
            RGBColor(160, 160, 160),
            Box::new(|s: &Sample| s.waiting_without_claims as f64),
        ));
        admissions.push((
            "without claims",
            RGBColor(160, 160, 160),
            Box::new(|s: &Sample| s.admissions_per_sec_without_claims as f64),
        ));
    }
    waiting.push((ours, BLUE, Box::new(|s: &Sample| s.waiting as f64)));
    admissions.push((
        ours,
        RED,
        Box::new(|s: &Sample| s.admissions_per_sec as f64),
    ));
    vec![
        ("visitors waiting in line", waiting, None, Span::Line),
        ("admissions per second", admissions, None, Span::Line),
        (
            "bookings held (confirmed, not cancelled), by mode",
            per_mode(|s, m| s.bookings[m] as f64),
            None,
            Span::Run,
        ),
        // The first bookings of a run are all fast clients' (100%): the axis stops at 4x their
        // share of applicants, where the differences between modes show.
        (
            "share of bookings held by fast clients (%), by mode",
            shares,
            Some(4.0 * fast_applicants.max(0.25)),
            Span::Run,
        ),
        (
            "share of given-back units (cancelled, lapsed) taken by fast clients (%), by mode",
            taken,
            Some(4.0 * fast_applicants.max(0.25)),
            Span::Run,
        ),
    ]
}

pub fn draw(path: &Path, report: &Report) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1000, 1500)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = panels(report);
    let areas = root.split_evenly((panels.len(), 1));
    let run_min = report.samples.last().map_or(1.0, |s| s.t_secs).max(1.0) / 60.0;
    let line_empty_secs = report
        .without_claims
        .as_ref()
        .map_or(report.room.line_empty_secs, |w| {
            w.line_empty_secs.max(report.room.line_empty_secs)
        });
    let line_min = ((line_empty_secs * 1.25 + 60.0) / 60.0).min(run_min);
    for (area, (title, series, cap, span)) in areas.iter().zip(&panels) {
        let t_max = match span {
            Span::Line => line_min,
            Span::Run => run_min,
        };
        let top = cap.unwrap_or(f64::INFINITY);
        let y_max = series
            .iter()
            .flat_map(|(_, _, value)| report.samples.iter().map(value))
            .fold(0.0, f64::max)
            .clamp(1.0, top)
            * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(*title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..t_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("simulated minutes")
            .y_label_formatter(&|y| {
                if y_max < 20.0 {
                    format!("{y:.1}")
                } else {
                    format!("{y:.0}")
                }
            })
            .draw()?;
        for (name, color, value) in series {
            let color = *color;
            chart
                .draw_series(LineSeries::new(
                    report
                        .samples
                        .iter()
                        .take_while(|s| s.t_secs / 60.0 <= t_max)
                        .map(|s| (s.t_secs / 60.0, value(s).min(top))),
                    color.stroke_width(2),
                ))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }
    }
    root.present()?;
    Ok(())
}
