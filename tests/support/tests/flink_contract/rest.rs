//! The REST calls the contract checks make, against whichever Flink they are given.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::time::Instant;

/// A Flink to check: its REST endpoint, an uploaded jar, and the program arguments that make the
/// jar's program name its job `name`.
pub struct Target {
    pub label: &'static str,
    pub url: String,
    pub http: reqwest::Client,
    pub jar: String,
    pub args: Vec<String>,
    pub name: String,
}

pub const UNKNOWN_JOB: &str = "ffffffffffffffffffffffffffffffff";
/// Generous: real Flink on a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(90);
pub const POLL: Duration = Duration::from_millis(100);

impl Target {
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("request reaches Flink");
        let status = response.status();
        let text = response.text().await.expect("a body");
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {text}", self.label))
        };
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.http.get(self.at(path))).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(self.http.post(self.at(path)).json(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(self.http.put(self.at(path)).json(body)).await
    }

    /// `POST /jars/{jar}/run` with the program's arguments and `extra` fields.
    pub async fn run(&self, parallelism: u32, extra: Value) -> (StatusCode, Value) {
        let mut body = json!({"parallelism": parallelism, "programArgsList": self.args});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        self.post(&format!("/jars/{}/run", self.jar), &body).await
    }

    /// Runs a job and waits until every subtask runs; returns its id.
    pub async fn start(&self, parallelism: u32, extra: Value) -> String {
        let (status, body) = self.run(parallelism, extra).await;
        assert_eq!(status, StatusCode::OK, "{}: run: {body}", self.label);
        let jid = body["jobid"].as_str().expect("a job id").to_owned();
        self.wait_running(&jid, parallelism).await;
        jid
    }

    /// Polls `GET /jobs/{jid}` until every vertex runs at `parallelism` with every subtask RUNNING;
    /// returns every answer read on the way (the last one running).
    pub async fn wait_running(&self, jid: &str, parallelism: u32) -> Vec<Value> {
        let deadline = Instant::now() + DEADLINE;
        let mut seen = Vec::new();
        loop {
            let (status, details) = self.get(&format!("/jobs/{jid}")).await;
            assert_eq!(status, StatusCode::OK, "{}: {details}", self.label);
            let done = all_running(&details, parallelism);
            seen.push(details);
            if done {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "{}: job {jid} never ran at {parallelism}: {}",
                self.label,
                seen.last().unwrap_or(&Value::Null)
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls `GET /jobs/{jid}/status` until it says `state`.
    pub async fn wait_status(&self, jid: &str, state: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let (_, body) = self.get(&format!("/jobs/{jid}/status")).await;
            if body["status"] == state {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: job {jid} never {state}: {body}",
                self.label
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// `PATCH /jobs/{jid}?mode=cancel`, and waits until CANCELED.
    pub async fn cancel(&self, jid: &str) {
        let (status, body) = self
            .send(
                self.http
                    .patch(self.at(&format!("/jobs/{jid}?mode=cancel"))),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "{}: cancel: {body}",
            self.label
        );
        self.wait_status(jid, "CANCELED").await;
    }

    /// Polls a savepoint operation until COMPLETED; returns the answer. Every IN_PROGRESS answer
    /// has `"operation": null`.
    pub async fn operation(&self, jid: &str, trigger: &str) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let (status, body) = self.get(&format!("/jobs/{jid}/savepoints/{trigger}")).await;
            assert_eq!(status, StatusCode::OK, "{}: {body}", self.label);
            if body["status"]["id"] == "COMPLETED" {
                return body;
            }
            assert_eq!(
                body,
                json!({"status": {"id": "IN_PROGRESS"}, "operation": null}),
                "{}",
                self.label
            );
            assert!(
                Instant::now() < deadline,
                "{}: operation never completed",
                self.label
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The `(id, state)` of every job of the overview named `name`.
    pub async fn jobs_named(&self, name: &str) -> Vec<(String, String)> {
        let (_, overview) = self.get("/jobs/overview").await;
        overview["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .filter(|j| j["name"] == name)
            .map(|j| {
                (
                    j["jid"].as_str().unwrap_or_default().to_owned(),
                    j["state"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

/// Every vertex at `parallelism`, its status RUNNING, and all its subtasks RUNNING.
pub fn all_running(details: &Value, parallelism: u32) -> bool {
    let vertices = details["vertices"].as_array().cloned().unwrap_or_default();
    details["state"] == "RUNNING"
        && !vertices.is_empty()
        && vertices.iter().all(|v| {
            v["parallelism"] == parallelism
                && v["status"] == "RUNNING"
                && v["tasks"]["RUNNING"] == parallelism
        })
}

/// The one error text of a handler's refusal (4xx): `errors[0]`, a Java exception.
pub fn handler_text(body: &Value) -> String {
    let errors = body["errors"].as_array().expect("an errors list");
    assert_eq!(errors.len(), 1, "{body}");
    errors[0].as_str().expect("text").to_owned()
}

/// The server-side exception of a 5xx: `["Internal server error.", "<Exception on server side:\n…"]`;
/// returns the second entry.
pub fn server_text(body: &Value) -> String {
    let errors = body["errors"].as_array().expect("an errors list");
    assert_eq!(errors.len(), 2, "{body}");
    assert_eq!(errors[0], "Internal server error.");
    let text = errors[1].as_str().expect("text");
    assert!(text.starts_with("<Exception on server side:\n"), "{text}");
    assert!(
        text.trim_end()
            .ends_with("End of exception on server side>"),
        "{text}"
    );
    text.to_owned()
}

/// A 32-hex trigger id, distinct per `n`.
pub fn trigger(n: u8) -> String {
    format!("{n:02x}7d1f0c3e5a2b4c6d8e9f0a1b2c3d4e")
}
