//! Pull-request mode against the contract-faithful GitHub test server: the worker pushes its branch to
//! the bare repository with git and speaks the pull request API only.

use autoscaler::{
    gitops::{GitWriter, Remote, ScaleChange},
    storage::DecisionStatus,
    worker::Progress,
};
use chrono::Utc;
use test_support::github::GitHubServer;

use crate::world::{APP, World};

pub const GITHUB_TOKEN: &str = "ghp_test_token_0123456789";

pub async fn pull_request_world() -> (World, GitHubServer) {
    let github = GitHubServer::start(GITHUB_TOKEN).await.expect("github");
    let url = github.url();
    let world = World::with_spec(|spec| {
        spec["write_back"] = serde_json::json!({
            "mode": "pull_request",
            "github_repository": "acme/gitops",
            "github_api_url": url,
            "token": {"file": "github"},
            "labels": ["autoscaler", "pipeline:logs"],
        });
    })
    .await;
    std::fs::write(world.dir.join("secrets/default/github"), GITHUB_TOKEN).expect("secret");
    github.add_repository("acme", "gitops", world.bare.clone());
    (world, github)
}

fn creates(github: &GitHubServer) -> usize {
    github
        .requests()
        .iter()
        .filter(|(method, path)| method == "POST" && path == "/repos/acme/gitops/pulls")
        .count()
}

#[tokio::test]
async fn one_pull_request_per_cluster_updated_by_the_next_decision() {
    let (world, github) = pull_request_world().await;
    let now = Utc::now();
    world.saturated_history(now).await;
    let first = world.pending("up", now).await;

    let progress = world.worker("host-a").run_task(first, World::retry()).await;

    let decision = world.decision(first).await;
    assert_eq!(
        progress,
        Progress::Reached(DecisionStatus::PrOpen),
        "{decision:?}"
    );
    let pulls = github.pulls("acme", "gitops");
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    let pull = &pulls[0];
    let to = decision.to_scale.expect("a scale");
    assert_eq!(
        (pull.head.as_str(), pull.base.as_str()),
        ("autoscaler/logs", "main")
    );
    assert_eq!(pull.title, format!("Scale logs from 2 to {to}"));
    assert_eq!(pull.labels, ["autoscaler", "pipeline:logs"]);
    let body = pull.body.clone().unwrap_or_default();
    assert!(body.contains("```mermaid\nxychart-beta"), "{body}");
    assert!(
        body.contains(&format!(
            "https://autoscaler.example.com/api/v1/decisions/{first}"
        )),
        "{body}"
    );
    assert!(!body.contains(GITHUB_TOKEN));
    // The change waits on its branch; main and Argo CD are untouched until the merge.
    assert_eq!(world.log(), ["seed"]);
    assert!(
        world
            .file("autoscaler/logs")
            .contains(&format!("replicas:   {to} "))
    );
    assert!(world.argocd.sync_requests(APP).is_empty());
    let write_back = &decision.write_back.as_ref().expect("write back").0;
    assert_eq!(write_back["pull_request"], pull.number);

    // The next decision for the cluster updates the same pull request.
    let second = world.pending("up", Utc::now()).await;
    let progress = world
        .worker("host-b")
        .run_task(second, World::retry())
        .await;

    assert_eq!(progress, Progress::Reached(DecisionStatus::PrOpen));
    assert_eq!(github.pulls("acme", "gitops").len(), 1);
    assert_eq!(creates(&github), 1);
    let updated = github.pulls("acme", "gitops")[0]
        .body
        .clone()
        .unwrap_or_default();
    assert!(
        updated.contains(&format!("decisions/{second}")),
        "{updated}"
    );
    assert_eq!(
        world.decision(first).await.status,
        DecisionStatus::Superseded
    );
    let on_branch = crate::world::git(
        &world.bare,
        &["log", "--format=%s", "main..autoscaler/logs"],
    );
    assert_eq!(
        on_branch.lines().count(),
        1,
        "one commit on top of main: {on_branch}"
    );
}

