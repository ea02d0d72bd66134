//! `cargo run -p e2e --bin demo`: the end-to-end loop for a person to watch. Starts the whole stack on
//! this machine, raises the load, lets the autoscaler scale the pipeline up through Git and Argo CD,
//! lowers the load, lets it scale back down, and prints every decision as it happens; the status page and
//! the CLI can watch it meanwhile. Ctrl-C stops it.
//!
//! `--pull-request`: every decision becomes a pull request on the GitHub test server instead of a
//! commit; the demo shows it and waits for you to merge it (Enter) or close it (`close`), or merges it
//! after a few seconds when no terminal is attached. The merge is delivered to the autoscaler's GitHub
//! webhook, signed, and only then is the new scale synced and applied.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use e2e::autoscaler::{API_TOKEN, Decision};
use e2e::{CLUSTER, Stack, WriteBack};
use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};
use tokio::signal::unix::{Signal, SignalKind, signal};

const LOW_RATE: u32 = 150;
const HIGH_RATE: u32 = 1000;
const FALLEN_RATE: u32 = 30;
/// How long each load level lasts before the demo moves on, at most.
const PHASE: Duration = Duration::from_secs(300);
/// Without a terminal to answer at, a pull request is merged after this long.
const UNATTENDED_REVIEW: Duration = Duration::from_secs(5);
/// How much of a pull request's body is shown.
const BODY_LINES: usize = 14;

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
    let write_back = decision.write_back.as_ref();
    let pull_request = write_back
        .and_then(|w| w["pull_request"].as_u64())
        .map(|number| format!("  pull request #{number}"))
        .unwrap_or_default();
    // A reviewed change lands as the pull request's merge commit.
    let commit = write_back
        .and_then(|w| w["merge_commit"].as_str().or(w["commit"].as_str()))
        .map(|sha| format!("  commit {}", &sha[..sha.len().min(10)]))
        .unwrap_or_default();
    let commit = format!("{pull_request}{commit}");
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
    /// Pull requests already reviewed, by number.
    reviewed: HashSet<u64>,
    /// The terminal's lines, when a person can answer.
    answers: Option<Lines<BufReader<Stdin>>>,
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

    /// Shows the pull request waiting for review and merges or closes it, as the person (or, without a
    /// terminal, the demo) decides.
    async fn review(&mut self, stack: &Stack, interrupt: &mut Signal) -> anyhow::Result<()> {
        let Some(review) = &stack.review else {
            return Ok(());
        };
        let Some(pull) = review.open_pull_request() else {
            return Ok(());
        };
        if !self.reviewed.insert(pull.number) {
            return Ok(());
        }
        say(&format!(
            "pull request #{} opened on branch {} (the GitHub test server, {}/repos/{}/{}/pulls/{}): {}",
            pull.number,
            pull.head,
            review.github.url(),
            e2e::review::OWNER,
            e2e::review::REPOSITORY,
            pull.number,
            pull.title
        ));
        let body = pull.body.unwrap_or_default();
        for line in body.lines().take(BODY_LINES) {
            say(&format!(
                "    | {}",
                line.chars().take(110).collect::<String>()
            ));
        }
        if body.lines().count() > BODY_LINES {
            say("    | …");
        }
        let merge = match &mut self.answers {
            Some(answers) => {
                say(
                    "review it: press Enter to merge, or type `close` and Enter to close it unmerged",
                );
                tokio::select! {
                    line = answers.next_line() => line?.is_none_or(|l| l.trim() != "close"),
                    _ = interrupt.recv() => return Err(Interrupted.into()),
                }
            }
            None => {
                say(&format!(
                    "no terminal to review at: merging in {}s",
                    UNATTENDED_REVIEW.as_secs()
                ));
                tokio::select! {
                    () = tokio::time::sleep(UNATTENDED_REVIEW) => true,
                    _ = interrupt.recv() => return Err(Interrupted.into()),
                }
            }
        };
        if merge {
            let sha = review.merge(pull.number).await?;
            say(&format!(
                "merged pull request #{} as {}; GitHub's webhook tells the autoscaler, which syncs Argo CD",
                pull.number,
                &sha[..sha.len().min(10)]
            ));
        } else {
            review.close(pull.number).await?;
            say(&format!(
                "closed pull request #{} unmerged: the decision is rejected and the scale stays",
                pull.number
            ));
        }
        Ok(())
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
                _ = interrupt.recv() => return Err(Interrupted.into()),
            }
            self.review(stack, interrupt).await?;
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = interrupt.recv() => return Err(Interrupted.into()),
            }
        }
        say("(this phase ran out of time; moving on)");
        Ok(())
    }
}

/// Ctrl-C: the person is done watching; not a failure.
#[derive(Debug)]
struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match watch().await {
        Err(error) if error.downcast_ref::<Interrupted>().is_some() => {
            say("interrupted: stopping the stack");
            Ok(())
        }
        other => other,
    }
}

/// The whole demo; the stack stops when it returns, however it returns.
async fn watch() -> anyhow::Result<()> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    say(
        "starting Postgres database, Prometheus, Kafka-protocol broker, Elasticsearch and Argo CD test servers, the autoscaler and one engine instance",
    );
    let write_back = if std::env::args().any(|a| a == "--pull-request") {
        WriteBack::PullRequest
    } else {
        WriteBack::Commit
    };
    let stack = Stack::start_with(write_back).await?;
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
        reviewed: HashSet::new(),
        answers: std::io::stdin()
            .is_terminal()
            .then(|| BufReader::new(tokio::io::stdin()).lines()),
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
