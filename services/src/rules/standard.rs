//! The design's rules: lag above 5 minutes, lag increasing, CPU above `cpu_high`, and sustained low load.

use chrono::Duration;

use super::{
    Direction, Outcome, Rule, RuleInput,
    series::{Series, busiest},
};
use crate::decide::Sample;
use crate::estimate::arrival_rates;

/// A condition must hold for this share of the window's samples, so one spike (or one dip) decides nothing.
const SUSTAINED_SHARE: f64 = 0.8;
/// A lag trend counts when its slope is this many standard errors above zero.
const SIGNIFICANT_T: f64 = 3.0;

/// `metric` above `threshold` in most of the scale-up window and in its newest sample.
fn sustained_above(
    input: &RuleInput<'_>,
    metric: &str,
    value: fn(&Sample) -> Option<f64>,
    threshold: f64,
) -> (Outcome, String) {
    let points = Series::over(input, value, input.policy.scale_up_window_seconds);
    if let Err(missing) = points.sufficiency(metric) {
        return (Outcome::NoData, missing);
    }
    let share = points.share_above(threshold);
    let latest = points.latest().unwrap_or_default();
    let figures = format!(
        "{metric} above {threshold} in {:.0} % of the window (mean {:.2}), now {latest:.2}",
        share * 100.0,
        points.mean()
    );
    if share >= SUSTAINED_SHARE && latest > threshold {
        (Outcome::Fired, figures)
    } else {
        (Outcome::Quiet, figures)
    }
}

/// Lag in seconds above the threshold for most of the scale-up window, and still above it now, unless
/// the backlog is draining fast enough to be gone within the catch-up time at its pace over the window
/// (a scale-up that is working: another would only overshoot).
pub struct LagAboveThreshold;

impl Rule for LagAboveThreshold {
    fn name(&self) -> &'static str {
        "lag_above_threshold"
    }
    fn direction(&self) -> Direction {
        Direction::Up
    }
    fn check(&self, input: &RuleInput<'_>) -> (Outcome, String) {
        let (outcome, figures) = sustained_above(
            input,
            "lag_seconds",
            |s| s.lag_seconds,
            input.policy.lag_seconds_high,
        );
        if outcome != Outcome::Fired {
            return (outcome, figures);
        }
        match Draining::over(input) {
            Some(drain) if drain.gone_in_seconds <= f64::from(input.policy.catch_up_seconds) => (
                Outcome::Quiet,
                format!("{figures}; but {drain}, within the catch-up time"),
            ),
            _ => (outcome, figures),
        }
    }
}

/// Lag in records growing over the scale-up window with a significant slope, while lag is not trivial.
pub struct LagIncreasing;

impl Rule for LagIncreasing {
    fn name(&self) -> &'static str {
        "lag_increasing"
    }
    fn direction(&self) -> Direction {
        Direction::Up
    }
    fn check(&self, input: &RuleInput<'_>) -> (Outcome, String) {
        let window = input.policy.scale_up_window_seconds;
        let records = Series::over(input, |s| s.lag_records, window);
        let seconds = Series::over(input, |s| s.lag_seconds, window);
        if let Err(missing) = records
            .sufficiency("lag_records")
            .and(seconds.sufficiency("lag_seconds"))
        {
            return (Outcome::NoData, missing);
        }
        let (slope, t) = records.trend();
        let lag_now = seconds.latest().unwrap_or_default();
        let figures = format!("lag grows {slope:.1} records/s (t = {t:.1}), lag now {lag_now:.0}s");
        let significant = slope > 0.0 && t >= SIGNIFICANT_T;
        if significant && lag_now > input.policy.lag_seconds_low {
            (Outcome::Fired, figures)
        } else {
            (Outcome::Quiet, figures)
        }
    }
}

/// A backlog shrinking significantly over the scale-up window: a job catching up.
struct Draining {
    records_per_second: f64,
    t: f64,
    gone_in_seconds: f64,
}

