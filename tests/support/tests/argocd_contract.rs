//! The Argo CD test server answers the way external-apis.md §1.1–1.4 says Argo CD does.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use test_support::argocd::{App, ArgoCdServer};
use test_support::git;

const TOKEN: &str = "test-token";

struct Fixture {
    server: ArgoCdServer,
    repo: std::path::PathBuf,
    first_sha: String,
    _dir: tempfile::TempDir,
}

async fn fixture(auto_sync: bool) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("deploy.git");
    let first_sha = git::init_bare_repo(
        &repo,
        "main",
        &[("apps/orders/values.yaml", "parallelism: 4\n")],
    )
    .expect("bare repo");
    let server = ArgoCdServer::start(TOKEN).await.expect("start");
    server.add_application(App {
        name: "orders".into(),
        project: "streaming".into(),
        repo: repo.clone(),
        target_revision: "main".into(),
        auto_sync,
    });
    Fixture {
        server,
        repo,
        first_sha,
        _dir: dir,
    }
}

fn push_commit(f: &Fixture, parallelism: u32) -> String {
    let content = format!("parallelism: {parallelism}\n");
    git::commit_files(
        &f.repo,
        "main",
        "main",
        &[("apps/orders/values.yaml", &content)],
        "scale",
    )
    .expect("push")
}

async fn get(f: &Fixture, path_and_query: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path_and_query}", f.server.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get_app(f: &Fixture) -> Value {
    let (status, body) = get(f, "/api/v1/applications/orders").await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn sync_raw(f: &Fixture, app: &str, body: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/applications/{app}/sync", f.server.url()))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn sync(f: &Fixture, body: Value) -> (u16, Value) {
    sync_raw(f, "orders", &body.to_string()).await
}

fn assert_grpc_error(body: &Value, code: i64, message: &str) {
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["message"], message, "{body}");
    assert_eq!(body["error"], message, "{body}");
    assert_eq!(body["details"], json!([]), "{body}");
}

#[tokio::test]
async fn missing_or_wrong_bearer_token_is_401_code_16() {
    let f = fixture(false).await;
    let url = format!("{}/api/v1/applications/orders", f.server.url());
    let client = reqwest::Client::new();

    let resp = client.get(&url).send().await.expect("request");
    assert_eq!(resp.status().as_u16(), 401);
    let body: Value = resp.json().await.expect("json");
    assert_grpc_error(&body, 16, "no session information");

    let resp = client
        .get(&url)
        .bearer_auth("nope")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 401);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], 16);

    let resp = client
        .post(format!("{url}/sync"))
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 401);
}

