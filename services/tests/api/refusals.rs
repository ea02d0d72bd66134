//! Every class of bad input gets a 4xx with a JSON body that names the problem, and nothing is written.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{BODY_LIMIT, TOKEN, TestApp, error_body, fields, spec};

/// Posts a raw body as JSON and expects a refusal that stored nothing.
async fn refused_subscription(app: &TestApp, body: String, status: u16) -> Value {
    let response = app
        .authed(Method::POST, "/api/v1/clusters")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("sent");
    let error = error_body(response, status).await;
    assert_eq!(app.cluster_count().await, 0, "nothing stored after {error}");
    error
}

/// Sets (or adds) the field at `pointer`.
fn with(mut value: Value, pointer: &str, new: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    value
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("parent is an object")
        .insert(key.to_owned(), new);
    value
}

#[tokio::test]
async fn malformed_json_is_a_400() {
    let app = TestApp::spawn().await;
    for body in ["{", "not json", "{\"name\": \"a\",}", "{} trailing"] {
        let error = refused_subscription(&app, body.to_owned(), 400).await;
        assert_eq!(error["error"], "malformed_json", "{body}");
    }
}

#[tokio::test]
async fn an_unknown_field_is_a_422_naming_it() {
    let app = TestApp::spawn().await;
    let mut body = spec("a");
    body["policy"]["max_sclae"] = json!(3);

    let error = refused_subscription(&app, body.to_string(), 422).await;

    assert_eq!(error["error"], "invalid_body");
    assert_eq!(fields(&error), ["policy.max_sclae"]);
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown field"),
        "{error}"
    );
}

#[tokio::test]
async fn a_wrong_type_is_a_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let body = with(spec("a"), "/policy/max_scale", json!("eight"));

    let error = refused_subscription(&app, body.to_string(), 422).await;

    assert_eq!(fields(&error), ["policy.max_scale"]);
}

#[tokio::test]
async fn a_missing_essential_is_a_422_naming_it() {
    let app = TestApp::spawn().await;
    let mut body = spec("a");
    body["git"].as_object_mut().expect("object").remove("key");

    let error = refused_subscription(&app, body.to_string(), 422).await;

    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("missing field `key`"),
        "{error}"
    );
    assert_eq!(fields(&error), ["git.key"]);
}

#[tokio::test]
async fn a_missing_top_level_field_is_named() {
    let app = TestApp::spawn().await;

    let error = refused_subscription(&app, json!({"name": "x"}).to_string(), 422).await;

    assert_eq!(fields(&error), ["target"]);
}

#[tokio::test]
async fn min_above_max_is_a_422() {
    let app = TestApp::spawn().await;
    let body = with(
        spec("a"),
        "/policy",
        json!({"min_scale": 5, "max_scale": 2}),
    );

    let error = refused_subscription(&app, body.to_string(), 422).await;

    assert_eq!(error["error"], "validation_failed");
    assert_eq!(fields(&error), ["policy.min_scale"]);
}

#[tokio::test]
async fn an_unknown_kind_is_a_422_listing_the_known_ones() {
    let app = TestApp::spawn().await;
    let body = with(spec("a"), "/target/kind", json!("spark"));

    let error = refused_subscription(&app, body.to_string(), 422).await;

    assert_eq!(fields(&error), ["target.kind"]);
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("engine") && message.contains("flink"),
        "{message}"
    );
}

#[tokio::test]
async fn invalid_urls_are_422s() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            "/metrics/prometheus_url",
            json!("not a url"),
            "metrics.prometheus_url",
        ),
        (
            "/metrics/prometheus_url",
            json!("file:///etc/passwd"),
            "metrics.prometheus_url",
        ),
        (
            "/argocd/server",
            json!("https://admin:secret@argocd"),
            "argocd.server",
        ),
    ];
    for (pointer, value, field) in cases {
        let error =
            refused_subscription(&app, with(spec("a"), pointer, value).to_string(), 422).await;
        assert_eq!(fields(&error), [field]);
        // A credential in the request never comes back in the error.
        assert!(!error.to_string().contains("secret@"), "{error}");
    }
}

