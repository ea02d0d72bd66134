//! The real Prometheus server (Debian's `prometheus` package) on a free loopback port, scraping the
//! targets a test names, and the PromQL helpers tests read it with.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use crate::process::{Process, free_port};

/// One `scrape_configs` entry.
#[derive(Debug, Clone)]
pub struct ScrapeJob {
    pub name: String,
    /// `host:port` of each target.
    pub targets: Vec<String>,
    /// Instead of `targets`: a file of targets Prometheus re-reads when it changes (file-based service
    /// discovery), for targets that come and go. Write it with [`write_targets_file`].
    pub targets_file: Option<std::path::PathBuf>,
    /// Labels Prometheus adds to every series of these targets (e.g. which cluster they are).
    pub labels: Vec<(String, String)>,
    pub interval: Duration,
}

pub struct Prometheus {
    pub url: String,
    http: reqwest::Client,
    _process: Process,
}

impl Prometheus {
    /// Starts Prometheus with its config and data under `dir`, logging to `dir/prometheus.log`, and
    /// waits until it is ready.
    pub async fn start(dir: &Path, jobs: &[ScrapeJob]) -> anyhow::Result<Self> {
        let port = free_port()?;
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, config_text(jobs)?).context("writing prometheus.yml")?;
        let mut command = Command::new("prometheus");
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        let process = Process::spawn("prometheus", command, dir)
            .context("starting prometheus (scripts/setup.sh installs it)")?;
        let prometheus = Self {
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            _process: process,
        };
        let ready = format!("{}/-/ready", prometheus.url);
        crate::wait::until_ok("Prometheus ready", Duration::from_secs(30), || async {
            let response = prometheus.http.get(&ready).send().await?;
            anyhow::ensure!(response.status().is_success(), "{}", response.status());
            Ok(())
        })
        .await?;
        Ok(prometheus)
    }

    /// Every series an instant query returns, with its labels.
    pub async fn series(&self, query: &str) -> anyhow::Result<Vec<(HashMap<String, String>, f64)>> {
        let url =
            url::Url::parse_with_params(&format!("{}/api/v1/query", self.url), [("query", query)])?;
        let body: Value = self
            .http
            .get(url)
            .send()
            .await?
            .error_for_status()
            .with_context(|| format!("querying {query}"))?
            .json()
            .await?;
        let result = body["data"]["result"]
            .as_array()
            .with_context(|| format!("no result list for {query}: {body}"))?;
        result
            .iter()
            .map(|s| {
                let labels = serde_json::from_value(s["metric"].clone())
                    .with_context(|| format!("labels of {s}"))?;
                let value = s["value"][1]
                    .as_str()
                    .context("a sample without a value")?
                    .parse::<f64>()?;
                Ok((labels, value))
            })
            .collect()
    }

    /// The value of a PromQL expression returning one series, `None` when it returns none.
    pub async fn value(&self, query: &str) -> anyhow::Result<Option<f64>> {
        let series = self.series(query).await?;
        anyhow::ensure!(
            series.len() <= 1,
            "{query} returned {} series: {series:?}",
            series.len()
        );
        Ok(series.first().map(|(_, v)| *v))
    }
}

fn config_text(jobs: &[ScrapeJob]) -> anyhow::Result<String> {
    let mut text = String::from("global: {evaluation_interval: 1s}\nscrape_configs:\n");
    for job in jobs {
        let interval = job.interval.as_millis().max(100);
        let labels: serde_json::Map<String, Value> = job
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        // JSON is YAML: names, targets and labels go in quoted, whatever they hold.
        writeln!(
            text,
            "  - job_name: {}\n    scrape_interval: {interval}ms\n    scrape_timeout: {}ms",
            serde_json::to_string(&job.name)?,
            interval * 9 / 10,
        )?;
        match &job.targets_file {
            None => writeln!(
                text,
                "    static_configs:\n      - targets: {}\n        labels: {}",
                serde_json::to_string(&job.targets)?,
                serde_json::to_string(&labels)?,
            )?,
            Some(file) => {
                writeln!(
                    text,
                    "    file_sd_configs:\n      - files: [{}]\n        refresh_interval: 1s",
                    serde_json::to_string(&file.display().to_string())?,
                )?;
                if !labels.is_empty() {
                    text.push_str("    relabel_configs:\n");
                    for (name, value) in &labels {
                        writeln!(
                            text,
                            "      - {{target_label: {}, replacement: {}}}",
                            serde_json::to_string(name)?,
                            value
                        )?;
                    }
                }
            }
        }
    }
    Ok(text)
}

/// Writes a file-based service discovery file listing `targets` (`host:port`), atomically, so that
/// Prometheus never reads half of it.
pub fn write_targets_file(file: &Path, targets: &[String]) -> anyhow::Result<()> {
    let tmp = file.with_extension("tmp");
    std::fs::write(
        &tmp,
        serde_json::to_string(&[json!({ "targets": targets })])?,
    )?;
    std::fs::rename(&tmp, file).with_context(|| format!("writing {}", file.display()))
}
