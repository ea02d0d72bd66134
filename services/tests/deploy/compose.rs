//! `docker-compose.yml`: services, mounts and dependencies, the engines' configuration against the engine's
//! loader and the other services, Prometheus' targets, the load generator and the local subscription.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use autoscaler::{
    cluster::{ClusterSpec, ValidationContext},
    config::Role,
};
use http::Method;
use pipeline_engine::config::Config as EngineConfig;
use serde_yaml::Value;
use url::Url;

use crate::{
    manifests::{Problems, load_docs, normalize, read, root, scalar, strings},
    processes::{autoscaler_env_flags, load_engine_config, parse_autoscaler},
    routes::{answer, autoscaler_router},
};

const COMPOSE: &str = "docker-compose.yml";

/// `${VAR:-default}` and `${VAR-default}` become the default; `${VAR:?message}` and `${VAR?message}`,
/// which the user must set, become a stand-in long enough to pass as a token.
fn interpolate(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &rest[start + 2..start + end];
        let name_end = inner
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(inner.len());
        let (name, op) = inner.split_at(name_end);
        let value = if let Some(default) = op.strip_prefix(":-").or_else(|| op.strip_prefix('-')) {
            default.to_owned()
        } else if op.starts_with(":?") || op.starts_with('?') {
            format!("set-by-the-user-{}", name.to_ascii_lowercase())
        } else {
            String::new()
        };
        out.push_str(&value);
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// The compose file, interpolated.
fn compose() -> Value {
    serde_yaml::from_str(&interpolate(&read(Path::new(COMPOSE))))
        .unwrap_or_else(|e| panic!("{COMPOSE}: {e}"))
}

fn services(compose: &Value) -> BTreeMap<String, Value> {
    compose["services"]
        .as_mapping()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone())))
        .collect()
}

/// A service's environment, from a map or a `KEY=value` list.
fn environment(service: &Value) -> Vec<(String, String)> {
    match &service["environment"] {
        Value::Mapping(map) => map
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), scalar(v).unwrap_or_default())))
            .collect(),
        Value::Sequence(list) => list
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|e| e.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        _ => Vec::new(),
    }
}

/// The first word of a service's entrypoint (`entrypoint:` as a list or a string).
fn entrypoint(service: &Value) -> Option<String> {
    match &service["entrypoint"] {
        Value::String(s) => s.split_whitespace().next().map(str::to_owned),
        v => strings(v).first().cloned(),
    }
}

/// `host:container[:mode]` bind mounts with a host path, as (host path relative to the root, container
/// path).
fn bind_mounts(service: &Value) -> Vec<(String, String)> {
    strings(&service["volumes"])
        .into_iter()
        .filter(|v| v.starts_with("./") || v.starts_with("../") || v.starts_with('/'))
        .filter_map(|v| {
            let mut parts = v.splitn(3, ':');
            Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
        })
        .collect()
}

/// The services running the image's autoscaler entrypoint, the engine and the load generator.
struct Roles {
    autoscaler: Vec<String>,
    engines: Vec<String>,
    load_generators: Vec<String>,
}

fn roles(services: &BTreeMap<String, Value>) -> Roles {
    let image = services
        .values()
        .find(|s| !s["build"].is_null())
        .and_then(|s| s["image"].as_str().map(str::to_owned));
    let ours = |s: &Value| s["image"].as_str().map(str::to_owned) == image || !s["build"].is_null();
    let with = |which: Option<&str>| -> Vec<String> {
        services
            .iter()
            .filter(|(_, s)| ours(s) && entrypoint(s).as_deref() == which)
            .map(|(n, _)| n.clone())
            .collect()
    };
    Roles {
        autoscaler: with(None),
        engines: with(Some("pipeline-engine")),
        load_generators: with(Some("load-generator")),
    }
}

