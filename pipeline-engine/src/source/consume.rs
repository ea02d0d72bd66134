//! The consume stage: one OS thread owning the Kafka consumer. It hands records to the process stage
//! through a bounded buffer and pauses its partitions while that buffer is full, so a slow sink holds
//! the consumer back instead of filling memory. It also serves rebalances (drain, commit, let go) and
//! commits the tracker's offsets.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::metrics::PartitionLabels;
use crate::source::completion::Completion;
use crate::source::offsets::{CommitPoint, TopicPartition, parse_metadata};
use crate::status::{AssignedPartition, StatusBoard};
use crate::transform::record::{Position, SourceRecord};

/// Batches waiting for the process stage before the consumer stops taking records.
const PAUSE_AFTER_HELD_BATCHES: usize = 4;

/// How long the consumer waits for room without taking records before it pauses its partitions.
/// Until then librdkafka's bounded prefetch queue (`kafka.queued_max_kbytes`) holds what arrives;
/// pausing discards that prefetch, so short bursts of back pressure are waited out instead. Longer
/// than this (Elasticsearch slow or stalled), the partitions are paused and the consumer keeps
/// polling so it stays in the group.
const PAUSE_AFTER_BLOCKED: Duration = Duration::from_millis(500);

/// How long an assignment waits for the committed offsets' metadata.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(5);

