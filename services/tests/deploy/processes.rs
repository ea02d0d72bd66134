//! What the two binaries make of a container's command line and environment: the autoscaler through its
//! clap definition and `CommonConfig::validate`, the engine through `pipeline_engine::config::Config::load`.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use autoscaler::{
    cluster::{ClusterSpec, SecretRef},
    config::{Cli, Command, CommonConfig, Role},
};
use clap::{CommandFactory, FromArgMatches};
use pipeline_engine::config::Config as EngineConfig;
use serde_yaml::Value;

use crate::manifests::{
    Doc, EnvSource, Installation, container_env, container_port, pod_spec, read, resolve_env,
    strings,
};
use crate::routes::{EngineListener, autoscaler_router, engine_router};

/// Every environment variable the autoscaler reads through clap, with the long flag it sets.
pub fn autoscaler_env_flags() -> BTreeMap<String, String> {
    Cli::command()
        .get_arguments()
        .filter_map(|arg| {
            let env = arg.get_env()?.to_str()?.to_owned();
            let long = arg.get_long()?.to_owned();
            Some((env, long))
        })
        .collect()
}

/// The role subcommands clap knows.
pub fn autoscaler_subcommands() -> Vec<String> {
    Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect()
}

/// What the autoscaler binary makes of `args` and `env` (names and values), reading nothing from this test
/// process's own environment. Settings in `env` go in as their long flags.
pub fn parse_autoscaler(
    args: &[String],
    env: &[(String, String)],
) -> Result<(Role, CommonConfig), String> {
    let flags = autoscaler_env_flags();
    let mut command = Cli::command();
    let ids: Vec<_> = command
        .get_arguments()
        .filter(|a| a.get_env().is_some())
        .map(|a| a.get_id().clone())
        .collect();
    for id in ids {
        command = command.mut_arg(id, |a| a.env(None::<&str>));
    }
    let mut argv = vec!["autoscaler".to_owned()];
    for (name, value) in env {
        if let Some(long) = flags.get(name) {
            argv.push(format!("--{long}={value}"));
        }
    }
    argv.extend(args.iter().cloned());
    let matches = command
        .try_get_matches_from(&argv)
        .map_err(|e| format!("the command line {:?} is refused: {e}", &argv[1..]))?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    let role = match cli.role {
        None => Role::Run,
        Some(Command::Role(role)) => role,
        Some(Command::Simulate(_)) => return Err("`simulate` is not a service role".to_owned()),
        Some(Command::Cluster(_)) => {
            return Err("`cluster` is a client, not a service role".to_owned());
        }
        Some(Command::Tune(_)) => {
            return Err("`tune` is a client, not a service role".to_owned());
        }
    };
    Ok((role, cli.common))
}

/// Every subscription shipped under `deploy/`, with its file.
pub fn subscriptions() -> Vec<(PathBuf, Result<ClusterSpec, String>)> {
    crate::manifests::manifest_files()
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "subscription.json"))
        .map(|f| {
            let text = read(&f);
            let spec = serde_json::from_str::<ClusterSpec>(&text)
                .map_err(|e| format!("{}: not a cluster spec: {e}", f.display()));
            (f, spec)
        })
        .collect()
}

/// Every secret reference of a spec, with its field.
pub fn secret_refs(spec: &ClusterSpec) -> Vec<(&'static str, SecretRef)> {
    let mut refs = Vec::new();
    if let Some(s) = &spec.target.control_token {
        refs.push(("target.control_token", s.clone()));
    }
    if let Some(s) = &spec.git.credentials {
        refs.push(("git.credentials", s.clone()));
    }
    if let autoscaler::cluster::WriteBack::PullRequest { token, .. } = &spec.write_back {
        refs.push(("write_back.token", token.clone()));
    }
    if let Some(s) = &spec.argocd.token {
        refs.push(("argocd.token", s.clone()));
    }
    refs
}

