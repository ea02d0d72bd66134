//! The predictive rule through the API: a spec turns it on, two and a half days of samples in Postgres
//! give it a daily profile, and the dry run shows its verdict, the prediction and the sizing; a prediction
//! recorded with a decision is checked and shown on the decision.

use autoscaler::{
    decide::{DecisionInputs, Direction, Peak, Prediction, PredictionCheck},
    storage::{NewDecision, PREDICTION_CHECK_STEP, Sample},
};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::harness::{TestApp, error_body, fields, spec};

/// The predictive rule's verdict in a dry run's answer.
fn forecast_verdict(evaluation: &Value) -> Value {
    evaluation["verdicts"]
        .as_array()
        .expect("verdicts")
        .iter()
        .find(|v| v["rule"] == "forecast_peak")
        .cloned()
        .expect("the predictive rule's verdict")
}

/// The manager role over the test's database, as `autoscaler manager` builds it.
fn manager(app: &TestApp) -> autoscaler::manager::Manager<autoscaler::scrape::PrometheusClient> {
    let client = autoscaler::scrape::PrometheusClient::new(
        std::time::Duration::from_secs(5),
        &std::sync::Arc::new(
            test_support::OUTBOUND_ALLOW_LOCAL
                .parse()
                .expect("allow-list"),
        ),
    )
    .expect("client");
    autoscaler::manager::Manager::new(
        app.storage.clone(),
        client,
        std::sync::Arc::new(autoscaler::metrics::Metrics::default()),
        30,
    )
}

fn predictive_spec(name: &str, lead_time_seconds: Value) -> Value {
    let mut spec = spec(name);
    spec["policy"]["predictive"] = json!({"enabled": true, "lead_time_seconds": lead_time_seconds});
    spec
}

/// 1000 records/s, but 5000 every day from 15 to 75 minutes after `now`'s time of day.
fn usual(at: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    let into = (at - now).num_seconds().rem_euclid(86_400);
    if (15 * 60..75 * 60).contains(&into) {
        5000.0
    } else {
        1000.0
    }
}

/// Every 5 minutes from 2.5 days ago to 65 minutes ago, then the last hour every 30 s at scale 2, half
/// loaded: one worker moves 1000 records/s.
fn history(cluster_id: i64, now: DateTime<Utc>) -> Vec<(i64, Sample)> {
    let days = (13..=720).rev().map(|i| {
        let mut s = Sample::empty(now - Duration::minutes(5 * i));
        s.records_in = Some(usual(s.sampled_at, now));
        s.lag_records = Some(0.0);
        s
    });
    let hour = (0..=118).rev().map(|i| {
        let mut s = Sample::empty(now - Duration::seconds(30 * i + 5));
        s.records_in = Some(1000.0);
        s.records_out = Some(1000.0);
        s.lag_records = Some(0.0);
        s.lag_seconds = Some(0.0);
        s.cpu_load = Some(0.5);
        s.scale = Some(2.0);
        s
    });
    days.chain(hour).map(|s| (cluster_id, s)).collect()
}