/// How often partitions without a known high watermark get one from the broker (for their lag).
const WATERMARK_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error("kafka consumer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// Requests from the supervisor to the consumer thread.
pub enum Command {
    /// Where to send batches; `None` holds them (and pauses the partitions). Acknowledged once applied,
    /// after which the thread holds no sender to earlier stages.
    Output(
        Option<flume::Sender<Vec<SourceRecord>>>,
        tokio::sync::oneshot::Sender<()>,
    ),
    /// Commit what is done. With `rewind`, unfinished records were abandoned: seek each partition back
    /// to its lowest unfinished offset so they are read again.
    Checkpoint {
        rewind: bool,
        reply: tokio::sync::oneshot::Sender<()>,
    },
    /// Final commit, then leave the group.
    Stop,
}

#[derive(Default)]
struct Buffer {
    /// Full batches waiting for room in the process stage's buffer.
    held: VecDeque<Vec<SourceRecord>>,
    partial: Vec<SourceRecord>,
}

impl Buffer {
    /// Removes the records of `tps`, returning the lowest removed offset (and generation) per partition.
    fn remove_partitions(
        &mut self,
        tps: &[TopicPartition],
    ) -> BTreeMap<TopicPartition, (u64, i64)> {
        let mut lowest: BTreeMap<TopicPartition, (u64, i64)> = BTreeMap::new();
        let mut keep = |r: &SourceRecord| {
            let p = &r.position;
            let hit = tps
                .iter()
                .any(|tp| tp.partition == p.partition && tp.topic == p.topic);
            if hit {
                let e = lowest
                    .entry(TopicPartition::new(p.topic.clone(), p.partition))
                    .or_insert((p.generation, p.offset));
                e.1 = e.1.min(p.offset);
            }
            !hit
        };
        self.partial.retain(&mut keep);
        for b in &mut self.held {
            b.retain(&mut keep);
        }
        self.held.retain(|b| !b.is_empty());
        lowest
    }

    fn len(&self) -> usize {
        self.partial.len() + self.held.iter().map(Vec::len).sum::<usize>()
    }
}

pub struct EngineContext {
    completion: Arc<Completion>,
    status: Arc<StatusBoard>,
    buffer: Mutex<Buffer>,
    drain_deadline: Duration,
    /// Set by a rebalance so the loop re-applies its pause to a fresh assignment.
    reassigned: AtomicBool,
    /// Assigned partitions whose high watermark librdkafka does not know yet (never fetched, e.g.
    /// paused by back pressure before their first fetch), with their committed offset if any. The
    /// consumer thread asks the broker for their watermarks so their lag is not shown as 0.
    unknown_high: Mutex<Vec<(TopicPartition, i64)>>,
    /// Where a partition without a committed offset starts (`auto.offset.reset`).
    reset_latest: bool,
    /// Done points of revoked partitions whose commit was refused during the rebalance, committed
    /// in the next generation before its assignment takes effect.
    refused: Mutex<BTreeMap<TopicPartition, CommitPoint>>,
}

impl EngineContext {
    fn buffer(&self) -> MutexGuard<'_, Buffer> {
        self.buffer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn refused(&self) -> MutexGuard<'_, BTreeMap<TopicPartition, CommitPoint>> {
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Commits, in the new generation and before the assignment starts fetching from the committed
    /// offsets, the done points whose commit the broker refused on revoke (the mock broker refuses
    /// every commit while the group is joining). Safe whoever owns the partition now: everything
    /// below a done point is in Elasticsearch, and a commit that moves back only costs re-sends.
    fn commit_refused(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let refused = std::mem::take(&mut *self.refused());
        if refused.is_empty() {
            return;
        }
        let offsets: Vec<CommitPoint> = refused.into_values().collect();
        let kept = offsets
            .iter()
            .filter(|c| tpl.find_partition(&c.tp.topic, c.tp.partition).is_some())
            .count();
        match commit_offsets(consumer, &offsets) {
            Ok(()) => {
                self.completion.metrics.commits.inc();
                tracing::info!(
                    partitions = offsets.len(),
                    reassigned_here = kept,
                    "committed the done points refused on revoke"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "committing the done points refused on revoke failed")
            }
        }
    }

    fn publish_assignment(&self) {
        let assigned: Vec<AssignedPartition> = self
            .completion
            .tracker()
            .assigned()
            .map(|tp| AssignedPartition {
                topic: tp.topic.to_string(),
                partition: tp.partition,
            })
            .collect();
        self.status.update(|s| s.assigned_partitions = assigned);
    }

    /// Drops every record not yet handed to the stages and stops tracking them, so they do not hold the
    /// commit point (they are fetched again).
    fn drop_buffered(&self) {
        let all: Vec<TopicPartition> = self.completion.tracker().assigned().cloned().collect();
        let dropped = self.buffer().remove_partitions(&all);
        let mut t = self.completion.tracker();
        for (tp, (generation, offset)) in &dropped {
            t.forget_from(tp, *generation, *offset);
        }
    }

    /// Drains work of revoked partitions (up to the deadline), commits what is done and forgets them.
    fn revoke(&self, consumer: &BaseConsumer<Self>, tps: Vec<TopicPartition>) {
        let _span = tracing::info_span!("revoke", partitions = tps.len()).entered();
        let dropped = self.buffer().remove_partitions(&tps);
        {
            let mut t = self.completion.tracker();
            for (tp, (generation, offset)) in &dropped {
                t.forget_from(tp, *generation, *offset);
            }
        }
        let deadline = Instant::now() + self.drain_deadline;
        loop {
            let pending: usize = {
                let t = self.completion.tracker();
                tps.iter().map(|tp| t.pending(tp)).sum()
            };
            if pending == 0 {
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    pending,
                    "drain deadline passed on revoke; unfinished records will be re-read by the next owner"
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if consumer.assignment_lost() {
            tracing::warn!("assignment lost; not committing for revoked partitions");
        } else if let Err(refused) = commit(consumer, &self.completion, Some(&tps)) {
            let mut r = self.refused();
            for point in refused {
                match r.get(&point.tp) {
                    Some(known) if known.offset > point.offset => {}
                    _ => {
                        r.insert(point.tp.clone(), point);
                    }
                }
            }
        }
        let mut t = self.completion.tracker();
        for tp in &tps {
            t.revoke(tp);
            let labels = PartitionLabels {
                topic: tp.topic.to_string(),
                partition: tp.partition.to_string(),
            };
            self.completion.metrics.lag_records.remove(&labels);
            self.completion.metrics.lag_seconds.remove(&labels);
        }
        drop(t);
        self.publish_assignment();
        tracing::info!("partitions revoked");
    }
}

impl ClientContext for EngineContext {
    fn stats(&self, stats: Statistics) {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let t = self.completion.tracker();
        let mut unknown = Vec::new();
        for (topic, ts) in &stats.topics {
            for (partition, ps) in &ts.partitions {
                let tp = TopicPartition::new(topic.as_str(), *partition);
                if *partition < 0 || t.generation(&tp).is_none() {
                    continue;
                }
                if ps.hi_offset < 0 && t.committable(&tp).is_none() {
                    unknown.push((tp, ps.committed_offset));
                    continue;
                }
                let lag = match t.committable(&tp) {
                    Some(c) if ps.hi_offset >= 0 => (ps.hi_offset - c).max(0),
                    // Nothing consumed from it yet: from the committed offset, or where
                    // `auto.offset.reset` starts.
                    None if ps.hi_offset >= 0 => {
                        let start = if ps.committed_offset >= 0 {
                            ps.committed_offset
                        } else if self.reset_latest {
                            ps.hi_offset
                        } else {
                            ps.lo_offset.max(0)
                        };
                        (ps.hi_offset - start).max(0)
                    }
                    _ => ps.consumer_lag.max(0),
                };
                let seconds = if lag > 0 {
                    t.oldest_timestamp_ms(&tp)
                        .map_or(0.0, |ts| ((now_ms - ts).max(0)) as f64 / 1000.0)
                } else {
                    0.0
                };
                let labels = PartitionLabels {
                    topic: topic.clone(),
                    partition: partition.to_string(),
                };
                self.completion
                    .metrics
                    .lag_records
                    .get_or_create(&labels)
                    .set(lag);
                self.completion
                    .metrics
                    .lag_seconds
                    .get_or_create(&labels)
                    .set(seconds);
            }
        }
        *self
            .unknown_high
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = unknown;
    }
}

impl ConsumerContext for EngineContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let tps = tpl
                    .elements()
                    .iter()
                    .map(|e| TopicPartition::new(e.topic(), e.partition()))
                    .collect();
                self.revoke(consumer, tps);
            }
            Rebalance::Assign(tpl) => self.commit_refused(consumer, tpl),
            Rebalance::Error(e) => tracing::error!(error = %e, "rebalance error"),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            // The commits' metadata lists records at or above the commit point that an earlier owner
            // (or this one before a crash) already dead-lettered.
            let committed = match consumer.committed_offsets((*tpl).clone(), COMMITTED_TIMEOUT) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "reading committed metadata; dead letters of a replay may be written twice");
                    None
                }
            };
            {
                let mut t = self.completion.tracker();
                for e in tpl.elements() {
                    let listed = committed
                        .as_ref()
                        .and_then(|c| c.find_partition(e.topic(), e.partition()))
                        .map(|c| parse_metadata(c.metadata()))
                        .unwrap_or_default();
                    t.assign_with(TopicPartition::new(e.topic(), e.partition()), listed);
                }
            }
            self.reassigned.store(true, Ordering::SeqCst);
            self.publish_assignment();
            tracing::info!(partitions = tpl.count(), "partitions assigned");
        }
    }
}

