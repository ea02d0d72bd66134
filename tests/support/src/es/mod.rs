//! A contract-faithful Elasticsearch `_bulk` test server (see docs/reference/pipeline-engines.md §4):
//! NDJSON bulk requests with per-item results in request order, `errors`, item-level 201/200/409/429/
//! 400 with Elasticsearch's error shapes, whole-request 400/401/406/413/429/503, `filter_path`, plus
//! fault injection (429 storms, partial item failures, slow responses, dropped connections, a
//! capacity limit and a stall). It binds 127.0.0.1 on a free port.

pub mod faults;
pub mod filter;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

pub use faults::Faults;
pub use store::Stats;
use store::{Index, ItemError, Op};

#[derive(Debug, Clone)]
pub struct EsServerOptions {
    /// Keep document sources (needed for `GET /{index}/_doc/{id}` to return them).
    pub keep_sources: bool,
    /// `http.max_content_length`; larger requests get 413.
    pub max_content_length: usize,
    /// Require HTTP basic auth with these credentials.
    pub basic_auth: Option<(String, String)>,
    pub faults: Faults,
}

impl Default for EsServerOptions {
    fn default() -> Self {
        Self {
            keep_sources: true,
            max_content_length: 100 * 1024 * 1024,
            basic_auth: None,
            faults: Faults::default(),
        }
    }
}

struct Inner {
    indices: HashMap<String, Index>,
    stats: Stats,
    faults: Faults,
    item_counter: u64,
    auto_id: u64,
    window: (Instant, u64),
}

struct Shared {
    inner: Mutex<Inner>,
    opts: EsServerOptions,
    in_flight: AtomicU64,
    stall: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running server; stops when dropped.
pub struct EsServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl EsServer {
    pub async fn start(opts: EsServerOptions) -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), opts).await
    }

    pub async fn start_on(addr: SocketAddr, opts: EsServerOptions) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stall, _) = tokio::sync::watch::channel(opts.faults.stalled);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                indices: HashMap::new(),
                stats: Stats::default(),
                faults: opts.faults.clone(),
                item_counter: 0,
                auto_id: 0,
                window: (Instant::now(), 0),
            }),
            opts,
            in_flight: AtomicU64::new(0),
            stall,
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let app = router(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop_rx.await.unwrap_or(()) })
                .await;
        });
        Ok(Self {
            addr,
            shared,
            _stop: stop_tx,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_faults(&self, f: Faults) {
        set_faults(&self.shared, f);
    }

    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.clone()
    }

    pub fn stats(&self) -> Stats {
        stats(&self.shared)
    }

    /// Every document id held, across indices.
    pub fn ids(&self) -> HashSet<String> {
        self.shared
            .lock()
            .indices
            .values()
            .flat_map(|i| i.docs.keys().cloned())
            .collect()
    }

    /// A stored document's source (needs `keep_sources`).
    pub fn source(&self, index: &str, id: &str) -> Option<Value> {
        self.shared
            .lock()
            .indices
            .get(index)
            .and_then(|i| i.docs.get(id))
            .and_then(|(_, s)| s.clone())
    }

    pub fn index_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.shared.lock().indices.keys().cloned().collect();
        v.sort();
        v
    }
}

fn set_faults(shared: &Shared, f: Faults) {
    shared.stall.send_replace(f.stalled);
    shared.lock().faults = f;
}

fn stats(shared: &Shared) -> Stats {
    let g = shared.lock();
    let mut s = g.stats.clone();
    s.docs = g.indices.values().map(|i| i.docs.len() as u64).sum();
    s.in_flight = shared.in_flight.load(Ordering::Relaxed);
    s
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(info))
        .route("/_bulk", post(bulk_root).put(bulk_root))
        .route("/{index}/_bulk", post(bulk_index).put(bulk_index))
        .route("/_count", get(count_all))
        .route("/{index}/_count", get(count_index))
        .route("/{index}/_doc/{id}", get(get_doc))
        .route(
            "/_test/stats",
            get(|State(s): State<Arc<Shared>>| async move { Json(stats(&s)) }),
        )
        .route(
            "/_test/faults",
            get(|State(s): State<Arc<Shared>>| async move { Json(s.lock().faults.clone()) }).put(
                |State(s): State<Arc<Shared>>, Json(f): Json<Faults>| async move {
                    set_faults(&s, f.clone());
                    Json(f)
                },
            ),
        )
        .layer(DefaultBodyLimit::disable())
        .with_state(shared)
}

