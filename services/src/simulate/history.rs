//! A cluster's recorded history replayed: the samples the service stored (exported by
//! `GET /api/v1/clusters/{name}/samples`) become a load trace, and the job model is fitted to them, so
//! that the simulator can run policies against what the cluster really saw.
//!
//! - The load is what arrived, not what the job consumed: `records_in` plus the lag's growth between
//!   samples, read by the estimator's own `estimate::arrival_rates`, one row per sample.
//! - The capacity of a worker is the median of what one worker moved while a backlog waited (lag above
//!   the policy's `lag_seconds_low`, so it processed all it could), over the samples the estimator
//!   counts as settled ([`crate::estimate::SETTLE_SECONDS`] after the scale changed). Without enough of
//!   those, the median of the output rate over the CPU-busy workers (`records_out / (scale × cpu_load)`) over samples busy enough for CPU to
//!   mean something. Growth is taken as linear (exponent 1) and the sink as uncapped: a history rarely
//!   shows enough scales to tell, and a job held back by its sink reads as slower workers, which errs
//!   towards more replicas, not less.
//! - Partitions: a flag, else the policy's `partition_count`, else the larger of `max_scale` and the
//!   highest scale seen, so that the replay never caps a policy below what it may ask for.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    job::JobModel,
    run::{Scenario, Settings},
    trace::{Trace, TraceError},
};
use crate::{
    cluster::Policy,
    decide::Sample,
    estimate::{Run, arrival_rates, median, runs},
};

/// Fewer samples than this at saturation, or busy enough, and that source of the fit is not used.
const MIN_FIT_SAMPLES: usize = 5;
/// Below this CPU load a JVM's own work dwarfs the job's, and output over CPU says little.
const MIN_FIT_CPU: f64 = 0.2;
/// A replay needs at least this many samples with an input rate.
pub const MIN_SAMPLES: usize = 10;

/// A cluster's recorded samples, as the API exports them and `autoscaler simulate --history` reads them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct History {
    pub cluster: String,
    /// The cluster's policy when the history was exported: a replay follows its bounds and thresholds.
    pub policy: Policy,
    /// The samples are those taken after this instant...
    pub since: DateTime<Utc>,
    /// ...and up to this one (when it was exported).
    pub until: DateTime<Utc>,
    /// In time order. A missing metric is `null` (it was not scraped, or the job was restarting).
    pub samples: Vec<Sample>,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("cannot read the history {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not an exported history (GET /api/v1/clusters/NAME/samples): {problem}")]
    Parse { path: String, problem: String },
    #[error(
        "the history holds {found} samples with an input rate; a replay needs at least {MIN_SAMPLES}"
    )]
    TooFew { found: usize },
    #[error("no sample holds a scale: the replay cannot tell where the job started")]
    NoScale,
    #[error(
        "the history shows no capacity: fewer than {MIN_FIT_SAMPLES} settled samples with a backlog \
         (lag above {lag_seconds_low} s) or with CPU load of at least {MIN_FIT_CPU} and an output rate; \
         pass --capacity-per-worker"
    )]
    NoCapacity { lag_seconds_low: f64 },
    #[error("the replayed trace: {0}")]
    Trace(#[from] TraceError),
}

impl History {
    pub fn read(path: &Path) -> Result<Self, HistoryError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| HistoryError::Read {
            path: shown.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| HistoryError::Parse {
            path: shown,
            problem: e.to_string(),
        })
    }
}

/// How the capacity per worker was read from the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FitMethod {
    /// The median of `records_out / scale` over samples with a backlog waiting.
    Saturated,
    /// The median of `records_out / (scale × cpu_load)` over samples busy enough.
    Cpu,
    /// Given on the command line.
    Given,
}

/// The job model fitted to a history.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FittedModel {
    /// Records per second one worker processes.
    pub capacity_per_worker: f64,
    pub method: FitMethod,
    /// How many samples the fit took its median over (0 when given).
    pub evidence: usize,
    /// The cap on useful parallelism the replay uses.
    pub partitions: u32,
}

/// Everything a replay needs from a history besides the policy.
#[derive(Debug, Clone)]
pub struct Replay {
    pub trace: Trace,
    pub model: FittedModel,
    /// The scale and backlog the job had at the first sample.
    pub initial_scale: u32,
    pub initial_lag_seconds: u32,
    /// The median spacing of the samples: how often the service scraped.
    pub scrape_interval_seconds: u32,
    /// Samples in the history, and the hours it spans.
    pub samples: usize,
    pub hours: f64,
}

/// The history replayed: the trace of what arrived and the fitted job. `partitions` and
/// `capacity_per_worker` override what the history says.
pub fn replay(
    history: &History,
    partitions: Option<u32>,
    capacity_per_worker: Option<f64>,
) -> Result<Replay, HistoryError> {
    let samples = &history.samples;
    let trace = trace(samples)?;
    let scales = || {
        samples
            .iter()
            .filter_map(|s| s.scale.filter(|v| v.is_finite()))
    };
    let initial_scale = scales()
        .next()
        .ok_or(HistoryError::NoScale)?
        .round()
        .max(1.0) as u32;
    let seen = scales().fold(0.0, f64::max).round() as u32;
    let partitions = partitions
        .or(history.policy.partition_count)
        .unwrap_or(history.policy.max_scale.max(seen))
        .max(1);
    let model = match capacity_per_worker {
        Some(given) => FittedModel {
            capacity_per_worker: given,
            method: FitMethod::Given,
            evidence: 0,
            partitions,
        },
        None => fit_capacity(samples, &history.policy, partitions)?,
    };
    let initial_lag_seconds = samples
        .iter()
        .find_map(|s| s.lag_seconds.filter(|v| v.is_finite()))
        .unwrap_or(0.0)
        .max(0.0)
        .round() as u32;
    let span = match (samples.first(), samples.last()) {
        (Some(first), Some(last)) => (last.sampled_at - first.sampled_at).as_seconds_f64(),
        _ => 0.0,
    };
    Ok(Replay {
        trace,
        model,
        initial_scale,
        initial_lag_seconds,
        scrape_interval_seconds: scrape_interval(samples),
        samples: samples.len(),
        hours: span / 3600.0,
    })
}

