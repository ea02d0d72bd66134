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
    /// Where the autoscaler reaches this instance's control API to restart it at a new parallelism;
    /// every instance of a cluster is restarted, not only the one behind a Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_url: Option<&'a str>,
}

pub struct Announcer {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
    cluster: String,
    instance: String,
    control_url: Option<String>,
    metrics: Arc<Metrics>,
}

impl Announcer {
    pub fn new(
        url: String,
        token: Option<String>,
        cluster: String,
        instance: String,
        control_url: Option<String>,
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
            control_url,
            metrics,
        }
    }

    pub async fn announce(&self, event: Event) {
        let body = Announcement {
            cluster: &self.cluster,
            instance: &self.instance,
            event,
            control_url: self.control_url.as_deref(),
        };
        let mut req = self.http.post(&self.url).json(&body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let failure = match req.send().await {
            Ok(response) if response.status().is_success() => None,
            // The webhook says what it refused (e.g. a control_url its outbound policy does not allow).
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                let body: String = body.chars().take(300).collect();
                Some(format!("HTTP {status}: {body}"))
            }
            Err(e) => Some(e.to_string()),
        };
        if let Some(error) = failure {
            self.metrics.announce_failures.inc();
            tracing::warn!(%error, event = ?event, url = %self.url, "announcement failed (ignored)");
        } else {
            tracing::debug!(event = ?event, "announced");
        }
    }
}

/// The control URL to announce: `control.advertise_url`, else the bound control address, unless that
/// address is unspecified (`0.0.0.0`, `::`), which names no host another machine could reach.
pub fn control_url(advertise: Option<&str>, bound: std::net::SocketAddr) -> Option<String> {
    match advertise {
        Some(url) => Some(url.to_owned()),
        None if bound.ip().is_unspecified() => None,
        None => Some(format!("http://{bound}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_announced_control_url_is_the_advertised_one_or_a_reachable_listen_address() {
        let bound: std::net::SocketAddr = "127.0.0.1:9465".parse().expect("address");
        assert_eq!(
            control_url(None, bound).as_deref(),
            Some("http://127.0.0.1:9465")
        );
        let v6: std::net::SocketAddr = "[::1]:9465".parse().expect("address");
        assert_eq!(control_url(None, v6).as_deref(), Some("http://[::1]:9465"));
        let any: std::net::SocketAddr = "0.0.0.0:9465".parse().expect("address");
        assert_eq!(control_url(None, any), None);
        assert_eq!(
            control_url(Some("http://10.1.2.3:9465"), any).as_deref(),
            Some("http://10.1.2.3:9465")
        );
    }
}