/// Elasticsearch's error envelope.
fn es_error(status: StatusCode, kind: &str, reason: &str) -> Response {
    let err = json!({"type": kind, "reason": reason});
    (status, Json(json!({"error": {"root_cause": [err.clone()], "type": kind, "reason": reason}, "status": status.as_u16()})))
        .into_response()
}

async fn info() -> Json<Value> {
    Json(json!({
        "name": "es-test-server", "cluster_name": "test", "cluster_uuid": "test-uuid",
        "version": {"number": "8.15.0", "build_flavor": "default", "lucene_version": "9.11.1",
                    "minimum_wire_compatibility_version": "7.17.0", "minimum_index_compatibility_version": "7.0.0"},
        "tagline": "You Know, for Search"
    }))
}

fn matches_pattern(pattern: &str, name: &str) -> bool {
    pattern.split(',').any(|p| match p {
        "_all" | "*" => true,
        p => match p.split_once('*') {
            None => p == name,
            Some((pre, post)) => {
                name.starts_with(pre)
                    && name.ends_with(post)
                    && name.len() >= pre.len() + post.len()
            }
        },
    })
}

fn count(shared: &Shared, pattern: &str) -> Response {
    let g = shared.lock();
    let n: usize = g
        .indices
        .iter()
        .filter(|(name, _)| matches_pattern(pattern, name))
        .map(|(_, i)| i.docs.len())
        .sum();
    let any = g.indices.keys().any(|name| matches_pattern(pattern, name));
    if !any && !pattern.contains('*') && pattern != "_all" {
        return es_error(
            StatusCode::NOT_FOUND,
            "index_not_found_exception",
            &format!("no such index [{pattern}]"),
        );
    }
    Json(json!({"count": n, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}}))
        .into_response()
}

async fn count_all(State(s): State<Arc<Shared>>) -> Response {
    count(&s, "*")
}

async fn count_index(State(s): State<Arc<Shared>>, Path(index): Path<String>) -> Response {
    count(&s, &index)
}

async fn get_doc(
    State(s): State<Arc<Shared>>,
    Path((index, id)): Path<(String, String)>,
) -> Response {
    let g = s.lock();
    let Some(i) = g.indices.get(&index) else {
        return es_error(
            StatusCode::NOT_FOUND,
            "index_not_found_exception",
            &format!("no such index [{index}]"),
        );
    };
    match i.docs.get(&id) {
        Some((v, src)) => {
            Json(json!({"_index": index, "_id": id, "_version": v, "found": true, "_source": src}))
                .into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"_index": index, "_id": id, "found": false})),
        )
            .into_response(),
    }
}

async fn bulk_root(
    State(s): State<Arc<Shared>>,
    q: Query<HashMap<String, String>>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    bulk(s, None, q.0, h, body).await
}

async fn bulk_index(
    State(s): State<Arc<Shared>>,
    Path(index): Path<String>,
    q: Query<HashMap<String, String>>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    bulk(s, Some(index), q.0, h, body).await
}

struct InFlight<'a>(&'a AtomicU64);
impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

enum Gate {
    Proceed,
    Reject(Response),
}

fn check_request(s: &Shared, headers: &HeaderMap, body: &Bytes, concurrent: u64) -> Gate {
    if let Some((user, pass)) = &s.opts.basic_auth {
        use base64::Engine as _;
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        );
        if headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            != Some(want.as_str())
        {
            let mut r = es_error(
                StatusCode::UNAUTHORIZED,
                "security_exception",
                "missing authentication credentials for REST request [/_bulk]",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"security\" charset=\"UTF-8\""),
            );
            return Gate::Reject(r);
        }
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let accepted = [
        "application/json",
        "application/x-ndjson",
        "application/vnd.elasticsearch+json",
        "application/vnd.elasticsearch+x-ndjson",
    ];
    if !accepted.contains(&mime.as_str()) {
        let body =
            json!({"error": format!("Content-Type header [{ct}] is not supported"), "status": 406});
        return Gate::Reject((StatusCode::NOT_ACCEPTABLE, Json(body)).into_response());
    }
    if body.len() > s.opts.max_content_length {
        let reason = format!(
            "entity content is too long [{}] for the configured buffer limit [{}]",
            body.len(),
            s.opts.max_content_length
        );
        return Gate::Reject(es_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "content_too_long_exception",
            &reason,
        ));
    }
    let mut g = s.lock();
    g.stats.bulk_requests += 1;
    g.stats.max_in_flight = g.stats.max_in_flight.max(concurrent);
    let cap = g.faults.max_concurrent_requests;
    if g.faults.reject_requests > 0 || (cap > 0 && concurrent > cap) {
        g.faults.reject_requests = g.faults.reject_requests.saturating_sub(1);
        g.stats.rejected_requests += 1;
        return Gate::Reject(es_error(
            StatusCode::TOO_MANY_REQUESTS,
            "es_rejected_execution_exception",
            "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1, max_coordinating_and_primary_bytes=0]",
        ));
    }
    if g.faults.fail_requests > 0 {
        g.faults.fail_requests -= 1;
        g.stats.failed_requests += 1;
        return Gate::Reject(es_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable_shards_exception",
            "[logs][0] primary shard is not active Timeout: [1m]",
        ));
    }
    Gate::Proceed
}

