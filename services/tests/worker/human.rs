//! What counts as a person changing the scale: a commit that changed the value at the key path and is not
//! one of ours. Other edits of the file, and our own change squashed without its trailer, are not.

use autoscaler::storage::{DecisionStatus, Transition};
use chrono::Utc;
use serde_json::json;

use crate::world::{PATH, World, git};

/// Someone commits `edit` of the values file on main, with `message`.
fn commit_edit(world: &World, edit: impl Fn(&str) -> String, message: &str) {
    let hand = world
        .dir
        .join(format!("hand-{}", uuid::Uuid::new_v4().simple()));
    let url = format!("file://{}", world.bare.display());
    git(
        &world.dir,
        &["clone", "--quiet", &url, hand.to_str().expect("utf-8")],
    );
    let text = std::fs::read_to_string(hand.join(PATH)).expect("read");
    let edited = edit(&text);
    assert_ne!(text, edited, "the edit changes the file");
    std::fs::write(hand.join(PATH), edited).expect("write");
    git(
        &hand,
        &[
            "-c",
            "user.name=Ada",
            "-c",
            "user.email=ada@example.com",
            "commit",
            "--quiet",
            "-am",
            message,
        ],
    );
    git(&hand, &["push", "--quiet", "origin", "main"]);
}

async fn human_changes(world: &World) -> usize {
    world
        .storage
        .list_decisions(world.cluster_id, None, 50)
        .await
        .expect("decisions")
        .iter()
        .filter(|d| d.rule == "human_change")
        .count()
}

#[tokio::test]
async fn an_image_bump_in_the_scale_file_is_not_a_human_scale_change() {
    let world = World::new().await;
    let now = Utc::now();
    world.saturated_history(now).await;
    commit_edit(
        &world,
        |text| text.replace("engine:1.4", "engine:1.5"),
        "logs: engine 1.5",
    );
    let id = world.pending("up", now).await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    let decision = world.decision(id).await;
    assert_eq!(
        progress,
        autoscaler::worker::Progress::Reached(DecisionStatus::Applied),
        "{decision:?}"
    );
    assert_eq!(human_changes(&world).await, 0);
}

#[tokio::test]
async fn our_change_squashed_without_its_trailer_is_not_a_human_change() {
    let world = World::new().await;
    let now = Utc::now();
    world.saturated_history(now).await;
    // An earlier decision waited in pull request #7 on the autoscaler's branch...
    let earlier = world.pending("up", now).await;
    let write_back =
        json!({"mode": "pull_request", "branch": "autoscaler/logs", "pull_request": 7});
    for (from, to) in [
        (DecisionStatus::Pending, DecisionStatus::Running),
        (DecisionStatus::Running, DecisionStatus::PrOpen),
    ] {
        world
            .storage
            .transition(earlier, &Transition::new(from, to).write_back(&write_back))
            .await
            .expect("moved");
    }
    // ...and was squash-merged with a message that dropped the trailer.
    commit_edit(
        &world,
        |text| text.replace("replicas:   2 ", "replicas:   5 "),
        "Scale logs from 2 to 5 (#7)",
    );
    let id = world.pending("up", now).await;

    world.worker("host-a").run_task(id, World::retry()).await;

    let decision = world.decision(id).await;
    assert!(
        !decision
            .reason
            .clone()
            .unwrap_or_default()
            .contains("by hand"),
        "{decision:?}"
    );
    assert_eq!(human_changes(&world).await, 0);
}

#[tokio::test]
async fn a_person_changing_the_value_is_still_a_human_change() {
    let world = World::new().await;
    let now = Utc::now();
    world.saturated_history(now).await;
    world.commit_by_hand(7);
    // A later edit of something else in the file does not hide it.
    commit_edit(
        &world,
        |text| text.replace("engine:1.4", "engine:1.5"),
        "logs: engine 1.5",
    );
    let id = world.pending("up", now).await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    assert_eq!(
        progress,
        autoscaler::worker::Progress::Reached(DecisionStatus::Vetoed)
    );
    let reason = world.decision(id).await.reason.unwrap_or_default();
    assert!(reason.contains("set the scale to 7 by hand"), "{reason}");
    assert_eq!(human_changes(&world).await, 1);
}