#[tokio::test]
async fn unknown_app_is_404_with_project_and_403_without() {
    let f = fixture(false).await;
    let (status, body) = get(&f, "/api/v1/applications/nope?project=streaming").await;
    assert_eq!(status, 404);
    assert_grpc_error(&body, 5, "applications.argoproj.io \"nope\" not found");

    // Without ?project= Argo CD does not reveal whether an app exists.
    let (status, body) = get(&f, "/api/v1/applications/nope").await;
    assert_eq!(status, 403);
    assert_grpc_error(&body, 7, "permission denied");

    let (status, body) = get(&f, "/api/v1/applications/orders?project=other").await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], 7);

    let (status, body) = sync_raw(&f, "nope", r#"{"project":"streaming"}"#).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], 5);
    let (status, _) = sync_raw(&f, "nope", "{}").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn application_json_has_the_documented_shape() {
    let f = fixture(true).await;
    let app = get_app(&f).await;
    assert_eq!(app["metadata"]["name"], "orders");
    assert_eq!(app["metadata"]["namespace"], "argocd");
    assert!(app["metadata"]["resourceVersion"].is_string());
    assert_eq!(app["spec"]["project"], "streaming");
    assert_eq!(app["spec"]["source"]["targetRevision"], "main");
    assert!(
        app["spec"]["source"]["repoURL"]
            .as_str()
            .expect("repoURL")
            .starts_with("file://")
    );
    assert!(app["spec"]["source"]["path"].is_string());
    assert!(app["spec"]["syncPolicy"]["automated"].is_object());
    assert!(app.get("operation").is_none());
    assert_eq!(app["status"]["sync"]["status"], "Synced");
    assert_eq!(app["status"]["sync"]["revision"], f.first_sha.as_str());
    assert_eq!(app["status"]["health"]["status"], "Healthy");
    assert!(app["status"].get("operationState").is_none());

    let g = fixture(false).await;
    let manual = get_app(&g).await;
    assert_eq!(manual["spec"]["syncPolicy"], json!({}));
}

#[tokio::test]
async fn sync_runs_an_operation_that_completes_after_two_gets() {
    let f = fixture(false).await;
    let applied = Arc::new(Mutex::new(Vec::new()));
    let seen = applied.clone();
    f.server.on_applied(Arc::new(move |app: &str, sha: &str| {
        seen.lock()
            .expect("lock")
            .push((app.to_owned(), sha.to_owned()));
    }));
    let new_sha = push_commit(&f, 12);
    let request = json!({
        "revision": "",
        "prune": false,
        "dryRun": false,
        "strategy": {"hook": {"force": false}},
        "syncOptions": {"items": ["ApplyOutOfSyncOnly=true"]},
        "retryStrategy": {"limit": 3, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "2m"}},
        "infos": [{"name": "autoscaler.event", "value": "evt-7f3a"}]
    });
    // No refresh first: the sync resolves the branch against the repository as it is now.
    let (status, app) = sync(&f, request.clone()).await;
    assert_eq!(status, 200, "{app}");
    assert_eq!(app["operation"]["sync"]["revision"], new_sha.as_str());
    assert_eq!(
        app["operation"]["sync"]["syncOptions"],
        json!(["ApplyOutOfSyncOnly=true"])
    );
    assert_eq!(
        app["operation"]["sync"]["syncStrategy"],
        json!({"hook": {"force": false}})
    );
    assert_eq!(app["operation"]["initiatedBy"]["username"], "autoscaler");
    assert_eq!(
        app["operation"]["info"],
        json!([{"name": "autoscaler.event", "value": "evt-7f3a"}])
    );
    assert_eq!(app["operation"]["retry"]["limit"], 3);
    assert!(app["status"].get("operationState").is_none(), "{app}");
    assert_eq!(app["status"]["sync"]["status"], "OutOfSync");
    assert_eq!(f.server.sync_requests("orders"), vec![request]);

    let running = get_app(&f).await;
    assert!(running.get("operation").is_some());
    assert_eq!(running["status"]["operationState"]["phase"], "Running");
    assert_eq!(
        running["status"]["operationState"]["operation"]["sync"]["revision"],
        new_sha.as_str()
    );
    assert!(running["status"]["operationState"]["startedAt"].is_string());
    assert_eq!(
        f.server.applied_revision("orders").as_deref(),
        Some(f.first_sha.as_str())
    );

    let done = get_app(&f).await;
    assert!(done.get("operation").is_none(), "{done}");
    let state = &done["status"]["operationState"];
    assert_eq!(state["phase"], "Succeeded");
    assert!(state["finishedAt"].is_string());
    assert_eq!(state["syncResult"]["revision"], new_sha.as_str());
    assert_eq!(state["operation"]["sync"]["revision"], new_sha.as_str());
    assert_eq!(done["status"]["sync"]["status"], "Synced");
    assert_eq!(done["status"]["sync"]["revision"], new_sha.as_str());
    assert_eq!(done["status"]["health"]["status"], "Healthy");
    assert_eq!(
        f.server.applied_revision("orders").as_deref(),
        Some(new_sha.as_str())
    );
    assert_eq!(
        *applied.lock().expect("lock"),
        vec![("orders".to_owned(), new_sha.clone())]
    );
}

#[tokio::test]
async fn a_second_sync_while_one_runs_is_400_code_9() {
    let f = fixture(false).await;
    let (status, _) = sync(&f, json!({})).await;
    assert_eq!(status, 200);
    let (status, body) = sync(&f, json!({})).await;
    assert_eq!(status, 400);
    assert_grpc_error(
        &body,
        9,
        "error setting app operation: another operation is already in progress",
    );
    assert_eq!(f.server.sync_requests("orders").len(), 2);
}

