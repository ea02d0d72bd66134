//! The daily seasonal component of the input rate: what the rate usually is at each time of day, learned
//! from the past days, and a forecast that scales that pattern by how today runs against it right now.
//! Pure code over `(time, rate)` points, however they were gathered: the service averages its stored
//! samples per bucket in SQL (`Storage::seasonal_rates`), the simulator its simulated samples with
//! [`downsample`]; both feed [`Profile::build`].
//!
//! The method is deliberately simple to explain: the input rate averaged per 10-minute bucket; per time of
//! day, the median over the days seen (one odd day among three weighs nothing, a missing hour is filled
//! from its neighbours); the forecast for a time `t` is the profile at `t` times the level of today (the
//! rate over the last hour against the profile's for the same times, held within 0.5 to 2 so that a burst
//! or an outage does not multiply the whole day).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::arrival_rates;
use crate::decide::Sample;

/// The width of a bucket: the rate is averaged over it, and the profile holds one value per bucket of the
/// day. Short enough to place a morning rise within minutes, long enough to average out scrape noise.
pub const BUCKET_SECONDS: u32 = 600;
pub const DAY_SECONDS: u32 = 86_400;
/// How many days back the series is read: the samples' default retention.
pub const HISTORY_DAYS: u32 = 7;
/// The profile needs a day and a quarter of buckets with data: every time of day seen at least once,
/// and today's start seen against yesterday's, so that the level of today means something.
pub const MIN_DAYS: f64 = 1.25;
/// ...and most times of the day seen: the few missing buckets are filled from their neighbours.
const MIN_TIMES_OF_DAY_SHARE: f64 = 0.9;
/// How far the level of today may scale the profile.
const LEVEL_BOUNDS: (f64, f64) = (0.5, 2.0);
/// The peak over a horizon is looked for at this step.
const PEAK_STEP_SECONDS: i64 = 60;

/// The mean input rate over one bucket, starting at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatePoint {
    pub at: DateTime<Utc>,
    /// Records per second.
    pub rate: f64,
}

/// The start of the bucket holding `at` (buckets are aligned on the Unix epoch, so on UTC midnight).
pub fn bucket_start(at: DateTime<Utc>) -> DateTime<Utc> {
    let seconds = at.timestamp();
    let width = i64::from(BUCKET_SECONDS);
    DateTime::from_timestamp(seconds - seconds.rem_euclid(width), 0).unwrap_or(at)
}

/// The mean arrival rate (as the estimator reads it: consumed plus the lag's growth) per bucket, for the
/// buckets that ended by `until`, in time order. What `Storage::seasonal_rates` computes in SQL.
pub fn downsample(history: &[Sample], until: DateTime<Utc>) -> Vec<RatePoint> {
    let end = bucket_start(until);
    let mut points: Vec<RatePoint> = Vec::new();
    let mut count = 0.0;
    for (at, rate) in arrival_rates(history) {
        if at >= end {
            break;
        }
        let start = bucket_start(at);
        match points.last_mut() {
            Some(last) if last.at == start => {
                count += 1.0;
                last.rate += (rate - last.rate) / count;
            }
            _ => {
                points.push(RatePoint { at: start, rate });
                count = 1.0;
            }
        }
    }
    points
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProfileError {
    #[error(
        "not enough history for a daily profile: {days:.2} days of {BUCKET_SECONDS}s buckets with data, need {MIN_DAYS}"
    )]
    TooFewDays { days: f64 },
    #[error(
        "not enough history for a daily profile: {share:.0} % of the times of day seen, need {:.0} %",
        MIN_TIMES_OF_DAY_SHARE * 100.0
    )]
    Gaps { share: f64 },
}

/// The usual input rate at each time of day.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// One value per bucket of the day, from midnight UTC.
    values: Vec<f64>,
    /// Days' worth of buckets with data behind it.
    pub days: f64,
}

impl Profile {
    /// The profile of `points` (bucket means, any order), or why there is none.
    pub fn build(points: &[RatePoint]) -> Result<Self, ProfileError> {
        let per_day = (DAY_SECONDS / BUCKET_SECONDS) as usize;
        let mut by_time: Vec<Vec<f64>> = vec![Vec::new(); per_day];
        let mut buckets = 0usize;
        for point in points.iter().filter(|p| p.rate.is_finite()) {
            by_time[time_of_day(point.at)].push(point.rate.max(0.0));
            buckets += 1;
        }
        let days = buckets as f64 / per_day as f64;
        if days < MIN_DAYS {
            return Err(ProfileError::TooFewDays { days });
        }
        let medians: Vec<Option<f64>> = by_time.into_iter().map(median).collect();
        let seen = medians.iter().flatten().count();
        let share = seen as f64 / per_day as f64;
        if share < MIN_TIMES_OF_DAY_SHARE {
            return Err(ProfileError::Gaps {
                share: share * 100.0,
            });
        }
        Ok(Self {
            values: fill_gaps(&medians),
            days,
        })
    }

