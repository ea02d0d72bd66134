//! Engine targets without reactive scaling: after the sync the worker restarts every instance that
//! announced itself (at the control URL it announced), and the decision is applied only when all of them
//! report the new parallelism. Each instance is the engine's own control router with a stand-in for its
//! supervisor.

use autoscaler::{storage::DecisionStatus, worker::Progress};
use serde_json::json;

use crate::{
    engine_control::{CONTROL_TOKEN, Engine, engine},
    webhook::{ENGINE_TOKEN, announce, serve},
    world::World,
};

/// A non-reactive engine cluster whose spec names `fallback` as its control URL.
async fn engine_world(fallback: &str) -> World {
    let world = World::with_spec(|spec| {
        spec["target"] = json!({
            "kind": "engine",
            "reactive": false,
            "control_url": fallback,
            "control_token": {"file": "engine-control"},
        });
    })
    .await;
    std::fs::write(
        world.dir.join("secrets/default/engine-control"),
        CONTROL_TOKEN,
    )
    .expect("secret");
    world
}

async fn register(base: &str, engine: &Engine) {
    let (status, body) = announce(
        base,
        ENGINE_TOKEN,
        json!({"cluster": "logs", "instance": engine.name, "event": "register", "control_url": engine.url}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn every_announced_instance_is_restarted_and_the_decision_applied_when_all_report_it() {
    // The spec's control URL is a fourth instance, behind a "Service": it must not be used.
    let behind_service = engine("logs-service", None).await;
    let world = engine_world(&behind_service.url).await;
    let base = serve(&world).await;
    let mut instances = Vec::new();
    for name in ["logs-0", "logs-1", "logs-2"] {
        let e = engine(name, None).await;
        register(&base, &e).await;
        instances.push(e);
    }
    let id = world.saturated_decision().await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    let decision = world.decision(id).await;
    assert_eq!(
        progress,
        Progress::Reached(DecisionStatus::Applied),
        "{decision:?}"
    );
    let to = usize::try_from(decision.to_scale.expect("scale")).expect("positive");
    for e in &instances {
        assert_eq!(e.status.snapshot().parallelism, to, "{}", e.name);
    }
    assert_eq!(
        behind_service.status.snapshot().parallelism,
        2,
        "the spec's control_url is not used when instances announce theirs"
    );
    let steps = decision.steps.0.as_array().expect("steps").clone();
    let rescaled: Vec<&str> = steps
        .iter()
        .filter(|s| s["step"] == "engine_rescaled")
        .filter_map(|s| s["detail"]["instance"].as_str())
        .collect();
    assert_eq!(rescaled, ["logs-0", "logs-1", "logs-2"]);
    let verified = steps
        .iter()
        .find(|s| s["step"] == "instances_verified")
        .expect("a final check of every instance");
    assert_eq!(
        verified["detail"]["instances"],
        json!(["logs-0", "logs-1", "logs-2"])
    );
    assert_eq!(
        World::steps(&decision).last().map(String::as_str),
        Some("restarted")
    );
}

#[tokio::test]
async fn one_instance_that_cannot_rescale_fails_the_decision_saying_which_ran_where() {
    let world = engine_world("http://127.0.0.1:9").await;
    let base = serve(&world).await;
    let first = engine("logs-0", None).await;
    let broken = engine("logs-1", Some("consumer thread exited")).await;
    let last = engine("logs-2", None).await;
    for e in [&first, &broken, &last] {
        register(&base, e).await;
    }
    let id = world.saturated_decision().await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    let decision = world.decision(id).await;
    assert_eq!(
        progress,
        Progress::Reached(DecisionStatus::Failed),
        "{decision:?}"
    );
    let to = usize::try_from(decision.to_scale.expect("scale")).expect("positive");
    assert_eq!(first.status.snapshot().parallelism, to);
    assert_eq!(broken.status.snapshot().parallelism, 2);
    assert_eq!(last.status.snapshot().parallelism, 2, "never asked");
    let reason = decision.reason.clone().unwrap_or_default();
    for says in [
        "gave up after 3 attempts",
        "On engine instance logs-1",
        "consumer thread exited",
        "Instances logs-0 run at parallelism",
        "logs-2 were not asked",
    ] {
        assert!(reason.contains(says), "{says:?} in {reason}");
    }
    // Every attempt says how far it got, and a retry did not drain logs-0 again.
    let steps = decision.steps.0.as_array().expect("steps").clone();
    let incomplete: Vec<_> = steps
        .iter()
        .filter(|s| s["step"] == "engine_instances_incomplete")
        .collect();
    assert_eq!(incomplete.len(), 3, "one per attempt");
    assert_eq!(incomplete[0]["detail"]["failed"], "logs-1");
    assert_eq!(
        incomplete[0]["detail"]["at_new_parallelism"],
        json!(["logs-0"])
    );
    assert_eq!(incomplete[0]["detail"]["not_asked"], json!(["logs-2"]));
    let drained_first = steps
        .iter()
        .filter(|s| s["step"] == "engine_rescaled" && s["detail"]["instance"] == "logs-0")
        .count();
    assert_eq!(drained_first, 1, "retries skip an instance already there");
}

#[tokio::test]
async fn without_registrations_the_spec_control_url_is_restarted_as_before() {
    let only = engine("logs-0", None).await;
    let world = engine_world(&only.url).await;
    let id = world.saturated_decision().await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    let decision = world.decision(id).await;
    assert_eq!(
        progress,
        Progress::Reached(DecisionStatus::Applied),
        "{decision:?}"
    );
    let to = usize::try_from(decision.to_scale.expect("scale")).expect("positive");
    assert_eq!(only.status.snapshot().parallelism, to);
}

#[tokio::test]
async fn an_announced_url_the_policy_now_refuses_restarts_nothing() {
    let world = engine_world("http://127.0.0.1:9").await;
    let good = engine("logs-0", None).await;
    let base = serve(&world).await;
    register(&base, &good).await;
    // Stored under an older, looser policy: the worker checks again before it calls.
    sqlx::query(
        "insert into engine_workers (cluster_id, instance_id, control_url) \
         values ($1, 'logs-1', 'http://169.254.169.254/')",
    )
    .bind(world.cluster_id)
    .execute(world.storage.pool())
    .await
    .expect("insert");
    let id = world.saturated_decision().await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    let decision = world.decision(id).await;
    assert_eq!(progress, Progress::Reached(DecisionStatus::Failed));
    let reason = decision.reason.unwrap_or_default();
    assert!(
        reason.contains("logs-1") && reason.contains("link-local"),
        "{reason}"
    );
    assert_eq!(good.status.snapshot().parallelism, 2, "nothing restarted");
}

#[tokio::test]
async fn malformed_or_refused_control_urls_are_refused_at_the_webhook_naming_the_field() {
    let world = engine_world("http://127.0.0.1:9").await;
    let base = serve(&world).await;
    for url in [
        json!("not a url"),
        json!("ftp://127.0.0.1/"),
        json!("http://user:secret@127.0.0.1:9465"),
        json!("http://169.254.169.254/latest/meta-data"),
        json!(42),
    ] {
        let (status, body) = announce(
            &base,
            ENGINE_TOKEN,
            json!({"cluster": "logs", "instance": "logs-0", "event": "register", "control_url": url}),
        )
        .await;
        assert!((400..500).contains(&status), "{url}: HTTP {status} {body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("control_url")),
            "{url}: {body}"
        );
    }
    let live = world
        .storage
        .live_engines(
            world.cluster_id,
            chrono::Utc::now() - chrono::Duration::seconds(60),
        )
        .await
        .expect("live");
    assert!(live.is_empty(), "nothing half-written: {live:?}");
}
