//! The pipeline engine's installation against the engine's own configuration loader, the autoscaler's
//! webhook Service, the scale file the autoscaler edits, the subscription and the Argo CD side.

use std::{collections::BTreeSet, time::Duration};

use autoscaler::{cluster::TargetKind, config::Role};
use http::Method;
use serde_yaml::Value;
use url::Url;

use crate::{
    manifests::{
        Doc, Installation, Problems, all_docs, autoscaler_overlays, container_env, container_port,
        containers, engine_pipeline_dirs, pod_spec, root, runs_engine, scalar,
    },
    processes::{
        autoscaler_container, engine_config_file, engine_container_config,
        listens_on_all_interfaces,
    },
    routes::{answer, autoscaler_router},
    subscription::{check_application, check_scale_file, pipeline_subscription},
};

/// An engine Deployment of a pipeline installation, with its engine container.
fn engine_deployments(installation: &Installation) -> Vec<(&Doc, &Value)> {
    installation
        .deployments()
        .flat_map(|d| containers(d).into_iter().map(move |c| (d, c)))
        .filter(|(_, c)| runs_engine(c))
        .collect()
}

#[test]
fn the_engine_config_loads_and_matches_its_pod() {
    let mut problems = Problems::default();
    let dirs = engine_pipeline_dirs();
    assert!(
        !dirs.is_empty(),
        "no engine pipeline under deploy/pipelines"
    );
    for dir in dirs {
        let installation = Installation::pipeline(&dir, &mut problems);
        let engines = engine_deployments(&installation);
        problems.check(!engines.is_empty(), || {
            format!("{}: no Deployment runs pipeline-engine", dir.display())
        });
        for (deployment, container) in engines {
            let at = deployment.at();
            // Only the engine's settings: ENGINE__* overrides and ENGINE_CONFIG, and variables those
            // spell out as `$(NAME)` (the pod's IP in the advertised control URL).
            let env = container_env(&installation, container);
            let spelled_out = |name: &str| {
                env.iter().any(|(other, source)| {
                    other.starts_with(pipeline_engine::config::ENV_PREFIX)
                        && matches!(source, crate::manifests::EnvSource::Value(v) if v.contains(&format!("$({name})")))
                })
            };
            for (name, _) in &env {
                problems.check(
                    name.starts_with(pipeline_engine::config::ENV_PREFIX)
                        || name == "ENGINE_CONFIG"
                        || spelled_out(name),
                    || format!("{at}: sets {name}, which pipeline-engine does not read"),
                );
            }
            let (_, map, key, text) = match engine_config_file(&installation, deployment, container)
            {
                Ok(found) => found,
                Err(e) => {
                    problems.add(format!("{at}: {e}"));
                    continue;
                }
            };
            // The file alone must not pin an instance id: every replica would announce the same one.
            match pipeline_engine::config::Config::from_yaml(&text) {
                Ok(file_only) => problems.check(file_only.pipeline.instance_id.is_none(), || {
                    format!("{at}: ConfigMap {map} key {key} sets pipeline.instance_id; every replica would share it")
                }),
                Err(e) => problems.add(format!("{at}: ConfigMap {map} key {key}: {e}")),
            }
            let config = match engine_container_config(&installation, deployment, container) {
                Ok(c) => c,
                Err(e) => {
                    problems.add(format!("{at}: the engine would exit 2: {e}"));
                    continue;
                }
            };
            let env = container_env(&installation, container);
            problems.check(
                env.iter().any(|(n, s)| {
                    n == "ENGINE__PIPELINE__INSTANCE_ID"
                        && *s == crate::manifests::EnvSource::Field("metadata.name".into())
                }),
                || format!("{at}: ENGINE__PIPELINE__INSTANCE_ID does not come from the pod name (fieldRef metadata.name)"),
            );
            for (what, addr, port_name) in [
                ("metrics.listen", config.metrics.listen, "metrics"),
                ("control.listen", config.control.listen, "control"),
            ] {
                problems.check(listens_on_all_interfaces(&addr), || {
                    format!("{at}: {what} {addr} is unreachable from outside the pod")
                });
                problems.check(
                    container_port(container, &Value::from(port_name)) == Some(addr.port()),
                    || {
                        format!(
                            "{at}: {what} port {} is not the container port named {port_name}",
                            addr.port()
                        )
                    },
                );
            }
            let annotations = &deployment.value["spec"]["template"]["metadata"]["annotations"];
            problems.check(
                annotations["prometheus.io/port"].as_str()
                    == Some(config.metrics.listen.port().to_string().as_str()),
                || {
                    format!(
                        "{at}: prometheus.io/port {:?} is not metrics.listen's port {}",
                        annotations["prometheus.io/port"],
                        config.metrics.listen.port()
                    )
                },
            );
            let grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
                .as_u64()
                .unwrap_or(30);
            problems.check(config.control.drain_deadline < Duration::from_secs(grace), || {
                format!(
                    "{at}: control.drain_deadline {:?} is not shorter than terminationGracePeriodSeconds {grace}",
                    config.control.drain_deadline
                )
            });
        }
    }
    problems.assert_none("engine configuration");
}

