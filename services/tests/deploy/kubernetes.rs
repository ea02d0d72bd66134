//! The Kubernetes manifests: kustomizations, Services, probes, monitors, settings and secret references.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    time::Duration,
};

use autoscaler::{cluster::SecretRef, config::Role};
use http::Method;
use serde_yaml::Value;

use crate::{
    manifests::{
        Doc, EnvSource, Installation, Problems, all_docs, autoscaler_overlays, container_env,
        container_port, containers, kustomization_dirs, parse_env_file, pipeline_dirs, pod_labels,
        pod_spec, read, runs_engine, scalar, selects,
    },
    processes::{
        autoscaler_container, autoscaler_env_flags, autoscaler_subcommands, describe,
        listens_on_all_interfaces, mount_of, pod_port, router_on_port, secret_refs,
        subscription_env_names, subscriptions,
    },
    routes::serves,
};

/// Every installation under `deploy/` (each kustomization, with its bases).
pub fn installations(problems: &mut Problems) -> Vec<Installation> {
    kustomization_dirs()
        .iter()
        .map(|dir| Installation::load(dir, problems))
        .collect()
}

/// The installations whose processes can be started: the overlays (with their example Secrets) and the
/// pipelines (with the Secrets of their examples). A base alone lacks its Secrets.
pub fn complete_installations(problems: &mut Problems) -> Vec<Installation> {
    let mut all = Vec::new();
    for dir in autoscaler_overlays() {
        all.push(Installation::load(&dir, problems));
    }
    for dir in pipeline_dirs() {
        all.push(Installation::pipeline(&dir, problems));
    }
    all
}

#[test]
fn every_manifest_parses_and_every_kustomization_reference_resolves() {
    let docs = all_docs();
    assert!(
        docs.iter().any(|d| d.kind() == "Deployment"),
        "no Deployment under deploy/"
    );
    let mut problems = Problems::default();
    let installations = installations(&mut problems);
    assert!(
        installations
            .iter()
            .any(|i| i.dir.starts_with("deploy/kubernetes/overlays")),
        "no overlay under deploy/kubernetes/overlays"
    );

    for installation in &installations {
        for doc in &installation.resources {
            problems.check(
                doc.value["apiVersion"].as_str().is_some()
                    && !doc.kind().is_empty()
                    && !doc.name().is_empty(),
                || {
                    format!(
                        "{}: a resource without apiVersion, kind or metadata.name",
                        doc.file.display()
                    )
                },
            );
        }
        // A patch must land on something, or kustomize refuses the build.
        for patch in &installation.patches {
            problems.check(
                installation
                    .resources
                    .iter()
                    .any(|r| r.kind() == patch.kind() && r.name() == patch.name()),
                || {
                    format!(
                        "{}: patches {} {}, which {} does not hold",
                        patch.file.display(),
                        patch.kind(),
                        patch.name(),
                        installation.dir.display()
                    )
                },
            );
        }
        // `images:` entries must name an image a container uses, or they change nothing.
        let used: BTreeSet<String> = installation
            .deployments()
            .flat_map(containers)
            .filter_map(|c| c["image"].as_str())
            .map(|i| crate::manifests::split_image(i).0.to_owned())
            .collect();
        for image in &installation.images {
            let name = image["name"].as_str().unwrap_or("");
            problems.check(used.contains(name), || {
                format!(
                    "{}/kustomization.yaml: images entry {name:?} is the image of no container ({used:?})",
                    installation.dir.display()
                )
            });
        }
    }

    // Secrets by reference: neither the base nor a pipeline holds a Secret.
    for installation in &installations {
        if installation.dir.starts_with("deploy/kubernetes/overlays") {
            continue;
        }
        for doc in installation.of_kind("Secret") {
            problems.add(format!(
                "{}: a Secret in {}; reference it instead, and create it outside Git",
                doc.at(),
                installation.dir.display()
            ));
        }
        for generated in installation.generated.iter().filter(|g| g.kind == "Secret") {
            problems.add(format!(
                "{}: generates Secret {} in {}; reference it instead",
                generated.source.display(),
                generated.name,
                installation.dir.display()
            ));
        }
    }

    // Every Kubernetes manifest is part of an installation (examples aside).
    let referenced: BTreeSet<PathBuf> = installations
        .iter()
        .flat_map(|i| i.referenced.iter().map(|(f, _)| f.clone()))
        .collect();
    for file in crate::manifests::manifest_files() {
        let in_kustomize_dirs = ["deploy/kubernetes", "deploy/pipelines", "deploy/argocd"]
            .iter()
            .any(|d| file.starts_with(d));
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        if in_kustomize_dirs
            && yaml
            && name != "kustomization.yaml"
            && !name.contains(".example.")
            && !referenced.contains(&file)
        {
            problems.add(format!(
                "{}: no kustomization lists it (resources, patches or generator files)",
                file.display()
            ));
        }
    }
    problems.assert_none("kustomizations");
}

