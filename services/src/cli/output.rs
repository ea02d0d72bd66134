//! What the CLI prints: aligned tables for people, the API's own JSON or YAML for scripts.

use std::io::Write;

use chrono::{DateTime, Utc};
use comfy_table::{Table, presets::NOTHING};
use serde_json::Value;

use super::client::{Decision, Evaluation, Fetched};
use super::{CliError, Format};
use crate::api::ClusterView;
use crate::cluster::WriteBack;
use crate::simulate::{history::History, report::number};

/// A kubectl-like table: upper-case headers, columns padded, no borders.
fn table(headers: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(NOTHING).set_header(headers.to_vec());
    table
}

fn print_table(out: &mut dyn Write, table: &mut Table) -> Result<(), CliError> {
    // Flush left, three spaces between columns, as kubectl prints.
    for column in table.column_iter_mut() {
        column.set_padding((0, 3));
    }
    for line in table.lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

pub(super) fn print_raw(
    out: &mut dyn Write,
    format: Format,
    value: &Value,
) -> Result<(), CliError> {
    match format {
        Format::Json => {
            let text =
                serde_json::to_string_pretty(value).map_err(|e| CliError::Format(e.to_string()))?;
            writeln!(out, "{text}")?;
        }
        Format::Yaml => {
            let text = serde_yaml::to_string(value).map_err(|e| CliError::Format(e.to_string()))?;
            write!(out, "{text}")?;
        }
        Format::Table => unreachable!("tables are printed by each command"),
    }
    Ok(())
}

/// How long ago, the way people read it: `45s`, `12m`, `3h`, `2d`.
pub fn age(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds().max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86_400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}

fn scale_change(from: Option<i32>, to: Option<i32>) -> String {
    match (from, to) {
        (Some(from), Some(to)) => format!("{from} → {to}"),
        (Some(from), None) => format!("{from} → ?"),
        (None, Some(to)) => format!("? → {to}"),
        (None, None) => "-".to_owned(),
    }
}

fn write_back(cluster: &ClusterView) -> &'static str {
    match cluster.spec.write_back {
        WriteBack::Commit => "commit",
        WriteBack::PullRequest { .. } => "pull_request",
        WriteBack::Recommend { .. } => "recommend",
    }
}

/// `get` and `list`: one row per cluster; `-o json|yaml` prints the one object for a single `get`.
pub fn clusters(
    out: &mut dyn Write,
    format: Format,
    clusters: &[Fetched<ClusterView>],
) -> Result<(), CliError> {
    if format != Format::Table {
        let value = match clusters {
            [one] => one.raw.clone(),
            many => Value::Array(many.iter().map(|c| c.raw.clone()).collect()),
        };
        return print_raw(out, format, &value);
    }
    let now = Utc::now();
    let mut rows = table(&[
        "NAME",
        "KIND",
        "PAUSED",
        "MIN",
        "MAX",
        "WRITE-BACK",
        "REPOSITORY",
        "AGE",
    ]);
    for cluster in clusters.iter().map(|c| &c.typed) {
        rows.add_row(vec![
            cluster.name.clone(),
            cluster.spec.target.kind.as_str().to_owned(),
            cluster.paused.to_string(),
            cluster.spec.policy.min_scale.to_string(),
            cluster.spec.policy.max_scale.to_string(),
            write_back(cluster).to_owned(),
            cluster.spec.git.repository.clone(),
            age(cluster.created_at, now),
        ]);
    }
    print_table(out, &mut rows)
}

/// `apply`, `pause`, `resume`: `cluster/NAME VERB`, or the stored cluster with `-o json|yaml`.
pub fn cluster_changed(
    out: &mut dyn Write,
    format: Format,
    cluster: &Fetched<ClusterView>,
    verb: &str,
) -> Result<(), CliError> {
    if format != Format::Table {
        return print_raw(out, format, &cluster.raw);
    }
    writeln!(out, "cluster/{} {verb}", cluster.typed.name)?;
    Ok(())
}

pub fn deleted(out: &mut dyn Write, format: Format, name: &str) -> Result<(), CliError> {
    if format != Format::Table {
        return print_raw(
            out,
            format,
            &serde_json::json!({"name": name, "deleted": true}),
        );
    }
    writeln!(out, "cluster/{name} deleted")?;
    Ok(())
}

pub fn evaluation(
    out: &mut dyn Write,
    format: Format,
    evaluation: &Fetched<Evaluation>,
) -> Result<(), CliError> {
    if format != Format::Table {
        return print_raw(out, format, &evaluation.raw);
    }
    let e = &evaluation.typed;
    let fired = e.fired.as_ref().map_or("none", |v| v.rule.as_str());
    writeln!(out, "Evaluated at: {}", e.evaluated_at.to_rfc3339())?;
    writeln!(out, "Fired:        {fired}")?;
    writeln!(
        out,
        "Blocked by:   {}",
        e.blocked_by.as_deref().unwrap_or("-")
    )?;
    writeln!(out, "Would act:    {}", if e.act { "yes" } else { "no" })?;
    writeln!(out)?;
    let mut rows = table(&["RULE", "DIRECTION", "OUTCOME", "REASON"]);
    for verdict in &e.verdicts {
        rows.add_row(vec![
            verdict.rule.clone(),
            verdict.direction.clone(),
            verdict.outcome.clone(),
            verdict.reason.clone(),
        ]);
    }
    print_table(out, &mut rows)
}

