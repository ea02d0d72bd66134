//! The webhook receivers over HTTP: GitHub deliveries signed as GitHub signs them, Argo CD notifications
//! with the body of the template in `deploy/argocd/`, and engine announcements. Forged, replayed and
//! malformed deliveries must change nothing.

use std::sync::Arc;

use autoscaler::{
    api::ApiTokens,
    queue::TaskQueue,
    storage::DecisionStatus,
    webhook::{self, GitHubSignature, WebhookState},
    worker::Progress,
};
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::{
    pull_requests::pull_request_world,
    world::{APP, World},
};

const SECRET: &str = "github-webhook-secret-0123";
pub(crate) const ARGOCD_HOOK_TOKEN: &str = "argocd-notifications-token-01";
pub(crate) const ENGINE_TOKEN: &str = "engine-announce-token-0123";
const BODY_LIMIT: usize = 64 * 1024;

/// The webhook role's router on a free loopback port.
pub(crate) async fn serve(world: &World) -> String {
    let state = WebhookState {
        storage: world.storage.clone(),
        queue: TaskQueue::new(world.storage.pool()),
        argocd_tokens: Arc::new(ApiTokens::new(&[
            ARGOCD_HOOK_TOKEN,
            "argocd:basic-password-0123",
        ])),
        github: Some(Arc::new(GitHubSignature::new(SECRET))),
        engine_tokens: Arc::new(
            autoscaler::tenancy::TokenStore::new(&[], &[ENGINE_TOKEN.to_owned()], None)
                .expect("tokens"),
        ),
        outbound: Arc::new(
            test_support::OUTBOUND_ALLOW_LOCAL
                .parse()
                .expect("the tests' allow-list"),
        ),
        max_body_bytes: BODY_LIMIT,
        max_age: std::time::Duration::from_secs(3 * 24 * 3600),
        metrics: world.metrics.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, webhook::router(state)).await });
    format!("http://{address}")
}

pub(crate) fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

pub(crate) async fn deliver_github(
    base: &str,
    event: &str,
    delivery: &str,
    body: &[u8],
    signature: &str,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/webhooks/github"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", signature)
        .body(body.to_vec())
        .send()
        .await
        .expect("delivered");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn deliveries(world: &World) -> i64 {
    let (count,): (i64,) = sqlx::query_as("select count(*) from webhook_deliveries")
        .fetch_one(world.storage.pool())
        .await
        .expect("count");
    count
}

#[tokio::test]
async fn a_merged_pull_request_is_synced_and_applied_and_a_replay_changes_nothing() {
    let (world, github) = pull_request_world().await;
    let base = serve(&world).await;
    let id = world.saturated_decision().await;
    let worker = world.worker("host-a");
    assert_eq!(
        worker.run_task(id, World::retry()).await,
        Progress::Reached(DecisionStatus::PrOpen)
    );
    let number = github.pulls("acme", "gitops")[0].number;
    let merge_commit = github.merge_pull("acme", "gitops", number).expect("merged");
    let body = serde_json::to_vec(
        &github
            .webhook_payload("acme", "gitops", number)
            .expect("payload"),
    )
    .expect("json");

    // A forged signature is refused as such, before anything is parsed or stored.
    let (status, error) =
        deliver_github(&base, "pull_request", "d-1", &body, &sign(b"other")).await;
    assert_eq!(status, 401, "{error}");
    assert_eq!(error["error"], "bad_signature");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("X-Hub-Signature-256"),
        "{error}"
    );
    assert_eq!(world.decision(id).await.status, DecisionStatus::PrOpen);
    assert_eq!(deliveries(&world).await, 0);

    let (status, receipt) = deliver_github(&base, "pull_request", "d-1", &body, &sign(&body)).await;
    assert_eq!(
        (status, receipt["status"].as_str()),
        (200, Some("recorded")),
        "{receipt}"
    );
    let decision = world.decision(id).await;
    assert_eq!(decision.status, DecisionStatus::Merged);
    assert_eq!(
        decision.write_back.as_ref().expect("write back").0["merge_commit"],
        merge_commit.as_str()
    );

    // GitHub redelivers: nothing more happens.
    let (status, receipt) = deliver_github(&base, "pull_request", "d-1", &body, &sign(&body)).await;
    assert_eq!(
        (status, receipt["status"].as_str()),
        (200, Some("duplicate"))
    );
    // The same signed body under another delivery id is a replay: refused, nothing more happens.
    let (status, error) = deliver_github(&base, "pull_request", "d-9", &body, &sign(&body)).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (409, Some("replayed_delivery")),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("d-1")
    );
    assert_eq!(deliveries(&world).await, 1);
    assert_eq!(world.storage.open_tasks(id).await.expect("tasks"), 1);

    // The enqueued task: a worker syncs the merge commit and applies it.
    let progress = worker.run_task(id, World::retry()).await;
    assert_eq!(progress, Progress::Reached(DecisionStatus::Applied));
    assert_eq!(world.argocd.applied_revision(APP), Some(merge_commit));
}

