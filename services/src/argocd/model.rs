//! The parts of Argo CD's `Application` the worker reads (`GET /api/v1/applications/{name}`). Every field
//! is optional: a missing one means "not yet", never a parse failure.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Application {
    /// Present only while an operation is queued or running.
    #[serde(default)]
    pub operation: Option<serde_json::Value>,
    #[serde(default)]
    pub status: Option<AppStatus>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    #[serde(default)]
    pub sync: Option<SyncStatus>,
    #[serde(default)]
    pub health: Option<HealthStatus>,
    #[serde(default)]
    pub operation_state: Option<OperationState>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SyncStatus {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub revision: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HealthStatus {
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationState {
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub sync_result: Option<SyncResult>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SyncResult {
    #[serde(default)]
    pub revision: Option<String>,
}

/// The grpc-gateway error body: `{"error", "code", "message", "details"}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GatewayError {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

impl Application {
    pub fn operation_running(&self) -> bool {
        self.operation.is_some()
    }

    pub fn operation_state(&self) -> Option<&OperationState> {
        self.status.as_ref()?.operation_state.as_ref()
    }

    pub fn health(&self) -> Option<&str> {
        self.status.as_ref()?.health.as_ref()?.status.as_deref()
    }

    /// `(sync status, revision)` of the last comparison.
    pub fn sync(&self) -> (Option<&str>, Option<&str>) {
        let sync = self.status.as_ref().and_then(|s| s.sync.as_ref());
        (
            sync.and_then(|s| s.status.as_deref()),
            sync.and_then(|s| s.revision.as_deref()),
        )
    }
}

impl OperationState {
    /// Completed = Succeeded, Failed or Error.
    pub fn is_completed(&self) -> bool {
        matches!(
            self.phase.as_deref(),
            Some("Succeeded" | "Failed" | "Error")
        )
    }

    pub fn applied_revision(&self) -> Option<&str> {
        self.sync_result.as_ref()?.revision.as_deref()
    }
}