#[test]
fn services_and_disruption_budgets_select_one_deployment_and_its_ports() {
    let mut problems = Problems::default();
    for installation in installations(&mut problems) {
        let deployments: Vec<&Doc> = installation.deployments().collect();
        for deployment in &deployments {
            problems.check(
                selects(
                    &deployment.value["spec"]["selector"]["matchLabels"],
                    pod_labels(deployment),
                ),
                || {
                    format!(
                        "{}: spec.selector.matchLabels is empty or not on the pod template's labels",
                        deployment.at()
                    )
                },
            );
        }
        for service in installation.of_kind("Service") {
            let selector = &service.value["spec"]["selector"];
            let selected: Vec<&&Doc> = deployments
                .iter()
                .filter(|d| selects(selector, pod_labels(d)))
                .collect();
            let [deployment] = selected.as_slice() else {
                problems.add(format!(
                    "{}: selects the pods of {} Deployments ({:?}), not exactly one",
                    service.at(),
                    selected.len(),
                    selected.iter().map(|d| d.name()).collect::<Vec<_>>()
                ));
                continue;
            };
            for port in service.value["spec"]["ports"]
                .as_sequence()
                .into_iter()
                .flatten()
            {
                let target = port
                    .get("targetPort")
                    .cloned()
                    .unwrap_or_else(|| port["port"].clone());
                problems.check(pod_port(deployment, &target).is_some(), || {
                    format!(
                        "{}: targetPort {} is no container port of Deployment {}",
                        service.at(),
                        scalar(&target).unwrap_or_default(),
                        deployment.name()
                    )
                });
                problems.check(port["name"].as_str().is_some(), || {
                    format!(
                        "{}: port {} has no name (monitors name ports)",
                        service.at(),
                        scalar(&port["port"]).unwrap_or_default()
                    )
                });
            }
        }
        for budget in installation.of_kind("PodDisruptionBudget") {
            let selector = &budget.value["spec"]["selector"]["matchLabels"];
            let selected: Vec<&&Doc> = deployments
                .iter()
                .filter(|d| selects(selector, pod_labels(d)))
                .collect();
            problems.check(selected.len() == 1, || {
                format!(
                    "{}: selects the pods of {} Deployments, not exactly one",
                    budget.at(),
                    selected.len()
                )
            });
            if let (Some(min), [deployment]) = (
                budget.value["spec"]["minAvailable"].as_u64(),
                selected.as_slice(),
            ) {
                let replicas = deployment.value["spec"]["replicas"].as_u64().unwrap_or(1);
                problems.check(min < replicas, || {
                    format!(
                        "{}: minAvailable {min} with {replicas} replica(s) of {} blocks every node drain",
                        budget.at(),
                        deployment.name()
                    )
                });
            }
        }
    }
    problems.assert_none("Services and PodDisruptionBudgets");
}

