//! Every announced instance of an engine cluster, one after the other: each is drained, restarted and
//! verified through its own control API (`engine::rescale`), then all are read once more, so the rescale
//! succeeds only when every instance reports the new parallelism. One instance at a time keeps the
//! others consuming while it drains.

use serde_json::json;

use super::error::{Problem, RescaleError, Situation};
use super::http::{join, redacted};
use super::{EngineEndpoint, RescaleMethod, RescaleSettings, RescaleStep, Rescaled, engine};

pub(super) async fn rescale(
    http: &reqwest::Client,
    instances: &[EngineEndpoint],
    token: Option<&str>,
    parallelism: u32,
    settings: &RescaleSettings,
    record: &mut (dyn FnMut(RescaleStep) + Send),
) -> Result<Rescaled, RescaleError> {
    let names: Vec<String> = instances.iter().map(|e| e.instance.clone()).collect();
    let mut changed = false;
    for (done, endpoint) in instances.iter().enumerate() {
        let mut tagged = |mut step: RescaleStep| {
            if let Some(detail) = step.detail.as_object_mut() {
                detail.insert("instance".to_owned(), endpoint.instance.clone().into());
            }
            record(step);
        };
        match engine::rescale(
            http,
            &endpoint.control_url,
            token,
            parallelism,
            settings,
            &mut tagged,
        )
        .await
        {
            Ok(rescaled) => changed |= rescaled.method != RescaleMethod::AlreadyAtParallelism,
            Err(error) => {
                // Those before it run at the new parallelism, those after it were not asked.
                return Err(incomplete(
                    error,
                    &endpoint.instance,
                    names[..done].to_vec(),
                    names[done + 1..].to_vec(),
                    parallelism,
                    record,
                ));
            }
        }
    }
    // Each instance was verified right after its restart; a last look at all of them catches one that
    // fell back meanwhile (restarted by its orchestrator at the old parallelism, say).
    for (index, endpoint) in instances.iter().enumerate() {
        let shown = redacted(&join(&endpoint.control_url, &["status"]));
        let checked = match engine::status(http, &endpoint.control_url, settings).await {
            Ok(s) if s.state == "running" && s.parallelism == parallelism => Ok(()),
            Ok(s) if s.state != "running" => Err(Problem::Unavailable(format!(
                "the engine is {}, not running",
                s.state
            ))),
            Ok(s) => Err(Problem::Mismatch {
                expected: parallelism,
                actual: s.parallelism,
                detail: "as GET /status reports it after every instance was rescaled".to_owned(),
            }),
            Err(problem) => Err(problem),
        };
        if let Err(problem) = checked {
            let error = RescaleError::new(
                "verifying every instance's parallelism",
                problem,
                Situation::EngineRescaleRequested {
                    status_url: shown,
                    parallelism,
                },
            );
            let others: Vec<String> = names
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != index)
                .map(|(_, n)| n.clone())
                .collect();
            return Err(incomplete(
                error,
                &endpoint.instance,
                others,
                Vec::new(),
                parallelism,
                record,
            ));
        }
    }
    record(RescaleStep::new(
        "instances_verified",
        json!({"instances": names, "parallelism": parallelism}),
    ));
    let method = if changed {
        RescaleMethod::EngineControl
    } else {
        RescaleMethod::AlreadyAtParallelism
    };
    Ok(Rescaled::new(parallelism, method))
}

/// Records which instances run where, and names the failed instance in the error.
fn incomplete(
    error: RescaleError,
    failed: &str,
    at_new: Vec<String>,
    not_asked: Vec<String>,
    parallelism: u32,
    record: &mut (dyn FnMut(RescaleStep) + Send),
) -> RescaleError {
    record(RescaleStep::new(
        "engine_instances_incomplete",
        json!({
            "failed": failed,
            "error": error.to_string(),
            "at_new_parallelism": at_new,
            "not_asked": not_asked,
            "parallelism": parallelism,
        }),
    ));
    RescaleError::new(
        error.step,
        error.problem,
        Situation::EngineInstances {
            failed: failed.to_owned(),
            then: Box::new(error.situation),
            at_new,
            not_asked,
            parallelism,
        },
    )
}
