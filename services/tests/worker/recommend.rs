//! Recommend-only mode: the decision is made and recorded as `recommended`, and nothing reaches Git or
//! Argo CD. With `comment_on`, the recommendation is commented on the open pull requests that change
//! the scale file, once per decision.

use autoscaler::{
    metrics::OutcomeLabels,
    storage::{DecisionRecord, DecisionStatus},
    worker::{CommentFailedStep, CommentedStep, NoPullRequestStep, Progress},
};
use serde_json::json;
use test_support::{
    git,
    github::{BOT_LOGIN, CommentSnapshot, GitHubServer},
};

use crate::{
    pull_requests::GITHUB_TOKEN,
    world::{APP, PATH, VALUES, World},
};

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
    // Without `comment_on`, no GitHub is asked anything and no comment step is recorded.
    assert!(World::steps(&decision).is_empty(), "{decision:?}");
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

/// Recommend mode commenting on `acme/gitops` in the GitHub test server, which serves the world's bare
/// repository.
async fn commenting_world() -> (World, GitHubServer) {
    let github = GitHubServer::start(GITHUB_TOKEN).await.expect("github");
    let url = github.url();
    let world = World::with_spec(|spec| {
        spec["write_back"] = json!({
            "mode": "recommend",
            "comment_on": {
                "github_repository": "acme/gitops",
                "github_api_url": url,
                "token": {"file": "github"},
            },
        });
    })
    .await;
    std::fs::write(world.dir.join("secrets/default/github"), GITHUB_TOKEN).expect("secret");
    github.add_repository("acme", "gitops", world.bare.clone());
    (world, github)
}

/// Ada's pull request sets the scale file's replicas to 3; Bob's touches only a README.
fn open_pull_requests(world: &World, github: &GitHubServer) -> (u64, u64) {
    let edited = VALUES.replace("replicas:   2 ", "replicas:   3 ");
    git::commit_files(
        &world.bare,
        "ada/more-logs",
        "main",
        &[(PATH, &edited)],
        "logs: 3 for the sale",
    )
    .expect("ada's branch");
    git::commit_files(
        &world.bare,
        "bob/readme",
        "main",
        &[("README.md", "the logs pipeline\n")],
        "readme",
    )
    .expect("bob's branch");
    let ada = github
        .open_pull_as(
            "acme",
            "gitops",
            "ada",
            "ada/more-logs",
            "main",
            "More logs",
        )
        .expect("ada's pull request");
    let bob = github
        .open_pull_as("acme", "gitops", "bob", "bob/readme", "main", "Readme")
        .expect("bob's pull request");
    (ada, bob)
}

/// The detail of the decision's step `name`, typed.
fn step<T: serde::de::DeserializeOwned>(decision: &DecisionRecord, name: &str) -> T {
    let steps = decision.steps.0.as_array().expect("steps");
    let found = steps
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {steps:?}"));
    serde_json::from_value(found["detail"].clone()).expect("the step's detail")
}

fn comments_counted(world: &World, outcome: &'static str) -> u64 {
    world
        .metrics
        .recommendation_comments
        .get_or_create(&OutcomeLabels { outcome })
        .get()
}

#[tokio::test]
async fn a_pull_request_changing_the_scale_file_gets_the_recommendation_once() {
    let (world, github) = commenting_world().await;
    let (ada, _bob) = open_pull_requests(&world, &github);
    github
        .comment_as("acme", "gitops", ada, "carol", "Is 3 enough for the sale?")
        .expect("a reviewer's comment");
    let id = world.saturated_decision().await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    let decision = world.decision(id).await;
    assert_eq!(
        progress,
        Progress::Reached(DecisionStatus::Recommended),
        "{decision:?}"
    );
    let to = decision.to_scale.expect("a recommended scale");
    let ours: Vec<CommentSnapshot> = github
        .comments("acme", "gitops")
        .into_iter()
        .filter(|c| c.author == BOT_LOGIN)
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    let comment = &ours[0];
    assert_eq!(
        comment.number, ada,
        "Bob's pull request does not change {PATH}"
    );
    let body = &comment.body;
    assert!(
        body.starts_with(&format!(
            "The autoscaler recommends scaling **logs** from **2** to **{to}**.\n"
        )),
        "{body}"
    );
    assert!(
        body.contains("| Rule | `lag_above_threshold`: lag 639 s above 300 s over 300 s |"),
        "{body}"
    );
    assert!(body.contains("| Estimate | "), "{body}");
    assert!(
        body.contains(&format!(
            "| Decision | [{id}](https://autoscaler.example.com/api/v1/decisions/{id}) |"
        )),
        "{body}"
    );
    assert!(body.contains(&format!("changes `{PATH}`")), "{body}");
    assert!(
        body.ends_with(&format!("<!-- autoscaler-decision: {id} -->")),
        "{body}"
    );
    assert!(!body.contains(GITHUB_TOKEN), "{body}");
    assert!(!body.contains(crate::world::ARGOCD_TOKEN), "{body}");
    let commented: CommentedStep = step(&decision, "commented");
    assert_eq!(commented.github_repository, "acme/gitops");
    assert_eq!(commented.pull_requests, [ada]);
    assert_eq!(commented.posted, [ada]);
    assert_eq!(commented.comment_urls.len(), 1);
    assert_eq!(comments_counted(&world, "posted"), 1);
    // Still nothing written: no commit on main, the people's branches untouched, no sync.
    assert_eq!(world.log(), ["seed"]);
    assert!(world.argocd.sync_requests(APP).is_empty());
    assert!(
        github
            .pulls("acme", "gitops")
            .iter()
            .all(|p| p.author != BOT_LOGIN)
    );

    // The task delivered again finds the decision ended and comments nothing more.
    let again = world.worker("host-b").run_task(id, World::retry()).await;
    assert_eq!(again, Progress::Reached(DecisionStatus::Recommended));
    let after: Vec<CommentSnapshot> = github
        .comments("acme", "gitops")
        .into_iter()
        .filter(|c| c.author == BOT_LOGIN)
        .collect();
    assert_eq!(after, ours);
}

