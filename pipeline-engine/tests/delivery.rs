//! Delivery through real processes: the mock-cluster broker process, the engine binary, and the
//! contract-faithful Elasticsearch test server in this process.

mod common;

use std::time::Duration;

use common::*;
use test_support::es::{EsServer, EsServerOptions, Faults};
use test_support::kafka::{MockBroker, committed, produce, read_topic};
use test_support::wait;

#[tokio::test(flavor = "multi_thread")]
async fn every_record_arrives_and_poison_records_are_dead_lettered_with_reasons() {
    let broker = MockBroker::start(&[("app", 4), ("test-dead-letter", 1)]);
    let es = EsServer::start(EsServerOptions::default())
        .await
        .expect("es");
    let counts = produce_valid(&broker.bootstrap, "app", 4, 0, 2000);
    let mut opts = EngineOpts::new(&broker.bootstrap, &es.url(), "app", "g-every");
    opts.env
        .push(("ENGINE__KAFKA__MAX_RECORD_BYTES".into(), "4096".into()));
    opts.env
        .push(("ENGINE__TRANSFORM__TIMESTAMP__SOURCE".into(), "ts".into()));
    // A dead webhook must not stop the engine.
    opts.extra_yaml =
        "announce: {url: 'http://127.0.0.1:9/announce', heartbeat_interval: 1s}\n".into();
    let engine = Engine::start(&opts);

    let expected = expected_ids("app", 4, &counts);
    wait::until("all valid records indexed", DEADLINE, POLL, || {
        (es.ids().is_superset(&expected)).then_some(())
    })
    .await;
    // Poison, all on partition 0 after the valid records: not JSON, not an object, oversized, and a
    // type conflict Elasticsearch refuses with a 400 (latency_ms is mapped as a number by now).
    let oversized = format!("{{\"service\":\"x\",\"m\":\"{}\"}}", "x".repeat(8 * 1024));
    let poison: Vec<&[u8]> = vec![
        b"{this is not json",
        b"[1,2,3]",
        oversized.as_bytes(),
        br#"{"ts":"2024-05-01T12:00:00Z","service":"svc0","latency_ms":"slow"}"#,
    ];
    produce(&broker.bootstrap, "app", poison.iter().map(|p| (0, *p)));
    let source = es
        .source("logs-svc0-2024.05.01", "app-0-0")
        .expect("routed by service and date");
    assert_eq!(source["@timestamp"], "2024-05-01T12:00:00.000Z");
    assert_eq!(source["service"], "svc0");

    let dead = tokio::task::spawn_blocking({
        let b = broker.bootstrap.clone();
        move || read_topic(&b, "test-dead-letter", 1, 4, Duration::from_secs(20))
    })
    .await
    .expect("read dead letters");
    let extra: Vec<String> = es.ids().difference(&expected).cloned().collect();
    assert!(
        extra.is_empty(),
        "only valid records are indexed, got {extra:?}; logs:\n{}",
        engine.logs()
    );
    let mut reasons: Vec<(String, String)> = dead
        .iter()
        .map(|r| {
            let h = |k: &str| {
                r.headers
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            assert_eq!(h("dead_letter.topic"), "app");
            assert_eq!(h("dead_letter.partition"), "0");
            assert!(!h("dead_letter.error").is_empty());
            (h("dead_letter.reason"), h("dead_letter.offset"))
        })
        .collect();
    reasons.sort();
    let first = counts[0];
    assert_eq!(
        reasons,
        vec![
            ("invalid_json".to_string(), first.to_string()),
            ("mapping_error".to_string(), (first + 3).to_string()),
            ("not_an_object".to_string(), (first + 1).to_string()),
            ("oversized".to_string(), (first + 2).to_string()),
        ]
    );
    assert_eq!(
        dead.iter()
            .find(|r| r.payload.starts_with(b"{this"))
            .map(|r| r.payload.len()),
        Some(17),
        "original record kept"
    );

    // Everything is done, so the group's commit reaches the end of every partition.
    let ends: Vec<Option<i64>> = counts
        .iter()
        .enumerate()
        .map(|(p, c)| Some((*c + if p == 0 { 4 } else { 0 }) as i64))
        .collect();
    let b = broker.bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        wait::until_blocking("offsets committed to the end", DEADLINE, POLL, || {
            (committed(&b, "g-every", "app", 4) == ends).then_some(())
        })
    })
    .await
    .expect("committed");

    let m = engine.metrics().await;
    assert_eq!(
        metric(&m, "engine_records_in_total", "pipeline=\"test\""),
        Some(2004.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "engine_records_out_total", "pipeline=\"test\""),
        Some(2000.0)
    );
    for reason in [
        "invalid_json",
        "not_an_object",
        "oversized",
        "mapping_error",
    ] {
        assert_eq!(
            metric(
                &m,
                "engine_dead_letters_total",
                &format!("reason=\"{reason}\"")
            ),
            Some(1.0),
            "{reason}"
        );
    }
    assert!(
        metric(&m, "engine_announce_failures_total", "pipeline").unwrap_or(0.0) >= 1.0,
        "failed announcements are counted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_are_retried_until_every_record_arrives() {
    let broker = MockBroker::start(&[("app", 2)]);
    let es = EsServer::start(EsServerOptions::default())
        .await
        .expect("es");
    es.set_faults(Faults {
        reject_requests: 3,
        fail_requests: 2,
        reject_items: 500,
        fail_item_every: 7,
        drop_connections: 2,
        ..Default::default()
    });
    let counts = produce_valid(&broker.bootstrap, "app", 2, 0, 3000);
    let engine = Engine::start(&EngineOpts::new(
        &broker.bootstrap,
        &es.url(),
        "app",
        "g-faults",
    ));
    let expected = expected_ids("app", 2, &counts);
    wait::until("all records indexed despite faults", DEADLINE, POLL, || {
        (es.ids().is_superset(&expected)).then_some(())
    })
    .await;
    // Stop the periodic failures so the pipeline can settle.
    es.set_faults(Faults::default());
    let m = engine.metrics().await;
    let retried =
        |r: &str| metric(&m, "engine_retries_total", &format!("reason=\"{r}\"")).unwrap_or(0.0);
    assert!(retried("too_many_requests") >= 500.0, "{m}");
    assert!(retried("server_error") > 0.0);
    assert!(
        retried("connection") > 0.0,
        "dropped connections are retried"
    );
    let stats = es.stats();
    assert_eq!(stats.docs, 3000);
    assert!(
        stats.conflicts > 0,
        "replays after a dropped connection answer 409 and count as done"
    );
    assert_eq!(
        metric(&m, "engine_dead_letters_total", "pipeline"),
        None,
        "nothing dead-lettered"
    );
    // Every 409 the engine saw is a re-send it counts; a dropped connection may hide some 409s
    // from it, never add any.
    let resent = metric(&m, "engine_records_resent_total", "pipeline").unwrap_or(0.0);
    assert!(
        resent > 0.0 && resent <= stats.conflicts as f64,
        "re-sends counted: {resent} of {} conflicts",
        stats.conflicts
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn file_dead_letter_destination_carries_record_position_and_error() {
    let broker = MockBroker::start(&[("app", 1)]);
    let es = EsServer::start(EsServerOptions::default())
        .await
        .expect("es");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dead.jsonl");
    produce(
        &broker.bootstrap,
        "app",
        [(0, &b"{\"service\":\"a\"}"[..]), (0, &b"oops"[..])],
    );
    let mut opts = EngineOpts::new(&broker.bootstrap, &es.url(), "app", "g-file");
    opts.env
        .push(("ENGINE__DEAD_LETTER__KIND".into(), "file".into()));
    opts.env.push((
        "ENGINE__DEAD_LETTER__PATH".into(),
        path.display().to_string(),
    ));
    let _engine = Engine::start(&opts);
    let line = wait::until("dead-letter line written", DEADLINE, POLL, || {
        std::fs::read_to_string(&path)
            .ok()
            .filter(|t| t.ends_with('\n'))
    })
    .await;
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("json line");
    assert_eq!(v["record"], "oops");
    assert_eq!(
        (
            v["topic"].as_str(),
            v["partition"].as_i64(),
            v["offset"].as_i64()
        ),
        (Some("app"), Some(0), Some(1))
    );
    assert_eq!(v["reason"], "invalid_json");
    wait::until("valid record indexed", DEADLINE, POLL, || {
        es.ids().contains("app-0-0").then_some(())
    })
    .await;
}

#[test]
fn bad_configuration_stops_start_up_naming_the_key() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipeline-engine"))
        .env("ENGINE__PIPELINE__NAME", "p")
        .env("ENGINE__KAFKA__BROKERS", "127.0.0.1:1")
        .env("ENGINE__KAFKA__TOPICS", "t")
        .env("ENGINE__KAFKA__GROUP_ID", "g")
        .env("ENGINE__ELASTICSEARCH__URLS", "http://127.0.0.1:1")
        .env("ENGINE__SINK__IN_FLIGHT", "lots")
        .output()
        .expect("run engine");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sink.in_flight"), "{err}");
}

/// Produces `records` to `partition` with librdkafka's producer compressing batches with `codec`.
fn produce_compressed(bootstrap: &str, topic: &str, codec: &str, records: &[Vec<u8>]) {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("compression.codec", codec)
        .set("linger.ms", "50")
        .create()
        .expect("create producer");
    for r in records {
        p.send(
            BaseRecord::<(), [u8]>::to(topic)
                .partition(0)
                .payload(&r[..]),
        )
        .map_err(|(e, _)| e)
        .expect("enqueue");
    }
    p.flush(Duration::from_secs(30)).expect("flush");
}

#[tokio::test(flavor = "multi_thread")]
async fn zstd_lz4_snappy_and_gzip_compressed_batches_are_read() {
    let broker = MockBroker::start(&[("app", 1)]);
    let es = EsServer::start(EsServerOptions::default())
        .await
        .expect("es");
    let codecs = ["zstd", "lz4", "snappy", "gzip"];
    for (c, codec) in codecs.iter().enumerate() {
        let lines: Vec<Vec<u8>> = (c * 100..(c + 1) * 100).map(log_line).collect();
        produce_compressed(&broker.bootstrap, "app", codec, &lines);
    }
    let engine = Engine::start(&EngineOpts::new(
        &broker.bootstrap,
        &es.url(),
        "app",
        "g-codecs",
    ));
    let expected = expected_ids("app", 1, &[400]);
    wait::until("records of every codec indexed", DEADLINE, POLL, || {
        (es.ids().is_superset(&expected)).then_some(())
    })
    .await;
    let m = engine.metrics().await;
    assert_eq!(
        metric(&m, "engine_records_out_total", "pipeline=\"test\""),
        Some(400.0),
        "{m}"
    );
    assert!(
        !engine.logs().contains("Decompression"),
        "no decompression error: {}",
        engine.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_over_a_megabyte_is_dead_lettered_truncated_and_its_partition_moves_on() {
    let broker = MockBroker::start(&[("app", 1), ("test-dead-letter", 1)]);
    let es = EsServer::start(EsServerOptions::default())
        .await
        .expect("es");
    // 1.1 MB: over the default kafka.max_record_bytes (1 MiB) and over what a Kafka producer sends by
    // default (message.max.bytes 1,000,000), so the dead letter cannot be a whole copy.
    let big = format!(
        "{{\"service\":\"svc0\",\"m\":\"{}\"}}",
        "x".repeat(1_100_000 - 25)
    )
    .into_bytes();
    assert_eq!(big.len(), 1_100_000);
    {
        use rdkafka::ClientConfig;
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let p: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &broker.bootstrap)
            .set("message.max.bytes", "2000000")
            .create()
            .expect("create producer");
        p.send(
            BaseRecord::<(), [u8]>::to("app")
                .partition(0)
                .payload(&big[..]),
        )
        .map_err(|(e, _)| e)
        .expect("enqueue");
        p.flush(Duration::from_secs(30)).expect("flush");
    }
    let counts = produce_valid(&broker.bootstrap, "app", 1, 0, 100);
    // Default limits: nothing about record sizes is configured.
    let engine = Engine::start(&EngineOpts::new(
        &broker.bootstrap,
        &es.url(),
        "app",
        "g-big",
    ));
    // The valid records sit behind the big one (offsets 1..=100).
    let expected: std::collections::HashSet<String> =
        (1..=counts[0]).map(|o| format!("app-0-{o}")).collect();
    wait::until("records behind the big one indexed", DEADLINE, POLL, || {
        (es.ids().is_superset(&expected)).then_some(())
    })
    .await;
    let b = broker.bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        wait::until_blocking("offsets committed past it", DEADLINE, POLL, || {
            (committed(&b, "g-big", "app", 1) == vec![Some(101)]).then_some(())
        })
    })
    .await
    .expect("committed");
    let dead = tokio::task::spawn_blocking({
        let b = broker.bootstrap.clone();
        move || read_topic(&b, "test-dead-letter", 1, 1, Duration::from_secs(20))
    })
    .await
    .expect("read dead letters");
    assert_eq!(dead.len(), 1, "one dead letter; logs:\n{}", engine.logs());
    let h = |k: &str| {
        dead[0]
            .headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(h("dead_letter.reason").as_deref(), Some("oversized"));
    assert_eq!(h("dead_letter.offset").as_deref(), Some("0"));
    assert_eq!(h("dead_letter.original_size").as_deref(), Some("1100000"));
    assert_eq!(h("dead_letter.truncated").as_deref(), Some("true"));
    let kept = dead[0].payload.len();
    assert!(
        kept > 0 && kept < 1_000_000,
        "a truncated copy that a default producer accepts, got {kept} bytes"
    );
    assert_eq!(&dead[0].payload[..], &big[..kept], "a prefix of the record");
}
