//! One Application: its spec (what the test configures) and the state Argo CD's controller would
//! keep for it (sync/health status, the running operation, the last operation's outcome).

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use super::operation::{Initiator, Operation, OperationState, Phase};

/// An Application to serve, deployed from a bare Git repository on disk.
#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    pub project: String,
    /// A bare repository; `spec.source.repoURL` is its `file://` URL.
    pub repo: PathBuf,
    /// A branch, tag or SHA, e.g. "main".
    pub target_revision: String,
    /// `spec.syncPolicy.automated`: a refresh that finds a new commit starts an automated sync.
    pub auto_sync: bool,
}

/// A revision whose operation finished successfully and was not a dry run: the caller runs the
/// `on_applied` callbacks for it once the state lock is released.
#[derive(Debug, Clone)]
pub(crate) struct Applied {
    pub(crate) app: String,
    pub(crate) revision: String,
}

/// `.operation` while it is queued or running, with the number of GETs it has been observed by.
#[derive(Debug, Clone)]
struct ActiveOperation {
    op: Operation,
    started_at: String,
    gets_seen: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SyncStatus {
    Synced,
    OutOfSync,
    Unknown,
}

impl SyncStatus {
    fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Synced => "Synced",
            SyncStatus::OutOfSync => "OutOfSync",
            SyncStatus::Unknown => "Unknown",
        }
    }
}

#[derive(Debug)]
pub(crate) struct AppRecord {
    pub(crate) spec: App,
    uid: String,
    created_at: String,
    resource_version: u64,
    reconciled_at: String,
    sync_status: SyncStatus,
    /// `status.sync.revision`: the last revision compared against the cluster.
    compared_revision: Option<String>,
    /// A `ComparisonError` condition, set when the target revision does not resolve.
    comparison_error: Option<String>,
    health: &'static str,
    operation: Option<ActiveOperation>,
    operation_state: Option<OperationState>,
    history: Vec<Value>,
    /// The revision the cluster runs: resolved at `add_application`, then moved by each successful sync.
    pub(crate) deployed_revision: Option<String>,
    pub(crate) sync_window_closed: bool,
    pub(crate) gets_to_complete: u32,
    pub(crate) fail_next: Option<String>,
    pub(crate) sync_requests: Vec<Value>,
    /// Argo CD's automated sync does not retry a revision whose automated sync failed.
    failed_automated_revision: Option<String>,
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Operations complete on the second GET after they start unless a test says otherwise.
pub(crate) const DEFAULT_GETS_TO_COMPLETE: u32 = 2;

/// The account the bearer token stands for; shown in `initiatedBy.username`.
pub(crate) const API_USERNAME: &str = "autoscaler";
/// Whoever starts a "foreign" operation.
const OTHER_USERNAME: &str = "admin";

impl AppRecord {
    /// `deployed` is the target revision resolved when the app is added (the app starts Synced there).
    pub(crate) fn new(spec: App, uid: String, deployed: Option<String>) -> Self {
        let created_at = now();
        let (sync_status, comparison_error) = match &deployed {
            Some(_) => (SyncStatus::Synced, None),
            None => (
                SyncStatus::Unknown,
                Some(unresolvable_message(&spec.target_revision)),
            ),
        };
        Self {
            uid,
            reconciled_at: created_at.clone(),
            created_at,
            resource_version: 1,
            sync_status,
            compared_revision: deployed.clone(),
            comparison_error,
            health: "Healthy",
            operation: None,
            operation_state: None,
            history: Vec::new(),
            deployed_revision: deployed,
            sync_window_closed: false,
            gets_to_complete: DEFAULT_GETS_TO_COMPLETE,
            fail_next: None,
            sync_requests: Vec::new(),
            failed_automated_revision: None,
            spec,
        }
    }

    pub(crate) fn operation_in_progress(&self) -> bool {
        self.operation.is_some()
    }

