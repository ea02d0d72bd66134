//! A `_bulk` sink for benchmarks: answers like Elasticsearch, but cheaply enough that it does not set
//! the pace, so the engine's own ceiling shows.
//!
//! Contract kept: `POST /_bulk` (optionally `/{index}/_bulk`) with NDJSON action and source lines;
//! one item per document, in order, under the document's action name; `create` of an id it already
//! has answers 409 `version_conflict_engine_exception` (so replays behave as with Elasticsearch); an
//! action line that is not JSON, names no `_index`, or lacks its source line answers a 400 for the
//! whole request, as Elasticsearch does; `filter_path` is honoured the way the engine asks for it
//! (only `errors` and the items' `status` and `error` are written). `GET /_count` counts documents.
//!
//! Not on the hot path: sources are not parsed per request. Request bodies are kept as they arrived
//! and `GET /_verify` checks them after the run (every source a JSON object with `@timestamp`, every
//! index name lowercase), answering `{"documents":…,"invalid":…,"first_invalid":…}`.
//!
//! Usage: `bench-bulk-sink [--threads N]`; prints `http://127.0.0.1:<port>` on the first line.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

const SHARDS: usize = 64;

#[derive(Default)]
struct Sink {
    /// Ids written, sharded so request threads rarely wait on each other.
    ids: Vec<Mutex<HashSet<Box<str>>>>,
    hasher: std::collections::hash_map::RandomState,
    documents: AtomicU64,
    conflicts: AtomicU64,
    /// Bodies as they arrived, for `/_verify` after the run.
    bodies: Mutex<Vec<Bytes>>,
}

impl Sink {
    fn new() -> Self {
        Self {
            ids: (0..SHARDS).map(|_| Mutex::new(HashSet::new())).collect(),
            ..Default::default()
        }
    }

    /// True if the id is new.
    fn insert(&self, id: &str) -> bool {
        let shard = &self.ids[(self.hasher.hash_one(id) as usize) % SHARDS];
        shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.into())
    }
}

#[derive(serde::Deserialize)]
struct Target {
    #[serde(rename = "_index")]
    index: Option<String>,
    #[serde(rename = "_id")]
    id: Option<String>,
}

fn bad_request(reason: String) -> Response {
    let body = serde_json::json!({
        "error": {"type": "illegal_argument_exception", "reason": reason},
        "status": 400
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

async fn bulk(State(sink): State<Arc<Sink>>, body: Bytes) -> Response {
    let mut out = Vec::with_capacity(64 + body.len() / 8);
    out.extend_from_slice(b"{\"errors\":");
    let mut items = Vec::with_capacity(body.len() / 8);
    let mut errors = false;
    let mut lines = body.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    let mut count = 0u64;
    while let Some(action) = lines.next() {
        let Ok(parsed) =
            serde_json::from_slice::<std::collections::HashMap<String, Target>>(action)
        else {
            return bad_request("Malformed action/metadata line".into());
        };
        let Some((name, target)) = parsed.into_iter().next() else {
            return bad_request("Malformed action/metadata line".into());
        };
        if target.index.as_deref().is_none_or(str::is_empty) {
            return bad_request("index is missing".into());
        }
        if name != "delete" && lines.next().is_none() {
            return bad_request("The bulk request must be terminated by a newline".into());
        }
        count += 1;
        let status = match (&*name, target.id.as_deref()) {
            ("create", Some(id)) if !sink.insert(id) => 409,
            ("create" | "index", Some(id)) => {
                sink.insert(id);
                201
            }
            _ => 201,
        };
        if status == 409 {
            errors = true;
            sink.conflicts.fetch_add(1, Ordering::Relaxed);
            write!(
                items,
                "{{\"{name}\":{{\"status\":409,\"error\":{{\"type\":\"version_conflict_engine_exception\",\"reason\":\"document already exists\"}}}}}},"
            )
            .expect("writing to a Vec");
        } else {
            sink.documents.fetch_add(1, Ordering::Relaxed);
            write!(items, "{{\"{name}\":{{\"status\":{status}}}}},").expect("writing to a Vec");
        }
    }
    if count == 0 {
        return bad_request("request body is required".into());
    }
    items.pop();
    out.extend_from_slice(if errors { b"true" } else { b"false" });
    out.extend_from_slice(b",\"items\":[");
    out.extend_from_slice(&items);
    out.extend_from_slice(b"]}");
    sink.bodies
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(body);
    ([(header::CONTENT_TYPE, "application/json")], out).into_response()
}

async fn count(State(sink): State<Arc<Sink>>) -> Response {
    let n = sink.documents.load(Ordering::Relaxed);
    axum::Json(serde_json::json!({"count": n, "conflicts": sink.conflicts.load(Ordering::Relaxed)}))
        .into_response()
}

/// Checks every document sent: the source a JSON object with `@timestamp`, the index lowercase.
async fn verify(State(sink): State<Arc<Sink>>) -> Response {
    let bodies = sink
        .bodies
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let (documents, invalid, first) = tokio::task::spawn_blocking(move || {
        let (mut documents, mut invalid, mut first) = (0u64, 0u64, None::<String>);
        for body in &bodies {
            let mut lines = body.split(|&b| b == b'\n').filter(|l| !l.is_empty());
            while let (Some(action), Some(source)) = (lines.next(), lines.next()) {
                documents += 1;
                let index_ok = serde_json::from_slice::<serde_json::Value>(action)
                    .ok()
                    .and_then(|a| {
                        a.as_object()?.values().next()?["_index"]
                            .as_str()
                            .map(|i| i == i.to_lowercase())
                    })
                    .unwrap_or(false);
                let source_ok = serde_json::from_slice::<serde_json::Value>(source)
                    .ok()
                    .is_some_and(|s| s.get("@timestamp").is_some_and(|t| t.is_string()));
                if !(index_ok && source_ok) {
                    invalid += 1;
                    first.get_or_insert_with(|| String::from_utf8_lossy(source).into_owned());
                }
            }
        }
        (documents, invalid, first)
    })
    .await
    .unwrap_or((0, 0, Some("verification panicked".into())));
    axum::Json(
        serde_json::json!({"documents": documents, "invalid": invalid, "first_invalid": first}),
    )
    .into_response()
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => {
                threads = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| anyhow::anyhow!("--threads N"))?;
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let sink = Arc::new(Sink::new());
        let app = Router::new()
            .route("/_bulk", post(bulk))
            .route("/{index}/_bulk", post(bulk))
            .route("/_count", get(count))
            .route("/_verify", get(verify))
            .layer(axum::extract::DefaultBodyLimit::max(100 * 1024 * 1024))
            .with_state(sink);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "http://{}", listener.local_addr()?)?;
        stdout.flush()?;
        drop(stdout);
        axum::serve(listener, app).await?;
        anyhow::Ok(())
    })
}