/// `samples`: one row per sample, oldest first; `-o json|yaml` prints the history as exported.
pub fn samples(
    out: &mut dyn Write,
    format: Format,
    history: &Fetched<History>,
) -> Result<(), CliError> {
    if format != Format::Table {
        return print_raw(out, format, &history.raw);
    }
    let figure = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), number);
    let mut rows = table(&[
        "SAMPLED",
        "SCALE",
        "CPU",
        "LAG-S",
        "LAG-RECORDS",
        "IN/S",
        "OUT/S",
    ]);
    for s in &history.typed.samples {
        rows.add_row(vec![
            s.sampled_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            figure(s.scale),
            figure(s.cpu_load),
            figure(s.lag_seconds),
            figure(s.lag_records),
            figure(s.records_in),
            figure(s.records_out),
        ]);
    }
    print_table(out, &mut rows)
}

pub fn decisions(
    out: &mut dyn Write,
    format: Format,
    decisions: &[Fetched<Decision>],
) -> Result<(), CliError> {
    if format != Format::Table {
        let items = decisions.iter().map(|d| d.raw.clone()).collect();
        return print_raw(out, format, &Value::Array(items));
    }
    let now = Utc::now();
    let mut rows = table(&["ID", "STATUS", "RULE", "SCALE", "AGE", "REASON"]);
    for d in decisions.iter().map(|d| &d.typed) {
        rows.add_row(vec![
            d.id.to_string(),
            match d.repeats {
                1 => d.status.as_str().to_owned(),
                n => format!("{} ×{n}", d.status.as_str()),
            },
            d.rule.clone(),
            scale_change(d.from_scale, d.to_scale),
            age(d.created_at, now),
            d.reason.clone().unwrap_or_default(),
        ]);
    }
    print_table(out, &mut rows)
}

/// A step's detail in one line: its JSON, cut short.
pub fn step_detail(detail: &Value) -> String {
    const MAX: usize = 100;
    if detail.is_null() || detail.as_object().is_some_and(|o| o.is_empty()) {
        return String::new();
    }
    let text = detail.to_string();
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX - 1).collect();
        format!("{cut}…")
    } else {
        text
    }
}

pub fn decision(
    out: &mut dyn Write,
    format: Format,
    decision: &Fetched<Decision>,
) -> Result<(), CliError> {
    if format != Format::Table {
        return print_raw(out, format, &decision.raw);
    }
    let d = &decision.typed;
    writeln!(out, "Decision:  {}", d.id)?;
    writeln!(out, "Cluster:   {}", d.cluster)?;
    writeln!(out, "Status:    {}", d.status.as_str())?;
    writeln!(out, "Rule:      {}", d.rule)?;
    writeln!(out, "Scale:     {}", scale_change(d.from_scale, d.to_scale))?;
    writeln!(out, "Created:   {}", d.created_at.to_rfc3339())?;
    if d.repeats > 1 {
        let first = d
            .first_at
            .map_or_else(|| "-".to_owned(), |at| at.to_rfc3339());
        writeln!(
            out,
            "Repeated:  {} identical skips since {first}",
            d.repeats
        )?;
    }
    if let Some(finished) = d.finished_at {
        writeln!(out, "Finished:  {}", finished.to_rfc3339())?;
    }
    if let Some(reason) = &d.reason {
        writeln!(out, "Reason:    {reason}")?;
    }
    if d.steps.is_empty() {
        writeln!(out, "Steps:     none yet")?;
        return Ok(());
    }
    writeln!(out, "Steps:")?;
    let mut rows = table(&["AT", "STEP", "DETAIL"]);
    for step in &d.steps {
        rows.add_row(vec![
            step.at.format("%Y-%m-%d %H:%M:%S").to_string(),
            step.step.clone(),
            step_detail(&step.detail),
        ]);
    }
    print_table(out, &mut rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        let now = Utc::now();
        let ago = |s: i64| age(now - chrono::Duration::seconds(s), now);
        assert_eq!(ago(5), "5s");
        assert_eq!(ago(125), "2m");
        assert_eq!(ago(3 * 3600 + 5), "3h");
        assert_eq!(ago(2 * 86_400 + 7), "2d");
        // A clock a little ahead of the server's never shows a negative age.
        assert_eq!(ago(-3), "0s");
    }

    #[test]
    fn long_step_details_are_cut_short() {
        let detail = serde_json::json!({"message": "x".repeat(300)});
        let shown = step_detail(&detail);
        assert_eq!(shown.chars().count(), 100);
        assert!(shown.ends_with('…'));
        assert_eq!(step_detail(&serde_json::json!({})), "");
    }
}
