//! The Flink pipelines: a FlinkDeployment that the Flink Kubernetes operator runs, against what the
//! operator accepts and does with it (see `flink_model`), the Prometheus reporter's endpoint and labels,
//! the monitors that scrape it, and its subscription.

use std::collections::HashMap;

use autoscaler::{
    cluster::{ScaleUnit, TargetKind},
    scrape::{QueryTargets, Series, plan_queries},
    storage::ClusterRecord,
};
use chrono::Utc;
use serde_yaml::Value;

use crate::{
    flink_model::{
        MAIN_CONTAINER, PROMETHEUS_REPORTER, effective, flink_configuration, flink_pods, job_name,
        prometheus_reporters, reporter_label_value, setting,
    },
    manifests::{Doc, Installation, Problems, all_docs, flink_pipeline_dirs, selects},
    subscription::{check_application, check_scale_file, pipeline_subscription, yaml_at},
};

/// The Flink 2.x values of the operator's FlinkVersion enum.
const OPERATOR_FLINK_2_VERSIONS: [&str; 5] = ["v2_0", "v2_1", "v2_2", "v2_3", "v2_4"];
/// The operator's `flinkVersion` for the Flink the project's tests run against (`v2_3` for 2.3.0).
fn tested_flink_version() -> String {
    let mut parts = test_support::flink_cluster::FLINK_VERSION.split('.');
    let (major, minor) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    format!("v{major}_{minor}")
}
/// Flink's max parallelism when `pipeline.max-parallelism` is not set is at least this.
const DEFAULT_MAX_PARALLELISM: u32 = 128;

/// Every FlinkDeployment of the Flink pipelines, with its installation.
fn flink_deployments(problems: &mut Problems) -> Vec<(Installation, Doc)> {
    let dirs = flink_pipeline_dirs();
    assert!(!dirs.is_empty(), "no Flink pipeline under deploy/pipelines");
    let mut found = Vec::new();
    for dir in dirs {
        let installation = Installation::load(&dir, problems);
        let docs: Vec<Doc> = installation.of_kind("FlinkDeployment").cloned().collect();
        found.extend(docs.into_iter().map(|d| (installation.clone(), d)));
    }
    found
}

