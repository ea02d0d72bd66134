//! `autoscaler tune --cluster NAME`: fetches the cluster's recorded samples through the API, tunes its
//! policy from them here (`simulate::tune`, the same search `POST /api/v1/clusters/{name}/tune` runs),
//! prints the comparison, and with `--apply` writes the proposed settings into the subscription.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::{CliError, Client, ConnectionArgs, Format, Settings, output};
use crate::simulate::tune::{self, Tuning, describe};

/// `autoscaler tune`.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct TuneArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// The subscribed cluster whose history is replayed.
    #[arg(long)]
    pub cluster: String,
    /// How far back: a duration such as `3d`, or an RFC 3339 instant.
    #[arg(long, default_value = "3d")]
    pub since: String,
    /// Write the proposed settings into the cluster's spec (a spec update like `cluster apply`,
    /// audited; every other field kept).
    #[arg(long)]
    pub apply: bool,
    /// Draw the current and the proposed settings' replays (load, capacity, scale, lag) into this SVG.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Output format: the comparison table, or the proposal as JSON or YAML (as the API answers it).
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

pub async fn run(
    args: &TuneArgs,
    out: &mut dyn Write,
    progress: &mut dyn Write,
) -> Result<(), CliError> {
    let settings = Settings::resolve(&args.connection)?;
    let client = Client::new(&settings)?;
    let history = client.samples(&args.cluster, &args.since).await?.typed;
    writeln!(
        progress,
        "replaying {} samples of {} since {}",
        history.samples.len(),
        args.cluster,
        history.since.to_rfc3339()
    )?;
    let failed = |problem: String| CliError::Tune {
        cluster: args.cluster.clone(),
        problem,
    };
    // Seconds of work on every core it gets: off the runtime's threads.
    let tuning: Tuning = tokio::task::spawn_blocking(move || tune::propose(&history))
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.to_string()))?;
    let proposal = &tuning.proposal;
    if let Some(path) = &args.plot {
        tune::draw(path, &tuning)
            .map_err(|problem| failed(format!("the plot {}: {problem}", path.display())))?;
    }
    if args.output == Format::Table {
        proposal.write_table(out)?;
    } else {
        let value = serde_json::to_value(proposal).map_err(|e| CliError::Format(e.to_string()))?;
        output::print_raw(out, args.output, &value)?;
    }
    if !args.apply {
        return Ok(());
    }
    // What is said about the change goes with the table, or beside the JSON.
    let said: &mut dyn Write = if args.output == Format::Table {
        out
    } else {
        progress
    };
    if proposal.changes.is_empty() {
        writeln!(
            said,
            "cluster/{} unchanged: its settings are the cheapest within the lag bound",
            args.cluster
        )?;
        return Ok(());
    }
    // The spec as stored now, so that a change made since the export is kept, with the proposal's
    // settings over it.
    let current = client.get(&args.cluster).await?.typed;
    let mut spec = current.spec;
    spec.policy = proposal.proposed.settings.apply(&spec.policy);
    let body = serde_json::to_value(&spec).map_err(|e| CliError::Format(e.to_string()))?;
    let stored = client.replace(&args.cluster, &body).await?.typed;
    writeln!(
        said,
        "cluster/{} configured: {}",
        stored.name,
        describe(&proposal.changes)
    )?;
    Ok(())
}
