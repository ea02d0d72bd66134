//! The baselines do what their documentation says, each on a situation whose answer is known.

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::{Bounds, Change, Ds2, Hpa, Keda, Observation, ScalingPolicy, Truth};
use crate::decide::Sample;

const BOUNDS: Bounds = Bounds { min: 1, max: 24 };

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0)
        .single()
        .expect("time")
}

/// One scrape every 30 s: CPU share, lag in records, records in and out per second.
#[derive(Clone, Copy)]
struct Reading {
    cpu: f64,
    lag: f64,
    records_in: f64,
    records_out: f64,
}

fn sample(index: usize, reading: Reading, scale: u32) -> Sample {
    Sample {
        sampled_at: start() + Duration::seconds(30 * index as i64),
        cpu_load: Some(reading.cpu),
        lag_records: Some(reading.lag),
        lag_seconds: Some(reading.lag / reading.records_in.max(1.0)),
        records_in: Some(reading.records_in),
        records_out: Some(reading.records_out),
        scale: Some(f64::from(scale)),
    }
}

/// Feeds `policy` one scrape at a time from `readings` at `scale`, returning each answer.
fn drive(
    policy: &mut dyn ScalingPolicy,
    scale: u32,
    readings: impl IntoIterator<Item = Reading>,
) -> Vec<Option<u32>> {
    let mut samples = Vec::new();
    readings
        .into_iter()
        .enumerate()
        .map(|(i, reading)| {
            samples.push(sample(i, reading, scale));
            let now = samples[i].sampled_at;
            policy.decide(&Observation {
                now,
                seconds: 30.0 * i as f64,
                samples: &samples,
                scale,
                in_flight: false,
                last_change: None::<Change>,
                truth: Truth {
                    lag_records: reading.lag,
                    restart_remaining_seconds: 0.0,
                },
            })
        })
        .collect()
}

fn cpu(cpu: f64) -> Reading {
    Reading {
        cpu,
        lag: 0.0,
        records_in: 1000.0,
        records_out: 1000.0,
    }
}

#[test]
fn the_hpa_holds_within_its_tolerance_and_scales_by_the_usage_ratio() {
    // 85 % against a target of 80 % is within the 10 % tolerance.
    assert_eq!(drive(&mut Hpa::new(BOUNDS), 4, [cpu(0.85)]), vec![None]);
    // 100 %: ceil(1.25 × 4) = 5.
    assert_eq!(drive(&mut Hpa::new(BOUNDS), 4, [cpu(1.0)]), vec![Some(5)]);
}

#[test]
fn the_hpa_scales_down_only_after_five_minutes_of_lower_recommendations() {
    // A calm minute at target, then 20 % for six minutes: ceil(0.25 × 10) = 3, but not before the
    // recommendation of 10 has left the 300 s window.
    let readings = [cpu(0.8), cpu(0.8)]
        .into_iter()
        .chain(std::iter::repeat_n(cpu(0.2), 12));
    let answers = drive(&mut Hpa::new(BOUNDS), 10, readings);
    let first_down = answers.iter().position(Option::is_some).expect("a change");
    assert_eq!(answers[first_down], Some(3));
    // The last 10 was recommended at 30 s; 300 s later is the first scrape past the window.
    assert_eq!(first_down, 12, "{answers:?}");
}

#[test]
fn the_hpa_steps_up_by_at_most_four_pods_or_double() {
    let mut behaviour = super::hpa::Behaviour::new(BOUNDS);
    assert_eq!(behaviour.replicas(0.0, 2, 10.0, 20), 6);
    let mut behaviour = super::hpa::Behaviour::new(BOUNDS);
    assert_eq!(behaviour.replicas(0.0, 8, 10.0, 80), 16);
}

#[test]
fn without_a_metric_the_hpa_recommends_nothing() {
    let mut hpa = Hpa::new(BOUNDS);
    let mut reading = sample(0, cpu(1.0), 4);
    reading.cpu_load = None;
    let samples = [reading];
    let answer = hpa.decide(&Observation {
        now: start(),
        seconds: 0.0,
        samples: &samples,
        scale: 4,
        in_flight: false,
        last_change: None,
        truth: Truth {
            lag_records: 0.0,
            restart_remaining_seconds: 0.0,
        },
    });
    assert_eq!(answer, None);
}

fn lag(records: f64) -> Reading {
    Reading {
        cpu: 1.0,
        lag: records,
        records_in: 1000.0,
        records_out: 1000.0,
    }
}

#[test]
fn keda_asks_for_one_replica_per_threshold_of_lag_within_the_hpa_limits() {
    // 1000 records/s per worker: the threshold is a minute of one worker's work, 60000 records.
    let keda = || Keda::new(BOUNDS, 1000.0);
    // 300000 records is five thresholds; from 1 the HPA allows max(1 + 4, 2) = 5.
    assert_eq!(drive(&mut keda(), 1, [lag(300_000.0)]), vec![Some(5)]);
    // Ten million records is far more than the partitions: at most 24.
    assert_eq!(drive(&mut keda(), 20, [lag(1e7)]), vec![Some(24)]);
    // No lag: down to the minimum, once the scale-down stabilisation lets it.
    let answers = drive(&mut keda(), 6, std::iter::repeat_n(lag(0.0), 12));
    assert_eq!(answers.last(), Some(&Some(1)), "{answers:?}");
}

