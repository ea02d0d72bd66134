//! The `_bulk` wire format: encoding requests and classifying responses. Pure: no I/O.

use serde::Deserialize;

use crate::config::BulkAction;
use crate::transform::record::{DeadLetterReason, Document};

/// Keeps responses small while preserving every item's position (see pipeline-engines.md §4).
pub const FILTER_PATH: &str = "errors,items.*.status,items.*.error.type,items.*.error.reason";

/// Concatenates the documents' action and source lines; the body ends with `\n` as required.
pub fn encode(docs: &[Document], out: &mut Vec<u8>) {
    for d in docs {
        out.extend_from_slice(&d.lines);
    }
}

/// Bytes one document adds to a request.
pub fn encoded_len(d: &Document) -> usize {
    d.lines.len()
}

/// Why something is retried; the label of `engine_retries_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryReason {
    TooManyRequests,
    ServerError,
    /// 401/403/404 and cluster blocks: operator problems that are retried and alerted on, not dropped.
    Unavailable,
    Timeout,
    Connection,
    MalformedResponse,
}

impl RetryReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooManyRequests => "too_many_requests",
            Self::ServerError => "server_error",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Connection => "connection",
            Self::MalformedResponse => "malformed_response",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    Done,
    /// Done, and a re-send: `create` answered 409 because the deterministic id already exists.
    AlreadyWritten,
    Retry(RetryReason),
    DeadLetter(DeadLetterReason, String),
}

/// Error types that mean the document itself can never be indexed as it is.
const PERMANENT_TYPES: &[&str] = &[
    "mapper_parsing_exception",
    "document_parsing_exception",
    "strict_dynamic_mapping_exception",
    "illegal_argument_exception",
    "action_request_validation_exception",
    "invalid_index_name_exception",
];

pub fn classify_item(
    action: BulkAction,
    status: u16,
    error_type: Option<&str>,
    reason: Option<&str>,
) -> ItemOutcome {
    let detail = || {
        format!(
            "{status} {}: {}",
            error_type.unwrap_or("error"),
            reason.unwrap_or("")
        )
    };
    match status {
        200..=299 => ItemOutcome::Done,
        // A replay of a record that already made it: the deterministic id exists.
        409 if action == BulkAction::Create => ItemOutcome::AlreadyWritten,
        408 => ItemOutcome::Retry(RetryReason::Timeout),
        429 => ItemOutcome::Retry(RetryReason::TooManyRequests),
        401 | 403 | 404 => ItemOutcome::Retry(RetryReason::Unavailable),
        400 if error_type.is_some_and(|t| PERMANENT_TYPES.contains(&t)) => {
            ItemOutcome::DeadLetter(DeadLetterReason::MappingError, detail())
        }
        400..=499 => ItemOutcome::DeadLetter(DeadLetterReason::Rejected, detail()),
        _ => ItemOutcome::Retry(RetryReason::ServerError),
    }
}

/// What to do with a whole request after Elasticsearch answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseOutcome {
    /// One outcome per document, in request order.
    Items(Vec<ItemOutcome>),
    RetryAll(RetryReason, String),
    /// The request as a whole was refused (413, or a 400 caused by some document): split it to find
    /// the culprit; a single document refused this way is dead-lettered.
    Split(String),
}

#[derive(Deserialize)]
struct BulkResponse {
    #[serde(default)]
    errors: bool,
    #[serde(default)]
    items: Option<Vec<Item>>,
}

/// One item of a `_bulk` response: `{"<action>": {...}}`. The action name is not needed (items come
/// in request order), so it is skipped without allocating.
struct Item(Option<ItemResult>);

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Item;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a bulk response item")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
                let mut first = None;
                while map.next_key::<serde::de::IgnoredAny>()?.is_some() {
                    let r: ItemResult = map.next_value()?;
                    first.get_or_insert(r);
                }
                Ok(Item(first))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
struct ItemResult {
    status: u16,
    #[serde(default)]
    error: Option<ItemError>,
}

