//! `--plot`: one SVG page with, for every policy, the load against the capacity it provided, and its
//! scale against the lag it let build up, on the same time axis and the same scales for all.

use std::{error::Error, path::Path};

use plotters::prelude::*;

use super::run::{Run, Scenario};

/// Points are drawn per bucket of this many seconds.
const BUCKET_SECONDS: usize = 60;
const WIDTH: u32 = 1200;
const PANEL_HEIGHT: u32 = 340;
const HEADER_HEIGHT: u32 = 40;

/// Writes the plot of the first seed's `runs` to `path`.
pub fn draw(path: &Path, scenario: &Scenario, runs: &[Run], title: &str) -> Result<(), String> {
    draw_svg(path, scenario, runs, title).map_err(|e| e.to_string())
}

struct Lines {
    load: Vec<(f64, f64)>,
    capacity: Vec<(f64, f64)>,
    scale: Vec<(f64, f64)>,
    lag_minutes: Vec<(f64, f64)>,
}

fn hours(second: usize) -> f64 {
    second as f64 / 3600.0
}

fn lines(scenario: &Scenario, run: &Run) -> Lines {
    let mut lines = Lines {
        load: Vec::new(),
        capacity: Vec::new(),
        scale: Vec::new(),
        lag_minutes: Vec::new(),
    };
    let mut previous_scale = None;
    for start in (0..run.scale.len()).step_by(BUCKET_SECONDS) {
        let end = (start + BUCKET_SECONDS).min(run.scale.len());
        let span = (end - start).max(1) as f64;
        let at = hours(start);
        lines.load.push((at, scenario.trace.rate_at(start as f64)));
        lines
            .capacity
            .push((at, run.capacity[start..end].iter().sum::<f64>() / span));
        let lag = run.lag_seconds[start..end]
            .iter()
            .copied()
            .fold(0.0, f64::max);
        lines.lag_minutes.push((at, lag / 60.0));
        for second in start..end {
            let scale = f64::from(run.scale[second]);
            if previous_scale != Some(scale) {
                // A step: the old value up to this second, then the new one.
                if let Some(old) = previous_scale {
                    lines.scale.push((hours(second), old));
                }
                lines.scale.push((hours(second), scale));
                previous_scale = Some(scale);
            }
        }
    }
    if let Some(last) = previous_scale {
        lines.scale.push((hours(run.scale.len()), last));
    }
    lines
}

fn draw_svg(
    path: &Path,
    scenario: &Scenario,
    runs: &[Run],
    title: &str,
) -> Result<(), Box<dyn Error>> {
    let height = HEADER_HEIGHT + PANEL_HEIGHT * runs.len().max(1) as u32;
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (header, body) = root.split_vertically(HEADER_HEIGHT);
    let settings = &scenario.settings;
    header.draw(&Text::new(
        format!(
            "{title}: delay {} s, restart {} s, seed {}",
            settings.actuation_delay_seconds, settings.restart_seconds, settings.seed
        ),
        (10, 12),
        ("sans-serif", 18).into_font(),
    ))?;

    let all: Vec<Lines> = runs.iter().map(|run| lines(scenario, run)).collect();
    let end = hours(runs.first().map_or(1, |r| r.scale.len()));
    let rate_max = all
        .iter()
        .flat_map(|l| l.load.iter().chain(&l.capacity))
        .map(|(_, v)| *v)
        .fold(1.0, f64::max)
        * 1.05;
    let threshold_minutes = settings.policy.lag_seconds_high / 60.0;
    let lag_max = all
        .iter()
        .flat_map(|l| &l.lag_minutes)
        .map(|(_, v)| *v)
        .fold(threshold_minutes * 2.0, f64::max)
        * 1.05;
    let scale_max = f64::from(settings.bounds().max) + 1.0;

    let panels = body.split_evenly((runs.len().max(1), 1));
    for ((area, run), lines) in panels.iter().zip(runs).zip(&all) {
        let (top, bottom) = area.split_vertically(PANEL_HEIGHT / 2);
        let mut rates = ChartBuilder::on(&top)
            .caption(
                format!("{}: {} actions", run.policy, run.actions.len()),
                ("sans-serif", 16),
            )
            .margin(6)
            .x_label_area_size(18)
            .y_label_area_size(70)
            .right_y_label_area_size(70)
            .build_cartesian_2d(0.0..end, 0.0..rate_max)?;
        rates
            .configure_mesh()
            .y_desc("records/s")
            .x_labels(12)
            .light_line_style(WHITE)
            .draw()?;
        rates
            .draw_series(LineSeries::new(lines.load.iter().copied(), &BLUE))?
            .label("load")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE));
        rates
            .draw_series(LineSeries::new(lines.capacity.iter().copied(), &GREEN))?
            .label("capacity")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], GREEN));
        rates
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()?;

        let mut scale = ChartBuilder::on(&bottom)
            .margin(6)
            .x_label_area_size(24)
            .y_label_area_size(70)
            .right_y_label_area_size(70)
            .build_cartesian_2d(0.0..end, 0.0..scale_max)?
            .set_secondary_coord(0.0..end, 0.0..lag_max);
        scale
            .configure_mesh()
            .y_desc("scale")
            .x_desc("hours")
            .x_labels(12)
            .light_line_style(WHITE)
            .draw()?;
        scale
            .configure_secondary_axes()
            .y_desc("lag, minutes")
            .draw()?;
        scale
            .draw_series(LineSeries::new(lines.scale.iter().copied(), &BLACK))?
            .label("scale")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
        scale
            .draw_secondary_series(LineSeries::new(lines.lag_minutes.iter().copied(), &RED))?
            .label("lag")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED));
        scale.draw_secondary_series(LineSeries::new(
            [(0.0, threshold_minutes), (end, threshold_minutes)],
            RED.mix(0.4),
        ))?;
        scale
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()?;
    }
    root.present()?;
    Ok(())
}
