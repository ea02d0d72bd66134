//! What the Flink Kubernetes operator and Flink make of a FlinkDeployment: its configuration, its job's
//! name, its reporters and its pods.
//!
//! What the operator does is taken from its source and documentation (release 1.15.0): a FlinkDeployment
//! runs in native mode unless `mode: standalone`; `job.parallelism` and `taskManager.replicas` are scale
//! changes only in standalone mode (`@SpecDiff(value = SCALE, mode = STANDALONE)` in JobSpec and
//! TaskManagerSpec), so in native mode a new parallelism is an upgrade: a savepoint and a redeploy with
//! `upgradeMode: savepoint`; `taskManager.replicas`, when set, overrides the parallelism
//! (FlinkConfigBuilder); `pipeline.name` defaults to the resource's name; `upgradeMode: savepoint` needs a
//! checkpoint and a savepoint directory (DefaultValidator). Flink labels its native pods `app: <name>`,
//! `type: flink-native-kubernetes` and `component: jobmanager|taskmanager`.

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

use crate::manifests::{Doc, Installation, scalar, selects};

pub const PROMETHEUS_REPORTER: &str =
    "org.apache.flink.metrics.prometheus.PrometheusReporterFactory";
pub const MAIN_CONTAINER: &str = "flink-main-container";

/// A FlinkDeployment with the installation's patches applied (kustomize merges a patch of a custom
/// resource like a JSON merge patch: mappings key by key, everything else replaced).
pub fn effective(installation: &Installation, doc: &Doc) -> Value {
    fn merge(base: &mut Value, patch: &Value) {
        match (base.as_mapping_mut(), patch.as_mapping()) {
            (Some(base), Some(patch)) => {
                for (key, value) in patch {
                    if value.is_null() {
                        base.remove(key);
                    } else {
                        merge(base.entry(key.clone()).or_insert(Value::Null), value);
                    }
                }
            }
            _ => *base = patch.clone(),
        }
    }
    let mut value = doc.value.clone();
    for patch in &installation.patches {
        if patch.kind() == doc.kind() && patch.name() == doc.name() {
            merge(&mut value, &patch.value);
        }
    }
    value
}

/// `spec.flinkConfiguration` as Flink reads it: nested mappings become dotted keys, values text.
pub fn flink_configuration(deployment: &Value) -> BTreeMap<String, String> {
    fn walk(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
        match value {
            Value::Mapping(map) => {
                for (key, value) in map {
                    let key = scalar(key).unwrap_or_default();
                    let key = if prefix.is_empty() {
                        key
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&key, value, out);
                }
            }
            other => {
                if let Some(text) = scalar(other) {
                    out.insert(prefix.to_owned(), text);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", &deployment["spec"]["flinkConfiguration"], &mut out);
    out
}

/// The first of `keys` (a key and its deprecated names) that is set to something.
pub fn setting<'a>(conf: &'a BTreeMap<String, String>, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| conf.get(*k))
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
}

/// A label value as Flink's Prometheus reporter exports it: every character outside
/// `[a-zA-Z0-9:_]` becomes `_` (on a real Flink 2.3, the job `probe-adaptive` is `probe_adaptive`).
pub fn reporter_label_value(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == ':' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The name Flink gives the job: `pipeline.name`, which the operator defaults to the resource's name.
pub fn job_name(deployment: &Value, conf: &BTreeMap<String, String>) -> String {
    setting(conf, &["pipeline.name"])
        .map(str::to_owned)
        .unwrap_or_else(|| {
            deployment["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
}

/// The enabled Prometheus reporters, each with its port setting (`metrics.reporter.<name>.port`).
pub fn prometheus_reporters(conf: &BTreeMap<String, String>) -> Vec<(String, Option<String>)> {
    let enabled: Option<Vec<&str>> = conf
        .get("metrics.reporters")
        .map(|list| list.split(',').map(str::trim).collect());
    conf.iter()
        .filter(|(_, v)| *v == PROMETHEUS_REPORTER)
        .filter_map(|(k, _)| {
            k.strip_prefix("metrics.reporter.")?
                .strip_suffix(".factory.class")
        })
        .filter(|name| enabled.as_ref().is_none_or(|list| list.contains(name)))
        .map(|name| {
            let port = conf.get(&format!("metrics.reporter.{name}.port")).cloned();
            (name.to_owned(), port)
        })
        .collect()
}

/// A JobManager or TaskManager pod as Flink creates it from the FlinkDeployment.
pub struct FlinkPod {
    pub component: &'static str,
    pub labels: Value,
    pub annotations: Value,
    /// The main container's ports: (name, number).
    pub ports: Vec<(Option<String>, u64)>,
    pub security: Value,
    pub container_security: Vec<Value>,
}

/// The pods of a FlinkDeployment: the common pod template merged with the JobManager's or the
/// TaskManager's, with the labels Flink adds.
pub fn flink_pods(deployment: &Value) -> Vec<FlinkPod> {
    let spec = &deployment["spec"];
    let standalone = spec["mode"].as_str() == Some("standalone");
    let name = deployment["metadata"]["name"].as_str().unwrap_or("");
    let mut pods = Vec::new();
    for (component, section) in [("jobmanager", "jobManager"), ("taskmanager", "taskManager")] {
        let templates = [&spec["podTemplate"], &spec[section]["podTemplate"]];
        let mut labels = Mapping::new();
        let mut annotations = Mapping::new();
        let mut ports = Vec::new();
        let mut security = Value::Null;
        let mut container_security = Vec::new();
        for template in templates {
            for (map, field) in [(&mut labels, "labels"), (&mut annotations, "annotations")] {
                if let Some(values) = template["metadata"][field].as_mapping() {
                    map.extend(values.clone());
                }
            }
            if !template["spec"]["securityContext"].is_null() {
                security = template["spec"]["securityContext"].clone();
            }
            for container in template["spec"]["containers"]
                .as_sequence()
                .into_iter()
                .flatten()
            {
                if container["name"].as_str() != Some(MAIN_CONTAINER) {
                    continue;
                }
                container_security.push(container["securityContext"].clone());
                for port in container["ports"].as_sequence().into_iter().flatten() {
                    if let Some(number) = port["containerPort"].as_u64() {
                        ports.push((port["name"].as_str().map(str::to_owned), number));
                    }
                }
            }
        }
        let kind = if standalone {
            "flink-standalone-kubernetes"
        } else {
            "flink-native-kubernetes"
        };
        for (key, value) in [("app", name), ("type", kind), ("component", component)] {
            labels.insert(Value::from(key), Value::from(value));
        }
        pods.push(FlinkPod {
            component,
            labels: Value::Mapping(labels),
            annotations: Value::Mapping(annotations),
            ports,
            security,
            container_security,
        });
    }
    pods
}

/// Whether a monitor's selector picks pods of a FlinkDeployment in the installation (those monitors are
/// checked here, against the reporter, rather than against a Deployment's process).
pub fn selects_flink_pods(installation: &Installation, selector: &Value) -> bool {
    installation
        .of_kind("FlinkDeployment")
        .flat_map(|d| flink_pods(&d.value))
        .any(|pod| selects(selector, &pod.labels))
}
