//! What a subscribed cluster is: the spec a user submits, its defaults, and the checks it must pass before
//! anything is stored. Pure code: no I/O.

mod secret;
mod spec;
mod validate;

pub use crate::tenancy::secrets::OUTSIDE_STORE;
pub use secret::SecretRef;
pub use spec::{
    ArgoCdApp, ClusterSpec, CommentOn, Destination, FlinkJobSpec, GitLocation, MetricQueries,
    MetricsSource, Policy, Predictive, ScaleUnit, TARGET_UTILIZATION_RANGE, Target, TargetKind,
    WriteBack,
};
pub use validate::{FieldProblem, ValidationContext, bounds};
