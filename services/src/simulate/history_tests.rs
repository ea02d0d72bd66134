//! Replaying a history whose truth is known: a simulated job recorded as the service records it, then
//! read back as a trace and a fitted job.

use super::*;
use crate::simulate::{
    job::{Job, JobModel},
    noise::Noise,
    run::clock,
};

/// A job of `capacity_per_worker` at a fixed `scale`, fed `rate(second)` for `seconds`, sampled every
/// 30 s with 5 % noise, as the manager stores it.
pub(crate) fn recorded(
    capacity_per_worker: f64,
    scale: u32,
    seconds: usize,
    rate: impl Fn(f64) -> f64,
    policy: Policy,
) -> History {
    let model = JobModel {
        capacity_per_worker,
        scaling_exponent: 1.0,
        partitions: 24,
        sink_cap: None,
    };
    let mut job = Job::new(model, scale, 0, rate(0.0));
    let mut noise = Noise::new(7, 0.05);
    let mut samples = Vec::new();
    for second in 0..seconds {
        if second > 0 && second % 30 == 0 {
            samples.push(job.sample(clock(second as f64), &mut noise));
        }
        job.advance(rate(second as f64 + 0.5));
    }
    History {
        cluster: "orders".to_owned(),
        policy,
        since: clock(0.0),
        until: clock(seconds as f64),
        samples,
    }
}

pub(crate) fn policy(max_scale: u32) -> Policy {
    serde_json::from_value(serde_json::json!({"max_scale": max_scale})).expect("a policy")
}

#[test]
fn a_backlogged_history_gives_the_true_capacity_per_worker_and_what_arrived() {
    // 4 workers of 800 records/s (3200 in all): 2000/s for an hour, 4000/s for an hour (a backlog
    // builds: the job moves all it can), then 1500/s while it drains.
    let rate = |s: f64| match s {
        s if s < 3600.0 => 2000.0,
        s if s < 7200.0 => 4000.0,
        _ => 1500.0,
    };
    let history = recorded(800.0, 4, 4 * 3600, rate, policy(12));
    let replay = replay(&history, None, None).expect("a replay");
    let fitted = replay.model.capacity_per_worker;
    assert_eq!(replay.model.method, FitMethod::Saturated, "{replay:?}");
    assert!((fitted - 800.0).abs() <= 80.0, "fitted {fitted}");
    assert!(replay.model.evidence > 50, "{:?}", replay.model);

    // The trace is what arrived, not what the saturated job consumed (3200/s), within the noise.
    for (at, truth) in [
        (1800.0, 2000.0),
        (5400.0, 4000.0),
        (6600.0, 4000.0),
        (12600.0, 1500.0),
    ] {
        let replayed = replay.trace.rate_at(at);
        assert!(
            (replayed - truth).abs() <= truth * 0.15,
            "at {at} s: replayed {replayed}, arrived {truth}"
        );
    }
    assert_eq!(replay.scrape_interval_seconds, 30);
    assert_eq!(replay.initial_scale, 4);
    // max_scale 12 is above the highest scale seen, and no partition count is given.
    assert_eq!(replay.model.partitions, 12);
    assert!((replay.hours - 4.0).abs() < 0.02, "{}", replay.hours);
}

#[test]
fn without_a_backlog_the_capacity_comes_from_output_over_cpu() {
    // 6 workers of 1200 records/s carrying 4000/s: 56 % busy, never a backlog.
    let history = recorded(1200.0, 6, 2 * 3600, |_| 4000.0, policy(12));
    let replay = replay(&history, Some(8), None).expect("a replay");
    assert_eq!(replay.model.method, FitMethod::Cpu);
    let fitted = replay.model.capacity_per_worker;
    assert!((fitted - 1200.0).abs() <= 120.0, "fitted {fitted}");
    assert_eq!(replay.model.partitions, 8, "the flag wins");
}

#[test]
fn an_idle_history_shows_no_capacity_and_a_short_one_is_refused() {
    let idle = recorded(1000.0, 4, 3600, |_| 100.0, policy(8));
    let error = replay(&idle, None, None).expect_err("2.5 % busy says nothing");
    assert!(matches!(error, HistoryError::NoCapacity { .. }), "{error}");
    let given = replay(&idle, None, Some(900.0)).expect("a given capacity");
    assert_eq!(given.model.method, FitMethod::Given);

    let short = recorded(1000.0, 4, 200, |_| 2000.0, policy(8));
    let error = replay(&short, None, None).expect_err("6 samples");
    assert!(
        matches!(error, HistoryError::TooFew { found: 6 }),
        "{error}"
    );
}

#[test]
fn samples_just_after_a_scale_change_are_no_evidence_of_capacity() {
    // A backlog throughout; the scale reads 4, then 8 for the last 10 minutes. Right after the change
    // the (restarting) job moved nothing: counted, the median would halve.
    let mut history = recorded(500.0, 4, 3600, |_| 4000.0, policy(8));
    let changed = history.samples.len() - 20;
    for (i, sample) in history.samples.iter_mut().enumerate().skip(changed) {
        sample.scale = Some(8.0);
        if i < changed + 4 {
            sample.records_out = Some(50.0);
        } else {
            sample.records_out = sample.records_out.map(|r| r * 2.0);
        }
    }
    let backlogged = history
        .samples
        .iter()
        .filter(|s| {
            s.lag_seconds
                .is_some_and(|l| l > history.policy.lag_seconds_low)
        })
        .count();
    let fitted = replay(&history, None, None).expect("a replay").model;
    // The samples 0, 30, 60 and 90 s after the change are left out; the one at 120 s counts.
    assert_eq!(fitted.evidence, backlogged - 4, "{fitted:?}");
    assert!(
        (fitted.capacity_per_worker - 500.0).abs() <= 50.0,
        "{fitted:?}"
    );
}

#[test]
fn the_exported_json_reads_back_as_the_same_history() {
    let history = recorded(800.0, 4, 1200, |_| 2000.0, policy(8));
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("orders.json");
    std::fs::write(&path, serde_json::to_string(&history).expect("json")).expect("written");
    // serde_json reads a float back to within an ulp, not always to the bit.
    let read = History::read(&path).expect("read");
    assert_eq!(
        (&read.cluster, &read.policy, read.since, read.until),
        (
            &history.cluster,
            &history.policy,
            history.since,
            history.until
        )
    );
    assert_eq!(read.samples.len(), history.samples.len());
    for (a, b) in read.samples.iter().zip(&history.samples) {
        assert_eq!(a.sampled_at, b.sampled_at);
        let close = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * y.abs().max(1.0),
            (x, y) => x == y,
        };
        assert!(
            close(a.records_in, b.records_in) && close(a.cpu_load, b.cpu_load),
            "{a:?}"
        );
        assert!(
            close(a.lag_seconds, b.lag_seconds) && close(a.scale, b.scale),
            "{a:?}"
        );
    }
    std::fs::write(&path, "{\"cluster\": \"orders\"}").expect("written");
    let error = History::read(&path).expect_err("not a history");
    assert!(
        error.to_string().contains("not an exported history"),
        "{error}"
    );
}