#[tokio::test]
async fn a_foreign_operation_blocks_our_sync_until_it_completes() {
    let f = fixture(false).await;
    f.server.set_polls_to_complete("orders", 3);
    f.server.start_foreign_operation("orders");
    let (status, body) = sync(&f, json!({})).await;
    assert_eq!((status, body["code"].clone()), (400, json!(9)));
    let app = get_app(&f).await;
    assert_eq!(app["operation"]["initiatedBy"]["username"], "admin");
    get_app(&f).await;
    let (status, _) = sync(&f, json!({})).await;
    assert_eq!(status, 400, "still running after 2 of 3 GETs");
    let app = get_app(&f).await;
    assert!(app.get("operation").is_none());
    let (status, _) = sync(&f, json!({})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_closed_sync_window_is_403_code_7() {
    let f = fixture(false).await;
    f.server.set_sync_window_closed("orders", true);
    let (status, body) = sync(&f, json!({})).await;
    assert_eq!(status, 403);
    assert_grpc_error(&body, 7, "cannot sync: blocked by sync window");
    f.server.set_sync_window_closed("orders", false);
    let (status, _) = sync(&f, json!({})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn auto_sync_apps_refuse_a_revision_other_than_the_target() {
    let f = fixture(true).await;
    let sha = f.first_sha.clone();
    let (status, body) = sync(&f, json!({"revision": sha})).await;
    assert_eq!(status, 400);
    assert_grpc_error(
        &body,
        9,
        &format!("Cannot sync to {sha}: auto-sync currently set to main"),
    );
    // A dry run is allowed to any revision.
    f.server.set_polls_to_complete("orders", 0);
    let (status, _) = sync(&f, json!({"revision": sha, "dryRun": true})).await;
    assert_eq!(status, 200);
    let (status, _) = sync(&f, json!({"revision": "main"})).await;
    assert_eq!(status, 200);
    let (status, app) = sync(&f, json!({"revision": ""})).await;
    assert_eq!(status, 200);
    assert_eq!(app["operation"]["sync"]["revision"], sha.as_str());
}

#[tokio::test]
async fn a_manual_app_syncs_to_an_explicit_revision() {
    let f = fixture(false).await;
    let first = f.first_sha.clone();
    push_commit(&f, 8);
    let (status, app) = sync(&f, json!({"revision": &first[..12]})).await;
    assert_eq!(status, 200);
    assert_eq!(app["operation"]["sync"]["revision"], first.as_str());
    let (status, body) = sync(&f, json!({"revision": "no-such-branch"})).await;
    assert_eq!(status, 500);
    assert_eq!(body["code"], 2);
}

#[tokio::test]
async fn refresh_on_an_auto_sync_app_starts_an_automated_sync_to_the_new_commit() {
    let f = fixture(true).await;
    let new_sha = push_commit(&f, 6);
    // Without a refresh the server has not noticed the push.
    let app = get_app(&f).await;
    assert!(app.get("operation").is_none());
    assert_eq!(app["status"]["sync"]["revision"], f.first_sha.as_str());

    let (status, app) = get(&f, "/api/v1/applications/orders?refresh=normal").await;
    assert_eq!(status, 200);
    assert_eq!(app["operation"]["sync"]["revision"], new_sha.as_str());
    assert_eq!(app["operation"]["initiatedBy"]["automated"], true);
    assert_eq!(app["status"]["sync"]["status"], "OutOfSync");
    assert_eq!(
        get_app(&f).await["status"]["operationState"]["phase"],
        "Running"
    );
    let done = get_app(&f).await;
    assert_eq!(done["status"]["operationState"]["phase"], "Succeeded");
    assert_eq!(
        done["status"]["operationState"]["syncResult"]["revision"],
        new_sha.as_str()
    );
    assert_eq!(
        f.server.applied_revision("orders").as_deref(),
        Some(new_sha.as_str())
    );
    assert!(f.server.sync_requests("orders").is_empty());

    // Nothing new: a hard refresh starts nothing.
    let (_, app) = get(&f, "/api/v1/applications/orders?refresh=hard").await;
    assert!(app.get("operation").is_none());
    assert_eq!(app["status"]["sync"]["status"], "Synced");
}

#[tokio::test]
async fn refresh_on_a_manual_app_only_reports_out_of_sync() {
    let f = fixture(false).await;
    let new_sha = push_commit(&f, 6);
    let (_, app) = get(&f, "/api/v1/applications/orders?refresh=normal").await;
    assert!(app.get("operation").is_none());
    assert_eq!(app["status"]["sync"]["status"], "OutOfSync");
    assert_eq!(app["status"]["sync"]["revision"], new_sha.as_str());
}

#[tokio::test]
async fn a_failed_operation_is_phase_failed_and_degraded() {
    let f = fixture(false).await;
    f.server.set_polls_to_complete("orders", 1);
    f.server
        .fail_next_operation("orders", "one or more objects failed to apply");
    let new_sha = push_commit(&f, 9);
    let (status, _) = sync(&f, json!({})).await;
    assert_eq!(status, 200);
    let app = get_app(&f).await;
    assert!(app.get("operation").is_none());
    let state = &app["status"]["operationState"];
    assert_eq!(state["phase"], "Failed");
    assert_eq!(state["message"], "one or more objects failed to apply");
    assert_eq!(state["syncResult"]["revision"], new_sha.as_str());
    assert_eq!(app["status"]["health"]["status"], "Degraded");
    assert_eq!(app["status"]["sync"]["status"], "OutOfSync");
    assert_eq!(
        f.server.applied_revision("orders").as_deref(),
        Some(f.first_sha.as_str())
    );
    // Only the next operation fails.
    sync(&f, json!({})).await;
    assert_eq!(
        get_app(&f).await["status"]["operationState"]["phase"],
        "Succeeded"
    );
}

#[tokio::test]
async fn malformed_json_is_400_code_3() {
    let f = fixture(false).await;
    let (status, body) = sync_raw(&f, "orders", "{not json").await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], 3);
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    let (status, body) = sync_raw(&f, "orders", r#"{"prune":"yes"}"#).await;
    assert_eq!((status, body["code"].clone()), (400, json!(3)));
    // An empty body is an empty request.
    let (status, _) = sync_raw(&f, "orders", "").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_server_stops_with_its_last_handle() {
    let f = fixture(false).await;
    let url = f.server.url();
    let clone = f.server.clone();
    drop(f);
    let resp = reqwest::Client::new()
        .get(format!("{url}/api/v1/applications/orders"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("a clone keeps it running");
    assert_eq!(resp.status().as_u16(), 200);
    drop(clone);
    test_support::wait::until(
        "the server to stop",
        std::time::Duration::from_secs(5),
        std::time::Duration::from_millis(20),
        || std::net::TcpStream::connect(url.trim_start_matches("http://")).err(),
    )
    .await;
}