/// The probes and scrape annotations of every pod, against the routes its process serves on that port.
#[tokio::test]
async fn probes_and_scrape_annotations_name_ports_and_routes_the_process_serves() {
    let mut problems = Problems::default();
    let mut checked = 0;
    for installation in complete_installations(&mut problems) {
        for deployment in installation.deployments() {
            for container in containers(deployment) {
                let name = container["name"].as_str().unwrap_or("");
                for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                    let get = &container[probe]["httpGet"];
                    if get.is_null() {
                        continue;
                    }
                    let path = get["path"].as_str().unwrap_or("/");
                    let Some(port) = container_port(container, &get["port"]) else {
                        problems.add(format!(
                            "{} container {name}: {probe} port {} is no container port",
                            deployment.at(),
                            scalar(&get["port"]).unwrap_or_default()
                        ));
                        continue;
                    };
                    match router_on_port(&installation, deployment, container, port) {
                        Ok(router) => {
                            checked += 1;
                            problems.check(serves(&router, Method::GET, path).await, || {
                                format!(
                                    "{} container {name}: {probe} GET {path} on port {port}: the process serves no such route there",
                                    deployment.at()
                                )
                            });
                        }
                        Err(e) => problems.add(format!(
                            "{} container {name}: {probe} on port {port}: {e}",
                            deployment.at()
                        )),
                    }
                }
                problems.check(!container["livenessProbe"].is_null(), || {
                    format!("{} container {name}: no livenessProbe", deployment.at())
                });
                problems.check(!container["readinessProbe"].is_null(), || {
                    format!("{} container {name}: no readinessProbe", deployment.at())
                });
            }

            let annotations = &deployment.value["spec"]["template"]["metadata"]["annotations"];
            if annotations["prometheus.io/scrape"].as_str() != Some("true") {
                problems.add(format!(
                    "{}: the pod template has no prometheus.io/scrape: \"true\" annotation",
                    deployment.at()
                ));
                continue;
            }
            let path = annotations["prometheus.io/path"]
                .as_str()
                .unwrap_or("/metrics");
            let port = annotations["prometheus.io/port"]
                .as_str()
                .and_then(|p| p.parse::<u16>().ok());
            let Some((container, port)) =
                port.and_then(|p| pod_port(deployment, &Value::from(u64::from(p))))
            else {
                problems.add(format!(
                    "{}: prometheus.io/port {:?} is no container port",
                    deployment.at(),
                    annotations["prometheus.io/port"]
                ));
                continue;
            };
            match router_on_port(&installation, deployment, container, port) {
                Ok(router) => {
                    checked += 1;
                    problems.check(serves(&router, Method::GET, path).await, || {
                        format!(
                            "{}: prometheus.io/path {path} on port {port}: the process serves no such route there",
                            deployment.at()
                        )
                    });
                }
                Err(e) => problems.add(format!(
                    "{}: prometheus.io/port {port}: {e}",
                    deployment.at()
                )),
            }
        }
    }
    assert!(checked > 0, "no probe was checked");
    problems.assert_none("probes and scrape annotations");
}

