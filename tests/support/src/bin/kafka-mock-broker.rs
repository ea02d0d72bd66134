//! Hosts librdkafka's mock cluster (a working in-memory Kafka-protocol broker on loopback) in its own
//! process, so separate engine processes, kcat and peers can use it. Prints the bootstrap servers on
//! the first line of stdout, then runs until killed.

use std::io::Write;

use clap::Parser;
use rdkafka::mocking::MockCluster;

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
    // The cluster lives as long as this process; park until killed.
    loop {
        std::thread::park();
    }
}
