//! The engine target, against the engine's own control router with a stand-in for its supervisor.

use std::sync::Arc;

use autoscaler::rescale::{Problem, RescaleMethod, RescaleTarget, Situation};
use pipeline_engine::control::{ControlState, RescaleRequest, control_router};
use pipeline_engine::metrics::Metrics;
use pipeline_engine::status::{State, Status, StatusBoard};
use tokio::sync::mpsc;

use super::{names, run, settings};

const TOKEN: &str = "s3cret-control-token";

struct Engine {
    url: String,
    status: Arc<StatusBoard>,
}

/// Serves `control_router` on a free port. Rescale requests are answered as the engine's supervisor
/// does: the new status, or `Err(message)` when `fail_with` is set.
async fn engine(fail_with: Option<&'static str>) -> Engine {
    let status = Arc::new(StatusBoard::new(Status {
        pipeline: "logs".to_owned(),
        instance_id: "logs-0".to_owned(),
        state: State::Running,
        parallelism: 2,
        sink_parallelism: 2,
        in_flight_per_sink: 4,
        assigned_partitions: Vec::new(),
    }));
    let (tx, mut rx) = mpsc::channel::<RescaleRequest>(1);
    let board = status.clone();
    tokio::spawn(async move {
        while let Some(req) = rx.recv().await {
            let result = match fail_with {
                Some(msg) => Err(msg.to_owned()),
                None => {
                    board.update(|s| {
                        s.parallelism = req.target.process;
                        s.sink_parallelism = req.target.sink;
                    });
                    Ok(board.snapshot())
                }
            };
            let _ = req.reply.send(result);
        }
    });
    let router = control_router(ControlState {
        metrics: Arc::new(Metrics::new("logs", "logs-0")),
        status: status.clone(),
        token: Some(Arc::from(TOKEN)),
        rescale: tx,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let url = format!("http://{}", listener.local_addr().expect("bound address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    Engine { url, status }
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
