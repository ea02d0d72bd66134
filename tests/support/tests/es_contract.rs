//! The Elasticsearch test server answers `_bulk` the way pipeline-engines.md §4 says Elasticsearch does.

use serde_json::{Value, json};
use test_support::es::{EsServer, EsServerOptions, Faults};

async fn bulk(server: &EsServer, query: &str, ct: &str, body: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/_bulk{query}", server.url()))
        .header("content-type", ct)
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let v = resp.json().await.unwrap_or(Value::Null);
    (status, v)
}

const ND: &str = "application/x-ndjson";

#[tokio::test]
async fn items_come_back_in_order_with_created_conflict_and_mapping_errors() {
    let s = EsServer::start(EsServerOptions::default())
        .await
        .expect("start");
    let body = concat!(
        "{\"create\":{\"_index\":\"logs\",\"_id\":\"1\"}}\n{\"n\":1}\n",
        "{\"create\":{\"_index\":\"logs\",\"_id\":\"1\"}}\n{\"n\":1}\n",
        "{\"index\":{\"_index\":\"logs\",\"_id\":\"2\"}}\n{\"n\":\"not a number\"}\n",
        "{\"index\":{\"_index\":\"Bad\",\"_id\":\"3\"}}\n{\"n\":1}\n",
        "{\"index\":{\"_index\":\"logs\",\"_id\":\"4\"}}\n{broken\n",
        "{\"delete\":{\"_index\":\"logs\",\"_id\":\"1\"}}\n",
    );
    let (status, v) = bulk(&s, "", ND, body).await;
    assert_eq!(status, 200);
    assert_eq!(v["errors"], true);
    let items = v["items"].as_array().expect("items");
    assert_eq!(items.len(), 6);
    assert_eq!(items[0]["create"]["status"], 201);
    assert_eq!(items[0]["create"]["result"], "created");
    assert_eq!(items[1]["create"]["status"], 409);
    assert_eq!(
        items[1]["create"]["error"]["type"],
        "version_conflict_engine_exception"
    );
    assert_eq!(items[2]["index"]["status"], 400);
    assert_eq!(
        items[2]["index"]["error"]["type"],
        "document_parsing_exception"
    );
    assert_eq!(
        items[3]["index"]["error"]["type"],
        "invalid_index_name_exception"
    );
    assert_eq!(items[4]["index"]["status"], 400);
    assert_eq!(items[5]["delete"]["status"], 200);
    assert_eq!(s.stats().conflicts, 1);
}

#[tokio::test]
async fn whole_request_errors_use_the_error_envelope() {
    let s = EsServer::start(EsServerOptions {
        max_content_length: 200,
        ..Default::default()
    })
    .await
    .expect("start");
    let (st, v) = bulk(&s, "", ND, "{\"index\":{\"_index\":\"a\"}}\n{}").await;
    assert_eq!(st, 400);
    assert_eq!(v["error"]["type"], "illegal_argument_exception");
    assert_eq!(v["status"], 400);
    assert!(v["error"]["root_cause"].is_array());
    let (st, v) = bulk(&s, "", ND, "{\"upsert\":{\"_index\":\"a\"}}\n{}\n").await;
    assert_eq!(st, 400);
    assert!(
        v["error"]["reason"]
            .as_str()
            .expect("reason")
            .contains("Malformed action/metadata line [1]")
    );
    let (st, _) = bulk(&s, "", "text/plain", "{\"index\":{\"_index\":\"a\"}}\n{}\n").await;
    assert_eq!(st, 406);
    let big = format!(
        "{{\"index\":{{\"_index\":\"a\"}}}}\n{{\"m\":\"{}\"}}\n",
        "x".repeat(300)
    );
    let (st, _) = bulk(&s, "", ND, &big).await;
    assert_eq!(st, 413);
}

#[tokio::test]
async fn filter_path_keeps_item_positions() {
    let s = EsServer::start(EsServerOptions::default())
        .await
        .expect("start");
    let body = "{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{}\n{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{}\n";
    let (_, v) = bulk(
        &s,
        "?filter_path=errors,items.*.status,items.*.error.type",
        ND,
        body,
    )
    .await;
    assert_eq!(
        v,
        json!({"errors":true,"items":[{"create":{"status":201}},{"create":{"status":409,"error":{"type":"version_conflict_engine_exception"}}}]})
    );
}

#[tokio::test]
async fn fault_injection_429_storm_503_items_and_request_rejection() {
    let s = EsServer::start(EsServerOptions::default())
        .await
        .expect("start");
    s.set_faults(Faults {
        reject_requests: 1,
        reject_items: 2,
        fail_item_every: 5,
        ..Default::default()
    });
    let one = "{\"index\":{\"_index\":\"a\"}}\n{}\n";
    let (st, v) = bulk(&s, "", ND, one).await;
    assert_eq!(st, 429);
    assert_eq!(v["error"]["type"], "es_rejected_execution_exception");
    let body = one.repeat(5);
    let (st, v) = bulk(&s, "", ND, &body).await;
    assert_eq!(st, 200);
    let statuses: Vec<i64> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["index"]["status"].as_i64().expect("status"))
        .collect();
    assert_eq!(statuses, vec![429, 429, 201, 201, 503]);
}

#[tokio::test]
async fn dropped_connection_is_processed_but_unanswered() {
    let s = EsServer::start(EsServerOptions::default())
        .await
        .expect("start");
    s.set_faults(Faults {
        drop_connections: 1,
        ..Default::default()
    });
    let resp = reqwest::Client::new()
        .post(format!("{}/_bulk", s.url()))
        .header("content-type", ND)
        .body("{\"create\":{\"_index\":\"a\",\"_id\":\"x\"}}\n{}\n")
        .send()
        .await;
    let failed = match resp {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(failed, "client must not get a complete response");
    assert_eq!(
        s.stats().docs,
        1,
        "the document was indexed before the drop"
    );
}

#[tokio::test]
async fn basic_auth_is_enforced_when_configured() {
    let s = EsServer::start(EsServerOptions {
        basic_auth: Some(("u".into(), "p".into())),
        ..Default::default()
    })
    .await
    .expect("start");
    let (st, v) = bulk(&s, "", ND, "{\"index\":{\"_index\":\"a\"}}\n{}\n").await;
    assert_eq!(st, 401);
    assert_eq!(v["error"]["type"], "security_exception");
}
