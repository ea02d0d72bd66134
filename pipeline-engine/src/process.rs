//! The process stage: N tasks that parse and transform records into documents.

use std::sync::Arc;

use crate::completion::Completion;
use crate::record::{Document, SourceRecord};
use crate::transform::Transform;

/// Runs until the input closes and every batch taken has been handed on.
pub async fn run_process_task(
    input: flume::Receiver<Vec<SourceRecord>>,
    output: flume::Sender<Vec<Document>>,
    transform: Arc<Transform>,
    completion: Arc<Completion>,
) {
    while let Ok(batch) = input.recv_async().await {
        let mut docs = Vec::with_capacity(batch.len());
        let mut dead = Vec::new();
        for record in batch {
            match transform.apply(record) {
                Ok(d) => docs.push(d),
                Err(dl) => dead.push(*dl),
            }
        }
        completion.dead_letter(dead).await;
        if !docs.is_empty() && output.send_async(docs).await.is_err() {
            // The sink stage is gone (abandoned on a deadline); the records stay pending and are
            // re-read from the last commit.
            return;
        }
    }
}
