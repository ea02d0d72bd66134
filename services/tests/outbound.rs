//! The outbound policy where connections are made: the worker's and the scraper's HTTP client refuse
//! what the policy refuses even when a spec got past validation, and never follow a redirect to another
//! host (a credential would go with it).

use std::sync::Arc;

use autoscaler::outbound::{OutboundPolicy, guard};
use axum::{Router, http::header::LOCATION, response::IntoResponse, routing::get};

/// A server on 127.0.0.1 that redirects `/elsewhere` to `target`, `/here` to `/landed`, and answers
/// `/landed`.
async fn redirecting_server(target: String) -> std::net::SocketAddr {
    let app = Router::new()
        .route(
            "/elsewhere",
            get(move || async move {
                (axum::http::StatusCode::FOUND, [(LOCATION, target)]).into_response()
            }),
        )
        .route(
            "/here",
            get(|| async {
                (axum::http::StatusCode::FOUND, [(LOCATION, "/landed")]).into_response()
            }),
        )
        .route("/landed", get(|| async { "landed" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

fn chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn a_refused_name_is_not_connected_to_even_if_a_spec_named_it() {
    let address = redirecting_server(String::new()).await;
    let client = guard::client_builder(&Arc::new(OutboundPolicy::default()))
        .build()
        .expect("client");
    let error = client
        .get(format!("http://localhost:{}/landed", address.port()))
        .send()
        .await
        .expect_err("localhost is refused by default");
    assert!(
        chain(&error).contains("AUTOSCALER_OUTBOUND_ALLOW"),
        "{}",
        chain(&error)
    );

    // Allowed by name, the same request goes through.
    let allowed: OutboundPolicy = "localhost".parse().expect("allow-list");
    let client = guard::client_builder(&Arc::new(allowed))
        .build()
        .expect("client");
    let body = client
        .get(format!("http://localhost:{}/landed", address.port()))
        .send()
        .await
        .expect("allowed")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "landed");
}

#[tokio::test]
async fn a_redirect_to_another_host_is_refused_and_one_on_the_same_host_followed() {
    let policy: Arc<OutboundPolicy> = Arc::new("*,127.0.0.0/8".parse().expect("allow-list"));
    let other = redirecting_server(String::new()).await;
    // 127.0.0.2 is another host for HTTP, though the same machine.
    let address = redirecting_server(format!("http://127.0.0.2:{}/landed", other.port())).await;
    let client = guard::client_builder(&policy).build().expect("client");

    let error = client
        .get(format!("http://127.0.0.1:{}/elsewhere", address.port()))
        .bearer_auth("a-credential-that-must-not-travel")
        .send()
        .await
        .expect_err("a redirect to another host");
    assert!(
        chain(&error).contains("never leaves the host"),
        "{}",
        chain(&error)
    );

    let body = client
        .get(format!("http://127.0.0.1:{}/here", address.port()))
        .send()
        .await
        .expect("a redirect on the same host")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "landed");
}
