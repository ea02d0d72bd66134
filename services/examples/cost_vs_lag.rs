//! `cargo run -p autoscaler --example cost_vs_lag -- OUT.svg REPORT.json...`: the benchmark's cost-against-lag
//! plot from the reports `autoscaler simulate --json` wrote, one panel per trace, and a line per trace
//! saying which policies dominate ours there (cheaper and no more lag, or less lag and no dearer).

use std::io::Write;

use autoscaler::simulate::frontier::{TracePoints, draw};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .ok_or("usage: cost_vs_lag OUT.svg REPORT.json...")?;
    let mut traces = Vec::new();
    for path in args {
        let json = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        traces.push(TracePoints::from_report(&json).map_err(|e| format!("{path}: {e}"))?);
    }
    if traces.is_empty() {
        return Err("no reports given".to_owned());
    }
    draw(std::path::Path::new(&out), &traces)?;
    let mut out = std::io::stdout().lock();
    for trace in &traces {
        let dominating = trace.dominating("ours");
        let line = if dominating.is_empty() {
            format!("{}: no baseline dominates ours", trace.trace)
        } else {
            format!(
                "{}: ours is dominated by {}",
                trace.trace,
                dominating.join(", ")
            )
        };
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
    }
    Ok(())
}