impl Draining {
    fn over(input: &RuleInput<'_>) -> Option<Self> {
        let records = Series::over(
            input,
            |s| s.lag_records,
            input.policy.scale_up_window_seconds,
        );
        records.sufficiency("lag_records").ok()?;
        let (slope, t) = records.trend();
        (slope < 0.0 && t <= -SIGNIFICANT_T).then(|| Self {
            records_per_second: -slope,
            t,
            gone_in_seconds: records.latest().unwrap_or_default().max(0.0) / -slope,
        })
    }
}

impl std::fmt::Display for Draining {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the backlog drains {:.0} records/s (t = {:.1}), gone in {:.0}s at that pace",
            self.records_per_second, self.t, self.gone_in_seconds
        )
    }
}

/// CPU load above the threshold for most of the scale-up window, and still above it now, unless a
/// backlog is draining while the lag stays below `lag_seconds_high`: a job catching up is busy by design,
/// and the lag rules speak for it.
pub struct CpuAboveThreshold;

impl Rule for CpuAboveThreshold {
    fn name(&self) -> &'static str {
        "cpu_above_threshold"
    }
    fn direction(&self) -> Direction {
        Direction::Up
    }
    fn check(&self, input: &RuleInput<'_>) -> (Outcome, String) {
        let (outcome, figures) =
            sustained_above(input, "cpu_load", |s| s.cpu_load, input.policy.cpu_high);
        if outcome != Outcome::Fired {
            return (outcome, figures);
        }
        let lag_now = Series::over(
            input,
            |s| s.lag_seconds,
            input.policy.scale_up_window_seconds,
        )
        .latest();
        match Draining::over(input) {
            Some(drain) if lag_now.is_some_and(|lag| lag < input.policy.lag_seconds_high) => (
                Outcome::Quiet,
                format!("{figures}; but {drain}, with the lag below the threshold"),
            ),
            _ => (outcome, figures),
        }
    }
}

/// The cost-aware path fires only when the input over the scale-up window is at most this share of its
/// peak over the scale-down window.
const LOAD_FALLEN_SHARE: f64 = 0.8;

/// The cost-aware path of the scale-down rule, so that a job sized for a burst or a backlog comes down
/// soon after it: the input has fallen from its peak (busiest two minutes against busiest two minutes), or
/// a backlog above the lag threshold within the longer window is gone; and over the (short) scale-up
/// window lag stayed below the low threshold and one worker fewer would have run the busiest stretch
/// (`Series::busiest`) at or below the target utilisation. `longer_lag`: the most lag over the
/// scale-down window, which the caller has read.
/// `None` where the window lacks the data.
fn cheaper_scale_fits(
    input: &RuleInput<'_>,
    scale: Option<f64>,
    longer_lag: f64,
) -> Option<Result<String, String>> {
    let window = input.policy.scale_up_window_seconds;
    let cpu = Series::over(input, |s| s.cpu_load, window);
    let lag = Series::over(input, |s| s.lag_seconds, window);
    cpu.sufficiency("cpu_load").ok()?;
    lag.sufficiency("lag_seconds").ok()?;
    let scale = scale.filter(|s| *s >= 2.0)?;
    // Only once the load has fallen from its peak over the longer window: a burst is over. Trimming a
    // scale just raised for a load that stays would add an action to every step's settling.
    Series::over(input, |s| s.records_in, window)
        .sufficiency("records_in")
        .ok()?;
    // What arrived, not what the job consumed: a job draining a backlog consumes far above its input,
    // and that burst of catching up is not a burst of load that ended.
    // Only the longer window's samples (and the one before, for the lag's growth into the first).
    let longer_start =
        input.now - Duration::seconds(i64::from(input.policy.scale_down_window_seconds));
    let first = input
        .samples
        .partition_point(|s| s.sampled_at <= longer_start)
        .saturating_sub(1);
    let arrived = arrival_rates(&input.samples[first..]);
    // The busiest two minutes on both sides, as for CPU: one noisy scrape (or one high five minutes of a
    // load that swings) neither makes a peak nor hides one.
    let peak_since = |seconds: u32| {
        let start = input.now - Duration::seconds(i64::from(seconds));
        let rates: Vec<f64> = arrived
            .iter()
            .filter(|(at, _)| *at > start && *at <= input.now)
            .map(|(_, rate)| *rate)
            .collect();
        busiest(&rates)
    };
    let (recent_peak, longer_peak) = (
        peak_since(window),
        peak_since(input.policy.scale_down_window_seconds),
    );
    let fallen = recent_peak <= LOAD_FALLEN_SHARE * longer_peak;
    // Or a backlog above the threshold within the longer window is gone: a scale raised to drain it
    // is no longer needed for that.
    let caught_up = longer_lag > input.policy.lag_seconds_high;
    let one_fewer = cpu.busiest() * scale / (scale - 1.0);
    // Never above what the slow path allows, or the CPU rule could fire right after.
    let target = input
        .policy
        .target_utilization
        .min(input.policy.cpu_ceiling());
    let figures = format!(
        "over the last {window}s: input {recent_peak:.0}/s at its busiest against {longer_peak:.0}/s over {}s (lag there at most {longer_lag:.0}s), one worker fewer at most {one_fewer:.2} CPU at the busiest (target {target:.2}), lag at most {:.0}s",
        input.policy.scale_down_window_seconds,
        lag.max()
    );
    if (fallen || caught_up) && one_fewer <= target && lag.max() < input.policy.lag_seconds_low {
        Some(Ok(figures))
    } else {
        Some(Err(figures))
    }
}

