//! Argo CD over its REST API: sync an application (or refresh it, when it syncs automatically) and follow
//! the operation until the revision carrying our commit is applied.

mod error;
mod model;

use std::{future::Future, time::Duration};

use serde_json::json;
use tokio::time::Instant;
use url::Url;

pub use error::ArgoCdError;
pub use model::Application;

/// How long to wait, and how often to look.
#[derive(Debug, Clone, Copy)]
pub struct FollowSettings {
    pub poll_interval: Duration,
    pub timeout: Duration,
}

impl Default for FollowSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(600),
        }
    }
}

/// What the application ended at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    /// The Git revision Argo CD applied; it contains our commit.
    pub revision: String,
    /// `sync` when we started the operation, `refresh` when the application synced itself.
    pub method: &'static str,
    pub phase: Option<String>,
    pub message: Option<String>,
    pub health: Option<String>,
}

/// One Argo CD server, with the token for it.
#[derive(Clone)]
pub struct ArgoCdClient {
    http: reqwest::Client,
    server: Url,
    token: Option<secrecy::SecretString>,
    project: Option<String>,
    settings: FollowSettings,
}

impl ArgoCdClient {
    pub fn new(
        http: reqwest::Client,
        server: Url,
        token: Option<secrecy::SecretString>,
        project: Option<String>,
        settings: FollowSettings,
    ) -> Self {
        Self {
            http,
            server,
            token,
            project,
            settings,
        }
    }

    /// Gets the application; `refresh` asks Argo CD to compare with Git first (a blocking call).
    pub async fn application(&self, name: &str, refresh: bool) -> Result<Application, ArgoCdError> {
        let mut url = self.url(&["api", "v1", "applications", name]);
        if refresh {
            url.query_pairs_mut().append_pair("refresh", "normal");
        }
        if let Some(project) = &self.project {
            url.query_pairs_mut().append_pair("project", project);
        }
        let request = self
            .http
            .get(url)
            // A refresh waits for the controller; the API documents 60 s or more.
            .timeout(Duration::from_secs(if refresh { 90 } else { 30 }));
        let body = self.send(name, request).await?;
        serde_json::from_slice(&body).map_err(|e| ArgoCdError::Malformed(e.to_string()))
    }

    /// Starts a sync to the application's target revision, tagged with `infos` for the notifications.
    pub async fn sync(&self, name: &str, infos: &[(&str, String)]) -> Result<(), ArgoCdError> {
        let infos: Vec<_> = infos
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        let mut body = json!({
            "revision": "",
            "prune": false,
            "dryRun": false,
            "strategy": {"hook": {"force": false}},
            "infos": infos,
        });
        if let Some(project) = &self.project {
            body["project"] = json!(project);
        }
        let request = self
            .http
            .post(self.url(&["api", "v1", "applications", name, "sync"]))
            .timeout(Duration::from_secs(30))
            .json(&body);
        self.send(name, request).await.map(|_| ())
    }

    /// Brings `commit` live: a sync (or, with `auto_sync`, a refresh), then polling until an operation
    /// applied a revision that `contains` reports as holding the commit. Another operation in progress
    /// is waited out, then the sync is tried again.
    pub async fn apply<F, Fut>(
        &self,
        name: &str,
        commit: &str,
        auto_sync: bool,
        infos: &[(&str, String)],
        contains: F,
    ) -> Result<Applied, ArgoCdError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = Instant::now() + self.settings.timeout;
        let before = self.application(name, false).await?;
        if let Some(applied) = applied(&before, &contains, "sync").await {
            return Ok(applied);
        }
        let stale = started_at(&before);
        let method = if auto_sync {
            self.application(name, true).await?;
            "refresh"
        } else {
            loop {
                match self.sync(name, infos).await {
                    Ok(()) => break "sync",
                    Err(ArgoCdError::InProgress) => {
                        tracing::info!(
                            application = name,
                            "another operation in progress; waiting"
                        );
                        let app = self.wait_until_idle(name, commit, deadline).await?;
                        if let Some(applied) = applied(&app, &contains, "sync").await {
                            return Ok(applied);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        loop {
            let app = self.application(name, false).await?;
            if let Some(applied) = applied(&app, &contains, method).await {
                return Ok(applied);
            }
            if let Some(state) = app.operation_state()
                && !app.operation_running()
                && state.is_completed()
                && state.phase.as_deref() != Some("Succeeded")
                && started_at(&app) != stale
            {
                return Err(ArgoCdError::OperationFailed {
                    phase: state.phase.clone().unwrap_or_default(),
                    message: state.message.clone().unwrap_or_default(),
                });
            }
            self.pause(commit, deadline).await?;
        }
    }

    /// Polls until no operation runs on the application.
    async fn wait_until_idle(
        &self,
        name: &str,
        commit: &str,
        deadline: Instant,
    ) -> Result<Application, ArgoCdError> {
        loop {
            self.pause(commit, deadline).await?;
            let app = self.application(name, false).await?;
            if !app.operation_running() {
                return Ok(app);
            }
        }
    }

    async fn pause(&self, commit: &str, deadline: Instant) -> Result<(), ArgoCdError> {
        if Instant::now() + self.settings.poll_interval > deadline {
            return Err(ArgoCdError::Timeout {
                revision: commit.to_owned(),
                waited_seconds: self.settings.timeout.as_secs(),
            });
        }
        tokio::time::sleep(self.settings.poll_interval).await;
        Ok(())
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.server.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn send(
        &self,
        name: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<bytes::Bytes, ArgoCdError> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(secrecy::ExposeSecret::expose_secret(token)),
            None => request,
        };
        let response = request
            .send()
            .await
            .map_err(|e| ArgoCdError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| ArgoCdError::Unavailable(e.without_url().to_string()))?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(ArgoCdError::from_response(name, status, &body))
        }
    }
}

fn started_at(app: &Application) -> Option<String> {
    app.operation_state()?.started_at.clone()
}

/// The application as applied, when no operation runs and what it applied holds our commit.
async fn applied<F, Fut>(app: &Application, contains: &F, method: &'static str) -> Option<Applied>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = bool>,
{
    if app.operation_running() {
        return None;
    }
    let state = app.operation_state();
    let by_operation = state
        .filter(|s| s.phase.as_deref() == Some("Succeeded"))
        .and_then(|s| s.applied_revision());
    // A commit that changes no manifest is compared as Synced without an operation.
    let by_comparison = match app.sync() {
        (Some("Synced"), revision) => revision,
        _ => None,
    };
    let mut revision = None;
    for candidate in [by_operation, by_comparison].into_iter().flatten() {
        if contains(candidate.to_owned()).await {
            revision = Some(candidate);
            break;
        }
    }
    let revision = revision?;
    Some(Applied {
        revision: revision.to_owned(),
        method,
        phase: state.and_then(|s| s.phase.clone()),
        message: state.and_then(|s| s.message.clone()),
        health: app.health().map(str::to_owned),
    })
}
