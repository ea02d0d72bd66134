//! The manager's cycle: scrape every cluster's metrics into Postgres, evaluate the rules over each
//! cluster's window, and enqueue one scaling task where a rule fired and the safeguards allow it.

mod reconcile;

use std::{collections::HashMap, sync::Arc, time::Instant};

use chrono::{DateTime, Duration, Utc};

pub use reconcile::{ReconcileReport, ReconcileSettings, Reconciler};

use crate::{
    decide::{self, Cluster, DecisionInputs, Evaluation, Facts, history_seconds},
    estimate::{CapacityMemory, seasonal::RatePoint},
    metrics::Metrics,
    queue::TaskQueue,
    scrape::{InstantQuery, ScrapeReport, scrape},
    storage::{ClusterRecord, DecisionFacts, NewDecision, Sample, Storage, StorageError},
};

pub struct Manager<Q> {
    pub storage: Storage,
    pub prometheus: Q,
    pub queue: TaskQueue,
    pub metrics: Arc<Metrics>,
    pub evaluator: Arc<Evaluator>,
}

/// The decision core over stored samples and decision facts; shared by the loop and the dry-run endpoint.
#[derive(Debug)]
pub struct Evaluator {
    pub storage: Storage,
    pub scrape_interval_seconds: u32,
}

/// What one evaluation pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EvaluateReport {
    pub evaluated: usize,
    pub fired: usize,
    pub blocked: usize,
    pub enqueued: usize,
}

impl<Q: InstantQuery> Manager<Q> {
    pub fn new(
        storage: Storage,
        prometheus: Q,
        metrics: Arc<Metrics>,
        scrape_interval_seconds: u32,
    ) -> Self {
        Self {
            queue: TaskQueue::new(storage.pool()),
            evaluator: Arc::new(Evaluator {
                storage: storage.clone(),
                scrape_interval_seconds,
            }),
            storage,
            prometheus,
            metrics,
        }
    }

    /// One full cycle at `now`: scrape every cluster, store, evaluate, enqueue. The cluster list is read
    /// once for both halves.
    pub async fn cycle(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(ScrapeReport, EvaluateReport), StorageError> {
        let clusters = self.storage.all_clusters().await?;
        let scraped = self.scrape_clusters(&clusters, now).await?;
        let evaluated = self.evaluate_clusters(&clusters, now).await?;
        Ok((scraped, evaluated))
    }

    /// Samples every cluster at `at` and stores the samples in one batch.
    pub async fn scrape_cycle(&self, at: DateTime<Utc>) -> Result<ScrapeReport, StorageError> {
        let clusters = self.storage.all_clusters().await?;
        self.scrape_clusters(&clusters, at).await
    }

    /// Evaluates every cluster at `now` and enqueues where a rule fired and nothing blocks it.
    pub async fn evaluate_cycle(&self, now: DateTime<Utc>) -> Result<EvaluateReport, StorageError> {
        let clusters = self.storage.all_clusters().await?;
        self.evaluate_clusters(&clusters, now).await
    }

    async fn scrape_clusters(
        &self,
        clusters: &[ClusterRecord],
        at: DateTime<Utc>,
    ) -> Result<ScrapeReport, StorageError> {
        let started = Instant::now();
        let (samples, report) = scrape(&self.prometheus, clusters, at).await;
        self.storage.insert_samples(&samples).await?;
        self.metrics.record_scrape(&report);
        self.metrics
            .observe_loop("scrape", started.elapsed(), report.failed_queries == 0);
        tracing::debug!(
            clusters = clusters.len(),
            queries = report.queries,
            "scrape done"
        );
        Ok(report)
    }

    async fn evaluate_clusters(
        &self,
        clusters: &[ClusterRecord],
        now: DateTime<Utc>,
    ) -> Result<EvaluateReport, StorageError> {
        let started = Instant::now();
        let longest = clusters
            .iter()
            .map(|c| history_seconds(&c.spec.policy))
            .max()
            .unwrap_or(0);
        let samples = self
            .storage
            .samples_since(now - Duration::seconds(i64::from(longest)))
            .await?;
        let facts = self.storage.decision_facts().await?;
        self.check_predictions(&samples, now).await;
        let ids: Vec<i64> = clusters.iter().map(|c| c.id).collect();
        let memories = self.storage.capacity_memories(&ids).await?;
        let mut report = EvaluateReport::default();
        for cluster in clusters {
            let history = samples.get(&cluster.id).map_or(&[][..], Vec::as_slice);
            let seasonal = self.evaluator.seasonal(cluster, now).await;
            let evaluation = self.evaluator.evaluate(
                cluster,
                history,
                facts.get(&cluster.id),
                Known {
                    seasonal,
                    capacity: memories.get(&cluster.id),
                },
                now,
            );
            report.evaluated += 1;
            if evaluation.fired.is_some() {
                report.fired += 1;
            }
            if let Some(reason) = &evaluation.blocked_by {
                report.blocked += 1;
                tracing::debug!(cluster = %cluster.spec.name, reason, "rule fired but blocked");
            }
            if evaluation.act {
                match self.enqueue(cluster, &evaluation, history).await {
                    Ok(Some(_)) => report.enqueued += 1,
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(cluster = %cluster.spec.name, error = %e, "enqueue failed")
                    }
                }
            }
        }
        self.metrics
            .observe_loop("evaluate", started.elapsed(), true);
        Ok(report)
    }

