//! A history cut into runs: stretches at one scale, as the scale metric read it. A sample without a scale
//! reading stays in the run it came in.

use chrono::{DateTime, Utc};

use crate::decide::Sample;

/// After the scale metric changes, samples are no evidence of capacity for this long: the job was
/// restarting, or its rate meters were still ramping up (a real Flink's take about 70 s).
pub const SETTLE_SECONDS: f64 = 120.0;

#[derive(Debug)]
pub struct Run<'a> {
    /// The scale, rounded.
    pub scale: f64,
    /// When the scale metric first read `scale`; `None` for a run that began before the history.
    pub started: Option<DateTime<Utc>>,
    pub samples: Vec<&'a Sample>,
}

impl<'a> Run<'a> {
    /// The samples taken at least `SETTLE_SECONDS` into the run.
    pub fn settled(&self) -> impl Iterator<Item = &'a Sample> + '_ {
        self.samples.iter().copied().filter(|sample| {
            self.started
                .is_none_or(|at| (sample.sampled_at - at).as_seconds_f64() >= SETTLE_SECONDS)
        })
    }
}

/// Cuts `history` (time order) into runs. Samples before the first scale reading are left out.
pub fn runs(history: &[Sample]) -> Vec<Run<'_>> {
    let mut runs: Vec<Run<'_>> = Vec::new();
    for sample in history {
        let scale = sample.scale.filter(|v| v.is_finite()).map(f64::round);
        match (runs.last_mut(), scale) {
            (Some(run), Some(scale)) if run.scale != scale => runs.push(Run {
                scale,
                started: Some(sample.sampled_at),
                samples: vec![sample],
            }),
            (Some(run), _) => run.samples.push(sample),
            (None, Some(scale)) => runs.push(Run {
                scale,
                started: None,
                samples: vec![sample],
            }),
            (None, None) => {}
        }
    }
    runs
}

/// The samples that can speak for capacity, in time order.
pub fn settled(history: &[Sample]) -> Vec<&Sample> {
    runs(history).iter().flat_map(Run::settled).collect()
}
