//! The audit log of API changes: who (the token's team and name), when, what, and the spec before and
//! after. Entries are written in the transaction of the change they record, so there is no change without
//! its entry and no entry without its change.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Postgres, Transaction, types::Json};
use utoipa::ToSchema;

use super::{Storage, StorageError};
use crate::tenancy::DEFAULT_TEAM;

/// Who makes a change, for the team filter and the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// The token's team; a new cluster belongs to it.
    pub team: &'a str,
    /// The token's name (never the token).
    pub token_name: &'a str,
    /// The teams whose clusters it may change: `None` for all.
    pub scope: Option<&'a str>,
}

impl Actor<'static> {
    /// The service itself or a test fixture: the default team, every cluster.
    pub const OPERATOR: Actor<'static> = Actor {
        team: DEFAULT_TEAM,
        token_name: "(operator)",
        scope: None,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum AuditAction {
    Subscribe,
    Replace,
    Pause,
    Resume,
    Delete,
}

/// One recorded change.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The team of the cluster changed.
    pub team: String,
    /// The team of the token that made the change.
    pub actor_team: String,
    /// The name of the token that made the change.
    pub token_name: String,
    pub action: AuditAction,
    pub cluster: String,
    /// The spec before the change; absent for a subscription.
    #[schema(value_type = Option<Object>)]
    pub before: Option<Json<serde_json::Value>>,
    /// The spec after the change; absent for a deletion.
    #[schema(value_type = Option<Object>)]
    pub after: Option<Json<serde_json::Value>>,
}

/// What a change did, for its audit entry.
pub(super) struct Change<'a> {
    pub actor: Actor<'a>,
    pub team: &'a str,
    pub action: AuditAction,
    pub cluster: &'a str,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

pub(super) async fn record(
    transaction: &mut Transaction<'_, Postgres>,
    change: Change<'_>,
) -> Result<(), StorageError> {
    sqlx::query(
        "insert into audit_log (team, actor_team, token_name, action, cluster, before, after) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(change.team)
    .bind(change.actor.team)
    .bind(change.actor.token_name)
    .bind(change.action)
    .bind(change.cluster)
    .bind(change.before.map(|v| Json(redact(v))))
    .bind(change.after.map(|v| Json(redact(v))))
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

impl Storage {
    /// Audit entries, newest first, older than `before`; only `team`'s when given.
    pub async fn list_audit(
        &self,
        team: Option<&str>,
        cluster: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StorageError> {
        Ok(sqlx::query_as(
            "select id, at, team, actor_team, token_name, action, cluster, before, after \
             from audit_log \
             where ($1::text is null or team = $1) and ($2::text is null or cluster = $2) \
               and ($3::bigint is null or id < $3) \
             order by id desc limit $4",
        )
        .bind(team)
        .bind(cluster)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?)
    }
}

/// Keys whose string values are taken for credentials wherever they appear.
const SECRET_KEYS: [&str; 6] = [
    "password",
    "secret",
    "token",
    "credential",
    "authorization",
    "api_key",
];
/// Prefixes of well-known credential formats (GitHub, GitLab, Slack, AWS access keys).
const SECRET_PREFIXES: [&str; 6] = ["ghp_", "gho_", "github_pat_", "glpat-", "xox", "AKIA"];
const REDACTED: &str = "[redacted]";

/// The spec with anything that looks secret replaced. Specs hold only references to secrets, but a
/// person may still paste a token into a field such as a URL or a query; the audit log must not keep it.
/// A secret reference (`{"env": ...}` or `{"file": ...}`) is kept: it names where a secret is, not what.
pub fn redact(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let lower = key.to_ascii_lowercase();
                    let secret_key = SECRET_KEYS.iter().any(|k| lower.contains(k));
                    let value = match value {
                        Value::String(_) if secret_key => Value::String(REDACTED.to_owned()),
                        other => redact(other),
                    };
                    (key, value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        Value::String(text) => Value::String(redact_text(text)),
        other => other,
    }
}

fn redact_text(text: String) -> String {
    if SECRET_PREFIXES.iter().any(|p| text.starts_with(p)) {
        return REDACTED.to_owned();
    }
    // A URL with a password in it keeps its shape without the password.
    if let Ok(mut url) = url::Url::parse(&text)
        && url.password().is_some()
        && url.set_password(Some(REDACTED)).is_ok()
    {
        return url.to_string();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_looking_values_are_redacted_and_references_kept() {
        let spec = json!({
            "git": {"repository": "https://bot:hunter2-secret@git.example/r.git",
                    "credentials": {"env": "AUTOSCALER_TEAM_A_SECRET_GIT"}},
            "argocd": {"token": {"file": "argocd"}, "password": "p4ss"},
            "metrics": {"queries": {"lag": "sum(lag{key=\"ghp_abcdef\"})"}, "labels": ["ghp_0123456789"]},
        });
        let redacted = redact(spec).to_string();
        for secret in ["hunter2-secret", "p4ss", "ghp_0123456789"] {
            assert!(!redacted.contains(secret), "{secret} in {redacted}");
        }
        assert!(
            redacted.contains("AUTOSCALER_TEAM_A_SECRET_GIT"),
            "{redacted}"
        );
        assert!(redacted.contains("\"file\":\"argocd\""), "{redacted}");
        assert!(redacted.contains("git.example"), "{redacted}");
    }
}
