//! `autoscaler cluster ...` as a user runs it, against `autoscaler run` on the real Postgres: YAML and JSON
//! specs applied, tables and `-o json|yaml`, errors naming the field with a non-zero exit, the token from
//! the environment or a config file, and `decision ID --wait` following a decision to its end.

#[path = "common/database.rs"]
mod database;
#[path = "api/harness.rs"]
#[expect(dead_code, reason = "the CLI tests use only part of the API harness")]
mod harness;
#[path = "common/service.rs"]
#[expect(dead_code, reason = "the CLI tests never stop the service gracefully")]
mod service;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use autoscaler::{
    decide::{DecisionInputs, Direction, Sample},
    storage::{DecisionStatus, NewDecision, Storage, Transition},
};
use chrono::Utc;
use harness::{TOKEN, TestDatabase};
use serde_json::{Value, json};
use service::Service;
use test_support::wait::until;

const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

struct Setup {
    service: Service,
    storage: Storage,
    home: tempfile::TempDir,
    _database: TestDatabase,
}

async fn setup() -> Setup {
    let database = TestDatabase::new();
    let service = Service::start(&database.url, TOKEN);
    let storage = Storage::connect(&database.url).await.expect("connect");
    Setup {
        service,
        storage,
        home: tempfile::tempdir().expect("a home directory"),
        _database: database,
    }
}

impl Setup {
    /// The CLI with the server and token in its environment, and a home of its own (no config file).
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_autoscaler"));
        command
            .arg("cluster")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("AUTOSCALER_SERVER", &self.service.address)
            .env("AUTOSCALER_TOKEN", TOKEN);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("the CLI runs")
    }

    /// `autoscaler ARGS` (not under `cluster`), with the same environment.
    fn run_tool(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_autoscaler"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("AUTOSCALER_SERVER", &self.service.address)
            .env("AUTOSCALER_TOKEN", TOKEN)
            .output()
            .expect("the CLI runs")
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.home.path().join(name);
        std::fs::write(&path, text).expect("write a file");
        path.display().to_string()
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

fn yaml_spec(name: &str, max_scale: u32) -> String {
    format!(
        "name: {name}
target:
  kind: engine
metrics:
  prometheus_url: http://127.0.0.1:9
  selector:
    pipeline: {name}
git:
  repository: https://git.example.com/platform/gitops.git
  path: pipelines/{name}/values.yaml
  key: engine.replicas
argocd:
  server: https://argocd.example.com
  application: {name}
policy:
  max_scale: {max_scale}
"
    )
}

/// The row of `name` in a table, split on whitespace.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&name))
        .unwrap_or_else(|| panic!("no row {name} in\n{table}"))
}

#[tokio::test]
async fn apply_creates_then_replaces_and_every_read_shows_the_stored_cluster() {
    let s = setup().await;
    let file = s.write("orders.yaml", &yaml_spec("orders", 6));
    assert_eq!(
        succeeded(&s.run(&["apply", "-f", &file])).trim(),
        "cluster/orders created"
    );

    // A second document, in JSON, and the first again with a new bound: one created, one replaced.
    let json_file = s.write(
        "both.yaml",
        &format!(
            "{}---\n{}\n",
            yaml_spec("orders", 9),
            serde_json::to_string(
                &serde_yaml::from_str::<Value>(&yaml_spec("logs", 4)).expect("a value")
            )
            .expect("a value")
        ),
    );
    let applied = succeeded(&s.run(&["apply", "-f", &json_file]));
    assert_eq!(
        applied.lines().collect::<Vec<_>>(),
        ["cluster/orders configured", "cluster/logs created"]
    );
    let stored = s.storage.get_cluster("orders").await.expect("stored");
    assert_eq!(stored.spec.policy.max_scale, 9);

    let list = succeeded(&s.run(&["list"]));
    let header = list.lines().next().expect("a header");
    assert!(
        header.split_whitespace().eq([
            "NAME",
            "KIND",
            "PAUSED",
            "MIN",
            "MAX",
            "WRITE-BACK",
            "REPOSITORY",
            "AGE"
        ]),
        "{list}"
    );
    assert_eq!(
        &row(&list, "orders")[..6],
        ["orders", "engine", "false", "1", "9", "commit"]
    );
    assert_eq!(
        &row(&list, "logs")[..5],
        ["logs", "engine", "false", "1", "4"]
    );

    let json: Value =
        serde_json::from_str(&succeeded(&s.run(&["get", "orders", "-o", "json"]))).expect("json");
    assert_eq!(json["name"], "orders");
    assert_eq!(json["spec"]["policy"]["max_scale"], 9);
    // Defaults come back filled in, as the API stores them.
    assert_eq!(json["spec"]["target"]["reactive"], true);
    let yaml: Value =
        serde_yaml::from_str(&succeeded(&s.run(&["-o", "yaml", "list"]))).expect("yaml");
    let names: Vec<_> = yaml
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, [json!("logs"), json!("orders")]);

    assert_eq!(
        succeeded(&s.run(&["pause", "orders"])).trim(),
        "cluster/orders paused"
    );
    assert!(
        s.storage
            .get_cluster("orders")
            .await
            .expect("stored")
            .paused
    );
    assert_eq!(
        row(&succeeded(&s.run(&["get", "orders"])), "orders")[2],
        "true"
    );
    assert_eq!(
        succeeded(&s.run(&["resume", "orders"])).trim(),
        "cluster/orders resumed"
    );
    assert!(
        !s.storage
            .get_cluster("orders")
            .await
            .expect("stored")
            .paused
    );

    assert_eq!(
        succeeded(&s.run(&["delete", "logs"])).trim(),
        "cluster/logs deleted"
    );
    let gone = s.run(&["get", "logs"]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(stderr(&gone).contains("404 not_found"), "{}", stderr(&gone));
}

