//! The checks a spec passes before it is stored. Each problem names the field (as a JSON path) and says
//! what is wrong, so a client can fix every problem in one go.

use std::sync::Arc;

use serde::Serialize;
use url::Url;
use utoipa::ToSchema;

use super::{ClusterSpec, Destination, Policy, ScaleUnit, SecretRef, TargetKind, WriteBack};
use crate::{
    outbound::OutboundPolicy,
    tenancy::{DEFAULT_TEAM, secrets},
};

/// One thing wrong with a request, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldProblem {
    /// The JSON path of the field, such as `policy.max_scale`.
    pub field: String,
    pub problem: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// What validation needs to know about the service's configuration.
#[derive(Debug, Clone, Default)]
pub struct ValidationContext {
    /// File secrets resolve under the secrets directory; without one they cannot be read.
    pub secrets_dir_configured: bool,
    /// Where a spec's URLs may point.
    pub outbound: Arc<OutboundPolicy>,
    /// The template of a team's secret environment prefix (AUTOSCALER_TEAM_SECRET_ENV_PREFIX); `None`
    /// for the default, [`crate::tenancy::secrets::DEFAULT_ENV_PREFIX`].
    pub secret_env_prefix: Option<String>,
    /// The team whose secret store the spec's references must stay in; `None` for the default team.
    pub team: Option<String>,
}

impl ValidationContext {
    /// The same context for a spec of `team`.
    pub fn for_team(&self, team: &str) -> Self {
        Self {
            team: Some(team.to_owned()),
            ..self.clone()
        }
    }
}

/// The bounds the checks below enforce. The OpenAPI document states each of them (utoipa takes only
/// literals there); `api::openapi`'s tests tie the document's numbers to these.
pub mod bounds {
    pub const MAX_QUERY_LEN: usize = 4096;
    pub const MAX_SCALE: u32 = 10_000;
    pub const DAY_SECONDS: u32 = 86_400;
    /// The longest window, cooldown or catch-up time.
    pub const MAX_WINDOW_SECONDS: u32 = 7 * DAY_SECONDS;
    /// The shortest scale-up, scale-down and catch-up window: a few scrapes.
    pub const MIN_WINDOW_SECONDS: u32 = 30;
    /// `policy.predictive.lead_time_seconds`: a minute to six hours.
    pub const MIN_LEAD_TIME_SECONDS: u32 = 60;
    pub const MAX_LEAD_TIME_SECONDS: u32 = 6 * 3600;
    pub const MAX_DNS_LABEL_LEN: usize = 63;
    pub const MAX_DNS_SUBDOMAIN_LEN: usize = 253;
    pub const MAX_BRANCH_LEN: usize = 255;
    pub const MAX_ENV_NAME_LEN: usize = 128;
    /// Each of a GitHub repository's owner and name.
    pub const MAX_GITHUB_NAME_LEN: usize = 100;
    pub const MAX_LABEL_LEN: usize = 50;
    /// The pattern of a DNS label (RFC 1123), as Kubernetes names are.
    pub const DNS_LABEL_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
}

use bounds::*;

#[derive(Default)]
struct Problems(Vec<FieldProblem>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.0.push(FieldProblem::new(field, problem));
    }

    fn check(&mut self, field: &str, result: Result<(), String>) {
        if let Err(problem) = result {
            self.add(field, problem);
        }
    }
}

impl ClusterSpec {
    /// Every problem with the spec, or nothing.
    pub fn validate(&self, ctx: &ValidationContext) -> Result<(), Vec<FieldProblem>> {
        let mut problems = Problems::default();
        problems.check("name", check_dns_label(&self.name));
        // Postgres stores no NUL character in text or JSON; it is in no valid value anyway.
        if let Ok(value) = serde_json::to_value(self) {
            nul_characters(&value, "", &mut problems);
        }
        self.validate_target(ctx, &mut problems);
        self.validate_scale_unit(&mut problems);
        self.validate_metrics(&mut problems);
        self.validate_git(ctx, &mut problems);
        self.validate_write_back(ctx, &mut problems);
        self.validate_argocd(ctx, &mut problems);
        // With TaskManagers as the unit, the bounds are compared with the partitions in
        // `validate_scale_unit`.
        let bounds_in_partitions =
            !matches!(self.target.scale_unit, Some(ScaleUnit::TaskManagers { .. }));
        validate_policy(&self.policy, bounds_in_partitions, &mut problems);
        // Only where the field itself is well-formed: one problem per field is enough.
        for (field, destination) in self.destinations() {
            if problems.0.iter().any(|p| p.field == field) {
                continue;
            }
            let checked = match destination {
                Destination::Http(url) => ctx.outbound.check_url(url),
                Destination::Git(remote) => ctx.outbound.check_git_remote(remote),
            };
            problems.check(
                field,
                checked.map_err(|refusal| format!("is refused by the outbound policy: {refusal}")),
            );
        }
        if problems.0.is_empty() {
            Ok(())
        } else {
            Err(problems.0)
        }
    }