/// How a reviewer ends a pull request.
enum Close {
    Merge,
    Reject,
}

/// A decision waiting in its pull request on the GitHub test server, and the webhook receiver.
struct Waiting {
    world: World,
    github: test_support::github::GitHubServer,
    base: String,
    id: i64,
    number: u64,
}

impl Waiting {
    async fn new() -> Self {
        let (world, github) = pull_request_world().await;
        let base = serve(&world).await;
        let id = world.saturated_decision().await;
        world.worker("host-a").run_task(id, World::retry()).await;
        let number = github.pulls("acme", "gitops")[0].number;
        Self {
            world,
            github,
            base,
            id,
            number,
        }
    }

    /// Merges or closes the pull request on the test server; the body of the event GitHub sends.
    fn closed(&self, how: Close) -> Vec<u8> {
        match how {
            Close::Merge => {
                self.github
                    .merge_pull("acme", "gitops", self.number)
                    .expect("merged");
            }
            Close::Reject => self
                .github
                .close_pull("acme", "gitops", self.number)
                .expect("closed"),
        }
        serde_json::to_vec(
            &self
                .github
                .webhook_payload("acme", "gitops", self.number)
                .expect("payload"),
        )
        .expect("json")
    }
}

/// A merge delivered many times at once, under one id and under several, is acted on exactly once:
/// one delivery recorded with its effect, one sync task, every other answer a duplicate or a replay.
#[tokio::test]
async fn concurrent_copies_of_a_merge_are_acted_on_once() {
    let pull = Waiting::new().await;
    let (world, base, id) = (&pull.world, &pull.base, pull.id);
    let body = pull.closed(Close::Merge);
    let signature = sign(&body);

    let copies = (0..12).map(|i| {
        let delivery = format!("d-{}", i % 3);
        let (base, body, signature) = (base.clone(), body.clone(), signature.clone());
        tokio::spawn(async move {
            deliver_github(&base, "pull_request", &delivery, &body, &signature).await
        })
    });
    let mut answers = Vec::new();
    for copy in copies {
        let (status, reply) = copy.await.expect("joined");
        answers.push(match status {
            200 => reply["status"].as_str().unwrap_or("?").to_owned(),
            _ => reply["error"].as_str().unwrap_or("?").to_owned(),
        });
    }
    answers.sort();
    let recorded = answers.iter().filter(|a| *a == "recorded").count();
    assert_eq!(recorded, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|a| matches!(a.as_str(), "recorded" | "duplicate" | "replayed_delivery")),
        "{answers:?}"
    );
    assert_eq!(world.decision(id).await.status, DecisionStatus::Merged);
    assert_eq!(deliveries(world).await, 1);
    assert_eq!(world.storage.open_tasks(id).await.expect("tasks"), 1);
}

/// A delivery about a pull request closed longer ago than the window is refused: its record may have been
/// pruned, so it could be a captured delivery replayed.
#[tokio::test]
async fn a_stale_github_delivery_is_refused() {
    let pull = Waiting::new().await;
    let (world, base, id) = (&pull.world, &pull.base, pull.id);
    let mut payload: Value = serde_json::from_slice(&pull.closed(Close::Merge)).expect("json");
    payload["pull_request"]["closed_at"] =
        json!((Utc::now() - chrono::Duration::days(4)).to_rfc3339());
    let body = serde_json::to_vec(&payload).expect("json");

    let (status, error) = deliver_github(base, "pull_request", "d-7", &body, &sign(&body)).await;

    assert_eq!(
        (status, error["error"].as_str()),
        (422, Some("stale_delivery")),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("pull_request.closed_at"),
        "{error}"
    );
    assert_eq!(world.decision(id).await.status, DecisionStatus::PrOpen);
    assert_eq!(deliveries(world).await, 0);
    assert!(
        world
            .metrics
            .encode()
            .contains("autoscaler_webhook_deliveries_total{source=\"github\",outcome=\"stale\"} 1")
    );
}

