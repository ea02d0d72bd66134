//! A real Prometheus server (Debian's `prometheus` package) holding recorded series: the test writes them
//! as OpenMetrics, `promtool` turns them into TSDB blocks, and Prometheus serves them on a free port.

use std::{
    fmt::Write as _,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub struct Prometheus {
    child: Child,
    pub url: String,
    _dir: TempDir,
}

/// One series: name, labels, and (unix seconds, value) points in time order.
pub struct Recorded {
    pub name: &'static str,
    pub kind: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub points: Vec<(i64, f64)>,
}

impl Prometheus {
    pub async fn start(series: &[Recorded]) -> Self {
        let dir = TempDir::new();
        let data = dir.path.join("data");
        let metrics = dir.path.join("series.om");
        std::fs::write(&metrics, openmetrics(series)).expect("write series");
        let status = Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&metrics)
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .expect("promtool runs (scripts/setup.sh installs prometheus)");
        assert!(status.success(), "promtool created the blocks");
        let config = dir.path.join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1h\n").expect("write config");
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts");
        let url = format!("http://127.0.0.1:{port}");
        let prometheus = Self {
            child,
            url,
            _dir: dir,
        };
        prometheus.wait_ready().await;
        prometheus
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(response) = client.get(format!("{}/-/ready", self.url)).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("Prometheus was not ready within 30 s");
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn openmetrics(series: &[Recorded]) -> String {
    let mut out = String::new();
    let mut families: Vec<(&str, &str)> = series.iter().map(|s| (s.name, s.kind)).collect();
    families.dedup();
    for (family, kind) in families {
        let base = family.strip_suffix("_total").unwrap_or(family);
        let _ = writeln!(out, "# TYPE {base} {kind}");
        for s in series.iter().filter(|s| s.name == family) {
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            for (at, value) in &s.points {
                let _ = writeln!(out, "{}{{{}}} {value} {at}", s.name, labels.join(","));
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new() -> Self {
        let path =
            std::env::temp_dir().join(format!("autoscaler-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
