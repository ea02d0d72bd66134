//! The whole loop on a real Apache Flink 2.3, once per path a Flink user runs (reactive mode,
//! savepoint and resubmit, the adaptive scheduler's resource requirements): the probe job's input
//! rises → a rule fires from real metrics → one commit → Argo CD syncs → the job runs at the new
//! parallelism (read from Flink's REST API) → the backlog drains → the input falls → it scales down.
//! Nothing is lost across the restarts: the sink holds every record the source produced.
//!
//! Each test prints what it measured (seconds from the rule firing to the job running at the new
//! parallelism, and the longest stretch with no new output during that rescale); the README's
//! figures come from these lines: `cargo nextest run -p e2e --test flink_loop --no-capture`.

use std::time::{Duration, Instant};

use e2e::autoscaler::Decision;
use e2e::flink::{CLUSTER, FlinkPath, FlinkStack};
use e2e::gitops::{BRANCH, commit_of};
use e2e::wait::until_some;

/// Each stage of the loop gets this long.
const STAGE: Duration = Duration::from_secs(300);
/// The scale-down waits for the low-load rule's window and for the forecast to forget the burst (a few
/// minutes); a generous deadline, since a slow machine stretches both.
const SCALE_DOWN_STAGE: Duration = Duration::from_secs(600);
/// Polls of the job and the sink while a rescale is under way.
const POLL: Duration = Duration::from_millis(250);