/// An engine service's configuration as the engine loads it: its mounted `--config` file plus its
/// environment.
fn engine_config(service: &Value) -> Result<(PathBuf, EngineConfig), String> {
    let args = strings(&service["command"]);
    let path = args
        .iter()
        .position(|a| a == "--config" || a == "-c")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| {
            environment(service)
                .into_iter()
                .find(|(k, _)| k == "ENGINE_CONFIG")
                .map(|(_, v)| v)
        })
        .ok_or("no --config")?;
    let (host, _) = bind_mounts(service)
        .into_iter()
        .find(|(_, target)| *target == path)
        .ok_or_else(|| format!("--config {path} is not a mounted file"))?;
    let host =
        normalize(Path::new(&host)).ok_or_else(|| format!("{host} leaves the repository"))?;
    let text = std::fs::read_to_string(root().join(&host))
        .map_err(|e| format!("{}: {e}", host.display()))?;
    let env: Vec<(String, String)> = environment(service);
    let config = load_engine_config(&text, &env).map_err(|e| format!("{}: {e}", host.display()))?;
    Ok((host, config))
}

/// The port of `host:port`.
fn host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    Some((host, port.parse().ok()?))
}

#[test]
fn compose_services_mounts_and_dependencies_resolve() {
    let compose = compose();
    let services = services(&compose);
    let mut problems = Problems::default();
    let roles = roles(&services);
    problems.check(roles.autoscaler.len() == 1, || {
        format!(
            "{COMPOSE}: {} autoscaler services, not one: {:?}",
            roles.autoscaler.len(),
            roles.autoscaler
        )
    });
    problems.check(roles.engines.len() >= 2, || {
        format!(
            "{COMPOSE}: {} engine services (entrypoint pipeline-engine), not two or more",
            roles.engines.len()
        )
    });
    problems.check(roles.load_generators.len() == 1, || {
        format!(
            "{COMPOSE}: {} load-generator services, not one",
            roles.load_generators.len()
        )
    });
    for wanted in ["postgres", "prometheus", "kafka", "elasticsearch"] {
        problems.check(
            services.iter().any(|(n, s)| {
                n.contains(wanted) || s["image"].as_str().is_some_and(|i| i.contains(wanted))
            }),
            || format!("{COMPOSE}: no {wanted} service"),
        );
    }
    for (name, service) in &services {
        let depends = match &service["depends_on"] {
            Value::Mapping(m) => m.keys().filter_map(scalar).collect(),
            v => strings(v),
        };
        for dependency in depends {
            problems.check(services.contains_key(&dependency), || {
                format!("{COMPOSE}: service {name} depends_on {dependency}, which is not a service")
            });
        }
        for (host, target) in bind_mounts(service) {
            problems.check(
                normalize(Path::new(&host)).is_some_and(|p| root().join(p).exists()),
                || format!("{COMPOSE}: service {name} mounts {host} (at {target}), which does not exist"),
            );
        }
        if let Some(build) = service.get("build") {
            let context = build["context"].as_str().unwrap_or(".");
            let dockerfile = build["dockerfile"].as_str().unwrap_or("Dockerfile");
            problems.check(root().join(context).join(dockerfile).is_file(), || {
                format!(
                    "{COMPOSE}: service {name} builds {context}/{dockerfile}, which does not exist"
                )
            });
        }
    }
    // The autoscaler: only settings it reads, a configuration it accepts for its role.
    let flags = autoscaler_env_flags();
    for name in &roles.autoscaler {
        let service = &services[name];
        let env = environment(service);
        for (var, _) in &env {
            problems.check(flags.contains_key(var), || {
                format!("{COMPOSE}: service {name} sets {var}, which the autoscaler does not read")
            });
        }
        match parse_autoscaler(&strings(&service["command"]), &env) {
            Ok((role, config)) => {
                if let Err(e) = config.validate(role) {
                    problems.add(format!(
                        "{COMPOSE}: service {name}: the autoscaler refuses to start: {e}"
                    ));
                }
                let url = config.database_url.clone();
                let db_host = Url::parse(&url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned));
                problems.check(db_host.as_ref().is_some_and(|h| services.contains_key(h)), || {
                    format!("{COMPOSE}: service {name}: DATABASE_URL names host {db_host:?}, which is not a service")
                });
            }
            Err(e) => problems.add(format!("{COMPOSE}: service {name}: {e}")),
        }
    }
    problems.assert_none("docker-compose services");
}