#[tokio::test]
async fn service_and_pod_monitors_select_named_ports_that_serve_metrics() {
    let mut problems = Problems::default();
    let mut monitors = 0;
    for installation in complete_installations(&mut problems) {
        let deployments: Vec<&Doc> = installation.deployments().collect();
        for monitor in installation.of_kind("ServiceMonitor") {
            monitors += 1;
            let selector = &monitor.value["spec"]["selector"]["matchLabels"];
            let services: Vec<&Doc> = installation
                .of_kind("Service")
                .filter(|s| selects(selector, &s.value["metadata"]["labels"]))
                .collect();
            problems.check(!services.is_empty(), || {
                format!("{}: selects no Service", monitor.at())
            });
            for endpoint in monitor.value["spec"]["endpoints"]
                .as_sequence()
                .into_iter()
                .flatten()
            {
                let port_name = endpoint["port"].as_str().unwrap_or("");
                let path = endpoint["path"].as_str().unwrap_or("/metrics");
                for service in &services {
                    let Some(port) = service.value["spec"]["ports"]
                        .as_sequence()
                        .into_iter()
                        .flatten()
                        .find(|p| p["name"].as_str() == Some(port_name))
                    else {
                        problems.add(format!(
                            "{}: endpoint port {port_name:?} is not a port name of Service {}",
                            monitor.at(),
                            service.name()
                        ));
                        continue;
                    };
                    let target = port
                        .get("targetPort")
                        .cloned()
                        .unwrap_or_else(|| port["port"].clone());
                    let Some(deployment) = deployments
                        .iter()
                        .find(|d| selects(&service.value["spec"]["selector"], pod_labels(d)))
                    else {
                        continue; // reported by the Service check
                    };
                    let Some((container, number)) = pod_port(deployment, &target) else {
                        continue; // reported by the Service check
                    };
                    match router_on_port(&installation, deployment, container, number) {
                        Ok(router) => problems.check(serves(&router, Method::GET, path).await, || {
                            format!(
                                "{}: GET {path} through Service {} port {port_name}: {} serves no such route",
                                monitor.at(),
                                service.name(),
                                deployment.name()
                            )
                        }),
                        Err(e) => problems.add(format!("{}: {e}", monitor.at())),
                    }
                }
            }
        }
        for monitor in installation.of_kind("PodMonitor") {
            monitors += 1;
            let selector = &monitor.value["spec"]["selector"]["matchLabels"];
            if crate::flink_model::selects_flink_pods(&installation, selector) {
                continue; // scrapes Flink's reporter: checked in flink.rs
            }
            let selected: Vec<&&Doc> = deployments
                .iter()
                .filter(|d| selects(selector, pod_labels(d)))
                .collect();
            let [deployment] = selected.as_slice() else {
                problems.add(format!(
                    "{}: selects the pods of {} Deployments, not exactly one",
                    monitor.at(),
                    selected.len()
                ));
                continue;
            };
            for endpoint in monitor.value["spec"]["podMetricsEndpoints"]
                .as_sequence()
                .into_iter()
                .flatten()
            {
                let path = endpoint["path"].as_str().unwrap_or("/metrics");
                let Some((container, port)) = endpoint["port"]
                    .as_str()
                    .and_then(|p| pod_port(deployment, &Value::from(p)))
                else {
                    problems.add(format!(
                        "{}: port {:?} is no named container port of {}",
                        monitor.at(),
                        endpoint["port"],
                        deployment.name()
                    ));
                    continue;
                };
                match router_on_port(&installation, deployment, container, port) {
                    Ok(router) => problems.check(serves(&router, Method::GET, path).await, || {
                        format!(
                            "{}: GET {path} on port {port}: {} serves no such route",
                            monitor.at(),
                            deployment.name()
                        )
                    }),
                    Err(e) => problems.add(format!("{}: {e}", monitor.at())),
                }
            }
        }
    }
    assert!(
        monitors > 0,
        "no ServiceMonitor or PodMonitor under deploy/"
    );
    problems.assert_none("ServiceMonitors and PodMonitors");
}