    fn validate_target(&self, ctx: &ValidationContext, problems: &mut Problems) {
        let target = &self.target;
        if let Some(url) = &target.control_url {
            problems.check("target.control_url", check_http_url(url));
        }
        if self.scales_reactively() {
            // In reactive mode, a job name and the REST API confirm the new parallelism.
            if let Some(flink) = &target.flink {
                if flink.job_name.trim().is_empty() {
                    problems.add("target.flink.job_name", "must not be empty");
                }
                if target.control_url.is_none() {
                    problems.add(
                        "target.control_url",
                        "required with target.flink: the Flink REST API the job's parallelism is read from",
                    );
                }
            }
            return;
        }
        match target.kind {
            TargetKind::Generic => problems.add(
                "target.reactive",
                "a generic target must scale reactively: the autoscaler has no way to restart it",
            ),
            TargetKind::Engine | TargetKind::Flink if target.control_url.is_none() => problems.add(
                "target.control_url",
                "required when the target does not scale reactively: it is how the job is restarted",
            ),
            _ => {}
        }
        if let Some(secret) = &target.control_token {
            problems.check("target.control_token", check_secret(secret, ctx));
        }
        if target.kind == TargetKind::Flink && target.flink.is_none() {
            problems.add(
                "target.flink",
                "required when a Flink job does not scale reactively: the job name and jar to resubmit",
            );
        }
        if let Some(flink) = &target.flink {
            if flink.job_name.trim().is_empty() {
                problems.add("target.flink.job_name", "must not be empty");
            }
            if flink.jar_id.len() < 5 || flink.jar_id.contains('/') {
                problems.add(
                    "target.flink.jar_id",
                    "must be the id Flink gave the uploaded jar, such as `<uuid>_job.jar`",
                );
            }
        }
    }

    fn validate_scale_unit(&self, problems: &mut Problems) {
        let unit = self.target.scale_unit;
        match (self.target.kind, unit) {
            (TargetKind::Flink, None) => problems.add(
                "target.scale_unit",
                "required for a Flink target: what the number in Git counts, {\"unit\": \"parallelism\"} or {\"unit\": \"task_managers\", \"slots_per_task_manager\": N}",
            ),
            (TargetKind::Engine | TargetKind::Generic, Some(_)) => problems.add(
                "target.scale_unit",
                format!(
                    "only a Flink target has a scale unit; a {} target's number is its instance count",
                    self.target.kind.as_str()
                ),
            ),
            _ => {}
        }
        let Some(ScaleUnit::TaskManagers {
            slots_per_task_manager: slots,
        }) = unit
        else {
            return;
        };
        if slots < 1 {
            problems.add(
                "target.scale_unit.slots_per_task_manager",
                "must be at least 1",
            );
            return;
        }
        // The partition count is in partitions, the bounds in TaskManagers: a TaskManager is worth having
        // while it gets at least one partition.
        if let Some(partitions) = self.policy.partition_count.filter(|p| *p >= 1) {
            let useful = partitions.div_ceil(slots);
            if self.policy.max_scale > useful {
                problems.add(
                    "policy.max_scale",
                    format!(
                        "must not exceed {useful} TaskManagers: {partitions} partitions (policy.partition_count) over {slots} slots each"
                    ),
                );
            }
        }
    }

    fn validate_metrics(&self, problems: &mut Problems) {
        let metrics = &self.metrics;
        problems.check(
            "metrics.prometheus_url",
            check_http_url(&metrics.prometheus_url),
        );
        if let Some(selector) = &metrics.selector {
            if selector.is_empty() {
                problems.add("metrics.selector", "must name at least one label");
            }
            for (label, value) in selector {
                let field = format!("metrics.selector.{label}");
                problems.check(&field, check_label_name(label));
                if value.is_empty() {
                    problems.add(field, "must not be empty");
                }
            }
        }
        let mut without_query = Vec::new();
        for (metric, query) in metrics.queries.entries() {
            match query {
                Some(query) => {
                    problems.check(&format!("metrics.queries.{metric}"), check_query(query))
                }
                None => without_query.push(metric),
            }
        }
        if without_query.is_empty() {
            return;
        }
        if self.target.kind == TargetKind::Generic {
            for metric in without_query {
                problems.add(
                    format!("metrics.queries.{metric}"),
                    "required for a generic target: it has no preset queries",
                );
            }
        } else if metrics.selector.is_none() {
            problems.add(
                "metrics.selector",
                format!(
                    "required unless every metric has its own query (no query for: {})",
                    without_query.join(", ")
                ),
            );
        }
    }