    /// `argo.SetAppOperation`: sets `.operation` and clears `status.operationState`. Callers check
    /// `operation_in_progress` first, as the real function refuses then.
    pub(crate) fn set_operation(&mut self, op: Operation) {
        if !op.dry_run && self.deployed_revision.as_deref() != Some(op.revision.as_str()) {
            self.sync_status = SyncStatus::OutOfSync;
            self.compared_revision = Some(op.revision.clone());
        }
        self.operation = Some(ActiveOperation {
            op,
            started_at: now(),
            gets_seen: 0,
        });
        self.operation_state = None;
        self.bump();
    }

    /// Starts an operation by another user on the deployed revision (a re-sync), so that ours is refused.
    pub(crate) fn set_foreign_operation(&mut self) -> bool {
        if self.operation.is_some() {
            return false;
        }
        let revision = self
            .deployed_revision
            .clone()
            .unwrap_or_else(|| self.spec.target_revision.clone());
        let op = Operation::plain(revision, Initiator::User(OTHER_USERNAME.into()));
        self.set_operation(op);
        true
    }

    /// A GET of this app: the controller makes progress on the running operation, which completes on
    /// the `gets_to_complete`-th GET after it started.
    pub(crate) fn observe_get(&mut self) -> Option<Applied> {
        let source = self.source_json();
        let active = self.operation.as_mut()?;
        active.gets_seen += 1;
        if active.gets_seen >= self.gets_to_complete {
            return self.complete_operation();
        }
        let running = OperationState {
            operation: active.op.clone(),
            phase: Phase::Running,
            message: "one or more tasks are running".into(),
            started_at: active.started_at.clone(),
            finished_at: None,
            applied_revision: None,
            source,
        };
        if !active.op.dry_run {
            self.health = "Progressing";
        }
        self.operation_state = Some(running);
        self.bump();
        None
    }

    /// With `gets_to_complete == 0` an operation completes as soon as the response that started it is built.
    pub(crate) fn complete_if_immediate(&mut self) -> Option<Applied> {
        if self.gets_to_complete == 0 && self.operation.is_some() {
            return self.complete_operation();
        }
        None
    }

    fn complete_operation(&mut self) -> Option<Applied> {
        let active = self.operation.take()?;
        let failure = self.fail_next.take();
        let finished_at = now();
        let op = active.op;
        let phase = if failure.is_some() {
            Phase::Failed
        } else {
            Phase::Succeeded
        };
        let message = failure.unwrap_or_else(|| "successfully synced (all tasks run)".into());
        let mut applied = None;
        if op.dry_run {
            // A dry run changes nothing in the cluster.
        } else if phase == Phase::Succeeded {
            self.deployed_revision = Some(op.revision.clone());
            self.sync_status = SyncStatus::Synced;
            self.compared_revision = Some(op.revision.clone());
            self.health = "Healthy";
            self.record_history(&op, &active.started_at, &finished_at);
            applied = Some(Applied {
                app: self.spec.name.clone(),
                revision: op.revision.clone(),
            });
        } else {
            self.health = "Degraded";
            if op.initiated_by == Initiator::Automated {
                self.failed_automated_revision = Some(op.revision.clone());
            }
        }
        self.operation_state = Some(OperationState {
            applied_revision: Some(op.revision.clone()),
            operation: op,
            phase,
            message,
            started_at: active.started_at,
            finished_at: Some(finished_at),
            source: self.source_json(),
        });
        self.bump();
        applied
    }

