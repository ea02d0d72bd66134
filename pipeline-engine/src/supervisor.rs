//! The supervisor: builds the engine from its configuration (`Engine::build`), then runs it
//! (`Engine::run`): serves HTTP, announces itself, rescales on request and
//! shuts down with a checkpoint (drain, commit, leave the group).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::announce::{Announcer, Event};
use crate::config::{Config, DeadLetterKind};
use crate::control::{ControlState, RescaleRequest, control_router, metrics_router};
use crate::metrics::{CpuSampler, Metrics};
use crate::sink::client::HttpBulkClient;
use crate::sink::dead_letter::{DeadLetterSink, FileDeadLetter, KafkaDeadLetter};
use crate::sink::stage::SinkSettings;
use crate::source::completion::Completion;
use crate::source::consume::{Command, ConsumerThread};
use crate::stages::{Drained, Parallelism, StageDeps, Stages};
use crate::status::{State, Status, StatusBoard};
use crate::transform::apply::Transform;

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
        out: Option<flume::Sender<Vec<crate::transform::record::SourceRecord>>>,
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

    /// Serves rescale requests and reports buffer fill and CPU load until `shutdown`, a failed
    /// rescale or the consumer thread's exit. Returns whether the consumer failed.
    async fn supervise(
        &mut self,
        metrics: &Metrics,
        shutdown: CancellationToken,
        mut rescale_rx: mpsc::Receiver<RescaleRequest>,
        mut exited_rx: oneshot::Receiver<()>,
    ) -> bool {
        let mut cpu = CpuSampler::new();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                Some(req) = rescale_rx.recv() => {
                    let result = self.rescale(req.target).await.map_err(|e| format!("{e:#}"));
                    let failed = result.is_err();
                    let _ = req.reply.send(result);
                    if failed {
                        return true;
                    }
                }
                _ = &mut exited_rx => return true,
                _ = tick.tick() => {
                    self.report_fill();
                    ticks += 1;
                    if ticks.is_multiple_of(4) && let Some(load) = cpu.sample() {
                        metrics.cpu_load.set(load);
                    }
                }
            }
        }
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
    Engine::build(config)?.run(shutdown, on_bound).await
}

/// Everything the engine needs, built from the configuration; nothing is bound, spawned or
/// connected yet (librdkafka's producer for dead letters connects lazily).
pub struct Engine {
    config: Config,
    instance_id: String,
    metrics: Arc<Metrics>,
    status: Arc<StatusBoard>,
    deps: StageDeps,
    parallelism: Parallelism,
    drain_deadline: Duration,
}

