//! The OpenAPI document, generated from the same types and handlers the router serves.

use utoipa::{
    Modify, OpenApi,
    openapi::{
        RefOr, Schema,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use super::{audit, clusters, error::ErrorBody, history};
use crate::{
    cluster::{
        ArgoCdApp, ClusterSpec, CommentOn, FieldProblem, FlinkJobSpec, GitLocation, MetricQueries,
        MetricsSource, Policy, Predictive, ScaleUnit, SecretRef, Target, TargetKind, WriteBack,
        bounds,
    },
    decide::{
        CheckState, CheckVerdict, EstimateSummary, Evaluation, Peak, Prediction, PredictionCheck,
        Sample,
    },
    rules::{Direction, Outcome, Verdict},
    simulate::{
        history::{FitMethod, FittedModel, History},
        tune::{Candidate, Knobs, Proposal, SettingChange},
    },
    storage::{AuditAction, AuditEntry, DecisionRecord, DecisionStatus},
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "autoscaler",
        description = "GitOps autoscaler for stream-processing jobs. Every endpoint takes a bearer token of a team with a role: viewer (read), editor (and change), admin (and read the audit log). A cluster belongs to the team that subscribed it; another team's cluster is answered 404 as a missing one, except to admins of the default team, who see every team. A role that may not is answered 403."
    ),
    paths(
        clusters::subscribe, clusters::list, clusters::read, clusters::replace,
        clusters::unsubscribe, clusters::pause, clusters::resume, clusters::decisions,
        clusters::evaluate, clusters::decision, history::samples, history::tune, audit::list,
    ),
    components(schemas(
        ClusterSpec, Target, TargetKind, MetricsSource, MetricQueries, GitLocation, WriteBack, CommentOn,
        ArgoCdApp, FlinkJobSpec, ScaleUnit, Policy, Predictive, SecretRef, clusters::ClusterView,
        clusters::ClusterPage, clusters::DecisionPage, DecisionRecord, DecisionStatus, ErrorBody, FieldProblem,
        Evaluation, EstimateSummary, CheckVerdict, CheckState, Verdict, Direction, Outcome,
        Prediction, Peak, PredictionCheck,
        audit::AuditPage, AuditEntry, AuditAction, History, Sample, Proposal, Candidate,
        Knobs, SettingChange, FittedModel, FitMethod,
    )),
    modifiers(&BearerAuth, &SecretEnvBounds),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The bounds of a secret's environment variable name: utoipa's derive takes none on an enum variant's
/// field, so they are added here, from the constants the check uses.
struct SecretEnvBounds;

impl Modify for SecretEnvBounds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(RefOr::T(Schema::OneOf(secret))) = openapi
            .components
            .as_mut()
            .and_then(|c| c.schemas.get_mut("SecretRef"))
        else {
            return;
        };
        for variant in &mut secret.items {
            if let RefOr::T(Schema::Object(variant)) = variant
                && let Some(RefOr::T(Schema::Object(env))) = variant.properties.get_mut("env")
            {
                env.max_length = Some(bounds::MAX_ENV_NAME_LEN);
                env.pattern = Some("^[A-Za-z_][A-Za-z0-9_]*$".to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use utoipa::OpenApi;

    use super::ApiDoc;
    use crate::cluster::bounds::*;

    /// utoipa takes only literals in its attributes: each number the document states is the constant
    /// the validation uses.
    #[test]
    fn the_stated_bounds_are_the_enforced_ones() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("json");
        let schemas = &doc["components"]["schemas"];
        let property = |schema: &str, field: &str| schemas[schema]["properties"][field].clone();
        let windows = [
            "scale_up_window_seconds",
            "scale_down_window_seconds",
            "catch_up_seconds",
        ];
        for field in windows {
            let p = property("Policy", field);
            assert_eq!(p["minimum"], json!(MIN_WINDOW_SECONDS), "{field}");
            assert_eq!(p["maximum"], json!(MAX_WINDOW_SECONDS), "{field}");
        }
        assert_eq!(
            property("Policy", "cooldown_seconds")["maximum"],
            json!(MAX_WINDOW_SECONDS)
        );
        for field in ["min_scale", "max_scale"] {
            assert_eq!(property("Policy", field)["maximum"], json!(MAX_SCALE));
        }
        let lead = property("Predictive", "lead_time_seconds");
        assert_eq!(lead["minimum"], json!(MIN_LEAD_TIME_SECONDS));
        assert_eq!(lead["maximum"], json!(MAX_LEAD_TIME_SECONDS));
        let name = property("ClusterSpec", "name");
        assert_eq!(name["maxLength"], json!(MAX_DNS_LABEL_LEN));
        assert_eq!(name["pattern"], json!(DNS_LABEL_PATTERN));
        assert_eq!(
            property("GitLocation", "branch")["maxLength"],
            json!(MAX_BRANCH_LEN)
        );
        for field in ["application", "project"] {
            assert_eq!(
                property("ArgoCdApp", field)["maxLength"],
                json!(MAX_DNS_SUBDOMAIN_LEN)
            );
        }
        let queries = &schemas["MetricQueries"]["properties"];
        for (metric, query) in queries.as_object().expect("properties") {
            assert_eq!(query["maxLength"], json!(MAX_QUERY_LEN), "{metric}");
        }
        let pull_request = schemas["WriteBack"]["oneOf"]
            .as_array()
            .expect("variants")
            .iter()
            .find(|v| v["properties"]["mode"]["enum"] == json!(["pull_request"]))
            .expect("the pull request variant");
        let repository = pull_request["properties"]["github_repository"]["pattern"].clone();
        let part = format!("{{1,{MAX_GITHUB_NAME_LEN}}}");
        assert_eq!(
            repository,
            json!(format!("^[A-Za-z0-9._-]{part}/[A-Za-z0-9._-]{part}$"))
        );
        let env: Vec<&Value> = schemas["SecretRef"]["oneOf"]
            .as_array()
            .expect("variants")
            .iter()
            .filter_map(|v| v["properties"].get("env"))
            .collect();
        assert_eq!(env.len(), 1, "{}", schemas["SecretRef"]);
        assert_eq!(env[0]["maxLength"], json!(MAX_ENV_NAME_LEN));
    }

    #[test]
    fn every_page_limit_states_the_enforced_bounds() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("json");
        let mut limits = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let get = &item["get"]["parameters"];
            for parameter in get.as_array().into_iter().flatten() {
                if parameter["name"] == "limit" {
                    limits += 1;
                    assert_eq!(parameter["in"], "query", "{path}");
                    assert_eq!(parameter["required"], false, "{path}");
                    assert_eq!(parameter["schema"]["minimum"], json!(1), "{path}");
                    assert_eq!(
                        parameter["schema"]["maximum"],
                        json!(crate::api::clusters::MAX_PAGE),
                        "{path}"
                    );
                }
            }
        }
        assert_eq!(limits, 3, "clusters, decisions and audit are paged");
    }
}
