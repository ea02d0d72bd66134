//! The apply step: the new capacity is up (reactive targets), or the job is restarted at the new
//! parallelism (targets without reactive scaling).

use chrono::{DateTime, Utc};
use serde_json::json;
use url::Url;

use super::{WorkError, Worker};
use crate::{
    cluster::{ClusterSpec, Destination, TargetKind},
    outbound::guard,
    rescale::{EngineEndpoint, FlinkJob, Recorded, RescaleMethod, RescaleTarget, rescale},
    storage::{ClusterRecord, DecisionRecord, DecisionStatus, EngineInstance, Transition},
};

impl Worker {
    /// After the sync: the new scale takes effect (reactive targets) or is restarted into effect.
    /// Where engine instances announce themselves, the new capacity must have registered first.
    pub(super) async fn apply(
        &self,
        decision: &DecisionRecord,
        cluster: &ClusterRecord,
    ) -> Result<DecisionStatus, WorkError> {
        let target = &cluster.spec.target;
        let reactive = target
            .reactive
            .unwrap_or_else(|| target.kind.scales_reactively_by_default());
        if !reactive {
            return self.restart(decision, cluster).await;
        }
        // A reactive Flink job named with its REST API: applied once Flink runs it at the new
        // parallelism, not when the deployer has merely started TaskManagers.
        if let (TargetKind::Flink, Some(rest_url), Some(job)) =
            (target.kind, &target.control_url, &target.flink)
        {
            let confirm = RescaleTarget::FlinkReactive {
                rest_url: rest_url.clone(),
                job_name: job.job_name.clone(),
            };
            return self
                .rescale_into_effect(decision, &cluster.spec, confirm)
                .await;
        }
        let wanted = decision.to_scale.unwrap_or_default().max(0) as usize;
        let cluster_id = cluster.id;
        let live = self
            .storage
            .live_engines(cluster_id, self.alive_since())
            .await?
            .len();
        let reports = self.storage.engines_ever_registered(cluster_id).await?;
        if reports && live < wanted {
            return Err(WorkError::CapacityNotUp { live, wanted });
        }
        let detail = json!({"live_instances": reports.then_some(live), "scale": wanted});
        self.move_on(
            decision.id,
            Transition::new(DecisionStatus::Synced, DecisionStatus::Applied)
                .reason("the new scale is in effect")
                .step("applied", &detail),
        )
        .await
    }

    /// An engine instance without a heartbeat since then no longer counts.
    fn alive_since(&self) -> DateTime<Utc> {
        Utc::now()
            - chrono::Duration::from_std(self.settings.heartbeat_timeout)
                .unwrap_or(chrono::Duration::seconds(90))
    }

    /// Restarts a target without reactive scaling at the new parallelism (engine control endpoints, or
    /// Flink stop-with-savepoint and resubmit), recording every step.
    async fn restart(
        &self,
        decision: &DecisionRecord,
        cluster: &ClusterRecord,
    ) -> Result<DecisionStatus, WorkError> {
        let spec = &cluster.spec;
        let target = &spec.target;
        let Some(control_url) = target.control_url.clone() else {
            return Err(WorkError::Invalid(
                "the target has no control_url to restart it with".to_owned(),
            ));
        };
        let restart_target = match (&target.kind, &target.flink) {
            (TargetKind::Flink, Some(job)) => RescaleTarget::Flink(FlinkJob {
                rest_url: control_url,
                job_name: job.job_name.clone(),
                jar_id: job.jar_id.clone(),
                entry_class: job.entry_class.clone(),
                program_args: job.program_args.clone(),
                savepoint_dir: job.savepoint_dir.clone(),
                adaptive_scheduler: job.adaptive_scheduler,
            }),
            (TargetKind::Flink, None) => {
                return Err(WorkError::Invalid(
                    "a Flink target without reactive scaling needs target.flink".to_owned(),
                ));
            }
            _ => {
                let token = match &target.control_token {
                    Some(secret) => Some(self.secrets.resolve(&cluster.team, secret).await?),
                    None => None,
                };
                let live = self
                    .storage
                    .live_engines(cluster.id, self.alive_since())
                    .await?;
                match self.announced_endpoints(&live).await? {
                    Some(instances) => RescaleTarget::EngineInstances { instances, token },
                    None => RescaleTarget::Engine { control_url, token },
                }
            }
        };
        self.rescale_into_effect(decision, &cluster.spec, restart_target)
            .await
    }