struct Action<'a> {
    op: Op,
    index: Option<String>,
    id: Option<String>,
    source: Option<&'a [u8]>,
}

#[expect(
    clippy::result_large_err,
    reason = "the error is the HTTP response itself, built once per bad request"
)]
fn parse_actions<'a>(
    body: &'a [u8],
    path_index: Option<&str>,
) -> Result<Vec<Action<'a>>, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(es_error(
            StatusCode::BAD_REQUEST,
            "action_request_validation_exception",
            "Validation Failed: 1: no requests added;",
        ));
    }
    if body.last() != Some(&b'\n') {
        return Err(es_error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "The bulk request must be terminated by a newline [\\n]",
        ));
    }
    let mut lines = body
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace));
    let mut actions = Vec::new();
    while let Some((n, line)) = lines.next() {
        let line_no = n + 1;
        let v: Value = serde_json::from_slice(line).map_err(|e| {
            es_error(
                StatusCode::BAD_REQUEST,
                "x_content_parse_exception",
                &format!("[{line_no}:{}] {e}", e.column()),
            )
        })?;
        let malformed = |found: &str| {
            es_error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                &format!(
                    "Malformed action/metadata line [{line_no}], expected one of [create, delete, index, update] but found [{found}]"
                ),
            )
        };
        let Value::Object(map) = v else {
            return Err(malformed("START_ARRAY"));
        };
        let Some((name, meta)) = map.iter().next().filter(|_| map.len() == 1) else {
            return Err(malformed("END_OBJECT"));
        };
        let op = match name.as_str() {
            "index" => Op::Index,
            "create" => Op::Create,
            "update" => Op::Update,
            "delete" => Op::Delete,
            other => return Err(malformed(other)),
        };
        let Value::Object(meta) = meta else {
            return Err(es_error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                &format!("Malformed action/metadata line [{line_no}], expected START_OBJECT"),
            ));
        };
        let index = meta
            .get("_index")
            .and_then(Value::as_str)
            .map(String::from)
            .or_else(|| path_index.map(String::from));
        let id = match meta.get("_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        let source = if op == Op::Delete {
            None
        } else {
            match lines.next() {
                Some((_, l)) => Some(l),
                None => {
                    return Err(es_error(
                        StatusCode::BAD_REQUEST,
                        "action_request_validation_exception",
                        "Validation Failed: 1: source is missing;",
                    ));
                }
            }
        };
        if index.is_none() {
            return Err(es_error(
                StatusCode::BAD_REQUEST,
                "action_request_validation_exception",
                "Validation Failed: 1: index is missing;",
            ));
        }
        if id.is_none() && matches!(op, Op::Update | Op::Delete) {
            return Err(es_error(
                StatusCode::BAD_REQUEST,
                "action_request_validation_exception",
                "Validation Failed: 1: id is missing;",
            ));
        }
        actions.push(Action {
            op,
            index,
            id,
            source,
        });
    }
    Ok(actions)
}

/// An item-level fault decided for the next item, if any.
fn item_fault(g: &mut Inner) -> Option<ItemError> {
    g.item_counter += 1;
    let n = g.item_counter;
    let f = &mut g.faults;
    let rejected = || {
        ItemError {
        status: 429,
        kind: "es_rejected_execution_exception",
        reason: "rejected execution of primary operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, primary_operation_bytes=1, max_coordinating_and_primary_bytes=0]".into(),
    }
    };
    if f.reject_items > 0 {
        f.reject_items -= 1;
        return Some(rejected());
    }
    if f.reject_item_every > 0 && n.is_multiple_of(f.reject_item_every) {
        return Some(rejected());
    }
    if f.fail_item_every > 0 && n.is_multiple_of(f.fail_item_every) {
        return Some(ItemError {
            status: 503,
            kind: "unavailable_shards_exception",
            reason: "[0] primary shard is not active".into(),
        });
    }
    if f.max_docs_per_second > 0 {
        let now = Instant::now();
        if now.duration_since(g.window.0) >= Duration::from_secs(1) {
            g.window = (now, 0);
        }
        if g.window.1 >= g.faults.max_docs_per_second {
            return Some(rejected());
        }
        g.window.1 += 1;
    }
    None
}

