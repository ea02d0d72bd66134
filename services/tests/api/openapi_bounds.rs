//! The OpenAPI document states what the server enforces: every numeric bound and length it states on the
//! spec's fields and on query parameters is probed at the bound (not refused for that field) and just past
//! it (a 4xx naming the field), and a spec at every stated minimum, and one at every maximum, is accepted.

use reqwest::Method;
use serde_json::{Value, json};

use autoscaler::tenancy::{
    DEFAULT_TEAM,
    secrets::{DEFAULT_ENV_PREFIX, env_prefix},
};

use crate::harness::{TestApp, error_body, fields};

const SCHEMA_PREFIX: &str = "#/components/schemas/";

/// One bound the document states: where (a dotted path into the spec, or a query parameter), which
/// JSON Schema keyword, its number, and whether the value is an integer.
#[derive(Debug, Clone)]
struct Bound {
    path: String,
    keyword: &'static str,
    value: f64,
    integer: bool,
}

const KEYWORDS: [&str; 6] = [
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
];

impl Bound {
    fn is_length(&self) -> bool {
        self.keyword.ends_with("Length")
    }

    fn is_lower(&self) -> bool {
        matches!(self.keyword, "minimum" | "exclusiveMinimum" | "minLength")
    }

    /// The closest value the bound allows and the closest it forbids.
    fn inside_and_past(&self) -> (f64, f64) {
        let step = if self.integer || self.is_length() {
            1.0
        } else {
            0.001
        };
        let v = self.value;
        match self.keyword {
            "minimum" | "minLength" => (v, v - step),
            "maximum" | "maxLength" => (v, v + step),
            "exclusiveMinimum" => (v + step, v),
            "exclusiveMaximum" => (v - step, v),
            other => unreachable!("{other}"),
        }
    }
}

async fn document(app: &TestApp) -> Value {
    app.client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json")
}

/// Every bound stated in `schema` and below it, following references and every alternative of a
/// `oneOf`/`anyOf`/`allOf` (a tagged variant's fields sit at the same path as its tag).
fn collect(doc: &Value, schema: &Value, path: &str, out: &mut Vec<Bound>) {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.strip_prefix(SCHEMA_PREFIX).expect("a schema ref");
        return collect(doc, &doc["components"]["schemas"][name], path, out);
    }
    let integer = match &schema["type"] {
        Value::String(t) => t == "integer",
        Value::Array(types) => types.iter().any(|t| t == "integer"),
        _ => false,
    };
    for keyword in KEYWORDS {
        if let Some(value) = schema[keyword].as_f64() {
            out.push(Bound {
                path: path.to_owned(),
                keyword,
                value,
                integer,
            });
        }
    }
    for composite in ["oneOf", "anyOf", "allOf"] {
        for alternative in schema[composite].as_array().into_iter().flatten() {
            collect(doc, alternative, path, out);
        }
    }
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        let child = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        collect(doc, property, &child, out);
    }
}

fn spec_bounds(doc: &Value) -> Vec<Bound> {
    let mut bounds = Vec::new();
    collect(
        doc,
        &json!({"$ref": format!("{SCHEMA_PREFIX}ClusterSpec")}),
        "",
        &mut bounds,
    );
    bounds
}

/// The default team's secret prefix: the harness's plain token belongs to it.
fn secret_env(suffix: &str) -> String {
    format!("{}{suffix}", env_prefix(DEFAULT_ENV_PREFIX, DEFAULT_TEAM))
}

/// A valid spec with every optional field that has a stated bound present, and every cross-field rule
/// (min_scale ≤ max_scale, cpu_low < cpu_high, the windows) as loose as it goes, so that each field can
/// be moved to either of its bounds alone.
fn full_spec() -> Value {
    json!({
        "name": "bounds",
        "target": {
            "kind": "flink",
            "reactive": false,
            "control_url": "http://127.0.0.1:8081",
            "control_token": {"env": secret_env("CONTROL")},
            "flink": {"job_name": "job", "jar_id": "abc12_job.jar"},
            "scale_unit": {"unit": "task_managers", "slots_per_task_manager": 1}
        },
        "metrics": {
            "prometheus_url": "http://prometheus:9090",
            "selector": {"pipeline": "bounds"},
            "queries": {}
        },
        "git": {
            "repository": "https://git.example.com/platform/gitops.git",
            "branch": "main",
            "path": "pipelines/bounds/values.yaml",
            "key": "spec.replicas",
            "credentials": {"env": secret_env("GIT")}
        },
        "write_back": {
            "mode": "pull_request",
            "github_repository": "platform/gitops",
            "token": {"env": secret_env("GITHUB")}
        },
        "argocd": {
            "server": "https://argocd.example.com",
            "application": "bounds",
            "project": "streaming",
            "token": {"env": secret_env("ARGOCD")}
        },
        "policy": {
            "min_scale": 1,
            "max_scale": 10000,
            "cpu_high": 1.0,
            "cpu_low": 0.0,
            "lag_seconds_high": 300.0,
            "lag_seconds_low": 0.0,
            "scale_up_window_seconds": 30,
            "scale_down_window_seconds": 604800,
            "cooldown_seconds": 0,
            "catch_up_seconds": 30,
            "predictive": {"enabled": true, "lead_time_seconds": 900}
        }
    })
}

