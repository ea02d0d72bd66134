use serde_json::json;

use super::*;
use crate::cluster::ClusterSpec;

fn valid() -> serde_json::Value {
    json!({
        "name": "logs-ingest",
        "target": {"kind": "engine"},
        "metrics": {"prometheus_url": "http://prometheus:9090", "selector": {"pipeline": "logs-ingest"}},
        "git": {"repository": "https://git.example.com/platform/gitops.git", "path": "pipelines/logs/values.yaml", "key": "engine.replicas"},
        "argocd": {"server": "https://argocd.example.com", "application": "logs-ingest"},
        "policy": {"max_scale": 8}
    })
}

fn problems_of(value: serde_json::Value, ctx: &ValidationContext) -> Vec<FieldProblem> {
    let spec: ClusterSpec = serde_json::from_value(value).expect("fixture deserializes");
    spec.validate(ctx).err().unwrap_or_default()
}

fn fields_of(value: serde_json::Value) -> Vec<String> {
    problems_of(value, &ValidationContext::default())
        .into_iter()
        .map(|p| p.field)
        .collect()
}

fn with(mut value: serde_json::Value, pointer: &str, new: serde_json::Value) -> serde_json::Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    value
        .pointer_mut(parent)
        .and_then(|p| p.as_object_mut())
        .expect("parent is an object")
        .insert(key.to_owned(), new);
    value
}

#[test]
fn the_minimal_spec_is_valid_and_gets_the_designs_defaults() {
    assert_eq!(fields_of(valid()), Vec::<String>::new());
    let spec: ClusterSpec = serde_json::from_value(valid()).expect("deserializes");
    let spec = spec.with_resolved_defaults();
    assert_eq!(spec.policy.lag_seconds_high, 300.0);
    assert_eq!(spec.policy.cpu_high, 0.9);
    assert_eq!(spec.policy.target_utilization, 0.85);
    assert_eq!(spec.policy.min_scale, 1);
    assert_eq!(spec.git.branch, "main");
    assert_eq!(spec.target.reactive, Some(true));
    assert_eq!(spec.write_back, crate::cluster::WriteBack::Commit);
}

#[test]
fn flink_defaults_to_non_reactive_and_then_needs_a_control_url_and_a_job() {
    let spec = with(valid(), "/target/kind", json!("flink"));
    let spec = with(spec, "/target/scale_unit", json!({"unit": "parallelism"}));
    assert_eq!(
        fields_of(spec.clone()),
        ["target.control_url", "target.flink"]
    );
    let spec = with(
        spec,
        "/target/control_url",
        json!("http://flink-jobmanager:8081"),
    );
    let spec = with(
        spec,
        "/target/flink",
        json!({"job_name": "orders", "jar_id": "a/b"}),
    );
    assert_eq!(fields_of(spec.clone()), ["target.flink.jar_id"]);
    let spec = with(
        spec,
        "/target/flink/jar_id",
        json!("3b1f0c2e-5a4d-4c1b-9e8f-0a1b2c3d4e5f_orders.jar"),
    );
    assert_eq!(fields_of(spec.clone()), Vec::<String>::new());
    let spec = with(spec, "/target/scale_unit", json!(null));
    assert_eq!(fields_of(spec), ["target.scale_unit"]);
}

