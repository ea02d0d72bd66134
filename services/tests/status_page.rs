//! The status page in a real browser: headless Chromium loads each page of the real router, served on
//! a loopback port over a seeded Postgres database; the tests read the DOM Chromium built and take a
//! screenshot of each page (`AUTOSCALER_UPDATE_SCREENSHOTS=1` copies them to docs/screenshots/, where the
//! README shows them).
//!
//! Chromium's command line cannot carry a cookie, so the session is obtained by a real login (the form
//! POST, over HTTP), and the server Chromium talks to adds that cookie to each request, as the browser
//! would after the login. The login itself, the redirect without a session and the cookie's attributes
//! are checked over HTTP.

#[path = "common/database.rs"]
mod database;

use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use std::sync::Arc;
use tokio::process::Command;

use autoscaler::{
    api::{self, AppState},
    cluster::{ClusterSpec, ValidationContext},
    decide::{DecisionInputs, Direction},
    manager::Evaluator,
    metrics::Metrics,
    storage::{DecisionStatus, NewDecision, Sample, Storage, Transition},
    tenancy::{TokenStore, sha256_hex},
};
use axum::http::HeaderValue;
use chrono::{DateTime, Duration, Utc};
use database::TestDatabase;
use serde_json::json;

const TOKEN: &str = "status-page-token-0123456789";
/// A viewer of another team than the one the seeded clusters belong to.
const OTHER_TEAM: &str = "other-team-viewer-token-0123456789";

/// A token file with one viewer of `team-b`; kept for the test process's life.
fn other_team_tokens() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("status-tokens-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("tokens.yaml");
    std::fs::write(
        &path,
        format!(
            "tokens:\n  - {{name: b-viewer, team: team-b, role: viewer, sha256: {}}}\n",
            sha256_hex(OTHER_TEAM)
        ),
    )
    .expect("write");
    path
}
/// Text no page may turn into markup.
const HOSTILE: &str =
    r#"<img src=x onerror="document.title='owned'"><script>document.title='owned'</script>"#;

struct Site {
    /// The router as a browser with a session sees it.
    browser_url: String,
    /// The router with no session added.
    plain_url: String,
    storage: Storage,
    shots: tempfile::TempDir,
    _database: TestDatabase,
}

fn spec(name: &str, max_scale: u32, write_back: serde_json::Value) -> ClusterSpec {
    let spec: ClusterSpec = serde_json::from_value(json!({
        "name": name,
        "target": {"kind": "engine"},
        "metrics": {"prometheus_url": "http://127.0.0.1:9", "selector": {"pipeline": name}},
        "git": {"repository": "https://github.com/platform/gitops.git",
                "path": format!("pipelines/{name}/scale.yaml"), "key": "spec.replicas"},
        "write_back": write_back,
        "argocd": {"server": "https://argocd.example.com", "application": name},
        "policy": {"max_scale": max_scale, "lag_seconds_high": 60, "lag_seconds_low": 10}
    }))
    .expect("a valid spec");
    spec.with_resolved_defaults()
}

/// Six hours of a pipeline that fell behind at 1000 records/s on 2 instances and caught up on 4.
fn samples(cluster: i64, now: DateTime<Utc>) -> Vec<(i64, Sample)> {
    (0..720_u32)
        .map(|i| {
            let at = now - Duration::seconds(30 * i64::from(720 - i));
            let minutes = f64::from(i) / 2.0;
            let (load, scale) = match minutes {
                m if m < 150.0 => (400.0 + 50.0 * (m / 10.0).sin(), 2.0),
                m if m < 200.0 => (1000.0, 2.0),
                _ => (900.0, 4.0),
            };
            let capacity = scale * 300.0;
            let lag = match minutes {
                m if (150.0..200.0).contains(&m) => (m - 150.0) * 8.0,
                m if (200.0..240.0).contains(&m) => (240.0 - m) * 10.0,
                _ => 2.0,
            };
            let sample = Sample {
                sampled_at: at,
                cpu_load: Some((load / capacity).min(1.0)),
                lag_records: Some(lag * load),
                lag_seconds: Some(lag),
                records_in: Some(load),
                records_out: Some(load.min(capacity)),
                scale: Some(scale),
            };
            (cluster, sample)
        })
        .collect()
}