    /// The usual rate at `at`, interpolated between the buckets' middles.
    pub fn at(&self, at: DateTime<Utc>) -> f64 {
        let n = self.values.len();
        let into_day = f64::from(seconds_into_day(at));
        let position = into_day / f64::from(BUCKET_SECONDS) - 0.5;
        let below = position.floor();
        let share = position - below;
        let first = (below as i64).rem_euclid(n as i64) as usize;
        let second = (first + 1) % n;
        self.values[first] * (1.0 - share) + self.values[second] * share
    }

    /// The forecast from `now`, given the rate observed now.
    pub fn forecast(&self, now: DateTime<Utc>, rate_now: f64) -> Forecast<'_> {
        self.forecast_from(now, &[(now, rate_now)])
    }

    /// The forecast from `now`, today's level being what `observed` (times and rates, such as the last
    /// hour's) sums to over what the profile says for the same times. Compared time for time, so that a
    /// rise under way is not read as a low day: the mean of the newest minutes of a morning rise lags the
    /// profile's value now.
    pub fn forecast_from(
        &self,
        now: DateTime<Utc>,
        observed: &[(DateTime<Utc>, f64)],
    ) -> Forecast<'_> {
        let seen: f64 = observed.iter().map(|(_, rate)| rate).sum();
        let usual: f64 = observed.iter().map(|(at, _)| self.at(*at)).sum();
        let level = if usual > 0.0 {
            (seen / usual).clamp(LEVEL_BOUNDS.0, LEVEL_BOUNDS.1)
        } else {
            1.0
        };
        Forecast {
            profile: self,
            now,
            usual_now: self.at(now),
            level,
        }
    }
}

/// The profile scaled by today's level.
#[derive(Debug, Clone, Copy)]
pub struct Forecast<'a> {
    profile: &'a Profile,
    pub now: DateTime<Utc>,
    /// The profile's rate now.
    pub usual_now: f64,
    /// The rate observed over the profile's for the same times, within the bounds.
    pub level: f64,
}

impl Forecast<'_> {
    pub fn at(&self, at: DateTime<Utc>) -> f64 {
        self.profile.at(at) * self.level
    }

    /// The highest forecast within `seconds` from now (now included), and when.
    pub fn peak_within(&self, seconds: u32) -> (DateTime<Utc>, f64) {
        let steps = i64::from(seconds) / PEAK_STEP_SECONDS;
        (0..=steps)
            .map(|i| self.now + Duration::seconds(i * PEAK_STEP_SECONDS))
            .chain(std::iter::once(
                self.now + Duration::seconds(i64::from(seconds)),
            ))
            .map(|at| (at, self.at(at)))
            .fold((self.now, f64::NEG_INFINITY), |best, point| {
                if point.1 > best.1 { point } else { best }
            })
    }
}

/// A profile in brief, for a prediction's record.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProfileSummary {
    /// Days' worth of buckets with data behind the profile.
    pub days: f64,
    pub bucket_seconds: u32,
}

fn seconds_into_day(at: DateTime<Utc>) -> u32 {
    at.timestamp().rem_euclid(i64::from(DAY_SECONDS)) as u32
}

fn time_of_day(at: DateTime<Utc>) -> usize {
    (seconds_into_day(at) / BUCKET_SECONDS) as usize
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        n if n % 2 == 1 => Some(values[n / 2]),
        n => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// Each missing time of day, linearly between the nearest seen ones on either side (the day wraps).
fn fill_gaps(values: &[Option<f64>]) -> Vec<f64> {
    let n = values.len();
    (0..n)
        .map(|i| {
            if let Some(v) = values[i] {
                return v;
            }
            let before = (1..n).find_map(|d| values[(i + n - d) % n].map(|v| (d, v)));
            let after = (1..n).find_map(|d| values[(i + d) % n].map(|v| (d, v)));
            match (before, after) {
                (Some((db, vb)), Some((da, va))) => vb + (va - vb) * db as f64 / (db + da) as f64,
                _ => 0.0,
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "seasonal_tests.rs"]
mod tests;
