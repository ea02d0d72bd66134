use autoscaler::{
    decide::{DecisionInputs, Direction},
    storage::{DecisionStatus, NewDecision, Transition},
};
use chrono::Utc;
use serde_json::{Value, json};

use crate::harness::{TestApp, spec};

async fn record_decisions(app: &TestApp, cluster: &str, count: usize) -> Vec<i64> {
    let cluster = app.storage.get_cluster(cluster).await.expect("cluster");
    let mut ids = Vec::new();
    for i in 0..count {
        let decision = app
            .storage
            .insert_pending_decision(&NewDecision {
                cluster_id: cluster.id,
                cluster_name: cluster.spec.name.clone(),
                rule: "lag_above_threshold".to_owned(),
                inputs: DecisionInputs::bare(Direction::Up, &format!("test {i}"), Utc::now(), 300),
                from_scale: Some(2),
            })
            .await
            .expect("insert");
        app.storage
            .finish_decision(decision.id, DecisionStatus::Vetoed, Some("test"))
            .await
            .expect("finish");
        ids.push(decision.id);
    }
    ids
}

#[tokio::test]
async fn decisions_come_newest_first_and_page_backwards() {
    let app = TestApp::spawn().await;
    app.subscribe(&spec("delta")).await;
    app.subscribe(&spec("other")).await;
    let ids = record_decisions(&app, "delta", 5).await;
    record_decisions(&app, "other", 2).await;

    let first: Value = app
        .get("/api/v1/clusters/delta/decisions?limit=3")
        .await
        .json()
        .await
        .expect("json");
    let first_ids: Vec<i64> = first["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|d| d["id"].as_i64())
        .collect();
    assert_eq!(first_ids, [ids[4], ids[3], ids[2]]);
    assert_eq!(first["items"][0]["cluster"], "delta");
    assert_eq!(first["items"][0]["status"], "vetoed");
    assert_eq!(first["items"][0]["reason"], "test");

    let before = first["next_before"].as_i64().expect("a next page");
    let second: Value = app
        .get(&format!(
            "/api/v1/clusters/delta/decisions?limit=3&before={before}"
        ))
        .await
        .json()
        .await
        .expect("json");
    let second_ids: Vec<i64> = second["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|d| d["id"].as_i64())
        .collect();
    assert_eq!(second_ids, [ids[1], ids[0]]);
    assert!(second.get("next_before").is_none(), "last page: {second}");
}

#[tokio::test]
async fn the_database_allows_one_decision_in_flight_per_cluster() {
    let app = TestApp::spawn().await;
    app.subscribe(&spec("epsilon")).await;
    let cluster = app.storage.get_cluster("epsilon").await.expect("cluster");
    let new = NewDecision {
        cluster_id: cluster.id,
        cluster_name: "epsilon".to_owned(),
        rule: "cpu_above_threshold".to_owned(),
        inputs: DecisionInputs::bare(Direction::Up, "test", Utc::now(), 300),
        from_scale: Some(1),
    };

    let first = app
        .storage
        .insert_pending_decision(&new)
        .await
        .expect("first");
    let second = app.storage.insert_pending_decision(&new).await;

    assert!(
        matches!(second, Err(autoscaler::storage::StorageError::Conflict)),
        "{second:?}"
    );
    app.storage
        .finish_decision(first.id, DecisionStatus::Applied, None)
        .await
        .expect("finish");
    app.storage
        .insert_pending_decision(&new)
        .await
        .expect("a new one once the first finished");
}

#[tokio::test]
async fn decisions_survive_their_cluster_being_deleted() {
    let app = TestApp::spawn().await;
    app.subscribe(&spec("zeta")).await;
    record_decisions(&app, "zeta", 2).await;

    let deleted = app
        .authed(reqwest::Method::DELETE, "/api/v1/clusters/zeta")
        .send()
        .await
        .expect("sent");

    assert_eq!(deleted.status(), 204);
    let (kept,): (i64,) =
        sqlx::query_as("select count(*) from decisions where cluster_name = 'zeta'")
            .fetch_one(app.storage.pool())
            .await
            .expect("count");
    assert_eq!(kept, 2);
}

#[tokio::test]
async fn the_dry_run_says_what_would_happen_and_enqueues_nothing() {
    let app = TestApp::spawn().await;
    app.subscribe(&spec("dry")).await;
    let cluster = app.storage.get_cluster("dry").await.expect("cluster");
    let now = chrono::Utc::now();
    let samples: Vec<_> = (0..11)
        .map(|i| {
            let mut s =
                autoscaler::storage::Sample::empty(now - chrono::Duration::seconds(300 - 30 * i));
            s.lag_seconds = Some(600.0);
            s.lag_records = Some(60_000.0);
            s.cpu_load = Some(0.5);
            s.scale = Some(2.0);
            s.records_in = Some(2000.0);
            s.records_out = Some(2000.0);
            (cluster.id, s)
        })
        .collect();
    app.storage.insert_samples(&samples).await.expect("samples");

    let response = app
        .post_json("/api/v1/clusters/dry/evaluate", &json!({}))
        .await;

    assert_eq!(response.status(), 200);
    let evaluation: Value = response.json().await.expect("json");
    assert_eq!(
        evaluation["fired"]["rule"], "lag_above_threshold",
        "{evaluation}"
    );
    assert_eq!(evaluation["act"], true);
    assert_eq!(evaluation["verdicts"].as_array().map(Vec::len), Some(5));
    // The estimate, the scale the worker would write, and every check's verdict.
    assert_eq!(evaluation["estimate"]["current_scale"], 2, "{evaluation}");
    assert_eq!(evaluation["estimate"]["model"], "proportional");
    assert!(evaluation["estimate"]["fallback_reason"].is_string());
    let target = evaluation["target_scale"].as_u64().expect("a target scale");
    assert!(target > 2, "{evaluation}");
    let checks: Vec<(String, String)> = evaluation["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap_or_default().to_owned(),
                c["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("paused", "passed"),
        ("in_flight", "passed"),
        ("cooldown", "passed"),
        ("scale_bounds", "passed"),
        ("human_change", "not_checked"),
        ("estimate", "passed"),
        ("ineffective_scaling", "passed"),
        ("post_check", "passed"),
        ("git_holds", "not_checked"),
    ];
    assert_eq!(
        checks,
        expected.map(|(c, s)| (c.to_owned(), s.to_owned())),
        "{evaluation}"
    );
    let decisions = app
        .storage
        .list_decisions(cluster.id, None, 10)
        .await
        .expect("list");
    assert!(decisions.is_empty(), "a dry run records nothing");
}

#[tokio::test]
async fn the_dry_run_gives_back_workers_past_a_sink_limit_with_the_backlog_still_waiting() {
    let app = TestApp::spawn().await;
    let mut capped = spec("capped");
    capped["policy"] = json!({"max_scale": 24});
    app.subscribe(&capped).await;
    let cluster = app.storage.get_cluster("capped").await.expect("cluster");
    let now = chrono::Utc::now();
    // Ten workers moved 10000 records/s with a backlog waiting; twenty, for the last 15 minutes, moved
    // only 14000 (a sink at its limit).
    let samples: Vec<_> = (0..50)
        .map(|i| {
            let at = now - chrono::Duration::seconds(30 * (49 - i));
            let mut s = autoscaler::storage::Sample::empty(at);
            let (scale, moved) = if i < 20 {
                (10.0, 10_000.0)
            } else {
                (20.0, 14_000.0)
            };
            s.scale = Some(scale);
            s.records_out = Some(moved + (i % 3) as f64);
            s.records_in = Some(moved);
            s.cpu_load = Some(if i < 20 { 0.97 } else { 0.7 });
            s.lag_seconds = Some(900.0);
            s.lag_records = Some(14_000_000.0);
            (cluster.id, s)
        })
        .collect();
    app.storage.insert_samples(&samples).await.expect("samples");

    let response = app
        .post_json("/api/v1/clusters/capped/evaluate", &json!({}))
        .await;

    assert_eq!(response.status(), 200);
    let evaluation: Value = response.json().await.expect("json");
    // The lag rule fires too; the trim wins, since past the ceiling a scale-up is vetoed anyway.
    assert_eq!(
        (
            &evaluation["fired"]["rule"],
            &evaluation["fired"]["direction"]
        ),
        (&json!("above_capacity_ceiling"), &json!("down")),
        "{evaluation}"
    );
    let reason = evaluation["fired"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("capacity stops growing at scale 14")
            && reason.contains("the 6 workers above it add nothing"),
        "{evaluation}"
    );
    assert!(
        evaluation["verdicts"]
            .as_array()
            .expect("verdicts")
            .iter()
            .any(|v| v["rule"] == "lag_above_threshold" && v["outcome"] == "fired"),
        "{evaluation}"
    );
    assert_eq!(evaluation["act"], true, "{evaluation}");
    assert_eq!(evaluation["target_scale"], 14, "{evaluation}");
    let post_check = evaluation["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check"] == "post_check")
        .expect("the post-check's verdict");
    assert_eq!(post_check["state"], "passed", "{evaluation}");
    assert!(
        post_check["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no lower than the capacity ceiling's knee (14)")),
        "{evaluation}"
    );
}

#[tokio::test]
async fn a_recommend_only_cluster_shows_its_recommendations_and_they_start_the_cooldown() {
    let app = TestApp::spawn().await;
    let mut recommend = spec("zeta");
    recommend["write_back"] = json!({"mode": "recommend"});
    let body = app.subscribe(&recommend).await;
    assert_eq!(body["spec"]["write_back"], json!({"mode": "recommend"}));
    // The mode takes no settings: anything else is refused naming the field.
    let mut extra = spec("eta");
    extra["write_back"] = json!({"mode": "recommend", "token": {"env": "X"}});
    let refused = app.post_json("/api/v1/clusters", &extra).await;
    assert_eq!(refused.status(), 422);
    let error: Value = refused.json().await.expect("json");
    assert!(error.to_string().contains("token"), "{error}");

    let cluster = app.storage.get_cluster("zeta").await.expect("cluster");
    let decision = app
        .storage
        .insert_pending_decision(&NewDecision {
            cluster_id: cluster.id,
            cluster_name: "zeta".to_owned(),
            rule: "lag_above_threshold".to_owned(),
            inputs: DecisionInputs::bare(Direction::Up, "lag 900 s", Utc::now(), 300),
            from_scale: Some(2),
        })
        .await
        .expect("insert");
    for (from, to) in [
        (DecisionStatus::Pending, DecisionStatus::Running),
        (DecisionStatus::Running, DecisionStatus::Recommended),
    ] {
        app.storage
            .transition(
                decision.id,
                &Transition::new(from, to).reason("recommends changing the scale from 2 to 4"),
            )
            .await
            .expect("move");
    }
    let shown: Value = app
        .get(&format!("/api/v1/decisions/{}", decision.id))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(shown["status"], "recommended");
    assert!(shown["finished_at"].is_string(), "{shown}");
    // Ended, and the manager's cooldown runs from it.
    let facts = app.storage.decision_facts().await.expect("facts");
    let facts = facts.get(&cluster.id).expect("facts of zeta");
    assert!(!facts.in_flight);
    assert!(facts.last_change_at.is_some());
}
