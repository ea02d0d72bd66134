//! The OpenAPI document, generated from the same types and handlers the router serves.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use super::{audit, clusters, error::ErrorBody};
use crate::{
    cluster::{
        ArgoCdApp, ClusterSpec, FieldProblem, FlinkJobSpec, GitLocation, MetricQueries,
        MetricsSource, Policy, ScaleUnit, SecretRef, Target, TargetKind, WriteBack,
    },
    decide::{CheckState, CheckVerdict, EstimateSummary, Evaluation},
    rules::{Direction, Outcome, Verdict},
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
        clusters::evaluate, clusters::decision, audit::list,
    ),
    components(schemas(
        ClusterSpec, Target, TargetKind, MetricsSource, MetricQueries, GitLocation, WriteBack,
        ArgoCdApp, FlinkJobSpec, ScaleUnit, Policy, SecretRef, clusters::ClusterView, clusters::ClusterPage,
        clusters::DecisionPage, DecisionRecord, DecisionStatus, ErrorBody, FieldProblem,
        Evaluation, EstimateSummary, CheckVerdict, CheckState, Verdict, Direction, Outcome,
        audit::AuditPage, AuditEntry, AuditAction,
    )),
    modifiers(&BearerAuth),
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
