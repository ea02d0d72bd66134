//! PromQL for each kind's own metric names, grouped by the labels that tell clusters apart.

use std::borrow::Cow;

use super::Metric;
use crate::cluster::TargetKind;

/// The query for `metric` on a target of `kind`, one series per value of `labels` (the selector's label
/// names). `None` for kinds without presets.
pub fn preset(kind: TargetKind, metric: Metric, labels: &[String]) -> Option<String> {
    let by = labels.join(", ");
    let query = match kind {
        // The pipeline engine's own metrics (pipeline-engine/README.md); one series per instance.
        TargetKind::Engine => match metric {
            Metric::CpuLoad => format!("avg by ({by}) (engine_cpu_load)"),
            Metric::LagRecords => format!("sum by ({by}) (engine_consumer_lag_records)"),
            Metric::LagSeconds => format!("max by ({by}) (engine_consumer_lag_seconds)"),
            Metric::RecordsIn => format!("sum by ({by}) (rate(engine_records_in_total[1m]))"),
            Metric::RecordsOut => format!("sum by ({by}) (rate(engine_records_out_total[1m]))"),
            // Scale is the number of engine instances reporting.
            Metric::Scale => format!("count by ({by}) (engine_cpu_load)"),
        },
        TargetKind::Flink => flink(metric, &by, &with_vertex(labels)),
        TargetKind::Generic => return None,
    };
    Some(query)
}

// Flink's Prometheus reporter names (checked against a real Flink 2.3 by
// `services/tests/flink_metrics.rs`). Every query reads per-task or per-operator series of the
// TaskManagers, which carry `job_name`, `job_id` and the scrape target's labels; of the JobManager's only
// the job's uptime (matched on `job_id`). The JVM's CPU and the TaskManager count carry no job.
const TASK: &str = "flink_taskmanager_job_task";
const OPERATOR: &str = "flink_taskmanager_job_task_operator";
// FLIP-27 sources are always "Source: <name>"; Sink V2 writers are "<sink name>: Writer" ("Sink: Writer"
// when unnamed). The reporter turns the space into `_`; both spellings match. A two-phase sink's
// "<name>: Committer" counts committables, not records, and is left out.
const SOURCES: &str = r#"operator_name=~"Source:.*""#;
const WRITERS: &str = r#"operator_name=~".*:[ _]Writer""#;

/// `by` is the selector's labels; `by_vertex` adds the job and vertex, to aggregate one vertex first.
fn flink(metric: Metric, by: &str, by_vertex: &str) -> String {
    let records_in = per_second(by, &format!("{OPERATOR}_numRecordsOut{{{SOURCES}}}"));
    let pending = format!("sum by ({by}) ({OPERATOR}_pendingRecords >= 0)");
    match metric {
        // The busiest vertex's mean busy fraction, as Flink's autoscaler reads load: the mean over a
        // vertex's subtasks is what more parallelism spreads (a hot key is not). `>= 0` drops NaN. The
        // gauge averages the task's last 60 s and a task's first 60 s hold its start (1000, then 0, then
        // a climb on a real Flink), so a job is left out until it has run a minute, as Flink's
        // autoscaler waits out a restart.
        Metric::CpuLoad => format!(
            "max by ({by}) (avg by ({by_vertex}) ({TASK}_busyTimeMsPerSecond >= 0) \
             and on (job_id) (flink_jobmanager_job_uptime >= 60000)) / 1000"
        ),
        // What the sources still have to read (FLIP-33 `pendingRecords`: Kafka's offsets behind the log
        // end). Records already read and waiting in network buffers are not counted.
        Metric::LagRecords => pending,
        // The age of the record a source emits now, where records carry timestamps (Kafka's do): -1 when
        // they do not, and then the backlog over the rate at which it is read.
        Metric::LagSeconds => format!(
            "(max by ({by}) ({OPERATOR}_currentEmitEventTimeLag >= 0) / 1000) \
             or ({pending} / clamp_min({records_in}, 1))"
        ),
        Metric::RecordsIn => records_in,
        Metric::RecordsOut => per_second(by, &format!("{OPERATOR}_numRecordsIn{{{WRITERS}}}")),
        // The job's parallelism: the subtasks of its widest vertex. A stopped job's series go stale at
        // the next scrape, so a resubmitted job is never counted with its predecessor.
        Metric::Scale => {
            format!("max by ({by}) (count by ({by_vertex}) ({TASK}_busyTimeMsPerSecond))")
        }
    }
}

