//! Command line and environment configuration. Every flag has an environment variable; values are checked
//! at start so that a bad setting stops the service with a message that names it.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "autoscaler",
    version,
    about = "GitOps autoscaler for stream-processing jobs"
)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonConfig,
    #[command(subcommand)]
    pub role: Option<Command>,
}

/// A service role, or an offline tool that needs no database.
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Role(Role),
    /// Runs a load trace through the service's policy and the known ones, side by side; offline.
    Simulate(Box<crate::simulate::SimulateArgs>),
    /// A client of the subscription API: apply, get, list, delete, pause, resume, evaluate, samples,
    /// decisions.
    Cluster(Box<crate::cli::ClusterArgs>),
    /// Replays a cluster's recorded samples (fetched through the API) with a grid of its policy's
    /// settings and proposes the cheapest within its lag bound; `--apply` writes it to the subscription.
    Tune(Box<crate::cli::TuneArgs>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Role {
    /// Every role in one process (the default).
    Run,
    /// The subscription API, metric scraping and rule evaluation.
    Manager,
    /// Takes scaling tasks from the queue: estimate, check, write back to Git, sync Argo CD.
    Worker,
    /// Receives Argo CD notifications, GitHub events and engine registrations.
    Webhook,
    /// Creates the database if it is missing, applies migrations, and exits.
    Migrate,
}

#[derive(Debug, Clone, Args)]
pub struct CommonConfig {
    /// Postgres connection URL. The database is created if it does not exist.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/autoscaler",
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,

    /// Address the HTTP server listens on.
    #[arg(
        long,
        env = "AUTOSCALER_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// Plain bearer tokens accepted by the API, comma-separated (at least 16 characters each): each is an
    /// admin of the default team. For local use; in production use AUTOSCALER_API_TOKENS_FILE.
    #[arg(
        long,
        env = "AUTOSCALER_API_TOKENS",
        value_delimiter = ',',
        global = true,
        hide_env_values = true
    )]
    pub api_tokens: Vec<String>,

    /// A YAML file of tokens by their SHA-256, each with a name, a team and a role (viewer, editor,
    /// admin, engine); read again when it changes. See the README's Security section.
    #[arg(long, env = "AUTOSCALER_API_TOKENS_FILE", global = true)]
    pub api_tokens_file: Option<PathBuf>,

    /// The environment prefix of a team's secrets; `{team}` stands for the team's name in capitals,
    /// dashes as underscores. A spec may name only variables under its team's prefix.
    #[arg(
        long,
        env = "AUTOSCALER_TEAM_SECRET_ENV_PREFIX",
        default_value = crate::tenancy::secrets::DEFAULT_ENV_PREFIX,
        global = true
    )]
    pub team_secret_env_prefix: String,

    /// Where a spec's URLs may point: comma-separated `*` (any destination not refused by default),
    /// addresses or networks, host names or `*.domain`, and `file` for local Git remotes. Without it,
    /// loopback, link-local (cloud metadata), unspecified, multicast and reserved addresses and local
    /// Git remotes are refused, and the rest allowed.
    #[arg(long, env = "AUTOSCALER_OUTBOUND_ALLOW", global = true)]
    pub outbound_allow: Option<crate::outbound::OutboundPolicy>,

    /// Directory of the teams' secret stores: `{"file": ...}` references resolve under `<dir>/<team>/`.
    #[arg(long, env = "AUTOSCALER_SECRETS_DIR", global = true)]
    pub secrets_dir: Option<PathBuf>,

    /// How often the manager scrapes Prometheus and evaluates the rules, such as `30s`.
    #[arg(long, env = "AUTOSCALER_SCRAPE_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub scrape_interval: Duration,

    /// How long one PromQL query may take before it counts as failed.
    #[arg(long, env = "AUTOSCALER_PROMETHEUS_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub prometheus_timeout: Duration,

    /// How long metric samples are kept, such as `7d` or `36h`.
    #[arg(long, env = "AUTOSCALER_SAMPLE_RETENTION", default_value = "7d", value_parser = humantime::parse_duration, global = true)]
    pub sample_retention: Duration,

    /// How long handled webhook deliveries are remembered (a redelivery older than this is handled again).
    #[arg(long, env = "AUTOSCALER_DELIVERY_RETENTION", default_value = "30d", value_parser = humantime::parse_duration, global = true)]
    pub delivery_retention: Duration,

    /// Deliveries whose event happened longer ago than this are refused as stale (a captured delivery
    /// cannot be replayed after its record is pruned); shorter than AUTOSCALER_DELIVERY_RETENTION.
    #[arg(long, env = "AUTOSCALER_WEBHOOK_MAX_AGE", default_value = "3d", value_parser = humantime::parse_duration, global = true)]
    pub webhook_max_age: Duration,

    /// How long finished scaling tasks stay in the job queue's table.
    #[arg(long, env = "AUTOSCALER_TASK_RETENTION", default_value = "7d", value_parser = humantime::parse_duration, global = true)]
    pub task_retention: Duration,

    /// How long final decisions (the audit trail) are kept; open ones are never pruned.
    #[arg(long, env = "AUTOSCALER_DECISION_RETENTION", default_value = "365d", value_parser = humantime::parse_duration, global = true)]
    pub decision_retention: Duration,

    /// Largest request body accepted, in bytes; larger bodies get 413.
    #[arg(long, env = "AUTOSCALER_MAX_BODY_BYTES", default_value_t = 64 * 1024, global = true)]
    pub max_body_bytes: usize,

    /// How long in-flight work may take to finish after SIGTERM, such as `30s`.
    #[arg(long, env = "AUTOSCALER_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub shutdown_timeout: Duration,

    /// Where the worker keeps its Git clones (default: `autoscaler-git` in the system's temp directory).
    #[arg(long, env = "AUTOSCALER_WORK_DIR", global = true)]
    pub work_dir: Option<PathBuf>,

    /// How many scaling tasks one worker process carries out at once.
    #[arg(
        long,
        env = "AUTOSCALER_WORKER_CONCURRENCY",
        default_value_t = 4,
        global = true
    )]
    pub worker_concurrency: usize,

    /// How many times a task is tried when it fails for a passing reason (a remote that did not answer).
    #[arg(
        long,
        env = "AUTOSCALER_WORKER_ATTEMPTS",
        default_value_t = 5,
        global = true
    )]
    pub worker_attempts: u32,

    /// The wait before the first retry; it doubles with each attempt, plus jitter.
    #[arg(long, env = "AUTOSCALER_WORKER_BACKOFF", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub worker_backoff: Duration,

    /// How long a worker's lease on a decision lasts unless renewed (every third of it): a killed
    /// worker's decision can be taken over this long after its last renewal.
    #[arg(long, env = "AUTOSCALER_WORKER_LEASE_TTL", default_value = "60s", value_parser = humantime::parse_duration, global = true)]
    pub worker_lease_ttl: Duration,

    /// How long the worker follows an Argo CD sync before giving up on it for this attempt.
    #[arg(long, env = "AUTOSCALER_ARGOCD_SYNC_TIMEOUT", default_value = "10m", value_parser = humantime::parse_duration, global = true)]
    pub argocd_sync_timeout: Duration,

    /// How often the reconciler (led by one manager replica) looks for decisions stuck past a deadline.
    #[arg(long, env = "AUTOSCALER_RECONCILE_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub reconcile_interval: Duration,

    /// Re-drives of a stuck decision before the reconciler ends it as failed.
    #[arg(
        long,
        env = "AUTOSCALER_RECONCILE_MAX_REDRIVES",
        default_value_t = 3,
        global = true
    )]
    pub reconcile_max_redrives: u32,

    /// How long a decision may stay pending (waiting for a worker) before the reconciler acts.
    #[arg(long, env = "AUTOSCALER_DEADLINE_PENDING", default_value = "5m", value_parser = humantime::parse_duration, global = true)]
    pub deadline_pending: Duration,

    /// How long a decision may stay running (planning, writing to Git) before the reconciler acts.
    #[arg(long, env = "AUTOSCALER_DEADLINE_RUNNING", default_value = "10m", value_parser = humantime::parse_duration, global = true)]
    pub deadline_running: Duration,

    /// How long a committed or merged decision may wait for its sync to start.
    #[arg(long, env = "AUTOSCALER_DEADLINE_COMMITTED", default_value = "5m", value_parser = humantime::parse_duration, global = true)]
    pub deadline_committed: Duration,

    /// How long a decision may stay syncing; longer than AUTOSCALER_ARGOCD_SYNC_TIMEOUT.
    #[arg(long, env = "AUTOSCALER_DEADLINE_SYNCING", default_value = "20m", value_parser = humantime::parse_duration, global = true)]
    pub deadline_syncing: Duration,

    /// How long a synced decision may take to be applied (capacity up, or the job restarted).
    #[arg(long, env = "AUTOSCALER_DEADLINE_SYNCED", default_value = "20m", value_parser = humantime::parse_duration, global = true)]
    pub deadline_synced: Duration,

    /// How often the worker polls Argo CD while following a sync.
    #[arg(long, env = "AUTOSCALER_ARGOCD_POLL_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration, global = true)]
    pub argocd_poll_interval: Duration,

    /// The first wait after a GitHub secondary rate limit (403 without Retry-After); doubles on repeats.
    #[arg(long, env = "AUTOSCALER_GITHUB_SECONDARY_WAIT", default_value = "60s", value_parser = humantime::parse_duration, global = true)]
    pub github_secondary_wait: Duration,

    /// This service's address as users reach it, for links from commits and pull requests.
    #[arg(long, env = "AUTOSCALER_PUBLIC_URL", global = true)]
    pub public_url: Option<url::Url>,

    /// Tokens Argo CD notifications present to the webhook: bearer tokens, or `user:password` pairs for
    /// basic auth, comma-separated.
    #[arg(
        long,
        env = "AUTOSCALER_ARGOCD_WEBHOOK_TOKENS",
        value_delimiter = ',',
        global = true,
        hide_env_values = true
    )]
    pub argocd_webhook_tokens: Vec<String>,

    /// The secret GitHub signs webhook deliveries with (X-Hub-Signature-256).
    #[arg(
        long,
        env = "AUTOSCALER_GITHUB_WEBHOOK_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub github_webhook_secret: Option<String>,

    /// Bearer tokens pipeline engine instances present when they announce themselves, comma-separated.
    #[arg(
        long,
        env = "AUTOSCALER_ENGINE_TOKENS",
        value_delimiter = ',',
        global = true,
        hide_env_values = true
    )]
    pub engine_tokens: Vec<String>,

    /// An engine instance silent for this long no longer counts as running capacity.
    #[arg(long, env = "AUTOSCALER_ENGINE_HEARTBEAT_TIMEOUT", default_value = "90s", value_parser = humantime::parse_duration, global = true)]
    pub engine_heartbeat_timeout: Duration,

    /// Log format; the level comes from RUST_LOG (default `info`).
    #[arg(long, env = "AUTOSCALER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A setting that clap parsed but that makes no sense, named by its environment variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {setting}: {problem}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub problem: String,
}