async fn backdate(
    storage: &Storage,
    id: i64,
    created: DateTime<Utc>,
    took: Duration,
    steps: serde_json::Value,
) {
    sqlx::query(
        "update decisions set created_at = $2, updated_at = $3, \
         finished_at = case when finished_at is null then null else $3 end, steps = $4 where id = $1",
    )
    .bind(id)
    .bind(created)
    .bind(created + took)
    .bind(sqlx::types::Json(steps))
    .execute(storage.pool())
    .await
    .expect("backdate a decision");
}

/// Two clusters with history: `logs` scaled up through a pull request (applied), earlier a failed
/// attempt; `orders` paused, with a decision in flight and no samples.
async fn seed(storage: &Storage) -> (i64, i64) {
    let now = Utc::now();
    let pull_request = json!({"mode": "pull_request", "github_repository": "platform/gitops",
                              "token": {"env": "GITHUB_TOKEN"}});
    let logs = storage
        .insert_cluster(
            &spec("logs", 8, pull_request),
            autoscaler::storage::Actor::OPERATOR,
        )
        .await
        .expect("logs");
    let orders = storage
        .insert_cluster(
            &spec("orders", 6, json!({"mode": "commit"})),
            autoscaler::storage::Actor::OPERATOR,
        )
        .await
        .expect("orders");
    storage
        .set_cluster_paused("orders", true, autoscaler::storage::Actor::OPERATOR)
        .await
        .expect("pause");
    storage
        .insert_samples(&samples(logs.id, now))
        .await
        .expect("samples");

    let new = |cluster: &autoscaler::storage::ClusterRecord, rule: &str| NewDecision {
        cluster_id: cluster.id,
        cluster_name: cluster.spec.name.clone(),
        rule: rule.to_owned(),
        inputs: DecisionInputs::bare(Direction::Up, "lag 120 s", Utc::now(), 300),
        from_scale: Some(2),
    };
    let failed = storage
        .insert_pending_decision(&new(&logs, "lag_increasing"))
        .await
        .expect("insert");
    storage
        .finish_decision(failed.id, DecisionStatus::Failed, Some(HOSTILE))
        .await
        .expect("fail");
    let at = now - Duration::minutes(215);
    backdate(
        storage,
        failed.id,
        at,
        Duration::seconds(40),
        json!([
            {"at": at + Duration::seconds(5), "step": "planned", "detail": {"to": 4}},
            {"at": at + Duration::seconds(40), "step": "failed", "detail": {"reason": HOSTILE}},
        ]),
    )
    .await;

    let applied = storage
        .insert_pending_decision(&new(&logs, "lag_above_threshold"))
        .await
        .expect("insert");
    // A plan is recorded by the worker that runs the decision.
    storage
        .transition(
            applied.id,
            &Transition::new(DecisionStatus::Pending, DecisionStatus::Running),
        )
        .await
        .expect("running");
    storage
        .record_plan(
            applied.id,
            &json!({"method": {"regression": {"r2": 0.962, "samples": 118}},
                                          "current_scale": 2, "forecast_input": 1012.5,
                                          "required_throughput": 1180.0, "scale": 4}),
            Some(2),
            Some(4),
        )
        .await
        .expect("plan");
    let write_back = json!({"mode": "pull_request", "repository": "https://github.com/platform/gitops.git",
        "github_repository": "platform/gitops", "branch": "autoscaler/logs", "base": "main",
        "path": "pipelines/logs/scale.yaml", "commit": "9f2c4e1a7b3d", "pull_request": 42,
        "url": "https://github.com/platform/gitops/pull/42"});
    let sync = json!({"application": "logs", "revision": "9f2c4e1a7b3d", "phase": "Succeeded", "health": "Healthy"});
    // Through the lifecycle, as a pull request's decision goes.
    for change in [
        Transition::new(DecisionStatus::Running, DecisionStatus::PrOpen).write_back(&write_back),
        Transition::new(DecisionStatus::PrOpen, DecisionStatus::Merged),
        Transition::new(DecisionStatus::Merged, DecisionStatus::Syncing),
        Transition::new(DecisionStatus::Syncing, DecisionStatus::Synced).sync(&sync),
        Transition::new(DecisionStatus::Synced, DecisionStatus::Applied),
    ] {
        storage
            .transition(applied.id, &change)
            .await
            .expect("applied");
    }
    let at = now - Duration::minutes(205);
    backdate(storage, applied.id, at, Duration::minutes(6), json!([
        {"at": at + Duration::seconds(3), "step": "planned", "detail": {"from": 2, "to": 4}},
        {"at": at + Duration::seconds(9), "step": "pr_opened", "detail": {"pull_request": 42}},
        {"at": at + Duration::seconds(200), "step": "merged", "detail": {"by": "a-reviewer"}},
        {"at": at + Duration::seconds(230), "step": "synced", "detail": {"revision": "9f2c4e1a7b3d"}},
        {"at": at + Duration::seconds(360), "step": "applied", "detail": {"running": 4}},
    ])).await;

    let pending = storage
        .insert_pending_decision(&new(&orders, "sustained_high_cpu"))
        .await
        .expect("insert");
    (applied.id, pending.id)
}