#[tokio::test]
async fn an_invalid_spec_is_refused_naming_each_field_and_nothing_is_stored() {
    let s = setup().await;
    let spec = yaml_spec("orders", 0).replace("kind: engine", "kind: engine\n  reactive: false");
    let file = s.write("bad.yaml", &spec);
    let output = s.run(&["apply", "-f", &file]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let err = stderr(&output);
    assert!(err.starts_with("error: 422 validation_failed"), "{err}");
    assert!(
        err.contains("\n  policy.min_scale: must not exceed policy.max_scale (0)"),
        "{err}"
    );
    assert!(err.contains("\n  target.control_url: "), "{err}");
    assert!(stdout(&output).is_empty());
    assert!(
        s.storage.get_cluster("orders").await.is_err(),
        "nothing stored"
    );

    // A file that is not a spec never reaches the server, and says which document is wrong.
    let file = s.write("unnamed.yaml", "policy: {}\n");
    let output = s.run(&["apply", "-f", &file]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("document 1: name:"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn the_token_comes_from_a_config_file_and_a_wrong_one_is_refused() {
    let s = setup().await;
    let config = s.home.path().join(".config/autoscaler");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(
        config.join("config.yaml"),
        format!("server: {}\ntoken: {TOKEN}\n", s.service.address),
    )
    .expect("config file");
    let from_file = s
        .command(&["list"])
        .env_remove("AUTOSCALER_SERVER")
        .env_remove("AUTOSCALER_TOKEN")
        .output()
        .expect("runs");
    assert!(succeeded(&from_file).starts_with("NAME"));

    let wrong = s
        .command(&["list"])
        .env("AUTOSCALER_TOKEN", "not-the-token-0123456789")
        .output()
        .expect("runs");
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        stderr(&wrong).contains("401 unauthorized"),
        "{}",
        stderr(&wrong)
    );

    std::fs::remove_file(config.join("config.yaml")).expect("remove");
    let none = s
        .command(&["list"])
        .env_remove("AUTOSCALER_TOKEN")
        .output()
        .expect("runs");
    assert_eq!(none.status.code(), Some(2));
    assert!(stderr(&none).contains("no API token"), "{}", stderr(&none));

    let unreachable = s
        .command(&["list", "--server", "http://127.0.0.1:9"])
        .output()
        .expect("runs");
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(
        stderr(&unreachable).contains("127.0.0.1:9"),
        "{}",
        stderr(&unreachable)
    );
}

async fn pending_decision(storage: &Storage, cluster: &str) -> i64 {
    let record = storage.get_cluster(cluster).await.expect("cluster");
    storage
        .insert_pending_decision(&NewDecision {
            cluster_id: record.id,
            cluster_name: cluster.to_owned(),
            rule: "lag_above_threshold".to_owned(),
            inputs: DecisionInputs::bare(Direction::Up, "lag 120 s", Utc::now(), 300),
            from_scale: Some(2),
        })
        .await
        .expect("insert")
        .id
}

#[tokio::test]
async fn decisions_list_newest_first_and_one_shows_its_steps() {
    let s = setup().await;
    succeeded(&s.run(&["apply", "-f", &s.write("o.yaml", &yaml_spec("orders", 6))]));
    let first = pending_decision(&s.storage, "orders").await;
    s.storage
        .finish_decision(first, DecisionStatus::Vetoed, Some("cooldown"))
        .await
        .expect("finish");
    let second = pending_decision(&s.storage, "orders").await;
    // A plan is recorded by the worker that runs the decision.
    s.storage
        .transition(
            second,
            &Transition::new(DecisionStatus::Pending, DecisionStatus::Running),
        )
        .await
        .expect("running");
    s.storage
        .record_plan(second, &json!({"model": "linear"}), Some(2), Some(4))
        .await
        .expect("plan");
    s.storage
        .add_step(second, "committed", &json!({"commit": "0123456789abcdef"}))
        .await
        .expect("step");

    let table = succeeded(&s.run(&["decisions", "orders"]));
    let ids: Vec<_> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().expect("a value").to_owned())
        .collect();
    assert_eq!(ids, [second.to_string(), first.to_string()], "{table}");
    let newest = row(&table, &second.to_string());
    assert_eq!(
        &newest[1..6],
        ["running", "lag_above_threshold", "2", "→", "4"]
    );
    assert!(table.contains("cooldown"), "{table}");

    let shown = succeeded(&s.run(&["decision", &second.to_string()]));
    assert!(shown.contains("Status:    running"), "{shown}");
    assert!(shown.contains("Scale:     2 → 4"), "{shown}");
    let step = shown
        .lines()
        .find(|l| l.contains("committed"))
        .expect("the step");
    assert!(step.contains(r#"{"commit":"0123456789abcdef"}"#), "{shown}");

    let yaml: Value = serde_yaml::from_str(&succeeded(&s.run(&[
        "decision",
        &second.to_string(),
        "-o",
        "yaml",
    ])))
    .expect("yaml");
    assert_eq!(yaml["steps"][0]["detail"]["commit"], "0123456789abcdef");

    let missing = s.run(&["decision", "999999"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("no decision 999999"),
        "{}",
        stderr(&missing)
    );
}

#[tokio::test]
async fn repeated_identical_skips_show_as_one_row_with_their_count() {
    let s = setup().await;
    succeeded(&s.run(&["apply", "-f", &s.write("o.yaml", &yaml_spec("orders", 6))]));
    let mut newest = 0;
    for _ in 0..4 {
        newest = pending_decision(&s.storage, "orders").await;
        for change in [
            Transition::new(DecisionStatus::Pending, DecisionStatus::Running),
            Transition::new(DecisionStatus::Running, DecisionStatus::Skipped)
                .reason("Git already holds 2"),
        ] {
            s.storage.transition(newest, &change).await.expect("moved");
        }
    }

    let table = succeeded(&s.run(&["decisions", "orders"]));
    assert_eq!(
        table.lines().count(),
        2,
        "one row under the header: {table}"
    );
    assert_eq!(&row(&table, &newest.to_string())[1..3], ["skipped", "×4"]);
    let shown = succeeded(&s.run(&["decision", &newest.to_string()]));
    assert!(
        shown.contains("Repeated:  4 identical skips since "),
        "{shown}"
    );
}

#[tokio::test]
async fn wait_follows_a_decision_to_its_end_showing_each_change() {
    let s = setup().await;
    succeeded(&s.run(&["apply", "-f", &s.write("o.yaml", &yaml_spec("orders", 6))]));
    let id = pending_decision(&s.storage, "orders").await;
    let progress = s.home.path().join("progress.log");
    let mut waiting = s
        .command(&["decision", &id.to_string(), "--wait", "--interval", "100ms"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&progress).expect("log"))
        .spawn()
        .expect("the CLI starts");
    let shown = |text: &'static str| {
        let progress = progress.clone();
        move || {
            std::fs::read_to_string(&progress)
                .is_ok_and(|p| p.contains(text))
                .then_some(())
        }
    };
    until("the pending status shown", WAIT, POLL, shown("pending")).await;

    let commit = json!({"commit": "abc"});
    for change in [
        Transition::new(DecisionStatus::Pending, DecisionStatus::Running),
        Transition::new(DecisionStatus::Running, DecisionStatus::Committed)
            .write_back(&commit)
            .step("committed", &commit),
    ] {
        s.storage.transition(id, &change).await.expect("advance");
    }
    until("the commit shown", WAIT, POLL, shown("step committed")).await;
    assert!(
        waiting.try_wait().expect("try_wait").is_none(),
        "still waiting"
    );

    let nothing = json!({});
    for change in [
        Transition::new(DecisionStatus::Committed, DecisionStatus::Syncing),
        Transition::new(DecisionStatus::Syncing, DecisionStatus::Synced),
        Transition::new(DecisionStatus::Synced, DecisionStatus::Applied).step("applied", &nothing),
    ] {
        s.storage.transition(id, &change).await.expect("advance");
    }
    let status = until("the CLI's exit", WAIT, POLL, || {
        waiting.try_wait().expect("try_wait")
    })
    .await;
    assert_eq!(status.code(), Some(0));
    let mut out = String::new();
    std::io::Read::read_to_string(&mut waiting.stdout.take().expect("stdout"), &mut out)
        .expect("read");
    assert!(out.contains("Status:    applied"), "{out}");
    let lines: Vec<String> = std::fs::read_to_string(&progress)
        .expect("progress")
        .lines()
        .map(|l| l.split_once("] ").map_or(l, |(_, rest)| rest).to_owned())
        .collect();
    // The CLI polls, so it sees the statuses the decision passed through between two polls
    // (running, syncing, synced) only by chance; each step and every status it did see appear once,
    // in order.
    let passing = ["running", "syncing", "synced"].map(|s| format!("decision {id} {s}"));
    let seen: Vec<&String> = lines.iter().filter(|l| !passing.contains(l)).collect();
    assert_eq!(
        seen,
        [
            &format!("decision {id} pending"),
            &r#"step committed: {"commit":"abc"}"#.to_owned(),
            &format!("decision {id} committed"),
            &"step applied".to_owned(),
            &format!("decision {id} applied"),
        ],
        "{lines:?}"
    );
    let mut unique = lines.clone();
    unique.dedup();
    assert_eq!(unique, lines, "a change shown twice");

    // A decision that fails ends the wait with exit 1 and its reason.
    let failing = pending_decision(&s.storage, "orders").await;
    s.storage
        .finish_decision(failing, DecisionStatus::Failed, Some("push refused"))
        .await
        .expect("finish");
    let output = s.run(&["decision", &failing.to_string(), "--wait"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!("decision {failing} ended failed: push refused")),
        "{}",
        stderr(&output)
    );
    // And one that does not end in time says where it stands.
    let stuck = pending_decision(&s.storage, "orders").await;
    let output = s.run(&[
        "decision",
        &stuck.to_string(),
        "--wait",
        "--timeout",
        "300ms",
        "--interval",
        "100ms",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("is still pending after 300ms"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn evaluate_shows_every_rules_verdict() {
    let s = setup().await;
    succeeded(&s.run(&["apply", "-f", &s.write("o.yaml", &yaml_spec("orders", 6))]));
    let shown = succeeded(&s.run(&["evaluate", "orders"]));
    assert!(shown.contains("Would act:    no"), "{shown}");
    let header = shown
        .lines()
        .find(|l| l.trim_start().starts_with("RULE"))
        .expect("a table");
    assert!(
        header
            .split_whitespace()
            .eq(["RULE", "DIRECTION", "OUTCOME", "REASON"])
    );
    // No samples yet: every rule says so, none fires.
    assert!(
        row(&shown, "lag_above_threshold").contains(&"no_data"),
        "{shown}"
    );
    let json: Value =
        serde_json::from_str(&succeeded(&s.run(&["evaluate", "orders", "-o", "json"])))
            .expect("json");
    assert_eq!(json["act"], false);
    assert!(json["verdicts"].as_array().is_some_and(|v| !v.is_empty()));
}

/// `orders` subscribed with a wasteful policy (half the capacity idle, scale-downs held back an hour),
/// and three hours of its job recorded: 8 workers of 1000 records/s carrying 3000, then 6000, then
/// 3000 records/s, a sample every 30 s up to now.
async fn wasteful_cluster_with_history(s: &Setup) {
    let spec = format!(
        "{}  target_utilization: 0.5\n  scale_down_window_seconds: 3600\n",
        yaml_spec("orders", 16)
    );
    succeeded(&s.run(&["apply", "-f", &s.write("orders.yaml", &spec)]));
    let id = s.storage.get_cluster("orders").await.expect("stored").id;
    let newest = Utc::now() - chrono::Duration::seconds(1);
    let batch: Vec<(i64, Sample)> = (0..360)
        .map(|i: i32| {
            let rate = if (120..240).contains(&i) {
                6000.0
            } else {
                3000.0
            };
            let sample = Sample {
                sampled_at: newest - chrono::Duration::seconds(30 * i64::from(359 - i)),
                cpu_load: Some(rate / 8000.0),
                lag_records: Some(0.0),
                lag_seconds: Some(0.0),
                records_in: Some(rate),
                records_out: Some(rate),
                scale: Some(8.0),
            };
            (id, sample)
        })
        .collect();
    s.storage.insert_samples(&batch).await.expect("samples");
}

#[tokio::test]
async fn tune_apply_writes_the_proposed_settings_into_the_subscription() {
    let s = setup().await;
    wasteful_cluster_with_history(&s).await;
    let plot = s.home.path().join("tune.svg");

    // Without --apply: the comparison, and nothing written.
    let table = succeeded(&s.run_tool(&["tune", "--cluster", "orders", "--since", "4h"]));
    assert!(
        table.contains("current ") && table.contains("proposed "),
        "{table}"
    );
    assert!(table.contains("proposal: "), "{table}");
    let stored: Value =
        serde_json::from_str(&succeeded(&s.run(&["get", "orders", "-o", "json"]))).expect("json");
    assert_eq!(stored["spec"]["policy"]["target_utilization"], 0.5);

    let output = s.run_tool(&[
        "tune",
        "--cluster",
        "orders",
        "--apply",
        "--plot",
        &plot.display().to_string(),
        "-o",
        "json",
    ]);
    let proposal: Value = serde_json::from_str(&succeeded(&output)).expect("json");
    let changes = proposal["changes"].as_array().expect("changes");
    assert!(!changes.is_empty(), "{proposal:#}");
    assert!(
        stderr(&output).contains("cluster/orders configured: "),
        "{}",
        stderr(&output)
    );
    let stored: Value =
        serde_json::from_str(&succeeded(&s.run(&["get", "orders", "-o", "json"]))).expect("json");
    let policy = &stored["spec"]["policy"];
    for change in changes {
        let field = change["field"].as_str().expect("a field");
        assert_eq!(
            policy[field].as_f64(),
            change["to"].as_f64(),
            "{field}: {policy}"
        );
    }
    // Everything else kept.
    assert_eq!(policy["max_scale"], 16);
    assert_eq!(stored["spec"]["git"]["key"], "engine.replicas");
    let svg = std::fs::read_to_string(&plot).expect("the plot");
    assert!(svg.contains("proposed"), "the plot shows the proposal");

    // Tuned again: the applied settings are now the current ones.
    let again: Value = serde_json::from_str(&succeeded(&s.run_tool(&[
        "tune",
        "--cluster",
        "orders",
        "-o",
        "json",
    ])))
    .expect("json");
    assert_eq!(
        again["current"]["settings"],
        proposal["proposed"]["settings"]
    );
}

#[tokio::test]
async fn an_exported_history_runs_in_the_simulator() {
    let s = setup().await;
    wasteful_cluster_with_history(&s).await;
    let exported = succeeded(&s.run(&["samples", "orders", "--since", "24h", "-o", "json"]));
    let history: Value = serde_json::from_str(&exported).expect("json");
    assert_eq!(history["samples"].as_array().map(Vec::len), Some(360));
    let file = s.write("orders-history.json", &exported);

    let table = succeeded(&s.run_tool(&["simulate", "--history", &file]));
    assert!(
        table.starts_with(&format!("trace {file} (3.0 h")),
        "{table}"
    );
    assert!(table.contains("job: 1000 records/s per worker"), "{table}");
    for policy in ["oracle", "ours", "hpa", "keda", "ds2"] {
        assert!(
            table.lines().any(|l| l.starts_with(policy)),
            "{policy} in\n{table}"
        );
    }
    let listed = succeeded(&s.run(&["samples", "orders", "--since", "1h"]));
    assert!(listed.starts_with("SAMPLED"), "{listed}");
    assert_eq!(listed.lines().count(), 1 + 120, "{listed}");
}
