//! A cluster's recorded history through the API: the samples exported as stored, and a tuning proposed
//! from them; both for a viewer of the cluster's team, 404 for another team, and bounded.

use autoscaler::{
    api::{MAX_EXPORT_SAMPLES, MAX_TUNE_SAMPLES},
    decide::Sample,
};
use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use serde_json::Value;

use crate::harness::{TestApp, error_body, fields, spec, team_token};

/// A sample of a job of 8 workers of 1000 records/s carrying `rate`, keeping up.
fn sample(at: DateTime<Utc>, rate: f64) -> Sample {
    Sample {
        sampled_at: at,
        cpu_load: Some(rate / 8000.0),
        lag_records: Some(0.0),
        lag_seconds: Some(0.0),
        records_in: Some(rate),
        records_out: Some(rate),
        scale: Some(8.0),
    }
}

/// Team A's cluster `orders` with `count` samples `spacing` apart, the newest a second ago: 3000
/// records/s, 6000 in the middle third.
async fn recorded(app: &TestApp, count: usize, spacing: Duration) -> i64 {
    let response = app
        .as_token(
            &team_token("team-a", "editor"),
            Method::POST,
            "/api/v1/clusters",
        )
        .json(&{
            let mut spec = spec("orders");
            spec["policy"]["max_scale"] = 16.into();
            spec["policy"]["target_utilization"] = 0.5.into();
            spec["policy"]["scale_down_window_seconds"] = 3600.into();
            spec
        })
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201);
    let id = app.storage.get_cluster("orders").await.expect("stored").id;
    let newest = Utc::now() - Duration::seconds(1);
    let batch: Vec<(i64, Sample)> = (0..count)
        .map(|i| {
            let third = 3 * i / count.max(1);
            let rate = if third == 1 { 6000.0 } else { 3000.0 };
            let back = i32::try_from(count - 1 - i).expect("small");
            (id, sample(newest - spacing * back, rate))
        })
        .collect();
    for chunk in batch.chunks(10_000) {
        app.storage.insert_samples(chunk).await.expect("samples");
    }
    id
}

