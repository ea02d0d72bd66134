//! Reads the credentials a cluster spec names, when the worker needs them, from the cluster's team's
//! secret store only (see [`crate::tenancy::secrets`]): the check at subscription is made again here, for
//! specs stored before it existed. Values are held as `SecretString`, which never prints, and errors name
//! the reference, not the value.

use std::path::PathBuf;

use secrecy::SecretString;

use crate::{cluster::SecretRef, tenancy::secrets};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret {0}: the environment variable is not set or not UTF-8")]
    MissingEnv(String),
    #[error("secret {0}: file references need AUTOSCALER_SECRETS_DIR")]
    NoSecretsDir(String),
    #[error("secret {0}: {1}")]
    OutsideStore(String, String),
    #[error("secret {0}: cannot be read: {1}")]
    Unreadable(String, String),
    #[error("secret {0} is empty")]
    Empty(String),
}

#[derive(Debug, Clone, Default)]
pub struct SecretResolver {
    dir: Option<PathBuf>,
    /// The template of a team's environment prefix; `None` for the default.
    env_prefix: Option<String>,
}

fn label(secret: &SecretRef) -> String {
    match secret {
        SecretRef::Env(name) => format!("env {name}"),
        SecretRef::File(path) => format!("file {path}"),
    }
}

impl SecretResolver {
    pub fn new(dir: Option<PathBuf>, env_prefix: Option<String>) -> Self {
        Self { dir, env_prefix }
    }

    /// The value of `secret` from `team`'s store.
    pub async fn resolve(
        &self,
        team: &str,
        secret: &SecretRef,
    ) -> Result<SecretString, SecretError> {
        let label = label(secret);
        let template = self
            .env_prefix
            .as_deref()
            .unwrap_or(secrets::DEFAULT_ENV_PREFIX);
        secrets::check(secret, team, template, self.dir.is_some()).map_err(
            |problem| match secret {
                SecretRef::File(_) if self.dir.is_none() => {
                    SecretError::NoSecretsDir(label.clone())
                }
                _ => SecretError::OutsideStore(label.clone(), problem),
            },
        )?;
        let value = match secret {
            SecretRef::Env(name) => {
                std::env::var(name).map_err(|_| SecretError::MissingEnv(label.clone()))?
            }
            SecretRef::File(path) => {
                let dir = self
                    .dir
                    .as_ref()
                    .ok_or_else(|| SecretError::NoSecretsDir(label.clone()))?;
                let file = secrets::file_path(dir, team, path).ok_or_else(|| {
                    SecretError::OutsideStore(label.clone(), secrets::OUTSIDE_STORE.to_owned())
                })?;
                tokio::fs::read_to_string(file)
                    .await
                    .map_err(|e| SecretError::Unreadable(label.clone(), e.kind().to_string()))?
            }
        };
        // Mounted secrets often end with a newline that would break a header or an HMAC.
        let value = value.trim();
        if value.is_empty() {
            return Err(SecretError::Empty(label));
        }
        Ok(SecretString::from(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[tokio::test]
    async fn files_resolve_inside_the_teams_directory_only_and_are_trimmed() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir_all(dir.path().join("team-a")).expect("dir");
        std::fs::create_dir_all(dir.path().join("team-b")).expect("dir");
        std::fs::write(dir.path().join("team-a/github"), "ghp_abc123\n").expect("write");
        std::fs::write(dir.path().join("team-b/github"), "ghp_team_b_only\n").expect("write");
        let resolver = SecretResolver::new(Some(dir.path().to_owned()), None);

        let value = resolver
            .resolve("team-a", &SecretRef::File("github".into()))
            .await
            .expect("resolves");
        assert_eq!(value.expose_secret(), "ghp_abc123");
        assert_eq!(format!("{value:?}"), "SecretBox<str>([REDACTED])");
        for escape in ["../team-b/github", "/etc/passwd"] {
            let refused = resolver
                .resolve("team-a", &SecretRef::File(escape.into()))
                .await;
            assert!(
                matches!(refused, Err(SecretError::OutsideStore(..))),
                "{escape}: {refused:?}"
            );
        }
        let missing = resolver
            .resolve("team-a", &SecretRef::File("nope".into()))
            .await;
        let message = missing.expect_err("missing").to_string();
        assert!(message.contains("file nope"), "{message}");
    }

    #[tokio::test]
    async fn variables_resolve_under_the_teams_prefix_only() {
        let resolver = SecretResolver::default();
        let error = resolver
            .resolve(
                "team-a",
                &SecretRef::Env("AUTOSCALER_TEAM_TEAM_A_SECRET_SURELY_UNSET".into()),
            )
            .await
            .expect_err("unset");
        assert_eq!(
            error.to_string(),
            "secret env AUTOSCALER_TEAM_TEAM_A_SECRET_SURELY_UNSET: the environment variable is not set or not UTF-8"
        );
        for outside in [
            "PATH",
            "DATABASE_URL",
            "AUTOSCALER_API_TOKENS",
            "AUTOSCALER_TEAM_TEAM_B_SECRET_X",
        ] {
            let refused = resolver
                .resolve("team-a", &SecretRef::Env(outside.into()))
                .await;
            assert!(
                matches!(refused, Err(SecretError::OutsideStore(..))),
                "{outside}: {refused:?}"
            );
        }
    }
}
