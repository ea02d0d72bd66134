//! The oracle: knows the whole trace, the job model and the true lag, and pays the same actuation delay
//! and restart as everyone else. At each scrape:
//!
//! - it scales up when the load due by the time its next change could take effect needs more than it
//!   has, so the capacity is there before the load (it acts a delay plus a restart ahead);
//! - it scales down only once the lag is below the policy's `lag_seconds_low`, and only to what the
//!   peak load of the next `DOWN_LOOKAHEAD_SECONDS` needs;
//! - what a load needs is the smallest scale that carries it and drains the backlog (the change's own
//!   restart included) within the policy's catch-up time.
//!
//! It is the reference for over- and under-provisioning and for the goals.

use super::{Bounds, Observation, ScalingPolicy};
use crate::simulate::{job::JobModel, run::Scenario, trace::Trace};

/// The oracle scales down only to what the next half hour needs.
const DOWN_LOOKAHEAD_SECONDS: f64 = 1800.0;

pub struct Oracle<'a> {
    trace: &'a Trace,
    model: JobModel,
    bounds: Bounds,
    delay_seconds: f64,
    restart_seconds: f64,
    scrape_interval_seconds: f64,
    catch_up_seconds: f64,
    drained_lag_seconds: f64,
}

impl<'a> Oracle<'a> {
    /// The oracle for `scenario`: its trace and job, and its settings' bounds, delay, restart, scrape
    /// interval, catch-up time and drained lag.
    pub fn new(scenario: &'a Scenario) -> Self {
        let settings = &scenario.settings;
        Self {
            trace: &scenario.trace,
            model: scenario.model.clone(),
            bounds: settings.bounds(),
            delay_seconds: f64::from(settings.actuation_delay_seconds),
            restart_seconds: f64::from(settings.restart_seconds),
            scrape_interval_seconds: f64::from(settings.scrape_interval_seconds),
            catch_up_seconds: f64::from(settings.policy.catch_up_seconds.max(1)),
            drained_lag_seconds: settings.policy.lag_seconds_low,
        }
    }

    /// The highest input rate within `[from, to]` (whole seconds, and both ends).
    fn peak(&self, from: f64, to: f64) -> f64 {
        let mut peak = self.trace.rate_at(from).max(self.trace.rate_at(to));
        let mut at = from.ceil();
        while at < to {
            peak = peak.max(self.trace.rate_at(at));
            at += 1.0;
        }
        peak
    }

    fn scale_for(&self, rate: f64) -> u32 {
        self.model.scale_for(rate, self.bounds.min, self.bounds.max)
    }

    /// The scale that carries `rate` and drains `backlog` within the catch-up time.
    fn scale_with_backlog(&self, rate: f64, backlog: f64) -> u32 {
        let plain = self.scale_for(rate);
        if self.drains(plain, rate, backlog) {
            plain
        } else {
            self.scale_for(rate + backlog / self.catch_up_seconds)
        }
    }

    fn drains(&self, scale: u32, rate: f64, backlog: f64) -> bool {
        backlog <= (self.model.capacity(scale) - rate).max(0.0) * self.catch_up_seconds
    }
}

impl ScalingPolicy for Oracle<'_> {
    fn name(&self) -> &'static str {
        "oracle"
    }

    fn decide(&mut self, observation: &Observation<'_>) -> Option<u32> {
        if observation.in_flight {
            return None;
        }
        let now = observation.seconds;
        let effective = now + self.delay_seconds;
        let scale = observation.scale;
        // The backlog when a change decided now would take effect: the rest of a restart under way
        // processes nothing, then the current scale works until then.
        let rate_now = self.trace.rate_at(now);
        let restarting = observation
            .truth
            .restart_remaining_seconds
            .min(self.delay_seconds);
        let lag_then = (observation.truth.lag_records
            + rate_now * restarting
            + (rate_now - self.model.capacity(scale)) * (self.delay_seconds - restarting))
            .max(0.0);
        // A change restarts the job: nothing is processed for the restart.
        let with_restart = lag_then + self.trace.rate_at(effective) * self.restart_seconds;

        let due = self.peak(
            effective,
            effective + self.restart_seconds + self.scrape_interval_seconds,
        );
        let enough = self.model.capacity(scale) >= due && self.drains(scale, due, lag_then);
        if !enough {
            let up = self.scale_with_backlog(due, with_restart);
            if up > scale {
                return Some(up);
            }
        }
        // Down only once a backlog has drained, in one step to what the coming load needs.
        if lag_then > rate_now * self.drained_lag_seconds {
            return None;
        }
        let ahead = self.peak(effective, effective + DOWN_LOOKAHEAD_SECONDS);
        let down = self.scale_with_backlog(ahead, with_restart);
        (down < scale).then_some(down)
    }
}
