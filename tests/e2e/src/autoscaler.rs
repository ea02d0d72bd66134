//! The autoscaler as users run it: the `autoscaler run` process (API, manager, worker and webhooks in
//! one), talked to over its HTTP API.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

use crate::database::Database;
use crate::process::{Process, binary, free_port};

pub const API_TOKEN: &str = "e2e-api-token-0123456789";
pub const ENGINE_TOKEN: &str = "e2e-engine-token-0123456789";
/// The Argo CD test server's token; the subscriptions name it as `{"env": "AUTOSCALER_TEAM_DEFAULT_SECRET_ARGOCD_TOKEN"}`.
pub const ARGOCD_TOKEN: &str = "e2e-argocd-token-0123456789";

/// How the test tunes the service: every setting is a documented environment variable.
pub struct AutoscalerSettings<'a> {
    pub database_url: &'a str,
    pub api_token: &'a str,
    pub engine_token: &'a str,
    /// Environment variables the cluster spec's secret references name (`{"env": ...}`).
    pub secrets: &'a [(&'a str, &'a str)],
}

pub struct Autoscaler {
    pub url: String,
    token: String,
    http: reqwest::Client,
    _process: Process,
}

/// A decision as `GET /api/v1/clusters/{name}/decisions` shows it (the fields the loop reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Decision {
    pub id: i64,
    pub status: String,
    pub rule: String,
    pub from_scale: Option<i32>,
    pub to_scale: Option<i32>,
    pub reason: Option<String>,
    pub write_back: Option<Value>,
    pub steps: Value,
    /// When the rule fired (RFC 3339).
    pub created_at: Option<String>,
}

impl Decision {
    /// Whether it ended: nothing more will happen to it.
    pub fn finished(&self) -> bool {
        matches!(
            self.status.as_str(),
            "applied" | "vetoed" | "skipped" | "failed" | "rejected" | "superseded"
        )
    }

    pub fn scales_up(&self) -> bool {
        matches!((self.from_scale, self.to_scale), (Some(from), Some(to)) if to > from)
    }

    pub fn scales_down(&self) -> bool {
        matches!((self.from_scale, self.to_scale), (Some(from), Some(to)) if to < from)
    }
}

impl Autoscaler {
    pub async fn start(dir: &Path, settings: &AutoscalerSettings<'_>) -> anyhow::Result<Self> {
        let port = free_port()?;
        let url = format!("http://127.0.0.1:{port}");
        let work = dir.join("autoscaler-work");
        std::fs::create_dir_all(&work)?;
        let mut command = Command::new(binary("autoscaler")?);
        command
            .arg("run")
            .env("DATABASE_URL", settings.database_url)
            .env("AUTOSCALER_LISTEN", format!("127.0.0.1:{port}"))
            .env("AUTOSCALER_PUBLIC_URL", &url)
            .env("AUTOSCALER_API_TOKENS", settings.api_token)
            .env(
                "AUTOSCALER_OUTBOUND_ALLOW",
                test_support::OUTBOUND_ALLOW_LOCAL,
            )
            .env("AUTOSCALER_ENGINE_TOKENS", settings.engine_token)
            .env(
                "AUTOSCALER_GITHUB_WEBHOOK_SECRET",
                crate::review::WEBHOOK_SECRET,
            )
            .env("AUTOSCALER_WORK_DIR", &work)
            // Faster than production so that the loop runs in minutes: the shortest scrape interval
            // the service accepts, quick Argo CD polls, and instances counted gone after 10 s of silence.
            .env("AUTOSCALER_SCRAPE_INTERVAL", "5s")
            .env("AUTOSCALER_PROMETHEUS_TIMEOUT", "2s")
            .env("AUTOSCALER_ARGOCD_POLL_INTERVAL", "500ms")
            .env("AUTOSCALER_WORKER_BACKOFF", "1s")
            .env("AUTOSCALER_ENGINE_HEARTBEAT_TIMEOUT", "10s")
            .env("RUST_LOG", "info");
        for (name, value) in settings.secrets {
            command.env(name, value);
        }
        let process = Process::spawn("autoscaler", command, dir)?;
        let autoscaler = Self {
            url,
            token: settings.api_token.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            _process: process,
        };
        let ready = format!("{}/readyz", autoscaler.url);
        let http = autoscaler.http.clone();
        crate::wait::until_ok("the autoscaler ready", Duration::from_secs(60), || {
            let (http, ready) = (http.clone(), ready.clone());
            async move {
                http.get(&ready).send().await?.error_for_status()?;
                Ok(())
            }
        })
        .await?;
        Ok(autoscaler)
    }

    /// The stack's autoscaler: its tokens, the Argo CD and GitHub tokens as the secrets the subscriptions
    /// name, and `database` (which it creates).
    pub async fn start_for_stack(dir: &Path, database: &Database) -> anyhow::Result<Self> {
        Self::start(
            dir,
            &AutoscalerSettings {
                database_url: &database.url(),
                api_token: API_TOKEN,
                engine_token: ENGINE_TOKEN,
                secrets: &[
                    ("AUTOSCALER_TEAM_DEFAULT_SECRET_ARGOCD_TOKEN", ARGOCD_TOKEN),
                    (
                        "AUTOSCALER_TEAM_DEFAULT_SECRET_GITHUB_TOKEN",
                        crate::review::GITHUB_TOKEN,
                    ),
                ],
            },
        )
        .await
    }

    /// `POST /api/v1/clusters`: answers the error body when the service refuses the spec.
    pub async fn subscribe(&self, spec: &Value) -> anyhow::Result<()> {
        let response = self
            .http
            .post(format!("{}/api/v1/clusters", self.url))
            .bearer_auth(&self.token)
            .json(spec)
            .send()
            .await?;
        let status = response.status();
        anyhow::ensure!(
            status.is_success(),
            "subscribing was refused with {status}: {}",
            response.text().await.unwrap_or_default()
        );
        Ok(())
    }

    /// The cluster's decisions, oldest first.
    pub async fn decisions(&self, cluster: &str) -> anyhow::Result<Vec<Decision>> {
        #[derive(Deserialize)]
        struct Page {
            items: Vec<Decision>,
        }
        let page: Page = self
            .http
            .get(format!(
                "{}/api/v1/clusters/{cluster}/decisions?limit=100",
                self.url
            ))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()
            .context("listing decisions")?
            .json()
            .await?;
        let mut items = page.items;
        items.sort_by_key(|d| d.id);
        Ok(items)
    }
}