#[test]
fn every_pod_runs_as_non_root_with_requests_and_limits() {
    let mut problems = Problems::default();
    for installation in installations(&mut problems) {
        for deployment in installation.deployments() {
            let pod = &pod_spec(deployment)["securityContext"];
            problems.check(pod["runAsNonRoot"].as_bool() == Some(true), || {
                format!(
                    "{}: securityContext.runAsNonRoot is not true",
                    deployment.at()
                )
            });
            problems.check(
                pod["runAsUser"].as_u64().is_some_and(|uid| uid != 0),
                || {
                    format!(
                        "{}: securityContext.runAsUser is not a non-root uid",
                        deployment.at()
                    )
                },
            );
            for container in containers(deployment) {
                let name = container["name"].as_str().unwrap_or("");
                let security = &container["securityContext"];
                problems.check(
                    security["allowPrivilegeEscalation"].as_bool() == Some(false),
                    || {
                        format!(
                            "{} container {name}: allowPrivilegeEscalation is not false",
                            deployment.at()
                        )
                    },
                );
                for (section, resource) in [
                    ("requests", "cpu"),
                    ("requests", "memory"),
                    ("limits", "memory"),
                ] {
                    problems.check(!container["resources"][section][resource].is_null(), || {
                        format!(
                            "{} container {name}: no resources.{section}.{resource}",
                            deployment.at()
                        )
                    });
                }
                // A read-only root needs a writable /tmp for whatever writes temporary files.
                if security["readOnlyRootFilesystem"].as_bool() == Some(true)
                    && !runs_engine(container)
                {
                    problems.check(
                        mount_of(deployment, container, std::path::Path::new("/tmp/x"))
                            .is_some_and(|(_, v)| !v["emptyDir"].is_null()),
                        || {
                            format!(
                                "{} container {name}: read-only root without an emptyDir at /tmp",
                                deployment.at()
                            )
                        },
                    );
                }
            }
        }
    }
    problems.assert_none("pod security and resources");
}

