//! The subscription API over HTTP, answers read into the client's own view of them. Every answer keeps
//! the JSON the API sent, so `-o json|yaml` shows exactly that.

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use super::settings::Settings;
use crate::api::ClusterView;
use crate::simulate::history::History;
use crate::storage::DecisionStatus;

/// An answer: the JSON as sent, and what the client reads from it.
#[derive(Debug, Clone)]
pub struct Fetched<T> {
    pub raw: Value,
    pub typed: T,
}

/// An error answer of the API: its code, its sentence, and the fields at fault.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiErrorBody {
    pub error: String,
    pub message: String,
    #[serde(default)]
    pub fields: Vec<FieldAtFault>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FieldAtFault {
    pub field: String,
    pub problem: String,
}

/// A decision as the CLI shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Decision {
    pub id: i64,
    pub cluster: String,
    pub status: DecisionStatus,
    pub rule: String,
    pub from_scale: Option<i32>,
    pub to_scale: Option<i32>,
    pub reason: Option<String>,
    #[serde(default)]
    pub steps: Vec<Step>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Identical skipped decisions this one stands for (absent from servers before the count existed).
    #[serde(default = "one")]
    pub repeats: i32,
    pub first_at: Option<DateTime<Utc>>,
}

fn one() -> i32 {
    1
}

/// One thing the worker did for a decision.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Step {
    pub at: DateTime<Utc>,
    pub step: String,
    #[serde(default)]
    pub detail: Value,
}

/// A dry run's answer as the CLI shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Evaluation {
    pub evaluated_at: DateTime<Utc>,
    pub verdicts: Vec<Verdict>,
    pub fired: Option<Verdict>,
    pub blocked_by: Option<String>,
    pub act: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Verdict {
    pub rule: String,
    pub direction: String,
    pub outcome: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
struct Page<T> {
    items: Vec<T>,
    next_after: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{} {}: {}", status.as_u16(), body.error, body.message)]
    Api {
        status: StatusCode,
        body: ApiErrorBody,
    },
    #[error("{method} {url}: {source}")]
    Transport {
        method: Method,
        url: Url,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}, not the API's JSON: {snippet}")]
    NotTheApi {
        url: Url,
        status: StatusCode,
        snippet: String,
    },
    #[error("{url}: the answer does not have the expected shape: {problem}")]
    Shape { url: Url, problem: String },
    #[error("{0:?} cannot be part of a URL path")]
    BadName(String),
}

/// A client of one server with one token.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: String,
}

