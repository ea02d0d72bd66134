//! What the manager scrapes in the kill rig: the real Prometheus server, scraping an endpoint in the
//! test process that exposes the pipeline engine's metrics (`pipeline-engine/README.md`) for a saturated
//! job at scale 2: two instances, lag high, 5000 records/s in and 2000 out.

use std::time::{Duration, Instant};

use axum::{Router, routing::get};
use test_support::prometheus::{Prometheus, ScrapeJob};

/// The engine's metrics endpoint and the Prometheus that scrapes it, both stopped when dropped.
pub struct Metrics {
    pub prometheus: Prometheus,
    endpoint: tokio::task::JoinHandle<()>,
}

impl Drop for Metrics {
    fn drop(&mut self) {
        self.endpoint.abort();
    }
}

impl Metrics {
    /// Starts both (Prometheus's data under `dir`), and waits until Prometheus answers every query the
    /// manager's engine preset asks, the counters' rates included.
    pub async fn saturated(dir: &std::path::Path) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the metrics endpoint");
        let target = listener.local_addr().expect("its address").to_string();
        let started = Instant::now();
        let router = Router::new().route(
            "/metrics",
            get(move || async move { exposition(started.elapsed()) }),
        );
        let endpoint = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        std::fs::create_dir_all(dir).expect("prometheus dir");
        let prometheus = Prometheus::start(
            dir,
            &[ScrapeJob {
                name: "engine".to_owned(),
                targets: vec![target],
                targets_file: None,
                labels: Vec::new(),
                interval: Duration::from_millis(500),
            }],
        )
        .await
        .expect("prometheus starts (scripts/setup.sh installs it)");
        let metrics = Self {
            prometheus,
            endpoint,
        };
        test_support::wait::until_some(
            "Prometheus to hold a rate of the engine's counters",
            Duration::from_secs(30),
            || async {
                metrics
                    .prometheus
                    .value("sum by (pipeline) (rate(engine_records_in_total[1m]))")
                    .await
            },
        )
        .await
        .expect("scraped");
        metrics
    }

    pub fn url(&self) -> String {
        self.prometheus.url.clone()
    }
}

/// The text exposition of two saturated engine instances; the counters grow with `elapsed`.
fn exposition(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    let mut text = String::new();
    for (family, kind) in [
        ("engine_cpu_load", "gauge"),
        ("engine_consumer_lag_records", "gauge"),
        ("engine_consumer_lag_seconds", "gauge"),
        ("engine_records_in_total", "counter"),
        ("engine_records_out_total", "counter"),
    ] {
        text.push_str(&format!("# TYPE {family} {kind}\n"));
        for instance in 0..2 {
            let value = match family {
                "engine_cpu_load" => 0.97,
                "engine_consumer_lag_records" => 320_000.0 + 500.0 * seconds,
                "engine_consumer_lag_seconds" => 640.0 + seconds,
                "engine_records_in_total" => 2500.0 * seconds,
                _ => 1000.0 * seconds,
            };
            text.push_str(&format!(
                "{family}{{pipeline=\"logs\",engine_instance=\"{instance}\"}} {value}\n"
            ));
        }
    }
    text
}