/// Every autoscaler container of an overlay: a real role, only settings the binary reads, and a
/// configuration the binary accepts for that role (with the overlay's example secrets).
#[test]
fn autoscaler_containers_set_only_settings_the_binary_reads_and_start() {
    let flags = autoscaler_env_flags();
    assert!(
        flags.contains_key("DATABASE_URL") && flags.contains_key("AUTOSCALER_LISTEN"),
        "clap lists no env settings: {flags:?}"
    );
    let subcommands = autoscaler_subcommands();
    let credentials = subscription_env_names();
    let uses_file_secrets = subscriptions()
        .iter()
        .filter(|(f, _)| !f.starts_with("deploy/compose"))
        .filter_map(|(_, s)| s.as_ref().ok())
        .any(|s| {
            secret_refs(s)
                .iter()
                .any(|(_, r)| matches!(r, SecretRef::File(_)))
        });
    let mut problems = Problems::default();
    let mut roles = BTreeSet::new();
    let overlays = autoscaler_overlays();
    assert!(
        !overlays.is_empty(),
        "no overlay under deploy/kubernetes/overlays"
    );
    for dir in overlays {
        let installation = Installation::load(&dir, &mut problems);
        for deployment in installation.deployments() {
            for container in containers(deployment)
                .into_iter()
                .filter(|c| !runs_engine(c))
            {
                let at = format!(
                    "{} container {} (in {})",
                    deployment.at(),
                    container["name"].as_str().unwrap_or(""),
                    dir.display()
                );
                let args = crate::manifests::strings(&container["args"]);
                problems.check(
                    args.first().is_some_and(|a| subcommands.contains(a)),
                    || {
                        format!(
                            "{at}: args {args:?} do not start with a subcommand ({subcommands:?})"
                        )
                    },
                );
                let env = container_env(&installation, container);
                let parsed = match autoscaler_container(&installation, container) {
                    Ok(p) => p,
                    Err(e) => {
                        problems.add(format!("{at}: {e}"));
                        continue;
                    }
                };
                let role = parsed.role;
                roles.insert(format!("{role:?}"));
                problems.check(role != Role::Migrate, || {
                    format!("{at}: `migrate` exits at once; every role migrates at start")
                });
                let runs_worker = matches!(role, Role::Worker | Role::Run);
                for (name, source) in &env {
                    let read_by_clap = flags.contains_key(name);
                    let named_credential = runs_worker && credentials.contains(name);
                    problems.check(read_by_clap || named_credential, || {
                        format!(
                            "{at}: sets {name} ({}), which the autoscaler does not read (not a clap env setting{})",
                            describe(source),
                            if runs_worker {
                                ", nor a credential a subscription names"
                            } else {
                                ""
                            }
                        )
                    });
                }
                problems.check(env.iter().any(|(n, _)| n == "DATABASE_URL"), || {
                    format!("{at}: DATABASE_URL is not set (the default is 127.0.0.1)")
                });
                let listen = parsed.config.listen;
                problems.check(listens_on_all_interfaces(&listen), || {
                    format!("{at}: AUTOSCALER_LISTEN {listen} is unreachable from other pods")
                });
                problems.check(
                    container_port(container, &Value::from(u64::from(listen.port()))).is_some(),
                    || {
                        format!(
                            "{at}: AUTOSCALER_LISTEN port {} is no container port",
                            listen.port()
                        )
                    },
                );

                // What `autoscaler` checks at start, with the secrets directory as the pod has it.
                let mut config = parsed.config.clone();
                if let Some(dir) = &config.secrets_dir {
                    // The default team's store, <dir>/default, is a Secret volume.
                    let store = dir.join("default");
                    let mounted =
                        mount_of(deployment, container, &store.join("x")).is_some_and(|(m, v)| {
                            m["mountPath"].as_str() == store.to_str() && !v["secret"].is_null()
                        });
                    problems.check(mounted, || {
                        format!(
                            "{at}: AUTOSCALER_SECRETS_DIR {}/default (the default team's store) is not where a Secret volume is mounted",
                            dir.display()
                        )
                    });
                    config.secrets_dir = Some(std::env::temp_dir());
                }
                if let Err(e) = config.validate(role) {
                    problems.add(format!("{at}: the autoscaler refuses to start: {e}"));
                }
                if role == Role::Webhook {
                    problems.check(!config.argocd_webhook_tokens.is_empty(), || {
                        format!("{at}: no AUTOSCALER_ARGOCD_WEBHOOK_TOKENS: every Argo CD notification would be refused")
                    });
                    problems.check(!config.engine_tokens.is_empty(), || {
                        format!("{at}: no AUTOSCALER_ENGINE_TOKENS: every engine announcement would be refused")
                    });
                }
                if runs_worker {
                    problems.check(
                        !uses_file_secrets || parsed.config.secrets_dir.is_some(),
                        || format!("{at}: subscriptions name {{\"file\": ...}} credentials but AUTOSCALER_SECRETS_DIR is not set"),
                    );
                    let work_dir = parsed.config.work_dir.clone();
                    problems.check(
                        work_dir.as_ref().is_some_and(|w| {
                            mount_of(deployment, container, &w.join("x"))
                                .is_some_and(|(_, v)| !v["emptyDir"].is_null())
                        }),
                        || format!("{at}: AUTOSCALER_WORK_DIR {work_dir:?} is not on an emptyDir volume (the root file system is read-only)"),
                    );
                }
                let grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
                    .as_u64()
                    .unwrap_or(30);
                problems.check(
                    Duration::from_secs(grace) > config.shutdown_timeout,
                    || format!(
                        "{at}: terminationGracePeriodSeconds {grace} is not longer than AUTOSCALER_SHUTDOWN_TIMEOUT {:?}",
                        config.shutdown_timeout
                    ),
                );
            }
        }
    }
    for role in ["Manager", "Worker", "Webhook"] {
        problems.check(roles.contains(role), || {
            format!("no Deployment runs the {role} role")
        });
    }
    problems.assert_none("autoscaler settings");
}

