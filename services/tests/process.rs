//! The `autoscaler` binary as a user runs it: it creates its database, serves the API, stops cleanly on
//! SIGTERM, keeps its data across a restart, and refuses a bad configuration with a message naming it.

#[path = "common/database.rs"]
mod database;
#[path = "api/harness.rs"]
#[expect(
    dead_code,
    reason = "the process tests use only part of the API harness"
)]
mod harness;
#[path = "common/service.rs"]
mod service;

use std::process::Command;

use harness::{TOKEN, TestDatabase, spec};
use serde_json::Value;
use service::Service;

#[tokio::test]
async fn the_service_creates_its_database_and_keeps_subscriptions_across_a_restart() {
    let database = TestDatabase::new();
    let client = reqwest::Client::new();

    let first = Service::start(&database.url, TOKEN);
    let created = client
        .post(format!("{}/api/v1/clusters", first.address))
        .bearer_auth(TOKEN)
        .json(&spec("survivor"))
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status(), 201);
    let status = first.terminate();
    assert!(status.success(), "graceful exit on SIGTERM, got {status}");

    let second = Service::start(&database.url, TOKEN);
    let read = client
        .get(format!("{}/api/v1/clusters/survivor", second.address))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(read.status(), 200);
    let body: Value = read.json().await.expect("json");
    assert_eq!(body["spec"]["policy"]["max_scale"], 8);
    let ready = client
        .get(format!("{}/readyz", second.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(ready.status(), 200);
    assert!(second.terminate().success());
}

#[test]
fn a_bad_configuration_stops_start_up_with_a_message_naming_the_setting() {
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[], "AUTOSCALER_API_TOKENS"),
        (
            &[("AUTOSCALER_API_TOKENS", "short")],
            "AUTOSCALER_API_TOKENS",
        ),
        (
            &[
                ("AUTOSCALER_API_TOKENS", TOKEN),
                ("AUTOSCALER_SECRETS_DIR", "/nonexistent/dir"),
            ],
            "AUTOSCALER_SECRETS_DIR",
        ),
        (
            &[
                ("AUTOSCALER_API_TOKENS", TOKEN),
                ("DATABASE_URL", "mysql://localhost/db"),
            ],
            "DATABASE_URL",
        ),
    ];
    for (env, setting) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_autoscaler"))
            .arg("run")
            .env_remove("AUTOSCALER_API_TOKENS")
            .env_remove("DATABASE_URL")
            .envs(env.iter().copied())
            .output()
            .expect("the binary runs");
        assert_eq!(output.status.code(), Some(2), "{env:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(setting), "{env:?}: {stderr}");
    }
}

#[test]
fn a_malformed_flag_value_names_the_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_autoscaler"))
        .args(["--sample-retention", "forever", "migrate"])
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--sample-retention"), "{stderr}");
}
