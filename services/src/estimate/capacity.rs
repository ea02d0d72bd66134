//! The capacity model: what the job processes at a scale, learned from one point per scale (this
//! decision's history merged with what earlier decisions remembered), fitted as a line or as a power law,
//! whichever earns its place, and inverted to the scale that delivers a throughput.
//!
//! A point is the median capacity of a scale's settled samples: what the job moved while a backlog waited
//! (all it could), or, not saturated, what it moved over its CPU busy share where that share was at least
//! `MIN_UTILISATION` (a nearly idle JVM's own CPU drowns the signal, and a job held back by its sink idles
//! at low CPU, so below that CPU says nothing about capacity). One point per scale, so the scale the job
//! sat at longest does not outweigh the others, and a point is what a cluster can remember cheaply.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{LineFit, Method, effectiveness::EFFECTIVE_SHARE, fit_line, median, saturated};
use crate::{cluster::Policy, decide::Sample};

/// Remembered evidence older than this is forgotten: a new release, a new sink, a new input mix.
pub const MEMORY_DAYS: i64 = 7;
/// At most this many scales are remembered (the newest), so the memory cannot grow without bound.
pub const MEMORY_SCALES: usize = 16;
/// A sample that is not saturated speaks for capacity only at this CPU busy share or more.
const MIN_UTILISATION: f64 = 0.5;
/// A fresh point with this many samples, newer than the remembered one, replaces it.
const REPLACING_SAMPLES: u32 = 3;
/// A model needs this many samples behind its points, at this many distinct scales, with this fit.
const MIN_SAMPLES: u32 = 6;
const MIN_DISTINCT_SCALES: usize = 2;
const MIN_R2: f64 = 0.6;
/// From this many scales on, the points choose between the line and the power law; through fewer, both
/// fit exactly.
const JUDGING_SCALES: usize = 3;
/// A plausible exponent: below this more workers barely help (a bottleneck elsewhere, which the
/// ineffective-scaling veto handles, not a model that asks for hundreds of workers); above it, more than a
/// little super-linear is noise.
const MIN_EXPONENT: f64 = 0.2;
const MAX_EXPONENT: f64 = 1.2;
/// An exponent this close to 1 is a line: the power law adds nothing the incumbent does not say.
const LINE_LIKE: f64 = 0.05;

/// What the job processed at one scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CapacityPoint {
    pub scale: u32,
    /// Records per second the job processes at `scale`: the median of its samples' evidence.
    pub capacity: f64,
    /// How far its samples scattered around that median (the median absolute deviation, scaled to a
    /// standard deviation): scatter no model can explain, so the fit is judged with it.
    pub spread: f64,
    /// How many samples the median was taken over.
    pub samples: u32,
    /// When the newest of them was taken.
    pub observed_at: DateTime<Utc>,
}

/// What a cluster learned about its capacity across decisions: at most one point per scale, sorted by
/// scale, at most `MEMORY_SCALES` of them, none older than `MEMORY_DAYS`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CapacityMemory {
    pub points: Vec<CapacityPoint>,
}

/// One point per scale from `settled` samples (time order) that speak for capacity.
pub fn evidence(settled: &[&Sample], policy: &Policy) -> Vec<CapacityPoint> {
    let mut by_scale: BTreeMap<u32, (Vec<f64>, DateTime<Utc>)> = BTreeMap::new();
    for sample in settled {
        let Some(scale) = sample.scale.filter(|v| v.is_finite() && *v >= 1.0) else {
            continue;
        };
        let Some(out) = sample.records_out.filter(|v| v.is_finite() && *v > 0.0) else {
            continue;
        };
        let capacity = if saturated(sample, policy) {
            out
        } else {
            match sample.cpu_load.filter(|v| v.is_finite()) {
                Some(busy) if busy >= MIN_UTILISATION => out / busy.min(1.0),
                _ => continue,
            }
        };
        let entry = by_scale
            .entry(scale.round() as u32)
            .or_insert_with(|| (Vec::new(), sample.sampled_at));
        entry.0.push(capacity);
        entry.1 = entry.1.max(sample.sampled_at);
    }
    by_scale
        .into_iter()
        // Every scale holds at least the sample that created it, so both medians exist.
        .filter_map(|(scale, (values, observed_at))| {
            let capacity = median(values.clone())?;
            let deviation = median(values.iter().map(|v| (v - capacity).abs()).collect())?;
            Some(CapacityPoint {
                scale,
                capacity,
                spread: MAD_TO_DEVIATION * deviation,
                samples: values.len() as u32,
                observed_at,
            })
        })
        .collect()
}