#[tokio::test]
async fn recommend_modes_github_url_is_checked_against_the_outbound_policy_naming_the_field() {
    let app = TestApp::spawn().await;
    let comment_on = |url: &str| {
        json!({"mode": "recommend", "comment_on": {
            "github_repository": "platform/gitops",
            "github_api_url": url,
            "token": {"env": "AUTOSCALER_TEAM_DEFAULT_SECRET_GITHUB"},
        }})
    };
    let refused = with(
        spec("a"),
        "/write_back",
        comment_on("http://169.254.169.254/latest/"),
    );
    let error = refused_subscription(&app, refused.to_string(), 422).await;
    assert_eq!(fields(&error), ["write_back.comment_on.github_api_url"]);
    assert!(error.to_string().contains("outbound policy"), "{error}");

    let allowed = with(
        spec("a"),
        "/write_back",
        comment_on("https://github.example.com/api/v3"),
    );
    let response = app.post_json("/api/v1/clusters", &allowed).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["spec"]["write_back"]["comment_on"]["github_api_url"],
        "https://github.example.com/api/v3"
    );
}

#[tokio::test]
async fn a_name_that_is_not_a_dns_label_is_a_422() {
    let app = TestApp::spawn().await;
    for name in ["Logs", "logs_ingest", "-x", ""] {
        let body = with(spec("a"), "/name", json!(name));
        let error = refused_subscription(&app, body.to_string(), 422).await;
        assert_eq!(fields(&error), ["name"], "{name:?}");
    }
}

#[tokio::test]
async fn several_problems_are_reported_together() {
    let app = TestApp::spawn().await;
    let body = with(
        with(
            with(spec("a"), "/name", json!("BAD")),
            "/policy",
            json!({"min_scale": 3, "max_scale": 2}),
        ),
        "/git/path",
        json!("../escape.yaml"),
    );

    let error = refused_subscription(&app, body.to_string(), 422).await;

    assert_eq!(fields(&error), ["name", "git.path", "policy.min_scale"]);
}

#[tokio::test]
async fn an_oversized_body_is_a_413() {
    let app = TestApp::spawn().await;
    let mut body = spec("a");
    body["policy"]["padding"] = json!("x".repeat(BODY_LIMIT));

    let error = refused_subscription(&app, body.to_string(), 413).await;

    assert_eq!(error["error"], "payload_too_large");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let app = TestApp::spawn().await;
    let response = app
        .authed(Method::POST, "/api/v1/clusters")
        .header("content-type", "text/plain")
        .body(spec("a").to_string())
        .send()
        .await
        .expect("sent");

    error_body(response, 415).await;
    assert_eq!(app.cluster_count().await, 0);
}

#[tokio::test]
async fn a_duplicate_name_is_a_409_and_keeps_the_first() {
    let app = TestApp::spawn().await;
    app.subscribe(&spec("dup")).await;
    let second = with(spec("dup"), "/policy/max_scale", json!(4));

    let error = error_body(app.post_json("/api/v1/clusters", &second).await, 409).await;

    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("dup"),
        "{error}"
    );
    assert_eq!(app.cluster_count().await, 1);
    let stored = app.storage.get_cluster("dup").await.expect("stored");
    assert_eq!(stored.spec.policy.max_scale, 8);
}

