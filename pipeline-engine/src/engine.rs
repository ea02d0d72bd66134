//! The supervisor: wires the stages together, serves HTTP, announces itself, rescales on request and
//! shuts down with a checkpoint (drain, commit, leave the group).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::announce::{Announcer, Event};
use crate::completion::Completion;
use crate::config::{Config, DeadLetterKind};
use crate::consume::{Command, ConsumerThread};
use crate::control::{ControlState, RescaleRequest, control_router, metrics_router};
use crate::deadletter::{DeadLetterSink, FileDeadLetter, KafkaDeadLetter};
use crate::metrics::{CpuSampler, Metrics};
use crate::sink::{HttpBulkClient, SinkSettings};
use crate::stages::{Drained, Parallelism, StageDeps, Stages};
use crate::status::{State, Status, StatusBoard};
use crate::transform::Transform;

/// Addresses the HTTP listeners are bound to (useful when configured with port 0).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub metrics: SocketAddr,
    pub control: SocketAddr,
}

struct Supervisor {
    deps: StageDeps,
    stages: Option<Stages>,
    commands: std::sync::mpsc::Sender<Command>,
    status: Arc<StatusBoard>,
    drain_deadline: Duration,
}

impl Supervisor {
    async fn send_output(
        &self,
        out: Option<flume::Sender<Vec<crate::record::SourceRecord>>>,
    ) -> anyhow::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Output(out, tx))
            .context("consumer thread is gone")?;
        rx.await.context("consumer thread is gone")
    }

    /// Stops the stages with a checkpoint: hold the consumer, drain (or abandon at the deadline), commit.
    async fn checkpoint_stop(&mut self) -> anyhow::Result<Drained> {
        self.send_output(None).await?;
        let Some(stages) = self.stages.take() else {
            return Ok(Drained::Complete);
        };
        let drained = stages.drain(self.drain_deadline).await;
        if drained == Drained::Abandoned {
            tracing::warn!("drain deadline passed; abandoned work will be re-read");
        }
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Checkpoint {
                rewind: drained == Drained::Abandoned,
                reply: tx,
            })
            .context("consumer thread is gone")?;
        rx.await.context("consumer thread is gone")?;
        Ok(drained)
    }

    async fn start(&mut self, p: Parallelism) -> anyhow::Result<()> {
        let stages = Stages::start(&self.deps, p);
        let input = stages.input.clone();
        self.stages = Some(stages);
        self.send_output(Some(input)).await?;
        self.status.update(|s| {
            s.state = State::Running;
            s.parallelism = p.process;
            s.sink_parallelism = p.sink;
        });
        Ok(())
    }

    async fn rescale(&mut self, target: Parallelism) -> anyhow::Result<Status> {
        let _span =
            tracing::info_span!("rescale", process = target.process, sink = target.sink).entered();
        self.status.update(|s| s.state = State::Rescaling);
        let drained = self.checkpoint_stop().await?;
        self.start(target).await?;
        tracing::info!(?drained, "rescaled");
        Ok(self.status.snapshot())
    }

    fn report_fill(&self) {
        if let Some(s) = &self.stages {
            let (pl, pc, sl, sc) = s.fill();
            self.deps.completion.metrics.fill("process", pl, pc);
            self.deps.completion.metrics.fill("sink", sl, sc);
        }
    }
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} listener to {addr}"))
}

