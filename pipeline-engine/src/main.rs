//! `pipeline-engine`: loads the configuration, sets up logging and signals, runs the engine.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use pipeline_engine::config::{Config, Loaded, LogFormat};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(version, about = "Kafka to Elasticsearch, at least once")]
struct Cli {
    /// YAML configuration file; `ENGINE__SECTION__KEY` environment variables override its keys.
    #[arg(long, short, env = "ENGINE_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Loaded { config, warnings } =
        match Config::load_with_warnings(cli.config.as_deref(), std::env::vars()) {
            Ok(loaded) => loaded,
            Err(e) => {
                eprintln!("pipeline-engine: configuration error: {e}");
                return ExitCode::from(2);
            }
        };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pipeline-engine: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let signals = shutdown.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::error!("cannot install signal handlers");
                return;
            };
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
            signals.cancel();
        });
        pipeline_engine::supervisor::run(config, shutdown, |_| {}).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "engine failed");
            ExitCode::FAILURE
        }
    }
}