#[test]
fn a_flink_target_must_say_its_scale_unit_and_no_other_kind_may() {
    let flink = with(valid(), "/target/kind", json!("flink"));
    let flink = with(flink, "/target/reactive", json!(true));
    let problems = problems_of(flink.clone(), &ValidationContext::default());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "target.scale_unit");
    assert!(
        problems[0].problem.contains("task_managers"),
        "{problems:?}"
    );

    for unit in [
        json!({"unit": "parallelism"}),
        json!({"unit": "task_managers", "slots_per_task_manager": 2}),
    ] {
        let spec = with(flink.clone(), "/target/scale_unit", unit.clone());
        assert_eq!(fields_of(spec), Vec::<String>::new(), "{unit}");
        let engine = with(valid(), "/target/scale_unit", unit.clone());
        assert_eq!(fields_of(engine), ["target.scale_unit"], "{unit}");
    }
    let zero = with(
        flink.clone(),
        "/target/scale_unit",
        json!({"unit": "task_managers", "slots_per_task_manager": 0}),
    );
    assert_eq!(
        fields_of(zero),
        ["target.scale_unit.slots_per_task_manager"]
    );
    // Unknown units and missing slot counts are refused when the body is read.
    for unit in [
        json!({"unit": "slots"}),
        json!({"unit": "task_managers"}),
        json!({"unit": "parallelism", "slots_per_task_manager": 2}),
    ] {
        let spec = with(flink.clone(), "/target/scale_unit", unit.clone());
        assert!(
            serde_json::from_value::<ClusterSpec>(spec).is_err(),
            "{unit}"
        );
    }
}

#[test]
fn with_task_managers_the_bounds_are_compared_with_partitions_per_task_manager() {
    let flink = with(valid(), "/target/kind", json!("flink"));
    let flink = with(flink, "/target/reactive", json!(true));
    let flink = with(
        flink,
        "/target/scale_unit",
        json!({"unit": "task_managers", "slots_per_task_manager": 4}),
    );
    // 10 partitions over 4 slots: the third TaskManager still gets two of them.
    let spec = with(flink.clone(), "/policy/partition_count", json!(10));
    let spec = with(spec, "/policy/max_scale", json!(3));
    assert_eq!(fields_of(spec.clone()), Vec::<String>::new());
    let spec = with(spec, "/policy/max_scale", json!(4));
    let problems = problems_of(spec, &ValidationContext::default());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "policy.max_scale");
    assert!(
        problems[0].problem.contains("3 TaskManagers"),
        "{problems:?}"
    );
}

#[test]
fn a_generic_target_needs_every_query_and_cannot_be_non_reactive() {
    let spec = with(valid(), "/target/kind", json!("generic"));
    let spec = with(spec, "/target/reactive", json!(false));
    let fields = fields_of(spec);
    assert!(fields.contains(&"target.reactive".to_owned()), "{fields:?}");
    for metric in [
        "cpu_load",
        "lag_records",
        "lag_seconds",
        "records_in",
        "records_out",
        "scale",
    ] {
        assert!(
            fields.contains(&format!("metrics.queries.{metric}")),
            "{metric} in {fields:?}"
        );
    }
}

#[test]
fn names_that_are_not_dns_labels_are_refused() {
    for name in [
        "",
        "Logs",
        "logs_ingest",
        "-logs",
        "logs-",
        "a.b",
        &"x".repeat(64),
    ] {
        assert_eq!(
            fields_of(with(valid(), "/name", json!(name))),
            ["name"],
            "name {name:?}"
        );
    }
}

#[test]
fn min_above_max_is_refused_and_names_both_bounds() {
    let spec = with(valid(), "/policy/min_scale", json!(9));
    let problems = problems_of(spec, &ValidationContext::default());
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].field, "policy.min_scale");
    assert!(
        problems[0].problem.contains("policy.max_scale (8)"),
        "{}",
        problems[0].problem
    );
}

#[test]
fn max_above_the_partition_count_is_refused() {
    let spec = with(valid(), "/policy/partition_count", json!(4));
    assert_eq!(fields_of(spec), ["policy.max_scale"]);
}

#[test]
fn thresholds_out_of_range_are_refused() {
    let cases = [
        ("/policy/cpu_high", json!(1.5), "policy.cpu_high"),
        ("/policy/cpu_low", json!(0.9), "policy.cpu_low"),
        (
            "/policy/lag_seconds_low",
            json!(400),
            "policy.lag_seconds_low",
        ),
        (
            "/policy/scale_up_window_seconds",
            json!(5),
            "policy.scale_up_window_seconds",
        ),
        (
            "/policy/scale_down_window_seconds",
            json!(60),
            "policy.scale_down_window_seconds",
        ),
        ("/policy/min_scale", json!(0), "policy.min_scale"),
        (
            "/policy/target_utilization",
            json!(0.99),
            "policy.target_utilization",
        ),
        (
            "/policy/target_utilization",
            json!(0.1),
            "policy.target_utilization",
        ),
    ];
    for (pointer, value, field) in cases {
        assert_eq!(
            fields_of(with(valid(), pointer, value.clone())),
            [field],
            "{pointer} = {value}"
        );
    }
}

