use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use url::Url;
use utoipa::ToSchema;

use super::SecretRef;

/// A cluster's subscription: what it is, where its metrics and its scale live, how to change it, and the
/// policy the autoscaler follows. Everything but the essentials has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// A DNS label: lowercase letters, digits and `-`, at most 63 characters, starting and ending with a
    /// letter or digit. A cluster is never renamed: `PUT` takes the same name as its path.
    #[schema(
        example = "logs-ingest",
        min_length = 1,
        max_length = 63,
        pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
    )]
    pub name: String,
    pub target: Target,
    pub metrics: MetricsSource,
    pub git: GitLocation,
    #[serde(default)]
    pub write_back: WriteBack,
    pub argocd: ArgoCdApp,
    pub policy: Policy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// This project's pipeline engine.
    Engine,
    /// An Apache Flink job.
    Flink,
    /// Any other workload; every metric needs its own PromQL query.
    Generic,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Engine => "engine",
            TargetKind::Flink => "flink",
            TargetKind::Generic => "generic",
        }
    }

    /// Whether a new replica count takes effect without the autoscaler restarting the job: the engine's
    /// consumer group rebalances on its own; a Flink job without reactive mode must be restarted.
    pub fn scales_reactively_by_default(self) -> bool {
        !matches!(self, TargetKind::Flink)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub kind: TargetKind,
    /// Defaults by kind: `true` for `engine` and `generic`, `false` for `flink`.
    #[serde(default)]
    pub reactive: Option<bool>,
    /// The control API that restarts a non-reactive target at a new parallelism: the engine's control
    /// endpoint or the Flink REST API. Required when the target does not scale reactively.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub control_url: Option<Url>,
    /// A bearer token for the engine's control endpoint.
    #[serde(default)]
    pub control_token: Option<SecretRef>,
    /// How to restart a Flink job that does not scale reactively.
    #[serde(default)]
    pub flink: Option<FlinkJobSpec>,
    /// What the number in Git counts, for kind `flink` (required there, refused elsewhere). The policy's
    /// bounds and every decision's scales are in this unit.
    #[serde(default)]
    pub scale_unit: Option<ScaleUnit>,
}

impl Target {
    /// The parallelism a Flink job runs at when Git holds `scale` (in `scale_unit`; a spec stored before
    /// units existed meant parallelism). `None` when it overflows.
    pub fn parallelism_at(&self, scale: u32) -> Option<u32> {
        self.scale_unit
            .unwrap_or(ScaleUnit::Parallelism {})
            .to_parallelism(scale)
    }
}

/// What a Flink target's number in Git counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "unit", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScaleUnit {
    /// The job's parallelism (`FlinkDeployment` `spec.job.parallelism`, or the parallelism the job is
    /// resubmitted at). A struct variant so that stray fields are refused.
    Parallelism {},
    /// TaskManager replicas with this many slots each (`spec.taskManager.replicas` in reactive mode):
    /// the job runs at replicas × slots.
    TaskManagers {
        #[schema(minimum = 1)]
        slots_per_task_manager: u32,
    },
}

impl ScaleUnit {
    /// The unit's value for a job running at `parallelism`: TaskManagers are parallelism ÷ slots, kept
    /// fractional (3 subtasks on 2-slot TaskManagers are 1.5) so a rate per unit stays proportional.
    pub fn from_parallelism(self, parallelism: f64) -> f64 {
        match self {
            ScaleUnit::Parallelism {} => parallelism,
            ScaleUnit::TaskManagers {
                slots_per_task_manager,
            } => parallelism / f64::from(slots_per_task_manager.max(1)),
        }
    }

    /// The parallelism `scale` units run at; `None` when it overflows.
    pub fn to_parallelism(self, scale: u32) -> Option<u32> {
        match self {
            ScaleUnit::Parallelism {} => Some(scale),
            ScaleUnit::TaskManagers {
                slots_per_task_manager,
            } => scale.checked_mul(slots_per_task_manager),
        }
    }

