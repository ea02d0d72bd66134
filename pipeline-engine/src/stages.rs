//! The process and sink stages as one restartable unit with bounded buffers between them.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::sink::client::BulkClient;
use crate::sink::stage::{SinkSettings, run_sink_task};
use crate::source::completion::Completion;
use crate::transform::apply::Transform;
use crate::transform::process::run_process_task;
use crate::transform::record::{Document, SourceRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Parallelism {
    pub process: usize,
    pub sink: usize,
}

pub struct Stages {
    /// Handed to the consumer; the stages end once every clone is dropped and the buffers drained.
    pub input: flume::Sender<Vec<SourceRecord>>,
    sink_queue: flume::Sender<Vec<Document>>,
    tasks: JoinSet<()>,
    pub parallelism: Parallelism,
}

pub struct StageDeps {
    pub transform: Arc<Transform>,
    pub client: Arc<dyn BulkClient>,
    pub completion: Arc<Completion>,
    pub sink: SinkSettings,
    pub process_buffer: usize,
    pub sink_buffer: usize,
}

/// How the stages ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every record handed to the stages is done.
    Complete,
    /// The deadline passed; unfinished work was abandoned and must be re-read.
    Abandoned,
}

impl Stages {
    pub fn start(deps: &StageDeps, parallelism: Parallelism) -> Self {
        let (input, process_rx) = flume::bounded(deps.process_buffer);
        let (sink_queue, sink_rx) = flume::bounded(deps.sink_buffer);
        let mut tasks = JoinSet::new();
        for _ in 0..parallelism.process {
            tasks.spawn(run_process_task(
                process_rx.clone(),
                sink_queue.clone(),
                deps.transform.clone(),
                deps.completion.clone(),
            ));
        }
        for _ in 0..parallelism.sink {
            tasks.spawn(run_sink_task(
                sink_rx.clone(),
                deps.client.clone(),
                deps.completion.clone(),
                deps.sink.clone(),
            ));
        }
        deps.completion
            .metrics
            .parallelism
            .set(parallelism.process as i64);
        deps.completion
            .metrics
            .sink_parallelism
            .set(parallelism.sink as i64);
        Self {
            input,
            sink_queue,
            tasks,
            parallelism,
        }
    }

    /// Buffer fill as (process len, process capacity, sink len, sink capacity).
    pub fn fill(&self) -> (usize, usize, usize, usize) {
        let cap = |c: Option<usize>| c.unwrap_or(0);
        (
            self.input.len(),
            cap(self.input.capacity()),
            self.sink_queue.len(),
            cap(self.sink_queue.capacity()),
        )
    }

    /// Closes the input and waits for the stages to finish their work, up to `deadline`.
    /// The consumer must already have dropped its sender.
    pub async fn drain(self, deadline: Duration) -> Drained {
        let Self {
            input,
            sink_queue,
            mut tasks,
            ..
        } = self;
        drop(input);
        drop(sink_queue);
        let finished = tokio::time::timeout(deadline, async {
            while let Some(res) = tasks.join_next().await {
                if let Err(e) = res
                    && e.is_panic()
                {
                    tracing::error!(error = %e, "stage task panicked");
                }
            }
        })
        .await;
        match finished {
            Ok(()) => Drained::Complete,
            Err(_) => {
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                Drained::Abandoned
            }
        }
    }
}