#[tokio::test]
async fn a_comment_posted_before_a_crash_is_found_by_its_marker_not_posted_again() {
    let (world, github) = commenting_world().await;
    let (ada, _) = open_pull_requests(&world, &github);
    let id = world.saturated_decision().await;
    // A worker posted this decision's comment, then died before recording the decision's end.
    github
        .comment_as(
            "acme",
            "gitops",
            ada,
            BOT_LOGIN,
            &format!("The autoscaler recommends…\n\n<!-- autoscaler-decision: {id} -->"),
        )
        .expect("the earlier attempt's comment");
    // Another decision's comment is not this one's.
    github
        .comment_as(
            "acme",
            "gitops",
            ada,
            BOT_LOGIN,
            &format!("<!-- autoscaler-decision: {} -->", id + 1000),
        )
        .expect("another decision's comment");

    let progress = world.worker("host-b").run_task(id, World::retry()).await;

    assert_eq!(progress, Progress::Reached(DecisionStatus::Recommended));
    let marker = format!("<!-- autoscaler-decision: {id} -->");
    let carrying = github
        .comments("acme", "gitops")
        .iter()
        .filter(|c| c.body.contains(&marker))
        .count();
    assert_eq!(carrying, 1);
    assert_eq!(github.comments("acme", "gitops").len(), 2);
    let commented: CommentedStep = step(&world.decision(id).await, "commented");
    assert_eq!(commented.pull_requests, [ada]);
    assert!(commented.posted.is_empty(), "{commented:?}");
    assert_eq!(comments_counted(&world, "already_posted"), 1);
}

#[tokio::test]
async fn github_refusing_leaves_the_decision_recommended_with_the_failure_recorded() {
    let (world, github) = commenting_world().await;
    open_pull_requests(&world, &github);
    let id = world.saturated_decision().await;
    // The primary rate limit resets in an hour: far past the worker's longest wait.
    github.inject_primary_rate_limit(1, 3600);

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    let decision = world.decision(id).await;
    assert_eq!(
        progress,
        Progress::Reached(DecisionStatus::Recommended),
        "{decision:?}"
    );
    assert!(
        decision
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("writes nothing")),
        "{decision:?}"
    );
    let failed: CommentFailedStep = step(&decision, "comment_failed");
    assert_eq!(failed.github_repository, "acme/gitops");
    assert!(
        failed.error.contains("rate limit") && failed.error.contains("403"),
        "{failed:?}"
    );
    assert!(failed.commented.is_empty());
    assert!(!failed.error.contains(GITHUB_TOKEN));
    assert!(!World::steps(&decision).contains(&"commented".to_owned()));
    assert!(github.comments("acme", "gitops").is_empty());
    assert_eq!(comments_counted(&world, "failed"), 1);
}

#[tokio::test]
async fn with_no_pull_request_changing_the_scale_file_nothing_is_posted() {
    let (world, github) = commenting_world().await;
    git::commit_files(
        &world.bare,
        "bob/readme",
        "main",
        &[("README.md", "the logs pipeline\n")],
        "readme",
    )
    .expect("bob's branch");
    github
        .open_pull_as("acme", "gitops", "bob", "bob/readme", "main", "Readme")
        .expect("bob's pull request");
    let id = world.saturated_decision().await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    assert_eq!(progress, Progress::Reached(DecisionStatus::Recommended));
    assert!(github.comments("acme", "gitops").is_empty());
    assert!(
        !github.requests().iter().any(|(method, _)| method == "POST"),
        "{:?}",
        github.requests()
    );
    let none: NoPullRequestStep = step(&world.decision(id).await, "no_pull_request_to_comment");
    assert_eq!(
        none,
        NoPullRequestStep {
            github_repository: "acme/gitops".to_owned(),
            base: "main".to_owned(),
            path: PATH.to_owned(),
            open_pull_requests_read: 1,
        }
    );
    assert_eq!(comments_counted(&world, "no_pull_request"), 1);
}
