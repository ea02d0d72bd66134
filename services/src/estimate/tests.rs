use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::{cluster::Policy, decide::Sample};

pub(crate) fn policy(extra: serde_json::Value) -> Policy {
    let mut value = serde_json::json!({"max_scale": 32});
    if let (Some(base), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    serde_json::from_value(value).expect("policy")
}

pub(crate) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
        .single()
        .expect("time")
}

/// Seconds between two samples of the helpers' histories: longer than the settling time after a change
/// of scale, so that every sample counts as evidence.
const SPACING: i64 = 150;

/// A job whose workers each process `per_worker` records/s, saturated (lag waiting) at every scale.
pub(crate) fn saturated_history(
    per_worker: f64,
    scales: &[f64],
    input: f64,
    lag_records: f64,
) -> Vec<Sample> {
    scales
        .iter()
        .enumerate()
        .map(|(i, scale)| Sample {
            sampled_at: now() - Duration::seconds(SPACING * (scales.len() - 1 - i) as i64),
            cpu_load: Some(0.95),
            lag_records: Some(lag_records),
            lag_seconds: Some(600.0),
            records_in: Some(input),
            records_out: Some(per_worker * scale + 3.0 * ((i % 3) as f64 - 1.0)),
            scale: Some(*scale),
        })
        .collect()
}

#[test]
fn regression_learns_capacity_and_sizes_for_input_plus_catch_up() {
    let scales = [2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 4.0, 4.0];
    let history = saturated_history(1000.0, &scales, 6000.0, 600_000.0);
    let estimate = estimate(&history, &policy(serde_json::json!({}))).expect("estimate");
    let Method::Regression { fit } = &estimate.method else {
        panic!("expected the regression, got {:?}", estimate.method);
    };
    assert!((fit.slope - 1000.0).abs() < 20.0, "{fit:?}");
    assert!(fit.r2 > 0.99, "{fit:?}");
    // 6000 input ÷ 0.8 target utilisation + 600000 lag / 600 s catch-up = 8500 records/s → 9 workers.
    assert!(
        (estimate.required_throughput - 8500.0).abs() < 1.0,
        "{estimate:?}"
    );
    assert_eq!(estimate.scale, 9);
}

fn estimate_for(history: &[Sample], policy_json: serde_json::Value) -> Estimate {
    estimate(history, &policy(policy_json)).expect("estimate")
}

#[test]
fn too_few_distinct_scales_falls_back_to_proportional_and_says_why() {
    let history = saturated_history(1000.0, &[4.0; 8], 6000.0, 0.0);
    let estimate = estimate(&history, &policy(serde_json::json!({}))).expect("estimate");
    let Method::Proportional { reason, per_worker } = &estimate.method else {
        panic!("expected the fallback, got {:?}", estimate.method);
    };
    assert!(reason.contains("distinct scale"), "{reason}");
    assert!((per_worker - 1000.0).abs() < 2.0);
    // 6000 ÷ 0.8 / 1000 = 7.5 → 8; at 0.95 target utilisation 6.3 → 7.
    assert_eq!(estimate.scale, 8);
    let cheaper = estimate_for(&history, serde_json::json!({"target_utilization": 0.95}));
    assert_eq!(cheaper.scale, 7, "{cheaper:?}");
}

#[test]
fn an_unsaturated_job_counts_its_cpu_headroom() {
    let mut history = saturated_history(500.0, &[2.0; 3], 1000.0, 0.0);
    for s in &mut history {
        s.cpu_load = Some(0.25);
        s.lag_seconds = Some(1.0);
        s.records_out = Some(1000.0);
    }
    let estimate = estimate(&history, &policy(serde_json::json!({}))).expect("estimate");
    // 500 records/s per worker at 25 % CPU is 2000 at full load; 1100 needed → 1 worker.
    assert_eq!(estimate.scale, 1, "{estimate:?}");
}

#[test]
fn cpu_headroom_never_exceeds_what_a_saturated_worker_moved() {
    // A sink-bound job: while lag waited at one worker, it moved 450 records/s at 2 % CPU.
    let mut history = saturated_history(450.0, &[1.0; 4], 1100.0, 30_000.0);
    for s in &mut history {
        s.cpu_load = Some(0.02);
    }
    // Now at four workers it keeps up with 1100 records/s, still at 2 % CPU.
    let mut calm = saturated_history(275.0, &[4.0; 5], 1100.0, 0.0);
    for (i, s) in calm.iter_mut().enumerate() {
        s.cpu_load = Some(0.02);
        s.lag_seconds = Some(0.5);
        s.sampled_at = now() + Duration::seconds(SPACING * (i as i64 + 1));
    }
    history.extend(calm);
    let estimate = estimate(&history, &policy(serde_json::json!({}))).expect("estimate");
    let Method::Proportional { per_worker, .. } = &estimate.method else {
        panic!(
            "expected the proportional estimate, got {:?}",
            estimate.method
        );
    };
    // CPU alone would say 275 / 0.1 = 2750 per worker and one worker; the ceiling says 450.
    assert!((per_worker - 450.0).abs() < 5.0, "{estimate:?}");
    // 1100 ÷ 0.8 / 450 = 3.06 → 4, not 1.
    assert_eq!(estimate.scale, 4, "{estimate:?}");
}

#[test]
fn a_rising_input_is_forecast_ahead() {
    let mut history = saturated_history(1000.0, &[4.0; 11], 0.0, 0.0);
    for (i, s) in history.iter_mut().enumerate() {
        s.records_in = Some(1000.0 + 2.0 * (SPACING * i as i64) as f64); // +2 records/s every second
    }
    let estimate = estimate(&history, &policy(serde_json::json!({}))).expect("estimate");
    // Newest is 4000 at t = 1500 s; 300 s later the ramp is at 4600. The learned trend forecasts above
    // the newest rate, never beyond the ramp.
    assert!(
        estimate.forecast_input > 4100.0 && estimate.forecast_input <= 4600.0 + 1e-6,
        "{estimate:?}"
    );
}

