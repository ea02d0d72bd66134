//! Cost against lag: for every trace, each policy as one point, at its replica-hours over the oracle's and
//! its minutes of lag above the threshold (medians over the seeds). Lower-left is better on both; a policy
//! dominates another when it is no worse on either and better on one. Read from the reports
//! `autoscaler simulate --json` writes, so the benchmark draws it from what it measured.

use std::{error::Error, path::Path};

use plotters::prelude::*;
use serde::Deserialize;

/// One policy on one trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub policy: String,
    /// Replica-hours over the oracle's, in percent.
    pub extra_cost_percent: f64,
    pub lag_minutes: f64,
}

impl Point {
    /// `policy` at `replica_hours` (over the oracle's `oracle_hours`, more than 0) and `lag_minutes`.
    pub fn new(policy: &str, replica_hours: f64, oracle_hours: f64, lag_minutes: f64) -> Self {
        Self {
            policy: policy.to_owned(),
            extra_cost_percent: (replica_hours / oracle_hours - 1.0) * 100.0,
            lag_minutes,
        }
    }

    /// No more cost and no more lag than `other`, and less of one.
    pub fn dominates(&self, other: &Point) -> bool {
        self.extra_cost_percent <= other.extra_cost_percent
            && self.lag_minutes <= other.lag_minutes
            && (self.extra_cost_percent < other.extra_cost_percent
                || self.lag_minutes < other.lag_minutes)
    }
}

/// Every policy on one trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TracePoints {
    pub trace: String,
    pub points: Vec<Point>,
}

/// The part of a `--json` report this reads.
#[derive(Deserialize)]
struct ReportJson {
    trace: String,
    policies: Vec<PolicyJson>,
}

#[derive(Deserialize)]
struct PolicyJson {
    policy: String,
    median: MedianJson,
}

#[derive(Deserialize)]
struct MedianJson {
    replica_hours: f64,
    lag_over_minutes: f64,
}

impl TracePoints {
    /// From the JSON `autoscaler simulate --json` printed; the oracle is the reference, not a point.
    pub fn from_report(json: &str) -> Result<Self, String> {
        let report: ReportJson = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let oracle = report
            .policies
            .iter()
            .find(|p| p.policy == "oracle")
            .map(|p| p.median.replica_hours)
            .filter(|hours| *hours > 0.0)
            .ok_or("the report has no oracle with replica-hours")?;
        let points = report
            .policies
            .iter()
            .filter(|p| p.policy != "oracle")
            .map(|p| {
                Point::new(
                    &p.policy,
                    p.median.replica_hours,
                    oracle,
                    p.median.lag_over_minutes,
                )
            })
            .collect();
        Ok(Self {
            trace: trace_name(&report.trace),
            points,
        })
    }

    /// The policies that dominate `policy` here.
    pub fn dominating(&self, policy: &str) -> Vec<&str> {
        let Some(it) = self.points.iter().find(|p| p.policy == policy) else {
            return Vec::new();
        };
        self.points
            .iter()
            .filter(|other| other.policy != policy && other.dominates(it))
            .map(|p| p.policy.as_str())
            .collect()
    }
}

/// `services/traces/daily.csv` → `daily`.
fn trace_name(path: &str) -> String {
    Path::new(path)
        .file_stem()
        .map_or_else(|| path.to_owned(), |s| s.to_string_lossy().into_owned())
}

const PANEL: (u32, u32) = (400, 320);
const COLUMNS: usize = 3;

/// One panel per trace, three to a row.
pub fn draw(path: &Path, traces: &[TracePoints]) -> Result<(), String> {
    draw_svg(path, traces).map_err(|e| e.to_string())
}

fn color(policy: &str) -> RGBColor {
    match policy {
        "ours" => RGBColor(200, 30, 30),
        "ours+predictive" => RGBColor(230, 130, 20),
        "hpa" => RGBColor(40, 90, 200),
        "keda" => RGBColor(30, 150, 70),
        "ds2" => RGBColor(150, 80, 180),
        _ => RGBColor(90, 90, 90),
    }
}

