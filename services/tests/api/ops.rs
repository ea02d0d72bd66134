use serde_json::Value;

use crate::harness::{TestApp, error_body, spec};

#[tokio::test]
async fn health_and_readiness_need_no_token() {
    let app = TestApp::spawn().await;

    let health = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("sent");
    let ready = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("sent");

    assert_eq!(health.status(), 200);
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["status"], "ready");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = TestApp::spawn().await;
    app.subscribe(&spec("m")).await;
    app.get("/api/v1/clusters/nope").await;

    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");

    assert!(
        text.contains(r#"autoscaler_http_requests_total{method="POST",route="/api/v1/clusters",status="201"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"autoscaler_http_requests_total{method="GET",route="/api/v1/clusters/{name}",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("autoscaler_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(r#"autoscaler_clusters{paused="false"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_the_spec() {
    let app = TestApp::spawn().await;

    let doc: Value = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");

    for path in [
        "/api/v1/clusters",
        "/api/v1/clusters/{name}",
        "/api/v1/clusters/{name}/pause",
        "/api/v1/clusters/{name}/resume",
        "/api/v1/clusters/{name}/decisions",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    let policy = &doc["components"]["schemas"]["Policy"];
    assert_eq!(policy["required"], serde_json::json!(["max_scale"]));
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_json() {
    let app = TestApp::spawn().await;

    error_body(app.get("/api/v1/nothing-here").await, 404).await;
    let response = app
        .authed(reqwest::Method::PATCH, "/api/v1/clusters")
        .send()
        .await
        .expect("sent");
    error_body(response, 405).await;
}
