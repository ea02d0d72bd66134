use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a credential lives. The spec names it; the worker reads it when it needs it. Credentials themselves
/// are never accepted, stored or returned by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretRef {
    /// The name of an environment variable of the worker process, at most 128 characters, under the
    /// team's prefix (by default `AUTOSCALER_TEAM_<TEAM>_SECRET_`).
    /// (utoipa takes no bounds on a variant's field; `api::openapi` adds the length and pattern.)
    Env(String),
    /// A path relative to the team's directory under the configured secrets directory, without `..`.
    File(String),
}
