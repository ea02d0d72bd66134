//! The simulated stream job: a Kafka topic with a backlog, workers that process it at a capacity that
//! grows with scale (up to the partition count, maybe sub-linearly), a sink that may cap it, and restarts
//! during which nothing is processed. Time moves in whole seconds.
//!
//! The metrics it exposes are the ones the service scrapes, measured as the engine measures them:
//! `records_in` and `records_out` are what the job consumed and wrote (a one-minute rate, as the PromQL
//! presets take it), not what producers wrote; `lag_seconds` is the age of the oldest unprocessed record;
//! `cpu_load` is the workers' busy share. While the job restarts no instance reports, so every metric is
//! missing.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::noise::Noise;
use crate::decide::Sample;

/// The window of the rate metrics, as in the presets' `rate(...[1m])`.
const RATE_WINDOW_SECONDS: usize = 60;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobModel {
    /// Records per second one worker processes.
    pub capacity_per_worker: f64,
    /// Capacity grows as scale^exponent: 1 is linear, below 1 diminishing returns.
    pub scaling_exponent: f64,
    /// The topic's partitions: workers beyond this many idle.
    pub partitions: u32,
    /// What the sink takes at most, whatever the scale (records per second).
    pub sink_cap: Option<f64>,
}

impl JobModel {
    /// What the workers can process at `scale`, before the sink's cap.
    pub fn worker_capacity(&self, scale: u32) -> f64 {
        let busy = scale.min(self.partitions);
        self.capacity_per_worker * f64::from(busy).powf(self.scaling_exponent)
    }

    /// What the job can process at `scale`.
    pub fn capacity(&self, scale: u32) -> f64 {
        let workers = self.worker_capacity(scale);
        self.sink_cap.map_or(workers, |cap| workers.min(cap))
    }

    /// The smallest scale in `[min, max]` that processes `rate`; where none does, the smallest that
    /// processes the most there is.
    pub fn scale_for(&self, rate: f64, min: u32, max: u32) -> u32 {
        let max = max.max(min);
        if let Some(scale) = (min..=max).find(|s| self.capacity(*s) >= rate) {
            return scale;
        }
        let best = self.capacity(max);
        (min..=max)
            .find(|s| self.capacity(*s) >= best * (1.0 - 1e-9))
            .unwrap_or(max)
    }
}

#[derive(Debug, Clone)]
pub struct Job {
    pub model: JobModel,
    /// The scale the job runs at (the last change that took effect).
    pub scale: u32,
    restarting_until: f64,
    pub lag_records: f64,
    /// Records arrived by each whole second, counted from `backlog_seconds` before the start.
    arrived: Vec<f64>,
    backlog_seconds: usize,
    /// Records processed by each whole second since the start.
    processed: Vec<f64>,
    /// Seconds simulated so far.
    now: usize,
}

impl Job {
    /// A job at `scale` that starts with `backlog_seconds` of input at `initial_rate` waiting.
    pub fn new(model: JobModel, scale: u32, backlog_seconds: usize, initial_rate: f64) -> Self {
        let arrived: Vec<f64> = (0..=backlog_seconds)
            .map(|s| s as f64 * initial_rate)
            .collect();
        Self {
            model,
            scale,
            restarting_until: 0.0,
            lag_records: backlog_seconds as f64 * initial_rate,
            arrived,
            backlog_seconds,
            processed: vec![0.0],
            now: 0,
        }
    }

    pub fn now(&self) -> usize {
        self.now
    }

    pub fn restarting(&self) -> bool {
        (self.now as f64) < self.restarting_until
    }

    pub fn restart_remaining(&self) -> f64 {
        (self.restarting_until - self.now as f64).max(0.0)
    }

    /// A change takes effect now: the job restarts at `scale` and processes nothing for `downtime`.
    pub fn rescale(&mut self, scale: u32, downtime_seconds: f64) {
        self.scale = scale;
        self.restarting_until = self.now as f64 + downtime_seconds;
    }

    /// What the job can process this second.
    pub fn capacity_now(&self) -> f64 {
        if self.restarting() {
            0.0
        } else {
            self.model.capacity(self.scale)
        }
    }

    /// One second with `rate` records per second arriving.
    pub fn advance(&mut self, rate: f64) {
        let available = self.lag_records + rate;
        let done = self.capacity_now().min(available);
        self.lag_records = available - done;
        let arrived = self.arrived.last().copied().unwrap_or_default() + rate;
        self.arrived.push(arrived);
        let processed = self.processed.last().copied().unwrap_or_default() + done;
        self.processed.push(processed);
        self.now += 1;
    }

    /// The age of the oldest unprocessed record, in seconds.
    pub fn lag_seconds(&self) -> f64 {
        if self.lag_records < 0.5 {
            return 0.0;
        }
        let done = self.processed.last().copied().unwrap_or_default();
        let next = self.arrived.partition_point(|a| *a <= done);
        let (Some(before), Some(after)) = (
            next.checked_sub(1).and_then(|i| self.arrived.get(i)),
            self.arrived.get(next),
        ) else {
            return 0.0;
        };
        let arrived_at =
            (next - 1) as f64 + (done - before) / (after - before) - self.backlog_seconds as f64;
        (self.now as f64 - arrived_at).max(0.0)
    }

    /// Records processed per second over the last minute (or since the start).
    pub fn processed_rate(&self) -> f64 {
        let span = RATE_WINDOW_SECONDS.min(self.now).max(1);
        let newest = self.processed.last().copied().unwrap_or_default();
        let oldest = self.processed[self.processed.len().saturating_sub(span + 1)];
        (newest - oldest) / span as f64
    }

    /// The workers' busy share: what they processed over what they could, idle workers included.
    fn cpu_load(&self, processed_rate: f64) -> f64 {
        let capacity = self.model.worker_capacity(self.scale);
        if capacity <= 0.0 || self.scale == 0 {
            return 0.0;
        }
        let busy = f64::from(self.scale.min(self.model.partitions)) / f64::from(self.scale);
        (processed_rate / capacity * busy).clamp(0.0, 1.0)
    }

    /// One scrape, as the service would store it. The noise is drawn whether or not a metric is there.
    pub fn sample(&self, at: DateTime<Utc>, noise: &mut Noise) -> Sample {
        let rate = self.processed_rate();
        let (cpu, records_in, records_out) = (
            noise.apply(self.cpu_load(rate)).min(1.0),
            noise.apply(rate),
            noise.apply(rate),
        );
        if self.restarting() {
            return Sample::empty(at);
        }
        Sample {
            sampled_at: at,
            cpu_load: Some(cpu),
            lag_records: Some(self.lag_records.round()),
            lag_seconds: Some(self.lag_seconds()),
            records_in: Some(records_in),
            records_out: Some(records_out),
            scale: Some(f64::from(self.scale)),
        }
    }
}