#[tokio::test]
async fn an_unknown_cluster_is_a_404_on_every_path() {
    let app = TestApp::spawn().await;
    let calls = [
        (Method::GET, "/api/v1/clusters/ghost", None),
        (Method::PUT, "/api/v1/clusters/ghost", Some(spec("ghost"))),
        (Method::DELETE, "/api/v1/clusters/ghost", None),
        (Method::POST, "/api/v1/clusters/ghost/pause", None),
        (Method::POST, "/api/v1/clusters/ghost/resume", None),
        (Method::GET, "/api/v1/clusters/ghost/decisions", None),
    ];
    for (method, path, body) in calls {
        let mut request = app.authed(method.clone(), path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let error = error_body(request.send().await.expect("sent"), 404).await;
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .contains("ghost"),
            "{method} {path}: {error}"
        );
    }
    assert_eq!(
        app.cluster_count().await,
        0,
        "a PUT to an unknown cluster creates nothing"
    );
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_a_401_and_nothing_changes() {
    let app = TestApp::spawn().await;
    app.subscribe(&spec("kept")).await;
    let attempts = [
        app.client
            .post(app.url("/api/v1/clusters"))
            .json(&spec("new")),
        app.client
            .post(app.url("/api/v1/clusters"))
            .bearer_auth("wrong-token-0123456789abcdef")
            .json(&spec("new")),
        app.client
            .post(app.url("/api/v1/clusters"))
            .header("authorization", format!("Basic {TOKEN}"))
            .json(&spec("new")),
        app.client.delete(app.url("/api/v1/clusters/kept")),
        app.client.post(app.url("/api/v1/clusters/kept/pause")),
        app.client.put(app.url("/api/v1/clusters/kept")).json(&with(
            spec("kept"),
            "/policy/max_scale",
            json!(2),
        )),
        app.client.get(app.url("/api/v1/clusters")),
    ];
    for attempt in attempts {
        let response = attempt.send().await.expect("sent");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"autoscaler\""
        );
        let error = error_body(response, 401).await;
        assert_eq!(error["error"], "unauthorized");
    }
    assert_eq!(app.cluster_count().await, 1);
    let kept = app.storage.get_cluster("kept").await.expect("kept");
    assert!(!kept.paused);
    assert_eq!(kept.spec.policy.max_scale, 8);
}

#[tokio::test]
async fn a_refused_replace_leaves_the_stored_spec_as_it_was() {
    let app = TestApp::spawn().await;
    app.subscribe(&spec("stable")).await;
    let cases = [
        (with(spec("stable"), "/policy/min_scale", json!(99)), 422),
        (with(spec("stable"), "/name", json!("renamed")), 422),
        (with(spec("stable"), "/target/kind", json!("storm")), 422),
    ];
    for (body, status) in cases {
        error_body(app.put_json("/api/v1/clusters/stable", &body).await, status).await;
    }
    let stored = app.storage.get_cluster("stable").await.expect("stored");
    assert_eq!(stored.spec.policy.min_scale, 1);
    assert_eq!(stored.spec.name, "stable");
    assert_eq!(stored.updated_at, stored.created_at);
}

#[tokio::test]
async fn bad_paging_parameters_are_400s() {
    let app = TestApp::spawn().await;
    app.subscribe(&spec("p")).await;
    for path in [
        "/api/v1/clusters?limit=0",
        "/api/v1/clusters?limit=100000",
        "/api/v1/clusters?limit=abc",
        "/api/v1/clusters?sort=name",
        "/api/v1/clusters/p/decisions?before=yesterday",
    ] {
        let error = error_body(app.get(path).await, 400).await;
        assert_eq!(error["error"], "invalid_query", "{path}");
    }
}

#[tokio::test]
async fn a_file_secret_without_a_secrets_directory_is_refused() {
    let app = TestApp::spawn().await;
    let body = with(
        spec("a"),
        "/argocd",
        json!({
            "server": "https://argocd.example.com", "application": "a", "token": {"file": "argocd/token"}
        }),
    );

    let error = refused_subscription(&app, body.to_string(), 422).await;

    assert_eq!(fields(&error), ["argocd.token"]);
}

#[tokio::test]
async fn an_inline_credential_is_refused_as_an_unknown_field() {
    let app = TestApp::spawn().await;
    let body = with(
        spec("a"),
        "/argocd",
        json!({
            "server": "https://argocd.example.com", "application": "a", "password": "hunter2"
        }),
    );

    let error = refused_subscription(&app, body.to_string(), 422).await;

    assert_eq!(fields(&error), ["argocd.password"]);
    assert!(!error.to_string().contains("hunter2"), "{error}");
}