    /// A change from `from` to `to` in this unit, in words, with the parallelism too for TaskManagers:
    /// "TaskManagers 2 → 3 (parallelism 4 → 6, 2 slots each)".
    pub fn describe_change(self, from: u64, to: u64) -> String {
        match self {
            ScaleUnit::Parallelism {} => format!("parallelism {from} → {to}"),
            ScaleUnit::TaskManagers {
                slots_per_task_manager: slots,
            } => {
                let p = |n: u64| n.saturating_mul(u64::from(slots));
                format!(
                    "TaskManagers {from} → {to} (parallelism {} → {}, {slots} slot{} each)",
                    p(from),
                    p(to),
                    if slots == 1 { "" } else { "s" }
                )
            }
        }
    }
}

/// The Flink job to restart at a new parallelism, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlinkJobSpec {
    /// The running job's name, as `GET /jobs/overview` shows it. Not blank.
    #[schema(min_length = 1)]
    pub job_name: String,
    /// The uploaded jar to resubmit (`/jars/{jar_id}/run`): at least 5 characters, no `/`. Not needed
    /// in reactive mode, where nothing is resubmitted.
    #[serde(default)]
    pub jar_id: String,
    #[serde(default)]
    pub entry_class: Option<String>,
    /// Arguments for the job's main method, one per item.
    #[serde(default)]
    pub program_args: Vec<String>,
    /// Where savepoints go; Flink's configured default when absent.
    #[serde(default)]
    pub savepoint_dir: Option<String>,
    /// The scheduler the spec expects the cluster to run: with the adaptive one (Flink 1.18+) the
    /// resource requirements change in place instead of a stop with a savepoint and a resubmission.
    /// The scheduler the job itself reports (`schedulerType`) wins; a difference is recorded on the
    /// decision.
    #[serde(default)]
    pub adaptive_scheduler: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsSource {
    #[schema(value_type = String, example = "http://prometheus:9090")]
    pub prometheus_url: Url,
    /// Label matchers that pick this cluster's series out of the kind's preset queries, such as
    /// `{"pipeline": "logs-ingest"}`. Required unless every metric has its own query. At least one
    /// label; each a Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`) with a non-empty value.
    #[serde(default)]
    pub selector: Option<BTreeMap<String, String>>,
    /// Per-metric PromQL overrides; each must return one value for this cluster. Each is 1 to 4096 bytes
    /// and not blank.
    #[serde(default)]
    pub queries: MetricQueries,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricQueries {
    /// CPU load, 0 to 1 per core available to the job.
    #[schema(min_length = 1, max_length = 4096)]
    pub cpu_load: Option<String>,
    /// Consumer lag in records.
    #[schema(min_length = 1, max_length = 4096)]
    pub lag_records: Option<String>,
    /// Consumer lag in seconds.
    #[schema(min_length = 1, max_length = 4096)]
    pub lag_seconds: Option<String>,
    /// Records consumed per second.
    #[schema(min_length = 1, max_length = 4096)]
    pub records_in: Option<String>,
    /// Records written out per second.
    #[schema(min_length = 1, max_length = 4096)]
    pub records_out: Option<String>,
    /// The current scale: the instance count; for a Flink target the job's parallelism, which the
    /// manager stores in `target.scale_unit`.
    #[schema(min_length = 1, max_length = 4096)]
    pub scale: Option<String>,
}

impl MetricQueries {
    /// Every metric with its name and override, in a fixed order.
    pub fn entries(&self) -> [(&'static str, Option<&str>); 6] {
        [
            ("cpu_load", self.cpu_load.as_deref()),
            ("lag_records", self.lag_records.as_deref()),
            ("lag_seconds", self.lag_seconds.as_deref()),
            ("records_in", self.records_in.as_deref()),
            ("records_out", self.records_out.as_deref()),
            ("scale", self.scale.as_deref()),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GitLocation {
    /// Any Git remote: `https://`, `ssh://`, `git@host:path` or `file://`. Without credentials in it.
    #[schema(example = "https://git.example.com/platform/gitops.git")]
    pub repository: String,
    /// A Git branch name (`git check-ref-format`), at most 255 bytes.
    #[serde(default = "default_branch")]
    #[schema(example = "main", min_length = 1, max_length = 255)]
    pub branch: String,
    /// The YAML file holding the scale, relative to the repository root: no leading `/`, no `.`, `..`
    /// or empty components, ending in `.yaml` or `.yml`.
    #[schema(
        example = "pipelines/logs-ingest/values.yaml",
        pattern = "^[^/].*\\.ya?ml$"
    )]
    pub path: String,
    /// Dot-separated path to the number in that file: at most 32 segments, each a key of letters, digits,
    /// `_` and `-`, optionally followed by list indexes such as `containers[0]`.
    #[schema(
        example = "engine.replicas",
        pattern = "^[A-Za-z0-9_-]+(\\[[0-9]{1,6}\\])*(\\.[A-Za-z0-9_-]+(\\[[0-9]{1,6}\\])*){0,31}$"
    )]
    pub key: String,
    /// Credentials for pushing, if the remote needs them.
    #[serde(default)]
    pub credentials: Option<SecretRef>,
}

fn default_labels() -> Vec<String> {
    vec!["autoscaler".to_owned()]
}

fn default_branch() -> String {
    "main".to_owned()
}

/// How a new scale reaches Git.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum WriteBack {
    /// Commit and push to the branch directly.
    #[default]
    Commit,
    /// Open (or update) one pull request per cluster for review.
    PullRequest {
        /// `owner/name` on GitHub, each 1 to 100 letters, digits, `-`, `_` or `.`.
        #[schema(pattern = "^[A-Za-z0-9._-]{1,100}/[A-Za-z0-9._-]{1,100}$")]
        github_repository: String,
        /// GitHub's REST API; defaults to `https://api.github.com`. Set it for GitHub Enterprise.
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        github_api_url: Option<Url>,
        /// A token allowed to push branches and open pull requests.
        token: SecretRef,
        /// Labels put on the pull request: each 1 to 50 characters, no comma, no surrounding spaces.
        #[serde(default = "default_labels")]
        labels: Vec<String>,
    },
    /// Recommend only: decide and record what the scale should be (status `recommended`), and write
    /// nothing to Git, open no pull request and sync nothing. With `comment_on`, the recommendation is
    /// also commented on the open pull requests that change the scale file.
    Recommend {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment_on: Option<CommentOn>,
    },
}

