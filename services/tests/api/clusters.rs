use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestApp, spec};

#[tokio::test]
async fn subscribing_returns_201_with_the_defaults_filled_in_and_a_location() {
    let app = TestApp::spawn().await;

    let response = app
        .post_json("/api/v1/clusters", &spec("logs-ingest"))
        .await;

    assert_eq!(response.status(), 201);
    assert_eq!(
        response.headers()["location"],
        "/api/v1/clusters/logs-ingest"
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["name"], "logs-ingest");
    assert_eq!(body["paused"], false);
    assert_eq!(body["spec"]["policy"]["lag_seconds_high"], 300.0);
    assert_eq!(body["spec"]["policy"]["cpu_high"], 0.9);
    assert_eq!(body["spec"]["policy"]["min_scale"], 1);
    assert_eq!(body["spec"]["git"]["branch"], "main");
    assert_eq!(body["spec"]["target"]["reactive"], true);
    assert_eq!(body["spec"]["write_back"]["mode"], "commit");
    let stored = app
        .storage
        .get_cluster("logs-ingest")
        .await
        .expect("stored");
    assert_eq!(stored.spec.policy.max_scale, 8);
}

#[tokio::test]
async fn a_subscribed_cluster_can_be_read_listed_replaced_and_deleted() {
    let app = TestApp::spawn().await;
    app.subscribe(&spec("alpha")).await;

    let read: Value = app
        .get("/api/v1/clusters/alpha")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(read["spec"]["argocd"]["application"], "alpha");

    let list: Value = app
        .get("/api/v1/clusters")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));

    let mut changed = spec("alpha");
    changed["policy"] = json!({"min_scale": 2, "max_scale": 12, "cooldown_seconds": 60});
    let replaced = app.put_json("/api/v1/clusters/alpha", &changed).await;
    assert_eq!(replaced.status(), 200);
    let replaced: Value = replaced.json().await.expect("json");
    assert_eq!(replaced["spec"]["policy"]["max_scale"], 12);
    assert_eq!(replaced["spec"]["policy"]["cooldown_seconds"], 60);
    let stored = app.storage.get_cluster("alpha").await.expect("stored");
    assert_eq!(stored.spec.policy.min_scale, 2);

    let deleted = app
        .authed(Method::DELETE, "/api/v1/clusters/alpha")
        .send()
        .await
        .expect("sent");
    assert_eq!(deleted.status(), 204);
    assert_eq!(app.get("/api/v1/clusters/alpha").await.status(), 404);
    assert_eq!(app.cluster_count().await, 0);
}

#[tokio::test]
async fn pause_and_resume_flip_the_paused_flag_and_keep_the_spec() {
    let app = TestApp::spawn().await;
    let subscribed = app.subscribe(&spec("beta")).await;

    let paused = app
        .post_json("/api/v1/clusters/beta/pause", &json!({}))
        .await;
    assert_eq!(paused.status(), 200);
    let paused: Value = paused.json().await.expect("json");
    assert_eq!(paused["paused"], true);
    assert!(
        app.storage
            .get_cluster("beta")
            .await
            .expect("stored")
            .paused
    );

    let resumed: Value = app
        .post_json("/api/v1/clusters/beta/resume", &json!({}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(resumed["paused"], false);
    assert_eq!(resumed["spec"], subscribed["spec"]);
    assert!(
        !app.storage
            .get_cluster("beta")
            .await
            .expect("stored")
            .paused
    );
}

#[tokio::test]
async fn listing_pages_through_clusters_by_name() {
    let app = TestApp::spawn().await;
    for name in ["c-3", "c-1", "c-5", "c-2", "c-4"] {
        app.subscribe(&spec(name)).await;
    }

    let mut seen = Vec::new();
    let mut path = "/api/v1/clusters?limit=2".to_owned();
    for _ in 0..5 {
        let page: Value = app.get(&path).await.json().await.expect("json");
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|c| c["name"].as_str().unwrap_or_default().to_owned()),
        );
        match page["next_after"].as_str() {
            Some(after) => path = format!("/api/v1/clusters?limit=2&after={after}"),
            None => break,
        }
    }

    assert_eq!(seen, ["c-1", "c-2", "c-3", "c-4", "c-5"]);
}

#[tokio::test]
async fn a_pull_request_cluster_keeps_its_secret_reference_and_never_a_secret() {
    let app = TestApp::spawn().await;
    let mut with_pr = spec("gamma");
    with_pr["write_back"] = json!({
        "mode": "pull_request",
        "github_repository": "platform/gitops",
        "token": {"env": "AUTOSCALER_TEAM_DEFAULT_SECRET_GITHUB"}
    });

    let body = app.subscribe(&with_pr).await;

    assert_eq!(
        body["spec"]["write_back"]["token"],
        json!({"env": "AUTOSCALER_TEAM_DEFAULT_SECRET_GITHUB"})
    );
}