/// The full spec to probe `path` in: a field of recommend mode's `comment_on` needs that mode, since one
/// tagged variant's fields cannot sit beside another's (the full spec's `write_back` is a pull request).
fn full_spec_for(path: &str) -> Value {
    let mut spec = full_spec();
    if path.starts_with("write_back.comment_on.") {
        spec["write_back"] = json!({
            "mode": "recommend",
            "comment_on": {
                "github_repository": "platform/gitops",
                "token": {"env": secret_env("GITHUB")}
            }
        });
    }
    spec
}

/// A DNS subdomain of exactly `length` characters: labels of 63 letters joined by dots.
fn subdomain(length: usize) -> String {
    (0..length)
        .map(|i| if i % 64 == 63 { '.' } else { 'a' })
        .collect()
}

/// A string of `length` characters that is valid for `path` in every other respect. A length bound on a
/// field this does not know fails the test, so that a new bound gets a probe.
fn string_of(path: &str, length: usize) -> String {
    let leaf = path.rsplit('.').next().unwrap_or(path);
    match path {
        "name" => "a".repeat(length),
        "git.branch" => "b".repeat(length),
        "argocd.application" | "argocd.project" => subdomain(length),
        "target.flink.job_name" => "j".repeat(length),
        _ if path.starts_with("metrics.queries.") => "x".repeat(length),
        _ if leaf == "env" => {
            let prefix = secret_env("");
            format!(
                "{prefix}{}",
                "X".repeat(length.saturating_sub(prefix.len()))
            )
        }
        _ => panic!("the document states a length on {path}: teach string_of a valid value"),
    }
}

fn value_for(bound: &Bound, number: f64) -> Value {
    if bound.is_length() {
        json!(string_of(&bound.path, number as usize))
    } else if bound.integer {
        json!(number as i64)
    } else {
        json!(number)
    }
}

/// `spec` with the field at the dotted `path` set to `value` (its parent must exist).
fn with(mut spec: Value, path: &str, value: Value) -> Value {
    let (parent, key) = match path.rsplit_once('.') {
        Some((parent, key)) => (format!("/{}", parent.replace('.', "/")), key),
        None => (String::new(), path),
    };
    spec.pointer_mut(&parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("{parent} is an object of the full spec"))
        .insert(key.to_owned(), value);
    spec
}

/// Whether an error names `path` or the field holding it (a secret reference is named as a whole:
/// `git.credentials` for `git.credentials.env`).
fn names(error: &Value, path: &str) -> bool {
    fields(error)
        .iter()
        .any(|f| f == path || path.starts_with(&format!("{f}.")))
}

async fn subscribe(app: &TestApp, spec: &Value) -> reqwest::Response {
    app.post_json("/api/v1/clusters", spec).await
}

