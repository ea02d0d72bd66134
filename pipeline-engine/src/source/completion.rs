//! Marking records done: acknowledged by Elasticsearch or written to the dead-letter destination.
//! This is the only way the offset tracker advances.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::metrics::Metrics;
use crate::sink::dead_letter::DeadLetterSink;
use crate::sink::retry::backoff;
use crate::source::offsets::{Ack, OffsetTracker, TopicPartition};
use crate::transform::record::{DeadLetter, Position};

pub struct Completion {
    tracker: Mutex<OffsetTracker>,
    pub metrics: Arc<Metrics>,
    dead_letter: Arc<dyn DeadLetterSink>,
}

impl Completion {
    pub fn new(metrics: Arc<Metrics>, dead_letter: Arc<dyn DeadLetterSink>) -> Self {
        Self {
            tracker: Mutex::new(OffsetTracker::new()),
            metrics,
            dead_letter,
        }
    }

    pub fn tracker(&self) -> MutexGuard<'_, OffsetTracker> {
        // A panic elsewhere must not wedge commits; the tracker's state stays consistent per call.
        self.tracker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Marks positions done; `delivered` counts them as records out (Elasticsearch acknowledged them).
    pub fn done<'a>(&self, positions: impl Iterator<Item = &'a Position>, delivered: bool) {
        let mut stale = 0;
        let mut applied = 0;
        {
            let mut t = self.tracker();
            for p in positions {
                match t.done(&tp_of(p), p.generation, p.offset) {
                    Ack::Applied => applied += 1,
                    Ack::Stale => stale += 1,
                }
            }
        }
        if delivered {
            self.metrics.records_out.inc_by(applied + stale);
        }
        self.metrics.stale_acks.inc_by(stale);
    }

    /// Writes dead letters, retrying until the destination takes them, then marks them done.
    pub async fn dead_letter(&self, entries: Vec<DeadLetter>) {
        // A replay of a record already written (as the commit metadata or this generation shows) is
        // done without a second copy.
        let (repeated, entries): (Vec<DeadLetter>, Vec<DeadLetter>) = {
            let t = self.tracker();
            entries.into_iter().partition(|e| {
                let p = &e.record.position;
                t.was_dead_lettered(&tp_of(p), p.generation, p.offset)
            })
        };
        if !repeated.is_empty() {
            tracing::info!(
                records = repeated.len(),
                "records already dead-lettered before this replay; not written again"
            );
            self.metrics
                .dead_letters_repeated
                .inc_by(repeated.len() as u64);
            self.done(repeated.iter().map(|e| &e.record.position), false);
        }
        if entries.is_empty() {
            return;
        }
        let mut attempt = 0;
        loop {
            match self.dead_letter.write(&entries).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::error!(error = %e, records = entries.len(), attempt, "dead-letter write failed; retrying");
                    let delay = backoff(
                        attempt,
                        Duration::from_millis(200),
                        Duration::from_secs(30),
                        rand::random(),
                    );
                    attempt = attempt.saturating_add(1);
                    tokio::time::sleep(delay).await;
                }
            }
        }
        for e in &entries {
            tracing::warn!(
                topic = %e.record.position.topic,
                partition = e.record.position.partition,
                offset = e.record.position.offset,
                reason = e.reason.as_str(),
                error = %e.detail,
                "record dead-lettered"
            );
            self.metrics.dead_letter(e.reason);
        }
        {
            let mut t = self.tracker();
            for e in &entries {
                let p = &e.record.position;
                t.dead_lettered(&tp_of(p), p.generation, p.offset);
            }
        }
        self.done(entries.iter().map(|e| &e.record.position), false);
    }
}

fn tp_of(p: &Position) -> TopicPartition {
    TopicPartition {
        topic: p.topic.clone(),
        partition: p.partition,
    }
}
