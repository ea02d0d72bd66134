//! `decision ID --wait`: follows a decision to its end, printing each change of status and each new step
//! as it appears.

use std::io::Write;
use std::time::{Duration, Instant};

use super::CliError;
use super::client::{Client, Decision, Fetched};
use super::output::step_detail;
use crate::storage::DecisionStatus;

/// Polls until the decision reaches a final status or `timeout` passes; progress goes to `progress`.
pub async fn follow(
    client: &Client,
    id: i64,
    timeout: Duration,
    interval: Duration,
    progress: &mut dyn Write,
) -> Result<Fetched<Decision>, CliError> {
    let started = Instant::now();
    let mut shown_status = None;
    let mut shown_steps = 0;
    loop {
        let decision = client.decision(id).await?;
        let d = &decision.typed;
        for step in d.steps.iter().skip(shown_steps) {
            let detail = step_detail(&step.detail);
            writeln!(
                progress,
                "[{}] step {}{}{detail}",
                elapsed(started),
                step.step,
                if detail.is_empty() { "" } else { ": " }
            )?;
        }
        shown_steps = shown_steps.max(d.steps.len());
        if shown_status != Some(d.status) {
            writeln!(
                progress,
                "[{}] decision {id} {}",
                elapsed(started),
                d.status.as_str()
            )?;
            shown_status = Some(d.status);
        }
        if d.status.is_final() {
            return Ok(decision);
        }
        if started.elapsed() >= timeout {
            return Err(CliError::TimedOut {
                id,
                status: d.status.as_str().to_owned(),
                waited: humantime::format_duration(timeout).to_string(),
            });
        }
        tokio::time::sleep(interval.min(timeout.saturating_sub(started.elapsed()))).await;
    }
}

/// Whether the decision's end counts as success for the exit code: it took effect, nothing was needed, or
/// (recommend-only mode) it was recommended.
pub fn outcome(decision: &Decision) -> Result<(), CliError> {
    match decision.status {
        DecisionStatus::Applied | DecisionStatus::Skipped | DecisionStatus::Recommended => Ok(()),
        other => Err(CliError::Unsuccessful {
            id: decision.id,
            status: other.as_str().to_owned(),
            reason: decision.reason.clone(),
        }),
    }
}

fn elapsed(started: Instant) -> String {
    let seconds = started.elapsed().as_secs();
    format!("{:02}:{:02}", seconds / 60, seconds % 60)
}
