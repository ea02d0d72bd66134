//! The webhook killed while recording a merge: the worker opens a pull request on the GitHub test server,
//! the test merges it there and delivers GitHub's signed `pull_request` event to the webhook process,
//! which is SIGKILLed inside the transaction that records the merge with its sync task. GitHub then
//! redelivers under the same delivery id to a fresh webhook process.

use std::time::Duration;

use autoscaler::{fault, storage::DecisionStatus};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use test_support::github::GitHubServer;

use crate::harness::{GITHUB_SECRET, Rig, Role};
use crate::world::git;

const GITHUB_TOKEN: &str = "kill-test-github-token-01";
const DELIVERY: &str = "kill-test-delivery-1";

/// `X-Hub-Signature-256` as GitHub computes it with the webhook's secret.
fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(GITHUB_SECRET.as_bytes()).expect("key");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// One delivery of the event to the webhook at `base`: its status and JSON answer, or the transport error.
async fn deliver(base: &str, body: &[u8]) -> reqwest::Result<(u16, serde_json::Value)> {
    let response = reqwest::Client::new()
        .post(format!("{base}/webhooks/github"))
        .header("content-type", "application/json")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", DELIVERY)
        .header("x-hub-signature-256", sign(body))
        .body(body.to_vec())
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or_default()))
}

async fn count(rig: &Rig, sql: &'static str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql)
        .fetch_one(rig.world.storage.pool())
        .await
        .expect("count");
    n
}

#[tokio::test]
async fn a_webhook_killed_while_recording_a_merge_records_it_once_on_redelivery() {
    let github = GitHubServer::start(GITHUB_TOKEN).await.expect("github");
    let url = github.url();
    let mut rig = Rig::new(|spec| {
        spec["write_back"] = serde_json::json!({
            "mode": "pull_request",
            "github_repository": "acme/gitops",
            "github_api_url": url,
            "token": {"file": "github"},
        });
    })
    .await;
    std::fs::write(rig.world.dir.join("secrets/default/github"), GITHUB_TOKEN).expect("secret");
    github.add_repository("acme", "gitops", rig.world.bare.clone());

    let id = rig.decide().await.expect("a decision");
    let _manager = rig.spawn(Role::Manager, None).0;
    let _worker = rig.spawn(Role::Worker, None).0;
    let (paused, marker) = rig.spawn(Role::Webhook, Some(fault::WEBHOOK_MERGE));
    test_support::wait::until_some("the worker to open the pull request", CONVERGE, || async {
        Ok((rig.world.decision(id).await.status == DecisionStatus::PrOpen).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    let number = github.pulls("acme", "gitops")[0].number;
    let merge_commit = github.merge_pull("acme", "gitops", number).expect("merged");
    let body = serde_json::to_vec(
        &github
            .webhook_payload("acme", "gitops", number)
            .expect("payload"),
    )
    .expect("json");

    // The first delivery: the webhook stops inside the merge's transaction, and is killed there.
    let base = paused.url.clone();
    let first = {
        let body = body.clone();
        tokio::spawn(async move {
            // Until the process listens; the answer never comes.
            loop {
                if deliver(&base, &body).await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    rig.paused(&marker).await;
    paused.kill();
    first.abort();
    assert_eq!(
        rig.world.decision(id).await.status,
        DecisionStatus::PrOpen,
        "the killed transaction recorded nothing"
    );
    assert_eq!(
        count(&rig, "select count(*) from webhook_deliveries").await,
        0,
        "not even the delivery"
    );

    // GitHub redelivers (the same delivery id) to a fresh webhook, then once more.
    let webhook = rig.spawn(Role::Webhook, None).0;
    let (status, receipt) =
        test_support::wait::until_ok("the redelivery", Duration::from_secs(30), || async {
            Ok(deliver(&webhook.url, &body).await?)
        })
        .await
        .expect("redelivered");
    assert_eq!(
        (status, receipt["status"].as_str()),
        (200, Some("recorded")),
        "{receipt}"
    );
    let (status, receipt) = deliver(&webhook.url, &body).await.expect("delivered");
    assert_eq!(
        (status, receipt["status"].as_str()),
        (200, Some("duplicate")),
        "{receipt}"
    );

    let (_, decision) = rig
        .converge_applied_once(id, CONVERGE, "the webhook killed inside the merge")
        .await;
    let merges = git(&rig.world.bare, &["rev-list", "--merges", "main"]);
    assert_eq!(
        merges.lines().collect::<Vec<_>>(),
        vec![merge_commit.as_str()],
        "exactly one merge commit on main"
    );
    assert_eq!(github.pulls("acme", "gitops").len(), 1, "one pull request");
    assert_eq!(
        count(&rig, "select count(*) from webhook_deliveries").await,
        1
    );
    let steps = crate::world::World::steps(&decision);
    assert_eq!(
        steps.iter().filter(|s| *s == "merged").count(),
        1,
        "the merge is recorded once: {steps:?}"
    );
    // One task opened the pull request, one synced the merge, plus any the reconciler pushed again.
    let redrives = steps.iter().filter(|s| *s == "reconciler_redrive").count();
    let tasks = count(&rig, "select count(*) from apalis.jobs").await;
    assert_eq!(
        usize::try_from(tasks).expect("a count"),
        2 + redrives,
        "one sync task: {steps:?}"
    );
}

const CONVERGE: Duration = crate::CONVERGE;