    fn validate_git(&self, ctx: &ValidationContext, problems: &mut Problems) {
        let git = &self.git;
        problems.check("git.repository", check_git_remote(&git.repository));
        problems.check("git.branch", check_branch(&git.branch));
        problems.check("git.path", check_yaml_path(&git.path));
        problems.check("git.key", check_key_path(&git.key));
        if let Some(secret) = &git.credentials {
            problems.check("git.credentials", check_secret(secret, ctx));
        }
    }

    fn validate_write_back(&self, ctx: &ValidationContext, problems: &mut Problems) {
        if let WriteBack::PullRequest {
            github_repository,
            github_api_url,
            token,
            labels,
        } = &self.write_back
        {
            for (i, label) in labels.iter().enumerate() {
                problems.check(&format!("write_back.labels[{i}]"), check_label(label));
            }
            problems.check(
                "write_back.github_repository",
                check_github_repository(github_repository),
            );
            if let Some(url) = github_api_url {
                problems.check("write_back.github_api_url", check_http_url(url));
            }
            problems.check("write_back.token", check_secret(token, ctx));
        }
        if let WriteBack::Recommend {
            comment_on: Some(comment_on),
        } = &self.write_back
        {
            problems.check(
                "write_back.comment_on.github_repository",
                check_github_repository(&comment_on.github_repository),
            );
            if let Some(url) = &comment_on.github_api_url {
                problems.check("write_back.comment_on.github_api_url", check_http_url(url));
            }
            problems.check(
                "write_back.comment_on.token",
                check_secret(&comment_on.token, ctx),
            );
        }
    }

    fn validate_argocd(&self, ctx: &ValidationContext, problems: &mut Problems) {
        let argocd = &self.argocd;
        problems.check("argocd.server", check_http_url(&argocd.server));
        problems.check(
            "argocd.application",
            check_dns_subdomain(&argocd.application),
        );
        if let Some(project) = &argocd.project {
            problems.check("argocd.project", check_dns_subdomain(project));
        }
        if let Some(secret) = &argocd.token {
            problems.check("argocd.token", check_secret(secret, ctx));
        }
    }
}

