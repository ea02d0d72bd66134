//! Running the `git` command line: no prompts, credentials only through the environment, stderr in the
//! error with any credential scrubbed.

use std::path::Path;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use tokio::process::Command;

use super::GitError;

/// Credentials for an HTTPS remote: `user:token`, or a bare token (sent as user `x-access-token`, as
/// GitHub expects; GitLab and Gitea accept any user name with a token). Never printed.
#[derive(Clone)]
pub struct Credential(SecretString);

impl Credential {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(SecretString::from(secret.into().trim().to_owned()))
    }

    pub fn from_secret(secret: &SecretString) -> Self {
        Self::new(secret.expose_secret())
    }

    /// An HTTP header git sends with every request to the remote.
    fn header(&self) -> String {
        let secret = self.0.expose_secret();
        let pair = if secret.contains(':') {
            secret.to_owned()
        } else {
            format!("x-access-token:{secret}")
        };
        format!(
            "Authorization: Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in self
            .0
            .expose_secret()
            .split(':')
            .filter(|part| part.len() >= 4)
        {
            out = out.replace(secret, "[redacted]");
        }
        out
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential([redacted])")
    }
}

/// Runs git in `dir`; stdout on success, stderr in the error.
pub(super) async fn git(
    dir: &Path,
    credential: Option<&Credential>,
    args: &[&str],
) -> Result<String, GitError> {
    let mut command = Command::new("git");
    command
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .kill_on_drop(true);
    // Through the environment rather than `-c`, so the header never shows in a process list.
    if let Some(credential) = credential {
        command
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env("GIT_CONFIG_VALUE_0", credential.header());
    }
    let name = args.first().copied().unwrap_or_default().to_owned();
    let output = command.output().await.map_err(|e| GitError::Command {
        command: name.clone(),
        stderr: e.to_string(),
    })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        Err(GitError::Command {
            command: name,
            stderr: credential.map_or(stderr.clone(), |c| c.scrub(&stderr)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_never_prints_and_is_scrubbed_from_git_output() {
        let credential = Credential::new("bot:s3cr3t-token\n");
        assert_eq!(format!("{credential:?}"), "Credential([redacted])");
        assert_eq!(
            credential.scrub("fatal: could not read from https://bot:s3cr3t-token@git.example.com"),
            "fatal: could not read from https://bot:[redacted]@git.example.com"
        );
        // A bare token is GitHub's x-access-token form.
        let header = Credential::new("ghp_abc").header();
        let encoded = header.trim_start_matches("Authorization: Basic ");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64");
        assert_eq!(decoded, b"x-access-token:ghp_abc");
    }
}
