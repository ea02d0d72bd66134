//! The sink stage: M tasks, each batching documents (by count, bytes and linger time) and keeping up
//! to K `_bulk` requests in flight. A request's documents are acknowledged, retried with backoff, or
//! dead-lettered item by item.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;

use crate::config::{BulkAction, SinkConfig};
use crate::sink::bulk::{self, ItemOutcome, ResponseOutcome, RetryReason};
use crate::sink::client::{BulkClient, TransportError};
use crate::source::completion::Completion;
use crate::transform::record::{DeadLetter, DeadLetterReason, Document};

#[derive(Clone)]
pub struct SinkSettings {
    pub action: BulkAction,
    pub in_flight: usize,
    pub batch_max_docs: usize,
    pub batch_max_bytes: usize,
    pub linger: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub max_attempts: u32,
}

impl SinkSettings {
    pub fn new(cfg: &SinkConfig, action: BulkAction) -> Self {
        Self {
            action,
            in_flight: cfg.in_flight,
            batch_max_docs: cfg.batch_max_docs,
            batch_max_bytes: cfg.batch_max_bytes,
            linger: cfg.linger,
            initial_backoff: cfg.retry.initial_backoff,
            max_backoff: cfg.retry.max_backoff,
            max_attempts: cfg.retry.max_attempts,
        }
    }
}

/// Accumulates documents until a batch limit is reached.
#[derive(Default)]
pub struct Batcher {
    docs: Vec<Document>,
    bytes: usize,
    started: Option<Instant>,
}

impl Batcher {
    /// Adds a document; closed batches are appended to `out`.
    pub fn push(&mut self, d: Document, s: &SinkSettings, out: &mut VecDeque<Vec<Document>>) {
        let len = bulk::encoded_len(&d);
        // A document that would push the batch past the byte limit starts the next batch.
        if !self.docs.is_empty() && self.bytes + len > s.batch_max_bytes {
            out.extend(self.take());
        }
        self.started.get_or_insert_with(Instant::now);
        self.bytes += len;
        self.docs.push(d);
        if self.docs.len() >= s.batch_max_docs || self.bytes >= s.batch_max_bytes {
            out.extend(self.take());
        }
    }

    pub fn take(&mut self) -> Option<Vec<Document>> {
        self.started = None;
        self.bytes = 0;
        (!self.docs.is_empty()).then(|| std::mem::take(&mut self.docs))
    }

