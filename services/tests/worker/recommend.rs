//! Recommend-only mode: the decision is made and recorded as `recommended`, and nothing reaches Git or
//! Argo CD.

use autoscaler::{storage::DecisionStatus, worker::Progress};
use serde_json::json;

use crate::world::{APP, VALUES, World};

#[tokio::test]
async fn a_recommendation_is_recorded_and_nothing_is_written_or_synced() {
    let world = World::with_spec(|spec| {
        spec["write_back"] = json!({"mode": "recommend"});
    })
    .await;
    let head = world.head("main");
    let applied = world.argocd.applied_revision(APP);
    let id = world.saturated_decision().await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    let decision = world.decision(id).await;
    assert_eq!(
        progress,
        Progress::Reached(DecisionStatus::Recommended),
        "{decision:?}"
    );
    // The decision says what it would have done, with the estimate behind it.
    assert_eq!(decision.from_scale, Some(2));
    let to = decision.to_scale.expect("a recommended scale");
    assert!(to > 2, "{decision:?}");
    let reason = decision.reason.clone().unwrap_or_default();
    assert!(
        reason.contains(&format!("from 2 to {to}")) && reason.contains("writes nothing"),
        "{reason}"
    );
    assert!(decision.estimate.is_some());
    assert!(decision.finished_at.is_some());
    // No commit, no branch, no sync.
    assert_eq!(world.head("main"), head);
    assert_eq!(world.log(), ["seed"]);
    assert_eq!(world.file("main"), VALUES);
    let branches = crate::world::git(&world.bare, &["branch", "--format=%(refname:short)"]);
    assert_eq!(branches.trim(), "main");
    assert!(world.argocd.sync_requests(APP).is_empty());
    assert_eq!(world.argocd.applied_revision(APP), applied);

    // A repeated delivery of the task finds the decision ended.
    let again = world.worker("host-b").run_task(id, World::retry()).await;
    assert_eq!(again, Progress::Reached(DecisionStatus::Recommended));
    assert_eq!(world.log(), ["seed"]);
}
