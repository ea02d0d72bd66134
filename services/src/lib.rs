//! The GitOps autoscaler: subscribes stream-processing clusters, watches their metrics, and changes their
//! scale only through Git. See the README and ARCHITECTURE.md for the loop.

pub mod api;
pub mod argocd;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod decide;
pub mod estimate;
pub mod fault;
pub mod github;
pub mod gitops;
pub mod lifecycle;
pub mod manager;
pub mod metrics;
pub mod outbound;
pub mod queue;
pub mod rescale;
pub mod roles;
pub mod rules;
pub mod scrape;
pub mod shutdown;
pub mod simulate;
pub mod storage;
pub mod telemetry;
pub mod tenancy;
pub mod ui;
pub mod webhook;
pub mod worker;