/// Lag below the low threshold for the whole (longer) scale-down window, and CPU either below the low
/// threshold throughout or low enough that one worker fewer would have stayed clearly below the scale-up
/// threshold even over the window's busiest stretch. Or, sooner, the cost-aware path
/// ([`cheaper_scale_fits`]): over the scale-up window alone, one worker fewer would still meet the target
/// utilisation.
pub struct SustainedLowLoad;

impl Rule for SustainedLowLoad {
    fn name(&self) -> &'static str {
        "sustained_low_load"
    }
    fn direction(&self) -> Direction {
        Direction::Down
    }
    fn check(&self, input: &RuleInput<'_>) -> (Outcome, String) {
        let window = input.policy.scale_down_window_seconds;
        let cpu = Series::over(input, |s| s.cpu_load, window);
        let lag = Series::over(input, |s| s.lag_seconds, window);
        if let Err(missing) = cpu
            .sufficiency("cpu_load")
            .and(lag.sufficiency("lag_seconds"))
        {
            return (Outcome::NoData, missing);
        }
        let (cpu_max, lag_max) = (cpu.busiest(), lag.max());
        let scale = Series::over(input, |s| s.scale, window).latest();
        let one_fewer = scale.filter(|s| *s >= 2.0).map(|s| cpu_max * s / (s - 1.0));
        let fits_fewer = input.policy.cpu_ceiling();
        let figures = format!(
            "over {window}s: CPU at most {cpu_max:.2} at the busiest (below {}, or below {fits_fewer:.2} on one worker \
             fewer: {}?), lag at most {lag_max:.0}s (below {}?)",
            input.policy.cpu_low,
            one_fewer.map_or("-".to_owned(), |c| format!("{c:.2}")),
            input.policy.lag_seconds_low
        );
        let cpu_low = cpu_max < input.policy.cpu_low || one_fewer.is_some_and(|c| c < fits_fewer);
        if cpu_low && lag_max < input.policy.lag_seconds_low {
            return (Outcome::Fired, figures);
        }
        match cheaper_scale_fits(input, scale, lag_max) {
            Some(Ok(recent)) => (Outcome::Fired, format!("{figures}; {recent}")),
            Some(Err(recent)) => (Outcome::Quiet, format!("{figures}; {recent}")),
            None => (Outcome::Quiet, figures),
        }
    }
}
