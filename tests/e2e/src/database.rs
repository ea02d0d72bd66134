//! The stack's Postgres database on the machine's server.

use std::process::Command;

use crate::log;

/// A database name for one stack; dropping it drops the database (make it a stack's last field, so
/// that the autoscaler is gone by then). The autoscaler creates the database itself.
pub struct Database(String);

impl Database {
    pub fn new(prefix: &str) -> Self {
        Self(format!(
            "{prefix}_{}_{}",
            std::process::id(),
            chrono::Utc::now().timestamp_millis()
        ))
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.0)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let dropped = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-q",
                "-c",
            ])
            .arg(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.0
            ))
            .status();
        if !dropped.is_ok_and(|s| s.success()) {
            log(&format!("could not drop database {}", self.0));
        }
    }
}
