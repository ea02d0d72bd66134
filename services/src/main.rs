use std::process::ExitCode;

use autoscaler::config::{Cli, Command, Role};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    autoscaler::telemetry::init(cli.common.log_format);
    let role = match cli.role {
        Some(Command::Simulate(args)) => {
            return autoscaler::simulate::command(&args, cli.common.scrape_interval);
        }
        Some(Command::Cluster(args)) => return autoscaler::cli::command(&args).await,
        Some(Command::Tune(args)) => return autoscaler::cli::tune_command(&args).await,
        Some(Command::Role(role)) => role,
        None => Role::Run,
    };
    if let Err(e) = cli.common.validate(role) {
        tracing::error!("{e}");
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let shutdown = autoscaler::shutdown::on_signal();
    match autoscaler::roles::run(role, cli.common, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