/// A DS2 reading: `workers` each processing 1000 records/s at full load.
fn load(input: f64, workers: u32, lag_records: f64) -> Reading {
    let capacity = 1000.0 * f64::from(workers);
    let out = input.min(capacity);
    Reading {
        cpu: out / capacity,
        lag: lag_records,
        records_in: out,
        records_out: out,
    }
}

#[test]
fn ds2_waits_for_its_window_then_sizes_for_the_target_rate_at_seventy_percent() {
    // 4 workers at 3500 records/s: within the dead band (87.5 % utilisation), nothing happens.
    let calm = drive(
        &mut Ds2::new(BOUNDS, 60.0),
        4,
        std::iter::repeat_n(load(3500.0, 4, 0.0), 40),
    );
    assert!(calm.iter().all(Option::is_none), "{calm:?}");

    // 6000 records/s arrive at 4 workers: lag grows 2000 records/s. Nothing in the first 15 minutes.
    let mut lag_records = 0.0;
    let readings: Vec<Reading> = (0..40)
        .map(|_| {
            lag_records += 2000.0 * 30.0;
            load(6000.0, 4, lag_records)
        })
        .collect();
    let answers = drive(&mut Ds2::new(BOUNDS, 60.0), 4, readings);
    let first = answers.iter().position(Option::is_some).expect("a change");
    assert!(
        first >= 30,
        "DS2 waits out its 15-minute window: {answers:?}"
    );
    // The target rate is 4000 out + 2000 growth = 6000; at 70 %, plus draining and the restart's backlog
    // within 30 minutes, it is more than 8.6 workers of 1000.
    let wanted = answers[first].expect("a change");
    assert!((9..=24).contains(&wanted), "{wanted}");
}

#[test]
fn ds2_scales_down_only_after_an_hour_and_never_below_forty_percent() {
    // 10 workers at 1000 records/s in all: 10 % utilisation, far below the dead band.
    let answers = drive(
        &mut Ds2::new(BOUNDS, 60.0),
        10,
        std::iter::repeat_n(load(1000.0, 10, 0.0), 200),
    );
    let first = answers.iter().position(Option::is_some).expect("a change");
    // Collecting starts at once, the first recommendation comes after the 15-minute window (scrape 30),
    // and the scale-down waits an hour (120 scrapes) after that.
    assert_eq!(first, 150, "{answers:?}");
    // At most 60 % fewer: 10 → 4, though 1000 records/s at 70 % needs 2.
    assert_eq!(answers[first], Some(4));
}

#[test]
fn keda_holds_within_the_hpa_tolerance_and_without_a_lag_metric() {
    let keda = || Keda::new(BOUNDS, 1000.0);
    // 5 replicas and 5 thresholds of lag (ratio 1.0), then 5.4 thresholds (ratio 1.08): both within 10 %.
    assert_eq!(
        drive(&mut keda(), 5, [lag(300_000.0), lag(324_000.0)]),
        vec![None, None]
    );
    // Just past the tolerance (ratio 1.2): one more replica per threshold.
    assert_eq!(drive(&mut keda(), 5, [lag(360_000.0)]), vec![Some(6)]);
    // No lag metric: no recommendation, not a scale to zero.
    let mut samples = vec![sample(0, lag(0.0), 5)];
    samples[0].lag_records = None;
    let answer = keda().decide(&Observation {
        now: samples[0].sampled_at,
        seconds: 0.0,
        samples: &samples,
        scale: 5,
        in_flight: false,
        last_change: None,
        truth: Truth {
            lag_records: 0.0,
            restart_remaining_seconds: 0.0,
        },
    });
    assert_eq!(answer, None);
}

#[test]
fn ds2_never_scales_down_while_lag_is_above_five_minutes() {
    // 10 workers at 10 % utilisation, but 400 s of lag (400000 records at 1000 records/s) all along.
    let answers = drive(
        &mut Ds2::new(BOUNDS, 60.0),
        10,
        std::iter::repeat_n(load(1000.0, 10, 400_000.0), 200),
    );
    assert!(
        answers.iter().all(|a| a.is_none_or(|to| to >= 10)),
        "{answers:?}"
    );
}

#[test]
fn the_hpa_never_leaves_its_bounds() {
    let bounds = Bounds { min: 2, max: 6 };
    // Idle at 3: the HPA would go to 1, the bounds hold it at 2 (after the stabilisation window).
    let answers = drive(&mut Hpa::new(bounds), 3, std::iter::repeat_n(cpu(0.05), 12));
    assert_eq!(answers.last(), Some(&Some(2)), "{answers:?}");
    // Saturated at 5: the HPA would double, the bounds cap it at 6.
    assert_eq!(drive(&mut Hpa::new(bounds), 5, [cpu(1.0)]), vec![Some(6)]);
}
