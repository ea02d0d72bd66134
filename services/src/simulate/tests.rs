//! The simulator's own arithmetic: trace parsing and interpolation, the job's lag, the oracle on traces
//! whose answer is known, the scores, determinism by seed, and the command line.

use std::time::Duration;

use clap::Parser;

use super::{
    SimulateArgs, compare,
    job::{Job, JobModel},
    noise::Noise,
    policies::{Oracle, ScalingPolicy},
    report::Report,
    run::{Action, Run, Scenario, run},
    scenario,
    score::score,
    trace::{Trace, TraceError},
};
use crate::config::{Cli, Command, Role};

fn args(extra: &[&str]) -> SimulateArgs {
    let mut argv = vec!["autoscaler", "simulate", "--trace", "unused.csv"];
    argv.extend_from_slice(extra);
    match Cli::try_parse_from(argv).expect("arguments").role {
        Some(Command::Simulate(args)) => *args,
        other => panic!("expected simulate, got {other:?}"),
    }
}

fn scenario_for(text: &str, extra: &[&str]) -> Scenario {
    let trace = Trace::parse(text).expect("trace");
    scenario(&args(extra), trace, Duration::from_secs(30)).expect("scenario")
}

fn linear(capacity_per_worker: f64) -> JobModel {
    JobModel {
        capacity_per_worker,
        scaling_exponent: 1.0,
        partitions: 24,
        sink_cap: None,
    }
}

fn oracle_run(scenario: &Scenario) -> Run {
    run(scenario, &mut Oracle::new(scenario))
}

#[test]
fn a_trace_is_interpolated_between_rows_and_steps_where_a_second_repeats() {
    let trace = Trace::parse(
        "# a comment\n\
         # model: sink-cap=14000 partitions=12\n\
         seconds,records_per_second\n\
         0,1000\n\
         100,2000\n\
         \n\
         100,4000\n\
         300,4000\n",
    )
    .expect("trace");
    assert_eq!(trace.duration(), 300.0);
    assert_eq!(trace.rate_at(0.0), 1000.0);
    assert_eq!(trace.rate_at(50.0), 1500.0);
    assert_eq!(trace.rate_at(99.0), 1990.0);
    assert_eq!(trace.rate_at(100.0), 4000.0, "the rate after the step");
    assert_eq!(trace.rate_at(1000.0), 4000.0, "the last rate holds");
    let keys: Vec<(&str, f64, usize)> = trace
        .model
        .iter()
        .map(|s| (s.key.as_str(), s.value, s.line))
        .collect();
    assert_eq!(
        keys,
        vec![("sink-cap", 14000.0, 2), ("partitions", 12.0, 2)]
    );
    let steps = trace.steps();
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(
        (steps[0].at_seconds, steps[0].from, steps[0].to),
        (100.0, 2000.0, 4000.0)
    );
}

