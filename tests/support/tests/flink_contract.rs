//! The Flink test server answers the way external-apis.md §5 says Flink does.

use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::flink::{FlinkServer, JobState};

const TRIGGER: &str = "7d1f0c3e5a2b4c6d8e9f0a1b2c3d4e5f";

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = req.send().await.expect("request reaches the server");
    let status = response.status();
    let body = response.json().await.expect("a JSON body");
    (status, body)
}

async fn server() -> (FlinkServer, reqwest::Client, String, String) {
    let server = FlinkServer::start().await.expect("start");
    let jar = server.add_jar("orders.jar");
    let jid = server.start_job("orders", &jar, 2);
    (server, reqwest::Client::new(), jar, jid)
}

#[tokio::test]
async fn errors_are_a_list_with_404_for_unknown_ids_and_400_for_malformed_ones() {
    let (s, http, _, _) = server().await;
    let unknown = "0123456789abcdef0123456789abcdef";
    let (status, body) = send(http.get(format!("{}/jobs/{unknown}", s.url()))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"errors": [format!("Job {unknown} not found")]})
    );

    let (status, body) = send(http.get(format!("{}/jobs/not-an-id", s.url()))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["errors"][0].is_string(), "{body}");

    let (status, body) = send(http.get(format!("{}/no/such/route", s.url()))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"errors": ["Not found: /no/such/route"]}));
}

#[tokio::test]
async fn stop_with_savepoint_is_asynchronous_and_idempotent_per_trigger_id() {
    let (s, http, _, jid) = server().await;
    s.set_polls_to_complete(1);
    let stop = || {
        http.post(format!("{}/jobs/{jid}/stop", s.url()))
            .json(&json!({"drain": false, "triggerId": TRIGGER, "targetDirectory": "file:/sp"}))
    };
    let (status, body) = send(stop()).await;
    assert_eq!(
        (status, body),
        (StatusCode::ACCEPTED, json!({"request-id": TRIGGER}))
    );
    let (status, _) = send(stop()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        s.savepoint_operations(),
        1,
        "the same trigger id is the same operation"
    );

    let poll = format!("{}/jobs/{jid}/savepoints/{TRIGGER}", s.url());
    let (_, body) = send(http.get(&poll)).await;
    assert_eq!(body, json!({"status": {"id": "IN_PROGRESS"}}));
    let (_, body) = send(http.get(&poll)).await;
    assert_eq!(body["status"]["id"], "COMPLETED");
    let location = body["operation"]["location"].as_str().expect("a location");
    assert!(location.starts_with("file:/sp/savepoint-"), "{location}");
    assert_eq!(s.job(&jid).map(|j| j.state), Some(JobState::Finished));

    // After the job finished, the cached operation still answers the same trigger id.
    let (status, _) = send(stop()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_failed_savepoint_completes_with_a_failure_cause_and_the_job_keeps_running() {
    let (s, http, _, jid) = server().await;
    s.set_polls_to_complete(0);
    s.fail_next_savepoint("Checkpoint expired before completing.");
    let (status, _) = send(
        http.post(format!("{}/jobs/{jid}/stop", s.url()))
            .json(&json!({"triggerId": TRIGGER})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, body) = send(http.get(format!("{}/jobs/{jid}/savepoints/{TRIGGER}", s.url()))).await;
    assert_eq!(body["status"]["id"], "COMPLETED");
    assert!(body["operation"].get("location").is_none());
    let trace = body["operation"]["failure-cause"]["stack-trace"]
        .as_str()
        .expect("a stack trace");
    assert!(trace.contains("Checkpoint expired before completing."));
    assert_eq!(s.job(&jid).map(|j| j.state), Some(JobState::Running));
}

#[tokio::test]
async fn unknown_body_fields_are_refused_and_rescaling_is_disabled() {
    let (s, http, jar, jid) = server().await;
    let (status, body) = send(
        http.post(format!("{}/jars/{jar}/run", s.url()))
            .json(&json!({"parallelism": 2, "savepoint": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"errors": ["Request did not match expected format JarRunRequestBody."]})
    );
    assert!(s.live_jobs("orders").len() == 1);

    let (status, body) =
        send(http.patch(format!("{}/jobs/{jid}/rescaling?parallelism=4", s.url()))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({"errors": ["Rescaling is temporarily disabled. See FLINK-12312."]})
    );
}

#[tokio::test]
async fn a_submitted_job_initializes_without_vertices_then_runs() {
    let (s, http, jar, _) = server().await;
    s.set_polls_to_complete(1);
    let (status, body) = send(
        http.post(format!("{}/jars/{jar}/run", s.url()))
            .json(&json!({"parallelism": 3})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let new = body["jobid"].as_str().expect("a job id").to_owned();
    let (_, first) = send(http.get(format!("{}/jobs/{new}", s.url()))).await;
    assert_eq!(first["state"], "INITIALIZING");
    assert_eq!(first["vertices"], json!([]));
    let (_, second) = send(http.get(format!("{}/jobs/{new}", s.url()))).await;
    assert_eq!(second["state"], "RUNNING");
    let parallelism: Vec<_> = second["vertices"]
        .as_array()
        .expect("vertices")
        .iter()
        .map(|v| v["parallelism"].clone())
        .collect();
    assert_eq!(parallelism, [json!(3), json!(3), json!(3)]);
}

#[tokio::test]
async fn resource_requirements_need_the_adaptive_scheduler() {
    let (s, http, _, jid) = server().await;
    let url = format!("{}/jobs/{jid}/resource-requirements", s.url());
    let (status, current) = send(http.get(&url)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(http.put(&url).json(&current)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        body["errors"][0]
            .as_str()
            .is_some_and(|m| m.contains("AdaptiveScheduler"))
    );

    s.enable_adaptive_scheduler();
    let (status, _) = send(http.put(&url).json(&current)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s.requirement_updates(), [current]);
}
