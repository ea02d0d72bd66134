//! Prometheus metrics, named for the autoscaler's `engine` preset. Every series carries the constant
//! labels `pipeline` and `instance_id`, so one query grouped by `pipeline` covers all pipelines.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

pub struct Metrics {
    registry: Registry,
    pub records_in: Counter,
    pub records_out: Counter,
    pub records_resent: Counter,
    pub lag_records: Family<PartitionLabels, Gauge>,
    pub lag_seconds: Family<PartitionLabels, FloatGauge>,
    pub cpu_load: FloatGauge,
    pub parallelism: Gauge,
    pub sink_parallelism: Gauge,
    pub bulk_duration: Histogram,
    pub bulk_in_flight: Gauge,
    pub buffer_fill: Family<StageLabels, FloatGauge>,
    pub retries: Family<ReasonLabels, Counter>,
    pub dead_letters: Family<ReasonLabels, Counter>,
    pub commits: Counter,
    pub stale_acks: Counter,
    pub dead_letters_repeated: Counter,
    pub announce_failures: Counter,
}

impl Metrics {
    pub fn new(pipeline: &str, instance_id: &str) -> Self {
        let labels = [
            ("pipeline".into(), pipeline.to_owned().into()),
            ("instance_id".into(), instance_id.to_owned().into()),
        ];
        let mut registry = Registry::with_labels(labels.into_iter());
        let m = Self {
            records_in: Counter::default(),
            records_out: Counter::default(),
            records_resent: Counter::default(),
            lag_records: Family::default(),
            lag_seconds: Family::default(),
            cpu_load: FloatGauge::default(),
            parallelism: Gauge::default(),
            sink_parallelism: Gauge::default(),
            bulk_duration: Histogram::new(exponential_buckets(0.002, 2.0, 16)),
            bulk_in_flight: Gauge::default(),
            buffer_fill: Family::default(),
            retries: Family::default(),
            dead_letters: Family::default(),
            commits: Counter::default(),
            stale_acks: Counter::default(),
            dead_letters_repeated: Counter::default(),
            announce_failures: Counter::default(),
            registry: Registry::default(),
        };
        // prometheus-client appends `_total` to counter names.
        registry.register(
            "engine_records_in",
            "Records consumed from Kafka",
            m.records_in.clone(),
        );
        registry.register(
            "engine_records_out",
            "Records acknowledged by Elasticsearch (including 409 replays of a create)",
            m.records_out.clone(),
        );
        registry.register(
            "engine_records_resent",
            "Records Elasticsearch already had (409 on create): re-sends after a crash, a rebalance \
             or a lost response; divided by engine_records_out, re-sends per record",
            m.records_resent.clone(),
        );
        registry.register(
            "engine_consumer_lag_records",
            "Records between the committed offset and the partition's high watermark",
            m.lag_records.clone(),
        );
        registry.register(
            "engine_consumer_lag_seconds",
            "Age of the oldest record not yet done (or of the last consumed) while lag is non-zero",
            m.lag_seconds.clone(),
        );
        registry.register(
            "engine_cpu_load",
            "Process CPU seconds per second divided by the number of cores (0..1)",
            m.cpu_load.clone(),
        );
        registry.register(
            "engine_parallelism",
            "Current process-stage parallelism (N)",
            m.parallelism.clone(),
        );
        registry.register(
            "engine_sink_parallelism",
            "Current sink-stage parallelism (M)",
            m.sink_parallelism.clone(),
        );
        registry.register(
            "engine_bulk_request_duration_seconds",
            "Duration of _bulk requests, response included",
            m.bulk_duration.clone(),
        );
        registry.register(
            "engine_bulk_requests_in_flight",
            "_bulk requests in flight",
            m.bulk_in_flight.clone(),
        );
        registry.register(
            "engine_buffer_fill",
            "Fill ratio (0..1) of the buffer in front of a stage",
            m.buffer_fill.clone(),
        );
        registry.register(
            "engine_retries",
            "Documents or requests retried, by reason",
            m.retries.clone(),
        );
        registry.register(
            "engine_dead_letters",
            "Records written to the dead-letter destination, by reason",
            m.dead_letters.clone(),
        );
        registry.register(
            "engine_offset_commits",
            "Offset commits sent to Kafka",
            m.commits.clone(),
        );
        registry.register(
            "engine_stale_acks",
            "Acknowledgements for partitions revoked or re-assigned since the record was consumed",
            m.stale_acks.clone(),
        );
        registry.register(
            "engine_dead_letters_repeated",
            "Replayed records not written to the dead-letter destination again: already written before",
            m.dead_letters_repeated.clone(),
        );
        registry.register(
            "engine_announce_failures",
            "Failed webhook announcements",
            m.announce_failures.clone(),
        );
        Self { registry, ..m }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    pub fn retry(&self, reason: crate::sink::bulk::RetryReason, n: u64) {
        self.retries
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc_by(n);
    }

    pub fn dead_letter(&self, reason: crate::transform::record::DeadLetterReason) {
        self.dead_letters
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc();
    }

    pub fn fill(&self, stage: &'static str, len: usize, capacity: usize) {
        let ratio = if capacity == 0 {
            0.0
        } else {
            len as f64 / capacity as f64
        };
        self.buffer_fill
            .get_or_create(&StageLabels { stage })
            .set(ratio);
    }
}

/// Samples process CPU time to derive `engine_cpu_load`.
pub struct CpuSampler {
    cores: f64,
    last: Option<(Instant, Duration)>,
}

impl CpuSampler {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        Self { cores, last: None }
    }