async fn call(app: &TestApp, token: &str, method: Method, path: &str) -> reqwest::Response {
    app.as_token(token, method, path)
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn a_viewer_exports_the_samples_as_stored_and_another_team_is_told_there_is_no_such_cluster()
{
    let app = TestApp::spawn().await;
    recorded(&app, 360, Duration::seconds(30)).await;
    let viewer = team_token("team-a", "viewer");

    let response = call(
        &app,
        &viewer,
        Method::GET,
        "/api/v1/clusters/orders/samples",
    )
    .await;
    assert_eq!(response.status(), 200);
    let history: Value = response.json().await.expect("json");
    let samples = history["samples"].as_array().expect("samples");
    assert_eq!(samples.len(), 360, "3 hours are within the default 24h");
    assert_eq!(history["cluster"], "orders");
    assert_eq!(history["policy"]["target_utilization"], 0.5);
    let times: Vec<&str> = samples
        .iter()
        .map(|s| s["sampled_at"].as_str().expect("a time"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "oldest first");
    assert_eq!(samples[0]["records_in"], 3000.0);
    assert_eq!(samples[180]["records_in"], 6000.0);
    assert_eq!(samples[0]["scale"], 8.0);

    // The last hour only: 120 samples (one more or less at the edge of the clock).
    let hour: Value = call(
        &app,
        &viewer,
        Method::GET,
        "/api/v1/clusters/orders/samples?since=1h",
    )
    .await
    .json()
    .await
    .expect("json");
    let last_hour = hour["samples"].as_array().expect("samples").len();
    assert!((119..=121).contains(&last_hour), "{last_hour}");
    let since = urlencode(&(Utc::now() - Duration::minutes(30)).to_rfc3339());
    let half: Value = call(
        &app,
        &viewer,
        Method::GET,
        &format!("/api/v1/clusters/orders/samples?since={since}"),
    )
    .await
    .json()
    .await
    .expect("json");
    let half = half["samples"].as_array().expect("samples").len();
    assert!((59..=61).contains(&half), "{half}");

    let bad = call(
        &app,
        &viewer,
        Method::GET,
        "/api/v1/clusters/orders/samples?since=yesterday",
    )
    .await;
    assert_eq!(fields(&error_body(bad, 400).await), ["since"]);

    for role in ["viewer", "editor", "admin"] {
        let other = team_token("team-b", role);
        for (method, path) in [
            (Method::GET, "/api/v1/clusters/orders/samples"),
            (Method::POST, "/api/v1/clusters/orders/tune"),
        ] {
            let theirs = error_body(call(&app, &other, method.clone(), path).await, 404).await;
            let missing = error_body(
                call(&app, &other, method, &path.replace("orders", "nothing")).await,
                404,
            )
            .await;
            assert_eq!(
                theirs["message"]
                    .as_str()
                    .map(|m| m.replace("orders", "nothing")),
                missing["message"].as_str().map(str::to_owned),
                "{role} {path}"
            );
        }
    }
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn a_viewer_gets_a_cheaper_proposal_for_a_wasteful_policy_and_nothing_is_changed() {
    let app = TestApp::spawn().await;
    recorded(&app, 360, Duration::seconds(30)).await;
    let viewer = team_token("team-a", "viewer");
    let before = app
        .storage
        .get_cluster("orders")
        .await
        .expect("stored")
        .spec;

    let response = call(&app, &viewer, Method::POST, "/api/v1/clusters/orders/tune").await;
    assert_eq!(response.status(), 200);
    let proposal: Value = response.json().await.expect("json");
    assert_eq!(proposal["samples"], 360);
    assert_eq!(proposal["scrape_interval_seconds"], 30);
    assert_eq!(proposal["current"]["settings"]["target_utilization"], 0.5);
    let (current, proposed) = (
        proposal["current"]["replica_hours"]
            .as_f64()
            .expect("a number"),
        proposal["proposed"]["replica_hours"]
            .as_f64()
            .expect("a number"),
    );
    assert!(proposed < current, "{proposal:#}");
    assert!(
        proposal["proposed"]["lag_over_minutes"].as_f64()
            <= proposal["max_lag_over_minutes"].as_f64()
    );
    assert!(!proposal["changes"].as_array().expect("changes").is_empty());
    let fitted = proposal["model"]["capacity_per_worker"]
        .as_f64()
        .expect("a number");
    assert!((fitted - 1000.0).abs() < 1.0, "{fitted}");
    assert_eq!(
        app.storage
            .get_cluster("orders")
            .await
            .expect("stored")
            .spec,
        before,
        "a proposal changes nothing"
    );
}

#[tokio::test]
async fn a_history_too_short_or_too_long_to_tune_is_refused_naming_the_problem() {
    let app = TestApp::spawn().await;
    let id = recorded(&app, 5, Duration::seconds(30)).await;
    let short = call(
        &app,
        crate::harness::TOKEN,
        Method::POST,
        "/api/v1/clusters/orders/tune",
    )
    .await;
    let error = error_body(short, 422).await;
    assert_eq!(fields(&error), ["history"]);
    assert!(
        error["message"]
            .as_str()
            .expect("a message")
            .contains("at least 10"),
        "{error}"
    );

    // Samples eight days apart: few, but a span no tuning replays.
    let old = Utc::now() - Duration::days(8);
    app.storage
        .insert_samples(&[(id, sample(old, 3000.0))])
        .await
        .expect("an old sample");
    let long = call(
        &app,
        crate::harness::TOKEN,
        Method::POST,
        "/api/v1/clusters/orders/tune?since=9d",
    )
    .await;
    let error = error_body(long, 422).await;
    assert_eq!(fields(&error), ["since"], "{error}");
    assert!(
        error["message"]
            .as_str()
            .expect("a message")
            .contains("7 days"),
        "{error}"
    );
}

#[tokio::test]
async fn more_samples_than_the_caps_are_refused_not_cut_short() {
    let app = TestApp::spawn().await;
    // One a second for a little over the export's cap: 50001 samples, about 14 hours.
    recorded(&app, MAX_EXPORT_SAMPLES + 1, Duration::seconds(1)).await;
    let token = crate::harness::TOKEN;
    let export = call(&app, token, Method::GET, "/api/v1/clusters/orders/samples").await;
    let error = error_body(export, 422).await;
    assert_eq!(fields(&error), ["since"]);
    assert!(
        error["message"]
            .as_str()
            .expect("a message")
            .contains("50000"),
        "{error}"
    );
    // Within the cap it answers, every sample there.
    let hours = call(
        &app,
        token,
        Method::GET,
        "/api/v1/clusters/orders/samples?since=10h",
    )
    .await;
    assert_eq!(hours.status(), 200);

    let tune = call(&app, token, Method::POST, "/api/v1/clusters/orders/tune").await;
    let error = error_body(tune, 422).await;
    assert_eq!(fields(&error), ["since"]);
    let cap = MAX_TUNE_SAMPLES.to_string();
    assert!(
        error["message"].as_str().expect("a message").contains(&cap),
        "{error}"
    );
}
