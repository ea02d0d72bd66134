//! Configuration: a YAML file layered with `ENGINE__SECTION__KEY` environment variables (`load.rs`),
//! typed sections with one `Default` each (here), value types parsed by serde (`values.rs`), and the
//! checks across keys (`validate.rs`). Every error names the offending key, so a bad deployment fails
//! fast with an actionable message.

mod load;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;
mod validate;
pub mod values;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use load::{ENV_PREFIX, LEGACY_MS_KEYS, Loaded};
pub use values::HttpUrl;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid YAML: {source}")]
    Yaml {
        path: PathBuf,
        source: serde_yaml::Error,
    },
    #[error("cannot layer the configuration: {0}")]
    Layer(#[source] config::ConfigError),
    #[error("config key `{key}`: {message}")]
    Key { key: String, message: String },
}

impl ConfigError {
    fn key(key: &str, message: impl Into<String>) -> Self {
        Self::Key {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// The whole configuration. Required keys (`pipeline.name`, `kafka.brokers`, `kafka.topics`,
/// `kafka.group_id`, `elasticsearch.urls`) default to empty and are reported by `validate`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub pipeline: PipelineConfig,
    pub kafka: KafkaConfig,
    pub elasticsearch: EsConfig,
    pub process: ProcessConfig,
    pub sink: SinkConfig,
    pub buffers: BufferConfig,
    pub transform: TransformConfig,
    pub index: IndexConfig,
    pub dead_letter: DeadLetterConfig,
    pub control: ControlConfig,
    pub metrics: MetricsConfig,
    pub announce: AnnounceConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    pub name: String,
    /// Defaults to `<hostname>-<pid>`.
    pub instance_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    pub brokers: String,
    #[serde(deserialize_with = "values::one_or_many")]
    pub topics: Vec<String>,
    pub group_id: String,
    #[serde(with = "values::duration")]
    pub commit_interval: Duration,
    pub max_record_bytes: usize,
    /// Records handed to the process stage in one batch.
    pub fetch_batch: usize,
    /// librdkafka prefetch bound; keeps memory flat when the topic holds millions of records.
    pub queued_max_kbytes: u64,
    #[serde(with = "values::duration")]
    pub session_timeout: Duration,
    /// Where to start when the group has no committed offset.
    pub auto_offset_reset: OffsetReset,
    /// Extra librdkafka properties, applied last. Numbers and booleans are accepted as written.
    #[serde(deserialize_with = "values::scalar_map")]
    pub properties: BTreeMap<String, String>,
}
impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: String::new(),
            topics: Vec::new(),
            group_id: String::new(),
            commit_interval: Duration::from_secs(1),
            max_record_bytes: 1024 * 1024,
            fetch_batch: 500,
            queued_max_kbytes: 16 * 1024,
            session_timeout: Duration::from_secs(10),
            auto_offset_reset: OffsetReset::Earliest,
            properties: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OffsetReset {
    #[default]
    Earliest,
    Latest,
}

impl OffsetReset {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Earliest => "earliest",
            Self::Latest => "latest",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EsConfig {
    #[serde(deserialize_with = "values::one_or_many")]
    pub urls: Vec<HttpUrl>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub api_key: Option<String>,
    pub action: BulkAction,
    #[serde(with = "values::duration")]
    pub request_timeout: Duration,
}
impl Default for EsConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            username: None,
            password: None,
            api_key: None,
            action: BulkAction::Create,
            request_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BulkAction {
    /// Replays of an existing id answer 409, which counts as done: no duplicate, no overwrite.
    #[default]
    Create,
    Index,
}

impl BulkAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Index => "index",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessConfig {
    pub parallelism: usize,
}
impl Default for ProcessConfig {
    fn default() -> Self {
        Self { parallelism: 2 }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinkConfig {
    pub parallelism: usize,
    pub in_flight: usize,
    pub batch_max_docs: usize,
    pub batch_max_bytes: usize,
    #[serde(with = "values::duration")]
    pub linger: Duration,
    pub retry: RetryConfig,
}
impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            parallelism: 2,
            in_flight: 4,
            batch_max_docs: 1000,
            batch_max_bytes: 5 * 1024 * 1024,
            linger: Duration::from_millis(20),
            retry: RetryConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    #[serde(with = "values::duration")]
    pub initial_backoff: Duration,
    #[serde(with = "values::duration")]
    pub max_backoff: Duration,
    /// 0 = retry retriable failures forever (back pressure holds the consumer meanwhile);
    /// otherwise a record still failing after this many attempts is dead-lettered.
    pub max_attempts: u32,
}
impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            max_attempts: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BufferConfig {
    /// Batches waiting between consume and process.
    pub process_batches: usize,
    /// Batches waiting between process and sink.
    pub sink_batches: usize,
}
impl Default for BufferConfig {
    fn default() -> Self {
        Self {
            process_batches: 8,
            sink_batches: 8,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransformConfig {
    /// Fields set on every document (overwriting).
    pub add: BTreeMap<String, serde_json::Value>,
    pub drop: Vec<String>,
    /// old name -> new name.
    pub rename: BTreeMap<String, String>,
    pub timestamp: TimestampConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimestampConfig {
    /// Field written with the record's time (RFC 3339, UTC).
    pub field: String,
    /// Field holding the event time (RFC 3339 string or epoch milliseconds); if absent or unparseable,
    /// the Kafka record timestamp is used.
    pub source: Option<String>,
}
impl Default for TimestampConfig {
    fn default() -> Self {
        Self {
            field: "@timestamp".into(),
            source: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    /// `{field}` placeholders and strftime date items, e.g. `logs-{service}-%Y.%m.%d`.
    pub pattern: String,
    /// Used for a placeholder whose field is missing or not a scalar.
    pub missing_value: String,
}
impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            pattern: "logs-%Y.%m.%d".into(),
            missing_value: "unknown".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeadLetterConfig {
    pub kind: DeadLetterKind,
    /// Kafka topic; defaults to `<pipeline.name>-dead-letter`.
    pub topic: Option<String>,
    /// JSON-lines file, for `kind: file`.
    pub path: Option<PathBuf>,
    /// The dead-letter producer's `message.max.bytes`; a larger dead letter is written as a truncated
    /// copy (headers keep its original size and position), so it never stalls its partition. The
    /// default is librdkafka's, below a Kafka broker's default limit (1,048,588).
    pub max_record_bytes: usize,
}
impl Default for DeadLetterConfig {
    fn default() -> Self {
        Self {
            kind: DeadLetterKind::Kafka,
            topic: None,
            path: None,
            max_record_bytes: 1_000_000,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeadLetterKind {
    #[default]
    Kafka,
    File,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlConfig {
    pub listen: SocketAddr,
    /// The URL the autoscaler reaches this listener at, announced with the registration, for when
    /// `listen` is not reachable as written (e.g. `0.0.0.0:9465` in a pod: set it to
    /// `http://$(POD_IP):9465`). Without it the announced URL is `http://<listen>`, and none is
    /// announced for an unspecified listen address.
    pub advertise_url: Option<HttpUrl>,
    /// Bearer token for `POST /control/*`; without one those calls answer 403.
    pub token: Option<String>,
    /// Deadline for draining in-flight work on SIGTERM, rebalance and rescale.
    #[serde(with = "values::duration")]
    pub drain_deadline: Duration,
}
impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9465)),
            advertise_url: None,
            token: None,
            drain_deadline: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
}
impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnnounceConfig {
    pub url: Option<HttpUrl>,
    pub token: Option<String>,
    #[serde(with = "values::duration")]
    pub heartbeat_interval: Duration,
}
impl Default for AnnounceConfig {
    fn default() -> Self {
        Self {
            url: None,
            token: None,
            heartbeat_interval: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Config {
    /// Loads the file (if any), layers `ENGINE__` variables from `env` over it, deserializes and
    /// validates. Deprecated keys are accepted; `load_with_warnings` also returns what to warn about.
    pub fn load(
        path: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        Self::load_with_warnings(path, env).map(|l| l.config)
    }

    pub fn load_with_warnings(
        path: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        let loaded = load::load(path, env)?;
        loaded.config.validate()?;
        Ok(loaded)
    }

    /// Parses YAML text alone (no environment), validated.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let loaded = load::from_yaml_text(text, std::path::Path::new("<inline>"), Vec::new())?;
        loaded.config.validate()?;
        Ok(loaded.config)
    }

    pub fn instance_id(&self) -> String {
        self.pipeline.instance_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        })
    }

    pub fn dead_letter_topic(&self) -> String {
        self.dead_letter
            .topic
            .clone()
            .unwrap_or_else(|| format!("{}-dead-letter", self.pipeline.name))
    }
}