#[derive(Deserialize)]
struct ItemError {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: ErrorBody,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorBody {
    Object(ItemError),
    Text(String),
}

fn error_summary(status: u16, body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(ErrorResponse {
            error: ErrorBody::Object(e),
        }) => {
            format!(
                "{status} {}: {}",
                e.kind.unwrap_or_default(),
                e.reason.unwrap_or_default()
            )
        }
        Ok(ErrorResponse {
            error: ErrorBody::Text(t),
        }) => format!("{status}: {t}"),
        Err(_) => format!(
            "{status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ),
    }
}

pub fn classify_response(
    action: BulkAction,
    status: u16,
    body: &[u8],
    expected: usize,
) -> ResponseOutcome {
    match status {
        200 => {}
        408 => return ResponseOutcome::RetryAll(RetryReason::Timeout, error_summary(status, body)),
        429 => {
            return ResponseOutcome::RetryAll(
                RetryReason::TooManyRequests,
                error_summary(status, body),
            );
        }
        401 | 403 | 404 => {
            return ResponseOutcome::RetryAll(
                RetryReason::Unavailable,
                error_summary(status, body),
            );
        }
        400 | 413 => return ResponseOutcome::Split(error_summary(status, body)),
        // Other 4xx on the whole request are not caused by one document; keep retrying and alerting.
        _ => {
            return ResponseOutcome::RetryAll(
                RetryReason::ServerError,
                error_summary(status, body),
            );
        }
    }
    let parsed: BulkResponse = match serde_json::from_slice(body) {
        Ok(p) => p,
        Err(e) => {
            return ResponseOutcome::RetryAll(
                RetryReason::MalformedResponse,
                format!("bad JSON: {e}"),
            );
        }
    };
    let items = match parsed.items {
        Some(items) if items.len() == expected => items,
        Some(items) => {
            let msg = format!("{} items for {expected} documents", items.len());
            return ResponseOutcome::RetryAll(RetryReason::MalformedResponse, msg);
        }
        None => {
            return ResponseOutcome::RetryAll(RetryReason::MalformedResponse, "no items".into());
        }
    };
    let outcomes = items
        .into_iter()
        .map(|item| match item.0 {
            Some(r) if !parsed.errors && (200..300).contains(&r.status) => ItemOutcome::Done,
            Some(r) => {
                let (kind, reason) = r.error.map(|e| (e.kind, e.reason)).unwrap_or_default();
                classify_item(action, r.status, kind.as_deref(), reason.as_deref())
            }
            None => ItemOutcome::Retry(RetryReason::MalformedResponse),
        })
        .collect();
    ResponseOutcome::Items(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::record::{Position, SourceRecord};
    use bytes::Bytes;

    fn doc(id: &str) -> Document {
        Document::new(
            "create",
            "logs-a",
            id,
            br#"{"m":"x\ny"}"#,
            SourceRecord {
                position: Position {
                    topic: "t".into(),
                    partition: 0,
                    offset: 0,
                    generation: 1,
                },
                timestamp_ms: None,
                key: None,
                payload: Bytes::new(),
            },
        )
    }

    #[test]
    fn encodes_ndjson_ending_in_newline() {
        let mut out = Vec::new();
        encode(&[doc("t-0-1"), doc("t-0-2")], &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.ends_with('\n'));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.len(),
            4,
            "escaped newline in the body stays on its line"
        );
        let action: serde_json::Value = serde_json::from_str(lines[0]).expect("json");
        assert_eq!(
            action,
            serde_json::json!({"create": {"_index": "logs-a", "_id": "t-0-1"}})
        );
        assert!(encoded_len(&doc("t-0-1")) >= lines[0].len() + lines[1].len() + 2);
    }

    #[test]
    fn item_classification_follows_the_contract() {
        use ItemOutcome::*;
        let c = |a, s, t| classify_item(a, s, t, Some("why"));
        assert_eq!(c(BulkAction::Create, 201, None), Done);
        assert_eq!(c(BulkAction::Index, 200, None), Done);
        assert_eq!(
            c(
                BulkAction::Create,
                409,
                Some("version_conflict_engine_exception")
            ),
            AlreadyWritten,
            "done, counted as a re-send"
        );
        assert!(matches!(
            c(
                BulkAction::Index,
                409,
                Some("version_conflict_engine_exception")
            ),
            DeadLetter(..)
        ));
        assert_eq!(
            c(
                BulkAction::Create,
                429,
                Some("es_rejected_execution_exception")
            ),
            Retry(RetryReason::TooManyRequests)
        );
        assert_eq!(
            c(
                BulkAction::Create,
                503,
                Some("unavailable_shards_exception")
            ),
            Retry(RetryReason::ServerError)
        );
        assert_eq!(
            c(BulkAction::Create, 500, None),
            Retry(RetryReason::ServerError)
        );
        assert_eq!(
            c(BulkAction::Create, 403, Some("cluster_block_exception")),
            Retry(RetryReason::Unavailable)
        );
        assert_eq!(
            c(BulkAction::Create, 404, Some("index_not_found_exception")),
            Retry(RetryReason::Unavailable)
        );
        assert!(matches!(
            c(BulkAction::Create, 400, Some("mapper_parsing_exception")),
            DeadLetter(DeadLetterReason::MappingError, d) if d.contains("mapper_parsing_exception") && d.contains("why")
        ));
        assert!(matches!(
            c(BulkAction::Create, 400, Some("document_parsing_exception")),
            DeadLetter(DeadLetterReason::MappingError, _)
        ));
        assert!(matches!(
            c(BulkAction::Create, 400, Some("something_else")),
            DeadLetter(DeadLetterReason::Rejected, _)
        ));
    }

    #[test]
    fn mixed_response_maps_items_in_order() {
        let body = br#"{"took":3,"errors":true,"items":[
            {"create":{"status":201}},
            {"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}},
            {"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [n]"}}},
            {"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}}
        ]}"#;
        let ResponseOutcome::Items(items) = classify_response(BulkAction::Create, 200, body, 4)
        else {
            panic!("expected items");
        };
        assert_eq!(items[0], ItemOutcome::Done);
        assert_eq!(items[1], ItemOutcome::Retry(RetryReason::TooManyRequests));
        assert!(matches!(
            items[2],
            ItemOutcome::DeadLetter(DeadLetterReason::MappingError, _)
        ));
        assert_eq!(items[3], ItemOutcome::AlreadyWritten);
    }

    #[test]
    fn whole_request_statuses() {
        let err = br#"{"error":{"root_cause":[],"type":"es_rejected_execution_exception","reason":"rejected execution"},"status":429}"#;
        assert!(matches!(
            classify_response(BulkAction::Create, 429, err, 1),
            ResponseOutcome::RetryAll(RetryReason::TooManyRequests, m) if m.contains("rejected execution")
        ));
        assert!(matches!(
            classify_response(BulkAction::Create, 503, b"", 1),
            ResponseOutcome::RetryAll(RetryReason::ServerError, _)
        ));
        assert!(matches!(
            classify_response(BulkAction::Create, 413, b"", 1),
            ResponseOutcome::Split(_)
        ));
        assert!(
            matches!(classify_response(BulkAction::Create, 400, br#"{"error":"bad","status":400}"#, 1), ResponseOutcome::Split(m) if m.contains("bad"))
        );
        assert!(matches!(
            classify_response(BulkAction::Create, 401, b"", 1),
            ResponseOutcome::RetryAll(RetryReason::Unavailable, _)
        ));
    }

    #[test]
    fn malformed_or_mismatched_responses_are_retried_never_trusted() {
        let cases: [&[u8]; 4] = [
            b"<html>proxy error</html>",
            br#"{"errors":false}"#,
            br#"{"errors":false,"items":[{"create":{"status":201}}]}"#,
            br#"{"errors":false,"items":[{"create":{"status":"x"}},{"create":{"status":201}}]}"#,
        ];
        for body in cases {
            assert!(
                matches!(
                    classify_response(BulkAction::Create, 200, body, 2),
                    ResponseOutcome::RetryAll(RetryReason::MalformedResponse, _)
                ),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let empty_item = br#"{"errors":true,"items":[{}]}"#;
        assert_eq!(
            classify_response(BulkAction::Create, 200, empty_item, 1),
            ResponseOutcome::Items(vec![ItemOutcome::Retry(RetryReason::MalformedResponse)])
        );
    }
}
