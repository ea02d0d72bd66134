use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::{cluster::Policy, decide::Sample};

const INTERVAL: u32 = 30;

/// The design's thresholds (CPU above 80 %), which these tests' figures are worked out for.
fn policy() -> Policy {
    serde_json::from_value(
        serde_json::json!({"max_scale": 8, "cpu_high": 0.8, "target_utilization": 0.8}),
    )
    .expect("policy")
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
        .single()
        .expect("time")
}

/// `count` samples ending at `now`, one per interval, built from their index (0 = oldest).
fn samples(count: usize, at: impl Fn(usize) -> Sample) -> Vec<Sample> {
    (0..count)
        .map(|i| {
            let mut s = at(i);
            s.sampled_at =
                now() - Duration::seconds(((count - 1 - i) as i64) * i64::from(INTERVAL));
            s
        })
        .collect()
}

fn sample(cpu: f64, lag_records: f64, lag_seconds: f64) -> Sample {
    Sample {
        sampled_at: now(),
        cpu_load: Some(cpu),
        lag_records: Some(lag_records),
        lag_seconds: Some(lag_seconds),
        records_in: Some(1000.0),
        records_out: Some(1000.0),
        scale: Some(2.0),
    }
}

/// A deterministic wobble in [-1, 1], so noise tests do not depend on a random seed.
fn wobble(i: usize) -> f64 {
    ((i * 7919) % 17) as f64 / 8.0 - 1.0
}

fn verdict(rule: &dyn Rule, samples: &[Sample]) -> Verdict {
    let policy = policy();
    rule.evaluate(&RuleInput {
        policy: &policy,
        samples,
        now: now(),
        scrape_interval_seconds: INTERVAL,
        prediction: None,
        ceiling: None,
    })
}

#[test]
fn sustained_lag_above_five_minutes_fires() {
    let history = samples(11, |i| sample(0.5, 50_000.0, 400.0 + 10.0 * wobble(i)));
    assert_eq!(
        verdict(&LagAboveThreshold, &history).outcome,
        Outcome::Fired
    );
}

#[test]
fn a_single_lag_spike_does_not_fire() {
    let history = samples(11, |i| {
        sample(0.5, 100.0, if i == 10 { 900.0 } else { 5.0 })
    });
    assert_eq!(
        verdict(&LagAboveThreshold, &history).outcome,
        Outcome::Quiet
    );
}

#[test]
fn lag_that_has_just_recovered_does_not_fire() {
    let history = samples(11, |i| {
        sample(0.5, 100.0, if i == 10 { 20.0 } else { 600.0 })
    });
    assert_eq!(
        verdict(&LagAboveThreshold, &history).outcome,
        Outcome::Quiet
    );
}

#[test]
fn missing_or_stale_lag_is_no_data_never_an_action() {
    let gappy = samples(11, |i| {
        let mut s = sample(0.5, 100.0, 900.0);
        if i % 2 == 0 {
            s.lag_seconds = None;
        }
        s
    });
    assert_eq!(verdict(&LagAboveThreshold, &gappy).outcome, Outcome::NoData);

    let mut stale = samples(11, |_| sample(0.5, 100.0, 900.0));
    for s in &mut stale {
        s.sampled_at -= Duration::seconds(600);
    }
    assert_eq!(verdict(&LagAboveThreshold, &stale).outcome, Outcome::NoData);
    assert_eq!(verdict(&CpuAboveThreshold, &[]).outcome, Outcome::NoData);
}

#[test]
fn a_steadily_growing_lag_fires_lag_increasing() {
    let history = samples(11, |i| {
        sample(
            0.5,
            10_000.0 + 3_000.0 * i as f64 + 500.0 * wobble(i),
            60.0 + 3.0 * i as f64,
        )
    });
    let v = verdict(&LagIncreasing, &history);
    assert_eq!(v.outcome, Outcome::Fired, "{}", v.reason);
}

#[test]
fn a_noisy_flat_lag_does_not_fire_lag_increasing() {
    let history = samples(11, |i| sample(0.5, 10_000.0 + 3_000.0 * wobble(i), 60.0));
    let v = verdict(&LagIncreasing, &history);
    assert_eq!(v.outcome, Outcome::Quiet, "{}", v.reason);
}

#[test]
fn growth_from_nothing_to_almost_nothing_does_not_fire() {
    let history = samples(11, |i| sample(0.5, i as f64, 0.1 * i as f64));
    assert_eq!(verdict(&LagIncreasing, &history).outcome, Outcome::Quiet);
}

#[test]
fn cpu_above_80_percent_fires_only_when_sustained() {
    let hot = samples(11, |i| sample(0.9 + 0.05 * wobble(i), 0.0, 0.0));
    assert_eq!(verdict(&CpuAboveThreshold, &hot).outcome, Outcome::Fired);
    let spiky = samples(11, |i| {
        sample(if i % 4 == 0 { 0.95 } else { 0.5 }, 0.0, 0.0)
    });
    assert_eq!(verdict(&CpuAboveThreshold, &spiky).outcome, Outcome::Quiet);
}