#[tokio::test]
async fn compose_engines_load_their_config_and_reach_kafka_elasticsearch_and_the_autoscaler() {
    let compose = compose();
    let services = services(&compose);
    let roles = roles(&services);
    let mut problems = Problems::default();
    let autoscaler = roles.autoscaler.first().expect("an autoscaler service");
    let (role, autoscaler_config) = parse_autoscaler(
        &strings(&services[autoscaler]["command"]),
        &environment(&services[autoscaler]),
    )
    .expect("the autoscaler service's settings parse (checked on their own too)");
    let kafka_advertised: BTreeSet<String> = services
        .values()
        .flat_map(environment)
        .filter(|(k, _)| k == "KAFKA_ADVERTISED_LISTENERS")
        .flat_map(|(_, v)| {
            v.split(',')
                .filter_map(|l| l.split_once("://").map(|(_, a)| a.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut instance_ids = BTreeSet::new();
    for name in &roles.engines {
        let at = format!("{COMPOSE}: service {name}");
        let (file, config) = match engine_config(&services[name]) {
            Ok(c) => c,
            Err(e) => {
                problems.add(format!("{at}: the engine would exit 2: {e}"));
                continue;
            }
        };
        let at = format!("{at} ({})", file.display());
        problems.check(instance_ids.insert(config.instance_id()), || {
            format!(
                "{at}: pipeline.instance_id {} is not distinct",
                config.instance_id()
            )
        });
        for broker in config.kafka.brokers.split(',') {
            problems.check(kafka_advertised.contains(broker.trim()), || {
                format!("{at}: kafka.brokers {broker} is not an address the Kafka service advertises ({kafka_advertised:?})")
            });
        }
        for es in &config.elasticsearch.urls {
            let host = Url::parse(es)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned));
            problems.check(
                host.as_ref().is_some_and(|h| services.contains_key(h)),
                || format!("{at}: elasticsearch.urls {es} names no service"),
            );
        }
        for (what, addr) in [
            ("metrics.listen", config.metrics.listen),
            ("control.listen", config.control.listen),
        ] {
            problems.check(addr.ip().is_unspecified(), || {
                format!("{at}: {what} {addr} is unreachable from other containers")
            });
        }
        let Some(url) = config
            .announce
            .url
            .as_deref()
            .and_then(|u| Url::parse(u).ok())
        else {
            problems.add(format!("{at}: no announce.url"));
            continue;
        };
        problems.check(url.host_str() == Some(autoscaler.as_str()), || {
            format!("{at}: announce.url {url} is not the {autoscaler} service")
        });
        problems.check(
            url.port_or_known_default() == Some(autoscaler_config.listen.port()),
            || {
                format!(
                    "{at}: announce.url {url} is not the autoscaler's AUTOSCALER_LISTEN port {}",
                    autoscaler_config.listen.port()
                )
            },
        );
        let status = answer(&autoscaler_router(role), Method::POST, url.path()).await;
        problems.check(url.path() == "/webhooks/engine" && status == http::StatusCode::UNAUTHORIZED, || {
            format!("{at}: announce.url path {} answers {status} on the {role:?} role without a token, not the engine receiver's 401", url.path())
        });
        let token = config.announce.token.clone().unwrap_or_default();
        problems.check(autoscaler_config.engine_tokens.contains(&token), || {
            format!("{at}: the announce token is not one of the autoscaler service's AUTOSCALER_ENGINE_TOKENS")
        });
    }
    problems.check(matches!(role, Role::Run), || {
        format!("{COMPOSE}: the autoscaler runs {role:?}; one `run` process serves the API and the webhooks here")
    });
    problems.assert_none("docker-compose engines");
}

#[test]
fn compose_prometheus_scrapes_both_engines_and_the_autoscaler() {
    let compose = compose();
    let services = services(&compose);
    let roles = roles(&services);
    let mut problems = Problems::default();
    let Some((name, prometheus)) = services.iter().find(|(_, s)| {
        s["image"]
            .as_str()
            .is_some_and(|i| i.contains("prometheus"))
    }) else {
        panic!("{COMPOSE}: no Prometheus service");
    };
    let Some((host, _)) = bind_mounts(prometheus)
        .into_iter()
        .find(|(_, target)| target == "/etc/prometheus/prometheus.yml")
    else {
        panic!("{COMPOSE}: service {name} mounts no /etc/prometheus/prometheus.yml");
    };
    let file = normalize(Path::new(&host)).expect("a path in the repository");
    let docs = load_docs(&file).unwrap_or_else(|e| panic!("{e}"));
    let config = &docs.first().expect("a Prometheus configuration").value;
    let mut targets = BTreeSet::new();
    for job in config["scrape_configs"].as_sequence().into_iter().flatten() {
        let path = job["metrics_path"].as_str().unwrap_or("/metrics");
        let job_name = job["job_name"].as_str().unwrap_or("");
        problems.check(path == "/metrics", || {
            format!(
                "{}: job {job_name} scrapes {path}, but both binaries serve /metrics",
                file.display()
            )
        });
        for target in job["static_configs"]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|c| strings(&c["targets"]))
        {
            let host = host_port(&target)
                .map(|(h, _)| h.to_owned())
                .unwrap_or_default();
            problems.check(services.contains_key(&host), || {
                format!(
                    "{}: job {job_name} target {target} names no service of {COMPOSE}",
                    file.display()
                )
            });
            targets.insert(target);
        }
    }
    for engine in &roles.engines {
        if let Ok((_, config)) = engine_config(&services[engine]) {
            let target = format!("{engine}:{}", config.metrics.listen.port());
            problems.check(targets.contains(&target), || {
                format!("{}: does not scrape engine service {engine} at its metrics.listen port ({target})", file.display())
            });
        }
    }
    for autoscaler in &roles.autoscaler {
        let service = &services[autoscaler];
        if let Ok((_, config)) =
            parse_autoscaler(&strings(&service["command"]), &environment(service))
        {
            let target = format!("{autoscaler}:{}", config.listen.port());
            problems.check(targets.contains(&target), || {
                format!(
                    "{}: does not scrape the autoscaler at its AUTOSCALER_LISTEN port ({target})",
                    file.display()
                )
            });
        }
    }
    problems.assert_none("docker-compose Prometheus");
}

/// The value after `flag` in an argument list.
fn flag<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

#[test]
fn compose_load_generator_topic_and_subscription_match_the_engines() {
    let compose = compose();
    let services = services(&compose);
    let roles = roles(&services);
    let mut problems = Problems::default();
    let engine_configs: Vec<EngineConfig> = roles
        .engines
        .iter()
        .filter_map(|e| engine_config(&services[e]).ok().map(|(_, c)| c))
        .collect();
    assert!(
        !engine_configs.is_empty(),
        "{COMPOSE}: no engine configuration loads"
    );
    let topics: BTreeSet<String> = engine_configs
        .iter()
        .flat_map(|c| c.kafka.topics.clone())
        .collect();
    let pipelines: BTreeSet<String> = engine_configs
        .iter()
        .map(|c| c.pipeline.name.clone())
        .collect();
    problems.check(pipelines.len() == 1, || {
        format!("{COMPOSE}: the engine services run {pipelines:?}, not one pipeline")
    });
    // Topics are created with their partitions by a one-shot service.
    let created: BTreeSet<String> = services
        .values()
        .map(|s| strings(&s["command"]).join(" "))
        .filter(|text| text.contains("kafka-topics"))
        .flat_map(|text| {
            text.split_whitespace()
                .collect::<Vec<_>>()
                .windows(2)
                .filter(|w| w[0] == "--topic")
                .map(|w| w[1].to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    for topic in &topics {
        problems.check(created.contains(topic), || {
            format!("{COMPOSE}: the engines read topic {topic}, which no service creates (kafka-topics.sh --topic)")
        });
    }
    for name in &roles.load_generators {
        let args = strings(&services[name]["command"]);
        let brokers = flag(&args, "--brokers").unwrap_or("");
        let host = host_port(brokers)
            .map(|(h, _)| h.to_owned())
            .unwrap_or_default();
        problems.check(services.contains_key(&host), || {
            format!("{COMPOSE}: service {name}: --brokers {brokers:?} names no service")
        });
        let topic = flag(&args, "--topic").unwrap_or("");
        problems.check(topics.contains(topic), || {
            format!("{COMPOSE}: service {name}: --topic {topic:?} is not a topic the engines read ({topics:?})")
        });
        if let Some(schedule) = flag(&args, "--schedule") {
            for phase in schedule.split(',') {
                let ok = phase.split_once('=').is_some_and(|(d, r)| {
                    humantime::parse_duration(d).is_ok() && r.parse::<u64>().is_ok()
                });
                problems.check(ok, || {
                    format!(
                        "{COMPOSE}: service {name}: --schedule phase {phase:?} is not DURATION=RATE"
                    )
                });
            }
        }
    }
    // The subscription for the local stack.
    let file = PathBuf::from("deploy/compose/subscription.json");
    match serde_json::from_str::<ClusterSpec>(&read(&file)) {
        Ok(spec) => {
            if let Err(fields) = spec.validate(&ValidationContext::default()) {
                for f in fields {
                    problems.add(format!("{}: {}: {}", file.display(), f.field, f.problem));
                }
            }
            let pipeline = pipelines.iter().next().cloned().unwrap_or_default();
            problems.check(spec.name == pipeline, || {
                format!(
                    "{}: name {} is not the engines' pipeline.name {pipeline}",
                    file.display(),
                    spec.name
                )
            });
            let selector = spec.metrics.selector.clone().unwrap_or_default();
            problems.check(selector.get("pipeline") == Some(&pipeline), || {
                format!(
                    "{}: metrics.selector {selector:?} does not pick pipeline {pipeline}",
                    file.display()
                )
            });
            let host = spec
                .metrics
                .prometheus_url
                .host_str()
                .unwrap_or("")
                .to_owned();
            problems.check(
                services.get(&host).is_some_and(|s| {
                    s["image"]
                        .as_str()
                        .is_some_and(|i| i.contains("prometheus"))
                }),
                || {
                    format!(
                        "{}: metrics.prometheus_url {} is not the Prometheus service",
                        file.display(),
                        spec.metrics.prometheus_url
                    )
                },
            );
            if let Some(partitions) = spec.policy.partition_count {
                let created_with = services
                    .values()
                    .map(|s| strings(&s["command"]).join(" "))
                    .find(|c| c.contains("--partitions"));
                let count = created_with.as_deref().and_then(|c| {
                    c.split_whitespace()
                        .collect::<Vec<_>>()
                        .windows(2)
                        .find(|w| w[0] == "--partitions")
                        .and_then(|w| w[1].parse::<u32>().ok())
                });
                problems.check(count == Some(partitions), || {
                    format!("{}: policy.partition_count {partitions} is not the topic's --partitions {count:?} in {COMPOSE}", file.display())
                });
            }
        }
        Err(e) => problems.add(format!("{}: not a cluster spec: {e}", file.display())),
    }
    problems.assert_none("docker-compose load generator and subscription");
}

#[test]
fn interpolation_follows_compose() {
    assert_eq!(interpolate("a ${X:-b} c"), "a b c");
    assert_eq!(interpolate("${X-b}"), "b");
    assert_eq!(interpolate("${TOKEN:?set it}"), "set-by-the-user-token");
    assert_eq!(interpolate("plain"), "plain");
}
