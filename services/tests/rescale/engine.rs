//! The engine target, against the engine's own control router with a stand-in for its supervisor.

use autoscaler::rescale::{Problem, RescaleMethod, RescaleTarget, Situation};

use super::engine_control::{CONTROL_TOKEN as TOKEN, Engine};
use super::{names, run, settings};

/// One instance named "logs-0", its supervisor refusing with `fail_with`.
async fn engine(fail_with: Option<&'static str>) -> Engine {
    super::engine_control::engine("logs-0", fail_with).await
}

fn target(e: &Engine, token: &str) -> RescaleTarget {
    RescaleTarget::Engine {
        control_url: e.url.parse().expect("URL parses"),
        token: Some(token.into()),
    }
}

#[tokio::test]
async fn the_engine_is_rescaled_and_verified_through_its_status() {
    let e = engine(None).await;

    let (result, steps) = run(&target(&e, TOKEN), 4, 1, settings()).await;

    let done = result.expect("the rescale succeeds");
    assert_eq!(done.method, RescaleMethod::EngineControl);
    assert_eq!(names(&steps), ["engine_rescaled", "parallelism_verified"]);
    assert_eq!(steps[0].detail["from"], 2);
    assert_eq!(e.status.snapshot().parallelism, 4);

    // Again: already there, so the engine is not drained a second time.
    let (again, steps) = run(&target(&e, TOKEN), 4, 1, settings()).await;
    assert_eq!(
        again.expect("the repeat succeeds").method,
        RescaleMethod::AlreadyAtParallelism
    );
    assert_eq!(names(&steps), ["already_at_parallelism"]);
}

#[tokio::test]
async fn a_wrong_token_changes_nothing_and_is_not_echoed() {
    let e = engine(None).await;

    let (result, _) = run(&target(&e, "not-the-token"), 4, 2, settings()).await;

    let err = result.expect_err("401");
    assert!(matches!(err.problem, Problem::Unauthorized(_)), "{err}");
    assert_eq!(err.situation, Situation::Untouched);
    assert!(!err.is_transient());
    let message = format!("{err} {err:?}");
    assert!(!message.contains("not-the-token") && !message.contains(TOKEN));
    assert_eq!(e.status.snapshot().parallelism, 2);
}

#[tokio::test]
async fn a_parallelism_the_engine_refuses_changes_nothing() {
    let e = engine(None).await;

    let (result, _) = run(&target(&e, TOKEN), 300, 3, settings()).await;

    let err = result.expect_err("above the engine's limit");
    assert!(
        matches!(&err.problem, Problem::Refused { status: 400, message } if message.contains("between 1 and 256")),
        "{err}"
    );
    assert_eq!(err.situation, Situation::Untouched);
    assert_eq!(e.status.snapshot().parallelism, 2);
}

#[tokio::test]
async fn an_engine_that_could_not_rescale_is_reported_with_its_reason() {
    let e = engine(Some("consumer thread exited")).await;

    let (result, _) = run(&target(&e, TOKEN), 4, 4, settings()).await;

    let err = result.expect_err("409");
    assert!(
        matches!(&err.problem, Problem::Conflict(m) if m == "consumer thread exited"),
        "{err}"
    );
    assert!(
        matches!(&err.situation, Situation::EngineMayBeRescaling { status_url } if status_url.ends_with("/status")),
        "{err}"
    );
    assert!(err.is_transient());
}