/// `host.namespace.svc[.cluster.local]` as (Service, namespace).
fn service_of(host: &str) -> Option<(&str, &str)> {
    let rest = host
        .strip_suffix(".svc.cluster.local")
        .or_else(|| host.strip_suffix(".svc"))?;
    rest.split_once('.')
}

/// Checks that `url` reaches the autoscaler's webhook Service in an overlay and that the role behind it
/// serves `method url.path()` (answering 401 without credentials). Returns the overlay's installation.
async fn reaches_webhook(
    url: &str,
    method: Method,
    at: &str,
    problems: &mut Problems,
) -> Option<Installation> {
    let Ok(parsed) = Url::parse(url) else {
        problems.add(format!("{at}: {url:?} is not a URL"));
        return None;
    };
    let Some((service, namespace)) = parsed.host_str().and_then(service_of) else {
        problems.add(format!(
            "{at}: {url} does not name a Service as <name>.<namespace>.svc"
        ));
        return None;
    };
    let port = parsed.port_or_known_default().unwrap_or(0);
    let mut found = None;
    for dir in autoscaler_overlays() {
        let installation = Installation::load(&dir, &mut Problems::default());
        if installation.namespace.as_deref() == Some(namespace) {
            found = Some(installation);
        }
    }
    let Some(installation) = found else {
        problems.add(format!(
            "{at}: {url}: no overlay under deploy/kubernetes/overlays installs into namespace {namespace}"
        ));
        return None;
    };
    let Some(svc) = installation
        .of_kind("Service")
        .find(|s| s.name() == service)
    else {
        problems.add(format!(
            "{at}: {url}: {} has no Service {service}",
            installation.dir.display()
        ));
        return None;
    };
    let Some(svc_port) = svc.value["spec"]["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|p| p["port"].as_u64() == Some(u64::from(port)))
    else {
        problems.add(format!("{at}: {url}: Service {service} has no port {port}"));
        return None;
    };
    let target = svc_port
        .get("targetPort")
        .cloned()
        .unwrap_or_else(|| svc_port["port"].clone());
    let deployment = installation.deployments().find(|d| {
        crate::manifests::selects(
            &svc.value["spec"]["selector"],
            crate::manifests::pod_labels(d),
        )
    });
    let Some(deployment) = deployment else {
        problems.add(format!(
            "{at}: {url}: Service {service} selects no Deployment"
        ));
        return None;
    };
    let Some((container, container_port)) = crate::processes::pod_port(deployment, &target) else {
        problems.add(format!(
            "{at}: {url}: Service {service} targets no container port"
        ));
        return None;
    };
    match autoscaler_container(&installation, container) {
        Ok(process) => {
            problems.check(process.config.listen.port() == container_port, || {
                format!("{at}: {url}: {} listens on {}, not on the Service's target port {container_port}", deployment.at(), process.config.listen)
            });
            let router = autoscaler_router(process.role);
            let status = answer(&router, method.clone(), parsed.path()).await;
            problems.check(status == http::StatusCode::UNAUTHORIZED, || {
                format!(
                    "{at}: {method} {url}: the {:?} role behind Service {service} answers {status} without credentials, not 401 (no such receiver?)",
                    process.role
                )
            });
        }
        Err(e) => problems.add(format!("{at}: {url}: {}: {e}", deployment.at())),
    }
    Some(installation)
}

#[tokio::test]
async fn the_engine_announces_itself_to_the_webhook_service_with_an_accepted_token() {
    let mut problems = Problems::default();
    for dir in engine_pipeline_dirs() {
        let installation = Installation::pipeline(&dir, &mut problems);
        for (deployment, container) in engine_deployments(&installation) {
            let at = deployment.at();
            let Ok(config) = engine_container_config(&installation, deployment, container) else {
                continue; // reported by the configuration check
            };
            let Some(url) = config.announce.url.clone() else {
                problems.add(format!(
                    "{at}: no announce.url: the autoscaler would not see the instances"
                ));
                continue;
            };
            problems.check(url.ends_with("/webhooks/engine"), || {
                format!("{at}: announce.url {url} is not the /webhooks/engine receiver")
            });
            let Some(overlay) = reaches_webhook(&url, Method::POST, &at, &mut problems).await
            else {
                continue;
            };
            // The token the engine sends must be one the webhook accepts (the example values agree).
            let token = config.announce.token.clone().unwrap_or_default();
            let accepted: Vec<String> = overlay
                .deployments()
                .flat_map(containers)
                .filter_map(|c| autoscaler_container(&overlay, c).ok())
                .filter(|p| matches!(p.role, Role::Webhook | Role::Run))
                .flat_map(|p| p.config.engine_tokens)
                .collect();
            problems.check(!token.is_empty() && accepted.contains(&token), || {
                format!(
                    "{at}: announce.token (from {}'s example) is not one of the webhook's AUTOSCALER_ENGINE_TOKENS in {}",
                    dir.display(),
                    overlay.dir.display()
                )
            });
            // Heartbeats must come more often than the worker's timeout, or instances count as gone.
            for worker in overlay
                .deployments()
                .flat_map(containers)
                .filter_map(|c| autoscaler_container(&overlay, c).ok())
                .filter(|p| matches!(p.role, Role::Worker | Role::Run))
            {
                problems.check(
                    config.announce.heartbeat_interval
                        < worker.config.engine_heartbeat_timeout,
                    || format!(
                        "{at}: announce.heartbeat_interval {:?} is not shorter than the worker's AUTOSCALER_ENGINE_HEARTBEAT_TIMEOUT {:?}",
                        config.announce.heartbeat_interval,
                        worker.config.engine_heartbeat_timeout
                    ),
                );
            }
            // Same image as the autoscaler it talks to.
            let image = installation.image_of(container["image"].as_str().unwrap_or(""));
            for other in overlay.deployments().flat_map(containers) {
                let theirs = overlay.image_of(other["image"].as_str().unwrap_or(""));
                problems.check(image == theirs, || {
                    format!(
                        "{at}: runs image {image}, but {} runs {theirs}: one image holds both binaries",
                        overlay.dir.display()
                    )
                });
            }
        }
    }
    problems.assert_none("engine announcements");
}

/// The subscription of each engine pipeline against the engine, the scale file and the Argo CD
/// Application.
#[test]
fn the_subscription_matches_the_scale_file_the_engine_and_the_application() {
    let mut problems = Problems::default();
    let docs = all_docs();
    let applications: Vec<&Doc> = docs.iter().filter(|d| d.kind() == "Application").collect();
    let mut checked = 0;
    for dir in engine_pipeline_dirs() {
        let Some((at, spec)) = pipeline_subscription(&dir, &mut problems) else {
            continue;
        };
        checked += 1;
        problems.check(spec.target.kind == TargetKind::Engine, || {
            format!("{at}: target.kind is not engine")
        });

        let installation = Installation::pipeline(&dir, &mut problems);
        let engines = engine_deployments(&installation);
        let Some((deployment, container)) = engines.first() else {
            continue; // reported by the configuration check
        };
        if let Ok(config) = engine_container_config(&installation, deployment, container) {
            let pipeline = &config.pipeline.name;
            problems.check(spec.name == *pipeline, || {
                format!("{at}: name {:?} is not the engine's pipeline.name {pipeline:?}: its announcements would be refused as an unknown cluster", spec.name)
            });
            let selector = spec.metrics.selector.clone().unwrap_or_default();
            problems.check(
                selector.get("pipeline") == Some(pipeline) && selector.len() == 1,
                || format!("{at}: metrics.selector {selector:?} is not {{\"pipeline\": {pipeline:?}}}, the label the engine puts on its metrics"),
            );
            if spec.policy.partition_count.is_some() {
                problems.check(config.kafka.topics.len() == 1, || {
                    format!(
                        "{at}: policy.partition_count is set but the engine reads {} topics",
                        config.kafka.topics.len()
                    )
                });
            }
        }
        // The engine's replica count: a patch of its Deployment.
        check_scale_file(
            &at,
            &spec,
            &installation,
            deployment,
            "spec.replicas",
            &mut problems,
        );
        check_application(&at, &spec, &installation, &applications, &mut problems);
    }
    assert!(checked > 0, "no subscription was checked");
    problems.assert_none("subscription, scale file and Application");
}

#[tokio::test]
async fn argocd_notifications_call_the_webhook_and_applications_subscribe_to_defined_triggers() {
    let mut problems = Problems::default();
    let docs = all_docs();
    let Some(cm) = docs
        .iter()
        .find(|d| d.kind() == "ConfigMap" && d.name() == "argocd-notifications-cm")
    else {
        panic!("no argocd-notifications-cm under deploy/");
    };
    let at = cm.at();
    let data = cm.value["data"].as_mapping().cloned().unwrap_or_default();
    let keys: Vec<String> = data.keys().filter_map(scalar).collect();
    let named = |prefix: &str| -> BTreeSet<String> {
        keys.iter()
            .filter_map(|k| k.strip_prefix(prefix).map(str::to_owned))
            .collect()
    };
    let services = named("service.webhook.");
    let templates = named("template.");
    let triggers = named("trigger.");
    assert!(
        !services.is_empty() && !templates.is_empty() && !triggers.is_empty(),
        "{at}: no webhook service, template or trigger"
    );

    let secret_docs: Vec<&Doc> = docs
        .iter()
        .filter(|d| d.kind() == "Secret" && d.name() == "argocd-notifications-secret")
        .collect();
    for service in &services {
        let config: Value = serde_yaml::from_str(
            cm.value["data"][format!("service.webhook.{service}").as_str()]
                .as_str()
                .unwrap_or(""),
        )
        .unwrap_or(Value::Null);
        let url = config["url"].as_str().unwrap_or("").to_owned();
        // Every path a template sends to this service must be a receiver of the Service behind the URL.
        for template in &templates {
            let body: Value = serde_yaml::from_str(
                cm.value["data"][format!("template.{template}").as_str()]
                    .as_str()
                    .unwrap_or(""),
            )
            .unwrap_or(Value::Null);
            let call = &body["webhook"][service.as_str()];
            if call.is_null() {
                continue;
            }
            let method = call["method"]
                .as_str()
                .unwrap_or("GET")
                .parse::<Method>()
                .unwrap_or(Method::GET);
            let path = call["path"].as_str().unwrap_or("");
            let full = format!("{}{path}", url.trim_end_matches('/'));
            let Some(overlay) = reaches_webhook(
                &full,
                method,
                &format!("{at} template.{template}"),
                &mut problems,
            )
            .await
            else {
                continue;
            };
            // The token Argo CD sends is one the webhook accepts.
            let headers = serde_yaml::to_string(&config["headers"]).unwrap_or_default();
            for variable in headers.split('$').skip(1) {
                let key: String = variable
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                let value = secret_docs
                    .iter()
                    .find_map(|s| s.value["stringData"][key.as_str()].as_str());
                let Some(value) = value else {
                    problems.add(format!("{at}: service.webhook.{service} reads ${key}, which no argocd-notifications-secret example under deploy/ holds"));
                    continue;
                };
                let accepted: Vec<String> = overlay
                    .deployments()
                    .flat_map(containers)
                    .filter_map(|c| autoscaler_container(&overlay, c).ok())
                    .filter(|p| matches!(p.role, Role::Webhook | Role::Run))
                    .flat_map(|p| p.config.argocd_webhook_tokens)
                    .collect();
                problems.check(accepted.iter().any(|t| t == value), || {
                    format!("{at}: ${key} (argocd-notifications-secret example) is not one of the webhook's AUTOSCALER_ARGOCD_WEBHOOK_TOKENS in {}", overlay.dir.display())
                });
            }
        }
    }
    // Triggers send defined templates.
    for trigger in &triggers {
        let rules: Value = serde_yaml::from_str(
            cm.value["data"][format!("trigger.{trigger}").as_str()]
                .as_str()
                .unwrap_or(""),
        )
        .unwrap_or(Value::Null);
        for rule in rules.as_sequence().into_iter().flatten() {
            for sent in crate::manifests::strings(&rule["send"]) {
                problems.check(templates.contains(&sent), || {
                    format!("{at}: trigger.{trigger} sends template {sent}, which is not defined")
                });
            }
        }
    }
    // Every Application subscribes to every trigger, through a defined service.
    let applications: Vec<&Doc> = docs.iter().filter(|d| d.kind() == "Application").collect();
    assert!(
        !applications.is_empty(),
        "no Argo CD Application under deploy/"
    );
    for app in applications {
        let annotations = app.value["metadata"]["annotations"]
            .as_mapping()
            .cloned()
            .unwrap_or_default();
        let mut subscribed = BTreeSet::new();
        for key in annotations.keys().filter_map(scalar) {
            let Some(rest) = key.strip_prefix("notifications.argoproj.io/subscribe.") else {
                continue;
            };
            let Some((trigger, service)) = rest.rsplit_once('.') else {
                problems.add(format!("{}: annotation {key} names no service", app.at()));
                continue;
            };
            problems.check(triggers.contains(trigger), || {
                format!(
                    "{}: annotation {key}: trigger {trigger} is not defined in {at}",
                    app.at()
                )
            });
            problems.check(services.contains(service), || {
                format!(
                    "{}: annotation {key}: service {service} is not defined in {at}",
                    app.at()
                )
            });
            subscribed.insert(trigger.to_owned());
        }
        for trigger in &triggers {
            problems.check(subscribed.contains(trigger), || {
                format!(
                    "{}: does not subscribe to trigger {trigger} of {at}",
                    app.at()
                )
            });
        }
        let path = app.value["spec"]["source"]["path"].as_str().unwrap_or("");
        problems.check(
            root().join(path).join("kustomization.yaml").is_file(),
            || {
                format!(
                    "{}: source.path {path:?} holds no kustomization.yaml",
                    app.at()
                )
            },
        );
    }
    problems.assert_none("Argo CD notifications");
}
