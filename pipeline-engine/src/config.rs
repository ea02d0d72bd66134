//! Configuration: a YAML file plus `ENGINE__SECTION__KEY` environment overrides, validated at start-up.
//! Every error names the offending key so a bad deployment fails fast with an actionable message.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

use crate::transform::route::IndexPattern;

/// Prefix of environment overrides; `__` separates path segments (`ENGINE__KAFKA__BROKERS`).
pub const ENV_PREFIX: &str = "ENGINE__";

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
    #[error("environment override {var} is not a valid value: {source}")]
    Env {
        var: String,
        source: serde_yaml::Error,
    },
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub pipeline: PipelineConfig,
    pub kafka: KafkaConfig,
    pub elasticsearch: EsConfig,
    #[serde(default)]
    pub process: ProcessConfig,
    #[serde(default)]
    pub sink: SinkConfig,
    #[serde(default)]
    pub buffers: BufferConfig,
    #[serde(default)]
    pub transform: TransformConfig,
    #[serde(default)]
    pub index: IndexConfig,
    #[serde(default)]
    pub dead_letter: DeadLetterConfig,
    #[serde(default)]
    pub control: ControlConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub announce: AnnounceConfig,
    #[serde(default)]
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub name: String,
    /// Defaults to `<hostname>-<pid>`.
    #[serde(default)]
    pub instance_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    pub brokers: String,
    #[serde(deserialize_with = "one_or_many")]
    pub topics: Vec<String>,
    pub group_id: String,
    #[serde(default = "d_commit_interval")]
    pub commit_interval_ms: u64,
    #[serde(default = "d_max_record_bytes")]
    pub max_record_bytes: usize,
    /// Records handed to the process stage in one batch.
    #[serde(default = "d_fetch_batch")]
    pub fetch_batch: usize,
    /// librdkafka prefetch bound; keeps memory flat when the topic holds millions of records.
    #[serde(default = "d_queued_kbytes")]
    pub queued_max_kbytes: u64,
    #[serde(default = "d_session_timeout")]
    pub session_timeout_ms: u64,
    /// `earliest` or `latest`, used when the group has no committed offset.
    #[serde(default = "d_offset_reset")]
    pub auto_offset_reset: String,
    /// Extra librdkafka properties, applied last. Numbers and booleans are accepted as written.
    #[serde(default, deserialize_with = "scalar_map")]
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EsConfig {
    #[serde(deserialize_with = "one_or_many")]
    pub urls: Vec<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub action: BulkAction,
    #[serde(default = "d_request_timeout")]
    pub request_timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessConfig {
    #[serde(default = "d_two")]
    pub parallelism: usize,
}
impl Default for ProcessConfig {
    fn default() -> Self {
        Self {
            parallelism: d_two(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    #[serde(default = "d_two")]
    pub parallelism: usize,
    #[serde(default = "d_in_flight")]
    pub in_flight: usize,
    #[serde(default = "d_batch_docs")]
    pub batch_max_docs: usize,
    #[serde(default = "d_batch_bytes")]
    pub batch_max_bytes: usize,
    #[serde(default = "d_linger")]
    pub linger_ms: u64,
    #[serde(default)]
    pub retry: RetryConfig,
}
impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            parallelism: d_two(),
            in_flight: d_in_flight(),
            batch_max_docs: d_batch_docs(),
            batch_max_bytes: d_batch_bytes(),
            linger_ms: d_linger(),
            retry: RetryConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    #[serde(default = "d_initial_backoff")]
    pub initial_backoff_ms: u64,
    #[serde(default = "d_max_backoff")]
    pub max_backoff_ms: u64,
    /// 0 = retry retriable failures forever (back pressure holds the consumer meanwhile);
    /// otherwise a record still failing after this many attempts is dead-lettered.
    #[serde(default)]
    pub max_attempts: u32,
}
impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_backoff_ms: d_initial_backoff(),
            max_backoff_ms: d_max_backoff(),
            max_attempts: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferConfig {
    /// Batches waiting between consume and process.
    #[serde(default = "d_buffer")]
    pub process_batches: usize,
    /// Batches waiting between process and sink.
    #[serde(default = "d_buffer")]
    pub sink_batches: usize,
}
impl Default for BufferConfig {
    fn default() -> Self {
        Self {
            process_batches: d_buffer(),
            sink_batches: d_buffer(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// Fields set on every document (overwriting).
    #[serde(default)]
    pub add: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub drop: Vec<String>,
    /// old name -> new name.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    #[serde(default)]
    pub timestamp: TimestampConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampConfig {
    /// Field written with the record's time (RFC 3339, UTC).
    #[serde(default = "d_ts_field")]
    pub field: String,
    /// Field holding the event time (RFC 3339 string or epoch milliseconds); if absent or unparseable,
    /// the Kafka record timestamp is used.
    #[serde(default)]
    pub source: Option<String>,
}
impl Default for TimestampConfig {
    fn default() -> Self {
        Self {
            field: d_ts_field(),
            source: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    /// `{field}` placeholders and strftime date items, e.g. `logs-{service}-%Y.%m.%d`.
    #[serde(default = "d_index_pattern")]
    pub pattern: String,
    /// Used for a placeholder whose field is missing or not a scalar.
    #[serde(default = "d_missing")]
    pub missing_value: String,
}
impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            pattern: d_index_pattern(),
            missing_value: d_missing(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    #[serde(default)]
    pub kind: DeadLetterKind,
    /// Kafka topic; defaults to `<pipeline.name>-dead-letter`.
    #[serde(default)]
    pub topic: Option<String>,
    /// JSON-lines file, for `kind: file`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The dead-letter producer's `message.max.bytes`; a larger dead letter is written as a truncated
    /// copy (headers keep its original size and position), so it never stalls its partition.
    #[serde(default = "d_dead_letter_max_record_bytes")]
    pub max_record_bytes: usize,
}
impl Default for DeadLetterConfig {
    fn default() -> Self {
        Self {
            kind: DeadLetterKind::Kafka,
            topic: None,
            path: None,
            max_record_bytes: d_dead_letter_max_record_bytes(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeadLetterKind {
    #[default]
    Kafka,
    File,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    #[serde(default = "d_control_listen")]
    pub listen: SocketAddr,
    /// Bearer token for `POST /control/*`; without one those calls answer 403.
    #[serde(default)]
    pub token: Option<String>,
    /// Deadline for draining in-flight work on SIGTERM, rebalance and rescale.
    #[serde(default = "d_drain")]
    pub drain_deadline_ms: u64,
}
impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            listen: d_control_listen(),
            token: None,
            drain_deadline_ms: d_drain(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    #[serde(default = "d_metrics_listen")]
    pub listen: SocketAddr,
}
impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: d_metrics_listen(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnounceConfig {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default = "d_heartbeat")]
    pub heartbeat_interval_ms: u64,
}
impl Default for AnnounceConfig {
    fn default() -> Self {
        Self {
            url: None,
            token: None,
            heartbeat_interval_ms: d_heartbeat(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

fn d_commit_interval() -> u64 {
    1000
}
fn d_max_record_bytes() -> usize {
    1024 * 1024
}
/// librdkafka's default `message.max.bytes`, below a Kafka broker's default limit (1,048,588).
fn d_dead_letter_max_record_bytes() -> usize {
    1_000_000
}
fn d_fetch_batch() -> usize {
    500
}
fn d_queued_kbytes() -> u64 {
    16 * 1024
}
fn d_session_timeout() -> u64 {
    10_000
}
fn d_offset_reset() -> String {
    "earliest".into()
}
fn d_request_timeout() -> u64 {
    30_000
}
fn d_two() -> usize {
    2
}
fn d_in_flight() -> usize {
    4
}
fn d_batch_docs() -> usize {
    1000
}
fn d_batch_bytes() -> usize {
    5 * 1024 * 1024
}
fn d_linger() -> u64 {
    20
}
fn d_initial_backoff() -> u64 {
    100
}
fn d_max_backoff() -> u64 {
    30_000
}
fn d_buffer() -> usize {
    8
}
fn d_ts_field() -> String {
    "@timestamp".into()
}
fn d_index_pattern() -> String {
    "logs-%Y.%m.%d".into()
}
fn d_missing() -> String {
    "unknown".into()
}
fn d_control_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9465))
}
fn d_metrics_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}
fn d_drain() -> u64 {
    5000
}
fn d_heartbeat() -> u64 {
    30_000
}

/// librdkafka takes every property as a string; accept `fetch.wait.max.ms: 10` as well as `'10'`.
fn scalar_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    use serde::de::Error;
    let raw = BTreeMap::<String, serde_yaml::Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| {
            let s = match v {
                serde_yaml::Value::String(s) => s,
                serde_yaml::Value::Number(n) => n.to_string(),
                serde_yaml::Value::Bool(b) => b.to_string(),
                other => {
                    return Err(D::Error::custom(format!(
                        "`{k}` must be a scalar, got {other:?}"
                    )));
                }
            };
            Ok((k, s))
        })
        .collect()
}

/// Accepts `a,b` as well as a YAML list, so list keys are easy to override from the environment.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        OneOrMany::Many(v) => v,
    })
}

impl Config {
    /// Loads the file (if any), applies overrides from `env`, deserializes and validates.
    pub fn load(
        path: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut tree = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.into(),
                    source,
                })?;
                serde_yaml::from_str::<serde_yaml::Value>(&text).map_err(|source| {
                    ConfigError::Yaml {
                        path: p.into(),
                        source,
                    }
                })?
            }
            None => serde_yaml::Value::Mapping(Default::default()),
        };
        if tree.is_null() {
            tree = serde_yaml::Value::Mapping(Default::default());
        }
        apply_env(&mut tree, env)?;
        Self::from_tree(tree)
    }

    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let tree = serde_yaml::from_str(text).map_err(|source| ConfigError::Yaml {
            path: PathBuf::from("<inline>"),
            source,
        })?;
        Self::from_tree(tree)
    }

    fn from_tree(tree: serde_yaml::Value) -> Result<Self, ConfigError> {
        let config: Config = serde_path_to_error::deserialize(tree).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::Key {
                key,
                message: e.into_inner().to_string(),
            }
        })?;
        config.validate()?;
        Ok(config)
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

    fn validate(&self) -> Result<(), ConfigError> {
        let nonempty = |key: &str, v: &str| {
            if v.trim().is_empty() {
                Err(ConfigError::key(key, "must not be empty"))
            } else {
                Ok(())
            }
        };
        let positive = |key: &str, v: u64| {
            if v == 0 {
                Err(ConfigError::key(key, "must be greater than 0"))
            } else {
                Ok(())
            }
        };
        nonempty("pipeline.name", &self.pipeline.name)?;
        nonempty("kafka.brokers", &self.kafka.brokers)?;
        nonempty("kafka.group_id", &self.kafka.group_id)?;
        if self.kafka.topics.is_empty() {
            return Err(ConfigError::key(
                "kafka.topics",
                "must name at least one topic",
            ));
        }
        if !matches!(self.kafka.auto_offset_reset.as_str(), "earliest" | "latest") {
            return Err(ConfigError::key(
                "kafka.auto_offset_reset",
                "must be `earliest` or `latest`",
            ));
        }
        positive("kafka.commit_interval_ms", self.kafka.commit_interval_ms)?;
        positive("kafka.max_record_bytes", self.kafka.max_record_bytes as u64)?;
        positive("kafka.fetch_batch", self.kafka.fetch_batch as u64)?;
        positive("kafka.queued_max_kbytes", self.kafka.queued_max_kbytes)?;
        if self.elasticsearch.urls.is_empty() {
            return Err(ConfigError::key(
                "elasticsearch.urls",
                "must name at least one URL",
            ));
        }
        for u in &self.elasticsearch.urls {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(ConfigError::key(
                    "elasticsearch.urls",
                    format!("`{u}` is not an http(s) URL"),
                ));
            }
        }
        if self.elasticsearch.password.is_some() && self.elasticsearch.username.is_none() {
            return Err(ConfigError::key(
                "elasticsearch.username",
                "required when a password is set",
            ));
        }
        if self.elasticsearch.api_key.is_some() && self.elasticsearch.username.is_some() {
            return Err(ConfigError::key(
                "elasticsearch.api_key",
                "use either api_key or username/password",
            ));
        }
        positive(
            "elasticsearch.request_timeout_ms",
            self.elasticsearch.request_timeout_ms,
        )?;
        positive("process.parallelism", self.process.parallelism as u64)?;
        positive("sink.parallelism", self.sink.parallelism as u64)?;
        positive("sink.in_flight", self.sink.in_flight as u64)?;
        positive("sink.batch_max_docs", self.sink.batch_max_docs as u64)?;
        positive("sink.batch_max_bytes", self.sink.batch_max_bytes as u64)?;
        positive("sink.linger_ms", self.sink.linger_ms)?;
        positive(
            "sink.retry.initial_backoff_ms",
            self.sink.retry.initial_backoff_ms,
        )?;
        if self.sink.retry.max_backoff_ms < self.sink.retry.initial_backoff_ms {
            return Err(ConfigError::key(
                "sink.retry.max_backoff_ms",
                "must be at least initial_backoff_ms",
            ));
        }
        positive(
            "buffers.process_batches",
            self.buffers.process_batches as u64,
        )?;
        positive("buffers.sink_batches", self.buffers.sink_batches as u64)?;
        nonempty("transform.timestamp.field", &self.transform.timestamp.field)?;
        IndexPattern::parse(&self.index.pattern)
            .map_err(|e| ConfigError::key("index.pattern", e.to_string()))?;
        match self.dead_letter.kind {
            DeadLetterKind::File if self.dead_letter.path.is_none() => {
                return Err(ConfigError::key(
                    "dead_letter.path",
                    "required when dead_letter.kind is `file`",
                ));
            }
            DeadLetterKind::Kafka if self.kafka.topics.contains(&self.dead_letter_topic()) => {
                return Err(ConfigError::key(
                    "dead_letter.topic",
                    "must not be one of kafka.topics",
                ));
            }
            _ => {}
        }
        self.validate_record_limits()?;
        positive("control.drain_deadline_ms", self.control.drain_deadline_ms)?;
        positive(
            "announce.heartbeat_interval_ms",
            self.announce.heartbeat_interval_ms,
        )?;
        if let Some(u) = &self.announce.url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(ConfigError::key(
                "announce.url",
                format!("`{u}` is not an http(s) URL"),
            ));
        }
        Ok(())
    }
}

