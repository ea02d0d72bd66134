//! `autoscaler simulate`: a stream job driven by a load trace, scaled side by side by the service's own
//! policy (the same rules, estimator and post-evaluation check, called, not copied), an HPA on CPU,
//! KEDA's Kafka lag scaler, DS2 as the Flink operator runs it, and an oracle that knows the trace.
//! Offline: it reads one file, writes the report (and a plot), and touches nothing else.
//!
//! - [`trace`]: the load trace file.
//! - [`job`]: the job model, its metrics and its restarts.
//! - [`policies`]: the contenders.
//! - [`run`]: one policy through one trace; [`score`]: the figures it is judged by.
//! - [`report`]: medians over seeds, the goals, the table and the JSON; [`plot`]: the SVG.
//! - [`history`]: a cluster's recorded samples replayed as a trace, with a job model fitted to them.
//! - [`tune`]: the policy's settings searched over a replayed history (`autoscaler tune`).

pub mod frontier;
pub mod history;
pub mod job;
mod noise;
pub mod plot;
pub mod policies;
pub mod report;
pub mod run;
pub mod score;
pub mod trace;
pub mod tune;

use std::{io::Write, path::PathBuf, process::ExitCode, time::Duration};

use clap::Args;

use self::{
    history::{Actuation, History, HistoryError},
    job::JobModel,
    report::{PolicyReport, Report, goals},
    run::{Run, Scenario, Settings, run_all},
    score::score,
    trace::{Trace, TraceError},
};
use crate::cluster::Policy;

/// By default the job starts at the smallest scale that carries the first rate at this utilisation: a
/// job run with the usual headroom, that no policy needs to touch at once.
const INITIAL_UTILISATION: f64 = 0.7;

