use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;

fn midnight() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap()
}

/// 10000 ± 6000 records/s over the day, highest at 12:00 UTC.
fn sine(at: DateTime<Utc>) -> f64 {
    let day = f64::from(seconds_into_day(at)) / f64::from(DAY_SECONDS);
    10_000.0 - 6_000.0 * (day * std::f64::consts::TAU).cos()
}

/// A small deterministic noise in [-share, share].
fn noise(i: u64, share: f64) -> f64 {
    let x = i.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1) >> 33;
    (x as f64 / f64::from(u32::MAX) * 2.0 - 1.0) * share
}

/// One point per bucket over `days` days from midnight, the rate `sine` with 5 % noise.
fn days_of_points(days: f64) -> Vec<RatePoint> {
    let count = (days * f64::from(DAY_SECONDS / BUCKET_SECONDS)) as i64;
    (0..count)
        .map(|i| {
            // The mean over the bucket is close to the value at its middle.
            let at = midnight() + Duration::seconds(i * i64::from(BUCKET_SECONDS));
            let middle = at + Duration::seconds(i64::from(BUCKET_SECONDS) / 2);
            RatePoint {
                at,
                rate: sine(middle) * (1.0 + noise(i as u64, 0.05)),
            }
        })
        .collect()
}

#[test]
fn a_noisy_sine_is_learned_within_the_noise() {
    let profile = Profile::build(&days_of_points(3.0)).expect("three days");
    assert!((profile.days - 3.0).abs() < 1e-9, "{}", profile.days);
    for hour in [0, 3, 6, 9, 12, 15, 18, 21] {
        let at = midnight() + Duration::hours(hour) + Duration::minutes(7);
        let (learned, truth) = (profile.at(at), sine(at));
        assert!(
            (learned - truth).abs() <= 0.05 * truth,
            "{hour}h: {learned} against {truth}"
        );
    }
}

#[test]
fn fewer_days_than_needed_give_no_profile_and_say_so() {
    let error = Profile::build(&days_of_points(1.0)).expect_err("one day");
    assert_eq!(error, ProfileError::TooFewDays { days: 1.0 });
    assert!(
        error.to_string().starts_with("not enough history"),
        "{error}"
    );
    assert!(Profile::build(&[]).is_err());
    assert!(Profile::build(&days_of_points(MIN_DAYS)).is_ok());
}

#[test]
fn a_missing_hour_is_filled_from_its_neighbours() {
    // Two days, with 10:00 to 11:00 missing on both: no day tells that hour.
    let points: Vec<RatePoint> = days_of_points(2.0)
        .into_iter()
        .filter(|p| !(10..11).contains(&(seconds_into_day(p.at) / 3600)))
        .collect();
    let profile = Profile::build(&points).expect("an hour missing of 24 is fine");
    let at = midnight() + Duration::minutes(10 * 60 + 30);
    assert!(
        (profile.at(at) - sine(at)).abs() <= 0.05 * sine(at),
        "{} against {}",
        profile.at(at),
        sine(at)
    );
    // A whole missing quarter of the day is too much.
    let sparse: Vec<RatePoint> = days_of_points(3.0)
        .into_iter()
        .filter(|p| seconds_into_day(p.at) >= 6 * 3600)
        .collect();
    assert!(matches!(
        Profile::build(&sparse),
        Err(ProfileError::Gaps { .. })
    ));
}

#[test]
fn one_odd_day_among_three_does_not_move_the_profile() {
    // The middle day runs at five times the usual rate.
    let points: Vec<RatePoint> = days_of_points(3.0)
        .into_iter()
        .map(|p| {
            let odd =
                p.at >= midnight() + Duration::days(1) && p.at < midnight() + Duration::days(2);
            RatePoint {
                rate: if odd { p.rate * 5.0 } else { p.rate },
                ..p
            }
        })
        .collect();
    let profile = Profile::build(&points).expect("three days");
    let at = midnight() + Duration::hours(12);
    assert!((profile.at(at) - sine(at)).abs() <= 0.06 * sine(at));
}

#[test]
fn the_forecast_follows_todays_level_within_bounds() {
    let profile = Profile::build(&days_of_points(2.0)).expect("two days");
    let now = midnight() + Duration::days(2) + Duration::hours(6);
    // Today runs 20 % above the usual: noon is forecast 20 % above the usual noon.
    let forecast = profile.forecast(now, 1.2 * profile.at(now));
    assert!((forecast.level - 1.2).abs() < 1e-9);
    let noon = now + Duration::hours(6);
    assert!((forecast.at(noon) - 1.2 * profile.at(noon)).abs() < 1e-6);
    // An outage (rate 0) does not forecast a dead day, nor a burst a day at 100 times.
    assert_eq!(profile.forecast(now, 0.0).level, 0.5);
    assert_eq!(profile.forecast(now, 1e9).level, 2.0);
}

#[test]
fn the_peak_within_a_horizon_is_the_highest_forecast_in_it() {
    let profile = Profile::build(&days_of_points(2.0)).expect("two days");
    let now = midnight() + Duration::days(2) + Duration::hours(11);
    let forecast = profile.forecast(now, profile.at(now));
    // The sine peaks at noon, within two hours from 11:00.
    let (at, rate) = forecast.peak_within(2 * 3600);
    assert!(
        (at - (now + Duration::hours(1))).num_minutes().abs() <= 10,
        "{at}"
    );
    assert!(rate > forecast.at(now) && rate >= forecast.at(now + Duration::hours(2)));
    // Within a minute, the peak is about now.
    let (_, soon) = forecast.peak_within(60);
    assert!((soon - forecast.at(now)).abs() <= 0.01 * soon);
}

#[test]
fn downsampling_averages_consumed_plus_lag_growth_per_bucket() {
    let start = midnight();
    let sample = |seconds: i64, records_in: f64, lag: f64| Sample {
        records_in: Some(records_in),
        lag_records: Some(lag),
        ..Sample::empty(start + Duration::seconds(seconds))
    };
    let history = vec![
        sample(0, 100.0, 0.0),
        // Lag grows 3000 records in 300 s: 10 records/s arrived beyond what was consumed.
        sample(300, 100.0, 3000.0),
        sample(600, 50.0, 3000.0),
        sample(900, 70.0, 3000.0),
        // In the bucket still open at `until`: left out.
        sample(1200, 1.0, 0.0),
    ];
    let points = downsample(&history, start + Duration::seconds(1250));
    assert_eq!(
        points,
        vec![
            RatePoint {
                at: start,
                rate: 105.0
            },
            RatePoint {
                at: start + Duration::seconds(600),
                rate: 60.0
            },
        ]
    );
    assert_eq!(
        bucket_start(start + Duration::seconds(1199)),
        start + Duration::seconds(600)
    );
}