impl Config {
    /// The size limits must agree: a record the consumer accepts fits in one `_bulk` request, and the
    /// dead-letter producer has one limit, room for the headers, and it is within librdkafka's range.
    fn validate_record_limits(&self) -> Result<(), ConfigError> {
        if self.kafka.max_record_bytes > self.sink.batch_max_bytes {
            return Err(ConfigError::key(
                "kafka.max_record_bytes",
                format!(
                    "{} is larger than sink.batch_max_bytes ({}): such a record could never be sent",
                    self.kafka.max_record_bytes, self.sink.batch_max_bytes
                ),
            ));
        }
        let dl = self.dead_letter.max_record_bytes;
        if !(MIN_DEAD_LETTER_BYTES..=MAX_MESSAGE_BYTES).contains(&dl) {
            return Err(ConfigError::key(
                "dead_letter.max_record_bytes",
                format!(
                    "{dl} is outside {MIN_DEAD_LETTER_BYTES}..={MAX_MESSAGE_BYTES} (room for the \
                     dead-letter headers; librdkafka's message.max.bytes range)"
                ),
            ));
        }
        if let Some(v) = self.kafka.properties.get("message.max.bytes")
            && v.parse::<usize>().ok() != Some(dl)
        {
            return Err(ConfigError::key(
                "kafka.properties.message.max.bytes",
                format!(
                    "`{v}` disagrees with dead_letter.max_record_bytes ({dl}), which sets the \
                     dead-letter producer's limit; set that key instead"
                ),
            ));
        }
        Ok(())
    }
}