/// What arrived, one row per sample with an input rate, starting at 0.
pub fn trace(samples: &[Sample]) -> Result<Trace, HistoryError> {
    let Some(start) = samples.first().map(|s| s.sampled_at) else {
        return Err(HistoryError::TooFew { found: 0 });
    };
    let mut rows: Vec<(f64, f64)> = arrival_rates(samples)
        .into_iter()
        .map(|(at, rate)| ((at - start).as_seconds_f64(), rate))
        .collect();
    if rows.len() < MIN_SAMPLES {
        return Err(HistoryError::TooFew { found: rows.len() });
    }
    // The first sample may lack an input rate (a restart): the trace starts at the first sample anyway.
    if let Some(&(first, rate)) = rows.first()
        && first > 0.0
    {
        rows.insert(0, (0.0, rate));
    }
    Ok(Trace::from_rows(rows)?)
}

/// The median spacing of the samples, in whole seconds (at least 1).
fn scrape_interval(samples: &[Sample]) -> u32 {
    let mut gaps: Vec<f64> = samples
        .windows(2)
        .map(|pair| (pair[1].sampled_at - pair[0].sampled_at).as_seconds_f64())
        .filter(|gap| *gap > 0.0)
        .collect();
    gaps.sort_unstable_by(f64::total_cmp);
    gaps.get(gaps.len() / 2)
        .map_or(30, |gap| gap.round().max(1.0) as u32)
}

/// A fitted figure says no more than a tenth of a record per second.
fn tenth(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// The samples the estimator counts as evidence of capacity (at least `estimate::SETTLE_SECONDS` after
/// the scale reading last changed), each with the scale of its run.
fn settled(samples: &[Sample]) -> Vec<(&Sample, f64)> {
    runs(samples)
        .iter()
        .filter(|run| run.scale >= 1.0)
        .flat_map(|run: &Run<'_>| run.settled().map(|sample| (sample, run.scale)))
        .collect()
}

/// The capacity per worker the history shows (see the module's description).
pub fn fit_capacity(
    samples: &[Sample],
    policy: &Policy,
    partitions: u32,
) -> Result<FittedModel, HistoryError> {
    let settled = settled(samples);
    let output = |s: &Sample| s.records_out.filter(|v| v.is_finite() && *v > 0.0);
    let saturated: Vec<f64> = settled
        .iter()
        .filter(|(s, _)| s.lag_seconds.is_some_and(|l| l > policy.lag_seconds_low))
        .filter_map(|(s, scale)| Some(output(s)? / scale.min(f64::from(partitions))))
        .collect();
    if saturated.len() >= MIN_FIT_SAMPLES {
        let evidence = saturated.len();
        return Ok(FittedModel {
            capacity_per_worker: tenth(median(saturated).unwrap_or_default()),
            method: FitMethod::Saturated,
            evidence,
            partitions,
        });
    }
    let busy: Vec<f64> = settled
        .iter()
        .filter_map(|(s, scale)| {
            let cpu = s.cpu_load.filter(|c| c.is_finite() && *c >= MIN_FIT_CPU)?;
            Some(output(s)? / (scale * cpu.min(1.0)))
        })
        .collect();
    if busy.len() >= MIN_FIT_SAMPLES {
        let evidence = busy.len();
        return Ok(FittedModel {
            capacity_per_worker: tenth(median(busy).unwrap_or_default()),
            method: FitMethod::Cpu,
            evidence,
            partitions,
        });
    }
    Err(HistoryError::NoCapacity {
        lag_seconds_low: policy.lag_seconds_low,
    })
}

/// The parts of the loop a history does not show: how long a change takes to deploy and restart, and
/// the simulated metrics' noise. The simulator's defaults unless the command line says otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Actuation {
    pub actuation_delay_seconds: u32,
    pub restart_seconds: u32,
    pub noise: f64,
    pub seed: u64,
}

impl Default for Actuation {
    fn default() -> Self {
        Self {
            actuation_delay_seconds: 120,
            restart_seconds: 60,
            noise: 0.05,
            seed: 1,
        }
    }
}

impl Replay {
    /// The scenario that runs `policy` through this replay.
    pub fn scenario(&self, policy: Policy, actuation: Actuation) -> Scenario {
        Scenario {
            trace: self.trace.clone(),
            model: JobModel {
                capacity_per_worker: self.model.capacity_per_worker,
                scaling_exponent: 1.0,
                partitions: self.model.partitions,
                sink_cap: None,
            },
            settings: Settings {
                scrape_interval_seconds: self.scrape_interval_seconds,
                actuation_delay_seconds: actuation.actuation_delay_seconds,
                restart_seconds: actuation.restart_seconds,
                noise: actuation.noise,
                seed: actuation.seed,
                worker_history_seconds: crate::decide::history_seconds(&policy),
                initial_scale: self.initial_scale,
                initial_lag_seconds: self.initial_lag_seconds,
                // The policy's own `predictive` setting is what the replay runs; no extra row.
                predictive_lead_seconds: None,
                policy,
            },
        }
    }
}

#[cfg(test)]
#[path = "history_tests.rs"]
pub(crate) mod tests;