/// Where recommend-only mode comments its recommendations: the open pull requests against `git.branch`
/// that change `git.path`, in this GitHub repository. A comment that cannot be posted is recorded on the
/// decision and changes nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentOn {
    /// `owner/name` on GitHub, each 1 to 100 letters, digits, `-`, `_` or `.`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,100}/[A-Za-z0-9._-]{1,100}$")]
    pub github_repository: String,
    /// GitHub's REST API; defaults to `https://api.github.com`. Set it for GitHub Enterprise.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub github_api_url: Option<Url>,
    /// A token allowed to read pull requests and write issue comments.
    pub token: SecretRef,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArgoCdApp {
    #[schema(value_type = String, example = "https://argocd.example.com")]
    pub server: Url,
    /// A DNS subdomain (dot-separated DNS labels), at most 253 characters.
    #[schema(example = "logs-ingest", min_length = 1, max_length = 253)]
    pub application: String,
    /// The application's project. With it, Argo CD tells a missing application (404) from a
    /// forbidden one; without it, both are 403. A DNS subdomain, at most 253 characters.
    #[serde(default)]
    #[schema(example = "streaming", min_length = 1, max_length = 253)]
    pub project: Option<String>,
    /// An Argo CD API token.
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// For applications with automated sync: ask for a refresh instead of a sync.
    #[serde(default)]
    pub auto_sync: bool,
}

