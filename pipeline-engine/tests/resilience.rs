//! Back pressure, rebalances, crashes, rescaling and shutdown, with real engine processes.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rand::RngExt as _;
use test_support::es::{EsServer, EsServerOptions, Faults};
use test_support::kafka::{MockBroker, committed};
use test_support::wait;

fn all_arrived(es: &EsServer, expected: &HashSet<String>) -> Option<()> {
    es.ids().is_superset(expected).then_some(())
}

#[tokio::test(flavor = "multi_thread")]
async fn back_pressure_bounds_in_flight_and_consumption_while_elasticsearch_stalls() {
    let broker = MockBroker::start(&[("app", 2)]);
    let es = EsServer::start(EsServerOptions::default())
        .await
        .expect("es");
    es.set_faults(Faults {
        stalled: true,
        ..Default::default()
    });
    let counts = produce_valid(&broker.bootstrap, "app", 2, 0, 40_000);
    let mut opts = EngineOpts::new(&broker.bootstrap, &es.url(), "app", "g-bp");
    // M=2 sinks × K=2 requests of ≤100 docs; buffers of 2 batches of ≤100 records.
    opts.extra_yaml =
        "process: {parallelism: 2}\nbuffers: {process_batches: 2, sink_batches: 2}\n".into();
    opts.env.extend([
        ("ENGINE__SINK__PARALLELISM".to_string(), "2".to_string()),
        ("ENGINE__SINK__IN_FLIGHT".into(), "2".into()),
        ("ENGINE__SINK__BATCH_MAX_DOCS".into(), "100".into()),
        ("ENGINE__KAFKA__FETCH_BATCH".into(), "100".into()),
        ("ENGINE__KAFKA__QUEUED_MAX_KBYTES".into(), "1024".into()),
    ]);
    let engine = Engine::start(&opts);
    wait::until(
        "sinks blocked on the stalled cluster",
        DEADLINE,
        POLL,
        || (es.stats().in_flight == 4).then_some(()),
    )
    .await;
    // Let the consumer run into the full buffers, then check it stays put.
    let settled = wait::until(
        "consumption to stop growing",
        DEADLINE,
        Duration::from_millis(500),
        || {
            let a = futures::executor::block_on(engine.metrics());
            let before = metric(&a, "engine_records_in_total", "pipeline")?;
            std::thread::sleep(Duration::from_millis(1500));
            let b = futures::executor::block_on(engine.metrics());
            let after = metric(&b, "engine_records_in_total", "pipeline")?;
            (after == before).then_some((after, b))
        },
    )
    .await;
    let (consumed, m) = settled;
    // In flight 4×100 + sink tasks' open batches 2×100 + buffers (2+2)×100 + held/partial batches
    // (a few ×100): far below the 40k waiting in the topic.
    assert!(
        consumed <= 2_000.0,
        "consumer kept reading while Elasticsearch stalled: {consumed}"
    );
    assert_eq!(
        metric(&m, "engine_bulk_requests_in_flight", "pipeline"),
        Some(4.0)
    );
    assert_eq!(
        metric(&m, "engine_buffer_fill", "stage=\"process\""),
        Some(1.0),
        "{m}"
    );
    // Lag comes from librdkafka's statistics every second, or from a broker query for a partition
    // paused before its first fetch: wait for it rather than race it.
    for p in ["0", "1"] {
        let label = format!("partition=\"{p}\"");
        wait::until("lag visible on every partition", DEADLINE, POLL, || {
            let m = futures::executor::block_on(engine.metrics());
            (metric(&m, "engine_consumer_lag_records", &label)? > 15_000.0).then_some(())
        })
        .await;
    }
    assert!(
        es.stats().max_in_flight <= 4,
        "never more than M×K requests"
    );
    let rss = engine.rss_kib();
    assert!(rss > 0 && rss < 256 * 1024, "resident memory {rss} KiB");

    es.set_faults(Faults::default());
    let expected = expected_ids("app", 2, &counts);
    wait::until("all records after the stall", DEADLINE, POLL, || {
        all_arrived(&es, &expected)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rebalance_between_two_engines_loses_nothing() {
    let broker = MockBroker::start(&[("app", 4)]);
    let es = EsServer::start(EsServerOptions::default())
        .await
        .expect("es");
    // Slow responses keep work in flight when the rebalance happens.
    es.set_faults(Faults {
        delay_ms: 30,
        ..Default::default()
    });
    let mut counts = produce_valid(&broker.bootstrap, "app", 4, 0, 4000);
    let opts = EngineOpts::new(&broker.bootstrap, &es.url(), "app", "g-rebalance");
    let mut a = Engine::start(&opts);
    wait::until("first engine delivering", DEADLINE, POLL, || {
        (es.stats().docs > 500).then_some(())
    })
    .await;
    let b = Engine::start(&opts);
    wait::until("partitions split between the two", DEADLINE, POLL, || {
        let sa = futures::executor::block_on(a.status());
        let sb = futures::executor::block_on(b.status());
        let (na, nb) = (
            sa["assigned_partitions"].as_array()?.len(),
            sb["assigned_partitions"].as_array()?.len(),
        );
        (na > 0 && nb > 0 && na + nb == 4).then_some(())
    })
    .await;
    let more = produce_valid(&broker.bootstrap, "app", 4, 4000, 4000);
    for (c, m) in counts.iter_mut().zip(more) {
        *c += m;
    }
    // The first engine leaves mid-stream: the other takes over its partitions from the commit.
    a.sigterm();
    assert_eq!(
        a.wait_exit(DEADLINE),
        Some(0),
        "clean exit on SIGTERM:\n{}",
        a.logs()
    );
    let expected = expected_ids("app", 4, &counts);
    wait::until("every record after the rebalance", DEADLINE, POLL, || {
        all_arrived(&es, &expected)
    })
    .await;
    wait::until(
        "the remaining engine owns every partition",
        DEADLINE,
        POLL,
        || {
            let s = futures::executor::block_on(b.status());
            (s["assigned_partitions"].as_array().map(Vec::len) == Some(4)).then_some(())
        },
    )
    .await;
    // Re-sends (answered 409) are the cost of the rebalance; printed to compare changes.
    eprintln!(
        "rebalance: 8000 records, {} re-sent (409)",
        es.stats().conflicts
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_test_sigkill_at_random_moments_loses_nothing() {
    const RECORDS: usize = 20_000;
    const PARTITIONS: i32 = 4;
    let broker = MockBroker::start(&[("app", PARTITIONS)]);
    let es = EsServer::start(EsServerOptions {
        keep_sources: false,
        ..Default::default()
    })
    .await
    .expect("es");
    es.set_faults(Faults {
        delay_ms: 5,
        ..Default::default()
    });
    let counts = produce_valid(&broker.bootstrap, "app", PARTITIONS, 0, RECORDS);
    let expected = expected_ids("app", PARTITIONS, &counts);
    let opts = EngineOpts::new(&broker.bootstrap, &es.url(), "app", "g-crash");
    let mut rng = rand::rng();
    let mut kills = 0;
    for _ in 0..4 {
        let mut e = Engine::start(&opts);
        // Kill while it is delivering (not while it still joins the group): wait for progress first.
        let before = es.stats().items;
        wait::until(
            "engine delivering",
            DEADLINE,
            Duration::from_millis(5),
            || (es.stats().items > before).then_some(()),
        )
        .await;
        let at = Duration::from_millis(rng.random_range(0..400));
        tokio::time::sleep(at).await;
        if all_arrived(&es, &expected).is_some() {
            break;
        }
        e.sigkill();
        kills += 1;
    }
    let _last = Engine::start(&opts);
    wait::until("every record after the crashes", DEADLINE, POLL, || {
        all_arrived(&es, &expected)
    })
    .await;
    let stats = es.stats();
    let lost = expected.difference(&es.ids()).count();
    // Replays of records that had reached Elasticsearch before a kill answer 409 on `create`.
    let delivered_twice = stats.conflicts;
    eprintln!(
        "crash test: {kills} SIGKILLs, {RECORDS} records, lost {lost}, delivered twice {delivered_twice}"
    );
    assert_eq!(lost, 0);
    assert_eq!(
        stats.docs, RECORDS as u64,
        "no duplicates in the index: ids are deterministic"
    );
    assert!(
        kills >= 1,
        "the engine was killed at least once while running"
    );
}

/// The group's committed metadata for one partition (what the engine lists as dead-lettered).
fn committed_metadata(bootstrap: &str, group: &str, topic: &str, partition: i32) -> Option<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .ok()?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let got = c.committed_offsets(tpl, Duration::from_secs(5)).ok()?;
    let e = got.find_partition(topic, partition)?;
    Some(e.metadata().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_dead_lettering_does_not_write_a_second_copy() {
    let broker = MockBroker::start(&[("app", 1), ("test-dead-letter", 1)]);
    let es = EsServer::start(EsServerOptions::default())
        .await
        .expect("es");
    // Elasticsearch holds the valid record at offset 0, so the commit point stays below the three
    // poison records behind it, which are dead-lettered at once.
    es.set_faults(Faults {
        stalled: true,
        ..Default::default()
    });
    let valid = log_line(0);
    let poison: Vec<&[u8]> = vec![valid.as_slice(), b"{not json", b"[1]", b"{oops"];
    test_support::kafka::produce(&broker.bootstrap, "app", poison.iter().map(|p| (0, *p)));
    let opts = EngineOpts::new(&broker.bootstrap, &es.url(), "app", "g-dlq-crash");
    let mut first = Engine::start(&opts);
    let b = broker.bootstrap.clone();
    let listed = tokio::task::spawn_blocking(move || {
        wait::until_blocking(
            "the commit lists the dead-lettered offsets",
            DEADLINE,
            POLL,
            || {
                committed_metadata(&b, "g-dlq-crash", "app", 0)
                    .filter(|m| m == "dead_lettered:1,2,3")
            },
        )
    })
    .await
    .expect("wait");
    assert_eq!(listed, "dead_lettered:1,2,3");
    assert_eq!(
        committed(&broker.bootstrap, "g-dlq-crash", "app", 1),
        vec![Some(0)],
        "the commit point is still below them"
    );
    first.sigkill();
    let _ = first.wait_exit(DEADLINE);

    es.set_faults(Faults::default());
    let second = Engine::start(&opts);
    let b = broker.bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        wait::until_blocking("offsets committed to the end", DEADLINE, POLL, || {
            (committed(&b, "g-dlq-crash", "app", 1) == vec![Some(4)]).then_some(())
        })
    })
    .await
    .expect("wait");
    assert!(es.ids().contains("app-0-0"));
    let b = broker.bootstrap.clone();
    let dead = tokio::task::spawn_blocking(move || {
        // Ask for more than three so that a second copy would be read too.
        test_support::kafka::read_topic(&b, "test-dead-letter", 1, 6, Duration::from_secs(3))
    })
    .await
    .expect("read dead letters");
    let mut offsets: Vec<String> = dead
        .iter()
        .filter_map(|r| {
            r.headers
                .iter()
                .find(|(k, _)| k == "dead_letter.offset")
                .map(|(_, v)| v.clone())
        })
        .collect();
    offsets.sort();
    assert_eq!(
        offsets,
        ["1", "2", "3"],
        "one copy each:\n{}",
        second.logs()
    );
    let m = second.metrics().await;
    assert_eq!(
        metric(&m, "engine_dead_letters_repeated_total", "pipeline"),
        Some(3.0),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rescale_drains_commits_and_restarts_at_the_new_parallelism() {
    let broker = MockBroker::start(&[("app", 2)]);
    let es = EsServer::start(EsServerOptions::default())
        .await
        .expect("es");
    es.set_faults(Faults {
        delay_ms: 20,
        ..Default::default()
    });
    let counts = produce_valid(&broker.bootstrap, "app", 2, 0, 6000);
    let engine = Engine::start(&EngineOpts::new(
        &broker.bootstrap,
        &es.url(),
        "app",
        "g-rescale",
    ));
    wait::until("delivering", DEADLINE, POLL, || {
        (es.stats().docs > 300).then_some(())
    })
    .await;
    let http = reqwest::Client::new();
    let url = format!("{}/control/rescale", engine.control_url());
    let denied = http
        .post(&url)
        .json(&serde_json::json!({"parallelism": 3}))
        .send()
        .await
        .expect("post");
    assert_eq!(denied.status(), 401);
    let bad = http
        .post(&url)
        .bearer_auth("secret")
        .json(&serde_json::json!({"parallelism": 0}))
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), 400);
    let ok = http
        .post(&url)
        .bearer_auth("secret")
        .json(&serde_json::json!({"parallelism": 3, "sink_parallelism": 1}))
        .send()
        .await
        .expect("post");
    assert_eq!(ok.status(), 200);
    let body: serde_json::Value = ok.json().await.expect("json");
    assert_eq!(
        (
            body["parallelism"].as_u64(),
            body["sink_parallelism"].as_u64()
        ),
        (Some(3), Some(1))
    );
    assert_eq!(body["state"], "running");
    let m = engine.metrics().await;
    assert_eq!(metric(&m, "engine_parallelism", "pipeline"), Some(3.0));
    let expected = expected_ids("app", 2, &counts);
    wait::until("every record after the rescale", DEADLINE, POLL, || {
        all_arrived(&es, &expected)
    })
    .await;
    // A clean drain neither loses nor repeats work.
    assert_eq!(es.stats().conflicts, 0, "rescale replayed records");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_commits_done_work_and_unregisters() {
    let events = Arc::new(Mutex::new(Vec::<serde_json::Value>::new()));
    let seen = events.clone();
    let app = axum::Router::new().route(
        "/announce",
        axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
            let seen = seen.clone();
            async move {
                seen.lock().expect("lock").push(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let broker = MockBroker::start(&[("app", 2)]);
    let es = EsServer::start(EsServerOptions::default())
        .await
        .expect("es");
    let counts = produce_valid(&broker.bootstrap, "app", 2, 0, 1000);
    let mut opts = EngineOpts::new(&broker.bootstrap, &es.url(), "app", "g-term");
    opts.extra_yaml =
        format!("announce: {{url: 'http://{hook}/announce', heartbeat_interval: 60s}}\n");
    let mut engine = Engine::start(&opts);
    let expected = expected_ids("app", 2, &counts);
    wait::until("delivered", DEADLINE, POLL, || all_arrived(&es, &expected)).await;
    engine.sigterm();
    assert_eq!(engine.wait_exit(DEADLINE), Some(0), "{}", engine.logs());
    let ends: Vec<Option<i64>> = counts.iter().map(|c| Some(*c as i64)).collect();
    assert_eq!(
        committed(&broker.bootstrap, "g-term", "app", 2),
        ends,
        "done work committed on the way out"
    );
    let got: Vec<String> = events
        .lock()
        .expect("lock")
        .iter()
        .map(|v| v["event"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(got.first().map(String::as_str), Some("register"));
    assert_eq!(got.last().map(String::as_str), Some("unregister"));
    let first = events.lock().expect("lock")[0].clone();
    assert_eq!(first["cluster"], "test");
    assert!(first["instance"].as_str().is_some_and(|s| !s.is_empty()));
}

#[tokio::test(flavor = "multi_thread")]
async fn rescale_abandons_in_flight_work_at_the_deadline_and_loses_nothing() {
    let broker = MockBroker::start(&[("app", 2)]);
    let es = EsServer::start(EsServerOptions::default())
        .await
        .expect("es");
    // Elasticsearch hangs: nothing can finish within the drain deadline.
    es.set_faults(Faults {
        stalled: true,
        ..Default::default()
    });
    let counts = produce_valid(&broker.bootstrap, "app", 2, 0, 3000);
    let mut opts = EngineOpts::new(&broker.bootstrap, &es.url(), "app", "g-abandon");
    opts.env.extend([
        // The deprecated millisecond key, still accepted (with a warning) over the file's `3s`.
        (
            "ENGINE__CONTROL__DRAIN_DEADLINE_MS".to_string(),
            "500".to_string(),
        ),
        // Longer than the test: only the abandon path can end the held requests.
        (
            "ENGINE__ELASTICSEARCH__REQUEST_TIMEOUT".into(),
            "10m".into(),
        ),
    ]);
    let engine = Engine::start(&opts);
    assert!(
        engine
            .logs()
            .contains("ENGINE__CONTROL__DRAIN_DEADLINE=500ms"),
        "the deprecated key is named with its replacement: {}",
        engine.logs()
    );
    wait::until(
        "requests held by the stalled cluster",
        DEADLINE,
        POLL,
        || (es.stats().in_flight > 0).then_some(()),
    )
    .await;
    let ok = reqwest::Client::new()
        .post(format!("{}/control/rescale", engine.control_url()))
        .bearer_auth("secret")
        .json(&serde_json::json!({"parallelism": 1, "sink_parallelism": 3}))
        .send()
        .await
        .expect("post");
    assert_eq!(ok.status(), 200);
    let body: serde_json::Value = ok.json().await.expect("json");
    assert_eq!(
        (
            body["state"].as_str(),
            body["parallelism"].as_u64(),
            body["sink_parallelism"].as_u64()
        ),
        (Some("running"), Some(1), Some(3))
    );
    let logs = engine.logs();
    assert!(
        logs.contains("drain deadline passed") && logs.contains("rewound abandoned work"),
        "the rescale abandoned and rewound the in-flight work:\n{logs}"
    );
    // Nothing was acknowledged, so nothing may have been committed past the start.
    for c in committed(&broker.bootstrap, "g-abandon", "app", 2) {
        assert!(
            c.is_none_or(|o| o == 0),
            "committed unacknowledged work: {c:?}"
        );
    }
    es.set_faults(Faults::default());
    let expected = expected_ids("app", 2, &counts);
    wait::until(
        "every record after the abandoned drain",
        DEADLINE,
        POLL,
        || all_arrived(&es, &expected),
    )
    .await;
    let ends: Vec<Option<i64>> = counts.iter().map(|c| Some(*c as i64)).collect();
    wait::until("offsets committed to the end", DEADLINE, POLL, || {
        (committed(&broker.bootstrap, "g-abandon", "app", 2) == ends).then_some(())
    })
    .await;
    let m = engine.metrics().await;
    assert_eq!(metric(&m, "engine_parallelism", "pipeline"), Some(1.0));
    assert_eq!(metric(&m, "engine_sink_parallelism", "pipeline"), Some(3.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_errors_are_survived_without_losing_records() {
    let broker = MockBroker::start(&[("app", 3)]);
    let es = EsServer::start(EsServerOptions::default())
        .await
        .expect("es");
    es.set_faults(Faults {
        delay_ms: 10,
        ..Default::default()
    });
    let mut counts = produce_valid(&broker.bootstrap, "app", 3, 0, 3000);
    let mut engine = Engine::start(&EngineOpts::new(
        &broker.bootstrap,
        &es.url(),
        "app",
        "g-broker-errors",
    ));
    wait::until("delivering", DEADLINE, POLL, || {
        (es.stats().docs > 300).then_some(())
    })
    .await;
    // Fetches fail with leadership and timeout errors, commits with coordinator errors, heartbeats
    // with a rebalance, and then the broker goes away for a while.
    broker.request_errors(
        "Fetch",
        &[
            "NOT_LEADER_FOR_PARTITION",
            "REQUEST_TIMED_OUT",
            "UNKNOWN_TOPIC_OR_PART",
            "NOT_LEADER_FOR_PARTITION",
        ],
    );
    broker.request_errors(
        "OffsetCommit",
        &[
            "REQUEST_TIMED_OUT",
            "COORDINATOR_NOT_AVAILABLE",
            "NOT_COORDINATOR",
            "REQUEST_TIMED_OUT",
        ],
    );
    broker.request_errors("Heartbeat", &["REBALANCE_IN_PROGRESS"]);
    let more = produce_valid(&broker.bootstrap, "app", 3, 3000, 3000);
    broker.command("broker-down 1").expect("broker down");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    broker.command("broker-up 1").expect("broker up");
    for (c, m) in counts.iter_mut().zip(more) {
        *c += m;
    }
    let expected = expected_ids("app", 3, &counts);
    wait::until("every record despite broker errors", DEADLINE, POLL, || {
        all_arrived(&es, &expected)
    })
    .await;
    let ends: Vec<Option<i64>> = counts.iter().map(|c| Some(*c as i64)).collect();
    wait::until("offsets committed to the end", DEADLINE, POLL, || {
        (committed(&broker.bootstrap, "g-broker-errors", "app", 3) == ends).then_some(())
    })
    .await;
    let logs = engine.logs();
    assert!(
        logs.contains("Disconnected") || logs.contains("Connection refused"),
        "the engine saw the broker go away:\n{logs}"
    );
    assert!(
        engine.child.try_wait().expect("try_wait").is_none(),
        "the engine survived the broker errors:\n{logs}"
    );
    engine.sigterm();
    assert_eq!(engine.wait_exit(DEADLINE), Some(0), "{}", engine.logs());
}
