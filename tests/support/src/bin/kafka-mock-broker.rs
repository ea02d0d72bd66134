//! Hosts librdkafka's mock cluster (a working in-memory Kafka-protocol broker on loopback) in its own
//! process, so separate engine processes, kcat and peers can use it. Prints the bootstrap servers on
//! the first line of stdout, then runs until killed.
//!
//! Broker faults are injected through stdin, one command per line; each is answered with one line on
//! stdout (`ok` or `error: …`). When stdin closes the broker keeps running.
//!
//! ```text
//! request-errors <ApiKey> <error>[,<error>…]  next requests of that kind fail, one error each
//! clear-errors <ApiKey>                       drop the errors still queued for that kind
//! broker-down <id> / broker-up <id>           close / accept connections of a broker
//! rtt <id> <ms>                               add round-trip delay to a broker's responses
//! ```
//!
//! `ApiKey` is a request kind such as `Fetch`, `OffsetCommit`, `Heartbeat`, `JoinGroup`, `SyncGroup`,
//! `Metadata`, `ListOffsets`, `FindCoordinator`, `Produce`, `OffsetFetch`; an error is a Kafka error
//! name such as `NOT_LEADER_FOR_PARTITION` or a numeric code (see `test_support::kafka`).
//!
//! Note on capacity: the mock cluster keeps at most 5 MiB of record batches (as produced, so
//! compressed batches count compressed) per partition and drops the oldest beyond that. Spread large
//! data sets over enough partitions or produce them compressed.

use std::io::{BufRead, Write};
use std::time::Duration;

use clap::Parser;
use rdkafka::mocking::MockCluster;
use test_support::kafka::{parse_api_key, parse_error};

#[derive(Parser)]
struct Args {
    /// `name:partitions`, repeatable.
    #[arg(long = "topic")]
    topics: Vec<String>,
    #[arg(long, default_value_t = 1)]
    brokers: i32,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cluster = MockCluster::new(args.brokers)?;
    for t in &args.topics {
        let (name, parts) = t
            .rsplit_once(':')
            .ok_or_else(|| anyhow::anyhow!("--topic {t}: expected name:partitions"))?;
        let parts: i32 = parts
            .parse()
            .map_err(|e| anyhow::anyhow!("--topic {t}: {e}"))?;
        cluster.create_topic(name, parts, 1)?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", cluster.bootstrap_servers())?;
    out.flush()?;
    drop(out);
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let reply = match command(&cluster, line) {
            Ok(()) => "ok".to_owned(),
            Err(e) => format!("error: {e:#}"),
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{reply}")?;
        out.flush()?;
    }
    // The cluster lives as long as this process; park until killed.
    loop {
        std::thread::park();
    }
}

fn command<T>(cluster: &MockCluster<'_, T>, line: &str) -> anyhow::Result<()>
where
    T: rdkafka::ClientContext,
{
    let words: Vec<&str> = line.split_whitespace().collect();
    let int = |s: Option<&&str>, what: &str| -> anyhow::Result<i64> {
        s.ok_or_else(|| anyhow::anyhow!("missing {what}"))?
            .parse::<i64>()
            .map_err(|e| anyhow::anyhow!("{what}: {e}"))
    };
    match words.first().copied() {
        Some("request-errors") => {
            let key = parse_api_key(words.get(1).copied().unwrap_or_default())?;
            let errors = words
                .get(2)
                .ok_or_else(|| anyhow::anyhow!("missing errors"))?
                .split(',')
                .map(parse_error)
                .collect::<anyhow::Result<Vec<_>>>()?;
            cluster.request_errors(key, &errors);
        }
        Some("clear-errors") => {
            cluster.clear_request_errors(parse_api_key(words.get(1).copied().unwrap_or_default())?);
        }
        Some("broker-down") => cluster.broker_down(i32::try_from(int(words.get(1), "id")?)?)?,
        Some("broker-up") => cluster.broker_up(i32::try_from(int(words.get(1), "id")?)?)?,
        Some("rtt") => {
            let id = i32::try_from(int(words.get(1), "id")?)?;
            let ms = u64::try_from(int(words.get(2), "ms")?)?;
            cluster.broker_round_trip_time(id, Duration::from_millis(ms))?;
        }
        _ => anyhow::bail!("unknown command `{line}`"),
    }
    Ok(())
}