/// When and how far to scale. Defaults are the design's: lag above 300 s or CPU above 0.8 scales up.
///
/// Besides each field's own bounds, these rules tie fields together: `min_scale` ≤ `max_scale`;
/// `max_scale` ≤ `partition_count` (with TaskManagers as the unit, ≤ partitions ÷ slots, rounded up);
/// `cpu_low` < `cpu_high`; `lag_seconds_low` < `lag_seconds_high`; `scale_down_window_seconds` ≥
/// `scale_up_window_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// At least 1 and at most `max_scale`.
    #[serde(default = "default_min_scale")]
    #[schema(minimum = 1, maximum = 10000)]
    pub min_scale: u32,
    /// At least `min_scale` and at most 10000 (and `partition_count`).
    #[schema(minimum = 1, maximum = 10000)]
    pub max_scale: u32,
    /// The source topic's partition count: parallelism above it does no work. Always in partitions; with
    /// TaskManagers as the scale unit, `max_scale` may reach partitions ÷ slots, rounded up.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub partition_count: Option<u32>,
    /// Scale up when lag stays above this many seconds over the scale-up window.
    #[serde(default = "default_lag_seconds_high")]
    #[schema(exclusive_minimum = 0)]
    pub lag_seconds_high: f64,
    /// Scale up when CPU load stays above this over the scale-up window.
    #[serde(default = "default_cpu_high")]
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub cpu_high: f64,
    /// Scale down only when CPU load stays below this over the scale-down window (below `cpu_high`)...
    #[serde(default = "default_cpu_low")]
    #[schema(minimum = 0, exclusive_maximum = 1)]
    pub cpu_low: f64,
    /// ...and lag stays below this many seconds (below `lag_seconds_high`).
    #[serde(default = "default_lag_seconds_low")]
    #[schema(minimum = 0)]
    pub lag_seconds_low: f64,
    /// 30 seconds to 7 days.
    #[serde(default = "default_scale_up_window")]
    #[schema(minimum = 30, maximum = 604800)]
    pub scale_up_window_seconds: u32,
    /// 30 seconds to 7 days, and at least `scale_up_window_seconds`.
    #[serde(default = "default_scale_down_window")]
    #[schema(minimum = 30, maximum = 604800)]
    pub scale_down_window_seconds: u32,
    /// No new action this long after a change was applied. 0 to 7 days.
    #[serde(default = "default_cooldown")]
    #[schema(minimum = 0, maximum = 604800)]
    pub cooldown_seconds: u32,
    /// The new scale must drain the current lag within this time. 30 seconds to 7 days.
    #[serde(default = "default_catch_up")]
    #[schema(minimum = 30, maximum = 604800)]
    pub catch_up_seconds: u32,
    /// The busy share the estimator sizes for: the new scale carries the forecast input at this
    /// utilisation (plus draining the lag), and a scale-down comes as soon as one worker fewer would still
    /// run the window's busiest two minutes at or below it. Between 0.3 and 0.95; lower buys headroom, higher
    /// saves replica-hours. The default is the one `bench/simulate/run.sh` found cheapest within the
    /// lag goals.
    #[serde(default = "default_target_utilization")]
    #[schema(example = 0.8, minimum = 0.3, maximum = 0.95)]
    pub target_utilization: f64,
    /// The opt-in predictive rule (off by default): from the daily pattern of the input rate over the
    /// past days, scale up ahead of a forecast peak and refuse a scale-down the forecast would undo
    /// within the cooldown.
    #[serde(default)]
    pub predictive: Predictive,
}

/// A scale must carry its load with CPU this far below `cpu_high`, or the CPU rule would fire again as
/// soon as the cooldown is over (and metric noise alone would reach the threshold).
const CPU_MARGIN: f64 = 0.95;

impl Policy {
    /// The highest busy share a scale is sized for or trimmed to: `cpu_high` less a margin. A scale-up
    /// sizes the forecast input below it, and a scale-down goes one worker lower only when the window's
    /// busiest stretch would stay below it. One figure for both, so a trim never undoes a sizing.
    pub fn cpu_ceiling(&self) -> f64 {
        self.cpu_high * CPU_MARGIN
    }
}

/// `policy.predictive`: the daily seasonal forecast and the rule and veto that act on it. Needs a day of
/// samples at least (the samples' retention, `AUTOSCALER_SAMPLE_RETENTION`, must keep two).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Predictive {
    #[serde(default)]
    pub enabled: bool,
    /// How far ahead of a forecast peak the scale is raised: at least the time a change takes to
    /// take effect (review, sync, restart). 60 seconds to 6 hours.
    #[serde(default = "default_lead_time")]
    #[schema(minimum = 60, maximum = 21600)]
    pub lead_time_seconds: u32,
}

impl Default for Predictive {
    fn default() -> Self {
        Self {
            enabled: false,
            lead_time_seconds: default_lead_time(),
        }
    }
}

fn default_lead_time() -> u32 {
    900
}

/// The bounds of `policy.target_utilization`.
pub const TARGET_UTILIZATION_RANGE: std::ops::RangeInclusive<f64> = 0.3..=0.95;

