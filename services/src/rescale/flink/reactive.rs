//! Reactive mode: nothing to restart. The deployer starts or stops TaskManagers and Flink rescales
//! the job to every slot it has, in place (the job keeps its id). Confirming the rescale means
//! waiting until the job runs at the parallelism the new scale gives, with every subtask running:
//! while Flink recreates the job it shows each vertex at its maximum parallelism, CREATED.

use serde_json::json;
use tokio::time::Instant;
use url::Url;

use super::super::error::{Problem, RescaleError, Situation};
use super::super::{RescaleMethod, RescaleSettings, RescaleStep, Rescaled};
use super::ENDED;
use super::api::FlinkApi;

pub(in crate::rescale) async fn confirm(
    http: &reqwest::Client,
    rest_url: &Url,
    job_name: &str,
    parallelism: u32,
    settings: &RescaleSettings,
    record: &mut (dyn FnMut(RescaleStep) + Send),
) -> Result<Rescaled, RescaleError> {
    let api = FlinkApi {
        http,
        base: rest_url,
        timeout: settings.request_timeout,
    };
    let fail = |problem| {
        RescaleError::new(
            "confirming the job's new parallelism",
            problem,
            Situation::ReactiveDeployed {
                job_name: job_name.to_owned(),
                parallelism,
            },
        )
    };
    let deadline = Instant::now() + settings.timeout;
    loop {
        // `/jobs/overview` is fresh (`/jobs/{id}` is cached for seconds).
        let live: Vec<_> = api
            .jobs()
            .await
            .map_err(fail)?
            .into_iter()
            .filter(|j| j.name == job_name && !ENDED.contains(&j.state.as_str()))
            .collect();
        let seen = match live.as_slice() {
            [] => "no job of that name runs".to_owned(),
            [job] => {
                let details = api.job(&job.jid).await.map_err(fail)?;
                if details.all_running() && details.parallelism() == Some(parallelism) {
                    record(RescaleStep::new(
                        "parallelism_verified",
                        json!({"job_id": job.jid, "parallelism": parallelism,
                               "vertices": details.vertex_record()}),
                    ));
                    return Ok(Rescaled {
                        parallelism,
                        method: RescaleMethod::Reactive,
                        job_id: Some(job.jid.clone()),
                        savepoint: None,
                    });
                }
                format!("job {} is {}", job.jid, details.describe())
            }
            many => {
                return Err(fail(Problem::AmbiguousJob {
                    job_name: job_name.to_owned(),
                    job_ids: many.iter().map(|j| j.jid.clone()).collect(),
                }));
            }
        };
        if Instant::now() >= deadline {
            let slots = match api.cluster().await {
                Ok(c) => format!("the cluster has {} task slots", c.slots_total),
                Err(e) => format!("the cluster's slots are unknown: {e}"),
            };
            return Err(fail(Problem::TimedOut {
                waiting_for: format!(
                    "job {job_name:?} to run at parallelism {parallelism} ({seen}; {slots})"
                ),
                waited: settings.timeout,
            }));
        }
        tokio::time::sleep(settings.poll_interval).await;
    }
}
