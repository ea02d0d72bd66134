//! DS2 as the Flink Kubernetes operator's autoscaler runs it, with its defaults:
//!
//! - metrics are averaged over a 15-minute window, collected only from 5 minutes after a restart;
//! - the true processing rate is what the job processed over its busy share;
//! - the target rate is the input rate plus the lag's growth; the target capacity adds draining the lag
//!   within the 30-minute catch-up and the restart's own backlog (a 5-minute restart assumed), at 70 %
//!   utilisation;
//! - nothing happens while the true rate lies within the dead band (utilisation 40 % to 100 %), and
//!   never a scale-down while lag is above 5 minutes;
//! - a scale-down removes at most 60 %, and waits an hour, taking the highest recommendation of that
//!   hour; a scale-up cancels it.

use chrono::Duration;

use super::{Bounds, Observation, ScalingPolicy, within};

const WINDOW_SECONDS: u32 = 900;
const STABILISATION_SECONDS: i64 = 300;
const TARGET_UTILISATION: f64 = 0.7;
const MAX_UTILISATION: f64 = 1.0;
const MIN_UTILISATION: f64 = 0.4;
const CATCH_UP_SECONDS: f64 = 1800.0;
const RESTART_SECONDS: f64 = 300.0;
const BACKLOG_LAG_SECONDS: f64 = 300.0;
const SCALE_DOWN_MAX_SHARE: f64 = 0.6;
const SCALE_DOWN_INTERVAL_SECONDS: f64 = 3600.0;

pub struct Ds2 {
    bounds: Bounds,
    restart_seconds: f64,
    /// A requested scale-down: when it was first asked for, and the highest scale asked for since.
    pending_down: Option<(f64, u32)>,
}

impl Ds2 {
    /// `restart_seconds` is the job's real downtime: the operator waits for the job to run again before
    /// its stabilisation interval starts.
    pub fn new(bounds: Bounds, restart_seconds: f64) -> Self {
        Self {
            bounds,
            restart_seconds,
            pending_down: None,
        }
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    (count > 0).then(|| sum / count as f64)
}

impl ScalingPolicy for Ds2 {
    fn name(&self) -> &'static str {
        "ds2"
    }

    fn decide(&mut self, observation: &Observation<'_>) -> Option<u32> {
        let now = observation.now;
        let first = observation.samples.first()?.sampled_at;
        let collecting_since = observation.last_change.map_or(first, |c| {
            (c.at
                + Duration::milliseconds((self.restart_seconds * 1000.0) as i64)
                + Duration::seconds(STABILISATION_SECONDS))
            .max(first)
        });
        if now - collecting_since < Duration::seconds(i64::from(WINDOW_SECONDS)) {
            return None;
        }
        let window: Vec<_> = within(observation.samples, now, WINDOW_SECONDS)
            .iter()
            .filter(|s| s.sampled_at >= collecting_since)
            .collect();
        let lags: Vec<(f64, f64)> = window
            .iter()
            .filter_map(|s| {
                Some((
                    (s.sampled_at - first).as_seconds_f64(),
                    s.lag_records?.max(0.0),
                ))
            })
            .collect();
        let (Some(&(t0, lag0)), Some(&(t1, lag_now))) = (lags.first(), lags.last()) else {
            return None;
        };
        if lags.len() < 2 || t1 <= t0 {
            return None;
        }
        let input = mean(window.iter().filter_map(|s| s.records_in))?;
        let output = mean(window.iter().filter_map(|s| s.records_out))?;
        let busy = mean(window.iter().filter_map(|s| s.cpu_load))?;
        let lag_seconds_now = window.iter().rev().find_map(|s| s.lag_seconds)?;

        let current = observation.scale;
        let true_rate = if busy > 0.0 && output > 0.0 {
            output / busy
        } else {
            f64::INFINITY
        };
        let target_rate = (input + (lag_now - lag0) / (t1 - t0)).max(0.0);
        let catch_up = lag_now / CATCH_UP_SECONDS;
        let restart = target_rate * RESTART_SECONDS / CATCH_UP_SECONDS;
        let target_capacity = target_rate / TARGET_UTILISATION + catch_up + restart;
        let up_threshold = target_rate / MAX_UTILISATION + catch_up;
        let down_threshold = if lag_seconds_now > BACKLOG_LAG_SECONDS {
            f64::INFINITY
        } else {
            target_rate / MIN_UTILISATION + catch_up + restart
        };
        if true_rate >= up_threshold && true_rate <= down_threshold {
            self.pending_down = None;
            return None;
        }
        let factor = (target_capacity / true_rate).max(1.0 - SCALE_DOWN_MAX_SHARE);
        let wanted = self
            .bounds
            .clamp((factor * f64::from(current)).ceil() as u32);
        if wanted > current {
            self.pending_down = None;
            return Some(wanted);
        }
        if wanted == current {
            self.pending_down = None;
            return None;
        }
        let (since, highest) = match self.pending_down {
            Some((since, highest)) => (since, highest.max(wanted)),
            None => (observation.seconds, wanted),
        };
        if observation.seconds - since >= SCALE_DOWN_INTERVAL_SECONDS {
            if !observation.in_flight {
                self.pending_down = None;
            }
            return Some(highest);
        }
        self.pending_down = Some((since, highest));
        None
    }
}