/// Runs the engine until `shutdown` is cancelled. `on_bound` learns the listeners' addresses.
pub async fn run(
    config: Config,
    shutdown: CancellationToken,
    on_bound: impl FnOnce(Bound),
) -> anyhow::Result<()> {
    let instance_id = config.instance_id();
    let metrics = Arc::new(Metrics::new(&config.pipeline.name, &instance_id));
    let dead_letter: Arc<dyn DeadLetterSink> = match config.dead_letter.kind {
        DeadLetterKind::Kafka => {
            let extra: Vec<(String, String)> = config
                .kafka
                .properties
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Arc::new(KafkaDeadLetter::new(
                &config.kafka.brokers,
                config.dead_letter_topic(),
                config.pipeline.name.clone(),
                config.dead_letter.max_record_bytes,
                &extra,
            )?)
        }
        DeadLetterKind::File => {
            let path = config
                .dead_letter
                .path
                .clone()
                .context("dead_letter.path")?;
            Arc::new(FileDeadLetter::open(path, config.pipeline.name.clone())?)
        }
    };
    let completion = Arc::new(Completion::new(metrics.clone(), dead_letter));
    let parallelism = Parallelism {
        process: config.process.parallelism,
        sink: config.sink.parallelism,
    };
    let status = Arc::new(StatusBoard::new(Status {
        pipeline: config.pipeline.name.clone(),
        instance_id: instance_id.clone(),
        state: State::Starting,
        parallelism: parallelism.process,
        sink_parallelism: parallelism.sink,
        in_flight_per_sink: config.sink.in_flight,
        assigned_partitions: Vec::new(),
    }));
    let transform = Transform::new(
        &config.transform,
        &config.index,
        config.kafka.max_record_bytes,
        config.elasticsearch.action,
    )
    .context("index.pattern")?;
    let deps = StageDeps {
        transform: Arc::new(transform),
        client: Arc::new(
            HttpBulkClient::new(&config.elasticsearch).context("building the HTTP client")?,
        ),
        completion: completion.clone(),
        sink: SinkSettings::new(&config.sink, config.elasticsearch.action),
        process_buffer: config.buffers.process_batches,
        sink_buffer: config.buffers.sink_batches,
    };

    // HTTP first, so /status and /metrics answer while the consumer joins the group.
    let (rescale_tx, mut rescale_rx) = mpsc::channel::<RescaleRequest>(1);
    let control_state = ControlState {
        metrics: metrics.clone(),
        status: status.clone(),
        token: config.control.token.as_deref().map(Arc::from),
        rescale: rescale_tx,
    };
    let http_stop = CancellationToken::new();
    let bound = if config.metrics.listen == config.control.listen {
        let l = bind(config.control.listen, "control and metrics").await?;
        let addr = l.local_addr()?;
        serve(
            l,
            metrics_router(metrics.clone()).merge(control_router(control_state)),
            http_stop.clone(),
        );
        Bound {
            metrics: addr,
            control: addr,
        }
    } else {
        let ml = bind(config.metrics.listen, "metrics").await?;
        let cl = bind(config.control.listen, "control").await?;
        let b = Bound {
            metrics: ml.local_addr()?,
            control: cl.local_addr()?,
        };
        serve(ml, metrics_router(metrics.clone()), http_stop.clone());
        serve(cl, control_router(control_state), http_stop.clone());
        b
    };
    tracing::info!(metrics_addr = %bound.metrics, control_addr = %bound.control, "listening");
    on_bound(bound);

    let drain_deadline = Duration::from_millis(config.control.drain_deadline_ms);
    let (cmd_tx, cmd_rx) = std::sync::mpsc::channel();
    let consumer = ConsumerThread::new(
        &config.kafka,
        &instance_id,
        completion.clone(),
        status.clone(),
        drain_deadline,
        cmd_rx,
    )
    .context("creating the Kafka consumer")?;
    let (exited_tx, mut exited_rx) = oneshot::channel::<()>();
    let consumer_thread = std::thread::Builder::new()
        .name("consume".into())
        .spawn(move || {
            consumer.run();
            let _ = exited_tx.send(());
        })?;

    let announcer = config.announce.url.clone().map(|url| {
        Arc::new(Announcer::new(
            url,
            config.announce.token.clone(),
            config.pipeline.name.clone(),
            instance_id.clone(),
            metrics.clone(),
        ))
    });
    if let Some(a) = &announcer {
        let a = a.clone();
        let period = Duration::from_millis(config.announce.heartbeat_interval_ms);
        let stop = shutdown.clone();
        tokio::spawn(async move {
            a.announce(Event::Register).await;
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => a.announce(Event::Heartbeat).await,
                }
            }
        });
    }

    let mut sup = Supervisor {
        deps,
        stages: None,
        commands: cmd_tx,
        status: status.clone(),
        drain_deadline,
    };
    sup.start(parallelism).await?;
    tracing::info!(pipeline = %config.pipeline.name, instance = %instance_id, ?parallelism, "engine running");

    let mut cpu = CpuSampler::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut ticks: u64 = 0;
    let mut consumer_failed = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(req) = rescale_rx.recv() => {
                let result = sup.rescale(req.target).await.map_err(|e| format!("{e:#}"));
                if result.is_err() {
                    consumer_failed = true;
                }
                let _ = req.reply.send(result);
                if consumer_failed {
                    break;
                }
            }
            _ = &mut exited_rx => {
                consumer_failed = true;
                break;
            }
            _ = tick.tick() => {
                sup.report_fill();
                ticks += 1;
                if ticks.is_multiple_of(4) && let Some(load) = cpu.sample() {
                    metrics.cpu_load.set(load);
                }
            }
        }
    }

    status.update(|s| s.state = State::Draining);
    tracing::info!("stopping: draining in-flight work");
    if !consumer_failed {
        match sup.checkpoint_stop().await {
            Ok(d) => tracing::info!(drained = ?d, "checkpoint taken"),
            Err(e) => tracing::error!(error = %e, "checkpoint on shutdown failed"),
        }
        let _ = sup.commands.send(Command::Stop);
    }
    tokio::task::spawn_blocking(move || consumer_thread.join())
        .await
        .ok();
    if let Some(a) = &announcer {
        a.announce(Event::Unregister).await;
    }
    status.update(|s| s.state = State::Stopped);
    http_stop.cancel();
    tracing::info!("stopped");
    if consumer_failed {
        anyhow::bail!("the consumer thread stopped unexpectedly");
    }
    Ok(())
}

fn serve(listener: tokio::net::TcpListener, router: axum::Router, stop: CancellationToken) {
    tokio::spawn(async move {
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
}