/// Smallest dead-letter record size allowed: the headers alone take a few hundred bytes.
const MIN_DEAD_LETTER_BYTES: usize = 4096;
/// librdkafka's upper bound for `message.max.bytes`.
const MAX_MESSAGE_BYTES: usize = 1_000_000_000;

/// Applies `ENGINE__A__B=value` as `a.b: value` (value parsed as a YAML scalar or flow collection).
fn apply_env(
    tree: &mut serde_yaml::Value,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            continue;
        }
        let value: serde_yaml::Value =
            serde_yaml::from_str(&raw).map_err(|source| ConfigError::Env {
                var: var.clone(),
                source,
            })?;
        let value = if value.is_null() {
            serde_yaml::Value::String(raw.clone())
        } else {
            value
        };
        let mut node = &mut *tree;
        for (i, seg) in path.iter().enumerate() {
            if !node.is_mapping() {
                *node = serde_yaml::Value::Mapping(Default::default());
            }
            let map = node.as_mapping_mut().expect("just made a mapping");
            let key = serde_yaml::Value::String(seg.clone());
            if i + 1 == path.len() {
                map.insert(key, value.clone());
                break;
            }
            node = map
                .entry(key)
                .or_insert(serde_yaml::Value::Mapping(Default::default()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "
pipeline: {name: logs}
kafka: {brokers: '127.0.0.1:9092', topics: [app], group_id: g}
elasticsearch: {urls: ['http://127.0.0.1:9200']}
";

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load(yaml: &str, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("engine.yaml");
        std::fs::write(&path, yaml).expect("write config");
        Config::load(Some(&path), env(pairs))
    }

    #[test]
    fn minimal_file_gets_documented_defaults() {
        let c = load(MINIMAL, &[]).expect("valid");
        assert_eq!(c.process.parallelism, 2);
        assert_eq!(c.sink.in_flight, 4);
        assert_eq!(c.elasticsearch.action, BulkAction::Create);
        assert_eq!(c.dead_letter.kind, DeadLetterKind::Kafka);
        assert_eq!(c.dead_letter_topic(), "logs-dead-letter");
        assert_eq!(c.dead_letter.max_record_bytes, 1_000_000);
        assert_eq!(c.kafka.max_record_bytes, 1_048_576);
    }

    #[test]
    fn env_overrides_file_values_and_parses_types() {
        let c = load(
            MINIMAL,
            &[
                ("ENGINE__PROCESS__PARALLELISM", "7"),
                ("ENGINE__KAFKA__TOPICS", "a, b"),
                ("ENGINE__KAFKA__PROPERTIES__FETCH.WAIT.MAX.MS", "10"),
                ("UNRELATED", "x"),
            ],
        )
        .expect("valid");
        assert_eq!(c.process.parallelism, 7);
        assert_eq!(c.kafka.topics, vec!["a", "b"]);
        assert_eq!(
            c.kafka
                .properties
                .get("fetch.wait.max.ms")
                .map(String::as_str),
            Some("10")
        );
    }

    #[test]
    fn env_alone_is_a_complete_config() {
        let c = Config::load(
            None,
            env(&[
                ("ENGINE__PIPELINE__NAME", "p"),
                ("ENGINE__KAFKA__BROKERS", "h:1"),
                ("ENGINE__KAFKA__TOPICS", "t"),
                ("ENGINE__KAFKA__GROUP_ID", "g"),
                ("ENGINE__ELASTICSEARCH__URLS", "http://h:9200"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.pipeline.name, "p");
    }

    fn key_of(err: ConfigError) -> String {
        match err {
            ConfigError::Key { key, .. } => key,
            other => panic!("expected a key error, got {other}"),
        }
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = load(MINIMAL, &[("ENGINE__SINK__IN_FLIGHT", "many")]).expect_err("invalid");
        assert_eq!(key_of(err), "sink.in_flight");
    }

    #[test]
    fn unknown_key_names_the_section() {
        let err = load(&format!("{MINIMAL}sink: {{in_flihgt: 3}}\n"), &[]).expect_err("typo");
        let msg = err.to_string();
        assert!(msg.contains("sink") && msg.contains("in_flihgt"), "{msg}");
    }

    #[test]
    fn missing_required_key_is_named() {
        let err = load("pipeline: {name: x}\nkafka: {brokers: b, topics: t}\nelasticsearch: {urls: 'http://e'}\n", &[])
            .expect_err("no group");
        assert!(err.to_string().contains("group_id"), "{err}");
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let cases = [
            ("ENGINE__PROCESS__PARALLELISM", "0", "process.parallelism"),
            (
                "ENGINE__ELASTICSEARCH__URLS",
                "ftp://x",
                "elasticsearch.urls",
            ),
            ("ENGINE__INDEX__PATTERN", "logs-{service", "index.pattern"),
            ("ENGINE__DEAD_LETTER__KIND", "file", "dead_letter.path"),
            ("ENGINE__DEAD_LETTER__TOPIC", "app", "dead_letter.topic"),
            (
                "ENGINE__KAFKA__AUTO_OFFSET_RESET",
                "middle",
                "kafka.auto_offset_reset",
            ),
            (
                "ENGINE__KAFKA__MAX_RECORD_BYTES",
                "10000000",
                "kafka.max_record_bytes",
            ),
            (
                "ENGINE__DEAD_LETTER__MAX_RECORD_BYTES",
                "100",
                "dead_letter.max_record_bytes",
            ),
            (
                "ENGINE__KAFKA__PROPERTIES__MESSAGE.MAX.BYTES",
                "2000000",
                "kafka.properties.message.max.bytes",
            ),
        ];
        for (var, value, key) in cases {
            let err = load(MINIMAL, &[(var, value)]).expect_err(var);
            assert_eq!(key_of(err), key, "{var}={value}");
        }
    }

    #[test]
    fn unreadable_file_is_reported_with_its_path() {
        let err = Config::load(
            Some(std::path::Path::new("/nonexistent/engine.yaml")),
            Vec::new(),
        )
        .expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/engine.yaml"));
    }
}