#[tokio::test]
async fn a_pull_request_closed_without_merging_is_rejected() {
    let pull = Waiting::new().await;
    let (world, base, id) = (&pull.world, &pull.base, pull.id);
    let body = pull.closed(Close::Reject);

    let (status, receipt) = deliver_github(base, "pull_request", "d-2", &body, &sign(&body)).await;

    assert_eq!(status, 200, "{receipt}");
    let decision = world.decision(id).await;
    assert_eq!(decision.status, DecisionStatus::Rejected);
    assert!(
        decision
            .reason
            .unwrap_or_default()
            .contains("closed without merging")
    );
    assert_eq!(world.log(), ["seed"], "the cluster keeps its scale");
}

#[tokio::test]
async fn malformed_oversized_and_unknown_github_deliveries() {
    let world = World::new().await;
    let base = serve(&world).await;

    let garbage = b"{\"action\": \"closed\", \"number\": ";
    let (status, error) =
        deliver_github(&base, "pull_request", "d-3", garbage, &sign(garbage)).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("malformed_json")),
        "{error}"
    );

    let wrong_shape = br#"{"action": "closed", "number": "seven"}"#;
    let (status, error) = deliver_github(
        &base,
        "pull_request",
        "d-4",
        wrong_shape,
        &sign(wrong_shape),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("number"),
        "{error}"
    );

    let huge = vec![b' '; BODY_LIMIT + 1];
    let (status, _) = deliver_github(&base, "pull_request", "d-5", &huge, &sign(&huge)).await;
    assert_eq!(status, 413);

    let ping = br#"{"zen": "Keep it logically awesome.", "hook_id": 1}"#;
    let (status, receipt) = deliver_github(&base, "ping", "d-6", ping, &sign(ping)).await;
    assert_eq!((status, receipt["status"].as_str()), (200, Some("ignored")));
    // Only the acknowledged ping is remembered; refused deliveries left nothing but a count.
    assert_eq!(deliveries(&world).await, 1);
    let exposition = world.metrics.encode();
    for (outcome, count) in [("malformed", 2), ("too_large", 1), ("ignored", 1)] {
        let line = format!(
            "autoscaler_webhook_deliveries_total{{source=\"github\",outcome=\"{outcome}\"}} {count}"
        );
        assert!(exposition.contains(&line), "{line} in {exposition}");
    }
}

