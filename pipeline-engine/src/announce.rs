//! Register/unregister/heartbeat announcements to the autoscaler's webhook. Best effort: a failing
//! webhook is logged and counted, never allowed to stop or slow the engine.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Register,
    Unregister,
    Heartbeat,
}

#[derive(Debug, Serialize)]
pub struct Announcement<'a> {
    pub cluster: &'a str,
    pub instance: &'a str,
    pub event: Event,
}

pub struct Announcer {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
    cluster: String,
    instance: String,
    metrics: Arc<Metrics>,
}

impl Announcer {
    pub fn new(
        url: String,
        token: Option<String>,
        cluster: String,
        instance: String,
        metrics: Arc<Metrics>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        Self {
            http,
            url,
            token,
            cluster,
            instance,
            metrics,
        }
    }

    pub async fn announce(&self, event: Event) {
        let body = Announcement {
            cluster: &self.cluster,
            instance: &self.instance,
            event,
        };
        let mut req = self.http.post(&self.url).json(&body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let result = req
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        if let Err(e) = result {
            self.metrics.announce_failures.inc();
            tracing::warn!(error = %e, event = ?event, url = %self.url, "announcement failed (ignored)");
        } else {
            tracing::debug!(event = ?event, "announced");
        }
    }
}