async fn bulk(
    s: Arc<Shared>,
    path_index: Option<String>,
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let concurrent = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = InFlight(&s.in_flight);
    let started = Instant::now();
    let mut stall = s.stall.subscribe();
    // A stalled cluster holds requests open until released.
    let _ = stall.wait_for(|stalled| !*stalled).await;
    let delay = s.lock().faults.delay_ms;
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if let Gate::Reject(r) = check_request(&s, &headers, &body, concurrent) {
        return r;
    }
    let actions = match parse_actions(&body, path_index.as_deref()) {
        Ok(a) => a,
        Err(r) => {
            s.lock().stats.parse_errors += 1;
            return r;
        }
    };
    // Parse sources outside the lock.
    let sources: Vec<Option<Result<Value, String>>> = actions
        .iter()
        .map(|a| {
            a.source.map(|src| {
                serde_json::from_slice::<Value>(src)
                    .map_err(|e| format!("[1:{}] failed to parse: {e}", e.column()))
            })
        })
        .collect();
    let keep = s.opts.keep_sources;
    let mut items = Vec::with_capacity(actions.len());
    let mut errors = false;
    {
        let mut g = s.lock();
        for (a, src) in actions.into_iter().zip(sources) {
            g.stats.items += 1;
            let index = a.index.unwrap_or_default();
            let id = a.id.unwrap_or_else(|| {
                g.auto_id += 1;
                format!("auto-{:012}", g.auto_id)
            });
            let outcome = if let Some(fault) = item_fault(&mut g) {
                if fault.status == 429 {
                    g.stats.rejected_items += 1;
                } else {
                    g.stats.failed_items += 1;
                }
                Err(fault)
            } else if let Err(reason) = store::validate_index_name(&index) {
                Err(ItemError {
                    status: 400,
                    kind: "invalid_index_name_exception",
                    reason,
                })
            } else {
                match src {
                    Some(Err(reason)) => Err(ItemError {
                        status: 400,
                        kind: "document_parsing_exception",
                        reason,
                    }),
                    src => {
                        let value = src.and_then(Result::ok);
                        g.indices.entry(index.clone()).or_default().apply(
                            a.op,
                            &id,
                            value.as_ref(),
                            keep,
                        )
                    }
                }
            };
            let item = match outcome {
                Ok(applied) => {
                    match (a.op, applied.result) {
                        (_, "created") => g.stats.created += 1,
                        (Op::Index, "updated") => {
                            g.stats.updated += 1;
                            g.stats.overwrites += 1;
                        }
                        (_, "updated") => g.stats.updated += 1,
                        (_, "deleted") => g.stats.deleted += 1,
                        _ => {}
                    }
                    json!({"_index": index, "_id": id, "_version": applied.version, "result": applied.result,
                           "_shards": {"total": 2, "successful": 1, "failed": 0},
                           "_seq_no": applied.seq_no, "_primary_term": 1, "status": applied.status})
                }
                Err(e) => {
                    errors = true;
                    if e.status == 409 {
                        g.stats.conflicts += 1;
                    }
                    json!({"_index": index, "_id": id, "status": e.status, "error": e.to_json(&index)})
                }
            };
            items.push(json!({ a.op.name(): item }));
        }
    }
    let response =
        json!({"took": started.elapsed().as_millis() as u64, "errors": errors, "items": items});
    let response = match query.get("filter_path") {
        Some(spec) => filter::apply(response, &filter::parse(spec)),
        None => response,
    };
    let drop_connection = {
        let mut g = s.lock();
        let d = g.faults.drop_connections > 0;
        if d {
            g.faults.drop_connections -= 1;
            g.stats.dropped_connections += 1;
        }
        d
    };
    if drop_connection {
        // The work is done but the client never learns it: the at-least-once path has to replay.
        let broken = futures::stream::once(async {
            Err::<Bytes, std::io::Error>(std::io::Error::other(
                "connection dropped by fault injection",
            ))
        });
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from_stream(broken))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    Json(response).into_response()
}