/// `autoscaler simulate`. Job-model flags left out take the trace's `# model:` line, then the default.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct SimulateArgs {
    /// The load trace: CSV rows `seconds,records_per_second`, interpolated between rows.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "history",
        conflicts_with = "history"
    )]
    pub trace: Option<PathBuf>,
    /// Instead of a trace, a cluster's recorded history as `autoscaler cluster samples NAME -o json`
    /// exports it: the load is what arrived, the job is fitted to it, the policy is the cluster's, and
    /// the scrape interval is the samples' spacing.
    #[arg(long, value_name = "FILE.json")]
    pub history: Option<PathBuf>,
    /// Print JSON (every run's figures, medians, worst values, goals) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Draw load, capacity, scale and lag over time for every policy into this SVG file (first seed).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// The seed of the metric noise; with --seeds, the first one.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How many seeds to run (seed, seed+1, ...); the table shows medians.
    #[arg(long, default_value_t = 1)]
    pub seeds: u32,

    /// Records per second one worker processes [default: 1000].
    #[arg(long)]
    pub capacity_per_worker: Option<f64>,
    /// Capacity grows as scale^exponent; 1 is linear, below 1 diminishing returns [default: 1].
    #[arg(long)]
    pub scaling_exponent: Option<f64>,
    /// The source topic's partitions: the cap on useful parallelism [default: 24].
    #[arg(long)]
    pub partitions: Option<u32>,
    /// What the sink (Elasticsearch) takes at most, in records per second [default: no cap].
    #[arg(long)]
    pub sink_cap: Option<f64>,
    /// Backlog waiting at the start, as this much input at the first rate, such as `2h` [default: 0s].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub initial_lag: Option<Duration>,
    /// The scale at the start [default: the smallest that carries the first rate at 70 % load].
    #[arg(long)]
    pub initial_scale: Option<u32>,

    /// Standard deviation of the noise on CPU and rates, as a share of the value.
    #[arg(long, default_value_t = 0.05)]
    pub noise: f64,
    /// From a decision to the new scale being deployed: commit, review, sync.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub actuation_delay: Duration,
    /// How long the job processes nothing when its scale changes.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub restart_downtime: Duration,
    /// How far back the worker reads the history it estimates from [default: as the worker does, the
    /// longest rule window and at least 1h].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub worker_history: Option<Duration>,
    /// The policy's lower bound [default: 1, or the history's policy's].
    #[arg(long)]
    pub min_scale: Option<u32>,
    /// The policy's upper bound [default: the partition count, or the history's policy's].
    #[arg(long)]
    pub max_scale: Option<u32>,
    /// The policy's target utilisation [default: the policy's default].
    #[arg(long)]
    pub target_utilization: Option<f64>,
    /// Also run ours with the predictive rule on (`policy.predictive`), as `ours+predictive`.
    #[arg(long)]
    pub predictive: bool,
    /// With --predictive, the rule's lead time (`policy.predictive.lead_time_seconds`).
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub lead_time: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("{0}")]
    Trace(#[from] TraceError),
    #[error("{0}")]
    History(#[from] HistoryError),
    #[error("invalid setting: {0}")]
    Invalid(String),
    #[error("cannot write the plot {path}: {problem}")]
    Plot { path: String, problem: String },
    #[error("cannot write the report: {0}")]
    Output(std::io::Error),
}

/// A flag, else the trace's `# model:` setting, else the default.
fn model_value(flag: Option<f64>, trace: &Trace, key: &str, default: f64) -> f64 {
    flag.or_else(|| trace.model_setting(key)).unwrap_or(default)
}

fn seconds(duration: Duration, name: &str) -> Result<u32, SimulateError> {
    u32::try_from(duration.as_secs())
        .map_err(|_| SimulateError::Invalid(format!("{name} is too long")))
}

/// The job model and the noise are ones the simulator can run.
fn check_model(model: &JobModel, noise: f64) -> Result<(), SimulateError> {
    let invalid = |message: &str| Err(SimulateError::Invalid(message.to_owned()));
    if !(model.capacity_per_worker > 0.0 && model.capacity_per_worker.is_finite()) {
        return invalid("--capacity-per-worker must be above 0");
    }
    if !(model.scaling_exponent > 0.0 && model.scaling_exponent <= 1.0) {
        return invalid("--scaling-exponent must be above 0 and at most 1");
    }
    if model.partitions == 0 {
        return invalid("--partitions must be at least 1");
    }
    if model.sink_cap.is_some_and(|c| !(c > 0.0 && c.is_finite())) {
        return invalid("--sink-cap must be above 0");
    }
    if !(0.0..1.0).contains(&noise) {
        return invalid("--noise must be at least 0 and below 1");
    }
    Ok(())
}

fn check_target(target: f64) -> Result<(), SimulateError> {
    let range = crate::cluster::TARGET_UTILIZATION_RANGE;
    if range.contains(&target) {
        return Ok(());
    }
    Err(SimulateError::Invalid(format!(
        "--target-utilization must be between {} and {}",
        range.start(),
        range.end()
    )))
}

/// The scenario of a recorded history: its trace and fitted job, the cluster's policy, and the flags,
/// which win over both.
pub fn history_scenario(args: &SimulateArgs, history: &History) -> Result<Scenario, SimulateError> {
    let replay = history::replay(history, args.partitions, args.capacity_per_worker)?;
    let mut policy = history.policy.clone();
    policy.min_scale = args.min_scale.unwrap_or(policy.min_scale);
    policy.max_scale = args.max_scale.unwrap_or(policy.max_scale);
    if policy.min_scale == 0 || policy.max_scale < policy.min_scale {
        return Err(SimulateError::Invalid(format!(
            "the scale bounds must satisfy 1 <= --min-scale ({}) <= --max-scale ({})",
            policy.min_scale, policy.max_scale
        )));
    }
    if let Some(target) = args.target_utilization {
        check_target(target)?;
        policy.target_utilization = target;
    }
    let actuation = Actuation {
        actuation_delay_seconds: seconds(args.actuation_delay, "--actuation-delay")?,
        restart_seconds: seconds(args.restart_downtime, "--restart-downtime")?,
        noise: args.noise,
        seed: args.seed,
    };
    let mut scenario = replay.scenario(policy, actuation);
    let (model, settings) = (&mut scenario.model, &mut scenario.settings);
    model.scaling_exponent = args.scaling_exponent.unwrap_or(model.scaling_exponent);
    model.sink_cap = args.sink_cap.or(model.sink_cap);
    check_model(model, args.noise)?;
    if let Some(scale) = args.initial_scale {
        settings.initial_scale = scale;
    }
    if let Some(lag) = args.initial_lag {
        settings.initial_lag_seconds = seconds(lag, "--initial-lag")?;
    }
    if let Some(history) = args.worker_history {
        settings.worker_history_seconds = seconds(history, "--worker-history")?;
    }
    Ok(scenario)
}

/// The scenario for the first seed, from the flags, the trace's model line and the defaults.
pub fn scenario(
    args: &SimulateArgs,
    trace: Trace,
    scrape_interval: Duration,
) -> Result<Scenario, SimulateError> {
    let invalid = |message: String| Err(SimulateError::Invalid(message));
    let model = JobModel {
        capacity_per_worker: model_value(
            args.capacity_per_worker,
            &trace,
            "capacity-per-worker",
            1000.0,
        ),
        scaling_exponent: model_value(args.scaling_exponent, &trace, "scaling-exponent", 1.0),
        partitions: model_value(args.partitions.map(f64::from), &trace, "partitions", 24.0) as u32,
        sink_cap: args.sink_cap.or_else(|| trace.model_setting("sink-cap")),
    };
    check_model(&model, args.noise)?;
    let max_scale = args.max_scale.unwrap_or(model.partitions);
    let min_scale = args.min_scale.unwrap_or(1);
    if min_scale == 0 || max_scale < min_scale {
        return invalid(format!(
            "the scale bounds must satisfy 1 <= --min-scale ({min_scale}) <= --max-scale ({max_scale})"
        ));
    }
    let mut policy = serde_json::json!({
        "min_scale": min_scale,
        "max_scale": max_scale,
        "partition_count": model.partitions,
    });
    if let Some(target) = args.target_utilization {
        check_target(target)?;
        policy["target_utilization"] = target.into();
    }
    let policy: Policy = serde_json::from_value(policy)
        .map_err(|e| SimulateError::Invalid(format!("policy: {e}")))?;
    let scrape_interval_seconds = seconds(scrape_interval, "--scrape-interval")?;
    if scrape_interval_seconds == 0 {
        return invalid("--scrape-interval must be at least 1s".to_owned());
    }
    let initial_lag_seconds = match args.initial_lag {
        Some(lag) => seconds(lag, "--initial-lag")?,
        None => model_value(None, &trace, "initial-lag", 0.0) as u32,
    };
    let first_rate = trace.rate_at(0.0);
    let initial_scale = args
        .initial_scale
        .unwrap_or_else(|| model_value(None, &trace, "initial-scale", 0.0) as u32);
    let initial_scale = if initial_scale == 0 {
        model.scale_for(
            first_rate / INITIAL_UTILISATION,
            policy.min_scale,
            max_scale,
        )
    } else {
        initial_scale
    };
    let settings = Settings {
        scrape_interval_seconds,
        actuation_delay_seconds: seconds(args.actuation_delay, "--actuation-delay")?,
        restart_seconds: seconds(args.restart_downtime, "--restart-downtime")?,
        noise: args.noise,
        seed: args.seed,
        worker_history_seconds: match args.worker_history {
            Some(history) => seconds(history, "--worker-history")?,
            None => crate::decide::history_seconds(&policy),
        },
        initial_scale,
        initial_lag_seconds,
        predictive_lead_seconds: args
            .predictive
            .then(|| seconds(args.lead_time, "--lead-time"))
            .transpose()?,
        policy,
    };
    if let Some(lead) = settings.predictive_lead_seconds {
        use crate::cluster::bounds::{MAX_LEAD_TIME_SECONDS, MIN_LEAD_TIME_SECONDS};
        if !(MIN_LEAD_TIME_SECONDS..=MAX_LEAD_TIME_SECONDS).contains(&lead) {
            return invalid(format!(
                "--lead-time must be between {MIN_LEAD_TIME_SECONDS}s and {}h",
                MAX_LEAD_TIME_SECONDS / 3600
            ));
        }
    }
    Ok(Scenario {
        trace,
        model,
        settings,
    })
}

/// Runs every seed of `scenario`; returns the report and the first seed's runs (for the plot).
pub fn compare(scenario: &Scenario, seeds: u32, trace_name: &str) -> (Report, Vec<Run>) {
    let steps = scenario.trace.steps();
    let seed_list: Vec<u64> = (0..u64::from(seeds.max(1)))
        .map(|i| scenario.settings.seed.wrapping_add(i))
        .collect();
    let mut first_runs = Vec::new();
    let mut scores: Vec<(&'static str, Vec<score::Score>)> = Vec::new();
    for (index, seed) in seed_list.iter().enumerate() {
        let mut seeded = scenario.clone();
        seeded.settings.seed = *seed;
        let runs = run_all(&seeded);
        let Some(oracle) = runs.first() else {
            continue;
        };
        for run in &runs {
            let figures = score(run, oracle, &seeded, &steps);
            match scores.iter_mut().find(|(name, _)| *name == run.policy) {
                Some((_, list)) => list.push(figures),
                None => scores.push((run.policy, vec![figures])),
            }
        }
        if index == 0 {
            first_runs = runs;
        }
    }
    let policies: Vec<PolicyReport> = scores
        .into_iter()
        .map(|(name, runs)| {
            let actions = first_runs
                .iter()
                .find(|r| r.policy == name)
                .map(|r| r.actions.clone())
                .unwrap_or_default();
            PolicyReport::new(name, runs, actions)
        })
        .collect();
    let goals = goals(
        &policies,
        &scenario.settings,
        steps.len(),
        scenario.trace.goal("replica-hours"),
    );
    let report = Report {
        trace: trace_name.to_owned(),
        duration_hours: scenario.trace.duration() / 3600.0,
        model: scenario.model.clone(),
        settings: scenario.settings.clone(),
        seeds: seed_list,
        load_steps: steps,
        policies,
        goals,
    };
    (report, first_runs)
}

/// Reads the trace, runs the comparison, writes the plot if asked, and writes the report to `out`.
pub fn simulate(
    args: &SimulateArgs,
    scrape_interval: Duration,
    out: &mut dyn Write,
) -> Result<(), SimulateError> {
    let (scenario, name) = match (&args.history, &args.trace) {
        (Some(path), _) => (
            history_scenario(args, &History::read(path)?)?,
            path.display().to_string(),
        ),
        (None, Some(path)) => (
            scenario(args, Trace::read(path)?, scrape_interval)?,
            path.display().to_string(),
        ),
        (None, None) => {
            return Err(SimulateError::Invalid(
                "either --trace or --history is needed".to_owned(),
            ));
        }
    };
    let (report, runs) = compare(&scenario, args.seeds, &name);
    if let Some(path) = &args.plot {
        plot::draw(path, &scenario, &runs, &report.trace).map_err(|problem| {
            SimulateError::Plot {
                path: path.display().to_string(),
                problem,
            }
        })?;
    }
    let written = if args.json {
        report.write_json(out)
    } else {
        report.write_table(out)
    };
    // A closed pipe (`| head`) is not the simulator's failure.
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(SimulateError::Output(e)),
        _ => Ok(()),
    }
}

/// The command: the report on standard output, an error on standard error with exit code 2.
pub fn command(args: &SimulateArgs, scrape_interval: Duration) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match simulate(args, scrape_interval, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests;
