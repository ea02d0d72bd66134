//! The one real `InstantQuery`: Prometheus' HTTP API through prometheus-http-query.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use prometheus_http_query::{Client, response::Data};
use url::Url;

use super::InstantQuery;
use crate::outbound::{OutboundPolicy, Refusal, guard};

/// One series of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: HashMap<String, String>,
    pub value: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("Prometheus refused the query: {0}")]
    Refused(String),
    #[error("Prometheus could not be reached or answered badly: {0}")]
    Transport(String),
    #[error("the query returned a {0}, not an instant vector or scalar")]
    UnexpectedShape(&'static str),
    #[error("the Prometheus URL is refused by the outbound policy: {0}")]
    Outbound(#[source] Refusal),
}

/// Clients per Prometheus server, sharing one connection pool.
pub struct PrometheusClient {
    http: reqwest::Client,
    outbound: Arc<OutboundPolicy>,
    timeout: Duration,
    clients: Mutex<HashMap<Url, Client>>,
}

impl PrometheusClient {
    /// Connections obey `outbound`: a Prometheus URL cannot lead to a refused address.
    pub fn new(timeout: Duration, outbound: &Arc<OutboundPolicy>) -> Result<Self, reqwest::Error> {
        let http = guard::client_builder(outbound).timeout(timeout).build()?;
        Ok(Self {
            http,
            outbound: Arc::clone(outbound),
            timeout,
            clients: Mutex::new(HashMap::new()),
        })
    }

    fn client(&self, server: &Url) -> Result<Client, QueryError> {
        // A std Mutex: held only to look up or insert, never across an await.
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = clients.get(server) {
            return Ok(client.clone());
        }
        // Names are checked as they resolve; an address in the URL never goes through the resolver.
        self.outbound
            .check_url(server)
            .map_err(QueryError::Outbound)?;
        let client = Client::from(self.http.clone(), server.as_str())
            .map_err(|e| QueryError::Transport(e.to_string()))?;
        clients.insert(server.clone(), client.clone());
        Ok(client)
    }
}

impl InstantQuery for PrometheusClient {
    async fn query(
        &self,
        server: &Url,
        promql: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<Series>, QueryError> {
        let client = self.client(server)?;
        let timeout_ms = i64::try_from(self.timeout.as_millis()).unwrap_or(i64::MAX);
        let result = client
            .query(promql)
            .at(at.timestamp())
            .timeout(timeout_ms)
            .get()
            .await
            .map_err(|e| match e {
                prometheus_http_query::Error::Prometheus(e) => QueryError::Refused(e.to_string()),
                other => QueryError::Transport(other.to_string()),
            })?;
        match result.data() {
            Data::Vector(vector) => Ok(vector
                .iter()
                .map(|v| Series {
                    labels: v.metric().clone(),
                    value: v.sample().value(),
                })
                .collect()),
            Data::Scalar(sample) => Ok(vec![Series {
                labels: HashMap::new(),
                value: sample.value(),
            }]),
            Data::Matrix(_) => Err(QueryError::UnexpectedShape("range vector")),
        }
    }
}