fn error(text: &str) -> String {
    match Trace::parse(text) {
        Ok(trace) => panic!("expected an error, parsed {trace:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn malformed_traces_are_refused_naming_line_and_column() {
    assert_eq!(
        error("0,100\n60, lots\n"),
        "line 2, column 5: records_per_second is not a number: \"lots\""
    );
    assert_eq!(
        error("0,100\n60,100,7\n"),
        "line 2, column 1: expected 2 fields `seconds,records_per_second`, found 3"
    );
    assert_eq!(
        error("0,100\n60,-5\n"),
        "line 2, column 4: records_per_second must be a finite number of 0 or more, not -5"
    );
    assert_eq!(
        error("0,100\n60,100\n30,100\n"),
        "line 3, column 1: seconds go backwards: 30 after 60"
    );
    assert_eq!(
        error("# starts late\n10,100\n20,100\n"),
        "line 2, column 1: the first row must be at 0 seconds, not 10"
    );
    assert_eq!(
        error("# model: sink-cap=lots\n0,1\n9,1\n"),
        "line 1, column 19: sink-cap must be a number of 0 or more, not \"lots\""
    );
    assert!(
        error("# model: speed=3\n0,1\n9,1\n")
            .starts_with("line 1, column 10: unknown model key \"speed\""),
        "{}",
        error("# model: speed=3\n0,1\n9,1\n")
    );
    assert!(
        error("# goal: cost=3\n0,1\n9,1\n")
            .starts_with("line 1, column 9: unknown goal key \"cost\"; known: replica-hours"),
        "{}",
        error("# goal: cost=3\n0,1\n9,1\n")
    );
    assert!(matches!(
        Trace::parse("# nothing\n"),
        Err(TraceError::Empty)
    ));
    assert!(matches!(Trace::parse("0,5\n"), Err(TraceError::NoDuration)));
}

#[test]
fn flags_win_over_the_traces_model_line_which_wins_over_defaults() {
    let text = "# model: sink-cap=9000 capacity-per-worker=500\n0,1000\n600,1000\n";
    let from_trace = scenario_for(text, &[]);
    assert_eq!(from_trace.model.sink_cap, Some(9000.0));
    assert_eq!(from_trace.model.capacity_per_worker, 500.0);
    assert_eq!(from_trace.model.partitions, 24, "the default");
    assert_eq!(from_trace.settings.policy.max_scale, 24);
    // 1000 records/s at 70 % load on 500 per worker: 2.9 → 3 workers.
    assert_eq!(from_trace.settings.initial_scale, 3);

    let from_flags = scenario_for(
        text,
        &[
            "--sink-cap",
            "12000",
            "--partitions",
            "8",
            "--initial-lag",
            "1h",
        ],
    );
    assert_eq!(from_flags.model.sink_cap, Some(12000.0));
    assert_eq!(from_flags.model.partitions, 8);
    assert_eq!(from_flags.settings.policy.max_scale, 8);
    assert_eq!(from_flags.settings.initial_lag_seconds, 3600);
}

#[test]
fn the_job_counts_lag_in_records_and_in_seconds_and_stops_while_restarting() {
    // 100 s of backlog at 10 records/s; 2 workers of 10 records/s drain 10 a second net.
    let mut job = Job::new(linear(10.0), 2, 100, 10.0);
    assert_eq!(job.lag_records, 1000.0);
    assert_eq!(job.lag_seconds(), 100.0);
    job.advance(10.0);
    assert_eq!(job.lag_records, 990.0);
    // 20 of the backlog's records are done: the oldest waiting arrived at -98 s, and it is now 1 s.
    assert!(
        (job.lag_seconds() - 99.0).abs() < 1e-9,
        "{}",
        job.lag_seconds()
    );
    job.rescale(3, 5.0);
    for _ in 0..5 {
        assert_eq!(job.capacity_now(), 0.0);
        job.advance(10.0);
    }
    assert_eq!(
        job.lag_records, 1040.0,
        "nothing processed while restarting"
    );
    assert_eq!(job.capacity_now(), 30.0);
    let sample = job.sample(super::run::clock(6.0), &mut Noise::new(1, 0.0));
    assert_eq!(sample.scale, Some(3.0));
    assert_eq!(sample.lag_records, Some(1040.0));
}

#[test]
fn capacity_is_capped_by_partitions_and_the_sink_and_grows_sub_linearly() {
    let model = JobModel {
        capacity_per_worker: 1000.0,
        scaling_exponent: 0.5,
        partitions: 16,
        sink_cap: Some(3500.0),
    };
    assert_eq!(model.worker_capacity(4), 2000.0);
    assert_eq!(model.worker_capacity(16), 4000.0);
    assert_eq!(
        model.worker_capacity(20),
        4000.0,
        "idle beyond the partitions"
    );
    assert_eq!(model.capacity(16), 3500.0, "the sink's cap");
    assert_eq!(model.scale_for(1500.0, 1, 16), 3);
    // Nothing carries 5000: the smallest scale that reaches the most there is (the sink's 3500).
    assert_eq!(model.scale_for(5000.0, 1, 16), 13);
}

#[test]
fn the_oracle_shrinks_an_oversized_job_once_to_a_known_scale() {
    // 4500 records/s on 1000 per worker: 5 workers carry it with 500 spare, which drains the 60 s restart
    // (270,000 records) within the 600 s catch-up. Decided at the first scrape (30 s), applied 120 s later.
    let scenario = scenario_for(
        "0,4500\n3600,4500\n",
        &["--initial-scale", "10", "--noise", "0"],
    );
    let oracle = oracle_run(&scenario);
    assert_eq!(
        oracle.actions,
        vec![Action {
            decided_at: 30.0,
            applied_at: 150.0,
            from: 10,
            to: 5
        }]
    );
    let figures = score(&oracle, &oracle, &scenario, &[]);
    let expected_hours = (10.0 * 150.0 + 5.0 * 3450.0) / 3600.0;
    assert!(
        (figures.replica_hours - expected_hours).abs() < 1e-9,
        "{figures:?}"
    );
    // The restart leaves 60 s of lag. Lag in seconds passes 30 s halfway through the restart, then falls
    // by 500/4500 of a second per second (5000 processed of what arrived at 4500): back to 30 s 270 s
    // later, 300 s in all.
    assert!((figures.peak_lag_seconds - 60.0).abs() < 1.0, "{figures:?}");
    assert!(
        (figures.longest_drain_minutes * 60.0 - 300.0).abs() < 2.0,
        "{figures:?}"
    );
    assert_eq!(figures.lag_over_minutes, 0.0);
    assert_eq!(figures.over_provisioning, 0.0);
}

#[test]
fn the_oracle_scales_up_a_delay_a_restart_and_a_scrape_ahead_of_a_step() {
    // 4000 doubles to 8000 at 1800 s. The change must be running by then: decided at 1590 s (1800 - 120 s
    // delay - 60 s restart - 30 s scrape), applied at 1710 s. 8 workers have nothing spare to drain their
    // own restart's 240,000 records, so 9: 8400 records/s drain it in 600 s.
    let scenario = scenario_for(
        "0,4000\n1800,4000\n1800,8000\n3600,8000\n",
        &["--initial-scale", "5", "--noise", "0"],
    );
    let oracle = oracle_run(&scenario);
    assert_eq!(
        oracle.actions,
        vec![Action {
            decided_at: 1590.0,
            applied_at: 1710.0,
            from: 5,
            to: 9
        }]
    );
    let figures = score(&oracle, &oracle, &scenario, &scenario.trace.steps());
    assert_eq!(figures.settle_actions, vec![1]);
    assert_eq!(figures.lag_over_minutes, 0.0);
    let expected_hours = (5.0 * 1710.0 + 9.0 * 1890.0) / 3600.0;
    assert!((figures.replica_hours - expected_hours).abs() < 1e-9);
}

#[test]
fn scores_count_reversals_quick_ones_and_actions_per_step() {
    let scenario = scenario_for("0,1000\n7200,1000\n", &[]);
    let action = |decided_at: f64, from: u32, to: u32| Action {
        decided_at,
        applied_at: decided_at + 120.0,
        from,
        to,
    };
    let steps = [
        super::trace::LoadStep {
            at_seconds: 1000.0,
            from: 1000.0,
            to: 2000.0,
        },
        super::trace::LoadStep {
            at_seconds: 5000.0,
            from: 2000.0,
            to: 1000.0,
        },
    ];
    let seconds = 7200;
    let mut run = Run {
        policy: "test",
        // Up at 1000 s, down 600 s later (within the 900 s cooldown), up again 2000 s later, then down
        // after the second step.
        actions: vec![
            action(1000.0, 2, 4),
            action(1600.0, 4, 3),
            action(3600.0, 3, 4),
            action(5200.0, 4, 2),
        ],
        scale: vec![2; seconds],
        capacity: vec![0.0; seconds],
        lag_seconds: vec![0.0; seconds],
    };
    run.scale[..3600].fill(4);
    run.lag_seconds[100..700].fill(400.0);
    let oracle = Run {
        scale: vec![3; seconds],
        ..run.clone()
    };
    let figures = score(&run, &oracle, &scenario, &steps);
    assert_eq!(figures.actions, 4);
    assert_eq!(figures.reversals, 3);
    assert_eq!(figures.quick_reversals, 1);
    // Actions count from 210 s (delay + restart + scrape) before each step.
    assert_eq!(figures.settle_actions, vec![3, 1]);
    assert_eq!(figures.lag_over_minutes, 10.0);
    // A two-hour trace has no second day.
    assert_eq!(figures.lag_over_minutes_day_2, None);
    let mut two_days = Run {
        scale: vec![2; 2 * 86_400],
        capacity: vec![0.0; 2 * 86_400],
        lag_seconds: vec![0.0; 2 * 86_400],
        ..run.clone()
    };
    two_days.lag_seconds[100..700].fill(400.0);
    two_days.lag_seconds[90_000..90_300].fill(400.0);
    let figures_2 = score(&two_days, &two_days, &scenario, &[]);
    assert_eq!(
        (figures_2.lag_over_minutes, figures_2.lag_over_minutes_day_2),
        (15.0, Some(5.0))
    );
    assert_eq!(figures.peak_lag_seconds, 400.0);
    assert_eq!(figures.longest_drain_minutes, 10.0);
    assert!((figures.replica_hours - (4.0 * 3600.0 + 2.0 * 3600.0) / 3600.0).abs() < 1e-9);
    assert!((figures.over_provisioning - 3600.0 / 21600.0).abs() < 1e-9);
    assert!((figures.under_provisioning - 3600.0 / 21600.0).abs() < 1e-9);
}

#[test]
fn a_seed_gives_the_same_run_and_another_seed_other_noise() {
    let text = "0,5000\n3600,5000\n3600,9000\n7200,9000\n";
    let report = |seed: &str| {
        let scenario = scenario_for(text, &["--seed", seed]);
        let (report, _) = compare(&scenario, 2, "test");
        let mut json = Vec::new();
        report.write_json(&mut json).expect("json");
        String::from_utf8(json).expect("utf-8")
    };
    assert_eq!(report("7"), report("7"));
    assert_ne!(report("7"), report("8"));

    let mut first = Noise::new(42, 0.1);
    let mut second = Noise::new(42, 0.1);
    let draws: Vec<f64> = (0..5).map(|_| first.apply(100.0)).collect();
    assert_eq!(
        draws,
        (0..5).map(|_| second.apply(100.0)).collect::<Vec<_>>()
    );
    assert!(draws.iter().any(|d| (d - 100.0).abs() > 0.1), "{draws:?}");
}

#[test]
fn ours_runs_the_services_rules_and_estimator_through_a_step() {
    // No noise: 6000 records/s doubles at 1 h and halves at 3 h.
    let scenario = scenario_for(
        "0,6000\n3600,6000\n3600,12000\n10800,12000\n10800,6000\n18000,6000\n",
        &["--noise", "0"],
    );
    let mut ours = super::policies::Ours::new(
        scenario.settings.policy.clone(),
        scenario.settings.scrape_interval_seconds,
        scenario.settings.worker_history_seconds,
    );
    assert_eq!(ours.name(), "ours");
    let run = run(&scenario, &mut ours);
    // Before the step only trims: the job starts with 70 % load, more headroom than the target's.
    let (before, after): (Vec<&Action>, Vec<&Action>) =
        run.actions.iter().partition(|a| a.decided_at < 3600.0);
    assert!(before.iter().all(|a| a.to < a.from), "{:?}", run.actions);
    let first = after.first().expect("an action after the step");
    assert!(first.to > first.from, "{:?}", run.actions);
    assert!(run.lag_seconds.iter().all(|lag| *lag < 300.0));
    let last = run.actions.last().expect("an action");
    assert!(
        last.decided_at > 10800.0 && last.to < last.from,
        "{:?}",
        run.actions
    );
}

#[test]
fn ours_stops_climbing_at_a_sink_limit_and_gives_back_the_workers_past_it() {
    // The sink takes 14000 records/s; from 2 h to 5 h the load asks 16000.
    let scenario = scenario_for(
        "0,10000\n7200,10000\n7200,16000\n18000,16000\n18000,10000\n25200,10000\n",
        &["--noise", "0", "--sink-cap", "14000"],
    );
    let mut ours = super::policies::Ours::new(
        scenario.settings.policy.clone(),
        scenario.settings.scrape_interval_seconds,
        scenario.settings.worker_history_seconds,
    );
    let run = run(&scenario, &mut ours);
    let during: Vec<&Action> = run
        .actions
        .iter()
        .filter(|a| (7200.0..18000.0).contains(&a.decided_at))
        .collect();
    // Up past the knee once (nothing told it of the sink yet), then back to 14 or 15 while the backlog
    // still waits, and up no more.
    let [up, trim, ..] = during.as_slice() else {
        panic!("expected a scale-up and a trim: {:?}", run.actions);
    };
    assert!(up.to > 16 && up.to > up.from, "{:?}", run.actions);
    assert!((14..=15).contains(&trim.to), "{:?}", run.actions);
    // With a backlog waiting (above `lag_seconds_low`), where an ordinary scale-down is vetoed.
    assert!(
        run.lag_seconds[trim.decided_at as usize] > 60.0,
        "{:?}",
        run.actions
    );
    assert_eq!(during.len(), 2, "{:?}", run.actions);
}

/// The benchmark judges medians, which hide one seed's runaway backlog (a false capacity ceiling once
/// trimmed a ramping job and blocked it for hours in one seed of five, with the median at 0). Every
/// shipped trace, the benchmark's 5 seeds: ours' worst seed stays within 10 minutes of lag above the
/// threshold of its median.
#[test]
fn no_seed_of_a_shipped_trace_leaves_ours_far_behind_its_median() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("traces");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("the traces")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|x| x == "csv"))
        .filter_map(|path| Some(path.file_name()?.to_str()?.to_owned()))
        .collect();
    names.sort();
    assert!(names.len() >= 9, "{names:?}");
    for name in names {
        let trace = Trace::read(&dir.join(&name)).expect("trace");
        let scenario = scenario(&args(&[]), trace, Duration::from_secs(30)).expect(&name);
        let (report, _) = compare(&scenario, 5, &name);
        let ours = report
            .policies
            .iter()
            .find(|p| p.policy == "ours")
            .expect("ours");
        let (median, worst) = (
            ours.median("lag_over_minutes"),
            ours.worst("lag_over_minutes"),
        );
        assert!(
            worst <= median + 10.0,
            "{name}: worst seed {worst} min of lag above the threshold, median {median}"
        );
    }
}