#[test]
fn urls_must_be_http_and_carry_no_credentials() {
    let cases = [
        (
            "/metrics/prometheus_url",
            "ftp://prometheus:9090",
            "metrics.prometheus_url",
        ),
        (
            "/argocd/server",
            "https://admin:hunter2@argocd.example.com",
            "argocd.server",
        ),
        (
            "/git/repository",
            "https://ghp_token@github.com/o/r.git",
            "git.repository",
        ),
        (
            "/git/repository",
            "ssh://git:pw@host/repo.git",
            "git.repository",
        ),
        ("/git/repository", "not a remote", "git.repository"),
    ];
    for (pointer, url, field) in cases {
        assert_eq!(
            fields_of(with(valid(), pointer, json!(url))),
            [field],
            "{url}"
        );
    }
    for remote in ["git@github.com:o/r.git", "ssh://git@host/r.git"] {
        assert_eq!(
            fields_of(with(valid(), "/git/repository", json!(remote))),
            Vec::<String>::new(),
            "{remote}"
        );
    }
}

#[test]
fn git_paths_branches_and_keys_are_checked() {
    let cases = [
        ("/git/path", "../etc/passwd.yaml", "git.path"),
        ("/git/path", "/abs/values.yaml", "git.path"),
        ("/git/path", "values.json", "git.path"),
        ("/git/branch", "feature..x", "git.branch"),
        ("/git/branch", "has space", "git.branch"),
        ("/git/key", "engine..replicas", "git.key"),
        ("/git/key", "engine.$replicas", "git.key"),
    ];
    for (pointer, value, field) in cases {
        assert_eq!(
            fields_of(with(valid(), pointer, json!(value))),
            [field],
            "{pointer} = {value}"
        );
    }
}

#[test]
fn file_secrets_need_a_secrets_directory_and_stay_inside_it() {
    let spec = with(valid(), "/git/credentials", json!({"file": "git/token"}));
    assert_eq!(fields_of(spec.clone()), ["git.credentials"]);
    let ctx = ValidationContext {
        secrets_dir_configured: true,
        ..ValidationContext::default()
    };
    assert!(problems_of(spec, &ctx).is_empty());
    let escaping = with(
        valid(),
        "/git/credentials",
        json!({"file": "../../etc/shadow"}),
    );
    assert_eq!(problems_of(escaping, &ctx).len(), 1);
    let bad_env = with(valid(), "/argocd/token", json!({"env": "NOT-A-NAME"}));
    assert_eq!(fields_of(bad_env), ["argocd.token"]);
}

#[test]
fn a_selector_is_needed_unless_every_metric_has_a_query() {
    let mut spec = valid();
    spec["metrics"]
        .as_object_mut()
        .expect("object")
        .remove("selector");
    spec["metrics"]["queries"] = json!({"cpu_load": "avg(rate(process_cpu_seconds_total[1m]))"});
    let problems = problems_of(spec, &ValidationContext::default());
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].field, "metrics.selector");
    assert!(
        problems[0].problem.contains("lag_records"),
        "{}",
        problems[0].problem
    );
    let bad_label = with(valid(), "/metrics/selector", json!({"0bad": "x"}));
    assert_eq!(fields_of(bad_label), ["metrics.selector.0bad"]);
}

#[test]
fn pull_request_mode_needs_an_owner_and_name() {
    let spec = with(
        valid(),
        "/write_back",
        json!({"mode": "pull_request", "github_repository": "just-a-name", "token": {"env": "AUTOSCALER_TEAM_DEFAULT_SECRET_GITHUB"}}),
    );
    assert_eq!(fields_of(spec), ["write_back.github_repository"]);
}