/// Every reference to a Secret or ConfigMap resolves in the installation: in an overlay to what its
/// generators make from the example files; in a pipeline to the keys its `secrets.env.example` lists.
#[test]
fn secret_and_config_references_resolve() {
    let mut problems = Problems::default();
    let mut references = 0;
    for dir in autoscaler_overlays().into_iter().chain(pipeline_dirs()) {
        let installation = Installation::load(&dir, &mut problems);
        let example = dir.join("secrets.env.example");
        let pipeline_secrets = dir
            .starts_with("deploy/pipelines")
            .then(|| {
                crate::manifests::root()
                    .join(&example)
                    .is_file()
                    .then(|| parse_env_file(&read(&example)))
            })
            .flatten();
        let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for deployment in installation.deployments() {
            for container in containers(deployment) {
                let at = format!(
                    "{} container {}",
                    deployment.at(),
                    container["name"].as_str().unwrap_or("")
                );
                for from in container["envFrom"].as_sequence().into_iter().flatten() {
                    if let Some(name) = from["configMapRef"]["name"].as_str() {
                        references += 1;
                        problems.check(installation.config_map(name).is_some(), || {
                            format!("{at}: envFrom ConfigMap {name} is not in {}", dir.display())
                        });
                    }
                    if let Some(name) = from["secretRef"]["name"].as_str() {
                        references += 1;
                        problems.check(installation.secret(name).is_some(), || {
                            format!("{at}: envFrom Secret {name} is not in {}", dir.display())
                        });
                    }
                }
                for (var, source) in container_env(&installation, container) {
                    match source {
                        EnvSource::Secret { name, key } => {
                            references += 1;
                            used.entry(name.clone()).or_default().insert(key.clone());
                            let found = match &pipeline_secrets {
                                Some(keys) => keys.contains_key(&key),
                                None => installation
                                    .secret(&name)
                                    .is_some_and(|data| data.contains_key(&key)),
                            };
                            problems.check(found, || {
                                let provider = if pipeline_secrets.is_some() {
                                    example.display().to_string()
                                } else {
                                    format!("the secretGenerator of {}", dir.display())
                                };
                                format!(
                                    "{at}: env {var} reads secretKeyRef {name}/{key}, which {provider} does not provide"
                                )
                            });
                        }
                        EnvSource::ConfigMap { name, key } => {
                            references += 1;
                            problems.check(
                                installation
                                    .config_map(&name)
                                    .is_some_and(|d| d.contains_key(&key)),
                                || format!("{at}: env {var} reads configMapKeyRef {name}/{key}, which is not in {}", dir.display()),
                            );
                        }
                        EnvSource::Unknown => problems
                            .add(format!("{at}: env {var} has no value and no known source")),
                        EnvSource::Value(_) | EnvSource::Field(_) => {}
                    }
                }
            }
            for volume in pod_spec(deployment)["volumes"]
                .as_sequence()
                .into_iter()
                .flatten()
            {
                if let Some(name) = volume["secret"]["secretName"].as_str() {
                    references += 1;
                    used.entry(name.to_owned()).or_default();
                    if pipeline_secrets.is_none() {
                        problems.check(installation.secret(name).is_some(), || {
                            format!(
                                "{}: volume {} mounts Secret {name}, which {} does not make",
                                deployment.at(),
                                volume["name"].as_str().unwrap_or(""),
                                dir.display()
                            )
                        });
                    }
                }
                if let Some(name) = volume["configMap"]["name"].as_str() {
                    references += 1;
                    problems.check(installation.config_map(name).is_some(), || {
                        format!(
                            "{}: volume {} mounts ConfigMap {name}, which {} does not hold",
                            deployment.at(),
                            volume["name"].as_str().unwrap_or(""),
                            dir.display()
                        )
                    });
                }
            }
        }
        // The examples list what is used and nothing else, so they show what to create.
        if let Some(keys) = &pipeline_secrets {
            let read_keys: BTreeSet<&String> = used.values().flatten().collect();
            for key in keys.keys() {
                problems.check(read_keys.contains(key), || {
                    format!("{}: key {key} is read by no container", example.display())
                });
            }
        }
        for generated in installation.generated.iter().filter(|g| g.kind == "Secret") {
            let Some(keys) = used.get(&generated.name) else {
                problems.add(format!(
                    "{}: generates Secret {}, which no container reads",
                    generated.source.display(),
                    generated.name
                ));
                continue;
            };
            if keys.is_empty() {
                continue; // mounted whole as a volume
            }
            for key in generated.data.keys() {
                problems.check(keys.contains(key), || {
                    format!(
                        "{}: Secret {} key {key} is read by no container",
                        generated.source.display(),
                        generated.name
                    )
                });
            }
        }
    }
    assert!(
        references > 0,
        "no Secret or ConfigMap reference was checked"
    );
    problems.assert_none("Secret and ConfigMap references");
}