/// Input rates (records per second) per path: low enough that scale 1 keeps up, high enough to
/// need about three times that, and after the burst low enough that the forecast soon fits scale 1.
fn rates(path: FlinkPath) -> (u64, u64, u64) {
    match path {
        // Scale 1 is one TaskManager: two `burn` subtasks, about 400 records per second.
        FlinkPath::Reactive => (100, 900, 10),
        // Scale 1 is parallelism 1: about 200 records per second.
        FlinkPath::Savepoint | FlinkPath::Adaptive => (60, 500, 20),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reactive_mode_scales_task_managers_through_git() {
    run(FlinkPath::Reactive).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn default_scheduler_rescales_by_savepoint_and_resubmission() {
    run(FlinkPath::Savepoint).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn adaptive_scheduler_rescales_in_place() {
    run(FlinkPath::Adaptive).await;
}

async fn run(path: FlinkPath) {
    let stack = FlinkStack::start(path)
        .await
        .expect("the Flink stack starts");
    if let Err(error) = scenario(&stack).await {
        // A panic keeps the processes' logs (see `FlinkStack`'s drop) for whoever reads the failure.
        panic!("{error:#}");
    }
}

/// What one rescale cost, as the test saw it.
#[derive(Debug)]
struct RescaleTiming {
    /// From the decision's creation (the rule firing) to the job fully running at the new parallelism.
    to_running: Duration,
    /// The longest stretch in that time with no new record in the sink.
    longest_silence: Duration,
}

/// Polls until the decision `wanted` picks is applied and the job runs at its parallelism,
/// measuring the output gap on the way. Fails at once on a failed decision, naming why.
async fn follow_rescale(
    stack: &FlinkStack,
    after: i64,
    what: &str,
    wanted: fn(&Decision) -> bool,
    stage: Duration,
) -> anyhow::Result<(Decision, RescaleTiming)> {
    let deadline = Instant::now() + stage;
    let mut last_count = stack.probe.sink_coverage()?.distinct();
    let mut last_growth = Instant::now();
    let mut longest_silence = Duration::ZERO;
    let mut fired: Option<(Decision, Instant)> = None;
    loop {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        let decisions = stack.autoscaler.decisions(CLUSTER).await?;
        if let Some(failed) = decisions.iter().find(|d| d.status == "failed") {
            anyhow::bail!(
                "decision {} failed: {:?}\n{decisions:#?}",
                failed.id,
                failed.reason
            );
        }
        let count = stack.probe.sink_coverage()?.distinct();
        if count > last_count {
            last_count = count;
            last_growth = Instant::now();
        } else if fired.is_some() {
            longest_silence = longest_silence.max(last_growth.elapsed());
        }
        match &fired {
            None => {
                if let Some(decision) = decisions.into_iter().find(|d| d.id > after && wanted(d)) {
                    // The rule fired when the decision was recorded; age it by what already passed.
                    let age = decision_age(&decision);
                    fired = Some((decision, Instant::now() - age));
                    last_growth = last_growth.max(Instant::now() - age);
                }
            }
            Some((decision, since)) => {
                let target = stack
                    .path
                    .parallelism_of(decision.to_scale.expect("a scale") as u32);
                let current = decisions.iter().find(|d| d.id == decision.id);
                let applied = current.is_some_and(|d| d.status == "applied");
                if applied && stack.running_parallelism().await? == Some(target) {
                    let to_running = since.elapsed();
                    let decision = current.cloned().expect("found above");
                    return Ok((
                        decision,
                        RescaleTiming {
                            to_running,
                            longest_silence,
                        },
                    ));
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The decision's steps as `+seconds step`, from its creation: where a rescale's time went.
fn timeline(decision: &Decision) -> String {
    let created = decision
        .created_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let steps = decision.steps.as_array().cloned().unwrap_or_default();
    steps
        .iter()
        .map(|step| {
            let at = step["at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            let offset = match (created, at) {
                (Some(c), Some(a)) => format!("+{:.1}", (a - c).as_seconds_f64()),
                _ => "?".to_owned(),
            };
            format!("{offset} {}", step["step"].as_str().unwrap_or("?"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// How long ago the decision was created, by its `created_at` (RFC 3339).
fn decision_age(decision: &Decision) -> Duration {
    decision
        .created_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .and_then(|t| {
            (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                .to_std()
                .ok()
        })
        .unwrap_or_default()
}

async fn scenario(stack: &FlinkStack) -> anyhow::Result<()> {
    let path = stack.path;
    let (low, high, fallen) = rates(path);
    stack.probe.set_rate(low)?;

    // Warm-up: scale 1 keeps up, the manager gathers history, no rule fires.
    until_some("scale 1 delivering the low load", STAGE, || async {
        Ok((stack.probe.sink_coverage()?.distinct() >= 30 * low).then_some(()))
    })
    .await?;
    let quiet = stack.autoscaler.decisions(CLUSTER).await?;
    anyhow::ensure!(
        quiet.is_empty(),
        "no decision while scale 1 keeps up: {quiet:#?}"
    );

    // The input rises above what scale 1 can move: the backlog grows until a rule fires.
    stack.probe.set_rate(high)?;
    let (up, up_timing) =
        follow_rescale(stack, 0, "a scale-up applied", Decision::scales_up, STAGE).await?;
    anyhow::ensure!(
        ["lag_increasing", "lag_above_threshold"].contains(&up.rule.as_str()),
        "a lag rule fired, not {}",
        up.rule
    );
    anyhow::ensure!(up.from_scale == Some(1), "from scale 1: {up:#?}");
    let up_to = up.to_scale.expect("an applied decision has a scale") as u32;
    anyhow::ensure!((2..=path.max_scale()).contains(&up_to), "scaled to {up_to}");

    // Git holds the change, made by the autoscaler, and Argo CD applied that very commit.
    let history = stack.repo.history()?;
    let up_commit = commit_of(&history, up.id)?;
    anyhow::ensure!(up_commit.scale == up_to, "the commit holds {up_to}");
    anyhow::ensure!(
        history[0].sha == up_commit.sha,
        "the newest commit is the decision's"
    );
    anyhow::ensure!(
        stack.argocd.applied_revision(CLUSTER).as_deref() == Some(up_commit.sha.as_str()),
        "Argo CD applied the decision's commit"
    );
    eprintln!(
        "flink-e2e {path:?} scale-up 1 -> {up_to}: rule to running at parallelism {} in {:.1} s, \
         longest output gap {:.1} s; steps: {}",
        path.parallelism_of(up_to),
        up_timing.to_running.as_secs_f64(),
        up_timing.longest_silence.as_secs_f64(),
        timeline(&up)
    );

    // The larger job drains the backlog while the high input goes on.
    until_some("the backlog drained at the new scale", STAGE, || async {
        let pending = stack.pending_records().await?;
        Ok(pending.filter(|p| *p < high as f64).map(|_| ()))
    })
    .await?;

    // The input falls: after the scale-down window and the cooldown, the scale comes back down.
    let before = until_some("no decision in flight", STAGE, || async {
        let decisions = stack.autoscaler.decisions(CLUSTER).await?;
        Ok(decisions
            .iter()
            .all(Decision::finished)
            .then(|| decisions.last().map_or(0, |d| d.id)))
    })
    .await?;
    let scale_before = stack.repo.scale_at(BRANCH)?;
    stack.probe.set_rate(fallen)?;
    let (down, down_timing) = follow_rescale(
        stack,
        before,
        "a scale-down applied",
        Decision::scales_down,
        SCALE_DOWN_STAGE,
    )
    .await?;
    anyhow::ensure!(
        down.rule == "sustained_low_load",
        "the low-load rule, not {}",
        down.rule
    );
    anyhow::ensure!(down.from_scale == Some(scale_before as i32), "{down:#?}");
    let down_to = down.to_scale.expect("an applied decision has a scale") as u32;
    anyhow::ensure!(down_to < scale_before && down_to >= 1, "{down:#?}");
    let history = stack.repo.history()?;
    let down_commit = commit_of(&history, down.id)?;
    anyhow::ensure!(down_commit.scale == down_to, "the commit holds {down_to}");
    eprintln!(
        "flink-e2e {path:?} scale-down {scale_before} -> {down_to}: rule to running at parallelism \
         {} in {:.1} s, longest output gap {:.1} s; steps: {}",
        path.parallelism_of(down_to),
        down_timing.to_running.as_secs_f64(),
        down_timing.longest_silence.as_secs_f64(),
        timeline(&down)
    );

    // Every commit on the branch but the first is the autoscaler's, each with a known decision.
    let decisions = stack.autoscaler.decisions(CLUSTER).await?;
    for commit in &history[..history.len() - 1] {
        let id = commit
            .decision
            .ok_or_else(|| anyhow::anyhow!("commit {commit:?} has no decision"))?;
        anyhow::ensure!(
            decisions.iter().any(|d| d.id == id),
            "commit {commit:?} names an unknown decision"
        );
    }

    // Nothing lost across the restarts: stop the input, and the sink covers every record produced.
    // From the instant the rate falls to 0 on, the topic's log end stands still.
    let stopped = stack.probe.set_rate(0)?;
    let produced = stack.probe.produced(stopped);
    let covered = until_some("the sink covering every record produced", STAGE, || async {
        Ok(stack.probe.sink_coverage()?.covers(&produced).ok())
    })
    .await;
    if let Err(error) = covered {
        let coverage = stack.probe.sink_coverage()?;
        anyhow::bail!("{error:#}: {:?}", coverage.covers(&produced));
    }
    let coverage = stack.probe.sink_coverage()?;
    anyhow::ensure!(
        coverage.extra(&produced) == 0,
        "the sink holds records the source never produced"
    );
    eprintln!(
        "flink-e2e {path:?}: {} records produced, all in the sink ({} duplicates, at least once)",
        produced.total,
        coverage.duplicates()
    );
    Ok(())
}