fn validate_policy(policy: &Policy, bounds_in_partitions: bool, problems: &mut Problems) {
    if policy.min_scale < 1 {
        problems.add("policy.min_scale", "must be at least 1");
    }
    if policy.max_scale < 1 {
        problems.add("policy.max_scale", "must be at least 1");
    } else if policy.max_scale > MAX_SCALE {
        problems.add("policy.max_scale", format!("must be at most {MAX_SCALE}"));
    }
    if policy.min_scale > policy.max_scale {
        problems.add(
            "policy.min_scale",
            format!(
                "must not exceed policy.max_scale ({}), got {}",
                policy.max_scale, policy.min_scale
            ),
        );
    }
    if let Some(partitions) = policy.partition_count {
        if partitions < 1 {
            problems.add("policy.partition_count", "must be at least 1");
        } else if bounds_in_partitions && policy.max_scale > partitions {
            problems.add(
                "policy.max_scale",
                format!(
                    "must not exceed policy.partition_count ({partitions}): more workers than partitions do no work"
                ),
            );
        }
    }
    if !(policy.cpu_high > 0.0 && policy.cpu_high <= 1.0) {
        problems.add("policy.cpu_high", "must be above 0 and at most 1");
    }
    if !(policy.cpu_low >= 0.0 && policy.cpu_low < policy.cpu_high) {
        problems.add(
            "policy.cpu_low",
            "must be at least 0 and below policy.cpu_high",
        );
    }
    if !super::spec::TARGET_UTILIZATION_RANGE.contains(&policy.target_utilization) {
        problems.add(
            "policy.target_utilization",
            format!(
                "must be between {} and {}, got {}",
                super::spec::TARGET_UTILIZATION_RANGE.start(),
                super::spec::TARGET_UTILIZATION_RANGE.end(),
                policy.target_utilization
            ),
        );
    }
    if !(policy.lag_seconds_high > 0.0 && policy.lag_seconds_high.is_finite()) {
        problems.add(
            "policy.lag_seconds_high",
            "must be a positive number of seconds",
        );
    }
    if !(policy.lag_seconds_low >= 0.0 && policy.lag_seconds_low < policy.lag_seconds_high) {
        problems.add(
            "policy.lag_seconds_low",
            "must be at least 0 and below policy.lag_seconds_high",
        );
    }
    let windows = [
        (
            "policy.scale_up_window_seconds",
            policy.scale_up_window_seconds,
            MIN_WINDOW_SECONDS,
        ),
        (
            "policy.scale_down_window_seconds",
            policy.scale_down_window_seconds,
            MIN_WINDOW_SECONDS,
        ),
        (
            "policy.catch_up_seconds",
            policy.catch_up_seconds,
            MIN_WINDOW_SECONDS,
        ),
        ("policy.cooldown_seconds", policy.cooldown_seconds, 0),
    ];
    for (field, seconds, least) in windows {
        if seconds < least || seconds > MAX_WINDOW_SECONDS {
            problems.add(field, format!("must be between {least} seconds and 7 days"));
        }
    }
    let lead = policy.predictive.lead_time_seconds;
    if !(MIN_LEAD_TIME_SECONDS..=MAX_LEAD_TIME_SECONDS).contains(&lead) {
        problems.add(
            "policy.predictive.lead_time_seconds",
            format!(
                "must be between {MIN_LEAD_TIME_SECONDS} seconds and {} hours, got {lead}",
                MAX_LEAD_TIME_SECONDS / 3600
            ),
        );
    }
    if policy.scale_down_window_seconds < policy.scale_up_window_seconds {
        problems.add(
            "policy.scale_down_window_seconds",
            "must be at least policy.scale_up_window_seconds: scaling down is the more careful move",
        );
    }
}

/// RFC 1123 label, as Kubernetes names are.
fn check_dns_label(name: &str) -> Result<(), String> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let alnum_ends = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if name.is_empty() || name.len() > MAX_DNS_LABEL_LEN || !valid_chars || !alnum_ends {
        return Err(format!(
            "must be a DNS label (1 to 63 lowercase letters, digits or '-', starting and ending with a letter or digit), got {name:?}"
        ));
    }
    Ok(())
}

fn check_dns_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > MAX_DNS_SUBDOMAIN_LEN
        || name.split('.').any(|l| check_dns_label(l).is_err())
    {
        return Err(format!(
            "must be a DNS subdomain (dot-separated DNS labels, at most 253 characters), got {name:?}"
        ));
    }
    Ok(())
}

fn check_http_url(url: &Url) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "must be an http or https URL, got scheme {:?}",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials: name a secret instead".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".to_owned());
    }
    Ok(())
}

/// Accepts URL remotes (https, http, ssh, git, file) and scp-like `user@host:path` remotes, but never a
/// password or token inside them.
fn check_git_remote(remote: &str) -> Result<(), String> {
    if remote.trim() != remote || remote.is_empty() || remote.chars().any(char::is_control) {
        return Err("must be a Git remote without spaces or control characters".to_owned());
    }
    if remote.contains("://") {
        let url = Url::parse(remote).map_err(|e| format!("is not a valid URL: {e}"))?;
        match url.scheme() {
            "https" | "http" if !url.username().is_empty() || url.password().is_some() => Err(
                "must not carry credentials: name a secret in git.credentials instead".to_owned(),
            ),
            "ssh" | "git" if url.password().is_some() => Err(
                "must not carry a password: name a secret in git.credentials instead".to_owned(),
            ),
            "https" | "http" | "ssh" | "git" | "file" => Ok(()),
            other => Err(format!(
                "must use https, http, ssh, git or file, got scheme {other:?}"
            )),
        }
    } else {
        // scp-like syntax: [user@]host:path
        match remote.split_once(':') {
            Some((host, path)) if !host.is_empty() && !host.contains('/') && !path.is_empty() => {
                Ok(())
            }
            _ => Err(format!(
                "must be a URL (https://, ssh://, file://) or user@host:path, got {remote:?}"
            )),
        }
    }
}

