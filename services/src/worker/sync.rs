//! The sync step: Argo CD syncs (or refreshes) the application and is followed until the revision
//! holding the commit is applied.

use serde_json::json;

use super::{WorkError, Worker, short};
use crate::{
    argocd::ArgoCdClient,
    cluster::ClusterSpec,
    gitops::Remote,
    storage::{DecisionRecord, DecisionStatus, Transition},
};

impl Worker {
    /// Syncs the Argo CD application (or refreshes it) and follows it until our commit is applied.
    pub(super) async fn sync(
        &self,
        decision: &DecisionRecord,
        team: &str,
        spec: &ClusterSpec,
    ) -> Result<DecisionStatus, WorkError> {
        let write_back = decision.write_back.as_ref().map(|w| &w.0);
        let commit = write_back
            .and_then(|w| w.get("merge_commit").or_else(|| w.get("commit")))
            .and_then(|c| c.as_str())
            .ok_or_else(|| WorkError::Invalid("the decision records no commit to sync".into()))?
            .to_owned();
        let argocd = &spec.argocd;
        let token = match &argocd.token {
            Some(secret) => Some(self.secrets.resolve(team, secret).await?),
            None => None,
        };
        if decision.status != DecisionStatus::Syncing {
            let started = json!({"application": argocd.application, "commit": commit});
            self.move_on(
                decision.id,
                Transition::new(decision.status, DecisionStatus::Syncing)
                    .sync(&started)
                    .step("sync_started", &started),
            )
            .await?;
        }
        let client = ArgoCdClient::new(
            self.http.clone(),
            argocd.server.clone(),
            token,
            argocd.project.clone(),
            self.settings.argocd,
        );
        let credential = self.git_credential(team, spec).await?;
        let remote = Remote {
            url: &spec.git.repository,
            branch: &spec.git.branch,
            credential: credential.as_ref(),
        };
        let infos = [
            ("autoscaler.decision", decision.id.to_string()),
            (
                "autoscaler.scale",
                decision.to_scale.unwrap_or_default().to_string(),
            ),
        ];
        let result = client
            .apply(
                &argocd.application,
                &commit,
                argocd.auto_sync,
                &infos,
                |revision| {
                    let git = &self.git;
                    let commit = commit.clone();
                    async move {
                        crate::fault::pause_at(crate::fault::WORKER_FOLLOWING_SYNC).await;
                        git.contains(remote, &commit, &revision)
                            .await
                            .unwrap_or(false)
                    }
                },
            )
            .await;
        match result {
            Ok(applied) => {
                let detail = json!({"application": argocd.application, "commit": commit, "applied": applied});
                self.move_on(
                    decision.id,
                    Transition::new(DecisionStatus::Syncing, DecisionStatus::Synced)
                        .sync(&detail)
                        .step("synced", &detail),
                )
                .await?;
                tracing::info!(
                    decision = decision.id,
                    revision = applied.revision,
                    "synced"
                );
                Ok(DecisionStatus::Synced)
            }
            Err(e) if e.is_transient() => Err(e.into()),
            Err(e) => {
                let reason = format!(
                    "commit {} is in Git, but {e}; sync application {} once the cause is fixed",
                    short(&commit),
                    argocd.application
                );
                self.move_on(
                    decision.id,
                    Transition::new(DecisionStatus::Syncing, DecisionStatus::Failed)
                        .reason(&reason)
                        .step("failed", &json!({"reason": reason})),
                )
                .await
            }
        }
    }
}