#[test]
fn low_load_fires_only_over_the_whole_longer_window() {
    let quiet = samples(61, |_| sample(0.1, 10.0, 1.0));
    assert_eq!(verdict(&SustainedLowLoad, &quiet).outcome, Outcome::Fired);
    // Quiet for the scale-up window only: not enough history for the scale-down window.
    let short = samples(11, |_| sample(0.1, 10.0, 1.0));
    assert_eq!(verdict(&SustainedLowLoad, &short).outcome, Outcome::NoData);
    // A busy stretch (two minutes) within the scale-up window holds both paths back...
    let busy_stretch = samples(61, |i| {
        sample(if (55..59).contains(&i) { 0.6 } else { 0.1 }, 10.0, 1.0)
    });
    assert_eq!(
        verdict(&SustainedLowLoad, &busy_stretch).outcome,
        Outcome::Quiet
    );
    // ...one noisy scrape does not.
    let one_noisy_scrape = samples(61, |i| sample(if i == 58 { 0.6 } else { 0.1 }, 10.0, 1.0));
    assert_eq!(
        verdict(&SustainedLowLoad, &one_noisy_scrape).outcome,
        Outcome::Fired
    );
}

#[test]
fn the_fast_path_judges_a_fall_from_the_busiest_two_minutes_or_a_backlog_gone() {
    // 45 % CPU on 2 workers for the first 20 samples holds the slow path back (one fewer: 90 %); since
    // then 30 % (one fewer: 60 %, within the target).
    let after = |older: &dyn Fn(usize) -> Sample| {
        let history = samples(61, |i| {
            if i < 20 {
                older(i)
            } else {
                sample(0.3, 10.0, 1.0)
            }
        });
        verdict(&SustainedLowLoad, &history)
    };
    let input = |rate: f64| Sample {
        records_in: Some(rate),
        ..sample(0.45, 10.0, 1.0)
    };
    // One noisy scrape of 1500 records/s among 1000s is no peak to have fallen from...
    let noisy = after(&|i| input(if i == 10 { 1500.0 } else { 1000.0 }));
    assert_eq!(noisy.outcome, Outcome::Quiet, "{}", noisy.reason);
    // ...ten minutes of it are.
    let burst = after(&|_| input(1500.0));
    assert_eq!(burst.outcome, Outcome::Fired, "{}", burst.reason);
    // No fall at all, but a backlog above the threshold (600 s) drained since: the scale raised to
    // drain it may go.
    let drained = after(&|i| Sample {
        records_in: Some(5000.0),
        ..sample(0.45, 2_400_000.0 - 120_000.0 * i as f64, 600.0)
    });
    assert_eq!(drained.outcome, Outcome::Fired, "{}", drained.reason);
}

#[test]
fn low_load_fires_soon_after_a_burst_when_one_worker_fewer_meets_the_target() {
    // A burst 20 minutes ago (5000 records/s, lag 200 s), drained since, at 1000 records/s and 30 % CPU on
    // 2 workers: one fewer would run at 60 %, below the default target.
    let burst = |cpu: f64, after_cpu: f64| {
        samples(61, move |i| {
            if i < 20 {
                Sample {
                    records_in: Some(5000.0),
                    ..sample(cpu, 50_000.0, 200.0)
                }
            } else {
                sample(after_cpu, 10.0, 1.0)
            }
        })
    };
    let fired = verdict(&SustainedLowLoad, &burst(1.0, 0.3));
    assert_eq!(fired.outcome, Outcome::Fired, "{}", fired.reason);
    // At 40 % CPU one worker fewer would run at 80 %, above the target: not yet.
    assert_eq!(
        verdict(&SustainedLowLoad, &burst(1.0, 0.4)).outcome,
        Outcome::Quiet
    );
    // Twenty samples of `busy`, then the same low figures as the burst's.
    let quiet_after = |busy: &dyn Fn(usize) -> Sample| {
        let history = samples(61, |i| {
            if i < 20 {
                busy(i)
            } else {
                sample(0.3, 10.0, 1.0)
            }
        });
        let verdict = verdict(&SustainedLowLoad, &history);
        assert_eq!(verdict.outcome, Outcome::Quiet, "{}", verdict.reason);
    };
    // Without a fall in the input (just after a scale-up, say): not the fast path.
    quiet_after(&|_| sample(1.0, 50_000.0, 200.0));
    // Consuming 5000 records/s while the backlog shrank by 4000 a second is 1000 arriving: a job that
    // caught up, not a burst of load that ended.
    quiet_after(&|i| Sample {
        records_in: Some(5000.0),
        ..sample(1.0, 2_400_000.0 - 120_000.0 * i as f64, 200.0)
    });
}