/// Commits the tracker's offsets (all moved partitions, or exactly `only`), synchronously. On failure,
/// returns the offsets it tried to commit.
fn commit(
    consumer: &BaseConsumer<EngineContext>,
    completion: &Completion,
    only: Option<&[TopicPartition]>,
) -> Result<(), Vec<CommitPoint>> {
    let offsets: Vec<CommitPoint> = {
        let t = completion.tracker();
        match only {
            Some(tps) => tps.iter().filter_map(|tp| t.commit_point(tp)).collect(),
            None => t.to_commit(),
        }
    };
    if offsets.is_empty() {
        return Ok(());
    }
    match commit_offsets(consumer, &offsets) {
        Ok(()) => {
            completion.metrics.commits.inc();
            let mut t = completion.tracker();
            for point in &offsets {
                t.mark_committed(point);
            }
            tracing::debug!(partitions = offsets.len(), "offsets committed");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(error = %e, "offset commit failed; will retry");
            Err(offsets)
        }
    }
}

fn commit_offsets(
    consumer: &BaseConsumer<EngineContext>,
    offsets: &[CommitPoint],
) -> rdkafka::error::KafkaResult<()> {
    let mut tpl = TopicPartitionList::new();
    for c in offsets {
        let mut e = tpl.add_partition(&c.tp.topic, c.tp.partition);
        e.set_offset(Offset::Offset(c.offset))?;
        e.set_metadata(c.metadata.as_str());
    }
    consumer.commit(&tpl, CommitMode::Sync)
}

