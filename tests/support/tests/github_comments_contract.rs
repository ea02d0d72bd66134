//! The GitHub test server's pull request files and issue comments answer as GitHub documents them
//! (external-apis.md §4 "comment"), and octocrab 0.54 reads them: the files are the real diff between
//! the pull request's base and head in the bare repository.

use octocrab::Octocrab;
use octocrab::models::repos::DiffEntryStatus;
use serde_json::{Value, json};
use test_support::git;
use test_support::github::{BOT_LOGIN, GitHubServer};

const TOKEN: &str = "ghp_test";
const VALUES: &str = "apps/orders/values.yaml";

struct Fixture {
    server: GitHubServer,
    repo: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// `main` with the scale file and a README; Ada's branch changes the scale and adds notes, and `main`
/// moves on afterwards (a change that must not show in her pull request). Pull request #1 is hers.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("deploy.git");
    git::init_bare_repo(
        &repo,
        "main",
        &[
            (VALUES, "parallelism: 4\nslots: 2\n"),
            ("README.md", "deploy\n"),
        ],
    )
    .expect("bare repo");
    git::commit_files(
        &repo,
        "ada/more-orders",
        "main",
        &[
            (VALUES, "parallelism: 6\nslots: 2\n"),
            ("apps/orders/notes.md", "why\nsix\n"),
        ],
        "orders: 6 for the sale",
    )
    .expect("ada's branch");
    git::commit_files(
        &repo,
        "main",
        "main",
        &[("docs/later.md", "later\n")],
        "docs",
    )
    .expect("main moves on");
    let server = GitHubServer::start(TOKEN).await.expect("start");
    server.add_repository("acme", "deploy", repo.clone());
    let number = server
        .open_pull_as(
            "acme",
            "deploy",
            "ada",
            "ada/more-orders",
            "main",
            "More orders",
        )
        .expect("ada's pull request");
    assert_eq!(number, 1);
    Fixture {
        server,
        repo,
        _dir: dir,
    }
}

fn octocrab(server: &GitHubServer) -> Octocrab {
    Octocrab::builder()
        .base_uri(server.url())
        .expect("base uri")
        .personal_token(TOKEN.to_owned())
        .build()
        .expect("octocrab")
}

