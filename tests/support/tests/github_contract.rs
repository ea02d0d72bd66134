//! The GitHub test server answers the bot-PR flow of external-apis.md §4 the way GitHub does, and
//! octocrab 0.54 can use it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use octocrab::Octocrab;
use octocrab::models::pulls::PullRequest;
use octocrab::params;
use octocrab::service::middleware::retry::{NoOpRateLimitMetrics, RetryConfig};
use serde_json::{Value, json};
use test_support::git;
use test_support::github::{BOT_LOGIN, GitHubServer};

const TOKEN: &str = "ghp_test";
const BRANCH: &str = "autoscaler/orders/job-1";

struct Fixture {
    server: GitHubServer,
    repo: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("deploy.git");
    git::init_bare_repo(
        &repo,
        "main",
        &[("apps/orders/values.yaml", "parallelism: 4\n")],
    )
    .expect("bare repo");
    push_branch(&repo, BRANCH, 12);
    let server = GitHubServer::start(TOKEN).await.expect("start");
    server.add_repository("acme", "deploy", repo.clone());
    Fixture {
        server,
        repo,
        _dir: dir,
    }
}

/// What the worker does with the git CLI: commit the scale change on its branch and push.
fn push_branch(repo: &std::path::Path, branch: &str, parallelism: u32) -> String {
    let content = format!("parallelism: {parallelism}\n");
    git::commit_files(
        repo,
        branch,
        "main",
        &[("apps/orders/values.yaml", &content)],
        "scale orders",
    )
    .expect("push branch")
}

fn octocrab(server: &GitHubServer) -> Octocrab {
    Octocrab::builder()
        .base_uri(server.url())
        .expect("base uri")
        .personal_token(TOKEN.to_owned())
        .build()
        .expect("octocrab")
}

fn octocrab_handling_rate_limits(server: &GitHubServer) -> Octocrab {
    Octocrab::builder()
        .base_uri(server.url())
        .expect("base uri")
        .personal_token(TOKEN.to_owned())
        .add_retry_config(RetryConfig::HandleRateLimits {
            metrics: Arc::new(NoOpRateLimitMetrics),
            max_retries: 2,
            min_wait_seconds: 1,
            retry_on_forbidden: false,
        })
        .build()
        .expect("octocrab")
}

async fn create_pr(crab: &Octocrab, head: &str) -> octocrab::Result<PullRequest> {
    crab.pulls("acme", "deploy")
        .create("Scale orders to 12", head, "main")
        .body("<!--autoscaler:{\"job\":\"orders\",\"to\":12}-->")
        .draft(false)
        .maintainer_can_modify(true)
        .send()
        .await
}