pub(crate) async fn notify(base: &str, auth: Option<(&str, &str)>, body: &Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/webhooks/argocd"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).expect("json"));
    request = match auth {
        Some(("bearer", token)) => request.bearer_auth(token),
        Some((user, password)) => request.basic_auth(user, Some(password)),
        None => request,
    };
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The body the `autoscaler-sync-event` template renders.
pub(crate) fn sync_event(
    app: &str,
    phase: &str,
    health: &str,
    revision: &str,
    decision: &str,
) -> Value {
    json!({
        "app": app, "namespace": "argocd", "project": "default", "trigger": "on-sync-succeeded",
        "syncStatus": "Synced", "healthStatus": health, "phase": phase,
        "message": "successfully synced (all tasks run)", "revision": revision,
        "syncRevision": revision, "startedAt": (Utc::now() - chrono::Duration::seconds(5)).to_rfc3339(),
        "finishedAt": Utc::now().to_rfc3339(), "initiatedBy": "autoscaler", "decision": decision,
        "argocdUrl": "https://argocd.example.com"
    })
}

#[tokio::test]
async fn argocd_notifications_are_authenticated_matched_and_deduplicated() {
    let world = World::new().await;
    let base = serve(&world).await;
    let now = Utc::now();
    world.saturated_history(now).await;
    // The sync ends before the worker sees it: the notification must carry the decision on.
    let id = world.pending("up", now).await;
    let worker = world.worker("host-a");
    assert_eq!(
        worker.run_task(id, World::retry()).await,
        Progress::Reached(DecisionStatus::Applied)
    );
    let revision = world.head("main");
    let event = sync_event(APP, "Succeeded", "Healthy", &revision, &id.to_string());

    let (status, _) = notify(&base, None, &event).await;
    assert_eq!(status, 401);
    let (status, _) = notify(&base, Some(("bearer", "wrong-token-0000000000")), &event).await;
    assert_eq!(status, 401);
    assert_eq!(deliveries(&world).await, 0);

    let (status, receipt) = notify(&base, Some(("bearer", ARGOCD_HOOK_TOKEN)), &event).await;
    assert_eq!(
        (status, receipt["decision"].as_i64()),
        (200, Some(id)),
        "{receipt}"
    );
    let steps = World::steps(&world.decision(id).await);
    assert_eq!(
        steps.last().map(String::as_str),
        Some("argocd_sync_succeeded"),
        "{steps:?}"
    );
    let (status, receipt) = notify(&base, Some(("argocd", "basic-password-0123")), &event).await;
    assert_eq!(
        (status, receipt["status"].as_str()),
        (200, Some("duplicate")),
        "{receipt}"
    );

    // Matched by revision when the sync was not ours (no infos).
    let degraded = sync_event(APP, "Succeeded", "Degraded", &revision, "");
    let (status, receipt) = notify(&base, Some(("bearer", ARGOCD_HOOK_TOKEN)), &degraded).await;
    assert_eq!(
        (status, receipt["decision"].as_i64()),
        (200, Some(id)),
        "{receipt}"
    );
    assert!(World::steps(&world.decision(id).await).contains(&"argocd_health_degraded".to_owned()));

    // Unknown applications and revisions are acknowledged and ignored.
    let unknown = sync_event("someone-elses-app", "Succeeded", "Healthy", &revision, "");
    let (status, receipt) = notify(&base, Some(("bearer", ARGOCD_HOOK_TOKEN)), &unknown).await;
    assert_eq!((status, receipt["status"].as_str()), (200, Some("ignored")));
    let stray = sync_event(
        APP,
        "Succeeded",
        "Healthy",
        "0000000000000000000000000000000000000000",
        "",
    );
    let (status, receipt) = notify(&base, Some(("bearer", ARGOCD_HOOK_TOKEN)), &stray).await;
    assert_eq!((status, receipt["status"].as_str()), (200, Some("ignored")));

    let (status, error) = notify(
        &base,
        Some(("bearer", ARGOCD_HOOK_TOKEN)),
        &json!({"phase": "Succeeded"}),
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("malformed_json")),
        "{error}"
    );
    let mut bad_decision = event.clone();
    bad_decision["decision"] = json!("12; drop table decisions");
    let (status, _) = notify(&base, Some(("bearer", ARGOCD_HOOK_TOKEN)), &bad_decision).await;
    assert_eq!(status, 400);
    // A sync that finished days ago is refused as stale, whatever else it says.
    let mut stale = sync_event(APP, "Failed", "Degraded", &revision, &id.to_string());
    stale["finishedAt"] = json!((Utc::now() - chrono::Duration::days(4)).to_rfc3339());
    let (status, error) = notify(&base, Some(("bearer", ARGOCD_HOOK_TOKEN)), &stale).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (422, Some("stale_delivery")),
        "{error}"
    );
    assert_eq!(world.decision(id).await.status, DecisionStatus::Applied);
    assert!(!World::steps(&world.decision(id).await).contains(&"argocd_sync_failed".to_owned()));
}

#[tokio::test]
async fn a_failed_sync_notification_fails_a_decision_still_in_flight() {
    let world = World::new().await;
    let base = serve(&world).await;
    let now = Utc::now();
    world.saturated_history(now).await;
    world.argocd.set_polls_to_complete(APP, 1_000_000);
    let id = world.pending("up", now).await;
    let worker = world.worker("host-a");
    let running = tokio::spawn(async move { worker.run_task(id, World::retry()).await });
    crate::world::eventually(
        "the sync to start",
        std::time::Duration::from_secs(30),
        || async { world.decision(id).await.status == DecisionStatus::Syncing },
    )
    .await;
    running.abort();
    let _ = running.await;

    let mut failed = sync_event(
        APP,
        "Failed",
        "Degraded",
        &world.head("main"),
        &id.to_string(),
    );
    failed["healthStatus"] = json!("Missing");
    failed["message"] = json!("one or more objects failed to apply");
    let (status, receipt) = notify(&base, Some(("bearer", ARGOCD_HOOK_TOKEN)), &failed).await;

    assert_eq!(status, 200, "{receipt}");
    let decision = world.decision(id).await;
    assert_eq!(decision.status, DecisionStatus::Failed);
    assert_eq!(
        decision.reason.as_deref(),
        Some("Argo CD reported the sync Failed: one or more objects failed to apply")
    );
}