#[test]
fn recommend_mode_comments_only_where_a_valid_repository_url_and_team_secret_say() {
    let plain = with(valid(), "/write_back", json!({"mode": "recommend"}));
    assert_eq!(fields_of(plain.clone()), Vec::<String>::new());
    let spec: ClusterSpec = serde_json::from_value(plain).expect("spec");
    // Stored and returned as before: no `comment_on: null`.
    assert_eq!(
        serde_json::to_value(&spec.write_back).expect("json"),
        json!({"mode": "recommend"})
    );
    let commenting = with(
        valid(),
        "/write_back",
        json!({"mode": "recommend", "comment_on": {
            "github_repository": "platform/gitops",
            "token": {"env": "AUTOSCALER_TEAM_DEFAULT_SECRET_GITHUB"},
        }}),
    );
    assert_eq!(fields_of(commenting), Vec::<String>::new());
    let wrong = with(
        valid(),
        "/write_back",
        json!({"mode": "recommend", "comment_on": {
            "github_repository": "just-a-name",
            "github_api_url": "ftp://github.example.com",
            "token": {"env": "AUTOSCALER_TEAM_OTHER_SECRET_GITHUB"},
        }}),
    );
    assert_eq!(
        fields_of(wrong),
        [
            "write_back.comment_on.github_repository",
            "write_back.comment_on.github_api_url",
            "write_back.comment_on.token",
        ]
    );
    let refused = with(
        valid(),
        "/write_back",
        json!({"mode": "recommend", "comment_on": {
            "github_repository": "platform/gitops",
            "github_api_url": "http://169.254.169.254/latest/",
            "token": {"env": "AUTOSCALER_TEAM_DEFAULT_SECRET_GITHUB"},
        }}),
    );
    let problems = problems_of(refused, &ValidationContext::default());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "write_back.comment_on.github_api_url");
    assert!(
        problems[0].problem.contains("outbound policy"),
        "{problems:?}"
    );
    // A field it does not know is refused, like every other part of the spec.
    let unknown = with(
        valid(),
        "/write_back",
        json!({"mode": "recommend", "comment_on": {
            "github_repository": "platform/gitops",
            "token": {"env": "AUTOSCALER_TEAM_DEFAULT_SECRET_GITHUB"},
            "labels": ["x"],
        }}),
    );
    assert!(serde_json::from_value::<ClusterSpec>(unknown).is_err());
}

#[test]
fn urls_the_outbound_policy_refuses_are_refused_naming_the_field() {
    let cases = [
        (
            "/metrics/prometheus_url",
            "http://169.254.169.254/latest/",
            "metrics.prometheus_url",
        ),
        ("/argocd/server", "http://127.0.0.1:8080", "argocd.server"),
        ("/git/repository", "file:///srv/git/r.git", "git.repository"),
        (
            "/target/control_url",
            "http://localhost:9000",
            "target.control_url",
        ),
    ];
    for (pointer, url, field) in cases {
        let problems = problems_of(
            with(valid(), pointer, json!(url)),
            &ValidationContext::default(),
        );
        assert_eq!(problems.len(), 1, "{url}: {problems:?}");
        assert_eq!(problems[0].field, field);
        assert!(
            problems[0].problem.contains("outbound policy"),
            "{:?}",
            problems[0]
        );
    }
    // An operator who means it allows them.
    let ctx = ValidationContext {
        outbound: std::sync::Arc::new("*,127.0.0.0/8,file".parse().expect("allow-list")),
        ..ValidationContext::default()
    };
    let local = with(valid(), "/git/repository", json!("file:///srv/git/r.git"));
    let local = with(local, "/argocd/server", json!("http://127.0.0.1:8080"));
    assert_eq!(problems_of(local, &ctx), Vec::<FieldProblem>::new());
}