/// Two points are compared for a ceiling only when the larger scale has at least this many times the
/// workers of the smaller: between neighbouring scales the promise is within the points' noise.
const CEILING_SCALE_RATIO: f64 = 1.2;

/// Where more workers stopped adding capacity: a point at a larger scale gained less than
/// `EFFECTIVE_SHARE` of what its workers promised over the best smaller one (a sink at its limit, one hot
/// partition). Remembered with the points, so it outlasts the history that showed it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ceiling {
    /// The smallest scale that reaches `capacity` (within `KNEE_TOLERANCE`), going linearly from the last
    /// scale that still gained.
    pub scale: u32,
    /// What the job delivered past the knee (the most any such point showed), records per second.
    pub capacity: f64,
    /// The larger scale whose point showed it.
    pub shown_at: u32,
}

impl Ceiling {
    /// Whether `scale` is far enough past the knee to trim back to it: by as much as a ceiling has to be
    /// to be told from noise (`CEILING_SCALE_RATIO`), so a knee that noise moves by one worker does not
    /// cost a restart.
    pub fn trims(&self, scale: u32) -> bool {
        f64::from(scale) >= f64::from(self.scale) * CEILING_SCALE_RATIO
    }

    /// Why scale-ups stop here, for the decision, the pull request and the API.
    pub fn block_reason(&self) -> String {
        format!(
            "capacity stops growing at scale {}: at {} the job moved {:.0} records/s, no more than {} \
             delivers, so more workers are wasted (a sink at its limit?) until the evidence changes",
            self.scale, self.shown_at, self.capacity, self.scale
        )
    }
}

/// A point past the knee is contradicted when a newer point delivered this many times what it did: at a
/// smaller scale, the bottleneck moved (a faster sink); at a larger one, the point measured low (a few
/// samples at a scale the job passed through). Either way the ceiling it showed is lifted. Not at the
/// knee's own capacity: a job trimmed to the knee keeps delivering what the ceiling allows, with noise.
const CONTRADICTED_SHARE: f64 = 1.1;

/// A point shows a ceiling only with this many samples behind it (two minutes at a 30 s scrape): one
/// scrape at a scale the job passed through is not evidence enough to stop it growing.
const CEILING_MIN_SAMPLES: u32 = 4;

/// The knee is the smallest scale that reaches this share short of the ceiling's capacity: the points'
/// medians differ by a few percent with noise alone, and a knee that noise moved up by one worker would
/// let a trimmed job climb again, one worker at a time.
const KNEE_TOLERANCE: f64 = 0.03;