/// The file credentials subscriptions name are keys of the Secret mounted at the default team's store under
/// the worker's AUTOSCALER_SECRETS_DIR; the env credentials are variables of the worker.
#[test]
fn subscription_credentials_are_where_the_worker_looks() {
    let mut problems = Problems::default();
    let specs: Vec<_> = subscriptions()
        .into_iter()
        .filter(|(f, _)| f.starts_with("deploy/pipelines"))
        .collect();
    assert!(
        !specs.is_empty(),
        "no subscription.json under deploy/pipelines"
    );
    for dir in autoscaler_overlays() {
        let installation = Installation::load(&dir, &mut problems);
        let workers: Vec<(&Doc, &Value)> = installation
            .deployments()
            .flat_map(|d| containers(d).into_iter().map(move |c| (d, c)))
            .filter(|(_, c)| {
                crate::manifests::strings(&c["args"])
                    .first()
                    .is_some_and(|a| a == "worker" || a == "run")
            })
            .collect();
        problems.check(!workers.is_empty(), || {
            format!("{}: no container runs the worker role", dir.display())
        });
        for (deployment, container) in workers {
            let env = container_env(&installation, container);
            let parsed = autoscaler_container(&installation, container);
            for (file, spec) in &specs {
                let Ok(spec) = spec else { continue };
                for (field, secret) in secret_refs(spec) {
                    match secret {
                        SecretRef::Env(name) => problems.check(
                            env.iter().any(|(n, _)| *n == name),
                            || format!(
                                "{}: {field} names env {name}, which the worker {} does not set",
                                file.display(),
                                deployment.at()
                            ),
                        ),
                        SecretRef::File(path) => {
                            let Some(dir) = parsed.as_ref().ok().and_then(|p| p.config.secrets_dir.clone()) else {
                                problems.add(format!(
                                    "{}: {field} names file {path}, but the worker {} has no AUTOSCALER_SECRETS_DIR",
                                    file.display(),
                                    deployment.at()
                                ));
                                continue;
                            };
                            // The shipped subscriptions are the default team's: its store is <dir>/default.
                            let volume = mount_of(deployment, container, &dir.join("default").join(&path))
                                .map(|(_, v)| v.clone());
                            let secret_name = volume
                                .as_ref()
                                .and_then(|v| v["secret"]["secretName"].as_str().map(str::to_owned));
                            let key = volume
                                .as_ref()
                                .and_then(|v| {
                                    v["secret"]["items"].as_sequence().map(|items| {
                                        items
                                            .iter()
                                            .find(|i| i["path"].as_str() == Some(path.as_str()))
                                            .and_then(|i| i["key"].as_str().map(str::to_owned))
                                    })
                                })
                                .unwrap_or(Some(path.clone()));
                            let provided = match (&secret_name, &key) {
                                (Some(name), Some(key)) => installation
                                    .secret(name)
                                    .is_some_and(|d| d.contains_key(key)),
                                _ => false,
                            };
                            problems.check(provided, || {
                                format!(
                                    "{}: {field} names file {path} under {}, which no key of a Secret mounted there in {} provides (Secret {secret_name:?}, key {key:?})",
                                    file.display(),
                                    dir.display(),
                                    installation.dir.display()
                                )
                            });
                        }
                    }
                }
            }
        }
    }
    problems.assert_none("subscription credentials");
}
