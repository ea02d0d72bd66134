//! A sync operation: what was requested (top-level `.operation`) and how it went
//! (`status.operationState`), rendered with Go's `omitempty` habits (false and empty fields absent).

use serde_json::{Map, Value, json};

/// Who started an operation: `initiatedBy` in the JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Initiator {
    User(String),
    /// The application controller's automated sync.
    Automated,
}

/// A requested sync (`v1alpha1.Operation` with a `sync` part).
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    /// The resolved commit SHA.
    pub(crate) revision: String,
    pub(crate) initiated_by: Initiator,
    pub(crate) dry_run: bool,
    pub(crate) prune: bool,
    pub(crate) strategy: Option<Value>,
    pub(crate) sync_options: Vec<String>,
    pub(crate) resources: Vec<Value>,
    pub(crate) info: Vec<Value>,
    pub(crate) retry: Option<Value>,
}

impl Operation {
    /// An operation with no options, as the controller's automated sync or another user starts it.
    pub(crate) fn plain(revision: String, initiated_by: Initiator) -> Self {
        Self {
            revision,
            initiated_by,
            dry_run: false,
            prune: false,
            strategy: None,
            sync_options: Vec::new(),
            resources: Vec::new(),
            info: Vec::new(),
            retry: None,
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut sync = Map::new();
        sync.insert("revision".into(), json!(self.revision));
        insert_true(&mut sync, "prune", self.prune);
        insert_true(&mut sync, "dryRun", self.dry_run);
        // Argo CD fills in the default hook strategy when none was sent.
        let strategy = self.strategy.clone().unwrap_or_else(|| json!({"hook": {}}));
        sync.insert("syncStrategy".into(), strategy);
        if !self.sync_options.is_empty() {
            sync.insert("syncOptions".into(), json!(self.sync_options));
        }
        if !self.resources.is_empty() {
            sync.insert("resources".into(), json!(self.resources));
        }
        let initiated_by = match &self.initiated_by {
            Initiator::User(name) => json!({"username": name}),
            Initiator::Automated => json!({"automated": true}),
        };
        let mut op = Map::new();
        op.insert("sync".into(), Value::Object(sync));
        op.insert("initiatedBy".into(), initiated_by);
        if !self.info.is_empty() {
            op.insert("info".into(), json!(self.info));
        }
        if let Some(retry) = &self.retry {
            op.insert("retry".into(), retry.clone());
        }
        Value::Object(op)
    }
}

fn insert_true(map: &mut Map<String, Value>, key: &str, value: bool) {
    if value {
        map.insert(key.into(), Value::Bool(true));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    Succeeded,
    Failed,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        }
    }
}

/// `status.operationState`.
#[derive(Debug, Clone)]
pub(crate) struct OperationState {
    pub(crate) operation: Operation,
    pub(crate) phase: Phase,
    pub(crate) message: String,
    pub(crate) started_at: String,
    pub(crate) finished_at: Option<String>,
    /// `syncResult.revision`: set once the controller has applied (or tried to apply) the revision.
    pub(crate) applied_revision: Option<String>,
    /// `syncResult.source`, the application's source at the time.
    pub(crate) source: Value,
}

impl OperationState {
    pub(crate) fn to_json(&self) -> Value {
        let mut state = Map::new();
        state.insert("operation".into(), self.operation.to_json());
        state.insert("phase".into(), json!(self.phase.as_str()));
        state.insert("message".into(), json!(self.message));
        state.insert("startedAt".into(), json!(self.started_at));
        if let Some(finished) = &self.finished_at {
            state.insert("finishedAt".into(), json!(finished));
        }
        if let Some(revision) = &self.applied_revision {
            state.insert(
                "syncResult".into(),
                json!({"resources": [], "revision": revision, "source": self.source}),
            );
        }
        Value::Object(state)
    }
}