#[tokio::test]
async fn the_dry_run_shows_the_forecast_peak_and_sizes_for_it() {
    let app = TestApp::spawn().await;
    let body = app
        .subscribe(&predictive_spec("seasonal", json!(1800)))
        .await;
    assert_eq!(
        body["spec"]["policy"]["predictive"],
        json!({"enabled": true, "lead_time_seconds": 1800})
    );
    let cluster = app.storage.get_cluster("seasonal").await.expect("cluster");
    let now = Utc::now();
    app.storage
        .insert_samples(&history(cluster.id, now))
        .await
        .expect("samples");

    let response = app
        .post_json("/api/v1/clusters/seasonal/evaluate", &json!({}))
        .await;

    assert_eq!(response.status(), 200);
    let evaluation: Value = response.json().await.expect("json");
    let verdict = forecast_verdict(&evaluation);
    assert_eq!(verdict["outcome"], "fired", "{evaluation}");
    assert!(
        verdict["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("forecast 5000 records/s")),
        "{verdict}"
    );
    assert_eq!(evaluation["fired"]["rule"], "forecast_peak");
    let prediction: Prediction =
        serde_json::from_value(evaluation["prediction"].clone()).expect("a typed prediction");
    assert_eq!(prediction.lead.rate, 5000.0);
    assert_eq!(prediction.lead.within_seconds, 1800);
    assert_eq!(prediction.current_scale, 2);
    assert!(prediction.profile_days > 2.0, "{prediction:?}");
    // 5000 records/s below the CPU ceiling (85.5 % at the default `cpu_high`) at 1000 per worker: 6.
    assert_eq!(prediction.lead.scale, 6);
    assert_eq!(evaluation["target_scale"], 6, "{evaluation}");
    let forecast = evaluation["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check"] == "forecast")
        .cloned()
        .expect("the forecast check");
    assert!(
        forecast["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("raised from 2 to 6")),
        "{forecast}"
    );
}

#[tokio::test]
async fn a_cluster_with_too_little_history_says_so_and_the_rule_off_says_nothing() {
    let app = TestApp::spawn().await;
    app.subscribe(&predictive_spec("young", json!(900))).await;
    app.subscribe(&spec("plain")).await;
    let now = Utc::now();
    for name in ["young", "plain"] {
        let cluster = app.storage.get_cluster(name).await.expect("cluster");
        // Only the last hour.
        let recent: Vec<_> = history(cluster.id, now)
            .into_iter()
            .filter(|(_, s)| s.sampled_at > now - Duration::hours(1))
            .collect();
        app.storage.insert_samples(&recent).await.expect("samples");
    }
    let young: Value = app
        .post_json("/api/v1/clusters/young/evaluate", &json!({}))
        .await
        .json()
        .await
        .expect("json");
    let verdict = forecast_verdict(&young);
    assert_eq!(verdict["outcome"], "no_data");
    assert!(
        verdict["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("not enough history")),
        "{verdict}"
    );
    assert_eq!(young["prediction"], Value::Null);

    let plain: Value = app
        .post_json("/api/v1/clusters/plain/evaluate", &json!({}))
        .await
        .json()
        .await
        .expect("json");
    let rules: Vec<&str> = plain["verdicts"]
        .as_array()
        .expect("verdicts")
        .iter()
        .filter_map(|v| v["rule"].as_str())
        .collect();
    assert_eq!(
        rules,
        [
            "lag_above_threshold",
            "lag_increasing",
            "cpu_above_threshold",
            "sustained_low_load",
            "above_capacity_ceiling"
        ],
        "{plain}"
    );
}

#[tokio::test]
async fn a_bad_lead_time_is_a_422_naming_the_field() {
    let app = TestApp::spawn().await;
    for bad in [json!(10), json!(86_400), json!("15m")] {
        let response = app
            .post_json("/api/v1/clusters", &predictive_spec("bad", bad.clone()))
            .await;
        let error = error_body(response, 422).await;
        assert_eq!(
            fields(&error),
            ["policy.predictive.lead_time_seconds"],
            "{bad}: {error}"
        );
    }
}

#[tokio::test]
async fn a_recorded_prediction_is_checked_once_due_and_shown_on_its_decision() {
    let app = TestApp::spawn().await;
    app.subscribe(&predictive_spec("checked", json!(900))).await;
    let cluster = app.storage.get_cluster("checked").await.expect("cluster");
    let now = Utc::now();
    let peak = Peak {
        within_seconds: 900,
        at: now - Duration::minutes(20),
        rate: 1100.0,
        scale: 2,
    };
    let mut inputs =
        DecisionInputs::bare(Direction::Up, "forecast", now - Duration::minutes(35), 300);
    inputs.prediction = Some(Prediction {
        made_at: now - Duration::minutes(35),
        rate_now: 1000.0,
        usual_now: 1000.0,
        level: 1.0,
        profile_days: 2.5,
        current_scale: 2,
        lead: peak,
        carry: peak,
        cooldown: peak,
    });
    let decision = app
        .storage
        .insert_pending_decision(&NewDecision {
            cluster_id: cluster.id,
            cluster_name: "checked".to_owned(),
            rule: "forecast_peak".to_owned(),
            inputs,
            from_scale: Some(2),
        })
        .await
        .expect("insert");
    // Due 5 minutes after the peak's time: before then it waits.
    let due = app
        .storage
        .due_predictions(now - Duration::minutes(16))
        .await
        .expect("due");
    assert!(due.is_empty());
    let due = app.storage.due_predictions(now).await.expect("due");
    assert_eq!(due.iter().map(|d| d.id).collect::<Vec<_>>(), [decision.id]);

    // The manager's cycle finds it due, checks it against the samples around its time, and records it.
    let seeded = history(cluster.id, now);
    app.storage.insert_samples(&seeded).await.expect("samples");
    let samples: Vec<Sample> = seeded.into_iter().map(|(_, s)| s).collect();
    let expected = autoscaler::decide::check_prediction(&peak, &samples, now);
    assert_eq!(expected.held, Some(true), "{expected:?}");
    manager(&app)
        .evaluate_cycle(now)
        .await
        .expect("a manager cycle");
    assert!(
        app.storage
            .due_predictions(now)
            .await
            .expect("due")
            .is_empty(),
        "checked once: no longer due"
    );

    let shown: Value = app
        .get(&format!("/api/v1/decisions/{}", decision.id))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        shown["inputs"]["prediction"]["lead"]["rate"], 1100.0,
        "{shown}"
    );
    let step = shown["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["step"] == PREDICTION_CHECK_STEP)
        .cloned()
        .expect("the check's step");
    let recorded: PredictionCheck =
        serde_json::from_value(step["detail"].clone()).expect("a typed check");
    // Postgres' JSONB keeps numbers as decimals: the last bit of a float may differ.
    assert_eq!(
        (recorded.at, recorded.observed_rate, recorded.held),
        (expected.at, expected.observed_rate, expected.held)
    );
    let error = recorded.error_share.expect("an error share");
    assert!((error - expected.error_share.expect("an error share")).abs() < 1e-12);
    // A second cycle does not check it again.
    manager(&app)
        .evaluate_cycle(now)
        .await
        .expect("a manager cycle");
    let steps = app
        .storage
        .get_decision(decision.id)
        .await
        .expect("decision")
        .steps;
    let checks = steps
        .0
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["step"] == PREDICTION_CHECK_STEP)
        .count();
    assert_eq!(checks, 1);
}