pub struct ConsumerThread {
    consumer: BaseConsumer<EngineContext>,
    commands: std::sync::mpsc::Receiver<Command>,
    topics: Vec<Arc<str>>,
    fetch_batch: usize,
    commit_interval: Duration,
    out: Option<flume::Sender<Vec<SourceRecord>>>,
    paused: bool,
    /// Where a partition without a committed offset starts (`auto.offset.reset`).
    reset_latest: bool,
}

pub fn client_config(k: &KafkaConfig, instance_id: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &k.brokers)
        .set("group.id", &k.group_id)
        .set("client.id", format!("pipeline-engine-{instance_id}"))
        // Offsets are committed only from the tracker, never automatically.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", k.auto_offset_reset.as_str())
        .set(
            "session.timeout.ms",
            k.session_timeout.as_millis().to_string(),
        )
        .set("statistics.interval.ms", "1000")
        .set(
            "queued.max.messages.kbytes",
            k.queued_max_kbytes.to_string(),
        )
        .set("queued.min.messages", "20000")
        // librdkafka waits this long to refetch once its prefetch queue was full (default 1 s).
        .set("fetch.queue.backoff.ms", "20")
        // The broker answers a fetch as soon as data is there; waiting longer only adds latency.
        .set("fetch.wait.max.ms", "10");
    for (key, v) in &k.properties {
        cfg.set(key, v);
    }
    cfg
}

impl ConsumerThread {
    pub fn new(
        k: &KafkaConfig,
        instance_id: &str,
        completion: Arc<Completion>,
        status: Arc<StatusBoard>,
        drain_deadline: Duration,
        commands: std::sync::mpsc::Receiver<Command>,
    ) -> Result<Self, ConsumeError> {
        let ctx = EngineContext {
            completion,
            status,
            buffer: Mutex::new(Buffer::default()),
            drain_deadline,
            reassigned: AtomicBool::new(false),
            unknown_high: Mutex::new(Vec::new()),
            reset_latest: k.auto_offset_reset == crate::config::OffsetReset::Latest,
            refused: Mutex::new(BTreeMap::new()),
        };
        let consumer: BaseConsumer<EngineContext> =
            client_config(k, instance_id).create_with_context(ctx)?;
        let topics: Vec<&str> = k.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        Ok(Self {
            consumer,
            commands,
            topics: k.topics.iter().map(|t| Arc::from(t.as_str())).collect(),
            fetch_batch: k.fetch_batch,
            commit_interval: k.commit_interval,
            out: None,
            paused: false,
            reset_latest: k.auto_offset_reset == crate::config::OffsetReset::Latest,
        })
    }

    fn ctx(&self) -> &EngineContext {
        self.consumer.context()
    }

