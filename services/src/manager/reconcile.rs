//! The reconciler: one loop, led by one manager replica at a time, that finds decisions sitting in an
//! open status past that status' deadline (`lifecycle::Deadlines`) and re-drives them (their task is
//! pushed again; the worker resumes from the status, so no second commit or pull request) or, after
//! `max_redrives`, ends them as failed with the reason. Every action is a step on the decision and a
//! count in `autoscaler_reconciler_actions`.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{
    lifecycle::{Deadlines, DecisionStatus, Remedy, remedy},
    metrics::{Metrics, ReconcileLabels},
    storage::{Leadership, Storage, StorageError, StuckDecision, Transition},
};

#[derive(Debug, Clone, Copy)]
pub struct ReconcileSettings {
    pub interval: Duration,
    pub deadlines: Deadlines,
    /// Re-drives of one decision before the reconciler fails it.
    pub max_redrives: u32,
    /// Decisions handled per pass; the rest wait for the next pass.
    pub batch: u32,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            deadlines: Deadlines::default(),
            max_redrives: 3,
            batch: 100,
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    pub redriven: Vec<i64>,
    pub failed: Vec<i64>,
    /// Decisions that moved on while the pass looked at them.
    pub moved_on: Vec<i64>,
}

pub struct Reconciler {
    pub storage: Storage,
    pub metrics: Arc<Metrics>,
    pub settings: ReconcileSettings,
}

impl Reconciler {
    /// One pass at `now`, by whoever calls it; `run` makes sure only the leader does.
    pub async fn pass(&self, now: DateTime<Utc>) -> Result<ReconcileReport, StorageError> {
        let stuck = self
            .storage
            .stuck_decisions(&self.settings.deadlines, now, self.settings.batch)
            .await?;
        let mut report = ReconcileReport::default();
        for decision in stuck {
            let redrives = u32::try_from(decision.redrives).unwrap_or(u32::MAX);
            let Some(action) = remedy(decision.status, redrives, self.settings.max_redrives) else {
                continue;
            };
            let stuck_for = (now - decision.since).num_seconds();
            let result = match &action {
                Remedy::Redrive => {
                    let detail = json!({
                        "status": decision.status,
                        "stuck_for_seconds": stuck_for,
                        "redrive": redrives + 1,
                    });
                    self.storage.redrive(&decision, &detail).await
                }
                Remedy::Fail(reason) => self.fail(&decision, reason, stuck_for).await,
            };
            match result {
                Ok(()) => {
                    let name = match action {
                        Remedy::Redrive => {
                            report.redriven.push(decision.id);
                            "redrive"
                        }
                        Remedy::Fail(_) => {
                            report.failed.push(decision.id);
                            "fail"
                        }
                    };
                    tracing::warn!(decision = decision.id, status = %decision.status, stuck_for, action = name, "stuck decision");
                    self.metrics
                        .reconciler_actions
                        .get_or_create(&ReconcileLabels {
                            action: name,
                            status: decision.status.as_str(),
                        })
                        .inc();
                }
                Err(StorageError::LostRace { .. }) => report.moved_on.push(decision.id),
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    async fn fail(
        &self,
        decision: &StuckDecision,
        reason: &str,
        stuck_for: i64,
    ) -> Result<(), StorageError> {
        let detail =
            json!({"status": decision.status, "stuck_for_seconds": stuck_for, "reason": reason});
        let failed = Transition::new(decision.status, DecisionStatus::Failed)
            .reason(reason)
            .step("reconciler_failed", &detail);
        self.storage.transition(decision.id, &failed).await
    }

    /// Every `interval` until `shutdown`: take or keep the leadership, and pass if leading.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut leadership: Option<Leadership> = None;
        let mut ticks = tokio::time::interval(self.settings.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Some(held) = leadership.as_mut()
                && !held.still_held().await
            {
                tracing::warn!("the reconciler's leader connection is gone; leadership lost");
                leadership = None;
            }
            if leadership.is_none() {
                match self.storage.try_lead().await {
                    Ok(Some(held)) => {
                        tracing::info!("this replica leads the reconciler");
                        leadership = Some(held);
                    }
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot ask for the reconciler's leadership");
                        continue;
                    }
                }
            }
            let started = std::time::Instant::now();
            let result = self.pass(Utc::now()).await;
            self.metrics
                .observe_loop("reconcile", started.elapsed(), result.is_ok());
            if let Err(e) = result {
                tracing::warn!(error = %e, "reconciler pass failed; retrying next interval");
            }
        }
    }
}
