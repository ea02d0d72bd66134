//! Reading one metric out of a window of samples: how much of it is there, how fresh, and its trend.

use chrono::{DateTime, Duration, Utc};

use crate::decide::Sample;

/// How many consecutive points [`Series::busiest`] averages: two minutes at the usual 30 s scrape.
const BUSIEST_SPAN: usize = 4;

/// One metric's present values within a window, with their ages.
pub struct Series {
    /// (seconds since the window's start, value), in time order.
    pub points: Vec<(f64, f64)>,
    expected: usize,
    newest_age_seconds: Option<f64>,
    interval_seconds: f64,
}

impl Series {
    /// `metric` over the `window_seconds` before the rule input's `now`, at its scrape interval.
    pub fn over(
        input: &super::RuleInput<'_>,
        metric: fn(&Sample) -> Option<f64>,
        window_seconds: u32,
    ) -> Self {
        Self::new(
            input.samples,
            metric,
            input.now,
            window_seconds,
            input.scrape_interval_seconds,
        )
    }

    pub fn new(
        samples: &[Sample],
        metric: fn(&Sample) -> Option<f64>,
        now: DateTime<Utc>,
        window_seconds: u32,
        interval_seconds: u32,
    ) -> Self {
        let start = now - Duration::seconds(i64::from(window_seconds));
        let points: Vec<(f64, f64)> = samples
            .iter()
            .filter(|s| s.sampled_at > start && s.sampled_at <= now)
            .filter_map(|s| {
                let value = metric(s).filter(|v| v.is_finite())?;
                Some(((s.sampled_at - start).as_seconds_f64(), value))
            })
            .collect();
        let newest_age_seconds = points.last().map(|(at, _)| f64::from(window_seconds) - at);
        Self {
            points,
            expected: (window_seconds / interval_seconds.max(1)) as usize,
            newest_age_seconds,
            interval_seconds: f64::from(interval_seconds.max(1)),
        }
    }

    /// Enough fresh points to judge: at least 80 % of what the window should hold (and at least 3),
    /// the newest no older than two scrape intervals. Otherwise says what is missing.
    pub fn sufficiency(&self, metric: &str) -> Result<(), String> {
        let needed = (self.expected * 4).div_ceil(5).max(3);
        if self.points.len() < needed {
            return Err(format!(
                "{metric}: {} of the {} samples the window should hold (need {needed})",
                self.points.len(),
                self.expected
            ));
        }
        match self.newest_age_seconds {
            Some(age) if age <= 2.0 * self.interval_seconds => Ok(()),
            Some(age) => Err(format!("{metric}: newest sample is {age:.0}s old (stale)")),
            None => Err(format!("{metric}: no samples")),
        }
    }

    pub fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.points.iter().map(|(_, v)| *v)
    }

    pub fn latest(&self) -> Option<f64> {
        self.points.last().map(|(_, v)| *v)
    }

    pub fn mean(&self) -> f64 {
        self.values().sum::<f64>() / self.points.len().max(1) as f64
    }

    /// The share of points above `threshold`.
    pub fn share_above(&self, threshold: f64) -> f64 {
        self.values().filter(|v| *v > threshold).count() as f64 / self.points.len().max(1) as f64
    }

    pub fn max(&self) -> f64 {
        self.values().fold(f64::NEG_INFINITY, f64::max)
    }

    /// The busiest stretch of the series ([`busiest`]).
    pub fn busiest(&self) -> f64 {
        busiest(&self.values().collect::<Vec<f64>>())
    }

    /// Least-squares slope per second and its t-statistic (slope over its standard error). A flat,
    /// noiseless series has slope 0 and t 0; a perfect line has an infinite t.
    pub fn trend(&self) -> (f64, f64) {
        let n = self.points.len() as f64;
        if n < 3.0 {
            return (0.0, 0.0);
        }
        let mean_x = self.points.iter().map(|(x, _)| x).sum::<f64>() / n;
        let mean_y = self.mean();
        let sxx: f64 = self.points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
        let sxy: f64 = self
            .points
            .iter()
            .map(|(x, y)| (x - mean_x) * (y - mean_y))
            .sum();
        if sxx == 0.0 {
            return (0.0, 0.0);
        }
        let slope = sxy / sxx;
        let residuals: f64 = self
            .points
            .iter()
            .map(|(x, y)| (y - (mean_y + slope * (x - mean_x))).powi(2))
            .sum();
        let standard_error = (residuals / (n - 2.0) / sxx).sqrt();
        let t = if standard_error == 0.0 {
            if slope == 0.0 {
                0.0
            } else {
                f64::INFINITY.copysign(slope)
            }
        } else {
            slope / standard_error
        };
        (slope, t)
    }
}

/// The busiest stretch: the highest mean over `BUSIEST_SPAN` consecutive values (over all of them where
/// there are fewer; 0 for none). A sustained peak shows in it; one noisy scrape does not.
pub fn busiest(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let span = BUSIEST_SPAN.min(values.len());
    values
        .windows(span)
        .map(|w| w.iter().sum::<f64>() / span as f64)
        .fold(f64::NEG_INFINITY, f64::max)
}