    pub fn deadline(&self, linger: Duration) -> Option<Instant> {
        self.started.map(|t| t + linger)
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}

/// One sink task: runs until its input closes, then flushes and waits for its requests.
pub async fn run_sink_task(
    input: flume::Receiver<Vec<Document>>,
    client: Arc<dyn BulkClient>,
    completion: Arc<Completion>,
    s: SinkSettings,
) {
    let mut batcher = Batcher::default();
    let mut ready: VecDeque<Vec<Document>> = VecDeque::new();
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    loop {
        while in_flight.len() < s.in_flight {
            let Some(batch) = ready.pop_front() else {
                break;
            };
            in_flight.push(deliver(
                batch,
                client.clone(),
                completion.clone(),
                s.clone(),
            ));
        }
        if !open && ready.is_empty() && batcher.is_empty() && in_flight.is_empty() {
            return;
        }
        // Stop taking input while full batches wait for a request slot: back pressure upstream.
        let accepting = open && ready.is_empty();
        let linger = batcher.deadline(s.linger);
        tokio::select! {
            msg = input.recv_async(), if accepting => match msg {
                Ok(docs) => {
                    for d in docs {
                        batcher.push(d, &s, &mut ready);
                    }
                }
                Err(_) => {
                    open = false;
                    ready.extend(batcher.take());
                }
            },
            _ = sleep_until(linger), if linger.is_some() && ready.is_empty() => {
                ready.extend(batcher.take());
            }
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    if let Some(t) = t {
        tokio::time::sleep_until(t.into()).await;
    }
}

/// Delivers one batch until every document is acknowledged or dead-lettered.
fn deliver(
    docs: Vec<Document>,
    client: Arc<dyn BulkClient>,
    c: Arc<Completion>,
    s: SinkSettings,
) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let mut pending = docs;
        let mut attempt: u32 = 0;
        while !pending.is_empty() {
            let mut body = Vec::with_capacity(pending.iter().map(bulk::encoded_len).sum());
            bulk::encode(&pending, &mut body);
            c.metrics.bulk_in_flight.inc();
            let started = Instant::now();
            let result = client.send(Bytes::from(body)).await;
            c.metrics.bulk_in_flight.dec();
            c.metrics
                .bulk_duration
                .observe(started.elapsed().as_secs_f64());
            let outcome = match result {
                Ok((status, body)) => {
                    bulk::classify_response(s.action, status, &body, pending.len())
                }
                Err(TransportError::Timeout(m)) => {
                    ResponseOutcome::RetryAll(RetryReason::Timeout, m)
                }
                Err(TransportError::Connection(m)) => {
                    ResponseOutcome::RetryAll(RetryReason::Connection, m)
                }
            };
            let mut retry = Vec::new();
            let mut reasons: Vec<RetryReason> = Vec::new();
            let mut dead = Vec::new();
            match outcome {
                ResponseOutcome::Items(items) => {
                    let mut done = Vec::with_capacity(pending.len());
                    let mut resent = 0;
                    for (d, o) in pending.into_iter().zip(items) {
                        match o {
                            ItemOutcome::Done => done.push(d),
                            ItemOutcome::AlreadyWritten => {
                                resent += 1;
                                done.push(d);
                            }
                            ItemOutcome::Retry(r) => {
                                reasons.push(r);
                                retry.push(d);
                            }
                            ItemOutcome::DeadLetter(reason, detail) => dead.push(DeadLetter {
                                record: d.source,
                                reason,
                                detail,
                            }),
                        }
                    }
                    c.metrics.records_resent.inc_by(resent);
                    c.done(done.iter().map(|d| &d.source.position), true);
                }
                ResponseOutcome::RetryAll(reason, msg) => {
                    tracing::warn!(reason = reason.as_str(), error = %msg, docs = pending.len(), attempt, "bulk request failed; retrying");
                    reasons = vec![reason; pending.len()];
                    retry = pending;
                }
                ResponseOutcome::Split(msg) if pending.len() == 1 => {
                    let d = pending.pop().expect("one document");
                    dead.push(DeadLetter {
                        record: d.source,
                        reason: DeadLetterReason::Rejected,
                        detail: msg,
                    });
                }
                ResponseOutcome::Split(msg) => {
                    tracing::warn!(error = %msg, docs = pending.len(), "bulk request refused as a whole; splitting");
                    let second = pending.split_off(pending.len() / 2);
                    deliver(pending, client.clone(), c.clone(), s.clone()).await;
                    deliver(second, client.clone(), c.clone(), s.clone()).await;
                    return;
                }
            }
            c.dead_letter(dead).await;
            if retry.is_empty() {
                return;
            }
            attempt = attempt.saturating_add(1);
            if s.max_attempts > 0 && attempt >= s.max_attempts {
                let exhausted = retry
                    .into_iter()
                    .map(|d| DeadLetter {
                        record: d.source,
                        reason: DeadLetterReason::RetriesExhausted,
                        detail: format!("still failing after {attempt} attempts"),
                    })
                    .collect();
                c.dead_letter(exhausted).await;
                return;
            }
            for r in &reasons {
                c.metrics.retry(*r, 1);
            }
            let delay = crate::sink::retry::backoff(
                attempt - 1,
                s.initial_backoff,
                s.max_backoff,
                rand::random(),
            );
            tokio::time::sleep(delay).await;
            pending = retry;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::record::{Position, SourceRecord};

    fn doc(n: i64, body_len: usize) -> Document {
        Document::new(
            "create",
            "i",
            &format!("t-0-{n}"),
            &vec![b'x'; body_len],
            SourceRecord {
                position: Position {
                    topic: "t".into(),
                    partition: 0,
                    offset: n,
                    generation: 1,
                },
                timestamp_ms: None,
                key: None,
                payload: Bytes::new(),
            },
        )
    }

    fn settings(docs: usize, bytes: usize) -> SinkSettings {
        SinkSettings {
            action: BulkAction::Create,
            in_flight: 1,
            batch_max_docs: docs,
            batch_max_bytes: bytes,
            linger: Duration::from_millis(10),
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            max_attempts: 0,
        }
    }

    fn push_all(b: &mut Batcher, s: &SinkSettings, docs: Vec<Document>) -> Vec<usize> {
        let mut out = VecDeque::new();
        for d in docs {
            b.push(d, s, &mut out);
        }
        out.iter().map(Vec::len).collect()
    }

    #[test]
    fn batches_close_at_the_document_limit() {
        let s = settings(3, usize::MAX);
        let mut b = Batcher::default();
        assert_eq!(
            push_all(&mut b, &s, vec![doc(0, 10), doc(1, 10)]),
            Vec::<usize>::new()
        );
        assert_eq!(push_all(&mut b, &s, vec![doc(2, 10)]), vec![3]);
        assert!(b.is_empty());
    }

    #[test]
    fn batches_close_before_exceeding_the_byte_limit() {
        let per = bulk::encoded_len(&doc(0, 100));
        let s = settings(1000, per * 2 + per / 2);
        let mut b = Batcher::default();
        assert_eq!(
            push_all(&mut b, &s, vec![doc(0, 100), doc(1, 100), doc(2, 100)]),
            vec![2]
        );
        assert_eq!(b.take().map(|v| v.len()), Some(1));
    }

    #[test]
    fn a_document_larger_than_the_byte_limit_goes_alone_and_loses_nothing() {
        let s = settings(1000, 50);
        let mut b = Batcher::default();
        // The small one is pending when the big one arrives: both must come out, separately.
        assert_eq!(
            push_all(&mut b, &s, vec![doc(0, 1), doc(1, 500)]),
            vec![1, 1]
        );
        assert!(b.is_empty());
    }

    #[test]
    fn linger_deadline_starts_with_the_first_document() {
        let s = settings(10, usize::MAX);
        let mut b = Batcher::default();
        assert!(b.deadline(s.linger).is_none());
        push_all(&mut b, &s, vec![doc(0, 1)]);
        assert!(b.deadline(s.linger).is_some());
        b.take();
        assert!(b.deadline(s.linger).is_none());
    }
}
