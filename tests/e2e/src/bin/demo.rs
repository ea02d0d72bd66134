//! `cargo run -p e2e --bin demo`: the end-to-end loop for a person to watch. Starts the whole stack on
//! this machine, raises the load, lets the autoscaler scale the pipeline up through Git and Argo CD,
//! lowers the load, lets it scale back down, and prints every decision as it happens; the status page and
//! the CLI can watch it meanwhile. Ctrl-C stops it.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use e2e::autoscaler::{API_TOKEN, Decision};
use e2e::{CLUSTER, Stack};
use tokio::signal::unix::{Signal, SignalKind, signal};

const LOW_RATE: u32 = 150;
const HIGH_RATE: u32 = 1000;
const FALLEN_RATE: u32 = 30;
/// How long each load level lasts before the demo moves on, at most.
const PHASE: Duration = Duration::from_secs(300);

fn say(line: &str) {
    let now = chrono::Local::now().format("%H:%M:%S");
    let _ = writeln!(std::io::stdout().lock(), "{now}  {line}");
}

fn describe(decision: &Decision) -> String {
    let scale = match (decision.from_scale, decision.to_scale) {
        (Some(from), Some(to)) => format!("{from} → {to}"),
        (Some(from), None) => format!("from {from}"),
        _ => String::new(),
    };
    let commit = decision
        .write_back
        .as_ref()
        .and_then(|w| w["commit"].as_str())
        .map(|sha| format!("  commit {}", &sha[..sha.len().min(10)]))
        .unwrap_or_default();
    let reason = decision
        .reason
        .as_deref()
        .map(|r| format!("  ({r})"))
        .unwrap_or_default();
    format!(
        "decision {:<3} {:<20} {:<8} {:<10}{commit}{reason}",
        decision.id, decision.rule, scale, decision.status
    )
}

/// Prints new decisions and status changes; a status line every ten seconds.
struct Narrator {
    seen: HashMap<i64, String>,
    last_status: Instant,
}

impl Narrator {
    async fn tick(&mut self, stack: &Stack, rate: u32) -> anyhow::Result<Vec<Decision>> {
        let decisions = stack.autoscaler.decisions(CLUSTER).await?;
        for decision in &decisions {
            if self.seen.get(&decision.id) != Some(&decision.status) {
                say(&describe(decision));
                self.seen.insert(decision.id, decision.status.clone());
            }
        }
        if self.last_status.elapsed() >= Duration::from_secs(10) {
            let lag = stack
                .lag_records()
                .await?
                .map_or("-".to_owned(), |l| format!("{l:.0}"));
            say(&format!(
                "load {rate}/s   instances {}   lag {lag} records   {} documents in Elasticsearch",
                stack.engines.running(),
                stack.documents()
            ));
            self.last_status = Instant::now();
        }
        Ok(decisions)
    }

    /// Narrates until `done` holds for the decisions, or the phase is over.
    async fn until(
        &mut self,
        stack: &Stack,
        rate: u32,
        interrupt: &mut Signal,
        done: impl Fn(&[Decision]) -> bool,
    ) -> anyhow::Result<()> {
        let end = Instant::now() + PHASE;
        while Instant::now() < end {
            // One listener for the whole run: a Ctrl-C between two polls waits in it, never lost.
            tokio::select! {
                decisions = self.tick(stack, rate) => if done(&decisions?) { return Ok(()) },
                _ = interrupt.recv() => anyhow::bail!("interrupted"),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = interrupt.recv() => anyhow::bail!("interrupted"),
            }
        }
        say("(this phase ran out of time; moving on)");
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    say(
        "starting Postgres database, Prometheus, Kafka-protocol broker, Elasticsearch and Argo CD test servers, the autoscaler and one engine instance",
    );
    let stack = Stack::start().await?;
    say(&format!("processes' logs: {}", stack.logs_dir().display()));
    say(&format!(
        "autoscaler API: {} (GET /api/v1/clusters/{CLUSTER}/decisions)",
        stack.autoscaler.url
    ));
    say(&format!(
        "status page: {}/ui/clusters/{CLUSTER} (log in with the token {API_TOKEN})",
        stack.autoscaler.url
    ));
    say(&format!(
        "CLI: AUTOSCALER_SERVER={} AUTOSCALER_TOKEN={API_TOKEN} target/debug/autoscaler cluster decisions {CLUSTER}",
        stack.autoscaler.url
    ));
    let mut load = stack.start_load(LOW_RATE)?;
    let mut narrator = Narrator {
        seen: HashMap::new(),
        last_status: Instant::now(),
    };
    say(&format!(
        "load {LOW_RATE}/s: one instance keeps up (warming up for a minute)"
    ));
    let warm_up = Instant::now();
    narrator
        .until(&stack, LOW_RATE, &mut interrupt, |_| {
            warm_up.elapsed() > Duration::from_secs(60)
        })
        .await?;

    say(&format!(
        "load rises to {HIGH_RATE}/s: one instance moves about 500/s against this Elasticsearch"
    ));
    load.set_rate(HIGH_RATE)?;
    let applied_up = |d: &[Decision]| d.iter().any(|d| d.scales_up() && d.status == "applied");
    narrator
        .until(&stack, HIGH_RATE, &mut interrupt, applied_up)
        .await?;
    let drained = Instant::now();
    say("waiting a minute at the new scale while the lag drains");
    narrator
        .until(&stack, HIGH_RATE, &mut interrupt, |_| {
            drained.elapsed() > Duration::from_secs(60)
        })
        .await?;

    say(&format!("load falls to {FALLEN_RATE}/s"));
    load.set_rate(FALLEN_RATE)?;
    let applied_down = |d: &[Decision]| d.iter().any(|d| d.scales_down() && d.status == "applied");
    narrator
        .until(&stack, FALLEN_RATE, &mut interrupt, applied_down)
        .await?;

    let totals = load.stop()?;
    say(&format!(
        "stopped the load: {} records acknowledged by the broker",
        totals.acked
    ));
    let delivered = Instant::now();
    narrator
        .until(&stack, 0, &mut interrupt, |_| {
            stack.documents() as u64 >= totals.acked
                || delivered.elapsed() > Duration::from_secs(60)
        })
        .await?;
    say(&format!(
        "{} documents in Elasticsearch; Git history of the scale file:",
        stack.documents()
    ));
    for commit in stack.repo.history()? {
        say(&format!(
            "  {} replicas={} {}",
            &commit.sha[..10],
            commit.scale,
            commit.subject
        ));
    }
    // A person at a terminal can still browse the status page; Ctrl-C stops everything.
    if std::io::stdin().is_terminal() {
        say("the stack stays up for the status page and the CLI; Ctrl-C stops it");
        interrupt.recv().await;
    }
    Ok(())
}
