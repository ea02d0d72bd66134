//! The HTTP side of `_bulk`: a client trait (so tests and benchmarks can stand in) and its reqwest
//! implementation with round-robin over the configured URLs.

use bytes::Bytes;
use futures::future::BoxFuture;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("connection: {0}")]
    Connection(String),
}

/// Sends one `_bulk` body and returns the HTTP status and response body.
pub trait BulkClient: Send + Sync + 'static {
    fn send(&self, body: Bytes) -> BoxFuture<'_, Result<(u16, Bytes), TransportError>>;
}

/// The real client: reqwest over the configured URLs, round-robin.
pub struct HttpBulkClient {
    http: reqwest::Client,
    urls: Vec<String>,
    next: std::sync::atomic::AtomicUsize,
    auth: Option<String>,
}

impl HttpBulkClient {
    pub fn new(es: &crate::config::EsConfig) -> Result<Self, reqwest::Error> {
        use base64::Engine as _;
        let http = reqwest::Client::builder()
            .timeout(es.request_timeout)
            .pool_max_idle_per_host(64)
            .build()?;
        let auth = match (&es.username, &es.password, &es.api_key) {
            (_, _, Some(key)) => Some(format!("ApiKey {key}")),
            (Some(u), p, None) => {
                let raw = format!("{u}:{}", p.as_deref().unwrap_or(""));
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                ))
            }
            _ => None,
        };
        let urls = es
            .urls
            .iter()
            .map(|u| {
                format!(
                    "{}/_bulk?filter_path={}",
                    u.trim_end_matches('/'),
                    crate::sink::bulk::FILTER_PATH
                )
            })
            .collect();
        Ok(Self {
            http,
            urls,
            next: Default::default(),
            auth,
        })
    }
}

impl BulkClient for HttpBulkClient {
    fn send(&self, body: Bytes) -> BoxFuture<'_, Result<(u16, Bytes), TransportError>> {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.urls.len();
        let mut req = self
            .http
            .post(&self.urls[i])
            .header("content-type", "application/x-ndjson")
            .body(body);
        if let Some(a) = &self.auth {
            req = req.header("authorization", a);
        }
        Box::pin(async move {
            let map = |e: reqwest::Error| {
                if e.is_timeout() {
                    TransportError::Timeout(e.to_string())
                } else {
                    TransportError::Connection(e.to_string())
                }
            };
            let resp = req.send().await.map_err(map)?;
            let status = resp.status().as_u16();
            let body = resp.bytes().await.map_err(map)?;
            Ok((status, body))
        })
    }
}