fn draw_svg(path: &Path, traces: &[TracePoints]) -> Result<(), Box<dyn Error>> {
    let rows = traces.len().div_ceil(COLUMNS).max(1);
    let size = (PANEL.0 * COLUMNS as u32, PANEL.1 * rows as u32 + 40);
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    let (header, body) = root.split_vertically(40);
    header.draw(&Text::new(
        "Cost against lag: replica-hours over the oracle's (x) and minutes of lag above the threshold (y), medians; lower-left is better",
        (10, 12),
        ("sans-serif", 15).into_font(),
    ))?;
    let panels = body.split_evenly((rows, COLUMNS));
    for (area, trace) in panels.iter().zip(traces) {
        let x_max = trace
            .points
            .iter()
            .map(|p| p.extra_cost_percent)
            .fold(10.0, f64::max)
            * 1.15;
        let x_min = trace
            .points
            .iter()
            .map(|p| p.extra_cost_percent)
            .fold(0.0, f64::min)
            * 1.15;
        let y_max = trace
            .points
            .iter()
            .map(|p| p.lag_minutes)
            .fold(1.0, f64::max)
            * 1.2;
        let mut chart = ChartBuilder::on(area)
            .caption(&trace.trace, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(44)
            .build_cartesian_2d(x_min..x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("% over the oracle")
            .y_desc("lag > threshold, min")
            .light_line_style(WHITE)
            .draw()?;
        for point in &trace.points {
            let at = (point.extra_cost_percent, point.lag_minutes);
            let style = color(&point.policy).filled();
            chart.draw_series(std::iter::once(Circle::new(at, 5, style)))?;
            chart.draw_series(std::iter::once(Text::new(
                point.policy.clone(),
                at,
                ("sans-serif", 13).into_font().color(&color(&point.policy)),
            )))?;
        }
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(policies: &[(&str, f64, f64)]) -> String {
        let policies: Vec<_> = policies
            .iter()
            .map(|(policy, hours, lag)| {
                serde_json::json!({"policy": policy, "median": {"replica_hours": hours, "lag_over_minutes": lag}})
            })
            .collect();
        serde_json::json!({"trace": "services/traces/step.csv", "policies": policies}).to_string()
    }

    #[test]
    fn points_are_relative_to_the_oracle_and_domination_needs_better_on_one_and_no_worse_on_both() {
        let trace = TracePoints::from_report(&report(&[
            ("oracle", 100.0, 0.0),
            ("ours", 120.0, 2.0),
            ("hpa", 110.0, 2.0),
            ("keda", 90.0, 5.0),
            ("ds2", 120.0, 2.0),
        ]))
        .expect("parses");
        assert_eq!(trace.trace, "step");
        assert_eq!(trace.points.len(), 4, "the oracle is the reference");
        let ours = &trace.points[0];
        assert!((ours.extra_cost_percent - 20.0).abs() < 1e-9);
        // hpa: cheaper, same lag → dominates; keda: cheaper but more lag → does not; ds2: equal → does not.
        assert_eq!(trace.dominating("ours"), ["hpa"]);
        assert!(trace.dominating("hpa").is_empty());
    }

    #[test]
    fn a_report_without_an_oracle_is_refused() {
        let error =
            TracePoints::from_report(&report(&[("ours", 1.0, 0.0)])).expect_err("no oracle");
        assert!(error.contains("oracle"), "{error}");
    }

    #[test]
    fn the_plot_is_an_svg_with_every_trace() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("frontier.svg");
        let traces: Vec<_> = ["step", "daily"]
            .iter()
            .map(|name| TracePoints {
                trace: (*name).to_owned(),
                points: vec![Point {
                    policy: "ours".to_owned(),
                    extra_cost_percent: 12.0,
                    lag_minutes: 1.0,
                }],
            })
            .collect();
        draw(&path, &traces).expect("drawn");
        let svg = std::fs::read_to_string(&path).expect("written");
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        assert!(svg.contains("step") && svg.contains("daily"), "{svg}");
    }
}
