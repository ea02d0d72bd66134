//! A property test over the API's inputs, against the real router and Postgres: spec bodies (valid specs
//! with fields replaced by arbitrary JSON, arbitrary JSON, arbitrary bytes), query parameters, path
//! names, and headers (tokens of every team and role, broken ones, content types). Whatever arrives, the
//! answer is never a 5xx.

use proptest::{prelude::*, test_runner::TestRunner};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TOKEN, TestApp, spec, team_token};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!("../../etc/passwd")),
        Just(json!({"env": "DATABASE_URL"})),
        Just(json!({"file": "/etc/shadow"})),
        Just(json!("http://169.254.169.254/latest/meta-data")),
        Just(json!("file:///etc")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Paths inside a spec to replace with arbitrary JSON.
const SPEC_PATHS: [&str; 16] = [
    "/name",
    "/target",
    "/target/kind",
    "/metrics/prometheus_url",
    "/metrics/selector",
    "/git/repository",
    "/git/path",
    "/git/key",
    "/git/credentials",
    "/argocd/server",
    "/argocd/token",
    "/policy/max_scale",
    "/policy/min_scale",
    "/policy/cooldown_seconds",
    "/write_back",
    "/scale_unit",
];

#[derive(Debug, Clone)]
enum Body {
    None,
    Spec { path: usize, value: Value },
    Json(Value),
    Bytes(Vec<u8>),
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        Just(Body::None),
        (0..SPEC_PATHS.len(), json_value()).prop_map(|(path, value)| Body::Spec { path, value }),
        json_value().prop_map(Body::Json),
        prop::collection::vec(any::<u8>(), 0..200).prop_map(Body::Bytes),
    ]
}

fn token() -> impl Strategy<Value = Option<String>> {
    let teams = ["team-a", "team-b"];
    let roles = ["viewer", "editor", "admin", "engine"];
    prop_oneof![
        Just(Some(TOKEN.to_owned())),
        (0..2usize, 0..4usize).prop_map(move |(t, r)| Some(team_token(teams[t], roles[r]))),
        Just(None),
        ".{0,80}".prop_map(Some),
    ]
}

#[derive(Debug, Clone)]
struct Request {
    other_method: Option<usize>,
    route: usize,
    name: String,
    query: Vec<(String, String)>,
    token: Option<String>,
    raw_authorization: Option<String>,
    content_type: Option<String>,
    body: Body,
}

const METHODS: [Method; 4] = [Method::GET, Method::POST, Method::PUT, Method::DELETE];
/// The routes with the method each takes; a tenth of the requests use another method.
const ROUTES: [(usize, &str); 14] = [
    (1, "/api/v1/clusters"),
    (1, "/api/v1/clusters"),
    (0, "/api/v1/clusters"),
    (0, "/api/v1/clusters/{}"),
    (2, "/api/v1/clusters/{}"),
    (2, "/api/v1/clusters/{}"),
    (3, "/api/v1/clusters/{}"),
    (1, "/api/v1/clusters/{}/pause"),
    (1, "/api/v1/clusters/{}/resume"),
    (0, "/api/v1/clusters/{}/decisions"),
    (1, "/api/v1/clusters/{}/evaluate"),
    (0, "/api/v1/decisions/{}"),
    (0, "/api/v1/audit"),
    (0, "/ui/clusters/{}"),
];

fn request() -> impl Strategy<Value = Request> {
    let query_key = prop_oneof![
        Just("limit".to_owned()),
        Just("after".to_owned()),
        Just("before".to_owned()),
        Just("cluster".to_owned()),
        "[a-z]{1,6}",
    ];
    let query_value = prop_oneof![
        Just("0".to_owned()),
        Just("501".to_owned()),
        Just("-1".to_owned()),
        Just("99999999999999999999".to_owned()),
        ".{0,30}",
    ];
    (
        prop::option::weighted(0.1, 0..METHODS.len()),
        0..ROUTES.len(),
        prop_oneof![
            Just("alpha".to_owned()),
            Just("b-orders".to_owned()),
            ".{1,40}"
        ],
        prop::collection::vec((query_key, query_value), 0..3),
        token(),
        prop::option::weighted(0.1, ".{0,60}"),
        prop::option::weighted(
            0.9,
            prop_oneof![Just("application/json".to_owned()), ".{0,30}"],
        ),
        body(),
    )
        .prop_map(
            |(other_method, route, name, query, token, raw_authorization, content_type, body)| {
                Request {
                    other_method,
                    route,
                    name,
                    query,
                    token,
                    raw_authorization,
                    content_type,
                    body,
                }
            },
        )
}

async fn send(app: &TestApp, request: &Request) -> u16 {
    let name: String = url::form_urlencoded::byte_serialize(request.name.as_bytes()).collect();
    let (method, path) = ROUTES[request.route];
    let path = path.replace("{}", &name);
    let method = METHODS[request.other_method.unwrap_or(method)].clone();
    let mut builder = app
        .client
        .request(method, app.url(&path))
        .query(&request.query);
    if let Some(token) = &request.token
        && let Ok(value) = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
    {
        builder = builder.header("authorization", value);
    }
    if let Some(raw) = &request.raw_authorization
        && let Ok(value) = reqwest::header::HeaderValue::from_str(raw)
    {
        builder = builder.header("authorization", value);
    }
    if let Some(content_type) = &request.content_type
        && let Ok(value) = reqwest::header::HeaderValue::from_str(content_type)
    {
        builder = builder.header("content-type", value);
    }
    let bytes = match &request.body {
        Body::None => None,
        Body::Spec { path, value } => {
            let mut body = spec(&request.name);
            if let Some(slot) = body.pointer_mut(SPEC_PATHS[*path]) {
                *slot = value.clone();
            } else if let Some((parent, key)) = SPEC_PATHS[*path].rsplit_once('/')
                && let Some(Value::Object(map)) = body.pointer_mut(parent)
            {
                map.insert(key.to_owned(), value.clone());
            }
            Some(serde_json::to_vec(&body).expect("json"))
        }
        Body::Json(value) => Some(serde_json::to_vec(value).expect("json")),
        Body::Bytes(bytes) => Some(bytes.clone()),
    };
    if let Some(bytes) = bytes {
        builder = builder.body(bytes);
    }
    builder
        .send()
        .await
        .expect("the server answers")
        .status()
        .as_u16()
}

#[test]
fn no_input_gets_a_server_error() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let app = runtime.block_on(async {
        let app = TestApp::spawn().await;
        // Something to find: a cluster of team B and one of the default team.
        let response = app
            .client
            .post(app.url("/api/v1/clusters"))
            .bearer_auth(team_token("team-b", "editor"))
            .json(&spec("b-orders"))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 201);
        app.subscribe(&spec("alpha")).await;
        app
    });
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    runner
        .run(&request(), |request| {
            let status = runtime.block_on(send(&app, &request));
            *statuses.borrow_mut().entry(status).or_default() += 1;
            prop_assert!(status < 500, "{status} for {request:?}");
            Ok(())
        })
        .expect("no 5xx");
    eprintln!("statuses over {cases} cases: {:?}", statuses.borrow());
}
