//! The configuration's loading, layering and checks.

use std::time::Duration;

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
    let err = load(
        "pipeline: {name: x}\nkafka: {brokers: b, topics: t}\nelasticsearch: {urls: 'http://e'}\n",
        &[],
    )
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

#[test]
fn durations_are_humantime() {
    let c = load(
        &format!("{MINIMAL}sink: {{linger: 5ms, retry: {{max_backoff: 1m}}}}\n"),
        &[("ENGINE__CONTROL__DRAIN_DEADLINE", "2s")],
    )
    .expect("valid");
    assert_eq!(c.sink.linger, Duration::from_millis(5));
    assert_eq!(c.sink.retry.max_backoff, Duration::from_secs(60));
    assert_eq!(c.control.drain_deadline, Duration::from_secs(2));
    assert_eq!(c.kafka.commit_interval, Duration::from_secs(1), "default");
}

#[test]
fn a_duration_without_a_unit_is_refused_naming_the_key() {
    let err = load(&format!("{MINIMAL}sink: {{linger: 20}}\n"), &[]).expect_err("no unit");
    assert_eq!(key_of(err), "sink.linger");
}

#[test]
fn legacy_ms_keys_are_accepted_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("engine.yaml");
    std::fs::write(
        &path,
        format!("{MINIMAL}sink: {{linger_ms: 7, retry: {{initial_backoff_ms: 20}}}}\n"),
    )
    .expect("write config");
    let loaded = Config::load_with_warnings(
        Some(&path),
        env(&[("ENGINE__CONTROL__DRAIN_DEADLINE_MS", "3000")]),
    )
    .expect("valid");
    let c = loaded.config;
    assert_eq!(c.sink.linger, Duration::from_millis(7));
    assert_eq!(c.sink.retry.initial_backoff, Duration::from_millis(20));
    assert_eq!(c.control.drain_deadline, Duration::from_secs(3));
    assert_eq!(loaded.warnings.len(), 3, "{:?}", loaded.warnings);
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("sink.linger_ms") && w.contains("sink.linger: 7ms")),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn the_new_key_wins_over_a_legacy_one() {
    let loaded = Config::load_with_warnings(
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
    assert!(loaded.warnings.is_empty());
    let c = load(
        &format!("{MINIMAL}sink: {{linger_ms: 7, linger: 9ms}}\n"),
        &[],
    )
    .expect("valid");
    assert_eq!(c.sink.linger, Duration::from_millis(9));
}

#[test]
fn urls_and_enums_are_parsed() {
    let c = load(
        MINIMAL,
        &[
            (
                "ENGINE__ELASTICSEARCH__URLS",
                "http://a:9200/, https://b:9200",
            ),
            ("ENGINE__KAFKA__AUTO_OFFSET_RESET", "latest"),
            (
                "ENGINE__ANNOUNCE__URL",
                "http://autoscaler:8080/webhooks/engine",
            ),
            ("ENGINE__ELASTICSEARCH__PASSWORD", "0123"),
            ("ENGINE__ELASTICSEARCH__USERNAME", "u"),
        ],
    )
    .expect("valid");
    let urls: Vec<&str> = c.elasticsearch.urls.iter().map(|u| u.as_str()).collect();
    assert_eq!(urls, ["http://a:9200", "https://b:9200"]);
    assert_eq!(c.kafka.auto_offset_reset, OffsetReset::Latest);
    assert_eq!(
        c.elasticsearch.password.as_deref(),
        Some("0123"),
        "secrets are kept verbatim"
    );
    let err = load(MINIMAL, &[("ENGINE__ANNOUNCE__URL", "ftp://x")]).expect_err("ftp");
    assert_eq!(key_of(err), "announce.url");
}