impl Client {
    pub fn new(settings: &Settings) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("autoscaler-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|source| ClientError::Transport {
                method: Method::GET,
                url: settings.server.clone(),
                source,
            })?;
        Ok(Self {
            http,
            base: settings.server.clone(),
            token: settings.token.clone(),
        })
    }

    /// `segments` are appended as path segments, so a name cannot reach another endpoint.
    fn url(&self, segments: &[&str]) -> Result<Url, ClientError> {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| ClientError::BadName(self.base.to_string()))?;
            path.pop_if_empty().extend(["api", "v1"]);
            for segment in segments {
                if segment.is_empty() || *segment == "." || *segment == ".." {
                    return Err(ClientError::BadName((*segment).to_owned()));
                }
                path.push(segment);
            }
        }
        Ok(url)
    }

    /// Sends a request and returns the status and the JSON body (`Null` for an empty one).
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), ClientError> {
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let transport = |source| ClientError::Transport {
            method: method.clone(),
            url: url.clone(),
            source,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        if bytes.is_empty() {
            return Ok((status, Value::Null));
        }
        let value = serde_json::from_slice(&bytes).map_err(|_| ClientError::NotTheApi {
            url: url.clone(),
            status,
            snippet: String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned(),
        })?;
        Ok((status, value))
    }

    /// A request whose success is a JSON body of type `T`; an error answer becomes [`ClientError::Api`].
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Fetched<T>), ClientError> {
        let (status, raw) = self.send(method, url.clone(), body).await?;
        if !status.is_success() {
            return Err(api_error(url, status, raw));
        }
        let typed = T::deserialize(&raw).map_err(|e| ClientError::Shape {
            url,
            problem: e.to_string(),
        })?;
        Ok((status, Fetched { raw, typed }))
    }

    /// Replaces the cluster's spec, or subscribes it if there is no such cluster. Returns the stored
    /// cluster and whether it was created.
    pub async fn apply(
        &self,
        name: &str,
        spec: &Value,
    ) -> Result<(Fetched<ClusterView>, bool), ClientError> {
        let one = self.url(&["clusters", name])?;
        match self.call(Method::PUT, one.clone(), Some(spec)).await {
            Ok((_, cluster)) => Ok((cluster, false)),
            Err(ClientError::Api { status, .. }) if status == StatusCode::NOT_FOUND => {
                match self
                    .call(Method::POST, self.url(&["clusters"])?, Some(spec))
                    .await
                {
                    Ok((_, cluster)) => Ok((cluster, true)),
                    // Someone subscribed it in between: replace theirs, as a second apply would.
                    Err(ClientError::Api { status, .. }) if status == StatusCode::CONFLICT => {
                        let (_, cluster) = self.call(Method::PUT, one, Some(spec)).await?;
                        Ok((cluster, false))
                    }
                    Err(other) => Err(other),
                }
            }
            Err(other) => Err(other),
        }
    }

    /// Replaces a subscribed cluster's spec (never subscribes: a cluster gone in between stays gone).
    pub async fn replace(
        &self,
        name: &str,
        spec: &Value,
    ) -> Result<Fetched<ClusterView>, ClientError> {
        let url = self.url(&["clusters", name])?;
        Ok(self.call(Method::PUT, url, Some(spec)).await?.1)
    }

    /// The cluster's recorded samples since `since` (an RFC 3339 instant or a duration such as `24h`).
    pub async fn samples(&self, name: &str, since: &str) -> Result<Fetched<History>, ClientError> {
        let mut url = self.url(&["clusters", name, "samples"])?;
        url.query_pairs_mut().append_pair("since", since);
        Ok(self.call(Method::GET, url, None).await?.1)
    }

    pub async fn get(&self, name: &str) -> Result<Fetched<ClusterView>, ClientError> {
        let url = self.url(&["clusters", name])?;
        Ok(self.call(Method::GET, url, None).await?.1)
    }

    /// Every cluster, following the pages to the end.
    pub async fn list(&self) -> Result<Vec<Fetched<ClusterView>>, ClientError> {
        let mut clusters = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut url = self.url(&["clusters"])?;
            url.query_pairs_mut().append_pair("limit", "500");
            if let Some(after) = &after {
                url.query_pairs_mut().append_pair("after", after);
            }
            let (_, page) = self
                .call::<Page<Value>>(Method::GET, url.clone(), None)
                .await?;
            for raw in page.typed.items {
                let typed = ClusterView::deserialize(&raw).map_err(|e| ClientError::Shape {
                    url: url.clone(),
                    problem: e.to_string(),
                })?;
                clusters.push(Fetched { raw, typed });
            }
            match page.typed.next_after {
                Some(next) => after = Some(next),
                None => return Ok(clusters),
            }
        }
    }

    pub async fn delete(&self, name: &str) -> Result<(), ClientError> {
        let url = self.url(&["clusters", name])?;
        let (status, raw) = self.send(Method::DELETE, url.clone(), None).await?;
        if !status.is_success() {
            return Err(api_error(url, status, raw));
        }
        Ok(())
    }

    pub async fn set_paused(
        &self,
        name: &str,
        paused: bool,
    ) -> Result<Fetched<ClusterView>, ClientError> {
        let action = if paused { "pause" } else { "resume" };
        let url = self.url(&["clusters", name, action])?;
        Ok(self.call(Method::POST, url, None).await?.1)
    }

    pub async fn evaluate(&self, name: &str) -> Result<Fetched<Evaluation>, ClientError> {
        let url = self.url(&["clusters", name, "evaluate"])?;
        Ok(self.call(Method::POST, url, None).await?.1)
    }

    /// The newest `limit` decisions of a cluster.
    pub async fn decisions(
        &self,
        name: &str,
        limit: u32,
    ) -> Result<Vec<Fetched<Decision>>, ClientError> {
        let mut url = self.url(&["clusters", name, "decisions"])?;
        url.query_pairs_mut()
            .append_pair("limit", &limit.to_string());
        #[derive(Deserialize)]
        struct DecisionPage {
            items: Vec<Value>,
        }
        let (_, page) = self
            .call::<DecisionPage>(Method::GET, url.clone(), None)
            .await?;
        page.typed
            .items
            .into_iter()
            .map(|raw| {
                let typed = Decision::deserialize(&raw).map_err(|e| ClientError::Shape {
                    url: url.clone(),
                    problem: e.to_string(),
                })?;
                Ok(Fetched { raw, typed })
            })
            .collect()
    }

    pub async fn decision(&self, id: i64) -> Result<Fetched<Decision>, ClientError> {
        let url = self.url(&["decisions", &id.to_string()])?;
        Ok(self.call(Method::GET, url, None).await?.1)
    }
}

/// An error answer: the API's body when it is one, else what came back.
fn api_error(url: Url, status: StatusCode, raw: Value) -> ClientError {
    match ApiErrorBody::deserialize(&raw) {
        Ok(body) => ClientError::Api { status, body },
        Err(_) => ClientError::NotTheApi {
            url,
            status,
            snippet: raw.to_string().chars().take(200).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(server: &str) -> Client {
        Client::new(&Settings {
            server: Url::parse(server).expect("a value"),
            token: "t".repeat(20),
        })
        .expect("a value")
    }

    #[test]
    fn names_are_path_segments_never_paths() {
        let client = client("http://autoscaler.example:8080/");
        let url = client.url(&["clusters", "a/b?c#d"]).expect("a value");
        assert_eq!(
            url.as_str(),
            "http://autoscaler.example:8080/api/v1/clusters/a%2Fb%3Fc%23d"
        );
        assert!(client.url(&["clusters", ".."]).is_err());
        assert!(client.url(&["clusters", ""]).is_err());
    }

    #[test]
    fn a_server_under_a_path_prefix_keeps_it() {
        let client = client("https://ops.example/autoscaler");
        let url = client.url(&["decisions", "7"]).expect("a value");
        assert_eq!(
            url.as_str(),
            "https://ops.example/autoscaler/api/v1/decisions/7"
        );
    }
}