/// Splits `points` (one per scale, sorted by scale) into those a model may be fitted on and the ceiling
/// the others show, if any. A point past the knee says nothing about how capacity grows below it, and a
/// contradicted one is ignored.
pub fn ceiling(points: &[CapacityPoint]) -> (Vec<CapacityPoint>, Option<Ceiling>) {
    let mut below: Vec<CapacityPoint> = Vec::new();
    let mut ceiling: Option<Ceiling> = None;
    for point in points {
        let best = below
            .iter()
            .filter(|b| f64::from(point.scale) >= f64::from(b.scale) * CEILING_SCALE_RATIO)
            .max_by(|a, b| a.capacity.total_cmp(&b.capacity));
        let Some(best) = best
            .copied()
            .filter(|_| point.samples >= CEILING_MIN_SAMPLES)
        else {
            below.push(*point);
            continue;
        };
        let promised = best.capacity * (f64::from(point.scale) / f64::from(best.scale) - 1.0);
        if point.capacity - best.capacity >= EFFECTIVE_SHARE * promised {
            below.push(*point);
            continue;
        }
        let contradicts = |other: &CapacityPoint| {
            other.observed_at > point.observed_at
                && other.capacity > point.capacity * CONTRADICTED_SHARE
        };
        if contradicts(&best)
            || points
                .iter()
                .any(|p| p.scale > point.scale && contradicts(p))
        {
            continue;
        }
        let capacity = ceiling.map_or(point.capacity, |c| c.capacity.max(point.capacity));
        let knee =
            (f64::from(best.scale) * capacity * (1.0 - KNEE_TOLERANCE) / best.capacity).ceil();
        let scale = knee.clamp(f64::from(best.scale), f64::from(point.scale)) as u32;
        ceiling = Some(match ceiling {
            Some(c) if c.scale <= scale => Ceiling { capacity, ..c },
            _ => Ceiling {
                scale,
                capacity,
                shown_at: point.scale,
            },
        });
    }
    (below, ceiling)
}

/// The median absolute deviation times this estimates the standard deviation of normal scatter.
const MAD_TO_DEVIATION: f64 = 1.4826;

/// The memory after a decision: a `fresh` point replaces the remembered one at its scale when it has no
/// fewer samples, or when it saw the scale later and has `REPLACING_SAMPLES` samples. Not merely because it
/// is fresh: as the history slides past a scale the job left, its point there thins out to the last few
/// samples, while the remembered point holds them all. Points older than `MEMORY_DAYS` before `now` are
/// forgotten, and of the rest the newest `MEMORY_SCALES` are kept.
pub fn merge(
    memory: &CapacityMemory,
    fresh: &[CapacityPoint],
    now: DateTime<Utc>,
) -> CapacityMemory {
    let horizon = now - Duration::days(MEMORY_DAYS);
    let plausible = |p: &CapacityPoint| {
        p.scale >= 1 && p.capacity.is_finite() && p.capacity > 0.0 && p.spread.is_finite()
    };
    let mut points: Vec<CapacityPoint> = memory
        .points
        .iter()
        .filter(|p| p.observed_at > horizon && plausible(p))
        .copied()
        .collect();
    for new in fresh.iter().filter(|p| plausible(p)) {
        match points.iter_mut().find(|p| p.scale == new.scale) {
            Some(old)
                if new.samples >= old.samples
                    || (new.observed_at > old.observed_at && new.samples >= REPLACING_SAMPLES) =>
            {
                *old = *new;
            }
            Some(_) => {}
            None => points.push(*new),
        }
    }
    points.sort_unstable_by_key(|p| std::cmp::Reverse(p.observed_at));
    points.truncate(MEMORY_SCALES);
    points.sort_unstable_by_key(|p| p.scale);
    CapacityMemory { points }
}

