use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::{cluster::Policy, decide::Sample};

pub(crate) fn policy(extra: serde_json::Value) -> Policy {
    // The figures of these tests are worked out for a CPU threshold and a target utilisation of 80 %.
    let mut value =
        serde_json::json!({"max_scale": 32, "cpu_high": 0.8, "target_utilization": 0.8});
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

/// The estimate from `history` alone, with nothing remembered.
pub(crate) fn fresh(history: &[Sample], policy: &Policy) -> Result<Estimate, EstimateError> {
    estimate(history, policy, &CapacityMemory::default(), now())
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
    let estimate = fresh(&history, &policy(serde_json::json!({}))).expect("estimate");
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
    fresh(history, &policy(policy_json)).expect("estimate")
}

#[test]
fn too_few_distinct_scales_falls_back_to_proportional_and_says_why() {
    let history = saturated_history(1000.0, &[4.0; 8], 6000.0, 0.0);
    let estimate = fresh(&history, &policy(serde_json::json!({}))).expect("estimate");
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
    let estimate = fresh(&history, &policy(serde_json::json!({}))).expect("estimate");
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
    let estimate = fresh(&history, &policy(serde_json::json!({}))).expect("estimate");
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
    let estimate = fresh(&history, &policy(serde_json::json!({}))).expect("estimate");
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
        fresh(&history, &policy(serde_json::json!({}))),
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
    let estimate = fresh(&history, &policy(serde_json::json!({}))).expect("estimate");
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
    let estimate = fresh(&history, &policy(serde_json::json!({}))).expect("estimate");
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
    let estimate = fresh(&burst_then_idle(), &policy(serde_json::json!({}))).expect("estimate");
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

/// One point per scale: `capacity(scale)` records/s, seen over `samples` scrapes, `age_hours` ago.
fn point(scale: u32, capacity: f64, samples: u32, age_hours: i64) -> CapacityPoint {
    CapacityPoint {
        scale,
        capacity,
        spread: 0.0,
        samples,
        observed_at: now() - Duration::hours(age_hours),
    }
}

fn bending(scale: f64) -> f64 {
    1000.0 * scale.powf(0.7)
}

#[test]
fn a_bending_curve_is_learned_as_a_power_law_and_inverted_exactly() {
    let points: Vec<CapacityPoint> = [2, 4, 6, 8]
        .map(|s| point(s, bending(f64::from(s)), 3, 0))
        .to_vec();
    let method = capacity::fit_capacity(&points).expect("a model");
    let Method::PowerLaw {
        coefficient,
        exponent,
        r2,
        line_r2,
        ..
    } = &method
    else {
        panic!("expected the power law, got {method:?}");
    };
    assert!((exponent - 0.7).abs() < 1e-6, "{method:?}");
    assert!((coefficient - 1000.0).abs() < 1e-3, "{method:?}");
    assert!(
        *r2 > 0.999 && line_r2.is_some_and(|line| line < *r2),
        "{method:?}"
    );
    // Far beyond the points, where a line through them would promise too much.
    assert!((method.scale_for(bending(20.0)) - 20.0).abs() < 1e-6);
}

#[test]
fn through_two_points_the_origin_chooses_diminishing_returns() {
    // What the sublinear trace showed: 11 workers moved 7658 records/s, 22 moved 13716.
    let points = [point(11, 7658.0, 40, 1), point(22, 13_716.0, 40, 0)];
    let method = capacity::fit_capacity(&points).expect("a model");
    let Method::PowerLaw { exponent, .. } = &method else {
        panic!("expected the power law, got {method:?}");
    };
    assert!((exponent - 0.84).abs() < 0.01, "{method:?}");
    // Bending the other way, two points cannot tell a super-linear curve from noise: the line.
    let points = [point(10, 5000.0, 40, 1), point(20, 11_000.0, 40, 0)];
    let method = capacity::fit_capacity(&points).expect("a model");
    assert!(matches!(method, Method::Regression { .. }), "{method:?}");
}

#[test]
fn a_straight_line_keeps_the_linear_model() {
    let points: Vec<CapacityPoint> = [2, 4, 6, 8]
        .map(|s| point(s, 500.0 + 1000.0 * f64::from(s), 3, 0))
        .to_vec();
    let method = capacity::fit_capacity(&points).expect("a model");
    let Method::Regression { fit } = &method else {
        panic!("expected the line, got {method:?}");
    };
    assert!((fit.slope - 1000.0).abs() < 1e-6 && (fit.intercept - 500.0).abs() < 1e-3);
    assert!((method.scale_for(10_500.0) - 10.0).abs() < 1e-6);
    // A line through the origin is a power law of exponent 1: the line, through two points or four.
    for scales in [&[2, 4][..], &[2, 4, 6, 8][..]] {
        let points: Vec<CapacityPoint> = scales
            .iter()
            .map(|s| point(*s, 1000.0 * f64::from(*s), 3, 0))
            .collect();
        let method = capacity::fit_capacity(&points).expect("a model");
        assert!(matches!(method, Method::Regression { .. }), "{method:?}");
    }
}

/// Saturated at each of `scales` in turn (three settled samples each), moving `out(scale)`.
fn bending_history(scales: &[f64], out: fn(f64) -> f64, input: f64) -> Vec<Sample> {
    let scales: Vec<f64> = scales.iter().flat_map(|s| [*s; 3]).collect();
    let mut history = saturated_history(1.0, &scales, input, 0.0);
    for sample in &mut history {
        sample.records_out = sample.scale.map(out);
    }
    history
}

#[test]
fn diminishing_returns_size_the_job_where_a_line_would_fall_short() {
    let history = bending_history(&[2.0, 4.0, 6.0, 8.0], bending, 8000.0);
    let estimate =
        fresh(&history, &policy(serde_json::json!({"max_scale": 64}))).expect("estimate");
    assert!(
        matches!(estimate.method, Method::PowerLaw { .. }),
        "{estimate:?}"
    );
    // 8000 ÷ 0.8 = 10000 records/s: 1000 × s^0.7 reaches it at 26.8, so 27. The line through the same
    // points (about 775 + 444 × s) would say 21, which moves only 8400.
    assert_eq!(estimate.scale, 27, "{estimate:?}");
    assert!(bending(27.0) >= 10_000.0 && bending(26.0) < 10_000.0);
}

#[test]
fn busy_cpu_speaks_for_capacity_and_idle_cpu_does_not() {
    // Keeping up (no backlog) at 60 % CPU moving 1200 records/s: 2000 at full load. At 30 % nothing counts.
    let mut history = saturated_history(600.0, &[2.0; 4], 1200.0, 0.0);
    for sample in &mut history {
        sample.lag_seconds = Some(0.0);
        sample.cpu_load = Some(0.6);
    }
    let evidence_of =
        |history: &[Sample]| evidence(&settled(history), &policy(serde_json::json!({})));
    let points = evidence_of(&history);
    assert_eq!(points.len(), 1);
    assert_eq!((points[0].scale, points[0].samples), (2, 4));
    assert!((points[0].capacity - 2000.0).abs() < 10.0, "{points:?}");
    for sample in &mut history {
        sample.cpu_load = Some(0.3);
    }
    assert!(evidence_of(&history).is_empty());
}

#[test]
fn memory_keeps_the_newest_well_supported_point_per_scale_forgets_old_ones_and_stays_bounded() {
    let memory = CapacityMemory {
        points: vec![
            point(2, 2000.0, 5, 30),
            point(4, 4000.0, 5, 30),
            // Older than the memory's horizon: forgotten.
            point(6, 6000.0, 5, 24 * MEMORY_DAYS + 1),
            point(10, 10_000.0, 40, 2),
        ],
    };
    let fresh_points = [
        // Well supported: replaces.
        point(2, 1800.0, 3, 0),
        // One scrape against five: the remembered point stays.
        point(4, 9999.0, 1, 0),
        point(8, 7000.0, 4, 0),
        // The tail of the same run at 10 the memory holds whole, as the history slides past it: kept.
        point(10, 12_000.0, 3, 2),
    ];
    let merged = merge(&memory, &fresh_points, now());
    assert_eq!(
        merged.points,
        vec![
            point(2, 1800.0, 3, 0),
            point(4, 4000.0, 5, 30),
            point(8, 7000.0, 4, 0),
            point(10, 10_000.0, 40, 2),
        ]
    );
    // However many scales a cluster ran at, the newest `MEMORY_SCALES` are kept, sorted by scale.
    let many: Vec<CapacityPoint> = (1..=40)
        .map(|s| point(s, 100.0 * f64::from(s), 3, i64::from(40 - s)))
        .collect();
    let merged = merge(&CapacityMemory::default(), &many, now());
    assert_eq!(merged.points.len(), MEMORY_SCALES);
    assert_eq!(merged.points[0].scale, 40 - MEMORY_SCALES as u32 + 1);
    assert!(merged.points.windows(2).all(|w| w[0].scale < w[1].scale));
    assert_eq!(merge(&merged, &[], now()), merged);
    // A week later it is all forgotten.
    assert!(
        merge(&merged, &[], now() + Duration::days(MEMORY_DAYS))
            .points
            .is_empty()
    );
}

#[test]
fn with_memory_one_fresh_scale_is_enough_for_a_fitted_model() {
    // This hour the job ran at 4 workers only: alone, that is a proportional estimate.
    let history = saturated_history(1000.0, &[4.0; 8], 6000.0, 0.0);
    let p = policy(serde_json::json!({}));
    let alone = fresh(&history, &p).expect("estimate");
    assert!(
        matches!(alone.method, Method::Proportional { .. }),
        "{alone:?}"
    );
    assert_eq!(alone.learned.points.len(), 1);
    // Earlier decisions saw 2 and 8 workers.
    let memory = CapacityMemory {
        points: vec![point(2, 2000.0, 4, 5), point(8, 8000.0, 4, 3)],
    };
    let estimate = estimate(&history, &p, &memory, now()).expect("estimate");
    let Method::Regression { fit } = &estimate.method else {
        panic!("expected the regression, got {estimate:?}");
    };
    assert_eq!(fit.points, 3);
    assert!((fit.slope - 1000.0).abs() < 5.0, "{fit:?}");
    assert_eq!(estimate.remembered_scales, 2);
    assert_eq!(estimate.learned.points.len(), 3);
    // 6000 ÷ 0.8 = 7500 records/s → 8 workers.
    assert_eq!(estimate.scale, 8, "{estimate:?}");
}

#[test]
fn points_past_a_ceiling_are_not_fitted_and_name_the_scale_that_reaches_it() {
    // Linear to 10 workers; at 20 the sink held the job to 14000 records/s.
    let points = [
        point(5, 5000.0, 6, 3),
        point(10, 10000.0, 6, 2),
        point(20, 14000.0, 6, 1),
    ];
    let (below, ceiling) = capacity::ceiling(&points);
    assert_eq!(below.iter().map(|p| p.scale).collect::<Vec<_>>(), [5, 10]);
    let ceiling = ceiling.expect("a ceiling");
    assert_eq!((ceiling.scale, ceiling.shown_at), (14, 20));
    assert_eq!(ceiling.capacity, 14000.0);
    // Neighbouring scales are within each other's noise: no ceiling between 10 and 11.
    let close = [point(10, 10000.0, 6, 2), point(11, 10100.0, 6, 1)];
    assert_eq!(capacity::ceiling(&close).1, None);
    // Growing as promised (or at least half of it): no ceiling.
    let growing = [point(10, 10000.0, 6, 2), point(20, 16000.0, 6, 1)];
    assert_eq!(capacity::ceiling(&growing).1, None);
    // Trimmed back to the knee, the job there measures a little under what 20 did, with noise: the knee
    // stays at 14, where a strict reading (14 × 14050 ÷ 13990 = 14.06) would move it up to 15.
    let trimmed = [
        point(10, 10000.0, 6, 3),
        point(14, 13990.0, 6, 1),
        point(20, 14050.0, 6, 2),
    ];
    let ceiling = capacity::ceiling(&trimmed).1.expect("a ceiling");
    assert_eq!((ceiling.scale, ceiling.shown_at), (14, 20));
}

#[test]
fn a_low_point_shows_no_ceiling_when_it_is_thin_or_a_newer_larger_scale_moved_more() {
    // At 10 the job measured 8800 where 8 moved 7900: under half the promise, a ceiling at 9 ...
    let low = [point(8, 7900.0, 6, 4), point(10, 8800.0, 6, 3)];
    assert_eq!(capacity::ceiling(&low).1.map(|c| c.scale), Some(9));
    // ... unless a newer point at 12 moved 11900: the job grew past it, so 10 measured low.
    let grew_past = [
        point(8, 7900.0, 6, 4),
        point(10, 8800.0, 6, 3),
        point(12, 11900.0, 6, 1),
    ];
    let (below, ceiling) = capacity::ceiling(&grew_past);
    assert_eq!(ceiling, None);
    assert_eq!(below.iter().map(|p| p.scale).collect::<Vec<_>>(), [8, 12]);
    // An older point at 12 says nothing against it: the sink may have slowed since.
    let older = [
        point(8, 7900.0, 6, 4),
        point(10, 8800.0, 6, 3),
        point(12, 11900.0, 6, 5),
    ];
    assert_eq!(capacity::ceiling(&older).1.map(|c| c.scale), Some(9));
    // Nor does one scrape at a scale the job passed through show a ceiling.
    let thin = [point(8, 7900.0, 6, 4), point(10, 8800.0, 3, 3)];
    assert_eq!(capacity::ceiling(&thin).1, None);
}