fn at_scale(scale: f64) -> Vec<Sample> {
    samples(61, |_| Sample {
        scale: Some(scale),
        ..sample(0.1, 50_000.0, 600.0)
    })
}

fn choose(
    history: &[Sample],
    ceiling: Option<crate::estimate::Ceiling>,
) -> (Vec<Verdict>, Option<Verdict>) {
    let policy = policy();
    let input = RuleInput {
        policy: &policy,
        samples: history,
        now: now(),
        scrape_interval_seconds: INTERVAL,
        prediction: None,
        ceiling,
    };
    evaluate(&standard_rules(), &input)
}

/// Capacity stops growing at 14: at 20 the job moved no more than 14 do.
const KNEE_AT_14: crate::estimate::Ceiling = crate::estimate::Ceiling {
    scale: 14,
    capacity: 14_000.0,
    shown_at: 20,
};

#[test]
fn scaling_up_wins_when_rules_disagree() {
    let (verdicts, chosen) = choose(&at_scale(2.0), None);
    assert_eq!(verdicts.len(), 5);
    assert_eq!(
        chosen.as_ref().map(|v| v.rule.as_str()),
        Some("lag_above_threshold")
    );
}

#[test]
fn well_past_a_capacity_knee_the_trim_back_to_it_wins_over_a_backlog() {
    // 20 workers with a backlog, where 14 deliver as much: the trim, though the lag rule fires too.
    let (verdicts, chosen) = choose(&at_scale(20.0), Some(KNEE_AT_14));
    let chosen = chosen.expect("a rule fired");
    assert_eq!(chosen.rule, "above_capacity_ceiling");
    assert_eq!(chosen.direction, Direction::Down);
    assert!(
        chosen.reason.contains("the 6 workers above it add nothing"),
        "{chosen:?}"
    );
    assert!(
        verdicts
            .iter()
            .any(|v| v.rule == "lag_above_threshold" && v.outcome == Outcome::Fired)
    );
    // One worker past the knee is within the knee's noise (under 1.2 times it), and none past it is
    // nothing to trim: the lag rule speaks.
    for scale in [14.0, 16.0] {
        let (verdicts, chosen) = choose(&at_scale(scale), Some(KNEE_AT_14));
        assert_eq!(
            chosen.map(|v| v.rule),
            Some("lag_above_threshold".to_owned()),
            "{verdicts:?}"
        );
    }
    // Without a known ceiling the rule is quiet and says so.
    let (verdicts, _) = choose(&at_scale(20.0), None);
    let ceiling = verdicts
        .iter()
        .find(|v| v.rule == "above_capacity_ceiling")
        .expect("the rule's verdict");
    assert_eq!(
        (ceiling.outcome, ceiling.reason.as_str()),
        (Outcome::Quiet, "no capacity ceiling is known")
    );
}

#[test]
fn lag_above_five_minutes_stays_quiet_while_the_backlog_drains_within_the_catch_up_time() {
    // 400 s behind, 60 000 records shrinking by 150 a second: gone in about 100 s.
    let draining = samples(11, |i| sample(0.5, 60_000.0 - 4500.0 * i as f64, 400.0));
    let quiet = verdict(&LagAboveThreshold, &draining);
    assert_eq!(quiet.outcome, Outcome::Quiet, "{quiet:?}");
    assert!(
        quiet.reason.contains("within the catch-up time"),
        "{quiet:?}"
    );
    // Shrinking too slowly to be gone within the catch-up time (600 s): another worker is due.
    let slow = samples(11, |i| sample(0.5, 600_000.0 - 4500.0 * i as f64, 400.0));
    assert_eq!(verdict(&LagAboveThreshold, &slow).outcome, Outcome::Fired);
}

#[test]
fn high_cpu_while_a_backlog_drains_below_the_lag_threshold_is_a_job_catching_up() {
    let catching_up = samples(11, |i| sample(0.97, 600_000.0 - 4500.0 * i as f64, 120.0));
    let quiet = verdict(&CpuAboveThreshold, &catching_up);
    assert_eq!(quiet.outcome, Outcome::Quiet, "{quiet:?}");
    assert!(quiet.reason.contains("the backlog drains"), "{quiet:?}");
    // No backlog to drain, or a lag already above the threshold: the CPU rule speaks.
    let busy = samples(11, |_| sample(0.97, 0.0, 0.0));
    assert_eq!(verdict(&CpuAboveThreshold, &busy).outcome, Outcome::Fired);
    let behind = samples(11, |i| sample(0.97, 600_000.0 - 4500.0 * i as f64, 400.0));
    assert_eq!(verdict(&CpuAboveThreshold, &behind).outcome, Outcome::Fired);
}
