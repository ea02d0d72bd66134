//! `autoscaler cluster ...`: a client of the subscription API, shaped like kubectl. Tables for people,
//! `-o json|yaml` for scripts; the API's errors shown as it names them, with a non-zero exit.

mod apply;
mod client;
mod output;
mod settings;
mod tune;
mod wait;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

pub use client::{Client, ClientError};
pub use settings::{ConnectionArgs, Settings, SettingsError};
pub use tune::TuneArgs;

/// `autoscaler cluster`.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Output format: a table for people, or the API's JSON or YAML for scripts.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table, global = true)]
    pub output: Format,
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum ClusterCommand {
    /// Subscribes the clusters in a file, or replaces their specs if they are subscribed (YAML or JSON;
    /// several YAML documents apply one after the other).
    Apply {
        /// The spec file, or `-` for standard input.
        #[arg(short = 'f', long = "filename", value_name = "FILE")]
        file: PathBuf,
    },
    /// One cluster.
    Get { name: String },
    /// Every subscribed cluster, by name.
    List,
    /// Unsubscribes a cluster; its decisions stay in the audit trail.
    Delete { name: String },
    /// Stops acting for a cluster until it is resumed.
    Pause { name: String },
    /// Acts for a paused cluster again.
    Resume { name: String },
    /// Dry run: every rule's verdict now, the one that fired and what blocks it; enqueues nothing.
    Evaluate { name: String },
    /// A cluster's recorded samples, oldest first; `-o json` is the history `autoscaler simulate
    /// --history` replays.
    Samples {
        name: String,
        /// How far back: a duration such as `24h` or `3d`, or an RFC 3339 instant.
        #[arg(long, default_value = "24h")]
        since: String,
    },
    /// A cluster's decisions, newest first.
    Decisions {
        name: String,
        /// How many to show.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
    },
    /// One decision with every step taken.
    Decision {
        id: i64,
        /// Follow it until it ends, showing each change as it happens. Exits 0 when it ends applied or
        /// skipped, 1 when it ends otherwise or the timeout passes.
        #[arg(long)]
        wait: bool,
        /// How long `--wait` follows it at most, such as `30m`.
        #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// How often `--wait` asks.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        interval: Duration,
    },
}

/// Why a command did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// Boxed: a client error carries URLs and the API's body, and every function here returns this type.
    #[error(transparent)]
    Client(Box<ClientError>),
    #[error("{path}: {problem}")]
    Input { path: String, problem: String },
    #[error("decision {id} ended {status}{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Unsuccessful {
        id: i64,
        status: String,
        reason: Option<String>,
    },
    #[error("decision {id} is still {status} after {waited}")]
    TimedOut {
        id: i64,
        status: String,
        waited: String,
    },
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
    #[error("formatting the output: {0}")]
    Format(String),
    #[error("cannot tune {cluster}: {problem}")]
    Tune { cluster: String, problem: String },
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        CliError::Client(Box::new(e))
    }
}

impl CliError {
    /// 2 for a usage or settings problem (as clap's own errors), 1 for everything else.
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Settings(_) | CliError::Input { .. } => 2,
            _ => 1,
        }
    }
}

/// Runs one `autoscaler cluster` command; what it prints goes to stdout, progress and errors to stderr.
pub async fn command(args: &ClusterArgs) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr();
    let result = run(args, &mut stdout, &mut stderr).await;
    exit(result, &mut stderr)
}

/// `autoscaler tune`: as a cluster command, with the tuning's table or JSON on stdout.
pub async fn tune_command(args: &TuneArgs) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr();
    let result = tune::run(args, &mut stdout, &mut stderr).await;
    exit(result, &mut stderr)
}

/// The exit code, with the error and the API's fields at fault on standard error.
fn exit(result: Result<(), CliError>, stderr: &mut dyn Write) -> ExitCode {
    let Err(error) = result else {
        return ExitCode::SUCCESS;
    };
    let _ = writeln!(stderr, "error: {error}");
    if let CliError::Client(client) = &error
        && let ClientError::Api { body, .. } = client.as_ref()
    {
        for field in &body.fields {
            let _ = writeln!(stderr, "  {}: {}", field.field, field.problem);
        }
    }
    ExitCode::from(error.exit_code())
}

async fn run(
    args: &ClusterArgs,
    out: &mut dyn Write,
    progress: &mut dyn Write,
) -> Result<(), CliError> {
    let settings = Settings::resolve(&args.connection)?;
    let client = Client::new(&settings)?;
    let format = args.output;
    match &args.command {
        ClusterCommand::Apply { file } => {
            let documents = apply::read_documents(file)?;
            for document in documents {
                let (cluster, created) = client.apply(&document.name, &document.spec).await?;
                let verb = if created { "created" } else { "configured" };
                output::cluster_changed(out, format, &cluster, verb)?;
            }
        }
        ClusterCommand::Get { name } => {
            output::clusters(out, format, &[client.get(name).await?])?;
        }
        ClusterCommand::List => output::clusters(out, format, &client.list().await?)?,
        ClusterCommand::Delete { name } => {
            client.delete(name).await?;
            output::deleted(out, format, name)?;
        }
        ClusterCommand::Pause { name } => {
            let cluster = client.set_paused(name, true).await?;
            output::cluster_changed(out, format, &cluster, "paused")?;
        }
        ClusterCommand::Resume { name } => {
            let cluster = client.set_paused(name, false).await?;
            output::cluster_changed(out, format, &cluster, "resumed")?;
        }
        ClusterCommand::Evaluate { name } => {
            output::evaluation(out, format, &client.evaluate(name).await?)?;
        }
        ClusterCommand::Samples { name, since } => {
            output::samples(out, format, &client.samples(name, since).await?)?;
        }
        ClusterCommand::Decisions { name, limit } => {
            output::decisions(out, format, &client.decisions(name, *limit).await?)?;
        }
        ClusterCommand::Decision {
            id,
            wait,
            timeout,
            interval,
        } => {
            if *wait {
                let decision = wait::follow(&client, *id, *timeout, *interval, progress).await?;
                output::decision(out, format, &decision)?;
                wait::outcome(&decision.typed)?;
            } else {
                output::decision(out, format, &client.decision(*id).await?)?;
            }
        }
    }
    Ok(())
}
