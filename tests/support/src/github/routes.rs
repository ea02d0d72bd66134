//! The REST routes this server implements; everything else is GitHub's 404.

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::routing::{delete, get};

use super::errors::{DOCS_ROOT, not_found};
use super::{Shared, comments, files, gate, labels, list, pulls, update};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/repos/{owner}/{repo}/pulls",
            get(list::list).post(pulls::create),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{number}",
            get(pulls::get).patch(update::update),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{number}/merge",
            get(pulls::check_merged),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{number}/files",
            get(files::list),
        )
        .route(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            get(comments::list).post(comments::create),
        )
        .route(
            "/repos/{owner}/{repo}/issues/{number}/labels",
            get(labels::list).post(labels::add).put(labels::replace),
        )
        .route(
            "/repos/{owner}/{repo}/issues/{number}/labels/{name}",
            delete(labels::remove),
        )
        .fallback(|| async { not_found(DOCS_ROOT) })
        // `layer`, not `route_layer`: GitHub authenticates (and rate-limits) unknown paths too.
        .layer(middleware::from_fn_with_state(shared.clone(), gate::gate))
        .with_state(shared)
}