#[test]
fn missing_metrics_are_an_error_not_a_guess() {
    let mut history = saturated_history(1000.0, &[2.0; 4], 1000.0, 0.0);
    for s in &mut history {
        s.records_in = None;
    }
    assert_eq!(
        estimate(&history, &policy(serde_json::json!({}))),
        Err(EstimateError::MissingMetric("records_in"))
    );
}

#[test]
fn noisy_throughput_is_not_trusted_and_the_fallback_says_so() {
    // Each scale held for two samples: the first after a change is still settling.
    let scales = [
        2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 2.0, 2.0, 3.0, 3.0,
    ];
    let mut history = saturated_history(1000.0, &scales, 6000.0, 0.0);
    // Output unrelated to scale: a random-looking spread of ±2000 around 3000.
    for (i, s) in history.iter_mut().enumerate() {
        s.records_out = Some(3000.0 + [1900.0, -1800.0, 400.0, -2000.0, 1500.0][i % 5]);
    }
    let estimate = estimate(&history, &policy(serde_json::json!({}))).expect("estimate");
    let Method::Proportional { reason, .. } = &estimate.method else {
        panic!("noise must not be trusted: {:?}", estimate.method);
    };
    assert!(
        reason.contains("poor fit") || reason.contains("does not grow"),
        "{reason}"
    );
}

#[test]
fn non_finite_and_negative_readings_are_ignored_or_floored() {
    let mut history = saturated_history(1000.0, &[4.0; 8], 6000.0, 0.0);
    let last = history.len() - 1;
    history[last].records_out = Some(f64::NAN);
    history[last].records_in = Some(f64::INFINITY);
    history[last].lag_records = Some(-5_000.0);
    let estimate = estimate(&history, &policy(serde_json::json!({}))).expect("estimate");
    assert!(estimate.forecast_input.is_finite(), "{estimate:?}");
    assert!(estimate.required_throughput.is_finite() && estimate.required_throughput > 0.0);
    // Negative lag counts as none: 6000 ÷ 0.8 / 1000 per worker → 8.
    assert_eq!(estimate.scale, 8, "{estimate:?}");
}

/// What a reactive Flink job showed: a burst at one worker (about 400 records/s each), a restart at three
/// (nothing comes out while the backlog grows), the backlog drains, the input falls to almost nothing.
fn burst_then_idle() -> Vec<Sample> {
    let mut lag: f64 = 0.0;
    (0..120)
        .map(|i| {
            let (scale, capacity, input) = match i {
                0..40 => (1.0, 400.0, 100.0),
                40..60 => (1.0, 400.0, 900.0),
                60..64 => (3.0, 0.0, 900.0),
                64..80 => (3.0, 1200.0, 900.0),
                _ => (3.0, 1200.0, 10.0),
            };
            let out = f64::min(capacity, input + lag / 15.0);
            lag = (lag + (input - out) * 15.0).max(0.0);
            Sample {
                sampled_at: now() - Duration::seconds(15 * (119 - i)),
                cpu_load: Some(if capacity > 0.0 {
                    (out / capacity).max(0.02)
                } else {
                    0.05
                }),
                lag_records: Some(lag),
                lag_seconds: Some(if lag > 0.0 { lag / input } else { 0.0 }),
                records_in: Some(out),
                records_out: Some(out),
                scale: Some(scale),
            }
        })
        .collect()
}

#[test]
fn after_a_burst_and_a_restart_an_idle_job_is_sized_for_its_input() {
    let estimate = estimate(&burst_then_idle(), &policy(serde_json::json!({}))).expect("estimate");
    // Ten minutes after the burst the forecast has forgotten it, and a worker is known to move about 400
    // records/s (not the 33 its idle CPU would suggest, nor the 0 of the restart).
    assert!(estimate.forecast_input < 50.0, "{estimate:?}");
    assert_eq!(estimate.scale, 1, "{estimate:?}");
}

#[test]
fn samples_just_after_a_change_of_scale_are_not_evidence_of_capacity() {
    let history = burst_then_idle();
    let settled = settled(&history);
    // The four restart samples and the four after them (two minutes at 15 s) are left out.
    assert_eq!(settled.len(), history.len() - 8);
    assert!(settled.iter().all(|s| s.records_out != Some(0.0)));
}

/// Twenty minutes at `from` workers, then twenty at `to`, a sample every 30 s, a backlog waiting
/// throughout; `out(scale)` is what the job moved at that scale.
pub(crate) fn scale_up_history(from: f64, to: f64, out: fn(f64) -> f64) -> Vec<Sample> {
    (0..80)
        .map(|i| {
            let scale = if i < 40 { from } else { to };
            Sample {
                sampled_at: now() - Duration::seconds(30 * (79 - i)),
                cpu_load: Some(0.5),
                lag_records: Some(1_000_000.0),
                lag_seconds: Some(900.0),
                records_in: Some(out(scale)),
                records_out: Some(out(scale)),
                scale: Some(scale),
            }
        })
        .collect()
}

#[test]
fn without_a_backlog_on_both_sides_a_scale_up_proves_nothing() {
    let mut history = scale_up_history(12.0, 18.0, |scale| (1000.0 * scale).min(14_000.0));
    // After the change the job keeps up: what it moves is its input, not its capacity.
    for s in history.iter_mut().skip(40) {
        s.lag_seconds = Some(1.0);
        s.cpu_load = Some(0.3);
    }
    assert_eq!(
        last_scale_up(&history, &policy(serde_json::json!({}))),
        None
    );
}