    /// Returns the load since the previous call (None on the first call or if the clock is unreadable).
    pub fn sample(&mut self) -> Option<f64> {
        let now = Instant::now();
        let cpu = process_cpu_time()?;
        let prev = self.last.replace((now, cpu));
        let (then, cpu_then) = prev?;
        Some(cpu_load(
            cpu.saturating_sub(cpu_then),
            now - then,
            self.cores,
        ))
    }
}

impl Default for CpuSampler {
    fn default() -> Self {
        Self::new()
    }
}

/// Process CPU time (user + system).
pub fn process_cpu_time() -> Option<Duration> {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::new(t.tv_sec().max(0) as u64, (t.tv_usec().max(0) as u32) * 1000)
    };
    Some(tv(u.user_time()) + tv(u.system_time()))
}

/// CPU seconds per wall second, per core, clamped to 0..1.
pub fn cpu_load(cpu: Duration, wall: Duration, cores: f64) -> f64 {
    if wall.is_zero() || cores <= 0.0 {
        return 0.0;
    }
    (cpu.as_secs_f64() / wall.as_secs_f64() / cores).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_uses_the_names_the_autoscaler_queries() {
        let m = Metrics::new("logs", "i-1");
        m.records_in.inc();
        m.records_out.inc();
        m.records_resent.inc();
        m.lag_records
            .get_or_create(&PartitionLabels {
                topic: "t".into(),
                partition: "0".into(),
            })
            .set(5);
        m.lag_seconds
            .get_or_create(&PartitionLabels {
                topic: "t".into(),
                partition: "0".into(),
            })
            .set(1.5);
        m.fill("process", 1, 4);
        m.retry(crate::sink::bulk::RetryReason::TooManyRequests, 2);
        m.dead_letter(crate::transform::record::DeadLetterReason::InvalidJson);
        m.bulk_duration.observe(0.01);
        let text = m.encode();
        for needle in [
            "engine_records_in_total{pipeline=\"logs\",instance_id=\"i-1\"} 1",
            "engine_records_out_total{pipeline=\"logs\",instance_id=\"i-1\"} 1",
            "engine_records_resent_total{pipeline=\"logs\",instance_id=\"i-1\"} 1",
            "engine_consumer_lag_records{pipeline=\"logs\",instance_id=\"i-1\",topic=\"t\",partition=\"0\"} 5",
            "engine_consumer_lag_seconds{pipeline=\"logs\",instance_id=\"i-1\",topic=\"t\",partition=\"0\"} 1.5",
            "engine_cpu_load{pipeline=\"logs\",instance_id=\"i-1\"}",
            "engine_parallelism{pipeline=\"logs\",instance_id=\"i-1\"}",
            "engine_bulk_request_duration_seconds_bucket{",
            "engine_bulk_requests_in_flight{pipeline=\"logs\"",
            "engine_buffer_fill{pipeline=\"logs\",instance_id=\"i-1\",stage=\"process\"} 0.25",
            "engine_retries_total{pipeline=\"logs\",instance_id=\"i-1\",reason=\"too_many_requests\"} 2",
            "engine_dead_letters_total{pipeline=\"logs\",instance_id=\"i-1\",reason=\"invalid_json\"} 1",
            "# TYPE engine_records_in counter",
            "# TYPE engine_bulk_request_duration_seconds histogram",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }

    #[test]
    fn cpu_load_is_normalised_per_core_and_clamped() {
        let s = Duration::from_secs;
        assert_eq!(cpu_load(s(1), s(1), 2.0), 0.5);
        assert_eq!(cpu_load(s(4), s(1), 2.0), 1.0);
        assert_eq!(cpu_load(s(1), Duration::ZERO, 2.0), 0.0);
    }

    #[test]
    fn cpu_sampler_reports_after_the_first_sample() {
        let mut s = CpuSampler::new();
        assert!(s.sample().is_none());
        let load = s.sample().expect("second sample");
        assert!((0.0..=1.0).contains(&load));
    }
}