fn default_min_scale() -> u32 {
    1
}
fn default_lag_seconds_high() -> f64 {
    300.0
}
fn default_cpu_high() -> f64 {
    0.9
}
fn default_cpu_low() -> f64 {
    0.3
}
fn default_lag_seconds_low() -> f64 {
    30.0
}
fn default_scale_up_window() -> u32 {
    300
}
fn default_scale_down_window() -> u32 {
    1800
}
fn default_cooldown() -> u32 {
    900
}
fn default_catch_up() -> u32 {
    600
}
fn default_target_utilization() -> f64 {
    0.85
}

/// A place the service connects to on a spec's behalf.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Destination<'a> {
    Http(&'a Url),
    Git(&'a str),
}

impl ClusterSpec {
    /// Every destination the spec names, with the field that names it.
    pub fn destinations(&self) -> Vec<(&'static str, Destination<'_>)> {
        let mut found = vec![
            (
                "metrics.prometheus_url",
                Destination::Http(&self.metrics.prometheus_url),
            ),
            ("git.repository", Destination::Git(&self.git.repository)),
            ("argocd.server", Destination::Http(&self.argocd.server)),
        ];
        if let Some(url) = &self.target.control_url {
            found.push(("target.control_url", Destination::Http(url)));
        }
        if let WriteBack::PullRequest {
            github_api_url: Some(url),
            ..
        } = &self.write_back
        {
            found.push(("write_back.github_api_url", Destination::Http(url)));
        }
        if let WriteBack::Recommend {
            comment_on:
                Some(CommentOn {
                    github_api_url: Some(url),
                    ..
                }),
        } = &self.write_back
        {
            found.push((
                "write_back.comment_on.github_api_url",
                Destination::Http(url),
            ));
        }
        found
    }

    /// Fills the defaults that depend on other fields, so what is stored and returned is explicit.
    pub fn with_resolved_defaults(mut self) -> Self {
        self.target.reactive = Some(
            self.target
                .reactive
                .unwrap_or_else(|| self.target.kind.scales_reactively_by_default()),
        );
        self
    }

    pub fn scales_reactively(&self) -> bool {
        self.target
            .reactive
            .unwrap_or_else(|| self.target.kind.scales_reactively_by_default())
    }
}

#[cfg(test)]
mod tests {
    use super::ScaleUnit;

    const TWO_SLOTS: ScaleUnit = ScaleUnit::TaskManagers {
        slots_per_task_manager: 2,
    };

    #[test]
    fn task_managers_convert_to_and_from_parallelism() {
        assert_eq!(TWO_SLOTS.to_parallelism(3), Some(6));
        assert_eq!(TWO_SLOTS.from_parallelism(6.0), 3.0);
        assert_eq!(TWO_SLOTS.from_parallelism(3.0), 1.5);
        assert_eq!(TWO_SLOTS.to_parallelism(u32::MAX), None);
        let parallelism = ScaleUnit::Parallelism {};
        assert_eq!(parallelism.to_parallelism(7), Some(7));
        assert_eq!(parallelism.from_parallelism(7.0), 7.0);
    }

    #[test]
    fn a_change_says_its_unit_and_for_task_managers_the_parallelism_too() {
        assert_eq!(
            TWO_SLOTS.describe_change(2, 3),
            "TaskManagers 2 → 3 (parallelism 4 → 6, 2 slots each)"
        );
        let one = ScaleUnit::TaskManagers {
            slots_per_task_manager: 1,
        };
        assert_eq!(
            one.describe_change(4, 2),
            "TaskManagers 4 → 2 (parallelism 4 → 2, 1 slot each)"
        );
        assert_eq!(
            (ScaleUnit::Parallelism {}).describe_change(4, 6),
            "parallelism 4 → 6"
        );
    }

    #[test]
    fn the_unit_is_tagged_json() {
        let unit: ScaleUnit = serde_json::from_value(
            serde_json::json!({"unit": "task_managers", "slots_per_task_manager": 2}),
        )
        .expect("parses");
        assert_eq!(unit, TWO_SLOTS);
        assert_eq!(
            serde_json::to_value(ScaleUnit::Parallelism {}).expect("json"),
            serde_json::json!({"unit": "parallelism"})
        );
    }
}