/// The capacity model over `points` (one per scale): a line, or a power law where it earns its place.
///
/// Both are fitted on the same points by the one least-squares helper (the power law as a line through
/// the logarithms: ln capacity = ln a + b · ln scale) and judged by R² in records per second, the scatter
/// within each scale counted as unexplained (so medians of noise that happen to rise are no model). The
/// power law must be plausible: an exponent in [`MIN_EXPONENT`, `MAX_EXPONENT`], not within `LINE_LIKE` of
/// 1 (then it is the line), and R² of at least `MIN_R2`. With three scales or more the points judge: the
/// power law is chosen when it fits better than the line (or the line is unusable). Through two points
/// both fit exactly, and the origin judges: a job with no workers moves nothing, which the power law's
/// curve honours and a line with an intercept does not (at 11 and 22 workers moving 7 660 and 13 720
/// records/s, the line says 1 600 + 551 per worker, the power law 1 020 × scale^0.84). Only for an
/// exponent below 1, where the curve is the cautious one on both sides of the points. Diminishing
/// returns then matter where they cost: a line through points that bend promises too much beyond them,
/// and a job sized on it falls short and scales again.
pub fn fit_capacity(points: &[CapacityPoint]) -> Result<Method, String> {
    let usable: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.capacity > 0.0 && p.scale >= 1)
        .map(|p| (f64::from(p.scale), p.capacity))
        .collect();
    let scatter: f64 = points.iter().map(|p| p.spread.powi(2)).sum();
    let samples: u32 = points.iter().map(|p| p.samples).sum();
    if samples < MIN_SAMPLES {
        return Err(format!(
            "{samples} settled samples speak for capacity, need {MIN_SAMPLES}"
        ));
    }
    if usable.len() < MIN_DISTINCT_SCALES {
        return Err(format!(
            "capacity evidence at {} distinct scale(s), need {MIN_DISTINCT_SCALES}",
            usable.len()
        ));
    }
    let mut line = fit_line(&usable).ok_or_else(|| "the regression did not converge".to_owned())?;
    line.r2 = with_scatter(&usable, scatter, |x| line.at(x));
    let line_verdict = if line.slope <= 0.0 {
        Err(format!(
            "throughput does not grow with scale (slope {:.1})",
            line.slope
        ))
    } else if line.r2 < MIN_R2 {
        Err(format!("poor fit (R² {:.2} below {MIN_R2})", line.r2))
    } else {
        Ok(())
    };
    let curve = power_law(&usable, scatter).filter(|c| {
        (MIN_EXPONENT..=MAX_EXPONENT).contains(&c.exponent)
            && (c.exponent - 1.0).abs() >= LINE_LIKE
            && c.r2 >= MIN_R2
    });
    let judged_by_points = usable.len() >= JUDGING_SCALES;
    match (curve, line_verdict) {
        (Some(curve), verdict)
            if verdict.is_err()
                || (!judged_by_points && curve.exponent < 1.0)
                || curve.r2 > line.r2 =>
        {
            Ok(Method::PowerLaw {
                fit: curve.fit,
                coefficient: curve.coefficient,
                exponent: curve.exponent,
                r2: curve.r2,
                line_r2: Some(line.r2),
            })
        }
        (_, Ok(())) => Ok(Method::Regression { fit: line }),
        (_, Err(reason)) => Err(reason),
    }
}

struct Curve {
    fit: LineFit,
    coefficient: f64,
    exponent: f64,
    /// In records per second, comparable with the line's.
    r2: f64,
}

fn power_law(points: &[(f64, f64)], scatter: f64) -> Option<Curve> {
    let logs: Vec<(f64, f64)> = points.iter().map(|(x, y)| (x.ln(), y.ln())).collect();
    let fit = fit_line(&logs)?;
    let (coefficient, exponent) = (fit.intercept.exp(), fit.slope);
    let r2 = with_scatter(points, scatter, |x| coefficient * x.powf(exponent));
    (coefficient.is_finite() && coefficient > 0.0 && r2.is_finite()).then_some(Curve {
        fit,
        coefficient,
        exponent,
        r2,
    })
}

/// R² of `model` over `points`, with `scatter` (the sum of the points' squared spreads) added to both
/// the unexplained and the total variation.
fn with_scatter(points: &[(f64, f64)], scatter: f64, model: impl Fn(f64) -> f64) -> f64 {
    let mean = points.iter().map(|(_, y)| y).sum::<f64>() / points.len() as f64;
    let total: f64 = points.iter().map(|(_, y)| (y - mean).powi(2)).sum::<f64>() + scatter;
    let residual: f64 = points
        .iter()
        .map(|(x, y)| (y - model(*x)).powi(2))
        .sum::<f64>()
        + scatter;
    if total == 0.0 {
        1.0
    } else {
        1.0 - residual / total
    }
}

impl Method {
    /// The scale, unrounded, at which the model delivers `throughput` records per second.
    pub fn scale_for(&self, throughput: f64) -> f64 {
        match self {
            Method::Regression { fit } => (throughput - fit.intercept) / fit.slope,
            Method::PowerLaw {
                coefficient,
                exponent,
                ..
            } => (throughput.max(0.0) / coefficient).powf(exponent.recip()),
            Method::Proportional { per_worker, .. } => throughput / per_worker,
        }
    }
}