/// Adds the session cookie to every request, as the browser does once logged in.
async fn serve(router: axum::Router, cookie: Option<String>) -> String {
    let router = match cookie {
        Some(cookie) => router.layer(axum::middleware::from_fn(
            move |mut request: axum::extract::Request, next: axum::middleware::Next| {
                let cookie = cookie.clone();
                async move {
                    request.headers_mut().insert(
                        "cookie",
                        HeaderValue::from_str(&cookie).expect("a header value"),
                    );
                    next.run(request).await
                }
            },
        )),
        None => router,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    url
}

async fn site() -> (Site, i64, i64) {
    let database = TestDatabase::new();
    let storage = Storage::connect(&database.url).await.expect("connect");
    storage.migrate().await.expect("migrate");
    let (applied, pending) = seed(&storage).await;
    let state = AppState {
        storage: storage.clone(),
        tokens: Arc::new(
            TokenStore::new(&[TOKEN.to_owned()], &[], Some(other_team_tokens())).expect("tokens"),
        ),
        validation: ValidationContext::default(),
        metrics: Arc::new(Metrics::default()),
        max_body_bytes: 64 * 1024,
        evaluator: Arc::new(Evaluator {
            storage: storage.clone(),
            scrape_interval_seconds: 30,
        }),
        public_url: None,
    };
    let plain_url = serve(api::router(state.clone()), None).await;
    let cookie = login(&plain_url).await;
    let browser_url = serve(api::router(state), Some(cookie)).await;
    let site = Site {
        browser_url,
        plain_url,
        storage,
        shots: tempfile::tempdir().expect("a screenshot directory"),
        _database: database,
    };
    (site, applied, pending)
}

/// The login form's POST; returns the `name=value` of the session cookie it sets.
async fn login(url: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = client
        .post(format!("{url}/ui/login"))
        .form(&[("token", TOKEN), ("next", "/ui/clusters/logs")])
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 303, "a login redirects");
    assert_eq!(response.headers()["location"], "/ui/clusters/logs");
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    set_cookie.split(';').next().expect("name=value").to_owned()
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("chromium"), PathBuf::from)
}

fn chromium_command(profile: &Path) -> Command {
    let mut command = Command::new(chromium());
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// How long one Chromium run may take; it is killed after that.
const CHROMIUM_DEADLINE: StdDuration = StdDuration::from_secs(90);

/// Runs Chromium without blocking the runtime that serves the pages it loads.
async fn run_chromium(mut command: Command, what: &str) -> std::process::Output {
    command.kill_on_drop(true);
    tokio::time::timeout(CHROMIUM_DEADLINE, command.output())
        .await
        .unwrap_or_else(|_| panic!("{what} took over {CHROMIUM_DEADLINE:?}"))
        .expect("chromium runs (scripts/setup.sh installs the chromium package)")
}

/// The DOM Chromium built for `url`, serialized.
async fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().expect("a profile");
    let mut command = chromium_command(profile.path());
    command.arg("--dump-dom").arg(url);
    let output = run_chromium(command, &format!("chromium --dump-dom {url}")).await;
    assert!(
        output.status.success(),
        "chromium --dump-dom {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 DOM")
}

