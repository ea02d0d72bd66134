//! KEDA's Kafka scaler: replicas = ceil(total lag / lagThreshold), at most one per partition, fed to an
//! HPA with the default behaviour. With no lag it goes down to the minimum.
//!
//! KEDA's threshold is in records per replica and a person picks it. Here it is the records one worker
//! processes in `LAG_THRESHOLD_SECONDS`, from the job model's true capacity: as well chosen as it can be.

use super::{Bounds, Observation, ScalingPolicy, hpa::Behaviour};

const LAG_THRESHOLD_SECONDS: f64 = 60.0;

pub struct Keda {
    behaviour: Behaviour,
    lag_threshold: f64,
}

impl Keda {
    pub fn new(bounds: Bounds, capacity_per_worker: f64) -> Self {
        Self {
            behaviour: Behaviour::new(bounds),
            lag_threshold: (capacity_per_worker * LAG_THRESHOLD_SECONDS).max(1.0),
        }
    }
}

impl ScalingPolicy for Keda {
    fn name(&self) -> &'static str {
        "keda"
    }

    fn decide(&mut self, observation: &Observation<'_>) -> Option<u32> {
        let lag = observation.samples.last()?.lag_records?.max(0.0);
        let current = observation.scale.max(1);
        let ratio = lag / f64::from(current) / self.lag_threshold;
        let desired = (lag / self.lag_threshold).ceil() as u32;
        let replicas = self
            .behaviour
            .replicas(observation.seconds, current, ratio, desired);
        (replicas != observation.scale).then_some(replicas)
    }
}
