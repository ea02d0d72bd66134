//! The deployment files against each other and against the code, so that they cannot drift: every
//! manifest under `deploy/` (kustomize base and overlays, the pipeline engine's installation, the Flink
//! pipeline's FlinkDeployment for the Flink Kubernetes operator, Argo CD),
//! `docker-compose.yml` and `deploy/Dockerfile`. Names, ports, labels, routes, settings and secret keys
//! are checked with the binaries' own parsers and routers (clap's definition of the autoscaler, the
//! engine's configuration loader, the API, webhook and engine routers in process, the cluster spec's
//! validation and the Git writer's YAML reader). No network, database or container engine is needed.
//!
//! Each check collects every problem it finds and names the file and the reference that broke.

mod compose;
mod flink;
mod flink_model;
mod image;
mod kubernetes;
mod manifests;
mod observability;
mod pipeline;
mod processes;
mod routes;
mod subscription;