    /// A `?refresh=` GET: compares the freshly resolved target revision with what is deployed and,
    /// for an auto-sync app, starts an automated sync to it (unless an operation is running, a sync
    /// window is closed, or the automated sync of that very revision already failed).
    pub(crate) fn refresh(&mut self, resolved_target: Option<String>) {
        self.reconciled_at = now();
        self.bump();
        let Some(target) = resolved_target else {
            self.sync_status = SyncStatus::Unknown;
            self.comparison_error = Some(unresolvable_message(&self.spec.target_revision));
            return;
        };
        self.comparison_error = None;
        if self.operation.is_none() {
            self.compared_revision = Some(target.clone());
            self.sync_status = if self.deployed_revision.as_deref() == Some(target.as_str()) {
                SyncStatus::Synced
            } else {
                SyncStatus::OutOfSync
            };
        }
        let should_auto_sync = self.spec.auto_sync
            && self.operation.is_none()
            && !self.sync_window_closed
            && self.sync_status == SyncStatus::OutOfSync
            && self.failed_automated_revision.as_deref() != Some(target.as_str());
        if should_auto_sync {
            self.set_operation(Operation::plain(target, Initiator::Automated));
        }
    }

    fn record_history(&mut self, op: &Operation, started_at: &str, finished_at: &str) {
        let initiated_by = match &op.initiated_by {
            Initiator::User(name) => json!({"username": name}),
            Initiator::Automated => json!({"automated": true}),
        };
        let id = self.history.len();
        self.history.push(json!({
            "id": id,
            "revision": op.revision,
            "deployStartedAt": started_at,
            "deployedAt": finished_at,
            "source": self.source_json(),
            "initiatedBy": initiated_by,
        }));
    }

    fn bump(&mut self) {
        self.resource_version += 1;
    }

    fn source_json(&self) -> Value {
        json!({
            "repoURL": format!("file://{}", self.spec.repo.display()),
            "path": ".",
            "targetRevision": self.spec.target_revision,
        })
    }

    fn destination_json(&self) -> Value {
        json!({"server": "https://kubernetes.default.svc", "namespace": self.spec.project})
    }

    /// The `v1alpha1.Application` JSON (external-apis.md §1.2, §1.4).
    pub(crate) fn to_json(&self) -> Value {
        let sync_policy = if self.spec.auto_sync {
            json!({"automated": {"prune": true, "selfHeal": true}})
        } else {
            json!({})
        };
        let mut sync = Map::new();
        sync.insert("status".into(), json!(self.sync_status.as_str()));
        sync.insert(
            "comparedTo".into(),
            json!({"source": self.source_json(), "destination": self.destination_json()}),
        );
        if let Some(revision) = &self.compared_revision {
            sync.insert("revision".into(), json!(revision));
        }
        let mut status = Map::new();
        status.insert("resources".into(), json!([]));
        status.insert("sync".into(), Value::Object(sync));
        status.insert("health".into(), json!({"status": self.health}));
        if !self.history.is_empty() {
            status.insert("history".into(), json!(self.history));
        }
        status.insert("reconciledAt".into(), json!(self.reconciled_at));
        if let Some(state) = &self.operation_state {
            status.insert("operationState".into(), state.to_json());
        }
        if let Some(message) = &self.comparison_error {
            status.insert(
                "conditions".into(),
                json!([{"type": "ComparisonError", "message": message, "lastTransitionTime": self.reconciled_at}]),
            );
        }
        status.insert("sourceType".into(), json!("Directory"));
        status.insert("summary".into(), json!({}));
        status.insert("controllerNamespace".into(), json!("argocd"));

        let mut app = Map::new();
        app.insert(
            "metadata".into(),
            json!({
                "name": self.spec.name,
                "namespace": "argocd",
                "uid": self.uid,
                "resourceVersion": self.resource_version.to_string(),
                "generation": 1,
                "creationTimestamp": self.created_at,
            }),
        );
        app.insert(
            "spec".into(),
            json!({
                "source": self.source_json(),
                "destination": self.destination_json(),
                "project": self.spec.project,
                "syncPolicy": sync_policy,
            }),
        );
        if let Some(active) = &self.operation {
            app.insert("operation".into(), active.op.to_json());
        }
        app.insert("status".into(), Value::Object(status));
        Value::Object(app)
    }
}

fn unresolvable_message(revision: &str) -> String {
    format!("Failed to load target state: unable to resolve '{revision}' to a commit SHA")
}
