//! Waiting for a condition with a deadline: test-support's helpers.

pub use test_support::wait::{until_ok, until_some};
