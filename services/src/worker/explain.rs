//! What a change says about itself: the commit message, and the pull request a reviewer reads, with a
//! chart of the window that GitHub renders in place (Mermaid `xychart-beta`).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::{
    cluster::ScaleUnit,
    decide::Sample,
    estimate::{Estimate, Method},
};

/// At most this many points per chart: enough to see a trend, small enough to read the source.
const CHART_POINTS: usize = 24;

/// Everything a reviewer needs to judge one decision.
#[derive(Debug, Clone)]
pub struct Explanation<'a> {
    pub cluster: &'a str,
    pub decision_id: i64,
    pub rule: &'a str,
    pub rule_reason: &'a str,
    /// Both in `unit`: the number in Git.
    pub from: u64,
    pub to: u64,
    /// What the number counts, for Flink; instances when `None`.
    pub unit: Option<ScaleUnit>,
    pub estimate: Option<&'a Estimate>,
    pub notes: &'a [String],
    pub window: (DateTime<Utc>, DateTime<Utc>),
    pub samples: &'a [Sample],
    /// Where the decision can be read through the API, when the service knows its public address.
    pub decision_url: Option<String>,
}

impl Explanation<'_> {
    pub fn title(&self) -> String {
        match self.unit {
            None => format!("Scale {} from {} to {}", self.cluster, self.from, self.to),
            Some(unit) => format!(
                "Scale {}: {}",
                self.cluster,
                unit.describe_change(self.from, self.to)
            ),
        }
    }

    /// One unit of scale in words, for rates per unit.
    fn per_unit(&self) -> &'static str {
        match self.unit {
            None => "worker",
            Some(ScaleUnit::Parallelism {}) => "subtask",
            Some(ScaleUnit::TaskManagers { .. }) => "TaskManager",
        }
    }

    pub fn commit_message(&self) -> String {
        let mut text = format!(
            "{}\n\nRule {}: {}\n",
            self.title(),
            self.rule,
            self.rule_reason
        );
        if let Some(estimate) = self.estimate {
            let _ = writeln!(
                text,
                "Estimate: {}",
                method_summary(estimate, self.per_unit())
            );
        }
        for note in self.notes {
            let _ = writeln!(text, "Check: {note}");
        }
        let _ = write!(text, "Decision {}", self.decision_id);
        if let Some(url) = &self.decision_url {
            let _ = write!(text, ": {url}");
        }
        text
    }

    pub fn pull_request_body(&self) -> String {
        let mut body = self.facts("proposes to scale");
        let _ = writeln!(
            body,
            "\nMerging applies the change through Argo CD. Closing without merging keeps the current scale.\n"
        );
        let mut metadata = serde_json::json!({
            "cluster": self.cluster,
            "decision": self.decision_id,
            "from": self.from,
            "to": self.to,
        });
        if let Some(unit) = self.unit {
            metadata["scale_unit"] = serde_json::json!(unit);
        }
        let _ = write!(body, "<!--autoscaler:{metadata}-->");
        body
    }

    /// The comment recommend-only mode leaves on a pull request that changes the scale file `path`:
    /// the same facts as a pull request of its own, and the decision's marker, by which a retried task
    /// finds the comment it already posted.
    pub fn recommendation_comment(&self, path: &str) -> String {
        let mut body = self.facts("recommends scaling");
        let _ = writeln!(
            body,
            "\nThis pull request changes `{}`, where the scale lives. The autoscaler runs in recommend-only \
             mode (`write_back.mode: recommend`): it wrote nothing and will not.\n",
            path.replace('`', "'")
        );
        body.push_str(&decision_marker(self.decision_id));
        body
    }

    /// What the change is and why: the headline, the table of facts and the charts.
    fn facts(&self, verb: &str) -> String {
        let mut body = String::new();
        let change = match self.unit {
            None => format!(" from **{}** to **{}**", self.from, self.to),
            Some(unit) => format!(": {}", unit.describe_change(self.from, self.to)),
        };
        let _ = writeln!(
            body,
            "The autoscaler {verb} **{}**{change}.\n",
            self.cluster
        );
        let _ = writeln!(body, "| | |\n|---|---|");
        let _ = writeln!(
            body,
            "| Rule | `{}`: {} |",
            self.rule,
            escape_cell(self.rule_reason)
        );
        let _ = writeln!(
            body,
            "| Window | {} to {} UTC |",
            self.window.0.format("%Y-%m-%d %H:%M"),
            self.window.1.format("%H:%M")
        );
        if let Some(estimate) = self.estimate {
            let _ = writeln!(
                body,
                "| Estimate | {} |",
                escape_cell(&method_summary(estimate, self.per_unit()))
            );
            let _ = writeln!(
                body,
                "| Required throughput | {:.0} records/s (forecast input {:.0} records/s, plus the backlog, with headroom) |",
                estimate.required_throughput, estimate.forecast_input
            );
            let unit = self.unit.map_or("", |u| match u {
                ScaleUnit::Parallelism {} => " (parallelism)",
                ScaleUnit::TaskManagers { .. } => " TaskManagers",
            });
            let _ = writeln!(body, "| Model scale | {}{unit} |", estimate.scale);
        }
        for note in self.notes {
            let _ = writeln!(body, "| Check | {} |", escape_cell(note));
        }
        let decision = match &self.decision_url {
            Some(url) => format!("[{}]({url})", self.decision_id),
            None => self.decision_id.to_string(),
        };
        let _ = writeln!(body, "| Decision | {decision} |\n");
        body.push_str(&self.charts());
        body
    }

    /// Two small charts: lag in seconds, and records in and out per second.
    fn charts(&self) -> String {
        let buckets = bucket(self.samples);
        if buckets.is_empty() {
            return "_No samples in the window to chart._\n".to_owned();
        }
        let labels: Vec<String> = buckets
            .iter()
            .map(|b| format!("\"{}\"", b.at.format("%H:%M")))
            .collect();
        let series = |pick: fn(&Bucket) -> f64| {
            buckets
                .iter()
                .map(|b| format!("{:.0}", pick(b)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let axis = labels.join(", ");
        let mut out = String::new();
        let _ = writeln!(
            out,
            "```mermaid\nxychart-beta\n    title \"Consumer lag (s)\"\n    x-axis [{axis}]\n    y-axis \"seconds\"\n    line [{}]\n```",
            series(|b| b.lag_seconds)
        );
        let _ = writeln!(
            out,
            "```mermaid\nxychart-beta\n    title \"Records in (bar) and out (line) per second\"\n    x-axis [{axis}]\n    y-axis \"records/s\"\n    bar [{}]\n    line [{}]\n```",
            series(|b| b.records_in),
            series(|b| b.records_out)
        );
        out.push_str("_Each point averages the samples of its slot; a slot without samples repeats the previous value._\n");
        out
    }
}

/// The hidden line that marks a comment as this decision's: GitHub renders HTML comments as nothing.
pub fn decision_marker(decision_id: i64) -> String {
    format!("<!-- autoscaler-decision: {decision_id} -->")
}

/// `per` names one unit of scale: worker, subtask or TaskManager.
fn method_summary(estimate: &Estimate, per: &str) -> String {
    match &estimate.method {
        Method::Regression { fit } => format!(
            "linear regression of capacity on scale over {} scales{}: {:.0} + {:.0} records/s per {per} (R² {:.2})",
            fit.points,
            remembered(estimate),
            fit.intercept,
            fit.slope,
            fit.r2
        ),
        Method::PowerLaw {
            fit,
            coefficient,
            exponent,
            r2,
            line_r2,
        } => format!(
            "power law of capacity on scale over {} scales{}: {coefficient:.0} × {per}s^{exponent:.2} records/s (R² {r2:.2}{})",
            fit.points,
            remembered(estimate),
            line_r2.map_or_else(String::new, |r2| format!(", a line's {r2:.2}"))
        ),
        Method::Proportional { reason, per_worker } => {
            format!("proportional, {per_worker:.0} records/s per {per} (no fitted model: {reason})")
        }
    }
}

fn remembered(estimate: &Estimate) -> String {
    match estimate.remembered_scales {
        0 => String::new(),
        n => format!(" ({n} remembered from earlier decisions)"),
    }
}

/// Keeps a table cell on one line and its pipes literal.
fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    at: DateTime<Utc>,
    lag_seconds: f64,
    records_in: f64,
    records_out: f64,
}

/// Averages the samples into at most `CHART_POINTS` slots of equal length.
fn bucket(samples: &[Sample]) -> Vec<Bucket> {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return Vec::new();
    };
    let span = (last.sampled_at - first.sampled_at)
        .num_milliseconds()
        .max(1);
    let slots = samples.len().min(CHART_POINTS);
    let mut sums = vec![[(0.0, 0u32); 3]; slots];
    for sample in samples {
        let offset = (sample.sampled_at - first.sampled_at).num_milliseconds();
        let slot = ((offset * slots as i64) / (span + 1)) as usize;
        let slot = slot.min(slots - 1);
        for (i, value) in [sample.lag_seconds, sample.records_in, sample.records_out]
            .into_iter()
            .enumerate()
        {
            if let Some(v) = value.filter(|v| v.is_finite()) {
                sums[slot][i].0 += v;
                sums[slot][i].1 += 1;
            }
        }
    }
    let mut previous = [0.0; 3];
    sums.iter()
        .enumerate()
        .map(|(slot, sum)| {
            let mut values = previous;
            for (i, (total, count)) in sum.iter().enumerate() {
                if *count > 0 {
                    values[i] = total / f64::from(*count);
                }
            }
            previous = values;
            Bucket {
                at: first.sampled_at
                    + chrono::Duration::milliseconds(span * slot as i64 / slots as i64),
                lag_seconds: values[0],
                records_in: values[1],
                records_out: values[2],
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn samples(count: usize) -> Vec<Sample> {
        let start = Utc
            .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .single()
            .expect("time");
        (0..count)
            .map(|i| Sample {
                sampled_at: start + Duration::seconds(30 * i as i64),
                cpu_load: Some(0.9),
                lag_records: Some(1000.0),
                lag_seconds: if i == 3 { None } else { Some(300.0 + i as f64) },
                records_in: Some(5000.0),
                records_out: Some(4000.0),
                scale: Some(2.0),
            })
            .collect()
    }

    fn explanation(samples: &[Sample]) -> Explanation<'_> {
        Explanation {
            cluster: "logs-ingest",
            decision_id: 42,
            rule: "lag_above_threshold",
            rule_reason: "lag 320 s | above 300 s",
            from: 2,
            to: 5,
            unit: None,
            estimate: None,
            notes: &[],
            window: (
                samples.first().map_or_else(Utc::now, |s| s.sampled_at),
                samples.last().map_or_else(Utc::now, |s| s.sampled_at),
            ),
            samples,
            decision_url: Some("https://autoscaler.example.com/api/v1/decisions/42".to_owned()),
        }
    }

    #[test]
    fn the_body_has_both_charts_the_facts_and_machine_readable_metadata() {
        let samples = samples(60);
        let body = explanation(&samples).pull_request_body();
        assert_eq!(
            body.matches("```mermaid\nxychart-beta").count(),
            2,
            "{body}"
        );
        assert!(
            body.contains("| Rule | `lag_above_threshold`: lag 320 s \\| above 300 s |"),
            "{body}"
        );
        assert!(body.contains("[42](https://autoscaler.example.com/api/v1/decisions/42)"));
        assert!(body.ends_with(
            r#"<!--autoscaler:{"cluster":"logs-ingest","decision":42,"from":2,"to":5}-->"#
        ));
        let axis = body
            .lines()
            .find(|l| l.trim_start().starts_with("x-axis"))
            .expect("an axis");
        assert_eq!(axis.matches('"').count(), 2 * CHART_POINTS, "{axis}");
    }

    #[test]
    fn the_recommendation_comment_has_the_pull_requests_facts_and_the_decisions_marker() {
        let samples = samples(60);
        let explanation = explanation(&samples);
        let comment = explanation.recommendation_comment("pipelines/logs/values.yaml");
        assert!(
            comment.starts_with(
                "The autoscaler recommends scaling **logs-ingest** from **2** to **5**.\n"
            ),
            "{comment}"
        );
        // One renderer: the table and charts are the pull request body's, byte for byte.
        let body = explanation.pull_request_body();
        let table =
            &body[body.find("| | |").expect("a table")..body.find("\nMerging").expect("end")];
        assert!(comment.contains(table), "{comment}");
        assert!(
            comment.contains("changes `pipelines/logs/values.yaml`"),
            "{comment}"
        );
        assert!(
            comment.ends_with("<!-- autoscaler-decision: 42 -->"),
            "{comment}"
        );
        assert!(!comment.contains("<!--autoscaler:{"), "{comment}");
    }

    #[test]
    fn slots_average_and_carry_gaps_forward() {
        let samples = samples(4);
        let buckets = bucket(&samples);
        assert_eq!(buckets.len(), 4);
        assert_eq!(buckets[2].lag_seconds, 302.0);
        // The fourth sample has no lag: the slot repeats the previous value rather than dropping to 0.
        assert_eq!(buckets[3].lag_seconds, 302.0);
        assert!(bucket(&[]).is_empty());
    }

    #[test]
    fn the_commit_message_says_what_and_why() {
        let samples = samples(2);
        let message = explanation(&samples).commit_message();
        assert!(
            message.starts_with("Scale logs-ingest from 2 to 5\n\nRule lag_above_threshold: "),
            "{message}"
        );
        assert!(
            message.ends_with("Decision 42: https://autoscaler.example.com/api/v1/decisions/42")
        );
    }

    #[test]
    fn a_flink_change_names_its_unit_and_for_task_managers_both_numbers() {
        let samples = samples(2);
        let mut explanation = explanation(&samples);
        explanation.cluster = "orders";
        explanation.from = 2;
        explanation.to = 3;
        explanation.unit = Some(ScaleUnit::TaskManagers {
            slots_per_task_manager: 2,
        });
        let message = explanation.commit_message();
        assert!(
            message.starts_with(
                "Scale orders: TaskManagers 2 → 3 (parallelism 4 → 6, 2 slots each)\n\n"
            ),
            "{message}"
        );
        let body = explanation.pull_request_body();
        assert!(
            body.starts_with("The autoscaler proposes to scale **orders**: TaskManagers 2 → 3 (parallelism 4 → 6, 2 slots each)."),
            "{body}"
        );
        assert!(
            body.ends_with(
                r#""scale_unit":{"slots_per_task_manager":2,"unit":"task_managers"},"to":3}-->"#
            ),
            "{body}"
        );

        explanation.unit = Some(ScaleUnit::Parallelism {});
        assert_eq!(explanation.title(), "Scale orders: parallelism 2 → 3");
        let body = explanation.pull_request_body();
        assert!(!body.contains("TaskManager"), "{body}");
    }
}