    /// The control APIs of the live instances, each checked against the outbound policy (it is input
    /// from outside, and the policy may have changed since the webhook stored it); `None` when no live
    /// instance announced one, and the spec's `control_url` is used as before. Nothing is restarted
    /// unless every live instance can be.
    async fn announced_endpoints(
        &self,
        live: &[EngineInstance],
    ) -> Result<Option<Vec<EngineEndpoint>>, WorkError> {
        let silent: Vec<&str> = live
            .iter()
            .filter(|e| e.control_url.is_none())
            .map(|e| e.instance_id.as_str())
            .collect();
        if silent.len() == live.len() {
            return Ok(None);
        }
        if !silent.is_empty() {
            return Err(WorkError::Invalid(format!(
                "engine instances {} announced no control_url, so they cannot be restarted at the \
                 new parallelism; set control.advertise_url on them (no instance was restarted)",
                silent.join(", ")
            )));
        }
        let mut endpoints = Vec::with_capacity(live.len());
        for engine in live {
            let text = engine.control_url.as_deref().unwrap_or_default();
            let url = Url::parse(text).map_err(|e| {
                WorkError::Invalid(format!(
                    "the control_url engine instance {} announced is not a URL: {e}",
                    engine.instance_id
                ))
            })?;
            guard::check_before_use(&self.settings.outbound, Destination::Http(&url))
                .await
                .map_err(|refusal| WorkError::AnnouncedUrl {
                    instance: engine.instance_id.clone(),
                    refusal,
                })?;
            endpoints.push(EngineEndpoint {
                instance: engine.instance_id.clone(),
                control_url: url,
            });
        }
        Ok(Some(endpoints))
    }

    /// Runs the rescale driver for `restart_target` at the decision's parallelism, records its
    /// steps, and marks the decision applied when it succeeds.
    async fn rescale_into_effect(
        &self,
        decision: &DecisionRecord,
        spec: &ClusterSpec,
        restart_target: RescaleTarget,
    ) -> Result<DecisionStatus, WorkError> {
        let target = &spec.target;
        let parallelism = decision
            .to_scale
            .and_then(|s| u32::try_from(s).ok())
            .and_then(|s| target.parallelism_at(s))
            .ok_or_else(|| WorkError::Invalid("the decision records no new scale".to_owned()))?;
        // What earlier attempts recorded finds a savepoint Flink has forgotten.
        let recorded = Recorded::from_steps(&decision.steps.0);
        // Each step is stored as the driver reports it, not after it returns: a worker killed
        // mid-rescale leaves the savepoint it took on the decision, where the next attempt finds it
        // once Flink has forgotten the operation (`rest.async.store-duration`, 5 minutes by default).
        let (steps, mut reported) = tokio::sync::mpsc::unbounded_channel();
        let rescaling = async {
            let steps = steps;
            rescale(
                &self.http,
                &restart_target,
                parallelism,
                decision.id,
                &recorded,
                self.settings.rescale,
                &mut |step| {
                    // The receiver outlives this future; a send cannot fail.
                    let _ = steps.send(step);
                },
            )
            .await
        };
        let storing = async {
            while let Some(step) = reported.recv().await {
                self.storage
                    .add_step(decision.id, step.step, &step.detail)
                    .await?;
            }
            Ok::<(), WorkError>(())
        };
        let (result, stored) = tokio::join!(rescaling, storing);
        stored?;
        let rescaled = result.map_err(|e| WorkError::Rescale(Box::new(e)))?;
        let (step, reason) = match rescaled.method {
            RescaleMethod::Reactive => (
                "applied",
                format!("Flink runs the job at parallelism {parallelism}"),
            ),
            _ => (
                "restarted",
                format!("restarted at parallelism {parallelism}"),
            ),
        };
        let detail = json!(rescaled);
        self.move_on(
            decision.id,
            Transition::new(DecisionStatus::Synced, DecisionStatus::Applied)
                .reason(&reason)
                .step(step, &detail),
        )
        .await
    }
}
