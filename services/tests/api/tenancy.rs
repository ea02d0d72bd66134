//! Teams: for each role, a token of team A tries everything against team B's cluster, and every attempt
//! is refused with a clear 4xx, counted, and leaves nothing written. The default team's admin sees all.

use std::sync::Arc;

use autoscaler::{
    api::ApiTokens,
    metrics::Metrics,
    queue::TaskQueue,
    storage::NewDecision,
    tenancy::TokenStore,
    webhook::{self, WebhookState},
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{ROLES, TestApp, error_body, fields, spec, team_token, token_file};

/// Team B's cluster `b-orders` with one decision; returns the decision's id.
async fn team_b_cluster(app: &TestApp) -> i64 {
    let response = app
        .as_token(
            &team_token("team-b", "editor"),
            Method::POST,
            "/api/v1/clusters",
        )
        .json(&spec("b-orders"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201);
    let cluster = app.storage.get_cluster("b-orders").await.expect("stored");
    assert_eq!(cluster.team, "team-b");
    app.storage
        .insert_pending_decision(&NewDecision {
            cluster_id: cluster.id,
            cluster_name: "b-orders".into(),
            rule: "lag_high".into(),
            inputs: autoscaler::decide::DecisionInputs::bare(
                autoscaler::rules::Direction::Up,
                "lag 120 s",
                chrono::Utc::now(),
                300,
            ),
            from_scale: Some(2),
        })
        .await
        .expect("a decision")
        .id
}

/// What an observer can see of B's cluster: its row and the audit log.
async fn snapshot(app: &TestApp) -> (Value, bool, usize) {
    let cluster = app
        .storage
        .get_cluster("b-orders")
        .await
        .expect("still there");
    let audit = app
        .storage
        .list_audit(None, None, None, 500)
        .await
        .expect("audit")
        .len();
    (
        serde_json::to_value(&cluster.spec).expect("json"),
        cluster.paused,
        audit,
    )
}

#[tokio::test]
async fn every_role_of_another_team_is_refused_everything_on_a_cluster_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let decision = team_b_cluster(&app).await;
    let before = snapshot(&app).await;
    let mut changed = spec("b-orders");
    changed["policy"]["max_scale"] = json!(3);

    for role in ROLES {
        let token = team_token("team-a", role);
        let writer = role != "viewer";
        let attempts: Vec<(Method, String, Option<&Value>, u16)> = vec![
            (Method::GET, "/api/v1/clusters/b-orders".into(), None, 404),
            (
                Method::GET,
                "/api/v1/clusters/b-orders/decisions".into(),
                None,
                404,
            ),
            (
                Method::GET,
                format!("/api/v1/decisions/{decision}"),
                None,
                404,
            ),
            (
                Method::POST,
                "/api/v1/clusters/b-orders/evaluate".into(),
                None,
                404,
            ),
            (
                Method::PUT,
                "/api/v1/clusters/b-orders".into(),
                Some(&changed),
                if writer { 404 } else { 403 },
            ),
            (
                Method::POST,
                "/api/v1/clusters/b-orders/pause".into(),
                None,
                if writer { 404 } else { 403 },
            ),
            (
                Method::POST,
                "/api/v1/clusters/b-orders/resume".into(),
                None,
                if writer { 404 } else { 403 },
            ),
            (
                Method::DELETE,
                "/api/v1/clusters/b-orders".into(),
                None,
                if writer { 404 } else { 403 },
            ),
        ];
        for (method, path, sent, status) in attempts {
            let refusals = app.refusals("other_team") + app.refusals("role");
            let mut request = app.as_token(&token, method.clone(), &path);
            if let Some(sent) = sent {
                request = request.json(sent);
            }
            let response = request.send().await.expect("sent");
            let body = error_body(response, status).await;
            let what = format!("{role} {method} {path}");
            assert_eq!(
                app.refusals("other_team") + app.refusals("role"),
                refusals + 1,
                "{what} is counted"
            );
            if status == 404 {
                // The same answer as for a cluster that does not exist: nothing tells B's apart.
                let mut missing =
                    app.as_token(&token, method.clone(), &path.replace("b-orders", "no-such"));
                if let Some(sent) = sent {
                    let mut renamed = sent.clone();
                    renamed["name"] = json!("no-such");
                    missing = missing.json(&renamed);
                }
                let missing = missing.send().await.expect("sent");
                let missing = missing.json::<Value>().await.expect("json");
                assert_eq!(
                    body["message"]
                        .as_str()
                        .map(|m| m.replace("b-orders", "no-such")),
                    missing["message"].as_str().map(str::to_owned),
                    "{what}"
                );
                assert!(!body.to_string().contains("team-b"), "{what}: {body}");
            } else {
                assert_eq!(body["error"], "forbidden", "{what}");
            }
            assert_eq!(snapshot(&app).await, before, "{what} wrote nothing");
        }

        let list: Value = app
            .as_token(&token, Method::GET, "/api/v1/clusters")
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        assert_eq!(list["items"], json!([]), "{role} lists no cluster of B");

        // Subscribing under B's name tells only that the name is taken, and writes nothing.
        if writer {
            let response = app
                .as_token(&token, Method::POST, "/api/v1/clusters")
                .json(&spec("b-orders"))
                .send()
                .await
                .expect("sent");
            let body = error_body(response, 409).await;
            assert!(!body.to_string().contains("team-b"), "{body}");
            assert_eq!(snapshot(&app).await, before);
        }
    }
}

#[tokio::test]
async fn a_viewer_reads_its_team_but_cannot_write_and_the_default_teams_admin_sees_every_team() {
    let app = TestApp::spawn().await;
    team_b_cluster(&app).await;
    let viewer = team_token("team-b", "viewer");

    let read = app
        .as_token(&viewer, Method::GET, "/api/v1/clusters/b-orders")
        .send()
        .await
        .expect("sent");
    assert_eq!(read.status(), 200);
    let refused = app
        .as_token(&viewer, Method::POST, "/api/v1/clusters")
        .json(&spec("b-new"))
        .send()
        .await
        .expect("sent");
    let body = error_body(refused, 403).await;
    assert_eq!(body["error"], "forbidden");
    assert_eq!(app.cluster_count().await, 1, "nothing subscribed");

    // An engine token is no API token.
    let engine = app
        .as_token(
            &team_token("team-b", "engine"),
            Method::GET,
            "/api/v1/clusters",
        )
        .send()
        .await
        .expect("sent");
    error_body(engine, 403).await;

    // The plain token is an admin of the default team: every team's clusters.
    let all: Value = app
        .get("/api/v1/clusters")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(all["items"][0]["name"], "b-orders");
    let paused = app
        .authed(Method::POST, "/api/v1/clusters/b-orders/pause")
        .send()
        .await
        .expect("sent");
    assert_eq!(paused.status(), 200);
}

#[tokio::test]
async fn a_spec_may_name_only_its_own_teams_secrets() {
    let app = TestApp::spawn().await;
    let editor = team_token("team-a", "editor");
    for (field, secret) in [
        (
            "git.credentials",
            json!({"env": "AUTOSCALER_TEAM_TEAM_B_SECRET_GIT"}),
        ),
        ("git.credentials", json!({"env": "DATABASE_URL"})),
        ("git.credentials", json!({"env": "AUTOSCALER_API_TOKENS"})),
        (
            "git.credentials",
            json!({"env": "AUTOSCALER_TEAM_DEFAULT_SECRET_GIT"}),
        ),
        (
            "argocd.token",
            json!({"env": "AUTOSCALER_GITHUB_WEBHOOK_SECRET"}),
        ),
        ("argocd.token", json!({"file": "../team-b/argocd"})),
    ] {
        let mut body = spec("a-orders");
        let (object, key) = field.split_once('.').expect("a path");
        body[object][key] = secret.clone();
        let response = app
            .as_token(&editor, Method::POST, "/api/v1/clusters")
            .json(&body)
            .send()
            .await
            .expect("sent");
        let error = error_body(response, 422).await;
        assert_eq!(fields(&error), vec![field.to_owned()], "{secret}: {error}");
    }
    assert!(app.refusals("secret_outside_store") >= 5);
    assert_eq!(app.cluster_count().await, 0, "nothing subscribed");

    let mut own = spec("a-orders");
    own["git"]["credentials"] = json!({"env": "AUTOSCALER_TEAM_TEAM_A_SECRET_GIT"});
    let response = app
        .as_token(&editor, Method::POST, "/api/v1/clusters")
        .json(&own)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn an_engine_token_announces_only_for_its_own_teams_clusters() {
    let app = TestApp::spawn().await;
    team_b_cluster(&app).await;
    let dir = tempfile::tempdir().expect("dir");
    let tokens = Arc::new(TokenStore::new(&[], &[], Some(token_file(dir.path()))).expect("tokens"));
    let metrics = Arc::new(Metrics::default());
    let router = webhook::router(WebhookState {
        storage: app.storage.clone(),
        queue: TaskQueue::new(app.storage.pool()),
        argocd_tokens: Arc::new(ApiTokens::new::<&str>(&[])),
        github: None,
        engine_tokens: tokens,
        outbound: Arc::default(),
        max_body_bytes: 16 * 1024,
        max_age: std::time::Duration::from_secs(3 * 24 * 3600),
        metrics: metrics.clone(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/webhooks/engine",
        listener.local_addr().expect("address")
    );
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serves") });
    let announce = |token: String| {
        app.client
            .post(&url)
            .bearer_auth(token)
            .json(&json!({"cluster": "b-orders", "instance": "engine-0", "event": "register"}))
            .send()
    };
    let cluster = app.storage.get_cluster("b-orders").await.expect("cluster");

    for token in [
        team_token("team-a", "engine"),
        team_token("team-a", "admin"),
        team_token("team-b", "editor"),
    ] {
        let response = announce(token.clone()).await.expect("sent");
        assert!(
            [401, 404].contains(&response.status().as_u16()),
            "{token}: {}",
            response.status()
        );
        assert!(
            !app.storage
                .engines_ever_registered(cluster.id)
                .await
                .expect("read"),
            "{token} registered nothing"
        );
    }
    assert!(
        metrics
            .encode()
            .contains("autoscaler_api_refusals_total{reason=\"engine_scope\"} 1")
    );

    let response = announce(team_token("team-b", "engine"))
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert!(
        app.storage
            .engines_ever_registered(cluster.id)
            .await
            .expect("read")
    );
}

#[tokio::test]
async fn every_change_is_audited_for_the_teams_admins_with_the_token_name_and_secrets_redacted() {
    let app = TestApp::spawn().await;
    let editor = team_token("team-a", "editor");
    let send = |method: Method, path: &str, body: Option<Value>| {
        let mut request = app.as_token(&editor, method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    let first = spec("a-orders");
    assert_eq!(
        send(Method::POST, "/api/v1/clusters", Some(first))
            .await
            .expect("sent")
            .status(),
        201
    );
    let mut second = spec("a-orders");
    second["policy"]["max_scale"] = json!(4);
    assert_eq!(
        send(Method::PUT, "/api/v1/clusters/a-orders", Some(second))
            .await
            .expect("sent")
            .status(),
        200
    );
    for action in ["pause", "resume"] {
        let path = format!("/api/v1/clusters/a-orders/{action}");
        assert_eq!(
            send(Method::POST, &path, None)
                .await
                .expect("sent")
                .status(),
            200
        );
    }
    assert_eq!(
        send(Method::DELETE, "/api/v1/clusters/a-orders", None)
            .await
            .expect("sent")
            .status(),
        204
    );
    team_b_cluster(&app).await;

    let read = |token: String| app.as_token(&token, Method::GET, "/api/v1/audit").send();
    let response = read(team_token("team-a", "admin")).await.expect("sent");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("text");
    let page: Value = serde_json::from_str(&text).expect("json");
    let actions: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        ["delete", "resume", "pause", "replace", "subscribe"]
    );
    for entry in page["items"].as_array().expect("items") {
        assert_eq!(entry["token_name"], "team-a-editor");
        assert_eq!(entry["team"], "team-a");
    }
    assert_eq!(page["items"][1]["cluster"], "a-orders");
    assert_eq!(page["items"][3]["before"]["policy"]["max_scale"], 8);
    assert_eq!(page["items"][3]["after"]["policy"]["max_scale"], 4);
    assert!(!text.contains(&editor), "the token in the audit log");

    for role in ["viewer", "editor"] {
        error_body(read(team_token("team-a", role)).await.expect("sent"), 403).await;
    }
    let b: Value = read(team_token("team-b", "admin"))
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(
        b["items"].as_array().map(Vec::len),
        Some(1),
        "B's admin sees B's only: {b}"
    );
    let all: Value = app
        .get("/api/v1/audit?limit=500")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(all["items"].as_array().map(Vec::len), Some(6));
    let bad = app.get("/api/v1/audit?limit=0").await;
    error_body(bad, 400).await;
}
