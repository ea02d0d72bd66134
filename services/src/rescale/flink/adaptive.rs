//! In-place rescale with the adaptive scheduler's resource requirements (§5.3): no savepoint, no
//! resubmission; the scheduler restarts the job from its latest checkpoint at the new parallelism.

use serde_json::json;

use super::super::error::{RescaleError, Situation};
use super::super::{RescaleMethod, RescaleStep, Rescaled};
use super::{Ctx, verified, wait_running};

pub(super) async fn rescale(
    cx: &Ctx<'_>,
    job_id: &str,
    record: &mut (dyn FnMut(RescaleStep) + Send),
) -> Result<Rescaled, RescaleError> {
    let n = cx.parallelism;
    let untouched = |p| {
        RescaleError::new(
            "updating the resource requirements",
            p,
            Situation::Untouched,
        )
    };
    let mut requirements = cx.api.requirements(job_id).await.map_err(untouched)?;
    for vertex in requirements.values_mut() {
        let bounds = &mut vertex.parallelism;
        bounds.upper_bound = n;
        // Keep the lower bound the operator chose, unless it would now exceed the upper one.
        bounds.lower_bound = bounds.lower_bound.min(n);
    }
    // Flink persists the requirements before applying them, and answers an error if it could not:
    // whatever the answer, nothing was applied unless it is 200.
    cx.api
        .set_requirements(job_id, &requirements)
        .await
        .map_err(untouched)?;
    record(RescaleStep::new(
        "resource_requirements_updated",
        json!({"job_id": job_id, "upper_bound": n, "vertices": requirements.len()}),
    ));

    let set = || Situation::RequirementsSet {
        job_id: job_id.to_owned(),
        parallelism: n,
    };
    let verify = |p| RescaleError::new("verifying the parallelism", p, set());
    let details = wait_running(&cx.api, job_id, cx.settings, |d| d.parallelism() == Some(n))
        .await
        .map_err(verify)?;
    record(verified(job_id, &details, n).map_err(verify)?);
    Ok(Rescaled {
        parallelism: n,
        method: RescaleMethod::ResourceRequirements,
        job_id: Some(job_id.to_owned()),
        savepoint: None,
    })
}