/// The rules of `git check-ref-format` that matter for a branch name.
fn check_branch(branch: &str) -> Result<(), String> {
    let bad = branch.is_empty()
        || branch.len() > MAX_BRANCH_LEN
        || branch.starts_with(['-', '/'])
        || branch.ends_with(['/', '.'])
        || branch.ends_with(".lock")
        || branch.contains("..")
        || branch.contains("//")
        || branch.contains("@{")
        || branch
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c));
    if bad {
        return Err(format!("is not a valid Git branch name: {branch:?}"));
    }
    Ok(())
}

fn check_relative_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.starts_with('/') || path.contains('\\') || path.contains('\0') {
        return Err(format!("must be a relative path, got {path:?}"));
    }
    if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(format!(
            "must not contain empty, '.' or '..' components, got {path:?}"
        ));
    }
    Ok(())
}

fn check_yaml_path(path: &str) -> Result<(), String> {
    check_relative_path(path)?;
    if !(path.ends_with(".yaml") || path.ends_with(".yml")) {
        return Err(format!(
            "must name a YAML file (.yaml or .yml), got {path:?}"
        ));
    }
    Ok(())
}

/// `a.b.c`, each segment a mapping key (letters, digits, `_`, `-`). The Git writer walks mappings only: a
/// path through a list is refused when it writes (a kustomize patch holding `spec.replicas` avoids lists).
fn check_key_path(key: &str) -> Result<(), String> {
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    // A key, then any list indexes: `containers[0]`.
    let segment_ok = |s: &str| match s.split_once('[') {
        None => name_ok(s),
        Some((name, indexes)) => {
            name_ok(name)
                && indexes.strip_suffix(']').is_some_and(|inner| {
                    inner.split("][").all(|i| {
                        !i.is_empty() && i.len() <= 6 && i.bytes().all(|b| b.is_ascii_digit())
                    })
                })
        }
    };
    if key.split('.').count() > 32 || !key.split('.').all(segment_ok) {
        return Err(format!(
            "must be a dot-separated key path such as \"engine.replicas\" or \"spec.containers[0].replicas\", got {key:?}"
        ));
    }
    Ok(())
}

fn check_github_repository(repository: &str) -> Result<(), String> {
    let part_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= MAX_GITHUB_NAME_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    match repository.split_once('/') {
        Some((owner, name)) if part_ok(owner) && part_ok(name) => Ok(()),
        _ => Err(format!("must be owner/name, got {repository:?}")),
    }
}

fn check_label_name(label: &str) -> Result<(), String> {
    let mut chars = label.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*): {label:?}"
        ));
    }
    Ok(())
}

fn check_query(query: &str) -> Result<(), String> {
    if query.trim().is_empty() {
        return Err("must not be empty".to_owned());
    }
    if query.len() > MAX_QUERY_LEN {
        return Err(format!("must be at most {MAX_QUERY_LEN} bytes"));
    }
    Ok(())
}

/// GitHub label names: 1 to 50 characters, no commas (the API splits on them).
fn check_label(label: &str) -> Result<(), String> {
    let length = label.chars().count();
    if length == 0 || length > MAX_LABEL_LEN || label.contains(',') || label.trim() != label {
        return Err(format!(
            "{label:?} is not a usable label: 1 to 50 characters, no comma, no surrounding spaces"
        ));
    }
    Ok(())
}

/// Every string of the spec (keys too) that holds a NUL character, by its path.
fn nul_characters(value: &serde_json::Value, path: &str, problems: &mut Problems) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        serde_json::Value::String(text) if text.contains('\0') => {
            problems.add(
                if path.is_empty() { "(body)" } else { path },
                "must not contain a NUL character",
            );
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                nul_characters(item, &join(&i.to_string()), problems);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                if key.contains('\0') {
                    problems.add(join(key), "the key must not contain a NUL character");
                } else {
                    nul_characters(item, &join(key), problems);
                }
            }
        }
        _ => {}
    }
}

fn check_secret(secret: &SecretRef, ctx: &ValidationContext) -> Result<(), String> {
    if let SecretRef::Env(name) = secret {
        let mut chars = name.chars();
        let ok = name.len() <= MAX_ENV_NAME_LEN
            && chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(format!(
                "env must be an environment variable name, got {name:?}"
            ));
        }
    }
    if let SecretRef::File(path) = secret {
        check_relative_path(path).map_err(|e| format!("file {e}"))?;
    }
    secrets::check(
        secret,
        ctx.team.as_deref().unwrap_or(DEFAULT_TEAM),
        ctx.secret_env_prefix
            .as_deref()
            .unwrap_or(secrets::DEFAULT_ENV_PREFIX),
        ctx.secrets_dir_configured,
    )
}

#[cfg(test)]
mod tests;
