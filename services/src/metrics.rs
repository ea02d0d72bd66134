//! The service's own Prometheus metrics: HTTP requests, loop timings, queue depth.

use std::{sync::atomic::AtomicU64, time::Duration};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The matched route template, never the raw path, so label values stay bounded.
    pub route: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoopLabels {
    /// Which loop, such as `sample_retention`.
    pub name: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    pub paused: bool,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MetricLabels {
    pub metric: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

/// Why a request was refused by tenancy: `unauthenticated`, `role`, `other_team`, `secret_outside_store`,
/// `engine_scope`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RefusalLabels {
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub source: &'static str,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub status: &'static str,
    pub rule: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuantileLabels {
    pub quantile: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_request_duration: Family<RouteLabels, Histogram>,
    pub loop_duration: Family<LoopLabels, Histogram>,
    pub loop_errors: Family<LoopLabels, Counter>,
    pub queue_depth: Family<QueueLabels, Gauge>,
    pub clusters: Family<ClusterLabels, Gauge>,
    pub scrape_queries: Family<OutcomeLabels, Counter>,
    pub metric_missing: Family<MetricLabels, Counter>,
    pub worker_tasks: Family<OutcomeLabels, Counter>,
    /// Recommend-only mode's pull request comments, by outcome: posted, already_posted,
    /// no_pull_request, failed.
    pub recommendation_comments: Family<OutcomeLabels, Counter>,
    pub webhook_deliveries: Family<DeliveryLabels, Counter>,
    /// Requests refused for who made them: no token, a role that may not, another team's cluster.
    pub api_refusals: Family<RefusalLabels, Counter>,
    /// What the reconciler did with decisions stuck past their deadline: `redrive` or `fail`.
    pub reconciler_actions: Family<ReconcileLabels, Counter>,
    pub decisions: Family<DecisionLabels, Gauge>,
    pub decision_stalled: Family<StatusLabels, FloatGauge>,
    pub decision_time_to_applied: Family<QuantileLabels, FloatGauge>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub action: &'static str,
    pub status: &'static str,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 15,
    ))
}

impl Default for Metrics {
    fn default() -> Self {
        let http_requests = Family::<RequestLabels, Counter>::default();
        let http_request_duration =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        let loop_duration =
            Family::<LoopLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        let loop_errors = Family::<LoopLabels, Counter>::default();
        let queue_depth = Family::<QueueLabels, Gauge>::default();
        let clusters = Family::<ClusterLabels, Gauge>::default();
        let scrape_queries = Family::<OutcomeLabels, Counter>::default();
        let metric_missing = Family::<MetricLabels, Counter>::default();
        let worker_tasks = Family::<OutcomeLabels, Counter>::default();
        let recommendation_comments = Family::<OutcomeLabels, Counter>::default();
        let webhook_deliveries = Family::<DeliveryLabels, Counter>::default();
        let reconciler_actions = Family::<ReconcileLabels, Counter>::default();
        let api_refusals = Family::<RefusalLabels, Counter>::default();
        let decisions = Family::<DecisionLabels, Gauge>::default();
        let decision_stalled = Family::<StatusLabels, FloatGauge>::default();
        let decision_time_to_applied = Family::<QuantileLabels, FloatGauge>::default();

        let mut registry = Registry::with_prefix("autoscaler");
        registry.register(
            "http_requests",
            "HTTP requests handled, by route and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency, by route",
            http_request_duration.clone(),
        );
        registry.register(
            "loop_duration_seconds",
            "Time one iteration of a background loop took",
            loop_duration.clone(),
        );
        registry.register(
            "loop_errors",
            "Background loop iterations that failed",
            loop_errors.clone(),
        );
        registry.register(
            "queue_depth",
            "Scaling tasks in the queue that are not done, by status",
            queue_depth.clone(),
        );
        registry.register("clusters", "Subscribed clusters", clusters.clone());
        registry.register(
            "scrape_queries",
            "PromQL queries run by the scrape, by outcome",
            scrape_queries.clone(),
        );
        registry.register(
            "metric_missing",
            "Cluster samples recorded without a metric (absent, NaN, or the query failed)",
            metric_missing.clone(),
        );
        registry.register(
            "worker_tasks",
            "Scaling task attempts by outcome: the status the decision reached, busy, or retry",
            worker_tasks.clone(),
        );
        registry.register(
            "recommendation_comments",
            "Recommend-only mode's comments on pull requests that change the scale file, by outcome (posted, already_posted, no_pull_request, failed)",
            recommendation_comments.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries by source and outcome (recorded, duplicate, ignored, or the refusal)",
            webhook_deliveries.clone(),
        );
        registry.register(
            "api_refusals",
            "API and engine requests refused by tenancy, by reason (unauthenticated, role, other_team, secret_outside_store, engine_scope)",
            api_refusals.clone(),
        );
        registry.register(
            "reconciler_actions",
            "Decisions the reconciler found stuck past their deadline, by action (redrive, fail) and the status they sat in",
            reconciler_actions.clone(),
        );
        // The three below mirror the database, read at scrape time: every role exports the same values.
        registry.register(
            "decisions",
            "Decisions stored, by status and by the rule that fired them",
            decisions.clone(),
        );
        registry.register(
            "decision_stalled_seconds",
            "For each status a decision is in flight in, how long its least recently changed decision has not changed",
            decision_stalled.clone(),
        );
        registry.register(
            "decision_time_to_applied_seconds",
            "From the rule firing to applied, over the decisions applied in the last 24 hours (quantile 0.5, 0.9, 1)",
            decision_time_to_applied.clone(),
        );

        Self {
            registry,
            http_requests,
            http_request_duration,
            loop_duration,
            loop_errors,
            queue_depth,
            clusters,
            scrape_queries,
            metric_missing,
            worker_tasks,
            recommendation_comments,
            webhook_deliveries,
            api_refusals,
            reconciler_actions,
            decisions,
            decision_stalled,
            decision_time_to_applied,
        }
    }
}

impl Metrics {
    pub fn observe_loop(&self, name: &'static str, took: Duration, ok: bool) {
        let labels = LoopLabels { name };
        self.loop_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if !ok {
            self.loop_errors.get_or_create(&labels).inc();
        }
    }

    pub fn record_scrape(&self, report: &crate::scrape::ScrapeReport) {
        let failed = report.failed_queries as u64;
        let ok = (report.queries as u64).saturating_sub(failed);
        self.scrape_queries
            .get_or_create(&OutcomeLabels { outcome: "ok" })
            .inc_by(ok);
        self.scrape_queries
            .get_or_create(&OutcomeLabels { outcome: "failed" })
            .inc_by(failed);
        for (metric, count) in &report.missing {
            self.metric_missing
                .get_or_create(&MetricLabels { metric })
                .inc_by(*count as u64);
        }
    }

    /// Counts a refusal by tenancy; the caller answers with the matching 4xx.
    pub fn refused(&self, reason: &'static str) {
        self.api_refusals
            .get_or_create(&RefusalLabels { reason })
            .inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