#[test]
fn every_shipped_trace_parses_with_its_load_steps() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("traces");
    let expected = [
        ("step.csv", 2),
        ("daily.csv", 0),
        ("spike.csv", 2),
        ("backlog.csv", 0),
        ("sink-cap.csv", 2),
        ("sublinear.csv", 2),
        // Rises over 10 minutes of 5-minute rows: fast, but not steps (a quarter within a minute).
        ("seasonal.csv", 0),
        ("seasonal-peaks.csv", 0),
        ("ramp.csv", 0),
    ];
    let shipped = std::fs::read_dir(&dir)
        .expect("the traces")
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "csv"))
        })
        .count();
    assert_eq!(
        shipped,
        expected.len(),
        "every shipped trace is listed here"
    );
    for (name, steps) in expected {
        let trace = Trace::read(&dir.join(name)).expect(name);
        assert_eq!(trace.steps().len(), steps, "{name}");
        assert!(trace.duration() >= 4.0 * 3600.0, "{name}");
    }
}

#[test]
fn simulate_is_a_subcommand_and_the_roles_still_parse() {
    let parsed = args(&[
        "--json",
        "--plot",
        "out.svg",
        "--seeds",
        "5",
        "--actuation-delay",
        "5m",
    ]);
    assert!(parsed.json);
    assert_eq!(parsed.seeds, 5);
    assert_eq!(parsed.actuation_delay, Duration::from_secs(300));
    assert_eq!(
        parsed.plot.as_deref(),
        Some(std::path::Path::new("out.svg"))
    );
    let worker = Cli::try_parse_from(["autoscaler", "worker"]).expect("worker");
    assert_eq!(worker.role, Some(Command::Role(Role::Worker)));
}

