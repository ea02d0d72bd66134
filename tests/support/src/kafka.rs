//! The librdkafka mock cluster hosted in its own process (`kafka-mock-broker`), and small Kafka
//! helpers for producing test data and reading topics back.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{Offset, TopicPartitionList};

/// Locates a binary of this workspace next to the running executable (see [`crate::binaries`]),
/// building it first if a partial build left it out.
pub fn bin_path(name: &str) -> PathBuf {
    crate::binaries::binary("test-support", name)
        .unwrap_or_else(|error| panic!("locating {name}: {error:#}"))
}

/// A mock-cluster broker process; killed when dropped.
pub struct MockBroker {
    child: Child,
    pub bootstrap: String,
    /// Fault-injection commands go in, one answer line per command comes out.
    control: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
}

impl MockBroker {
    /// Starts `kafka-mock-broker` with the given `(topic, partitions)` and waits for its address.
    pub fn start(topics: &[(&str, i32)]) -> Self {
        let mut cmd = Command::new(bin_path("kafka-mock-broker"));
        for (t, p) in topics {
            cmd.arg("--topic").arg(format!("{t}:{p}"));
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn kafka-mock-broker");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read bootstrap line");
        let bootstrap = line.trim().to_owned();
        assert!(
            !bootstrap.is_empty(),
            "kafka-mock-broker printed no address"
        );
        Self {
            child,
            bootstrap,
            control: Mutex::new((stdin, stdout)),
        }
    }

    /// Sends one fault-injection command (see the `kafka-mock-broker` binary) and returns its answer:
    /// `Ok(())` for `ok`, else the error text.
    pub fn command(&self, cmd: &str) -> Result<(), String> {
        let mut guard = self
            .control
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (stdin, stdout) = &mut *guard;
        writeln!(stdin, "{cmd}").map_err(|e| format!("writing to the broker: {e}"))?;
        stdin
            .flush()
            .map_err(|e| format!("writing to the broker: {e}"))?;
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .map_err(|e| format!("reading the broker's answer: {e}"))?;
        match line.trim() {
            "ok" => Ok(()),
            other => Err(other.to_owned()),
        }
    }

    /// The next requests of kind `api` fail, one error each, in order (e.g. `("Fetch",
    /// &["NOT_LEADER_FOR_PARTITION"; 3])`).
    pub fn request_errors(&self, api: &str, errors: &[&str]) {
        let cmd = format!("request-errors {api} {}", errors.join(","));
        if let Err(e) = self.command(&cmd) {
            panic!("{cmd}: {e}");
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for MockBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request kind by its Kafka protocol name (`Fetch`, `OffsetCommit`, …) or number.
pub fn parse_api_key(name: &str) -> anyhow::Result<RDKafkaApiKey> {
    use RDKafkaApiKey as K;
    let all = [
        K::Produce,
        K::Fetch,
        K::ListOffsets,
        K::Metadata,
        K::OffsetCommit,
        K::OffsetFetch,
        K::FindCoordinator,
        K::JoinGroup,
        K::Heartbeat,
        K::LeaveGroup,
        K::SyncGroup,
        K::DescribeGroups,
        K::ListGroups,
        K::ApiVersion,
        K::InitProducerId,
        K::OffsetForLeaderEpoch,
    ];
    let by_number = name.parse::<i16>().ok();
    all.into_iter()
        .find(|k| format!("{k:?}").eq_ignore_ascii_case(name) || by_number == Some(i16::from(*k)))
        .ok_or_else(|| anyhow::anyhow!("unknown request kind `{name}`"))
}

/// A Kafka error by name (`NOT_LEADER_FOR_PARTITION`, `REQUEST_TIMED_OUT`, …, with or without the
/// `RD_KAFKA_RESP_ERR_` prefix) or by its numeric code.
pub fn parse_error(name: &str) -> anyhow::Result<RDKafkaRespErr> {
    if let Ok(code) = name.parse::<i32>() {
        return RDKafkaRespErr::try_from(code)
            .map_err(|_| anyhow::anyhow!("unknown error code {code}"));
    }
    let wanted = name.trim_start_matches("RD_KAFKA_RESP_ERR_");
    (-200..=200)
        .filter_map(|c| RDKafkaRespErr::try_from(c).ok())
        .find(|e| {
            format!("{e:?}")
                .trim_start_matches("RD_KAFKA_RESP_ERR_")
                .eq_ignore_ascii_case(wanted)
        })
        .ok_or_else(|| anyhow::anyhow!("unknown error `{name}`"))
}

pub fn producer(bootstrap: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create()
        .expect("create producer")
}

/// Produces `(partition, payload)` records and waits until all are acknowledged.
pub fn produce<'a>(
    bootstrap: &str,
    topic: &str,
    records: impl IntoIterator<Item = (i32, &'a [u8])>,
) {
    let p = producer(bootstrap);
    for (partition, payload) in records {
        let mut rec: BaseRecord<'_, (), [u8]> =
            BaseRecord::to(topic).partition(partition).payload(payload);
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((e, back)) => {
                    assert!(
                        matches!(
                            e.rdkafka_error_code(),
                            Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ),
                        "produce failed: {e}"
                    );
                    p.poll(Duration::from_millis(10));
                    rec = back;
                }
            }
        }
    }
    p.flush(Duration::from_secs(60))
        .expect("flush produced records");
}

/// A record read back from a topic.
#[derive(Debug, Clone)]
pub struct ReadRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// Reads every record of `topic` (all partitions, from the start) until `expected` were read or the
/// deadline passes.
pub fn read_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    deadline: Duration,
) -> Vec<ReadRecord> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "test-support-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("create reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    c.assign(&tpl).expect("assign");
    let end = Instant::now() + deadline;
    let mut out = Vec::new();
    while out.len() < expected && Instant::now() < end {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| {
                            (
                                x.key.to_owned(),
                                String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(ReadRecord {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                headers,
            });
        }
    }
    out
}

/// Committed offsets of `group` for `topic`'s partitions (`None` where nothing was committed).
pub fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("create offset reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        })
        .collect()
}
