//! Runs an axum router on 127.0.0.1 with a free port until the last handle is dropped or
//! `shutdown()` is called. Shared by the Argo CD and GitHub test servers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Lives inside each server handle: clones share the guard, so the server stops with the last clone.
#[derive(Clone)]
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    stop: CancellationToken,
    _stop_on_last_drop: Arc<DropGuard>,
}

impl Running {
    /// `build` gets the server's base URL (some responses embed their own URLs).
    pub(crate) async fn spawn(build: impl FnOnce(&str) -> Router) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let router = build(&format!("http://{addr}"));
        let stop = CancellationToken::new();
        let stopped = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(stopped)
                .await;
        });
        Ok(Self {
            addr,
            _stop_on_last_drop: Arc::new(stop.clone().drop_guard()),
            stop,
        })
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn shutdown(&self) {
        self.stop.cancel();
    }
}