#[test]
fn the_command_reports_a_missing_trace_and_writes_a_table() {
    let missing = SimulateArgs {
        trace: Some("/nonexistent/trace.csv".into()),
        ..args(&[])
    };
    let mut out = Vec::new();
    let error =
        super::simulate(&missing, Duration::from_secs(30), &mut out).expect_err("a missing file");
    assert!(
        error.to_string().contains("/nonexistent/trace.csv"),
        "{error}"
    );

    let dir = std::env::temp_dir().join(format!("simulate-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let trace = dir.join("flat.csv");
    std::fs::write(&trace, "0,3000\n3600,3000\n").expect("write");
    let plot = dir.join("plot.svg");
    let flat = SimulateArgs {
        trace: Some(trace),
        plot: Some(plot.clone()),
        ..args(&[])
    };
    super::simulate(&flat, Duration::from_secs(30), &mut out).expect("simulate");
    let table = String::from_utf8(out).expect("utf-8");
    for policy in ["oracle", "ours", "hpa", "keda", "ds2"] {
        assert!(
            table.lines().any(|l| l.starts_with(policy)),
            "{policy}: {table}"
        );
    }
    assert!(table.contains("goals for ours"), "{table}");
    let svg = std::fs::read_to_string(plot).expect("plot");
    std::fs::remove_dir_all(&dir).expect("clean up");
    assert!(
        svg.starts_with("<svg") && svg.contains("polyline"),
        "{svg:.200}"
    );
}

#[test]
fn predictive_adds_ours_with_the_rule_on_within_the_lead_time_bounds() {
    let text = "0,3000\n3600,3000\n";
    let names = |s: &Scenario| {
        super::run::contenders(s)
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
    };
    let plain = scenario_for(text, &[]);
    assert_eq!(names(&plain), ["oracle", "ours", "hpa", "keda", "ds2"]);
    let predictive = scenario_for(text, &["--predictive", "--lead-time", "10m"]);
    assert_eq!(predictive.settings.predictive_lead_seconds, Some(600));
    assert_eq!(
        names(&predictive),
        ["oracle", "ours", "ours+predictive", "hpa", "keda", "ds2"]
    );
    let too_short = scenario(
        &args(&["--predictive", "--lead-time", "10s"]),
        Trace::parse(text).expect("trace"),
        Duration::from_secs(30),
    );
    assert!(
        matches!(&too_short, Err(super::SimulateError::Invalid(m)) if m.contains("--lead-time")),
        "{:?}",
        too_short.err()
    );
}

#[test]
fn the_traces_goal_line_bounds_replica_hours_and_every_baseline_is_checked_for_dominance() {
    let text = "0,5000\n3600,5000\n3600,9000\n7200,9000\n";
    let goal = |report: &Report, name: &str| {
        report
            .goals
            .iter()
            .find(|g| g.goal.starts_with(name))
            .cloned()
            .expect("the goal")
    };
    let (unbounded, _) = compare(&scenario_for(text, &[]), 1, "test");
    let replica_hours = goal(&unbounded, "replica-hours");
    assert_eq!(replica_hours.met, None, "{replica_hours:?}");
    assert!(
        replica_hours
            .detail
            .ends_with("(bound: none for this trace)")
    );

    let (tight, _) = compare(
        &scenario_for(&format!("# goal: replica-hours=0\n{text}"), &[]),
        1,
        "test",
    );
    let replica_hours = goal(&tight, "replica-hours");
    assert_eq!(replica_hours.met, Some(false), "{replica_hours:?}");
    assert!(replica_hours.detail.ends_with("(bound: 0 %)"));
    let (loose, _) = compare(
        &scenario_for(&format!("# goal: replica-hours=500\n{text}"), &[]),
        1,
        "test",
    );
    assert_eq!(goal(&loose, "replica-hours").met, Some(true));

    // The dominance goal agrees with the cost-against-lag plot's reading of the same report.
    let dominance = goal(&tight, "no baseline");
    let mut json = Vec::new();
    tight.write_json(&mut json).expect("json");
    let points =
        super::frontier::TracePoints::from_report(std::str::from_utf8(&json).expect("utf-8"))
            .expect("points");
    let dominating = points.dominating("ours");
    assert_eq!(dominance.met, Some(dominating.is_empty()), "{dominance:?}");
    for baseline in dominating {
        assert!(dominance.detail.contains(baseline), "{dominance:?}");
    }
}