/// The names of environment variables subscriptions under `deploy/kubernetes` and `deploy/pipelines`
/// ask the worker for (`{"env": NAME}`).
pub fn subscription_env_names() -> Vec<String> {
    subscriptions()
        .into_iter()
        .filter(|(f, _)| !f.starts_with("deploy/compose"))
        .filter_map(|(_, spec)| spec.ok())
        .flat_map(|spec| {
            secret_refs(&spec)
                .into_iter()
                .filter_map(|(_, r)| match r {
                    SecretRef::Env(name) => Some(name),
                    SecretRef::File(_) => None,
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// An autoscaler container as the binary sees it.
pub struct AutoscalerContainer {
    pub role: Role,
    pub config: CommonConfig,
}

/// Resolves a container's environment; a value that cannot be resolved is an error naming it.
pub fn resolved_env(
    installation: &Installation,
    container: &Value,
) -> Result<Vec<(String, String)>, String> {
    let mut resolved: Vec<(String, String)> = Vec::new();
    for (name, source) in container_env(installation, container) {
        let value = resolve_env(installation, &source).map_err(|e| format!("env {name}: {e}"))?;
        // Kubernetes expands `$(NAME)` of a variable defined earlier in the same container.
        let value = resolved.iter().fold(value, |value, (earlier, v)| {
            value.replace(&format!("$({earlier})"), v)
        });
        resolved.push((name, value));
    }
    Ok(resolved)
}

/// Parses an autoscaler container's args and environment. `AUTOSCALER_SECRETS_DIR` names a path in the
/// pod, not here: it is kept as written.
pub fn autoscaler_container(
    installation: &Installation,
    container: &Value,
) -> Result<AutoscalerContainer, String> {
    let env = resolved_env(installation, container)?;
    let args = strings(&container["args"]);
    let (role, config) = parse_autoscaler(&args, &env)?;
    Ok(AutoscalerContainer { role, config })
}

/// Where a container mounts the volume holding `path`, and the volume: (mount, volume spec).
pub fn mount_of<'a>(
    deployment: &'a Doc,
    container: &'a Value,
    path: &Path,
) -> Option<(&'a Value, &'a Value)> {
    let mount = container["volumeMounts"]
        .as_sequence()?
        .iter()
        .filter(|m| m["mountPath"].as_str().is_some_and(|p| path.starts_with(p)))
        .max_by_key(|m| m["mountPath"].as_str().map_or(0, str::len))?;
    let volume = pod_spec(deployment)["volumes"]
        .as_sequence()?
        .iter()
        .find(|v| v["name"] == mount["name"])?;
    Some((mount, volume))
}

/// The engine's configuration file in a container: the `--config` argument (or `ENGINE_CONFIG`), found
/// in the ConfigMap mounted there. Returns (path in the pod, ConfigMap name, key, text).
pub fn engine_config_file(
    installation: &Installation,
    deployment: &Doc,
    container: &Value,
) -> Result<(String, String, String, String), String> {
    let args = strings(&container["args"]);
    let path = args
        .iter()
        .position(|a| a == "--config" || a == "-c")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--config=").map(str::to_owned))
        })
        .or_else(|| {
            container_env(installation, container)
                .into_iter()
                .find(|(n, _)| n == "ENGINE_CONFIG")
                .and_then(|(_, s)| resolve_env(installation, &s).ok())
        })
        .ok_or("the engine gets no --config")?;
    let (mount, volume) = mount_of(deployment, container, Path::new(&path))
        .ok_or_else(|| format!("--config {path} is on no volume mount"))?;
    let map = volume["configMap"]["name"]
        .as_str()
        .ok_or_else(|| format!("--config {path} is on a volume that is not a ConfigMap"))?;
    let mount_path = mount["mountPath"].as_str().unwrap_or("");
    let key = match mount["subPath"].as_str() {
        Some(sub) if mount_path == path => sub.to_owned(),
        _ => {
            let file = path
                .strip_prefix(mount_path)
                .unwrap_or("")
                .trim_start_matches('/')
                .to_owned();
            volume["configMap"]["items"]
                .as_sequence()
                .into_iter()
                .flatten()
                .find(|i| i["path"].as_str() == Some(file.as_str()))
                .and_then(|i| i["key"].as_str().map(str::to_owned))
                .unwrap_or(file)
        }
    };
    let data = installation
        .config_map(map)
        .ok_or_else(|| format!("--config {path}: no ConfigMap {map} in the installation"))?;
    let text = data
        .get(&key)
        .cloned()
        .ok_or_else(|| format!("--config {path}: ConfigMap {map} has no key {key}"))?;
    Ok((path, map.to_owned(), key, text))
}

/// Loads an engine configuration with the engine's own loader: the file's text plus the `ENGINE__`
/// overrides, exactly as `pipeline-engine --config` does (exit code 2 on an error).
pub fn load_engine_config(text: &str, env: &[(String, String)]) -> Result<EngineConfig, String> {
    let dir = std::env::temp_dir().join(format!("deploy-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let file = dir.join("engine.yaml");
    std::fs::write(&file, text).map_err(|e| e.to_string())?;
    let loaded = EngineConfig::load_with_warnings(Some(&file), env.iter().cloned())
        .map_err(|e| e.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    // What ships must not lean on what is accepted only for a release (the `_ms` keys).
    let loaded = loaded?;
    if !loaded.warnings.is_empty() {
        return Err(format!(
            "the engine warns at start-up: {}",
            loaded.warnings.join("; ")
        ));
    }
    Ok(loaded.config)
}

/// An engine container's configuration as the engine loads it in the pod.
pub fn engine_container_config(
    installation: &Installation,
    deployment: &Doc,
    container: &Value,
) -> Result<EngineConfig, String> {
    let (path, map, key, text) = engine_config_file(installation, deployment, container)?;
    let env = resolved_env(installation, container)?;
    load_engine_config(&text, &env)
        .map_err(|e| format!("ConfigMap {map} key {key} (mounted at {path}): {e}"))
}

/// The router a container serves on `port` (a container port number), or why there is none.
pub fn router_on_port(
    installation: &Installation,
    deployment: &Doc,
    container: &Value,
    port: u16,
) -> Result<axum::Router, String> {
    if crate::manifests::runs_engine(container) {
        let config = engine_container_config(installation, deployment, container)?;
        let listener = engine_listener(&config, port)
            .ok_or_else(|| format!("the engine listens on no port {port}"))?;
        return Ok(engine_router(listener));
    }
    let process = autoscaler_container(installation, container)?;
    if process.config.listen.port() != port {
        return Err(format!(
            "the autoscaler listens on {} (AUTOSCALER_LISTEN), not on port {port}",
            process.config.listen
        ));
    }
    Ok(autoscaler_router(process.role))
}

/// Which engine listener a port is.
pub fn engine_listener(config: &EngineConfig, port: u16) -> Option<EngineListener> {
    let metrics = config.metrics.listen.port() == port;
    let control = config.control.listen.port() == port;
    match (metrics, control) {
        (true, true) => Some(EngineListener::Both),
        (true, false) => Some(EngineListener::Metrics),
        (false, true) => Some(EngineListener::Control),
        (false, false) => None,
    }
}

/// The container port a named or numbered port reference resolves to, across the pod's containers,
/// with the container.
pub fn pod_port<'a>(deployment: &'a Doc, port: &Value) -> Option<(&'a Value, u16)> {
    crate::manifests::containers(deployment)
        .into_iter()
        .find_map(|c| container_port(c, port).map(|p| (c, p)))
}

/// Whether a listen address accepts connections from other pods: the unspecified address.
pub fn listens_on_all_interfaces(addr: &SocketAddr) -> bool {
    addr.ip().is_unspecified()
}

/// Where `EnvSource`s point, for messages.
pub fn describe(source: &EnvSource) -> String {
    match source {
        EnvSource::Value(_) => "a literal value".to_owned(),
        EnvSource::Secret { name, key } => format!("secretKeyRef {name}/{key}"),
        EnvSource::ConfigMap { name, key } => format!("configMapKeyRef {name}/{key}"),
        EnvSource::Field(path) => format!("fieldRef {path}"),
        EnvSource::Unknown => "an unknown source".to_owned(),
    }
}