/// A PNG of `url` at `width`×`height`, kept in the test's directory and, when asked, in docs/.
async fn screenshot(site: &Site, url: &str, name: &str, (width, height): (u32, u32)) {
    let profile = tempfile::tempdir().expect("a profile");
    let path = site.shots.path().join(format!("{name}.png"));
    let mut command = chromium_command(profile.path());
    command
        .arg(format!("--screenshot={}", path.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(url);
    let output = run_chromium(command, &format!("chromium --screenshot {url}")).await;
    assert!(
        output.status.success(),
        "chromium --screenshot {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let png = std::fs::read(&path).expect("the screenshot was written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let png_width = u32::from_be_bytes(png[16..20].try_into().expect("4 bytes"));
    assert_eq!(png_width, width, "the screenshot's width");
    if std::env::var_os("AUTOSCALER_UPDATE_SCREENSHOTS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&docs).expect("docs/screenshots");
        std::fs::copy(&path, docs.join(format!("{name}.png"))).expect("copy the screenshot");
    }
}

#[track_caller]
fn contains(dom: &str, wanted: &str) {
    assert!(dom.contains(wanted), "{wanted:?} is not in the DOM:\n{dom}");
}

/// The escaped hostile text is shown as text; none of it became an element or ran.
#[track_caller]
fn inert(dom: &str) {
    assert!(
        !dom.contains("<img src=\"x\""),
        "an injected element:\n{dom}"
    );
    assert!(
        !dom.contains("<script>document.title"),
        "an injected script:\n{dom}"
    );
    assert!(
        !dom.contains("<title>owned"),
        "an injected script ran:\n{dom}"
    );
}

#[tokio::test]
async fn the_cluster_list_shows_each_clusters_state_at_a_glance() {
    let (site, applied, pending) = site().await;
    let url = format!("{}/ui", site.browser_url);
    let dom = dump_dom(&url).await;
    contains(&dom, "<title>Clusters · autoscaler</title>");
    contains(&dom, r#"<tr data-cluster="logs">"#);
    contains(&dom, r#"<tr data-cluster="orders">"#);
    let logs = dom
        .split(r#"<tr data-cluster="logs">"#)
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .expect("the logs row");
    contains(logs, r#"<a href="/ui/clusters/logs">logs</a>"#);
    contains(logs, "4 / 8");
    contains(
        logs,
        &format!(r#"<a href="/ui/decisions/{applied}">#{applied}</a>"#),
    );
    contains(logs, r#"<span class="status applied">applied</span>"#);
    contains(logs, "2.0s");
    contains(logs, "<svg");
    let orders = dom
        .split(r#"<tr data-cluster="orders">"#)
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .expect("the orders row");
    contains(orders, r#"<span class="paused">paused</span>"#);
    contains(orders, &format!("#{pending}"));
    contains(orders, r#"<span class="status pending">pending</span>"#);
    contains(orders, "no samples");
    // The refresh script is there, and the page carries its interval.
    contains(&dom, r#"data-refresh="30""#);
    contains(&dom, r#"<script src="/ui/refresh.js" defer=""></script>"#);
    screenshot(&site, &url, "clusters", (1400, 420)).await;
}

#[tokio::test]
async fn a_cluster_page_charts_its_window_with_the_decisions_marked() {
    let (site, applied, _) = site().await;
    let url = format!("{}/ui/clusters/logs?window=6h", site.browser_url);
    let dom = dump_dom(&url).await;
    contains(&dom, "<h1>Cluster logs</h1>");
    let charts = dom
        .split(r#"<section class="charts" id="charts">"#)
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .expect("charts");
    // plotters writes each text on lines of its own.
    let charts = charts.replace('\n', "");
    let charts = charts.as_str();
    assert_eq!(
        charts.matches("<svg").count(),
        3,
        "lag, throughput and scale"
    );
    for title in ["Lag", "Throughput", "Scale"] {
        contains(charts, &format!(">{title}</text>"));
    }
    // Each decision of the window is marked on each chart, by its id.
    assert_eq!(
        charts.matches(&format!(">#{applied}</text>")).count(),
        3,
        "{charts}"
    );
    contains(&dom, r#"<table id="verdicts">"#);
    contains(&dom, "lag_above_threshold");
    contains(&dom, r#"<dl class="facts" id="policy">"#);
    contains(&dom, "<dt>max_scale</dt><dd>8</dd>");
    contains(
        &dom,
        &format!(r#"<a href="/ui/decisions/{applied}">#{applied}</a>"#),
    );
    inert(&dom);
    contains(&dom, "&lt;img src=x onerror=");
    screenshot(&site, &url, "cluster", (1200, 1500)).await;

    let unknown = dump_dom(&format!("{}/ui/clusters/nope", site.browser_url)).await;
    contains(&unknown, "no cluster named \"nope\"");
}

#[tokio::test]
async fn a_decision_page_shows_its_steps_estimate_links_and_reason() {
    let (site, applied, _) = site().await;
    let url = format!("{}/ui/decisions/{applied}", site.browser_url);
    let dom = dump_dom(&url).await;
    contains(&dom, &format!("Decision #{applied}"));
    contains(
        &dom,
        r#"<a id="pull-request" href="https://github.com/platform/gitops/pull/42">#42</a>"#,
    );
    contains(
        &dom,
        r#"<a id="commit" href="https://github.com/platform/gitops/commit/9f2c4e1a7b3d">"#,
    );
    let steps = dom
        .split(r#"<table id="steps">"#)
        .nth(1)
        .and_then(|s| s.split("</table>").next())
        .expect("steps");
    let names: Vec<&str> = ["planned", "pr_opened", "merged", "synced", "applied"]
        .into_iter()
        .filter(|step| steps.contains(&format!("<td>{step}</td>")))
        .collect();
    assert_eq!(names.len(), 5, "{steps}");
    contains(steps, "6m 00s");
    contains(&dom, "<dt>method.regression.r2</dt><dd>0.9620</dd>");
    contains(&dom, "<dt>phase</dt><dd>Succeeded</dd>");
    screenshot(&site, &url, "decision", (1200, 1400)).await;

    // The failed one: its reason, hostile as it is, shown as text.
    let failed = site
        .storage
        .list_decisions(
            site.storage.get_cluster("logs").await.expect("logs").id,
            None,
            10,
        )
        .await
        .expect("decisions")
        .into_iter()
        .find(|d| d.status == DecisionStatus::Failed)
        .expect("the failed decision");
    let dom = dump_dom(&format!("{}/ui/decisions/{}", site.browser_url, failed.id)).await;
    contains(
        &dom,
        r#"<dd id="reason">&lt;img src=x onerror="document.title='owned'"&gt;&lt;script&gt;"#,
    );
    inert(&dom);
}

#[tokio::test]
async fn without_a_session_every_page_leads_to_the_login() {
    let (site, applied, _) = site().await;
    // Chromium follows the redirect to the login form.
    let url = format!("{}/ui/decisions/{applied}", site.plain_url);
    let dom = dump_dom(&url).await;
    contains(&dom, "<title>Log in · autoscaler</title>");
    contains(
        &dom,
        &format!(r#"<input type="hidden" name="next" value="/ui/decisions/{applied}">"#),
    );
    contains(&dom, r#"<input id="token" type="password" name="token""#);
    screenshot(&site, &url, "login", (900, 500)).await;

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for path in [
        "/ui",
        "/ui/clusters/logs",
        &format!("/ui/decisions/{applied}"),
    ] {
        let response = client
            .get(format!("{}{path}", site.plain_url))
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 303, "{path}");
        assert!(
            response.headers()["location"]
                .to_str()
                .expect("ascii")
                .starts_with("/ui/login?next=")
        );
    }
    // A wrong token gets the form again with a 401 and no cookie.
    let refused = client
        .post(format!("{}/ui/login", site.plain_url))
        .form(&[("token", "not-the-token-0123456789")])
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().get("set-cookie").is_none());
    // A forged cookie is no session; the API's bearer token is.
    let forged = client
        .get(format!("{}/ui", site.plain_url))
        .header("cookie", "autoscaler_session=9999999999.abc.00")
        .send()
        .await
        .expect("get");
    assert_eq!(forged.status(), 303);
    let bearer = client
        .get(format!("{}/ui", site.plain_url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("get");
    assert_eq!(bearer.status(), 200);
    let csp = bearer.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
}

#[tokio::test]
async fn another_teams_session_sees_none_of_the_clusters_and_their_pages_are_missing() {
    let (site, applied, _) = site().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let login = client
        .post(format!("{}/ui/login", site.plain_url))
        .form(&[("token", OTHER_TEAM), ("next", "/ui")])
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 303, "a viewer of another team logs in");
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("name=value")
        .to_owned();
    let get = |path: String| {
        client
            .get(format!("{}{path}", site.plain_url))
            .header("cookie", cookie.clone())
            .send()
    };
    let list = get("/ui".to_owned()).await.expect("get");
    assert_eq!(list.status(), 200);
    let list = list.text().await.expect("text");
    assert!(list.contains("No cluster is subscribed yet"), "{list}");
    assert!(!list.contains("orders") && !list.contains("logs"), "{list}");
    for path in [
        "/ui/clusters/logs".to_owned(),
        format!("/ui/decisions/{applied}"),
    ] {
        let page = get(path.clone()).await.expect("get");
        assert_eq!(page.status(), 404, "{path}");
    }
    let unknown = get("/ui/clusters/nope".to_owned()).await.expect("get");
    assert_eq!(unknown.status(), 404);
    // The same token as a bearer sees the same.
    let bearer = client
        .get(format!("{}/ui/clusters/logs", site.plain_url))
        .bearer_auth(OTHER_TEAM)
        .send()
        .await
        .expect("get");
    assert_eq!(bearer.status(), 404);
}