impl Engine {
    /// The build step: metrics, the dead-letter destination, completion, the transform, the HTTP
    /// client and the stages' dependencies.
    pub fn build(config: Config) -> anyhow::Result<Self> {
        let instance_id = config.instance_id();
        let metrics = Arc::new(Metrics::new(&config.pipeline.name, &instance_id));
        let dead_letter = dead_letter_sink(&config)?;
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
            completion,
            sink: SinkSettings::new(&config.sink, config.elasticsearch.action),
            process_buffer: config.buffers.process_batches,
            sink_buffer: config.buffers.sink_batches,
        };
        Ok(Self {
            drain_deadline: config.control.drain_deadline,
            config,
            instance_id,
            metrics,
            status,
            deps,
            parallelism,
        })
    }

    /// The run step: bind HTTP (first, so /status and /metrics answer while the consumer joins the
    /// group), start the consumer thread, announce, start the stages, supervise until `shutdown` or a
    /// failure, then shut down with a checkpoint.
    pub async fn run(
        self,
        shutdown: CancellationToken,
        on_bound: impl FnOnce(Bound),
    ) -> anyhow::Result<()> {
        let (rescale_tx, rescale_rx) = mpsc::channel::<RescaleRequest>(1);
        let http_stop = CancellationToken::new();
        let bound = self.serve_http(rescale_tx, &http_stop).await?;
        tracing::info!(metrics_addr = %bound.metrics, control_addr = %bound.control, "listening");
        on_bound(bound);
        // Built once bound: the announcement carries the control address actually listened on.
        let announcer = self.announcer(bound);

        let (cmd_tx, cmd_rx) = std::sync::mpsc::channel();
        let consumer = ConsumerThread::new(
            &self.config.kafka,
            &self.instance_id,
            self.deps.completion.clone(),
            self.status.clone(),
            self.drain_deadline,
            cmd_rx,
        )
        .context("creating the Kafka consumer")?;
        let (exited_tx, exited_rx) = oneshot::channel::<()>();
        let consumer_thread =
            std::thread::Builder::new()
                .name("consume".into())
                .spawn(move || {
                    consumer.run();
                    let _ = exited_tx.send(());
                })?;
        if let Some(a) = &announcer {
            spawn_heartbeat(
                a.clone(),
                self.config.announce.heartbeat_interval,
                shutdown.clone(),
            );
        }

        let mut sup = Supervisor {
            deps: self.deps,
            stages: None,
            commands: cmd_tx,
            status: self.status.clone(),
            drain_deadline: self.drain_deadline,
        };
        sup.start(self.parallelism).await?;
        tracing::info!(pipeline = %self.config.pipeline.name, instance = %self.instance_id, parallelism = ?self.parallelism, "engine running");
        let consumer_failed = sup
            .supervise(&self.metrics, shutdown, rescale_rx, exited_rx)
            .await;

        self.status.update(|s| s.state = State::Draining);
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
        self.status.update(|s| s.state = State::Stopped);
        http_stop.cancel();
        tracing::info!("stopped");
        if consumer_failed {
            anyhow::bail!("the consumer thread stopped unexpectedly");
        }
        Ok(())
    }

    fn announcer(&self, bound: Bound) -> Option<Arc<Announcer>> {
        let url = self.config.announce.url.as_ref()?;
        let control_url = crate::announce::control_url(
            self.config.control.advertise_url.as_deref(),
            bound.control,
        );
        if control_url.is_none() {
            tracing::warn!(
                listen = %bound.control,
                "control.listen is an unspecified address and control.advertise_url is not set: \
                 the autoscaler cannot restart this instance by itself, only through the cluster's \
                 control_url"
            );
        }
        Some(Arc::new(Announcer::new(
            url.to_string(),
            self.config.announce.token.clone(),
            self.config.pipeline.name.clone(),
            self.instance_id.clone(),
            control_url,
            self.metrics.clone(),
        )))
    }

    /// Binds the metrics and control listeners (one when they share an address) and serves them.
    async fn serve_http(
        &self,
        rescale: mpsc::Sender<RescaleRequest>,
        stop: &CancellationToken,
    ) -> anyhow::Result<Bound> {
        let control_state = ControlState {
            metrics: self.metrics.clone(),
            status: self.status.clone(),
            token: self.config.control.token.as_deref().map(Arc::from),
            rescale,
        };
        let (metrics_addr, control_addr) = (self.config.metrics.listen, self.config.control.listen);
        if metrics_addr == control_addr {
            let l = bind(control_addr, "control and metrics").await?;
            let addr = l.local_addr()?;
            serve(
                l,
                metrics_router(self.metrics.clone()).merge(control_router(control_state)),
                stop.clone(),
            );
            return Ok(Bound {
                metrics: addr,
                control: addr,
            });
        }
        let ml = bind(metrics_addr, "metrics").await?;
        let cl = bind(control_addr, "control").await?;
        let b = Bound {
            metrics: ml.local_addr()?,
            control: cl.local_addr()?,
        };
        serve(ml, metrics_router(self.metrics.clone()), stop.clone());
        serve(cl, control_router(control_state), stop.clone());
        Ok(b)
    }
}

fn dead_letter_sink(config: &Config) -> anyhow::Result<Arc<dyn DeadLetterSink>> {
    Ok(match config.dead_letter.kind {
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
    })
}

fn spawn_heartbeat(announcer: Arc<Announcer>, period: Duration, stop: CancellationToken) {
    tokio::spawn(async move {
        announcer.announce(Event::Register).await;
        let mut tick = tokio::time::interval(period);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => announcer.announce(Event::Heartbeat).await,
            }
        }
    });
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