#[tokio::test]
async fn a_branch_pushed_before_a_crash_gets_its_pull_request_once() {
    let (world, github) = pull_request_world().await;
    let id = world.saturated_decision().await;
    // A worker pushed the branch for this decision, then died before opening the pull request.
    let url = format!("file://{}", world.bare.display());
    GitWriter::new(world.dir.join("dead-host"))
        .write_branch(
            Remote {
                url: &url,
                branch: "main",
                credential: None,
            },
            "autoscaler/logs",
            &ScaleChange {
                path: crate::world::PATH,
                key: "engine.replicas",
                scale: 7,
                message: "Scale logs from 2 to 7",
                decision_id: id,
            },
        )
        .await
        .expect("pushed");
    let pushed = world.head("autoscaler/logs");

    let progress = world.worker("host-b").run_task(id, World::retry()).await;
    let again = world.worker("host-c").run_task(id, World::retry()).await;

    assert_eq!(progress, Progress::Reached(DecisionStatus::PrOpen));
    assert_eq!(again, Progress::Reached(DecisionStatus::PrOpen));
    assert_eq!(
        world.head("autoscaler/logs"),
        pushed,
        "the branch was not rewritten"
    );
    assert_eq!(github.pulls("acme", "gitops").len(), 1);
    assert_eq!(creates(&github), 1);
}

#[tokio::test]
async fn rate_limits_are_waited_out() {
    let (world, github) = pull_request_world().await;
    let id = world.saturated_decision().await;
    // Two bare secondary-limit 403s (no Retry-After), a 429 with Retry-After, and the primary limit
    // (403 with x-ratelimit-remaining: 0 until x-ratelimit-reset).
    github.inject_secondary_rate_limit(2);
    github.inject_retry_after(1, 1);
    github.inject_primary_rate_limit(1, 1);

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    let decision = world.decision(id).await;
    assert_eq!(
        progress,
        Progress::Reached(DecisionStatus::PrOpen),
        "{decision:?}"
    );
    assert_eq!(github.pulls("acme", "gitops").len(), 1);
}

#[tokio::test]
async fn a_rejected_github_token_fails_the_decision_without_showing_it() {
    let (world, _github) = pull_request_world().await;
    std::fs::write(
        world.dir.join("secrets/default/github"),
        "ghp_wrong_token_000000",
    )
    .expect("secret");
    let id = world.saturated_decision().await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    assert_eq!(progress, Progress::Reached(DecisionStatus::Failed));
    let decision = world.decision(id).await;
    let reason = decision.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("GitHub rejected the token (HTTP 401)"),
        "{reason}"
    );
    let stored = serde_json::to_string(&decision).expect("json");
    assert!(
        !stored.contains("ghp_wrong_token") && !stored.contains(GITHUB_TOKEN),
        "{stored}"
    );
}

/// A `MakeWriter` that keeps every log line of the test in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test]
async fn no_secret_value_reaches_logs_errors_decisions_commits_or_pull_requests() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // A pull request opened with the right token, then a decision failing on a wrong one.
    let (world, github) = pull_request_world().await;
    let now = Utc::now();
    world.saturated_history(now).await;
    let opened = world.pending("up", now).await;
    let progress = world
        .worker("host-a")
        .run_task(opened, World::retry())
        .await;
    assert_eq!(progress, Progress::Reached(DecisionStatus::PrOpen));
    const WRONG: &str = "ghp_wrong_token_leak_check_000";
    std::fs::write(world.dir.join("secrets/default/github"), WRONG).expect("secret");
    let (other, _github) = pull_request_world().await;
    std::fs::write(other.dir.join("secrets/default/github"), WRONG).expect("secret");
    let failed = other.saturated_decision().await;
    let progress = other
        .worker("host-b")
        .run_task(failed, World::retry())
        .await;
    assert_eq!(progress, Progress::Reached(DecisionStatus::Failed));

    let mut haystacks = vec![
        (
            "logs",
            String::from_utf8_lossy(&logs.0.lock().expect("lock")).into_owned(),
        ),
        ("metrics", world.metrics.encode()),
    ];
    for (what, w, id) in [
        ("opened decision", &world, opened),
        ("failed decision", &other, failed),
    ] {
        let record = w.decision(id).await;
        haystacks.push((what, serde_json::to_string(&record).expect("json")));
    }
    for pull in github.pulls("acme", "gitops") {
        haystacks.push(("pull request", format!("{} {:?}", pull.title, pull.body)));
    }
    for bare in [&world.bare, &other.bare] {
        let history = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(bare)
            .args(["log", "-p", "--all"])
            .output()
            .expect("git log");
        haystacks.push((
            "commits",
            String::from_utf8_lossy(&history.stdout).into_owned(),
        ));
    }
    assert!(
        haystacks[0].1.contains("decision"),
        "the logs were captured: {}",
        haystacks[0].1.len()
    );
    for secret in [GITHUB_TOKEN, WRONG, crate::world::ARGOCD_TOKEN] {
        for (what, text) in &haystacks {
            assert!(!text.contains(secret), "{secret} found in the {what}");
        }
    }
}
