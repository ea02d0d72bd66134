//! A Kubernetes HPA on CPU utilisation (target 80 %), with the autoscaling/v2 defaults: a 10 % tolerance,
//! scale-down stabilised over 5 minutes (the highest recommendation in the window wins), scale-up limited
//! to the larger of +4 pods and +100 % per 15 seconds. A missing metric means no recommendation.

use std::collections::VecDeque;

use super::{Bounds, Observation, ScalingPolicy};

const TARGET_UTILISATION: f64 = 0.8;
const TOLERANCE: f64 = 0.1;
const SCALE_DOWN_STABILISATION_SECONDS: f64 = 300.0;
const SCALE_UP_PODS: u32 = 4;

/// The HPA's arithmetic from a usage ratio to replicas, shared with KEDA (which drives an HPA).
#[derive(Debug, Clone)]
pub struct Behaviour {
    bounds: Bounds,
    /// (seconds, recommendation), the last `SCALE_DOWN_STABILISATION_SECONDS`.
    recommendations: VecDeque<(f64, u32)>,
}

impl Behaviour {
    pub fn new(bounds: Bounds) -> Self {
        Self {
            bounds,
            recommendations: VecDeque::new(),
        }
    }

    /// The replicas for `desired` (already `ceil(ratio × current)`), given the usage ratio for the
    /// tolerance check.
    pub fn replicas(&mut self, seconds: f64, current: u32, ratio: f64, desired: u32) -> u32 {
        let recommendation = if (ratio - 1.0).abs() <= TOLERANCE {
            current
        } else {
            self.bounds.clamp(desired)
        };
        self.recommendations.push_back((seconds, recommendation));
        while self
            .recommendations
            .front()
            .is_some_and(|(at, _)| seconds - at > SCALE_DOWN_STABILISATION_SECONDS)
        {
            self.recommendations.pop_front();
        }
        let stabilised = if recommendation < current {
            self.recommendations
                .iter()
                .map(|(_, r)| *r)
                .max()
                .unwrap_or(recommendation)
                .min(current)
        } else {
            recommendation
        };
        let up_limit = (current + SCALE_UP_PODS).max(current * 2);
        self.bounds.clamp(stabilised.min(up_limit))
    }
}

pub struct Hpa {
    behaviour: Behaviour,
}

impl Hpa {
    pub fn new(bounds: Bounds) -> Self {
        Self {
            behaviour: Behaviour::new(bounds),
        }
    }
}

impl ScalingPolicy for Hpa {
    fn name(&self) -> &'static str {
        "hpa"
    }

    fn decide(&mut self, observation: &Observation<'_>) -> Option<u32> {
        let cpu = observation.samples.last()?.cpu_load?;
        let current = observation.scale;
        let ratio = cpu / TARGET_UTILISATION;
        let desired = (ratio * f64::from(current)).ceil() as u32;
        let replicas = self
            .behaviour
            .replicas(observation.seconds, current, ratio, desired);
        (replicas != current).then_some(replicas)
    }
}