async fn raw(
    server: &GitHubServer,
    method: reqwest::Method,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", server.url()));
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

fn github_error(err: &octocrab::Error) -> &octocrab::GitHubError {
    match err {
        octocrab::Error::GitHub { source, .. } => source,
        other => panic!("expected a GitHub error, got {other:?}"),
    }
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn bad_credentials_are_401_with_githubs_body() {
    let f = fixture().await;
    let path = "/repos/acme/deploy/pulls";
    let (status, _, body) = raw(
        &f.server,
        reqwest::Method::GET,
        path,
        Some("Bearer wrong"),
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"})
    );
    let (status, _, _) = raw(
        &f.server,
        reqwest::Method::GET,
        path,
        Some(&format!("token {TOKEN}")),
        None,
    )
    .await;
    assert_eq!(status, 200, "the `token` scheme works too");
    let (status, _, _) = raw(
        &f.server,
        reqwest::Method::GET,
        path,
        Some(&format!("Bearer {TOKEN}")),
        None,
    )
    .await;
    assert_eq!(status, 200);
    // Without credentials a private repository is invisible to reads, and writes ask for them.
    let (status, _, body) = raw(&f.server, reqwest::Method::GET, path, None, None).await;
    assert_eq!((status, body["message"].clone()), (404, json!("Not Found")));
    let (status, _, body) = raw(
        &f.server,
        reqwest::Method::POST,
        path,
        None,
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (status, body["message"].clone()),
        (401, json!("Requires authentication"))
    );

    let crab = Octocrab::builder()
        .base_uri(f.server.url())
        .expect("base uri")
        .personal_token("wrong".to_owned())
        .build()
        .expect("octocrab");
    let err = create_pr(&crab, BRANCH).await.expect_err("bad token");
    let gh = github_error(&err);
    assert_eq!(gh.status_code.as_u16(), 401);
    assert_eq!(gh.message, "Bad credentials");
}

#[tokio::test]
async fn octocrab_creates_a_pull_request_it_can_deserialize() {
    let f = fixture().await;
    let crab = octocrab(&f.server);
    let pr = create_pr(&crab, BRANCH).await.expect("create");
    assert_eq!(pr.number, 1);
    assert_eq!(pr.head.ref_field, BRANCH);
    assert_eq!(pr.base.ref_field, "main");
    assert_eq!(pr.head.label.as_deref(), Some(&*format!("acme:{BRANCH}")));
    assert_eq!(pr.state, Some(octocrab::models::IssueState::Open));
    assert_eq!(pr.title.as_deref(), Some("Scale orders to 12"));
    assert_eq!(pr.user.as_ref().map(|u| u.login.as_str()), Some(BOT_LOGIN));
    assert_eq!(pr.merged, Some(false));
    assert_eq!(pr.commits, Some(1));
    assert_eq!(pr.changed_files, Some(1));
    assert_eq!(pr.maintainer_can_modify, Some(true));
    let head_sha = git::rev_parse(&f.repo, BRANCH).expect("branch");
    assert_eq!(pr.head.sha, head_sha);
    assert!(pr.head.repo.is_some());

    let fetched = crab.pulls("acme", "deploy").get(1).await.expect("get");
    assert_eq!(fetched.number, 1);
    assert_eq!(fetched.body, pr.body);

    let snapshot = f.server.pulls("acme", "deploy");
    assert_eq!(snapshot.len(), 1);
    assert_eq!(snapshot[0].head, BRANCH);
    assert_eq!(snapshot[0].state, "open");
    assert_eq!(
        f.server
            .requests()
            .iter()
            .filter(|(m, p)| m == "POST" && p == "/repos/acme/deploy/pulls")
            .count(),
        1
    );
}

#[tokio::test]
async fn create_answers_201_with_location_and_rate_limit_headers() {
    let f = fixture().await;
    let body = json!({"title": "t", "head": format!("acme:{BRANCH}"), "base": "main", "body": "b"});
    let auth = format!("Bearer {TOKEN}");
    let (status, headers, pr) = raw(
        &f.server,
        reqwest::Method::POST,
        "/repos/acme/deploy/pulls",
        Some(&auth),
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{pr}");
    assert_eq!(
        header(&headers, "location"),
        Some(&*format!("{}/repos/acme/deploy/pulls/1", f.server.url()))
    );
    assert_eq!(header(&headers, "x-ratelimit-limit"), Some("5000"));
    assert_eq!(header(&headers, "x-ratelimit-used"), Some("1"));
    assert_eq!(header(&headers, "x-ratelimit-remaining"), Some("4999"));
    let reset: i64 = header(&headers, "x-ratelimit-reset")
        .and_then(|r| r.parse().ok())
        .expect("reset epoch");
    assert!(reset > chrono::Utc::now().timestamp());
    assert_eq!(pr["head"]["ref"], BRANCH);
    assert_eq!(pr["draft"], false);
    let (_, headers, _) = raw(
        &f.server,
        reqwest::Method::GET,
        "/repos/acme/deploy/pulls/1",
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(header(&headers, "x-ratelimit-remaining"), Some("4998"));
}

#[tokio::test]
async fn a_second_open_pull_request_for_the_same_head_is_422() {
    let f = fixture().await;
    let crab = octocrab(&f.server);
    create_pr(&crab, BRANCH).await.expect("create");
    let err = create_pr(&crab, BRANCH).await.expect_err("duplicate");
    let gh = github_error(&err);
    assert_eq!(gh.status_code.as_u16(), 422);
    assert_eq!(gh.message, "Validation Failed");
    assert_eq!(
        gh.errors,
        Some(vec![json!({
            "resource": "PullRequest",
            "code": "custom",
            "message": format!("A pull request already exists for acme:{BRANCH}.")
        })])
    );
    assert_eq!(
        gh.documentation_url.as_deref(),
        Some("https://docs.github.com/rest/pulls/pulls#create-a-pull-request")
    );
    // Once the first is closed, a new one may be opened for the branch.
    f.server.close_pull("acme", "deploy", 1).expect("close");
    assert_eq!(
        create_pr(&crab, BRANCH).await.expect("create again").number,
        2
    );
}

#[tokio::test]
async fn a_missing_head_branch_or_no_commits_is_422() {
    let f = fixture().await;
    let crab = octocrab(&f.server);
    let err = create_pr(&crab, "not-pushed").await.expect_err("no branch");
    let gh = github_error(&err);
    assert_eq!(gh.status_code.as_u16(), 422);
    assert_eq!(
        gh.errors,
        Some(vec![
            json!({"resource": "PullRequest", "field": "head", "code": "invalid"})
        ])
    );
    let err = create_pr(&crab, "other-owner:branch")
        .await
        .expect_err("fork");
    assert_eq!(github_error(&err).status_code.as_u16(), 422);

    git::run(&f.repo, &["branch", "empty", "main"]).expect("branch at main");
    let err = create_pr(&crab, "empty").await.expect_err("no commits");
    assert_eq!(
        github_error(&err).errors,
        Some(vec![
            json!({"resource": "PullRequest", "code": "custom", "message": "No commits between main and empty"})
        ])
    );

    let auth = format!("Bearer {TOKEN}");
    let (status, _, body) = raw(
        &f.server,
        reqwest::Method::POST,
        "/repos/acme/deploy/pulls",
        Some(&auth),
        Some(json!({"title": "t", "head": BRANCH, "base": "nope"})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["errors"],
        json!([{"resource": "PullRequest", "field": "base", "code": "invalid"}])
    );
    let resp = reqwest::Client::new()
        .post(format!("{}/repos/acme/deploy/pulls", f.server.url()))
        .header("authorization", &auth)
        .body("{broken")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["message"], "Problems parsing JSON");
}

#[tokio::test]
async fn listing_filters_on_owner_colon_branch_base_and_state() {
    let f = fixture().await;
    push_branch(&f.repo, "autoscaler/orders/job-2", 3);
    let crab = octocrab(&f.server);
    create_pr(&crab, BRANCH).await.expect("create 1");
    create_pr(&crab, "autoscaler/orders/job-2")
        .await
        .expect("create 2");

    let page = crab
        .pulls("acme", "deploy")
        .list()
        .state(params::State::Open)
        .head(format!("acme:{BRANCH}"))
        .base("main")
        .per_page(10)
        .send()
        .await
        .expect("list");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].head.ref_field, BRANCH);

    // A bare branch name is not a filter to GitHub: everything open comes back.
    let page = crab
        .pulls("acme", "deploy")
        .list()
        .head(BRANCH.to_owned())
        .send()
        .await
        .expect("list");
    assert_eq!(page.items.len(), 2);
    // Newest first by default.
    assert_eq!(page.items[0].number, 2);

    let page = crab
        .pulls("acme", "deploy")
        .list()
        .head("acme:no-such-branch".to_owned())
        .send()
        .await
        .expect("list");
    assert!(page.items.is_empty());
    let page = crab
        .pulls("acme", "deploy")
        .list()
        .base("release")
        .send()
        .await
        .expect("list");
    assert!(page.items.is_empty());

    f.server.close_pull("acme", "deploy", 1).expect("close");
    let open = crab
        .pulls("acme", "deploy")
        .list()
        .send()
        .await
        .expect("list");
    assert_eq!(open.items.len(), 1);
    let closed = crab
        .pulls("acme", "deploy")
        .list()
        .state(params::State::Closed)
        .send()
        .await
        .expect("list");
    assert_eq!(
        closed.items.iter().map(|p| p.number).collect::<Vec<_>>(),
        vec![1]
    );
    let all = crab
        .pulls("acme", "deploy")
        .list()
        .state(params::State::All)
        .send()
        .await
        .expect("list");
    assert_eq!(all.items.len(), 2);

    let (status, _, _) = raw(
        &f.server,
        reqwest::Method::GET,
        "/repos/acme/nope/pulls",
        Some(&format!("Bearer {TOKEN}")),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn listing_paginates_with_a_link_header() {
    let f = fixture().await;
    let crab = octocrab(&f.server);
    for n in 0..3 {
        let branch = format!("autoscaler/job-{n}");
        push_branch(&f.repo, &branch, n + 5);
        create_pr(&crab, &branch).await.expect("create");
    }
    let page = crab
        .pulls("acme", "deploy")
        .list()
        .per_page(2)
        .send()
        .await
        .expect("list");
    assert_eq!(page.items.len(), 2);
    assert!(page.next.is_some());
    let next: octocrab::Page<PullRequest> = crab
        .get_page(&page.next)
        .await
        .expect("next page")
        .expect("a next page");
    assert_eq!(next.items.len(), 1);
    assert!(next.next.is_none());
}

#[tokio::test]
async fn octocrab_updates_title_body_and_state() {
    let f = fixture().await;
    let crab = octocrab(&f.server);
    create_pr(&crab, BRANCH).await.expect("create");
    let updated = crab
        .pulls("acme", "deploy")
        .update(1)
        .title("Scale orders to 16")
        .body("now 16")
        .send()
        .await
        .expect("update");
    assert_eq!(updated.title.as_deref(), Some("Scale orders to 16"));
    assert_eq!(updated.body.as_deref(), Some("now 16"));
    let closed = crab
        .pulls("acme", "deploy")
        .update(1)
        .state(params::pulls::State::Closed)
        .send()
        .await
        .expect("close");
    assert_eq!(closed.state, Some(octocrab::models::IssueState::Closed));
    assert!(closed.closed_at.is_some());
    let snapshot = &f.server.pulls("acme", "deploy")[0];
    assert_eq!(
        (snapshot.title.as_str(), snapshot.state.as_str()),
        ("Scale orders to 16", "closed")
    );
    assert!(!snapshot.merged);

    let err = crab
        .pulls("acme", "deploy")
        .update(99)
        .title("x")
        .send()
        .await
        .expect_err("404");
    assert_eq!(github_error(&err).status_code.as_u16(), 404);
    assert_eq!(github_error(&err).message, "Not Found");
}

#[tokio::test]
async fn the_head_sha_follows_pushes_to_the_branch() {
    let f = fixture().await;
    let crab = octocrab(&f.server);
    let pr = create_pr(&crab, BRANCH).await.expect("create");
    let new_sha = push_branch(&f.repo, BRANCH, 16);
    assert_ne!(pr.head.sha, new_sha);
    let fetched = crab.pulls("acme", "deploy").get(1).await.expect("get");
    assert_eq!(fetched.head.sha, new_sha);
    assert_eq!(fetched.commits, Some(2));
}

#[tokio::test]
async fn octocrab_adds_and_the_server_keeps_labels() {
    let f = fixture().await;
    let crab = octocrab(&f.server);
    create_pr(&crab, BRANCH).await.expect("create");
    let labels = crab
        .issues("acme", "deploy")
        .add_labels(1, &["autoscaler".to_owned(), "flink".to_owned()])
        .await
        .expect("add labels");
    let names: Vec<_> = labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["autoscaler", "flink"]);
    // Adding again is idempotent and the response lists all labels on the issue.
    let labels = crab
        .issues("acme", "deploy")
        .add_labels(1, &["Autoscaler".to_owned(), "scale-up".to_owned()])
        .await
        .expect("add labels");
    assert_eq!(labels.len(), 3);
    assert_eq!(
        f.server.pulls("acme", "deploy")[0].labels,
        ["autoscaler", "flink", "scale-up"]
    );
    let pr = crab.pulls("acme", "deploy").get(1).await.expect("get");
    assert_eq!(pr.labels.map(|l| l.len()), Some(3));

    let auth = format!("Bearer {TOKEN}");
    let (status, _, body) = raw(
        &f.server,
        reqwest::Method::GET,
        "/repos/acme/deploy/issues/1/labels",
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().map(Vec::len), Some(3));
    let (status, _, body) = raw(
        &f.server,
        reqwest::Method::DELETE,
        "/repos/acme/deploy/issues/1/labels/flink",
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().map(Vec::len), Some(2));
    let (status, _, body) = raw(
        &f.server,
        reqwest::Method::DELETE,
        "/repos/acme/deploy/issues/1/labels/flink",
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(
        (status, body["message"].clone()),
        (404, json!("Label does not exist"))
    );
    let replaced = crab
        .issues("acme", "deploy")
        .replace_all_labels(1, &["only".to_owned()])
        .await
        .expect("replace");
    assert_eq!(replaced.len(), 1);
    let (status, _, _) = raw(
        &f.server,
        reqwest::Method::POST,
        "/repos/acme/deploy/issues/7/labels",
        Some(&auth),
        Some(json!({"labels": ["x"]})),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_secondary_rate_limit_is_a_403_without_retry_after_that_octocrab_does_not_retry() {
    let f = fixture().await;
    f.server.inject_secondary_rate_limit(1);
    let auth = format!("Bearer {TOKEN}");
    let (status, headers, body) = raw(
        &f.server,
        reqwest::Method::GET,
        "/repos/acme/deploy/pulls",
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert!(body["message"].as_str().is_some_and(|m| m.starts_with(
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
    )));
    assert!(
        body["documentation_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://docs.github.com/"))
    );
    assert!(headers.get("retry-after").is_none());
    assert_ne!(header(&headers, "x-ratelimit-remaining"), Some("0"));

    f.server.inject_secondary_rate_limit(1);
    let crab = octocrab_handling_rate_limits(&f.server);
    let before = f.server.requests().len();
    let err = create_pr(&crab, BRANCH).await.expect_err("not retried");
    let gh = github_error(&err);
    assert_eq!(gh.status_code.as_u16(), 403);
    assert!(gh.message.contains("secondary rate limit"));
    assert_eq!(
        f.server.requests().len(),
        before + 1,
        "octocrab did not retry"
    );
    assert!(f.server.pulls("acme", "deploy").is_empty());
    create_pr(&crab, BRANCH).await.expect("after the limit");
}

#[tokio::test]
async fn a_primary_rate_limit_is_a_403_with_remaining_0_and_a_reset_octocrab_waits_for() {
    let f = fixture().await;
    f.server.inject_primary_rate_limit(1, 1);
    let auth = format!("Bearer {TOKEN}");
    let (status, headers, body) = raw(
        &f.server,
        reqwest::Method::GET,
        "/repos/acme/deploy/pulls",
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("API rate limit exceeded"))
    );
    assert_eq!(header(&headers, "x-ratelimit-remaining"), Some("0"));
    let reset: i64 = header(&headers, "x-ratelimit-reset")
        .and_then(|r| r.parse().ok())
        .expect("reset");
    assert!(reset >= chrono::Utc::now().timestamp());
    assert!(headers.get("retry-after").is_none());

    f.server.inject_primary_rate_limit(1, 1);
    let crab = octocrab_handling_rate_limits(&f.server);
    let started = Instant::now();
    create_pr(&crab, BRANCH)
        .await
        .expect("retried after the reset");
    // octocrab waits at least 5 s for a primary limit, whatever the reset says.
    assert!(started.elapsed() >= Duration::from_secs(4));
    assert_eq!(f.server.pulls("acme", "deploy").len(), 1);
}

#[tokio::test]
async fn a_429_carries_retry_after_and_octocrab_retries() {
    let f = fixture().await;
    f.server.inject_retry_after(1, 1);
    let auth = format!("Bearer {TOKEN}");
    let (status, headers, body) = raw(
        &f.server,
        reqwest::Method::GET,
        "/repos/acme/deploy/pulls",
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(header(&headers, "retry-after"), Some("1"));
    assert!(body["message"].is_string());
    assert!(headers.get("x-ratelimit-limit").is_some());

    f.server.inject_retry_after(1, 1);
    let crab = octocrab_handling_rate_limits(&f.server);
    let started = Instant::now();
    create_pr(&crab, BRANCH).await.expect("retried");
    assert!(started.elapsed() >= Duration::from_millis(900));
    let creates = f
        .server
        .requests()
        .iter()
        .filter(|(m, p)| m == "POST" && p == "/repos/acme/deploy/pulls")
        .count();
    assert_eq!(creates, 2);
}

#[tokio::test]
async fn merge_pull_moves_the_base_branch_and_marks_the_pull_merged() {
    let f = fixture().await;
    let crab = octocrab(&f.server);
    create_pr(&crab, BRANCH).await.expect("create");
    let head_sha = git::rev_parse(&f.repo, BRANCH).expect("head");
    let old_main = git::rev_parse(&f.repo, "main").expect("main");

    let merge_sha = f.server.merge_pull("acme", "deploy", 1).expect("merge");
    assert_eq!(
        git::rev_parse(&f.repo, "main").as_deref(),
        Some(merge_sha.as_str())
    );
    let parents =
        git::run(&f.repo, &["rev-list", "--parents", "-n", "1", &merge_sha]).expect("parents");
    assert_eq!(parents, format!("{merge_sha} {old_main} {head_sha}"));
    let content = git::run(&f.repo, &["show", "main:apps/orders/values.yaml"]).expect("show");
    assert_eq!(content, "parallelism: 12");

    let pr = crab.pulls("acme", "deploy").get(1).await.expect("get");
    assert_eq!(pr.merged, Some(true));
    assert_eq!(pr.merge_commit_sha.as_deref(), Some(merge_sha.as_str()));
    assert!(pr.merged_at.is_some());
    assert_eq!(pr.state, Some(octocrab::models::IssueState::Closed));
    assert!(
        crab.pulls("acme", "deploy")
            .is_merged(1)
            .await
            .expect("is_merged")
    );
    let snapshot = &f.server.pulls("acme", "deploy")[0];
    assert!(snapshot.merged);
    assert_eq!(
        snapshot.merge_commit_sha.as_deref(),
        Some(merge_sha.as_str())
    );
    assert!(
        f.server.merge_pull("acme", "deploy", 1).is_err(),
        "already merged"
    );

    let payload = f
        .server
        .webhook_payload("acme", "deploy", 1)
        .expect("payload");
    assert_eq!(payload["action"], "closed");
    assert_eq!(payload["pull_request"]["merged"], true);
    assert_eq!(payload["pull_request"]["head"]["ref"], BRANCH);
    assert_eq!(payload["pull_request"]["base"]["ref"], "main");
    let body = serde_json::to_vec(&payload).expect("bytes");
    let event = octocrab::models::webhook_events::WebhookEvent::try_from_header_and_body(
        "pull_request",
        &body,
    )
    .expect("octocrab parses the webhook");
    let octocrab::models::webhook_events::WebhookEventPayload::PullRequest(p) = event.specific
    else {
        panic!("not a pull_request event");
    };
    assert_eq!(
        p.action,
        octocrab::models::webhook_events::payload::PullRequestWebhookEventAction::Closed
    );
    assert_eq!(p.pull_request.merged, Some(true));
    assert_eq!(
        p.pull_request.merge_commit_sha.as_deref(),
        Some(merge_sha.as_str())
    );
    assert_eq!(p.number, 1);
    assert!(event.repository.is_some() && event.sender.is_some());
}

#[tokio::test]
async fn close_pull_closes_without_merging() {
    let f = fixture().await;
    let crab = octocrab(&f.server);
    create_pr(&crab, BRANCH).await.expect("create");
    let old_main = git::rev_parse(&f.repo, "main");
    f.server.close_pull("acme", "deploy", 1).expect("close");
    assert_eq!(git::rev_parse(&f.repo, "main"), old_main);
    assert!(
        !crab
            .pulls("acme", "deploy")
            .is_merged(1)
            .await
            .expect("is_merged")
    );
    let payload = f
        .server
        .webhook_payload("acme", "deploy", 1)
        .expect("payload");
    assert_eq!(payload["action"], "closed");
    assert_eq!(payload["pull_request"]["merged"], false);
    assert_eq!(payload["pull_request"]["merge_commit_sha"], Value::Null);
}

#[tokio::test]
async fn the_server_stops_on_shutdown() {
    let f = fixture().await;
    let url = f.server.url();
    f.server.clone().shutdown();
    test_support::wait::until(
        "the server to stop",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || std::net::TcpStream::connect(url.trim_start_matches("http://")).err(),
    )
    .await;
}
