//! The subscription API against the real Postgres: a fresh database per test, the real router on a free
//! loopback port, and a real HTTP client.

mod clusters;
#[path = "../common/database.rs"]
mod database;
mod decisions;
mod fuzz;
mod harness;
mod history;
mod openapi_bounds;
mod ops;
mod predictive;
mod refusals;
mod tenancy;
