//! The manager's cycle: scrape every cluster's metrics into Postgres, evaluate the rules over each
//! cluster's window, and enqueue one scaling task where a rule fired and the safeguards allow it.

mod reconcile;

use std::{sync::Arc, time::Instant};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

pub use reconcile::{ReconcileReport, ReconcileSettings, Reconciler};

use crate::{
    metrics::Metrics,
    queue::TaskQueue,
    rules::{ClusterFacts, Evaluation, Rule, RuleInput, decide, standard_rules},
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

/// Rules and safeguards over stored samples; shared by the loop and the dry-run endpoint.
pub struct Evaluator {
    pub storage: Storage,
    pub rules: Vec<Box<dyn Rule>>,
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
                rules: standard_rules(),
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
            .map(|c| {
                c.spec
                    .policy
                    .scale_down_window_seconds
                    .max(c.spec.policy.scale_up_window_seconds)
            })
            .max()
            .unwrap_or(0);
        let samples = self
            .storage
            .samples_since(now - Duration::seconds(i64::from(longest)))
            .await?;
        let facts = self.storage.decision_facts().await?;
        let mut report = EvaluateReport::default();
        for cluster in clusters {
            let history = samples.get(&cluster.id).map_or(&[][..], Vec::as_slice);
            let evaluation = self
                .evaluator
                .evaluate(cluster, history, facts.get(&cluster.id), now);
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

    /// Records a pending decision together with its task. `None` when another manager got there first:
    /// the database allows one decision in flight per cluster.
    async fn enqueue(
        &self,
        cluster: &ClusterRecord,
        evaluation: &Evaluation,
        history: &[Sample],
    ) -> anyhow::Result<Option<i64>> {
        let Some(fired) = &evaluation.fired else {
            return Ok(None);
        };
        let window = match fired.direction {
            crate::rules::Direction::Up => cluster.spec.policy.scale_up_window_seconds,
            crate::rules::Direction::Down => cluster.spec.policy.scale_down_window_seconds,
        };
        let from = evaluation.evaluated_at - Duration::seconds(i64::from(window));
        let in_window: Vec<&Sample> = history.iter().filter(|s| s.sampled_at > from).collect();
        let mut inputs = json!({
            "direction": fired.direction,
            "reason": fired.reason,
            "verdicts": evaluation.verdicts,
            "window": {"from": from, "to": evaluation.evaluated_at, "samples": in_window},
        });
        // The samples' scale and the decision's scales are in this unit (Flink only).
        if let Some(unit) = cluster.spec.target.scale_unit {
            inputs["scale_unit"] = json!(unit);
        }
        let from_scale = in_window
            .iter()
            .rev()
            .find_map(|s| s.scale)
            .map(|s| s.round() as i32);
        let new = NewDecision {
            cluster_id: cluster.id,
            cluster_name: cluster.spec.name.clone(),
            rule: fired.rule.to_owned(),
            inputs,
            from_scale,
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
            rule = fired.rule,
            reason = %fired.reason,
            "scaling task enqueued"
        );
        Ok(Some(decision.id))
    }
}

impl std::fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rules: Vec<&str> = self.rules.iter().map(|r| r.name()).collect();
        f.debug_struct("Evaluator")
            .field("rules", &rules)
            .finish_non_exhaustive()
    }
}

impl Evaluator {
    /// What the rules and safeguards say for one cluster right now, without acting (the dry run).
    pub async fn evaluate_now(
        &self,
        cluster: &ClusterRecord,
        now: DateTime<Utc>,
    ) -> Result<Evaluation, StorageError> {
        let policy = &cluster.spec.policy;
        let longest = policy
            .scale_down_window_seconds
            .max(policy.scale_up_window_seconds);
        let history = self
            .storage
            .cluster_samples_since(cluster.id, now - Duration::seconds(i64::from(longest)))
            .await?;
        let facts = self.storage.decision_facts().await?;
        Ok(self.evaluate(cluster, &history, facts.get(&cluster.id), now))
    }

    pub fn evaluate(
        &self,
        cluster: &ClusterRecord,
        history: &[Sample],
        decisions: Option<&DecisionFacts>,
        now: DateTime<Utc>,
    ) -> Evaluation {
        let decisions = decisions.cloned().unwrap_or_default();
        let fresh_after = now - Duration::seconds(2 * i64::from(self.scrape_interval_seconds));
        let facts = ClusterFacts {
            paused: cluster.paused,
            decision_in_flight: decisions.in_flight,
            last_change_at: decisions.last_change_at,
            current_scale: history
                .iter()
                .rev()
                .find(|s| s.sampled_at > fresh_after)
                .and_then(|s| s.scale),
        };
        let input = RuleInput {
            policy: &cluster.spec.policy,
            samples: history,
            now,
            scrape_interval_seconds: self.scrape_interval_seconds,
        };
        decide(&self.rules, &input, &facts)
    }
}