/// What the operator accepts and what a job the autoscaler scales needs: a Flink 2 version the operator
/// knows, savepoint upgrades with their directories, one Prometheus reporter on a fixed port, no other
/// autoscaler, resources and a non-root pod.
#[test]
fn flink_deployments_are_what_the_operator_accepts_with_the_prometheus_reporter() {
    let mut problems = Problems::default();
    for (installation, doc) in flink_deployments(&mut problems) {
        let at = doc.at();
        let value = effective(&installation, &doc);
        let spec = &value["spec"];
        let conf = flink_configuration(&value);
        problems.check(
            doc.value["apiVersion"].as_str() == Some("flink.apache.org/v1beta1"),
            || format!("{at}: apiVersion is not flink.apache.org/v1beta1"),
        );
        let version = spec["flinkVersion"].as_str().unwrap_or("");
        problems.check(OPERATOR_FLINK_2_VERSIONS.contains(&version), || {
            format!("{at}: flinkVersion {version:?} is none of the operator's Flink 2 values {OPERATOR_FLINK_2_VERSIONS:?}")
        });
        let tested = tested_flink_version();
        problems.check(version == tested, || {
            format!("{at}: flinkVersion {version:?} is not {tested}, the Flink the autoscaler is tested against")
        });
        let mode = spec["mode"].as_str().unwrap_or("native");
        problems.check(mode == "native" || mode == "standalone", || {
            format!("{at}: mode {mode:?} is neither native nor standalone")
        });
        if setting(&conf, &["scheduler-mode"]).is_some_and(|m| m.eq_ignore_ascii_case("reactive")) {
            problems.check(mode == "standalone", || {
                format!("{at}: scheduler-mode reactive runs only in standalone mode, not {mode}")
            });
        }

        let job = &spec["job"];
        problems.check(
            job["jarURI"].as_str().is_some_and(|u| !u.is_empty()),
            || format!("{at}: no job.jarURI: not an application deployment"),
        );
        problems.check(job["upgradeMode"].as_str() == Some("savepoint"), || {
            format!("{at}: job.upgradeMode {:?} is not savepoint: a rescale would lose or guess the job's state", job["upgradeMode"].as_str().unwrap_or_default())
        });
        problems.check(job["state"].as_str().is_none_or(|s| s == "running"), || {
            format!(
                "{at}: job.state {:?} is not running",
                job["state"].as_str().unwrap_or_default()
            )
        });
        for (what, keys) in [
            (
                "checkpoint",
                ["execution.checkpointing.dir", "state.checkpoints.dir"],
            ),
            (
                "savepoint",
                [
                    "execution.checkpointing.savepoint-dir",
                    "state.savepoints.dir",
                ],
            ),
        ] {
            problems.check(setting(&conf, &keys).is_some(), || {
                format!("{at}: no {what} directory ({}): the operator refuses upgradeMode savepoint without it", keys[0])
            });
        }
        problems.check(
            setting(&conf, &["taskmanager.numberOfTaskSlots"])
                .and_then(|s| s.parse::<u32>().ok())
                .is_some_and(|s| s >= 1),
            || format!("{at}: taskmanager.numberOfTaskSlots is not a positive number"),
        );
        problems.check(
            setting(
                &conf,
                &["job.autoscaler.enabled", "kubernetes.operator.job.autoscaler.enabled"],
            ) != Some("true"),
            || format!("{at}: job.autoscaler.enabled: the operator's autoscaler would fight this one over the parallelism"),
        );
        let reporters = prometheus_reporters(&conf);
        match reporters.as_slice() {
            [(name, port)] => problems.check(
                port.as_deref().is_some_and(|p| p.parse::<u16>().is_ok()),
                || format!("{at}: metrics.reporter.{name}.port {port:?} is not one port: a monitor scrapes a fixed port"),
            ),
            _ => problems.add(format!(
                "{at}: {} enabled reporters with factory.class {PROMETHEUS_REPORTER}, not one",
                reporters.len()
            )),
        }

        for section in ["jobManager", "taskManager"] {
            for resource in ["cpu", "memory"] {
                problems.check(
                    !spec[section]["resource"][resource].is_null()
                        || !spec[section]["resources"]["requests"][resource].is_null(),
                    || format!("{at}: no {section}.resource.{resource}"),
                );
            }
        }
        for pod in flink_pods(&value) {
            let component = pod.component;
            problems.check(pod.security["runAsNonRoot"].as_bool() == Some(true), || {
                format!("{at}: {component} pod: securityContext.runAsNonRoot is not true")
            });
            problems.check(
                pod.security["runAsUser"]
                    .as_u64()
                    .is_some_and(|uid| uid != 0),
                || {
                    format!(
                        "{at}: {component} pod: securityContext.runAsUser is not a non-root uid"
                    )
                },
            );
            problems.check(
                pod.container_security
                    .iter()
                    .any(|s| s["allowPrivilegeEscalation"].as_bool() == Some(false)),
                || format!("{at}: {component} pod: {MAIN_CONTAINER} allowPrivilegeEscalation is not false"),
            );
        }

        // The JobManager's account, with the Role the operator documents for it, or the chart's `flink`.
        let account = spec["serviceAccount"].as_str().unwrap_or("default");
        if account != "flink" {
            let bound = installation.of_kind("RoleBinding").any(|binding| {
                let subject = binding.value["subjects"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .any(|s| {
                        s["kind"].as_str() == Some("ServiceAccount")
                            && s["name"].as_str() == Some(account)
                    });
                let role = binding.value["roleRef"]["name"].as_str().unwrap_or("");
                subject
                    && installation.of_kind("Role").any(|r| {
                        r.name() == role
                            && serde_yaml::to_string(&r.value["rules"]).is_ok_and(|rules| {
                                rules.contains("pods") && rules.contains("configmaps")
                            })
                    })
            });
            problems.check(
                installation.of_kind("ServiceAccount").any(|s| s.name() == account) && bound,
                || format!("{at}: serviceAccount {account} is not in {} with a Role on pods and configmaps", installation.dir.display()),
            );
        }
    }
    problems.assert_none("FlinkDeployments");
}

/// The JobManager and every TaskManager are scraped on the reporter's port: by a PodMonitor naming the
/// main container's port, and by the scrape annotations where the pods carry them.
#[test]
fn monitors_scrape_the_reporter_port_of_the_job_and_task_managers() {
    let mut problems = Problems::default();
    for (installation, doc) in flink_deployments(&mut problems) {
        let at = doc.at();
        let value = effective(&installation, &doc);
        let conf = flink_configuration(&value);
        let Some(port) = prometheus_reporters(&conf)
            .first()
            .and_then(|(_, p)| p.as_deref()?.parse::<u64>().ok())
        else {
            continue; // reported by the FlinkDeployment check
        };
        for pod in flink_pods(&value) {
            let component = pod.component;
            let monitors: Vec<&Doc> = installation
                .of_kind("PodMonitor")
                .filter(|m| selects(&m.value["spec"]["selector"]["matchLabels"], &pod.labels))
                .collect();
            problems.check(!monitors.is_empty(), || {
                format!(
                    "{at}: no PodMonitor in {} selects the {component} pods",
                    installation.dir.display()
                )
            });
            for monitor in monitors {
                for endpoint in monitor.value["spec"]["podMetricsEndpoints"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                {
                    let name = endpoint["port"].as_str().unwrap_or("");
                    let number = pod
                        .ports
                        .iter()
                        .find(|(n, _)| n.as_deref() == Some(name))
                        .map(|(_, p)| *p);
                    problems.check(number == Some(port), || {
                        let found = number.map_or_else(
                            || "names no port".to_owned(),
                            |n| format!("is port {n}"),
                        );
                        format!(
                            "{}: endpoint port {name:?} {found} on the {component} pods of {at}, not the reporter's port {port}",
                            monitor.at()
                        )
                    });
                    let path = endpoint["path"].as_str().unwrap_or("/metrics");
                    problems.check(path == "/metrics", || {
                        format!(
                            "{}: path {path} is not /metrics, where the reporter serves",
                            monitor.at()
                        )
                    });
                }
            }
            if pod.annotations["prometheus.io/scrape"].as_str() == Some("true") {
                let annotated = pod.annotations["prometheus.io/port"].as_str().unwrap_or("");
                problems.check(annotated.parse::<u64>().ok() == Some(port), || {
                    format!("{at}: {component} pods: prometheus.io/port {annotated:?} is not the reporter's port {port}")
                });
                let path = pod.annotations["prometheus.io/path"]
                    .as_str()
                    .unwrap_or("/metrics");
                problems.check(path == "/metrics", || {
                    format!("{at}: {component} pods: prometheus.io/path {path} is not /metrics")
                });
            }
        }
    }
    problems.assert_none("Flink metrics endpoints");
}

/// The subscription of each Flink pipeline: the service accepts it, its number is the key the operator
/// acts on in the unit it declares, its selector is the label the reporter puts on this job's series,
/// and the scale file and the Application agree with it.
#[test]
fn the_flink_subscription_matches_the_job_the_scale_file_and_the_application() {
    let mut problems = Problems::default();
    let docs = all_docs();
    let applications: Vec<&Doc> = docs.iter().filter(|d| d.kind() == "Application").collect();
    let mut checked = 0;
    for dir in flink_pipeline_dirs() {
        let Some((at, spec)) = pipeline_subscription(&dir, &mut problems) else {
            continue;
        };
        checked += 1;
        let installation = Installation::load(&dir, &mut problems);
        let deployments: Vec<&Doc> = installation.of_kind("FlinkDeployment").collect();
        let [doc] = deployments.as_slice() else {
            problems.add(format!(
                "{}: {} FlinkDeployments; a subscription scales one",
                dir.display(),
                deployments.len()
            ));
            continue;
        };
        let value = effective(&installation, doc);
        let conf = flink_configuration(&value);
        let target = &spec.target;
        problems.check(target.kind == TargetKind::Flink, || {
            format!("{at}: target.kind is not flink")
        });
        // The operator applies the new number itself; a restart through Flink's REST API would race it.
        problems.check(spec.scales_reactively(), || {
            format!("{at}: target.reactive is not true: the operator redeploys the job, the autoscaler must not restart it")
        });
        // The job's REST API (the operator's `<name>-rest` Service) only confirms the new parallelism:
        // the decision is applied once the redeployed job runs at it. Nothing is resubmitted.
        if let Some(flink) = &target.flink {
            let name = job_name(&value, &conf);
            problems.check(flink.job_name == name, || {
                format!(
                    "{at}: target.flink.job_name is {:?}, the job is {name:?}",
                    flink.job_name
                )
            });
            problems.check(flink.jar_id.is_empty(), || {
                format!("{at}: target.flink.jar_id is set, but the operator deploys the jar")
            });
            let deployment = value["metadata"]["name"].as_str().unwrap_or_default();
            let namespace = installation.namespace.clone().unwrap_or_default();
            let port = setting(&conf, &["rest.port"]).unwrap_or("8081");
            let rest = format!("http://{deployment}-rest.{namespace}.svc:{port}/");
            problems.check(
                target.control_url.as_ref().map(|u| u.as_str()) == Some(rest.as_str()),
                || format!("{at}: target.control_url must be the operator's REST Service {rest}"),
            );
        }

        // The unit of the number in Git, and the key the operator reads it from.
        let mode = value["spec"]["mode"].as_str().unwrap_or("native");
        let reactive_mode =
            setting(&conf, &["scheduler-mode"]).is_some_and(|m| m.eq_ignore_ascii_case("reactive"));
        let slots = setting(&conf, &["taskmanager.numberOfTaskSlots"])
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(1);
        let key = match target.scale_unit {
            Some(ScaleUnit::Parallelism {}) => {
                problems.check(value["spec"]["taskManager"]["replicas"].is_null(), || {
                    format!("{at}: taskManager.replicas is set, and the operator lets it override job.parallelism")
                });
                problems.check(!reactive_mode, || {
                    format!("{at}: in reactive mode the job runs on every slot, so its parallelism is not the number in Git")
                });
                "spec.job.parallelism"
            }
            Some(ScaleUnit::TaskManagers {
                slots_per_task_manager,
            }) => {
                problems.check(mode == "standalone" && reactive_mode, || {
                    format!("{at}: task_managers needs mode standalone and scheduler-mode reactive, or the replicas do not set the parallelism")
                });
                problems.check(slots_per_task_manager == slots, || {
                    format!("{at}: target.scale_unit.slots_per_task_manager {slots_per_task_manager} is not taskmanager.numberOfTaskSlots {slots}")
                });
                "spec.taskManager.replicas"
            }
            None => continue, // refused by the service's validation
        };
        let max_parallelism = setting(&conf, &["pipeline.max-parallelism"])
            .and_then(|m| m.parse::<u32>().ok())
            .unwrap_or(DEFAULT_MAX_PARALLELISM);
        problems.check(
            target
                .parallelism_at(spec.policy.max_scale)
                .is_some_and(|p| p <= max_parallelism),
            || format!("{at}: policy.max_scale {} runs the job above its max parallelism {max_parallelism}", spec.policy.max_scale),
        );

        // The selector, through the scrape's own planning and matching, against the labels this job's
        // series carry: job_name as the reporter rewrites it, and the PodMonitor's target labels.
        let name = job_name(&value, &conf);
        let series = |job: &str| Series {
            labels: HashMap::from([
                ("job_name".to_owned(), reporter_label_value(job)),
                (
                    "job_id".to_owned(),
                    "6b4f1c2a9e0d4e7f8a1b2c3d4e5f6a7b".to_owned(),
                ),
                (
                    "task_id".to_owned(),
                    "cbc357ccb763df2852fee8c4fc7d55f2".to_owned(),
                ),
                (
                    "namespace".to_owned(),
                    installation.namespace.clone().unwrap_or_default(),
                ),
                ("pod".to_owned(), format!("{}-taskmanager-1-1", doc.name())),
                ("container".to_owned(), MAIN_CONTAINER.to_owned()),
            ]),
            value: 1.0,
        };
        let record = ClusterRecord {
            team: autoscaler::tenancy::DEFAULT_TEAM.to_owned(),
            id: 1,
            spec: spec.clone(),
            paused: false,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let other = format!("{name}-other");
        let mut missed = Vec::new();
        for query in plan_queries(std::slice::from_ref(&record)) {
            if !matches!(query.targets, QueryTargets::Grouped { .. }) {
                continue; // the metric's own query
            }
            let picks = |job: &str| query.targets.match_series(&[series(job)]) == [(1, Some(1.0))];
            if !picks(&name) || picks(&other) {
                missed.push(query.metric.name());
            }
        }
        problems.check(missed.is_empty(), || {
            format!(
                "{at}: metrics.selector {:?} does not pick the series of job {name:?} alone (the reporter labels them job_name={:?}; metrics: {})",
                spec.metrics.selector.clone().unwrap_or_default(),
                reporter_label_value(&name),
                missed.join(", ")
            )
        });

        let scale = check_scale_file(&at, &spec, &installation, doc, key, &mut problems);
        problems.check(
            scale.is_none() || yaml_at(&value, key).and_then(Value::as_u64) == scale,
            || {
                format!(
                    "{at}: after the patches {} does not hold the number in {}",
                    doc.at(),
                    spec.git.path
                )
            },
        );
        check_application(&at, &spec, &installation, &applications, &mut problems);
    }
    assert!(checked > 0, "no Flink subscription was checked");
    problems.assert_none("Flink subscription, scale file and Application");
}