/// Records per second now, summed over the live series of a counter. Not the `*PerSecond` meters: they
/// are 60 s moving averages that restart from zero with every task. Not `rate()` either: a restarted
/// task's counter is a new series (new job or attempt id), and `rate()` divides what a series counted by
/// the whole window, so for a minute after a restart it blends the new series' part-window with the
/// outage before it (`flink_metrics`: a job writing 1840/s read as 1045/s just after a resubmission,
/// climbing for a minute). `deriv()` is each
/// series' own slope over the points it has, and `and` keeps only series still reported, so a stopped
/// task's last slope is not added to its successor's. Flink's counters never reset within a series.
fn per_second(by: &str, counter: &str) -> String {
    format!("sum by ({by}) (deriv({counter}[1m]) and {counter})")
}

/// The selector's labels plus the job and vertex (each once).
fn with_vertex(labels: &[String]) -> String {
    let mut all: Vec<&str> = labels.iter().map(String::as_str).collect();
    for extra in ["job_id", "task_id"] {
        if !all.contains(&extra) {
            all.push(extra);
        }
    }
    all.join(", ")
}

/// A selector value as it appears in the kind's series. Flink's reporter replaces every character outside
/// `[a-zA-Z0-9:_]` in a label value with `_` (the job "orders-a" is `job_name="orders_a"`). Both the
/// selector's values and the series' values go through this, so a scrape-target label that Flink never
/// touched (`namespace="team-a"`) matches too; values that differ only in those characters are one.
pub fn label_value(kind: TargetKind, value: &str) -> Cow<'_, str> {
    let kept = |c: char| c.is_ascii_alphanumeric() || c == ':' || c == '_';
    match kind {
        TargetKind::Flink if !value.chars().all(kept) => Cow::Owned(
            value
                .chars()
                .map(|c| if kept(c) { c } else { '_' })
                .collect(),
        ),
        _ => Cow::Borrowed(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(names: &[&str]) -> Vec<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    #[test]
    fn flink_label_values_are_rewritten_as_the_reporter_does() {
        assert_eq!(label_value(TargetKind::Flink, "orders-a"), "orders_a");
        assert_eq!(
            label_value(TargetKind::Flink, "burn -> Sink: Writer"),
            "burn____Sink:_Writer"
        );
        assert_eq!(label_value(TargetKind::Flink, "127.0.0.1"), "127_0_0_1");
        assert_eq!(label_value(TargetKind::Flink, "é"), "_");
        // Idempotent: a value Flink already rewrote stays as it is.
        assert_eq!(label_value(TargetKind::Flink, "orders_a"), "orders_a");
        assert_eq!(label_value(TargetKind::Engine, "orders-a"), "orders-a");
    }

    #[test]
    fn flink_queries_aggregate_each_vertex_by_the_selector_labels_and_the_job() {
        let scale = preset(TargetKind::Flink, Metric::Scale, &labels(&["job_name"])).expect("q");
        assert_eq!(
            scale,
            "max by (job_name) (count by (job_name, job_id, task_id) (flink_taskmanager_job_task_busyTimeMsPerSecond))"
        );
        let cpu = preset(
            TargetKind::Flink,
            Metric::CpuLoad,
            &labels(&["job_id", "namespace"]),
        )
        .expect("q");
        assert!(
            cpu.contains("avg by (job_id, namespace, task_id) ("),
            "{cpu}"
        );
        assert!(cpu.starts_with("max by (job_id, namespace) ("), "{cpu}");
    }

    #[test]
    fn no_flink_query_reads_a_meter_or_a_series_without_a_job() {
        for metric in Metric::ALL {
            let q = preset(TargetKind::Flink, metric, &labels(&["job_name"])).expect("q");
            let meters = q.replace("busyTimeMsPerSecond", "");
            assert!(!meters.contains("PerSecond"), "{q}");
            assert!(!q.contains("numRegisteredTaskManagers"), "{q}");
            assert!(!q.contains("Status_JVM"), "{q}");
        }
        assert_eq!(preset(TargetKind::Generic, Metric::Scale, &[]), None);
    }
}
