//! One run: a policy drives the simulated job through a trace, second by second. Every policy goes through
//! the same actuation path, the service's: one change in flight at a time, taking effect after the
//! actuation delay (commit, review, sync), then a restart during which nothing is processed.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::Serialize;

use super::{
    job::{Job, JobModel},
    noise::Noise,
    policies::{Bounds, Change, Ds2, Hpa, Keda, Observation, Oracle, Ours, ScalingPolicy, Truth},
    trace::Trace,
};
use crate::{
    cluster::{Policy, Predictive},
    rules::Direction,
};

/// Everything about a run but the policy.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub trace: Trace,
    pub model: JobModel,
    pub settings: Settings,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// The cluster policy every contender is bounded by, and the one ours follows.
    pub policy: Policy,
    pub scrape_interval_seconds: u32,
    pub actuation_delay_seconds: u32,
    pub restart_seconds: u32,
    /// Standard deviation of the metric noise, as a share of the value.
    pub noise: f64,
    pub seed: u64,
    /// How far back the worker reads the history it estimates from.
    pub worker_history_seconds: u32,
    pub initial_scale: u32,
    /// Seconds of input (at the first rate) waiting at the start.
    pub initial_lag_seconds: u32,
    /// With `--predictive`: the lead time of a second ours, `ours+predictive`, whose policy has the
    /// predictive rule on.
    pub predictive_lead_seconds: Option<u32>,
}

impl Settings {
    pub fn bounds(&self) -> Bounds {
        let ceiling = self
            .policy
            .partition_count
            .map_or(self.policy.max_scale, |p| p.min(self.policy.max_scale));
        Bounds {
            min: self.policy.min_scale,
            max: ceiling,
        }
    }
}

/// A change that took effect.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Action {
    pub decided_at: f64,
    pub applied_at: f64,
    pub from: u32,
    pub to: u32,
}

impl Action {
    pub fn direction(&self) -> Direction {
        if self.to > self.from {
            Direction::Up
        } else {
            Direction::Down
        }
    }
}

/// What happened in one run, second by second.
#[derive(Debug, Clone)]
pub struct Run {
    pub policy: &'static str,
    pub actions: Vec<Action>,
    /// The scale the job ran at in each second.
    pub scale: Vec<u32>,
    /// What the job could process in each second (0 while restarting).
    pub capacity: Vec<f64>,
    /// The true lag in seconds at the end of each second.
    pub lag_seconds: Vec<f64>,
}

/// The simulated wall clock: the trace's second 0 is this instant.
pub fn clock(seconds: f64) -> DateTime<Utc> {
    let start = Utc
        .with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
        .single()
        .unwrap_or_default();
    start + Duration::milliseconds((seconds * 1000.0) as i64)
}

struct Pending {
    decided_at: f64,
    effective_at: f64,
    to: u32,
}

/// Runs `policy` through the scenario.
pub fn run(scenario: &Scenario, policy: &mut dyn ScalingPolicy) -> Run {
    let settings = &scenario.settings;
    let trace = &scenario.trace;
    let bounds = settings.bounds();
    let duration = trace.duration().ceil() as usize;
    let scrape = settings.scrape_interval_seconds.max(1) as usize;
    let mut job = Job::new(
        scenario.model.clone(),
        bounds.clamp(settings.initial_scale),
        settings.initial_lag_seconds as usize,
        trace.rate_at(0.0),
    );
    let mut noise = Noise::new(settings.seed, settings.noise);
    let mut samples = Vec::with_capacity(duration / scrape + 1);
    let mut pending: Option<Pending> = None;
    let mut last_change: Option<Change> = None;
    let mut out = Run {
        policy: policy.name(),
        actions: Vec::new(),
        scale: Vec::with_capacity(duration),
        capacity: Vec::with_capacity(duration),
        lag_seconds: Vec::with_capacity(duration),
    };

    for second in 0..duration {
        let now = second as f64;
        if let Some(change) = pending.take_if(|p| p.effective_at <= now) {
            let action = Action {
                decided_at: change.decided_at,
                applied_at: now,
                from: job.scale,
                to: change.to,
            };
            job.rescale(change.to, f64::from(settings.restart_seconds));
            last_change = Some(Change {
                at: clock(now),
                direction: action.direction(),
            });
            out.actions.push(action);
        }
        if second > 0 && second % scrape == 0 {
            samples.push(job.sample(clock(now), &mut noise));
            let observation = Observation {
                now: clock(now),
                seconds: now,
                samples: &samples,
                scale: job.scale,
                in_flight: pending.is_some(),
                last_change,
                truth: Truth {
                    lag_records: job.lag_records,
                    restart_remaining_seconds: job.restart_remaining(),
                },
            };
            if let Some(to) = policy.decide(&observation).map(|to| bounds.clamp(to))
                && pending.is_none()
                && to != job.scale
            {
                pending = Some(Pending {
                    decided_at: now,
                    effective_at: now + f64::from(settings.actuation_delay_seconds),
                    to,
                });
            }
        }
        out.scale.push(job.scale);
        out.capacity.push(job.capacity_now());
        job.advance(trace.rate_at(now + 0.5));
        out.lag_seconds.push(job.lag_seconds());
    }
    out
}

/// The five policies (six with `--predictive`), in the order the report shows them; the oracle first, as
/// the others' reference.
pub fn contenders(scenario: &Scenario) -> Vec<Box<dyn ScalingPolicy + '_>> {
    let settings = &scenario.settings;
    let bounds = settings.bounds();
    let mut contenders: Vec<Box<dyn ScalingPolicy + '_>> = vec![
        Box::new(Oracle::new(scenario)),
        Box::new(Ours::new(
            settings.policy.clone(),
            settings.scrape_interval_seconds,
            settings.worker_history_seconds,
        )),
    ];
    if let Some(lead_time_seconds) = settings.predictive_lead_seconds {
        let mut policy = settings.policy.clone();
        policy.predictive = Predictive {
            enabled: true,
            lead_time_seconds,
        };
        contenders.push(Box::new(Ours::new(
            policy,
            settings.scrape_interval_seconds,
            settings.worker_history_seconds,
        )));
    }
    contenders.extend([
        Box::new(Hpa::new(bounds)) as Box<dyn ScalingPolicy>,
        Box::new(Keda::new(bounds, scenario.model.capacity_per_worker)),
        Box::new(Ds2::new(bounds, f64::from(settings.restart_seconds))),
    ]);
    contenders
}

/// Every contender through the scenario, oracle first.
pub fn run_all(scenario: &Scenario) -> Vec<Run> {
    contenders(scenario)
        .iter_mut()
        .map(|policy| run(scenario, policy.as_mut()))
        .collect()
}
