use std::sync::Arc;

use autoscaler::{
    api::{self, AppState},
    cluster::ValidationContext,
    manager::Evaluator,
    metrics::Metrics,
    storage::Storage,
    tenancy::{TokenStore, sha256_hex},
};
use serde_json::{Value, json};

/// A plain token: an admin of the default team, who sees every team.
pub const TOKEN: &str = "test-token-0123456789abcdef";
/// The teams of the token file, and the roles each has a token of.
pub const TEAMS: [&str; 2] = ["team-a", "team-b"];
pub const ROLES: [&str; 3] = ["viewer", "editor", "admin"];

/// The token of `team` with `role` (`viewer`, `editor`, `admin` or `engine`) in the harness's token file.
pub fn team_token(team: &str, role: &str) -> String {
    format!("{team}-{role}-token-0123456789abcdef")
}

/// A token file with a token of every role for each of the teams, by SHA-256.
pub fn token_file(dir: &std::path::Path) -> std::path::PathBuf {
    let mut text = String::from("tokens:\n");
    for team in TEAMS {
        for role in ROLES.iter().chain(&["engine"]) {
            text.push_str(&format!(
                "  - name: {team}-{role}\n    team: {team}\n    role: {role}\n    sha256: {}\n",
                sha256_hex(&team_token(team, role))
            ));
        }
    }
    let path = dir.join("tokens.yaml");
    std::fs::write(&path, text).expect("write the token file");
    path
}
pub const BODY_LIMIT: usize = 16 * 1024;

pub use crate::database::TestDatabase;

pub struct TestApp {
    pub address: String,
    pub storage: Storage,
    pub client: reqwest::Client,
    pub metrics: Arc<Metrics>,
    _database: TestDatabase,
    _tokens: tempfile::TempDir,
}

impl TestApp {
    /// A server whose specs may name the tests' loopback servers and local Git remotes.
    pub async fn spawn() -> Self {
        Self::spawn_with_body_limit(BODY_LIMIT).await
    }

    /// As [`TestApp::spawn`], with bodies up to `max_body_bytes` (the service's default is 64 KiB).
    pub async fn spawn_with_body_limit(max_body_bytes: usize) -> Self {
        let validation = ValidationContext {
            outbound: Arc::new(
                test_support::OUTBOUND_ALLOW_LOCAL
                    .parse()
                    .expect("the tests' allow-list"),
            ),
            ..ValidationContext::default()
        };
        Self::start(validation, max_body_bytes).await
    }

    async fn start(validation: ValidationContext, max_body_bytes: usize) -> Self {
        let database = TestDatabase::new();
        let storage = Storage::connect(&database.url)
            .await
            .expect("connect (creating the database)");
        storage.migrate().await.expect("migrate");
        let tokens = tempfile::tempdir().expect("a directory for the token file");
        let metrics = Arc::new(Metrics::default());
        let state = AppState {
            storage: storage.clone(),
            tokens: Arc::new(
                TokenStore::new(&[TOKEN.to_owned()], &[], Some(token_file(tokens.path())))
                    .expect("the token file"),
            ),
            validation,
            metrics: metrics.clone(),
            max_body_bytes,
            evaluator: Arc::new(Evaluator {
                storage: storage.clone(),
                scrape_interval_seconds: 30,
            }),
            public_url: None,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let address = format!("http://{}", listener.local_addr().expect("local address"));
        tokio::spawn(async move {
            axum::serve(listener, api::router(state))
                .await
                .expect("server runs");
        });
        Self {
            address,
            storage,
            client: reqwest::Client::new(),
            metrics,
            _database: database,
            _tokens: tokens,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A request with the valid token.
    pub fn authed(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(TOKEN)
    }

    /// A request with `token`.
    pub fn as_token(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    /// The count of `autoscaler_api_refusals_total` for `reason`.
    pub fn refusals(&self, reason: &str) -> u64 {
        let text = self.metrics.encode();
        let wanted = format!("autoscaler_api_refusals_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(wanted.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.authed(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.authed(reqwest::Method::PUT, path)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.authed(reqwest::Method::GET, path)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn subscribe(&self, spec: &Value) -> Value {
        let response = self.post_json("/api/v1/clusters", spec).await;
        assert_eq!(response.status(), 201, "subscribe {spec}");
        response.json().await.expect("json body")
    }

    pub async fn cluster_count(&self) -> usize {
        self.storage
            .list_clusters(None, None, 10_000)
            .await
            .expect("list clusters")
            .len()
    }
}

/// A valid spec with only the essentials.
pub fn spec(name: &str) -> Value {
    json!({
        "name": name,
        "target": {"kind": "engine"},
        "metrics": {"prometheus_url": "http://prometheus:9090", "selector": {"pipeline": name}},
        "git": {
            "repository": "https://git.example.com/platform/gitops.git",
            "path": format!("pipelines/{name}/values.yaml"),
            "key": "engine.replicas"
        },
        "argocd": {"server": "https://argocd.example.com", "application": name},
        "policy": {"max_scale": 8}
    })
}

/// Reads a JSON error body and checks its shape: a code, a message, and the fields at fault.
pub async fn error_body(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type}"
    );
    let body: Value = response.json().await.expect("json error body");
    assert!(body["error"].is_string(), "error code in {body}");
    assert!(body["message"].is_string(), "message in {body}");
    body
}

/// The fields named in an error body.
pub fn fields(body: &Value) -> Vec<String> {
    body["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .filter_map(|f| f["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