/// Removes what a probe subscribed, so the next probe can take the same name.
async fn unsubscribe(app: &TestApp, spec: &Value) {
    let name = spec["name"].as_str().expect("a name");
    let response = app
        .authed(Method::DELETE, &format!("/api/v1/clusters/{name}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 204, "unsubscribe {name}");
}

/// A spec of twelve 4 KiB queries and 253-character names is larger than the harness's usual limit; the
/// service's default is 64 KiB.
const SERVICE_BODY_LIMIT: usize = 64 * 1024;

#[tokio::test]
async fn every_stated_bound_of_the_spec_holds_at_the_bound_and_is_refused_past_it() {
    let app = TestApp::spawn_with_body_limit(SERVICE_BODY_LIMIT).await;
    let doc = document(&app).await;
    let bounds = spec_bounds(&doc);
    assert!(bounds.len() > 20, "the spec states its bounds: {bounds:?}");

    for bound in &bounds {
        let (inside, past) = bound.inside_and_past();
        let at = with(
            full_spec_for(&bound.path),
            &bound.path,
            value_for(bound, inside),
        );
        let response = subscribe(&app, &at).await;
        if response.status() == 201 {
            unsubscribe(&app, &at).await;
        } else {
            let error = error_body(response, 422).await;
            assert!(
                !names(&error, &bound.path),
                "{} = {inside} ({} {}) is refused: {error}",
                bound.path,
                bound.keyword,
                bound.value
            );
        }

        if bound.is_length() && past < 0.0 {
            continue;
        }
        let beyond = with(
            full_spec_for(&bound.path),
            &bound.path,
            value_for(bound, past),
        );
        let response = subscribe(&app, &beyond).await;
        let status = response.status().as_u16();
        assert!(
            (400..500).contains(&status),
            "{} = {past} ({} {}) is answered {status}",
            bound.path,
            bound.keyword,
            bound.value
        );
        let error = error_body(response, status).await;
        assert!(
            names(&error, &bound.path),
            "{} = {past} ({} {}) is refused without naming the field: {error}",
            bound.path,
            bound.keyword,
            bound.value
        );
    }
    assert_eq!(app.cluster_count().await, 0, "nothing stayed");
}

#[tokio::test]
async fn a_spec_at_every_stated_minimum_and_one_at_every_maximum_are_accepted() {
    let app = TestApp::spawn_with_body_limit(SERVICE_BODY_LIMIT).await;
    let doc = document(&app).await;
    let bounds = spec_bounds(&doc);
    // Each write-back variant in turn: the pull request's fields, then recommend mode's `comment_on`.
    for (lower, recommend) in [(true, false), (false, false), (true, true), (false, true)] {
        // The full spec's cross-field rules hold at either end: at the minimum, max_scale 1 meets
        // partition_count 1 and cpu_low 0 stays below cpu_high 0.001; at the maximum, min_scale meets
        // max_scale at 10000, cpu_low 0.999 stays below cpu_high 1 and both windows are 7 days.
        let mut spec = full_spec_for(if recommend {
            "write_back.comment_on."
        } else {
            ""
        });
        let in_variant = |b: &&Bound| {
            !b.path.starts_with("write_back.")
                || b.path.starts_with("write_back.comment_on.") == recommend
        };
        for bound in bounds
            .iter()
            .filter(|b| b.is_lower() == lower)
            .filter(in_variant)
        {
            let (inside, _) = bound.inside_and_past();
            spec = with(spec, &bound.path, value_for(bound, inside));
        }
        let response = subscribe(&app, &spec).await;
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        assert_eq!(
            status,
            201,
            "the spec at every stated {}: {body}\n{spec}",
            if lower { "minimum" } else { "maximum" }
        );
        unsubscribe(&app, &spec).await;
    }
}

#[tokio::test]
async fn every_stated_bound_of_a_query_parameter_holds_at_the_bound_and_is_refused_past_it() {
    let app = TestApp::spawn().await;
    app.subscribe(&crate::harness::spec("paged")).await;
    let doc = document(&app).await;
    let mut probed = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let Some(parameters) = item["get"]["parameters"].as_array() else {
            continue;
        };
        let route = path.replace("{name}", "paged");
        for parameter in parameters.iter().filter(|p| p["in"] == "query") {
            let name = parameter["name"].as_str().expect("a name");
            let mut bounds = Vec::new();
            collect(&doc, &parameter["schema"], name, &mut bounds);
            for bound in bounds {
                probed += 1;
                let (inside, past) = bound.inside_and_past();
                let at = app
                    .get(&format!("{route}?{name}={}", value_for(&bound, inside)))
                    .await;
                assert_eq!(at.status(), 200, "{route}?{name}={inside}");
                let beyond = app
                    .get(&format!("{route}?{name}={}", value_for(&bound, past)))
                    .await;
                let error = error_body(beyond, 400).await;
                assert_eq!(fields(&error), [name], "{route}?{name}={past}: {error}");
            }
        }
    }
    // limit's minimum and maximum on clusters, decisions and audit.
    assert_eq!(probed, 6, "the paged routes state their bounds");
}

#[tokio::test]
async fn the_put_states_that_the_body_name_is_the_path_name() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let put = &doc["paths"]["/api/v1/clusters/{name}"]["put"];
    let stated = put.to_string();
    assert!(
        stated.contains("must equal the path"),
        "the PUT says the body's name must be the path's: {put}"
    );

    app.subscribe(&crate::harness::spec("kept")).await;
    let renamed = crate::harness::spec("other");
    let error = error_body(app.put_json("/api/v1/clusters/kept", &renamed).await, 422).await;
    assert_eq!(fields(&error), ["name"]);
}
