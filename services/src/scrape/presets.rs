//! PromQL for each kind's own metric names, grouped by the labels that tell clusters apart.

use super::Metric;
use crate::cluster::TargetKind;

/// The query for `metric` on a target of `kind`, one series per value of `by` (a comma-separated label
/// list). `None` for kinds without presets.
pub fn preset(kind: TargetKind, metric: Metric, by: &str) -> Option<String> {
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
        // Flink's Prometheus reporter names.
        TargetKind::Flink => match metric {
            Metric::CpuLoad => format!("avg by ({by}) (flink_taskmanager_Status_JVM_CPU_Load)"),
            Metric::LagRecords => {
                format!("sum by ({by}) (flink_taskmanager_job_task_operator_pendingRecords)")
            }
            // Flink reports no lag in time: records behind over records consumed per second.
            Metric::LagSeconds => format!(
                "sum by ({by}) (flink_taskmanager_job_task_operator_pendingRecords) \
                 / clamp_min(sum by ({by}) (flink_taskmanager_job_task_operator_numRecordsOutPerSecond{{operator_name=~\"Source.*\"}}), 1)"
            ),
            Metric::RecordsIn => format!(
                "sum by ({by}) (flink_taskmanager_job_task_operator_numRecordsOutPerSecond{{operator_name=~\"Source.*\"}})"
            ),
            Metric::RecordsOut => format!(
                "sum by ({by}) (flink_taskmanager_job_task_operator_numRecordsInPerSecond{{operator_name=~\".*Sink.*\"}})"
            ),
            Metric::Scale => format!("max by ({by}) (flink_jobmanager_numRegisteredTaskManagers)"),
        },
        TargetKind::Generic => return None,
    };
    Some(query)
}
