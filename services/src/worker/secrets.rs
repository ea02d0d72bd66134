//! Reads the credentials a cluster spec names, when the worker needs them. Values never leave this
//! process through logs, errors, pull requests or the API: errors name the reference, not the value.

use std::path::{Component, Path, PathBuf};

use crate::cluster::SecretRef;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret {0}: the environment variable is not set or not UTF-8")]
    MissingEnv(String),
    #[error("secret {0}: file references need AUTOSCALER_SECRETS_DIR")]
    NoSecretsDir(String),
    #[error("secret {0}: the path must stay inside the secrets directory")]
    Escapes(String),
    #[error("secret {0}: cannot be read: {1}")]
    Unreadable(String, String),
    #[error("secret {0} is empty")]
    Empty(String),
}

#[derive(Debug, Clone, Default)]
pub struct SecretResolver {
    dir: Option<PathBuf>,
}

impl SecretResolver {
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    pub async fn resolve(&self, secret: &SecretRef) -> Result<String, SecretError> {
        let value = match secret {
            SecretRef::Env(name) => {
                let label = format!("env {name}");
                std::env::var(name).map_err(|_| SecretError::MissingEnv(label.clone()))?
            }
            SecretRef::File(path) => {
                let label = format!("file {path}");
                let dir = self
                    .dir
                    .as_ref()
                    .ok_or_else(|| SecretError::NoSecretsDir(label.clone()))?;
                if !stays_inside(Path::new(path)) {
                    return Err(SecretError::Escapes(label));
                }
                tokio::fs::read_to_string(dir.join(path))
                    .await
                    .map_err(|e| SecretError::Unreadable(label.clone(), e.kind().to_string()))?
            }
        };
        // Mounted secrets often end with a newline that would break a header or an HMAC.
        let value = value.trim().to_owned();
        if value.is_empty() {
            return Err(SecretError::Empty(match secret {
                SecretRef::Env(name) => format!("env {name}"),
                SecretRef::File(path) => format!("file {path}"),
            }));
        }
        Ok(value)
    }
}

fn stays_inside(path: &Path) -> bool {
    path.components().all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_resolve_inside_the_directory_only_and_are_trimmed() {
        let dir = std::env::temp_dir().join(format!("secrets-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("github"), "ghp_abc123\n").expect("write");
        let resolver = SecretResolver::new(Some(dir.clone()));

        let value = resolver
            .resolve(&SecretRef::File("github".into()))
            .await
            .expect("resolves");
        assert_eq!(value, "ghp_abc123");
        let escape = resolver
            .resolve(&SecretRef::File("../etc/passwd".into()))
            .await;
        assert!(matches!(escape, Err(SecretError::Escapes(_))), "{escape:?}");
        let missing = resolver.resolve(&SecretRef::File("nope".into())).await;
        let message = missing.expect_err("missing").to_string();
        assert!(message.contains("file nope"), "{message}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_missing_variable_is_named_without_a_value() {
        let error = SecretResolver::default()
            .resolve(&SecretRef::Env("AUTOSCALER_TEST_SURELY_UNSET".into()))
            .await
            .expect_err("unset");
        assert_eq!(
            error.to_string(),
            "secret env AUTOSCALER_TEST_SURELY_UNSET: the environment variable is not set or not UTF-8"
        );
    }
}
