//! An engine instance for tests: the engine's own control router, with a stand-in for its supervisor
//! that rescales at once (or refuses), on a free loopback port in this process.

use std::sync::Arc;

use pipeline_engine::control::{ControlState, RescaleRequest, control_router};
use pipeline_engine::metrics::Metrics;
use pipeline_engine::status::{State, Status, StatusBoard};
use tokio::sync::mpsc;

pub const CONTROL_TOKEN: &str = "engine-control-token-0123";

pub struct Engine {
    #[allow(
        dead_code,
        reason = "named in the worker tests' messages, not in the kill or rescale tests"
    )]
    pub name: String,
    pub url: String,
    pub status: Arc<StatusBoard>,
}

/// One instance at parallelism 2 on a free port; its supervisor refuses rescales with `fail_with`.
pub async fn engine(name: &str, fail_with: Option<&'static str>) -> Engine {
    let status = Arc::new(StatusBoard::new(Status {
        pipeline: "logs".to_owned(),
        instance_id: name.to_owned(),
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
                Some(message) => Err(message.to_owned()),
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
        metrics: Arc::new(Metrics::new("logs", name)),
        status: status.clone(),
        token: Some(Arc::from(CONTROL_TOKEN)),
        rescale: tx,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let url = format!("http://{}", listener.local_addr().expect("bound address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    Engine {
        name: name.to_owned(),
        url,
        status,
    }
}
