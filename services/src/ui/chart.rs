//! SVG charts drawn with plotters, as the simulator's `--plot` is: time on x, one panel per quantity, the
//! same colours (load blue, capacity green, scale black, lag red). Only numbers, times and fixed words go
//! into the SVG, so it can be inlined as it is.

use chrono::{DateTime, Duration, Utc};
use plotters::prelude::*;

/// One line of a chart: its name in the legend, its colour, and its points (a gap where `None`).
pub struct Series {
    pub name: &'static str,
    pub color: RGBColor,
    pub points: Vec<(DateTime<Utc>, Option<f64>)>,
    /// Drawn as steps (the value holds until the next point), as a scale is.
    pub steps: bool,
}

impl Series {
    pub fn new(
        name: &'static str,
        color: RGBColor,
        points: Vec<(DateTime<Utc>, Option<f64>)>,
    ) -> Self {
        Self {
            name,
            color,
            points,
            steps: false,
        }
    }

    pub fn stepped(mut self) -> Self {
        self.steps = true;
        self
    }
}

/// A decision drawn as a vertical line at the time it was taken, labelled with its id.
pub struct Mark {
    pub at: DateTime<Utc>,
    pub id: i64,
    pub color: RGBColor,
}

pub struct Chart<'a> {
    pub title: &'static str,
    pub unit: &'static str,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub series: Vec<Series>,
    /// Horizontal reference lines (a threshold, a bound), faint.
    pub references: Vec<(f64, RGBColor)>,
    pub marks: &'a [Mark],
}

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 230;

fn seconds(start: DateTime<Utc>, at: DateTime<Utc>) -> f64 {
    (at - start).num_milliseconds() as f64 / 1000.0
}

/// The runs of consecutive present values, each as (x, y) points; steps hold each value until the next.
fn segments(start: DateTime<Utc>, series: &Series) -> Vec<Vec<(f64, f64)>> {
    let mut segments = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for (at, value) in &series.points {
        let x = seconds(start, *at);
        match value {
            Some(y) if y.is_finite() => {
                if series.steps
                    && let Some(&(_, previous)) = current.last()
                {
                    current.push((x, previous));
                }
                current.push((x, *y));
            }
            _ => {
                if !current.is_empty() {
                    segments.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    segments
}

fn time_label(start: DateTime<Utc>, span: Duration, x: f64) -> String {
    let at = start + Duration::milliseconds((x * 1000.0) as i64);
    if span > Duration::hours(36) {
        at.format("%m-%d %H:%M").to_string()
    } else {
        at.format("%H:%M").to_string()
    }
}

/// The chart as an `<svg>` element.
pub fn draw(chart: &Chart<'_>) -> Result<String, String> {
    let mut svg = String::new();
    draw_into(&mut svg, chart).map_err(|e| e.to_string())?;
    Ok(svg)
}

fn draw_into<'s>(
    svg: &'s mut String,
    chart: &Chart<'_>,
) -> Result<(), Box<dyn std::error::Error + 's>> {
    let span = chart.end - chart.start;
    let x_end = seconds(chart.start, chart.end).max(1.0);
    let y_max = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|(_, v)| *v))
        .chain(chart.references.iter().map(|(v, _)| *v))
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max)
        * 1.1;
    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut plot = ChartBuilder::on(&root)
        .caption(chart.title, ("sans-serif", 15))
        .margin(8)
        .x_label_area_size(22)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_end, 0.0..y_max)?;
    plot.configure_mesh()
        .x_labels(10)
        .y_labels(5)
        .x_label_formatter(&|x| time_label(chart.start, span, *x))
        .y_desc(chart.unit)
        .light_line_style(WHITE)
        .draw()?;
    for (value, color) in &chart.references {
        plot.draw_series(LineSeries::new(
            [(0.0, *value), (x_end, *value)],
            color.mix(0.35),
        ))?;
    }
    for mark in chart.marks {
        let x = seconds(chart.start, mark.at);
        if !(0.0..=x_end).contains(&x) {
            continue;
        }
        plot.draw_series(LineSeries::new(
            [(x, 0.0), (x, y_max)],
            mark.color.mix(0.7).stroke_width(1),
        ))?;
        plot.draw_series(std::iter::once(Text::new(
            format!("#{}", mark.id),
            (x, y_max * 0.97),
            ("sans-serif", 11).into_font().color(&mark.color),
        )))?;
    }
    for series in &chart.series {
        let color = series.color;
        let mut first = true;
        for segment in segments(chart.start, series) {
            let drawn = plot.draw_series(LineSeries::new(segment, color.stroke_width(2)))?;
            if first {
                drawn
                    .label(series.name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
                first = false;
            }
        }
    }
    plot.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK.mix(0.3))
        .background_style(WHITE.mix(0.85))
        .draw()?;
    root.present()?;
    Ok(())
}

/// A small line of the lag over the list's window, without axes.
pub fn sparkline(
    points: &[(DateTime<Utc>, Option<f64>)],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<String, String> {
    let mut svg = String::new();
    sparkline_into(&mut svg, points, start, end).map_err(|e| e.to_string())?;
    Ok(svg)
}

fn sparkline_into<'a>(
    svg: &'a mut String,
    points: &[(DateTime<Utc>, Option<f64>)],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let x_end = seconds(start, end).max(1.0);
    let y_max = points
        .iter()
        .filter_map(|(_, v)| *v)
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max)
        * 1.1;
    let root = SVGBackend::with_string(svg, (120, 28)).into_drawing_area();
    let mut plot = ChartBuilder::on(&root)
        .margin(2)
        .build_cartesian_2d(0.0..x_end, 0.0..y_max)?;
    let series = Series::new("lag", RED, points.to_vec());
    for segment in segments(start, &series) {
        plot.draw_series(LineSeries::new(segment, RED.stroke_width(1)))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_split_a_line_and_steps_hold_their_value() {
        let start = Utc::now();
        let at = |s: i64| start + Duration::seconds(s);
        let series = Series::new(
            "scale",
            BLACK,
            vec![
                (at(0), Some(1.0)),
                (at(10), Some(2.0)),
                (at(20), None),
                (at(30), Some(3.0)),
            ],
        )
        .stepped();
        assert_eq!(
            segments(start, &series),
            [
                vec![(0.0, 1.0), (10.0, 1.0), (10.0, 2.0)],
                vec![(30.0, 3.0)]
            ]
        );
    }

    #[test]
    fn a_chart_is_an_svg_with_its_marks() {
        let start = Utc::now() - Duration::hours(1);
        let end = Utc::now();
        let marks = [Mark {
            at: start + Duration::minutes(30),
            id: 42,
            color: GREEN,
        }];
        let svg = draw(&Chart {
            title: "Lag",
            unit: "seconds",
            start,
            end,
            series: vec![Series::new(
                "lag",
                RED,
                vec![
                    (start, Some(3.0)),
                    (start + Duration::minutes(40), Some(30.0)),
                ],
            )],
            references: vec![(15.0, RED)],
            marks: &marks,
        })
        .expect("a value");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("#42"), "{svg}");
        assert!(
            sparkline(&[(start, Some(1.0)), (end, Some(2.0))], start, end)
                .expect("a value")
                .starts_with("<svg")
        );
    }
}
