//! Harness for the engine's process-level tests: the engine binary as a child process with a
//! generated config, JSON logs parsed for its listening addresses, and signals.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the harness"
)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use test_support::wait;

pub const DEADLINE: Duration = Duration::from_secs(90);
pub const POLL: Duration = Duration::from_millis(50);

pub struct EngineOpts {
    pub bootstrap: String,
    pub es_url: String,
    pub topic: String,
    pub group: String,
    pub extra_yaml: String,
    pub env: Vec<(String, String)>,
}

impl EngineOpts {
    pub fn new(bootstrap: &str, es_url: &str, topic: &str, group: &str) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            es_url: es_url.into(),
            topic: topic.into(),
            group: group.into(),
            extra_yaml: String::new(),
            env: Vec::new(),
        }
    }

    fn yaml(&self) -> String {
        format!(
            "pipeline: {{name: test}}
kafka:
  brokers: '{}'
  topics: [{}]
  group_id: {}
  commit_interval: 200ms
  session_timeout: 6s
elasticsearch:
  urls: ['{}']
  request_timeout: 5s
sink:
  linger: 20ms
  retry: {{initial_backoff: 20ms, max_backoff: 500ms}}
index:
  pattern: 'logs-{{service}}-%Y.%m.%d'
control:
  listen: 127.0.0.1:0
  token: secret
  drain_deadline: 3s
metrics:
  listen: 127.0.0.1:0
log: {{format: json}}
{}",
            self.bootstrap, self.topic, self.group, self.es_url, self.extra_yaml
        )
    }
}

#[derive(Default)]
struct Seen {
    metrics: Option<String>,
    control: Option<String>,
    lines: Vec<String>,
}

pub struct Engine {
    pub child: Child,
    seen: Arc<Mutex<Seen>>,
    _dir: tempfile::TempDir,
}

impl Engine {
    pub fn start(opts: &EngineOpts) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path: PathBuf = dir.path().join("engine.yaml");
        std::fs::write(&path, opts.yaml()).expect("write config");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipeline-engine"));
        cmd.arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn engine");
        let stderr = child.stderr.take().expect("stderr");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut g = s.lock().expect("log lock");
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["fields"]["message"] == "listening"
                {
                    g.metrics = v["fields"]["metrics_addr"].as_str().map(String::from);
                    g.control = v["fields"]["control_addr"].as_str().map(String::from);
                }
                g.lines.push(line);
            }
        });
        let e = Self {
            child,
            seen,
            _dir: dir,
        };
        wait::until_blocking("engine listening", DEADLINE, POLL, || {
            e.seen.lock().expect("lock").control.clone()
        });
        e
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn control_url(&self) -> String {
        format!(
            "http://{}",
            self.seen
                .lock()
                .expect("lock")
                .control
                .clone()
                .expect("bound")
        )
    }

    pub fn metrics_url(&self) -> String {
        format!(
            "http://{}/metrics",
            self.seen
                .lock()
                .expect("lock")
                .metrics
                .clone()
                .expect("bound")
        )
    }

    pub fn logs(&self) -> String {
        self.seen.lock().expect("lock").lines.join("\n")
    }

    pub fn sigkill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    pub fn sigterm(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM");
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<i32> {
        wait::until_blocking("engine exit", deadline, POLL, || {
            self.child.try_wait().expect("try_wait")
        })
        .code()
    }

    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(self.metrics_url())
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    pub async fn status(&self) -> serde_json::Value {
        reqwest::get(format!("{}/status", self.control_url()))
            .await
            .expect("GET /status")
            .json()
            .await
            .expect("status json")
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Value of a metric line starting with `prefix` (first match), if present.
pub fn metric(text: &str, name: &str, label_contains: &str) -> Option<f64> {
    text.lines()
        .filter(|l| {
            l.starts_with(name) && l[name.len()..].starts_with('{') && l.contains(label_contains)
        })
        .find_map(|l| l.rsplit(' ').next().and_then(|v| v.parse().ok()))
}

/// A valid log line for record `i` with a deterministic service.
pub fn log_line(i: usize) -> Vec<u8> {
    format!(
        r#"{{"ts":"2024-05-01T12:00:00Z","level":"info","service":"svc{}","host":"h1","trace_id":"{:016x}","status":200,"latency_ms":{},"msg":"request {} handled"}}"#,
        i % 3,
        i,
        i % 1000,
        i
    )
    .into_bytes()
}

/// Ids the engine derives for records produced round-robin over `partitions` (offsets from 0).
pub fn expected_ids(
    topic: &str,
    partitions: i32,
    counts: &[usize],
) -> std::collections::HashSet<String> {
    let mut ids = std::collections::HashSet::new();
    for p in 0..partitions {
        for o in 0..counts[p as usize] {
            ids.insert(format!("{topic}-{p}-{o}"));
        }
    }
    ids
}

/// Produces `n` valid records round-robin over the partitions; returns per-partition counts.
pub fn produce_valid(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    start: usize,
    n: usize,
) -> Vec<usize> {
    let lines: Vec<(i32, Vec<u8>)> = (start..start + n)
        .map(|i| ((i % partitions as usize) as i32, log_line(i)))
        .collect();
    test_support::kafka::produce(
        bootstrap,
        topic,
        lines.iter().map(|(p, l)| (*p, l.as_slice())),
    );
    let mut counts = vec![0; partitions as usize];
    for (p, _) in &lines {
        counts[*p as usize] += 1;
    }
    counts
}