const MIN_TOKEN_LEN: usize = 16;

impl CommonConfig {
    /// The reconciler's settings.
    pub fn reconcile(&self) -> crate::manager::ReconcileSettings {
        crate::manager::ReconcileSettings {
            interval: self.reconcile_interval,
            deadlines: crate::lifecycle::Deadlines {
                pending: self.deadline_pending,
                running: self.deadline_running,
                committed: self.deadline_committed,
                syncing: self.deadline_syncing,
                synced: self.deadline_synced,
            },
            max_redrives: self.reconcile_max_redrives,
            batch: 100,
        }
    }

    /// Checks what clap cannot: relations between settings and the ones a role needs.
    pub fn validate(&self, role: Role) -> Result<(), ConfigError> {
        let serves_api = matches!(role, Role::Run | Role::Manager);
        if serves_api && self.api_tokens.is_empty() && self.api_tokens_file.is_none() {
            return Err(ConfigError {
                setting: "AUTOSCALER_API_TOKENS",
                problem: "the API needs at least one bearer token (--api-tokens, or a token file in AUTOSCALER_API_TOKENS_FILE)".to_owned(),
            });
        }
        let prefix = &self.team_secret_env_prefix;
        if !prefix.contains("{team}")
            || !prefix
                .replace("{team}", "")
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(ConfigError {
                setting: "AUTOSCALER_TEAM_SECRET_ENV_PREFIX",
                problem: "must contain {team} and otherwise only capitals, digits and underscores"
                    .to_owned(),
            });
        }
        for (setting, tokens) in [
            ("AUTOSCALER_API_TOKENS", &self.api_tokens),
            (
                "AUTOSCALER_ARGOCD_WEBHOOK_TOKENS",
                &self.argocd_webhook_tokens,
            ),
            ("AUTOSCALER_ENGINE_TOKENS", &self.engine_tokens),
        ] {
            if let Some(position) = tokens
                .iter()
                .position(|t| t.len() < MIN_TOKEN_LEN || t.trim() != t)
            {
                return Err(ConfigError {
                    setting,
                    problem: format!(
                        "token {} must be at least {MIN_TOKEN_LEN} characters without surrounding spaces",
                        position + 1
                    ),
                });
            }
        }
        if let Some(dir) = &self.secrets_dir
            && !dir.is_dir()
        {
            return Err(ConfigError {
                setting: "AUTOSCALER_SECRETS_DIR",
                problem: format!("{} is not a directory", dir.display()),
            });
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError {
                setting: "AUTOSCALER_MAX_BODY_BYTES",
                problem: "must be at least 1024".to_owned(),
            });
        }
        if !(Duration::from_secs(5)..=Duration::from_secs(600)).contains(&self.scrape_interval) {
            return Err(ConfigError {
                setting: "AUTOSCALER_SCRAPE_INTERVAL",
                problem: "must be between 5s and 10m".to_owned(),
            });
        }
        if self.prometheus_timeout >= self.scrape_interval {
            return Err(ConfigError {
                setting: "AUTOSCALER_PROMETHEUS_TIMEOUT",
                problem: "must be shorter than the scrape interval".to_owned(),
            });
        }
        if self.sample_retention < Duration::from_secs(3600) {
            return Err(ConfigError {
                setting: "AUTOSCALER_SAMPLE_RETENTION",
                problem:
                    "must be at least 1h: the rules and the regression learn from this history"
                        .to_owned(),
            });
        }
        if self.webhook_max_age.is_zero() || self.webhook_max_age >= self.delivery_retention {
            return Err(ConfigError {
                setting: "AUTOSCALER_WEBHOOK_MAX_AGE",
                problem: "must be more than zero and shorter than AUTOSCALER_DELIVERY_RETENTION, or a delivery whose record was pruned could be replayed".to_owned(),
            });
        }
        if let Some(secret) = &self.github_webhook_secret
            && secret.trim().len() < 16
        {
            return Err(ConfigError {
                setting: "AUTOSCALER_GITHUB_WEBHOOK_SECRET",
                problem: "must be at least 16 characters".to_owned(),
            });
        }
        if self.worker_concurrency == 0 || self.worker_concurrency > 64 {
            return Err(ConfigError {
                setting: "AUTOSCALER_WORKER_CONCURRENCY",
                problem: "must be between 1 and 64".to_owned(),
            });
        }
        if self.worker_attempts == 0 || self.worker_attempts > 20 {
            return Err(ConfigError {
                setting: "AUTOSCALER_WORKER_ATTEMPTS",
                problem: "must be between 1 and 20".to_owned(),
            });
        }
        if self.deadline_syncing <= self.argocd_sync_timeout {
            return Err(ConfigError {
                setting: "AUTOSCALER_DEADLINE_SYNCING",
                problem: "must be longer than AUTOSCALER_ARGOCD_SYNC_TIMEOUT, or the reconciler would re-drive syncs the worker still follows".to_owned(),
            });
        }
        if self.reconcile_interval.is_zero() {
            return Err(ConfigError {
                setting: "AUTOSCALER_RECONCILE_INTERVAL",
                problem: "must be more than zero".to_owned(),
            });
        }
        if self.argocd_poll_interval.is_zero()
            || self.argocd_poll_interval >= self.argocd_sync_timeout
        {
            return Err(ConfigError {
                setting: "AUTOSCALER_ARGOCD_POLL_INTERVAL",
                problem: "must be above zero and shorter than AUTOSCALER_ARGOCD_SYNC_TIMEOUT"
                    .to_owned(),
            });
        }
        if !(self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError {
                setting: "DATABASE_URL",
                problem: "must be a postgres:// URL".to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parsed(args: &[&str]) -> CommonConfig {
        let mut argv = vec!["autoscaler", "webhook"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("parses").common
    }

    #[test]
    fn the_webhook_window_must_be_shorter_than_the_deliveries_retention() {
        assert!(parsed(&[]).validate(Role::Webhook).is_ok());
        for window in ["30d", "31d", "0s"] {
            let error = parsed(&["--webhook-max-age", window])
                .validate(Role::Webhook)
                .expect_err(window);
            assert_eq!(error.setting, "AUTOSCALER_WEBHOOK_MAX_AGE", "{window}");
        }
        let longer_retention = parsed(&["--webhook-max-age", "40d", "--delivery-retention", "60d"]);
        assert!(longer_retention.validate(Role::Webhook).is_ok());
    }
}