pub(crate) async fn announce(base: &str, token: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/webhooks/engine"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn engine_instances_register_heartbeat_and_unregister() {
    let world = World::new().await;
    let base = serve(&world).await;
    let live = || async {
        world
            .storage
            .live_engines(world.cluster_id, Utc::now() - chrono::Duration::seconds(60))
            .await
            .expect("live")
            .len()
    };

    for instance in ["engine-0", "engine-1"] {
        let (status, _) = announce(
            &base,
            ENGINE_TOKEN,
            json!({"cluster": "logs", "instance": instance, "event": "register"}),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (status, _) = announce(
        &base,
        ENGINE_TOKEN,
        json!({"cluster": "logs", "instance": "engine-1", "event": "heartbeat"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(live().await, 2);
    let (status, _) = announce(
        &base,
        ENGINE_TOKEN,
        json!({"cluster": "logs", "instance": "engine-0", "event": "unregister"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(live().await, 1);

    let (status, _) = announce(
        &base,
        "not-the-engine-token-00",
        json!({"cluster": "logs", "instance": "x", "event": "register"}),
    )
    .await;
    assert_eq!(status, 401);
    let (status, error) = announce(
        &base,
        ENGINE_TOKEN,
        json!({"cluster": "nope", "instance": "x", "event": "register"}),
    )
    .await;
    assert_eq!((status, error["error"].as_str()), (404, Some("not_found")));
    let (status, _) = announce(
        &base,
        ENGINE_TOKEN,
        json!({"cluster": "logs", "instance": "x", "event": "explode"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(live().await, 1);
}

#[tokio::test]
async fn a_scale_up_is_applied_only_once_the_new_instances_registered() {
    let world = World::new().await;
    let base = serve(&world).await;
    let now = Utc::now();
    world.saturated_history(now).await;
    for instance in ["engine-0", "engine-1"] {
        announce(
            &base,
            ENGINE_TOKEN,
            json!({"cluster": "logs", "instance": instance, "event": "register"}),
        )
        .await;
    }
    let id = world.pending("up", now).await;
    let worker = world.worker("host-a");
    let retry = autoscaler::worker::RetrySettings {
        attempts: 50,
        backoff: std::time::Duration::from_millis(5),
    };
    let running = tokio::spawn(async move { worker.run_task(id, retry).await });

    // Synced, but two instances for a larger scale: the worker waits, saying why.
    crate::world::eventually(
        "a retry for missing capacity",
        std::time::Duration::from_secs(30),
        || async {
            let decision = world.decision(id).await;
            decision.steps.0.as_array().is_some_and(|steps| {
                steps.iter().any(|s| {
                    s["detail"]["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("only 2 of"))
                })
            })
        },
    )
    .await;
    assert_eq!(world.decision(id).await.status, DecisionStatus::Synced);
    let to = world.decision(id).await.to_scale.expect("scale");
    for i in 2..to {
        announce(
            &base,
            ENGINE_TOKEN,
            json!({"cluster": "logs", "instance": format!("engine-{i}"), "event": "register"}),
        )
        .await;
    }

    let progress = running.await.expect("joins");
    assert_eq!(progress, Progress::Reached(DecisionStatus::Applied));
    let steps = World::steps(&world.decision(id).await);
    assert_eq!(steps.last().map(String::as_str), Some("applied"));
}

/// The notification template shipped in `deploy/` sends what the receiver reads, where it listens, with the
/// info name the worker puts on its syncs.
#[test]
fn the_shipped_notification_template_matches_the_receiver() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/argocd/argocd-notifications-cm.yaml"
    );
    let text = std::fs::read_to_string(path).expect("the template file");
    let config: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    let template = config["data"]["template.autoscaler-sync-event"]
        .as_str()
        .expect("the template");
    let webhook: serde_yaml::Value = serde_yaml::from_str(template).expect("template YAML");
    let call = &webhook["webhook"]["autoscaler"];
    assert_eq!(call["method"].as_str(), Some("POST"));
    assert_eq!(call["path"].as_str(), Some("/webhooks/argocd"));
    let body = call["body"].as_str().expect("a body");
    for key in [
        "app",
        "phase",
        "healthStatus",
        "syncStatus",
        "message",
        "revision",
        "decision",
        "finishedAt",
    ] {
        assert!(
            body.contains(&format!("\"{key}\":")),
            "the body sends {key}"
        );
    }
    assert!(body.contains(r#"GetInfoItem .app "autoscaler.decision""#));
    for trigger in ["on-sync-succeeded", "on-sync-failed", "on-health-degraded"] {
        let rules = config["data"][format!("trigger.{trigger}").as_str()]
            .as_str()
            .expect("the trigger");
        assert!(rules.contains("send: [autoscaler-sync-event]"), "{trigger}");
    }
}
