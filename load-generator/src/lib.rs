//! Produces JSON log records to a Kafka topic at a controlled rate: a schedule of phases, or a rate set
//! at run time by a command on stdin. Counts what the broker acknowledged, so a test can check that every
//! acknowledged record reached the sink.

pub mod schedule;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use serde_json::json;

use schedule::Phase;

/// How often the pacing loop wakes up.
const TICK: Duration = Duration::from_millis(10);
/// Credit never exceeds this much of the rate, so a stall is not followed by a burst.
const MAX_CREDIT: Duration = Duration::from_secs(1);
const LEVELS: [&str; 3] = ["info", "warn", "error"];

/// A command from stdin: `rate N` or `stop`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Command {
    Rate(f64),
    Stop,
}

impl std::str::FromStr for Command {
    type Err = String;

    fn from_str(line: &str) -> Result<Self, String> {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("stop"), None, _) => Ok(Command::Stop),
            (Some("rate"), Some(rate), None) => schedule::parse_rate(rate).map(Command::Rate),
            _ => Err(format!(
                "unknown command {line:?}; expected `rate N` or `stop`"
            )),
        }
    }
}

/// Where the records go and what they say.
#[derive(Debug, Clone)]
pub struct Target {
    pub brokers: String,
    pub topic: String,
    pub service: String,
}

/// What to produce: a schedule, run once or forever. Commands override it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub phases: Vec<Phase>,
    pub repeat: bool,
}

/// Counts so far. `acked` records are durably on the broker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub produced: u64,
    pub acked: u64,
    pub failed: u64,
}

#[derive(Default)]
struct Deliveries {
    acked: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.acked.fetch_add(1, Ordering::Relaxed),
            Err((error, _)) => {
                log(&format!("delivery failed: {error}"));
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

fn log(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "load-generator: {line}");
}

/// Produces until the plan ends or `stop` arrives, then waits for the broker's acknowledgements.
/// `report` is called about once a second with the current rate and totals.
pub fn run(
    target: &Target,
    plan: &Plan,
    commands: &Receiver<Command>,
    mut report: impl FnMut(f64, Totals),
) -> anyhow::Result<Totals> {
    let producer: ThreadedProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", &target.brokers)
        .set("linger.ms", "5")
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create_with_context(Deliveries::default())
        .context("creating the Kafka producer")?;
    let started = Instant::now();
    let mut overridden: Option<f64> = None;
    let mut credit = 0.0_f64;
    let mut produced = 0_u64;
    let mut last_tick = started;
    let mut last_report = started;
    let totals = |produced| Totals {
        produced,
        acked: producer.context().acked.load(Ordering::Relaxed),
        failed: producer.context().failed.load(Ordering::Relaxed),
    };
    loop {
        match commands.try_recv() {
            Ok(Command::Stop) => break,
            Ok(Command::Rate(rate)) => overridden = Some(rate),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => {}
        }
        let now = Instant::now();
        let rate = match overridden {
            Some(rate) => rate,
            None => match schedule::rate_at(&plan.phases, plan.repeat, now - started) {
                Some(rate) => rate,
                None => break,
            },
        };
        credit =
            (credit + rate * (now - last_tick).as_secs_f64()).min(rate * MAX_CREDIT.as_secs_f64());
        last_tick = now;
        while credit >= 1.0 {
            if !send(&producer, target, produced)? {
                break;
            }
            produced += 1;
            credit -= 1.0;
        }
        if now - last_report >= Duration::from_secs(1) {
            report(rate, totals(produced));
            last_report = now;
        }
        std::thread::sleep(TICK);
    }
    producer
        .flush(Duration::from_secs(60))
        .context("waiting for the broker to acknowledge every record")?;
    Ok(totals(produced))
}

/// Sends record number `seq`; `false` when the producer's queue is full (try again next tick).
fn send(
    producer: &ThreadedProducer<Deliveries>,
    target: &Target,
    seq: u64,
) -> anyhow::Result<bool> {
    let payload = json!({
        "@timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "service": target.service,
        "level": LEVELS[(seq % 3) as usize],
        "message": format!("request {seq} served"),
        "seq": seq,
    })
    .to_string();
    // The key spreads records over the partitions evenly.
    let key = seq.to_string();
    let record = BaseRecord::to(&target.topic).key(&key).payload(&payload);
    match producer.send(record) {
        Ok(()) => Ok(true),
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => Ok(false),
        Err((error, _)) => Err(error).context("producing a record"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_commands() {
        assert_eq!("rate 250".parse::<Command>(), Ok(Command::Rate(250.0)));
        assert_eq!(" stop ".parse::<Command>(), Ok(Command::Stop));
        assert!("rate".parse::<Command>().is_err());
        assert!("rate fast".parse::<Command>().is_err());
        assert!("rate 1 2".parse::<Command>().is_err());
        assert!(
            "go".parse::<Command>()
                .expect_err("refused")
                .contains("`rate N` or `stop`")
        );
    }
}