    /// Runs until `Command::Stop` (or the command channel closes), then commits and leaves the group.
    pub fn run(mut self) {
        let _span = tracing::info_span!("consume").entered();
        let mut last_commit = Instant::now();
        let mut polls: u32 = 0;
        let mut blocked_since: Option<Instant> = None;
        let mut last_watermarks = Instant::now();
        loop {
            match self.commands.try_recv() {
                Ok(Command::Output(out, ack)) => {
                    self.out = out;
                    let _ = ack.send(());
                }
                Ok(Command::Checkpoint { rewind, reply }) => {
                    if rewind {
                        self.rewind();
                    }
                    let _ = commit(&self.consumer, &self.ctx().completion, None);
                    let _ = reply.send(());
                }
                Ok(Command::Stop) | Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
            }
            let held = self.flush_held();
            if self.ctx().reassigned.swap(false, Ordering::SeqCst) {
                // librdkafka keeps a partition's pause across a revoke and a later re-assign, while
                // newly assigned partitions start unpaused: resume the whole new assignment so that its
                // state is known, and let back pressure pause it again if it must. (Assuming "unpaused"
                // left re-assigned partitions paused for good: never fetched, their lag frozen.)
                self.paused = true;
                self.set_paused(false);
            }
            // Hysteresis: pausing discards librdkafka's prefetched records, so pause only once a few
            // batches have waited for a while, and resume once they are all handed on.
            if held >= PAUSE_AFTER_HELD_BATCHES {
                let since = *blocked_since.get_or_insert_with(Instant::now);
                if self.out.is_some() && !self.paused && since.elapsed() < PAUSE_AFTER_BLOCKED {
                    // Take no more records for now; wait for room downstream.
                    std::thread::sleep(Duration::from_millis(2));
                    if last_commit.elapsed() >= self.commit_interval {
                        let _ = commit(&self.consumer, &self.ctx().completion, None);
                        last_commit = Instant::now();
                    }
                    continue;
                }
            } else {
                blocked_since = None;
            }
            if self.out.is_none() || held >= PAUSE_AFTER_HELD_BATCHES {
                self.set_paused(true);
            } else if held == 0 {
                self.set_paused(false);
            }
            let holding = held > 0;
            let partial_waiting = !self.ctx().buffer().partial.is_empty();
            let timeout = if holding {
                Duration::from_millis(5)
            } else if partial_waiting {
                Duration::ZERO
            } else {
                Duration::from_millis(100)
            };
            let idle = match self.consumer.poll(timeout) {
                Some(Ok(msg)) => {
                    self.accept(&msg);
                    false
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "consumer error");
                    true
                }
                None => {
                    let mut b = self.ctx().buffer();
                    if !b.partial.is_empty() {
                        let batch = std::mem::take(&mut b.partial);
                        b.held.push_back(batch);
                    }
                    true
                }
            };
            if idle && last_watermarks.elapsed() >= WATERMARK_INTERVAL {
                self.lag_from_watermarks();
                last_watermarks = Instant::now();
            }
            // Reading the clock for every record costs more than the check is worth.
            polls = polls.wrapping_add(1);
            if (idle || polls.is_multiple_of(256)) && last_commit.elapsed() >= self.commit_interval
            {
                let _ = commit(&self.consumer, &self.ctx().completion, None);
                last_commit = Instant::now();
            }
        }
        // Records still held never reached the stages; they are re-read by whoever owns the partition next.
        self.ctx().drop_buffered();
        let _ = commit(&self.consumer, &self.ctx().completion, None);
        tracing::info!("consumer leaving the group");
        // Dropping the consumer closes it: the revoke callback runs once more and commits.
    }

    fn accept(&self, msg: &rdkafka::message::BorrowedMessage<'_>) {
        let topic = match self.topics.iter().find(|t| ***t == *msg.topic()) {
            Some(t) => t.clone(),
            None => Arc::from(msg.topic()),
        };
        let tp = TopicPartition {
            topic: topic.clone(),
            partition: msg.partition(),
        };
        let timestamp_ms = msg.timestamp().to_millis();
        let c = &self.ctx().completion;
        let generation = {
            let mut t = c.tracker();
            let Some(g) = t.generation(&tp) else {
                // Not ours (any more): the owner reads it.
                return;
            };
            t.track(&tp, g, msg.offset(), timestamp_ms);
            g
        };
        c.metrics.records_in.inc();
        let record = SourceRecord {
            position: Position {
                topic,
                partition: msg.partition(),
                offset: msg.offset(),
                generation,
            },
            timestamp_ms,
            key: msg.key().map(Bytes::copy_from_slice),
            payload: msg
                .payload()
                .map(Bytes::copy_from_slice)
                .unwrap_or_default(),
        };
        let mut b = self.ctx().buffer();
        b.partial.push(record);
        if b.partial.len() >= self.fetch_batch {
            let batch = std::mem::take(&mut b.partial);
            b.held.push_back(batch);
        }
    }

    /// Lag of partitions librdkafka has no high watermark for yet, from a broker query: high
    /// watermark minus the committed offset (or where `auto.offset.reset` starts).
    fn lag_from_watermarks(&self) {
        let unknown = std::mem::take(
            &mut *self
                .ctx()
                .unknown_high
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for (tp, committed) in unknown {
            let (low, high) = match self.consumer.fetch_watermarks(
                &tp.topic,
                tp.partition,
                Duration::from_millis(500),
            ) {
                Ok(w) => w,
                Err(e) => {
                    tracing::debug!(error = %e, topic = %tp.topic, partition = tp.partition, "watermarks");
                    continue;
                }
            };
            let start = if committed >= 0 {
                committed
            } else if self.reset_latest {
                high
            } else {
                low
            };
            let labels = PartitionLabels {
                topic: tp.topic.to_string(),
                partition: tp.partition.to_string(),
            };
            self.ctx()
                .completion
                .metrics
                .lag_records
                .get_or_create(&labels)
                .set((high - start).max(0));
        }
    }

    /// Hands held batches to the process stage; returns how many are still waiting.
    fn flush_held(&mut self) -> usize {
        let mut b = self.ctx().buffer();
        let Some(out) = &self.out else {
            return b.held.len();
        };
        while let Some(batch) = b.held.pop_front() {
            match out.try_send(batch) {
                Ok(()) => {}
                Err(flume::TrySendError::Full(batch)) => {
                    b.held.push_front(batch);
                    break;
                }
                Err(flume::TrySendError::Disconnected(batch)) => {
                    b.held.push_front(batch);
                    drop(b);
                    self.out = None;
                    return self.ctx().buffer().held.len();
                }
            }
        }
        b.held.len()
    }

    fn set_paused(&mut self, pause: bool) {
        if pause == self.paused {
            return;
        }
        let assignment = match self.consumer.assignment() {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "reading assignment");
                return;
            }
        };
        if assignment.count() == 0 {
            return;
        }
        let res = if pause {
            self.consumer.pause(&assignment)
        } else {
            self.consumer.resume(&assignment)
        };
        match res {
            Ok(()) => {
                self.paused = pause;
                tracing::debug!(
                    paused = pause,
                    held = self.ctx().buffer().len(),
                    "consumer back pressure"
                );
            }
            Err(e) => tracing::warn!(error = %e, pause, "pause/resume failed"),
        }
    }

    /// Seeks every partition with unfinished work back to its lowest unfinished offset.
    fn rewind(&mut self) {
        let c = self.ctx().completion.clone();
        self.ctx().drop_buffered();
        let unfinished = c.tracker().unfinished();
        for (tp, offset) in unfinished {
            match self.consumer.seek(
                &tp.topic,
                tp.partition,
                Offset::Offset(offset),
                Duration::from_secs(5),
            ) {
                Ok(()) => {
                    let mut t = c.tracker();
                    let generation = t.generation(&tp).unwrap_or_default();
                    t.forget_from(&tp, generation, offset);
                    tracing::info!(topic = %tp.topic, partition = tp.partition, offset, "rewound abandoned work");
                }
                Err(e) => {
                    tracing::error!(error = %e, topic = %tp.topic, partition = tp.partition, "seek failed")
                }
            }
        }
    }
}