    /// Checks every recorded prediction whose time has passed against the samples at hand, and records
    /// whether it held on its decision. A failure is logged and retried at the next cycle.
    async fn check_predictions(&self, samples: &HashMap<i64, Vec<Sample>>, now: DateTime<Utc>) {
        let due = match self.storage.due_predictions(now).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the predictions due");
                return;
            }
        };
        for decision in due {
            let Ok(inputs) = decision.typed_inputs() else {
                continue;
            };
            let Some(prediction) = &inputs.prediction else {
                continue;
            };
            let history = decision
                .cluster_id
                .and_then(|id| samples.get(&id))
                .map_or(&[][..], Vec::as_slice);
            let check =
                decide::check_prediction(prediction.peak_for(inputs.direction), history, now);
            if let Err(e) = self
                .storage
                .record_prediction_check(decision.id, &check)
                .await
            {
                tracing::warn!(decision = decision.id, error = %e, "cannot record a prediction's check");
            }
        }
    }

    /// Records a pending decision together with its task. `None` when another manager got there first:
    /// the database allows one decision in flight per cluster.
    async fn enqueue(
        &self,
        cluster: &ClusterRecord,
        evaluation: &Evaluation,
        history: &[Sample],
    ) -> anyhow::Result<Option<i64>> {
        let Some(inputs) = DecisionInputs::new(
            &cluster.spec.policy,
            evaluation,
            history,
            cluster.spec.target.scale_unit,
        ) else {
            return Ok(None);
        };
        let Some(fired) = &evaluation.fired else {
            return Ok(None);
        };
        let new = NewDecision {
            cluster_id: cluster.id,
            cluster_name: cluster.spec.name.clone(),
            rule: fired.rule.clone(),
            from_scale: inputs.from_scale(),
            inputs,
        };
        // The decision and its task in one transaction: a manager that dies here leaves both or neither.
        let decision = match self.storage.insert_pending_decision_with_task(&new).await {
            Ok(decision) => decision,
            Err(StorageError::Conflict) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        tracing::info!(
            cluster = %cluster.spec.name,
            decision = decision.id,
            rule = %fired.rule,
            reason = %fired.reason,
            "scaling task enqueued"
        );
        Ok(Some(decision.id))
    }
}

impl Evaluator {
    /// What the rules and safeguards say for one cluster right now, without acting (the dry run).
    pub async fn evaluate_now(
        &self,
        cluster: &ClusterRecord,
        now: DateTime<Utc>,
    ) -> Result<Evaluation, StorageError> {
        let since = now - Duration::seconds(i64::from(history_seconds(&cluster.spec.policy)));
        let history = self
            .storage
            .cluster_samples_since(cluster.id, since)
            .await?;
        let facts = self.storage.decision_facts().await?;
        let seasonal = self.seasonal(cluster, now).await;
        let memory = self.storage.capacity_memory(cluster.id).await?;
        Ok(self.evaluate(
            cluster,
            &history,
            facts.get(&cluster.id),
            Known {
                seasonal,
                capacity: Some(&memory),
            },
            now,
        ))
    }

    /// The seasonal series of a cluster whose `policy.predictive` is on (one query); `None` otherwise, or
    /// when it cannot be read (logged: the reactive rules still decide).
    pub async fn seasonal(
        &self,
        cluster: &ClusterRecord,
        now: DateTime<Utc>,
    ) -> Option<Vec<RatePoint>> {
        if !cluster.spec.policy.predictive.enabled {
            return None;
        }
        match self.storage.seasonal_rates(cluster.id, now).await {
            Ok(points) => Some(points),
            Err(e) => {
                tracing::warn!(cluster = %cluster.spec.name, error = %e, "cannot read the seasonal series");
                None
            }
        }
    }

    /// The decision core for one cluster, with the facts the database holds.
    pub fn evaluate(
        &self,
        cluster: &ClusterRecord,
        history: &[Sample],
        decisions: Option<&DecisionFacts>,
        known: Known<'_>,
        now: DateTime<Utc>,
    ) -> Evaluation {
        let decisions = decisions.cloned().unwrap_or_default();
        let facts = Facts {
            paused: cluster.paused,
            decision_in_flight: decisions.in_flight,
            last_change_at: decisions.last_change_at,
            seasonal: known.seasonal,
            capacity: known.capacity.cloned().unwrap_or_default(),
            ..Facts::default()
        };
        let subject = Cluster {
            policy: &cluster.spec.policy,
            scrape_interval_seconds: self.scrape_interval_seconds,
        };
        decide::evaluate(&subject, history, &facts, now)
    }
}

/// What the database knows of a cluster beyond its samples and decisions, read by the caller.
#[derive(Debug, Default)]
pub struct Known<'a> {
    /// The seasonal series, where `policy.predictive` is on.
    pub seasonal: Option<Vec<RatePoint>>,
    /// What the cluster's earlier decisions learned about its capacity.
    pub capacity: Option<&'a CapacityMemory>,
}
