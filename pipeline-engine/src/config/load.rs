//! Layering: the YAML file, then `ENGINE__SECTION__KEY` variables over it (the `config` crate does the
//! merge and reads the variables' values as booleans, numbers or text). Deprecated `*_ms` keys are
//! renamed to their duration keys first, with a warning, in the file and in the environment alike.

use std::path::Path;

use super::{Config, ConfigError};

/// Prefix of environment overrides; `__` separates path segments (`ENGINE__KAFKA__BROKERS`).
pub const ENV_PREFIX: &str = "ENGINE__";

/// Keys that used to be integers of milliseconds, and their `Duration` keys. Accepted for one
/// release with a warning.
pub const LEGACY_MS_KEYS: &[(&str, &str)] = &[
    ("kafka.commit_interval_ms", "kafka.commit_interval"),
    ("kafka.session_timeout_ms", "kafka.session_timeout"),
    (
        "elasticsearch.request_timeout_ms",
        "elasticsearch.request_timeout",
    ),
    ("sink.linger_ms", "sink.linger"),
    (
        "sink.retry.initial_backoff_ms",
        "sink.retry.initial_backoff",
    ),
    ("sink.retry.max_backoff_ms", "sink.retry.max_backoff"),
    ("control.drain_deadline_ms", "control.drain_deadline"),
    (
        "announce.heartbeat_interval_ms",
        "announce.heartbeat_interval",
    ),
];

/// A configuration and what to warn about once logging is set up.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

pub(super) fn load(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
            path: p.into(),
            source,
        })?,
        None => String::new(),
    };
    from_yaml_text(
        &text,
        path.unwrap_or(Path::new("<none>")),
        env.into_iter().collect(),
    )
}

pub(super) fn from_yaml_text(
    text: &str,
    path: &Path,
    env: Vec<(String, String)>,
) -> Result<Loaded, ConfigError> {
    let mut warnings = Vec::new();
    let mut tree: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|source| ConfigError::Yaml {
            path: path.into(),
            source,
        })?;
    if tree.is_null() {
        tree = serde_yaml::Value::Mapping(Default::default());
    }
    rename_legacy_in_tree(&mut tree, &mut warnings);
    let yaml = serde_yaml::to_string(&tree).expect("a YAML tree serializes");
    let env: config::Map<String, String> = env
        .into_iter()
        .filter(|(k, _)| k.to_ascii_uppercase().starts_with(ENV_PREFIX))
        .map(|(k, v)| rename_legacy_env(k, v, &mut warnings))
        .collect();
    let layered = config::Config::builder()
        .add_source(config::File::from_str(&yaml, config::FileFormat::Yaml))
        .add_source(
            config::Environment::with_prefix("engine")
                .prefix_separator("__")
                .separator("__")
                // Values stay text here (a password `0123` keeps its zero); the `config` crate converts
                // text to the number or boolean a key needs.
                .try_parsing(false)
                .source(Some(env)),
        )
        .build()
        .map_err(layer_error)?;
    let config: Config = layered.try_deserialize().map_err(layer_error)?;
    Ok(Loaded { config, warnings })
}

/// Errors that concern one key name it, like the checks in `validate`.
fn layer_error(e: config::ConfigError) -> ConfigError {
    match &e {
        config::ConfigError::Type { key: Some(k), .. } => ConfigError::key(k, e.to_string()),
        config::ConfigError::At {
            key: Some(k),
            error,
            ..
        } => ConfigError::key(k, error.to_string()),
        _ => ConfigError::Layer(e),
    }
}

fn legacy_value(v: &str) -> String {
    match v.trim().parse::<u64>() {
        Ok(n) => format!("{n}ms"),
        Err(_) => v.to_owned(),
    }
}

fn rename_legacy_in_tree(tree: &mut serde_yaml::Value, warnings: &mut Vec<String>) {
    for (old, new) in LEGACY_MS_KEYS {
        let segments: Vec<&str> = old.split('.').collect();
        let (leaf, parents) = segments.split_last().expect("keys have a segment");
        let new_leaf = new.rsplit('.').next().expect("keys have a segment");
        let Some(map) = parents
            .iter()
            .try_fold(&mut *tree, |node, p| node.get_mut(*p))
            .and_then(serde_yaml::Value::as_mapping_mut)
        else {
            continue;
        };
        let Some(v) = map.remove(*leaf) else {
            continue;
        };
        let text = match &v {
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::String(s) => s.clone(),
            _ => String::new(),
        };
        if map.contains_key(new_leaf) {
            warnings.push(format!(
                "config key `{old}` is deprecated and ignored: `{new}` is set as well"
            ));
            continue;
        }
        let value = legacy_value(&text);
        warnings.push(format!(
            "config key `{old}` is deprecated: write `{new}: {value}` (accepted for this release)"
        ));
        map.insert(new_leaf.into(), serde_yaml::Value::String(value));
    }
}

fn rename_legacy_env(var: String, value: String, warnings: &mut Vec<String>) -> (String, String) {
    let path = var[ENV_PREFIX.len()..]
        .to_ascii_lowercase()
        .replace("__", ".");
    match LEGACY_MS_KEYS.iter().find(|(old, _)| *old == path) {
        Some((old, new)) => {
            let renamed = format!(
                "{ENV_PREFIX}{}",
                new.to_ascii_uppercase().replace('.', "__")
            );
            let value = legacy_value(&value);
            warnings.push(format!(
                "environment variable {var} (`{old}`) is deprecated: set {renamed}={value} (accepted for this release)"
            ));
            (renamed, value)
        }
        None => (var, value),
    }
}
