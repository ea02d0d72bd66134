//! The real Prometheus server, scraping every engine slot once a second.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::process::{Process, free_port};

pub struct Prometheus {
    pub url: String,
    _process: Process,
}

impl Prometheus {
    pub async fn start(dir: &Path, engine_targets: &[String]) -> anyhow::Result<Self> {
        let port = free_port()?;
        let config = dir.join("prometheus.yml");
        let targets = serde_json::to_string(engine_targets)?;
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}}\n\
                 scrape_configs:\n  - job_name: engine\n    static_configs:\n      - targets: {targets}\n"
            ),
        )
        .context("writing prometheus.yml")?;
        let mut command = Command::new("prometheus");
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        let process = Process::spawn("prometheus", command, dir)?;
        let prometheus = Self {
            url: format!("http://127.0.0.1:{port}"),
            _process: process,
        };
        let ready = format!("{}/-/ready", prometheus.url);
        crate::wait::until_ok("Prometheus ready", Duration::from_secs(30), || async {
            let response = reqwest::get(&ready).await?;
            anyhow::ensure!(response.status().is_success(), "{}", response.status());
            Ok(())
        })
        .await?;
        Ok(prometheus)
    }

    /// The value of a PromQL expression returning one series, `None` when it returns none.
    pub async fn value(&self, query: &str) -> anyhow::Result<Option<f64>> {
        let url =
            url::Url::parse_with_params(&format!("{}/api/v1/query", self.url), [("query", query)])?;
        let body: Value = reqwest::get(url).await?.error_for_status()?.json().await?;
        let result = &body["data"]["result"];
        let Some(first) = result.as_array().and_then(|r| r.first()) else {
            return Ok(None);
        };
        let value = first["value"][1]
            .as_str()
            .context("a sample without a value")?
            .parse::<f64>()?;
        Ok(Some(value))
    }
}