async fn raw(
    server: &GitHubServer,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", server.url()))
        .header("authorization", format!("Bearer {TOKEN}"));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn a_pull_requests_files_are_its_diff_from_the_merge_base_in_githubs_shape() {
    let f = fixture().await;
    let files = octocrab(&f.server)
        .pulls("acme", "deploy")
        .list_files(1)
        .await
        .expect("octocrab reads the files");
    let names: Vec<&str> = files.items.iter().map(|e| e.filename.as_str()).collect();
    // main's later commit is not part of the pull request.
    assert_eq!(names, ["apps/orders/notes.md", VALUES]);
    assert_eq!(files.items[0].status, DiffEntryStatus::Added);
    assert_eq!(files.items[1].status, DiffEntryStatus::Modified);

    let (status, headers, body) = raw(
        &f.server,
        reqwest::Method::GET,
        "/repos/acme/deploy/pulls/1/files",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(header(&headers, "link").is_none(), "one page");
    let values = &body[1];
    let blob = git::run(
        &f.repo,
        &["rev-parse", &format!("ada/more-orders:{VALUES}")],
    )
    .expect("blob");
    let head = git::rev_parse(&f.repo, "ada/more-orders").expect("head");
    let url = f.server.url();
    assert_eq!(
        values,
        &json!({
            "sha": blob,
            "filename": VALUES,
            "status": "modified",
            "additions": 1,
            "deletions": 1,
            "changes": 2,
            "blob_url": format!("{url}/acme/deploy/blob/{head}/{VALUES}"),
            "raw_url": format!("{url}/acme/deploy/raw/{head}/{VALUES}"),
            "contents_url": format!("{url}/repos/acme/deploy/contents/{VALUES}?ref={head}"),
            "patch": "@@ -1,2 +1,2 @@\n-parallelism: 4\n+parallelism: 6\n slots: 2",
        })
    );
    assert_eq!(
        (body[0]["additions"].clone(), body[0]["changes"].clone()),
        (json!(2), json!(2))
    );
}

#[tokio::test]
async fn files_paginate_and_follow_pushes_renames_and_removals() {
    let f = fixture().await;
    let path = "/repos/acme/deploy/pulls/1/files?per_page=1";
    let (status, headers, first) = raw(&f.server, reqwest::Method::GET, path, None).await;
    assert_eq!(status, 200);
    assert_eq!(first.as_array().map(Vec::len), Some(1));
    let base = format!("{}/repos/acme/deploy/pulls/1/files", f.server.url());
    assert_eq!(
        header(&headers, "link"),
        Some(
            format!(
                "<{base}?per_page=1&page=2>; rel=\"next\", <{base}?per_page=1&page=2>; rel=\"last\""
            )
            .as_str()
        )
    );
    let (_, _, second) = raw(
        &f.server,
        reqwest::Method::GET,
        "/repos/acme/deploy/pulls/1/files?per_page=1&page=2",
        None,
    )
    .await;
    assert_eq!(second[0]["filename"], VALUES);

    // Ada renames her notes and drops the README: the list follows the branch as GitHub does.
    let work = tempfile::tempdir().expect("clone dir");
    let clone = |args: &[&str]| git::run(work.path(), args).expect("git");
    clone(&["clone", "--quiet", &f.repo.to_string_lossy(), "."]);
    clone(&["checkout", "--quiet", "ada/more-orders"]);
    clone(&["mv", "apps/orders/notes.md", "apps/orders/NOTES.md"]);
    clone(&["rm", "--quiet", "README.md"]);
    clone(&["commit", "--quiet", "-m", "tidy"]);
    clone(&["push", "--quiet", "origin", "ada/more-orders"]);
    let readme = git::run(&f.repo, &["rev-parse", "main:README.md"]).expect("readme blob");

    let (_, _, files) = raw(
        &f.server,
        reqwest::Method::GET,
        "/repos/acme/deploy/pulls/1/files",
        None,
    )
    .await;
    let summary: Vec<(Value, Value, Value)> = files
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| {
            (
                e["filename"].clone(),
                e["status"].clone(),
                e.get("previous_filename").cloned().unwrap_or(Value::Null),
            )
        })
        .collect();
    // A file added and then renamed on the branch is simply added under its new name.
    assert_eq!(
        summary,
        [
            (json!("README.md"), json!("removed"), Value::Null),
            (json!("apps/orders/NOTES.md"), json!("added"), Value::Null),
            (json!(VALUES), json!("modified"), Value::Null),
        ]
    );
    assert_eq!(files[0]["sha"], json!(readme));
    assert_eq!(files[0]["deletions"], json!(1));
}

#[tokio::test]
async fn a_rename_of_a_file_on_base_says_renamed_with_the_previous_name() {
    let f = fixture().await;
    git::commit_files(&f.repo, "bob/move", "main", &[], "start").expect("branch");
    let work = tempfile::tempdir().expect("clone dir");
    let clone = |args: &[&str]| git::run(work.path(), args).expect("git");
    clone(&["clone", "--quiet", &f.repo.to_string_lossy(), "."]);
    clone(&["checkout", "--quiet", "bob/move"]);
    clone(&["mv", VALUES, "apps/orders/scale.yaml"]);
    clone(&["commit", "--quiet", "-m", "move"]);
    clone(&["push", "--quiet", "origin", "bob/move"]);
    let number = f
        .server
        .open_pull_as("acme", "deploy", "bob", "bob/move", "main", "Move")
        .expect("bob's pull request");

    let files = octocrab(&f.server)
        .pulls("acme", "deploy")
        .list_files(number)
        .await
        .expect("files");
    assert_eq!(files.items.len(), 1, "{:?}", files.items);
    let entry = &files.items[0];
    assert_eq!(entry.filename, "apps/orders/scale.yaml");
    assert_eq!(entry.status, DiffEntryStatus::Renamed);
    assert_eq!(entry.previous_filename.as_deref(), Some(VALUES));
    assert_eq!((entry.additions, entry.deletions, entry.changes), (0, 0, 0));
}

#[tokio::test]
async fn comments_are_created_with_201_and_location_and_listed_oldest_first() {
    let f = fixture().await;
    f.server
        .comment_as(
            "acme",
            "deploy",
            1,
            "ada",
            "Reviewers: this is for the sale.",
        )
        .expect("ada comments");
    let crab = octocrab(&f.server);
    let comment = crab
        .issues("acme", "deploy")
        .create_comment(1, "The autoscaler recommends 5.")
        .await
        .expect("octocrab reads the created comment");
    assert_eq!(comment.user.login, BOT_LOGIN);
    assert_eq!(
        comment.body.as_deref(),
        Some("The autoscaler recommends 5.")
    );

    let (status, headers, created) = raw(
        &f.server,
        reqwest::Method::POST,
        "/repos/acme/deploy/issues/1/comments",
        Some(json!({"body": "A second one."})),
    )
    .await;
    assert_eq!(status, 201);
    let id = created["id"].as_u64().expect("an id");
    let api = format!("{}/repos/acme/deploy", f.server.url());
    assert_eq!(
        header(&headers, "location"),
        Some(format!("{api}/issues/comments/{id}").as_str())
    );
    assert_eq!(created["url"], json!(format!("{api}/issues/comments/{id}")));
    assert_eq!(
        created["html_url"],
        json!(format!(
            "{}/acme/deploy/pull/1#issuecomment-{id}",
            f.server.url()
        ))
    );
    assert_eq!(created["issue_url"], json!(format!("{api}/issues/1")));
    for key in ["node_id", "created_at", "updated_at", "author_association"] {
        assert!(created[key].is_string(), "{key}: {created}");
    }
    assert_eq!(created["user"]["login"], BOT_LOGIN);
    assert_eq!(created["body"], "A second one.");

    let listed = crab
        .issues("acme", "deploy")
        .list_comments(1)
        .send()
        .await
        .expect("octocrab lists comments");
    let bodies: Vec<Option<&str>> = listed.items.iter().map(|c| c.body.as_deref()).collect();
    assert_eq!(
        bodies,
        [
            Some("Reviewers: this is for the sale."),
            Some("The autoscaler recommends 5."),
            Some("A second one.")
        ]
    );
    assert_eq!(listed.items[0].user.login, "ada");
    let snapshot = f.server.comments("acme", "deploy");
    assert_eq!(snapshot.len(), 3);
    assert_eq!(
        (
            snapshot[2].number,
            snapshot[2].id,
            snapshot[2].author.as_str()
        ),
        (1, id, BOT_LOGIN)
    );
    // The pull request counts its conversation.
    let (_, _, pull) = raw(
        &f.server,
        reqwest::Method::GET,
        "/repos/acme/deploy/pulls/1",
        None,
    )
    .await;
    assert_eq!(pull["comments"], json!(3));
}

#[tokio::test]
async fn comment_lists_paginate_and_filter_on_since() {
    let f = fixture().await;
    for text in ["one", "two", "three"] {
        f.server
            .comment_as("acme", "deploy", 1, "ada", text)
            .expect("comment");
    }
    let path = "/repos/acme/deploy/issues/1/comments?per_page=2";
    let (status, headers, first) = raw(&f.server, reqwest::Method::GET, path, None).await;
    assert_eq!(status, 200);
    assert_eq!(first[0]["body"], "one");
    assert_eq!(first.as_array().map(Vec::len), Some(2));
    let base = format!("{}/repos/acme/deploy/issues/1/comments", f.server.url());
    assert_eq!(
        header(&headers, "link"),
        Some(
            format!(
                "<{base}?per_page=2&page=2>; rel=\"next\", <{base}?per_page=2&page=2>; rel=\"last\""
            )
            .as_str()
        )
    );
    let (_, _, second) = raw(
        &f.server,
        reqwest::Method::GET,
        &format!("{path}&page=2"),
        None,
    )
    .await;
    assert_eq!(second, json!([second[0].clone()]));
    assert_eq!(second[0]["body"], "three");

    let crab = octocrab(&f.server);
    let hour = chrono::Duration::hours(1);
    let recent = crab
        .issues("acme", "deploy")
        .list_comments(1)
        .since(chrono::Utc::now() - hour)
        .send()
        .await
        .expect("since the past");
    assert_eq!(recent.items.len(), 3);
    let none = crab
        .issues("acme", "deploy")
        .list_comments(1)
        .since(chrono::Utc::now() + hour)
        .send()
        .await
        .expect("since the future");
    assert!(none.items.is_empty());
    let (status, _, body) = raw(
        &f.server,
        reqwest::Method::GET,
        "/repos/acme/deploy/issues/1/comments?since=yesterday",
        None,
    )
    .await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test]
async fn a_comment_without_a_body_or_on_no_pull_request_is_refused_as_github_does() {
    let f = fixture().await;
    let path = "/repos/acme/deploy/issues/1/comments";
    let docs = "https://docs.github.com/rest/issues/comments#create-an-issue-comment";
    let (status, _, missing) = raw(&f.server, reqwest::Method::POST, path, Some(json!({}))).await;
    assert_eq!(status, 422);
    assert_eq!(
        missing,
        json!({
            "message": "Validation Failed",
            "documentation_url": docs,
            "status": "422",
            "errors": [{"resource": "IssueComment", "code": "missing_field", "field": "body"}],
        })
    );
    let (status, _, blank) = raw(
        &f.server,
        reqwest::Method::POST,
        path,
        Some(json!({"body": "  "})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(blank["message"], "Validation Failed");
    assert_eq!(
        blank["errors"],
        json!([{"resource": "IssueComment", "code": "custom", "field": "body", "message": "body cannot be blank"}])
    );
    assert!(f.server.comments("acme", "deploy").is_empty());

    for (method, path) in [
        (
            reqwest::Method::POST,
            "/repos/acme/deploy/issues/9/comments",
        ),
        (reqwest::Method::GET, "/repos/acme/deploy/issues/9/comments"),
        (reqwest::Method::GET, "/repos/acme/deploy/pulls/9/files"),
        (reqwest::Method::GET, "/repos/acme/nope/pulls/1/files"),
    ] {
        let body = (method == reqwest::Method::POST).then(|| json!({"body": "hello"}));
        let (status, _, answer) = raw(&f.server, method, path, body).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(answer["message"], "Not Found", "{path}");
        assert_eq!(answer["status"], "404", "{path}");
        assert!(answer["documentation_url"].is_string(), "{path}");
    }
    // Octocrab sees GitHub's error.
    let refused = octocrab(&f.server)
        .issues("acme", "deploy")
        .create_comment(1, "")
        .await
        .expect_err("blank");
    match refused {
        octocrab::Error::GitHub { source, .. } => {
            assert_eq!(source.status_code.as_u16(), 422);
            assert_eq!(source.message, "Validation Failed");
        }
        other => panic!("expected GitHub's error, got {other:?}"),
    }
}
