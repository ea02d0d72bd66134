//! The process stage: N tasks that parse and transform records into documents.

use std::sync::Arc;

use bytes::Bytes;

use crate::source::completion::Completion;
use crate::transform::apply::Transform;
use crate::transform::record::{DeadLetter, Document, SourceRecord};

/// Room reserved per record for the action line and the added fields, on top of the payload.
const OVERHEAD_PER_RECORD: usize = 160;

/// Runs until the input closes and every batch taken has been handed on.
pub async fn run_process_task(
    input: flume::Receiver<Vec<SourceRecord>>,
    output: flume::Sender<Vec<Document>>,
    transform: Arc<Transform>,
    completion: Arc<Completion>,
) {
    while let Ok(batch) = input.recv_async().await {
        let (docs, dead) = process_batch(&transform, batch);
        completion.dead_letter(dead).await;
        if !docs.is_empty() && output.send_async(docs).await.is_err() {
            // The sink stage is gone (abandoned on a deadline); the records stay pending and are
            // re-read from the last commit.
            return;
        }
    }
}

/// Encodes a batch into one buffer; every document is a slice of it.
pub fn process_batch(
    transform: &Transform,
    batch: Vec<SourceRecord>,
) -> (Vec<Document>, Vec<DeadLetter>) {
    let size: usize = batch
        .iter()
        .map(|r| r.payload.len() + OVERHEAD_PER_RECORD)
        .sum();
    let mut buf = Vec::with_capacity(size);
    let mut spans = Vec::with_capacity(batch.len());
    let mut dead = Vec::new();
    for record in batch {
        let start = buf.len();
        match transform.encode(&record, &mut buf) {
            Ok(()) => spans.push((record, start, buf.len())),
            Err((reason, detail)) => dead.push(DeadLetter {
                record,
                reason,
                detail,
            }),
        }
    }
    let buf = Bytes::from(buf);
    let docs = spans
        .into_iter()
        .map(|(source, start, end)| Document {
            lines: buf.slice(start..end),
            source,
        })
        .collect();
    (docs, dead)
}
