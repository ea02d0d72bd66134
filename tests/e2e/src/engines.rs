//! The engine instances of one pipeline, started and stopped to match the scale Argo CD applied, the
//! way a Deployment's replica count would. Each slot has fixed metrics and control ports, so that
//! Prometheus scrapes a static list of targets and a stopped instance's series go stale at once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;

use crate::process::{Process, binary, free_port};

/// How long a stopped instance may take to drain, commit and unregister.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// What every instance is configured with.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub pipeline: String,
    pub brokers: String,
    pub topic: String,
    pub elasticsearch: String,
    pub announce_url: String,
    pub announce_token: String,
    /// Documents per `_bulk` request; with one request in flight this bounds one instance's rate.
    pub batch_max_docs: u32,
}

struct Slot {
    metrics_port: u16,
    control_port: u16,
    process: Option<Process>,
}

/// The instances; clones share them.
#[derive(Clone)]
pub struct Engines {
    inner: Arc<Mutex<Fleet>>,
}

struct Fleet {
    settings: EngineSettings,
    dir: PathBuf,
    slots: Vec<Slot>,
}

impl Engines {
    /// Reserves `max` slots (ports) under `dir`; nothing runs yet.
    pub fn new(settings: EngineSettings, dir: &Path, max: usize) -> anyhow::Result<Self> {
        let slots = (0..max)
            .map(|_| {
                Ok(Slot {
                    metrics_port: free_port()?,
                    control_port: free_port()?,
                    process: None,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            inner: Arc::new(Mutex::new(Fleet {
                settings,
                dir: dir.to_path_buf(),
                slots,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Fleet> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The metrics address of every slot, running or not: Prometheus' static targets.
    pub fn metrics_targets(&self) -> Vec<String> {
        self.lock()
            .slots
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.metrics_port))
            .collect()
    }

    /// How many instances run now.
    pub fn running(&self) -> usize {
        self.lock()
            .slots
            .iter_mut()
            .filter_map(|s| s.process.as_mut())
            .map(Process::is_running)
            .filter(|running| *running)
            .count()
    }

    /// Starts or stops instances until `replicas` run (stopping the newest first, gracefully).
    pub fn scale_to(&self, replicas: usize) -> anyhow::Result<()> {
        let mut fleet = self.lock();
        let replicas = replicas.min(fleet.slots.len());
        for index in (replicas..fleet.slots.len()).rev() {
            if let Some(process) = fleet.slots[index].process.take() {
                process.terminate(STOP_GRACE)?;
            }
        }
        for index in 0..replicas {
            let running = fleet.slots[index]
                .process
                .as_mut()
                .is_some_and(Process::is_running);
            if !running {
                let process = fleet.start(index)?;
                fleet.slots[index].process = Some(process);
            }
        }
        Ok(())
    }

    /// Stops every instance gracefully.
    pub fn stop_all(&self) -> anyhow::Result<()> {
        self.scale_to(0)
    }
}

impl Fleet {
    fn start(&self, index: usize) -> anyhow::Result<Process> {
        let s = &self.settings;
        let slot = &self.slots[index];
        let name = format!("{}-{index}", s.pipeline);
        let config = self.dir.join(format!("{name}.yaml"));
        let dead_letters = self.dir.join(format!("{name}-dead-letters.jsonl"));
        let yaml = serde_json::json!({
            "pipeline": {"name": s.pipeline, "instance_id": name},
            "kafka": {
                "brokers": s.brokers,
                "topics": [s.topic],
                "group_id": format!("{}-engine", s.pipeline),
                "session_timeout": "6s",
            },
            "elasticsearch": {"urls": [s.elasticsearch], "request_timeout": "10s"},
            "index": {"pattern": "logs-{service}-%Y.%m.%d"},
            "process": {"parallelism": 1},
            "sink": {"parallelism": 1, "in_flight": 1, "batch_max_docs": s.batch_max_docs, "linger": "20ms"},
            "dead_letter": {"kind": "file", "path": dead_letters},
            "metrics": {"listen": format!("127.0.0.1:{}", slot.metrics_port)},
            "control": {"listen": format!("127.0.0.1:{}", slot.control_port), "drain_deadline": "5s"},
            "announce": {
                "url": s.announce_url,
                "token": s.announce_token,
                "heartbeat_interval": "2s",
            },
        });
        // JSON is YAML: the engine reads this file with its YAML loader.
        std::fs::write(&config, yaml.to_string())
            .with_context(|| format!("writing {}", config.display()))?;
        let mut command = Command::new(binary("pipeline-engine")?);
        command.arg("--config").arg(&config).env("RUST_LOG", "info");
        Process::spawn(&name, command, &self.dir)
    }
}

/// Lines in the dead-letter files of every instance that ever ran.
pub fn dead_letters(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).context("listing the engines' directory")? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with("-dead-letters.jsonl"))
        {
            let text = std::fs::read_to_string(&path)?;
            lines.extend(text.lines().map(str::to_owned));
        }
    }
    Ok(lines)
}
