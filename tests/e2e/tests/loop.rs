//! The whole loop, end to end, with real processes: load rises → lag builds → the manager's rule
//! fires → a worker commits the new scale to the GitOps repository and syncs Argo CD → more engine
//! instances start → lag drains; load falls → the scale comes back down. Every step is asserted from
//! the decision records and the Git history, and every record the broker acknowledged must reach
//! Elasticsearch exactly once.

use std::time::Duration;

use e2e::autoscaler::Decision;
use e2e::gitops::commit_of;
use e2e::wait::until_some;
use e2e::{CLUSTER, Stack};

/// Records per second one instance carries easily, and a rate well above one instance's capacity
/// (about 500/s against the capacity-limited Elasticsearch) but below the cluster's.
const LOW_RATE: u32 = 150;
const HIGH_RATE: u32 = 1000;
/// After the burst: low enough that the forecast (which remembers the burst) soon fits one instance.
const FALLEN_RATE: u32 = 30;
/// Each stage of the loop gets this long; the whole test usually takes 3–7 minutes.
const STAGE: Duration = Duration::from_secs(300);
/// The scale-down waits for the forecast (the mean input over the last hour when no trend fits) to
/// fall below what one instance fewer carries.
const SCALE_DOWN_STAGE: Duration = Duration::from_secs(600);

/// The first finished decision after `after` that moves the scale as `wanted`; fails on a decision
/// that failed, so that the error shows why instead of a timeout.
async fn applied_change(
    stack: &Stack,
    after: i64,
    what: &str,
    wanted: fn(&Decision) -> bool,
    deadline: Duration,
) -> anyhow::Result<Decision> {
    until_some(what, deadline, || async {
        let decisions = stack.autoscaler.decisions(CLUSTER).await?;
        if let Some(failed) = decisions.iter().find(|d| d.status == "failed") {
            anyhow::bail!(
                "decision {} failed: {:?}\n{:#?}",
                failed.id,
                failed.reason,
                decisions
            );
        }
        Ok(decisions
            .into_iter()
            .find(|d| d.id > after && wanted(d) && d.status == "applied"))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_scales_the_pipeline_up_through_git_and_back_down() {
    let stack = Stack::start().await.expect("the stack starts");
    if let Err(error) = scenario(&stack).await {
        // A panic keeps the processes' logs (see `Stack`'s drop) for whoever reads the failure.
        panic!("{error:#}");
    }
}

async fn scenario(stack: &Stack) -> anyhow::Result<()> {
    let mut load = stack.start_load(LOW_RATE)?;

    // Warm-up: one instance keeps up, the manager gathers history, no rule fires.
    until_some("one instance delivering the low load", STAGE, || async {
        Ok((stack.documents() >= 20 * LOW_RATE as usize).then_some(()))
    })
    .await?;
    assert_eq!(stack.engines.running(), 1);
    let quiet = stack.autoscaler.decisions(CLUSTER).await?;
    assert!(
        quiet.is_empty(),
        "no decision while one instance keeps up: {quiet:#?}"
    );

    // Load rises above what one instance can move: lag builds until a rule fires.
    load.set_rate(HIGH_RATE)?;
    let up = applied_change(stack, 0, "a scale-up applied", Decision::scales_up, STAGE).await?;
    assert!(
        ["lag_increasing", "lag_above_threshold"].contains(&up.rule.as_str()),
        "a lag rule fired, not {}",
        up.rule
    );
    assert_eq!(up.from_scale, Some(1));
    let up_to = up.to_scale.expect("an applied decision has a scale") as u32;
    assert!((2..=e2e::MAX_SCALE).contains(&up_to), "scaled to {up_to}");

    // Git holds the change, made by the autoscaler, and Argo CD applied that very commit.
    let history = stack.repo.history()?;
    let up_commit = commit_of(&history, up.id)?;
    assert_eq!(up_commit.scale, up_to);
    assert_eq!(
        history[0].sha, up_commit.sha,
        "the newest commit is the decision's"
    );
    assert_eq!(
        stack.argocd.applied_revision(CLUSTER).as_deref(),
        Some(up_commit.sha.as_str())
    );
    // `applied` means the new instances announced themselves; they run.
    assert_eq!(stack.engines.running(), up_to as usize);

    // The larger pipeline drains the lag while the high load goes on.
    until_some("the lag drained at the new scale", STAGE, || async {
        let lag = stack.lag_records().await?;
        Ok(lag.filter(|lag| *lag < f64::from(HIGH_RATE)).map(|_| ()))
    })
    .await?;

    // Load falls: after the scale-down window and the cooldown, the scale comes back down. (The
    // autoscaler may already have trimmed an overshoot while the high load ran; what counts here is
    // a decision taken after the load fell.)
    let before = until_some("no decision in flight", STAGE, || async {
        let decisions = stack.autoscaler.decisions(CLUSTER).await?;
        Ok(decisions
            .iter()
            .all(Decision::finished)
            .then(|| decisions.last().map_or(0, |d| d.id)))
    })
    .await?;
    let scale_before = stack.repo.scale_at(e2e::gitops::BRANCH)?;
    load.set_rate(FALLEN_RATE)?;
    let down = applied_change(
        stack,
        before,
        "a scale-down applied",
        Decision::scales_down,
        SCALE_DOWN_STAGE,
    )
    .await?;
    assert_eq!(down.rule, "sustained_low_load");
    assert_eq!(down.from_scale, Some(scale_before as i32));
    let down_to = down.to_scale.expect("an applied decision has a scale") as u32;
    assert!(
        down_to < scale_before && down_to >= 1,
        "scaled down to {down_to} from {scale_before}"
    );
    let history = stack.repo.history()?;
    let down_commit = commit_of(&history, down.id)?;
    assert_eq!(down_commit.scale, down_to);
    let position = |sha: &str| history.iter().position(|c| c.sha == sha);
    assert!(
        position(&down_commit.sha) < position(&up_commit.sha),
        "the scale-down commit comes after the scale-up commit"
    );
    until_some("the stopped instances gone", STAGE, || async {
        let scale = stack.repo.scale_at(e2e::gitops::BRANCH)? as usize;
        Ok((stack.engines.running() == scale).then_some(()))
    })
    .await?;

    // Every commit on the branch but the first is the autoscaler's, each with its decision.
    let decisions = stack.autoscaler.decisions(CLUSTER).await?;
    for commit in &history[..history.len() - 1] {
        let id = commit
            .decision
            .unwrap_or_else(|| panic!("commit {commit:?} has no decision"));
        assert!(
            decisions.iter().any(|d| d.id == id),
            "commit {commit:?} names an unknown decision"
        );
    }

    // Every record the broker acknowledged reached Elasticsearch, once (ids are topic-partition-offset).
    let totals = load.stop()?;
    assert_eq!(totals.failed, 0, "the broker refused records: {totals:?}");
    assert_eq!(totals.acked, totals.produced);
    until_some(
        "every acknowledged record in Elasticsearch",
        STAGE,
        || async { Ok((stack.documents() as u64 >= totals.acked).then_some(())) },
    )
    .await?;
    assert_eq!(stack.documents() as u64, totals.acked);
    assert_eq!(stack.dead_letters()?, Vec::<String>::new());
    Ok(())
}
