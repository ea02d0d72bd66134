//! The documents the test server holds, with a simulated dynamic mapping per index so that type
//! conflicts produce the 400 parsing errors Elasticsearch gives.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldType {
    Long,
    Double,
    Text,
    Boolean,
    Object,
}

impl FieldType {
    fn name(self) -> &'static str {
        match self {
            Self::Long => "long",
            Self::Double => "float",
            Self::Text => "text",
            Self::Boolean => "boolean",
            Self::Object => "object",
        }
    }

    fn of(v: &Value) -> Option<Self> {
        match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(Self::Long),
            Value::Number(_) => Some(Self::Double),
            Value::String(_) => Some(Self::Text),
            Value::Bool(_) => Some(Self::Boolean),
            Value::Object(_) => Some(Self::Object),
            // Arrays take the type of their elements; null maps nothing.
            Value::Array(a) => a.iter().find_map(Self::of),
            Value::Null => None,
        }
    }

    /// Whether a value can be indexed into a field of this type (with Elasticsearch's coercion).
    fn accepts(self, v: &Value) -> bool {
        match (self, v) {
            (_, Value::Null) => true,
            (_, Value::Array(a)) => a.iter().all(|x| self.accepts(x)),
            (Self::Object, Value::Object(_)) => true,
            (Self::Object, _) | (_, Value::Object(_)) => false,
            (Self::Long, Value::Number(n)) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            (Self::Long, Value::String(s)) => s.trim().parse::<i64>().is_ok(),
            (Self::Double, Value::Number(_)) => true,
            (Self::Double, Value::String(s)) => s.trim().parse::<f64>().is_ok(),
            (Self::Boolean, Value::Bool(_)) => true,
            (Self::Boolean, Value::String(s)) => s == "true" || s == "false",
            (Self::Text, _) => true,
            (Self::Long | Self::Double, Value::Bool(_)) | (Self::Boolean, Value::Number(_)) => {
                false
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct Index {
    /// id → (version, source); the source is kept only when the server stores sources.
    pub docs: HashMap<String, (u64, Option<Value>)>,
    mapping: HashMap<String, FieldType>,
    seq_no: u64,
}

/// An item-level error as Elasticsearch shapes it.
#[derive(Debug, Clone)]
pub struct ItemError {
    pub status: u16,
    pub kind: &'static str,
    pub reason: String,
}

impl ItemError {
    pub fn to_json(&self, index: &str) -> Value {
        json!({"type": self.kind, "reason": self.reason, "index_uuid": "test-uuid", "shard": "0", "index": index})
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Index,
    Create,
    Update,
    Delete,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Self::Index => "index",
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub bulk_requests: u64,
    pub items: u64,
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    /// 409 answers to `create` for an id that already exists: a replay that did not duplicate.
    pub conflicts: u64,
    /// `index` writes to an id that already existed: a replay that overwrote.
    pub overwrites: u64,
    pub rejected_items: u64,
    pub failed_items: u64,
    pub rejected_requests: u64,
    pub failed_requests: u64,
    pub parse_errors: u64,
    pub dropped_connections: u64,
    pub in_flight: u64,
    pub max_in_flight: u64,
    pub docs: u64,
}

pub struct Applied {
    pub status: u16,
    pub result: &'static str,
    pub version: u64,
    pub seq_no: u64,
}

pub fn validate_index_name(name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.len() > 255
        || name.starts_with(['-', '_', '+'])
        || name.chars().any(|c| {
            c.is_uppercase()
                || matches!(
                    c,
                    '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':'
                )
        });
    if bad {
        Err(format!("Invalid index name [{name}]"))
    } else {
        Ok(())
    }
}

impl Index {
    fn check_mapping(&mut self, id: &str, source: &Map<String, Value>) -> Result<(), ItemError> {
        for (field, value) in source {
            if let Some(t) = self.mapping.get(field)
                && !t.accepts(value)
            {
                let reason = if *t == FieldType::Object {
                    format!(
                        "object mapping for [{field}] tried to parse field [{field}] as object, but found a concrete value"
                    )
                } else {
                    let preview: String = value.to_string().chars().take(20).collect();
                    format!(
                        "[1:2] failed to parse field [{field}] of type [{}] in document with id '{id}'. Preview of field's value: '{preview}'",
                        t.name()
                    )
                };
                return Err(ItemError {
                    status: 400,
                    kind: "document_parsing_exception",
                    reason,
                });
            }
        }
        for (field, value) in source {
            if let Some(t) = FieldType::of(value) {
                self.mapping.entry(field.clone()).or_insert(t);
            }
        }
        Ok(())
    }

    pub fn apply(
        &mut self,
        op: Op,
        id: &str,
        source: Option<&Value>,
        keep_source: bool,
    ) -> Result<Applied, ItemError> {
        let exists = self.docs.get(id).map(|(v, _)| *v);
        match op {
            Op::Delete => {
                let Some(_) = exists else {
                    self.seq_no += 1;
                    return Ok(Applied {
                        status: 404,
                        result: "not_found",
                        version: 1,
                        seq_no: self.seq_no,
                    });
                };
                let (v, _) = self.docs.remove(id).unwrap_or_default();
                self.seq_no += 1;
                return Ok(Applied {
                    status: 200,
                    result: "deleted",
                    version: v + 1,
                    seq_no: self.seq_no,
                });
            }
            Op::Create if exists.is_some() => {
                return Err(ItemError {
                    status: 409,
                    kind: "version_conflict_engine_exception",
                    reason: format!(
                        "[{id}]: version conflict, document already exists (current version [{}])",
                        exists.unwrap_or(1)
                    ),
                });
            }
            Op::Update if exists.is_none() => {
                return Err(ItemError {
                    status: 404,
                    kind: "document_missing_exception",
                    reason: format!("[{id}]: document missing"),
                });
            }
            _ => {}
        }
        let source = source.ok_or(ItemError {
            status: 400,
            kind: "action_request_validation_exception",
            reason: "source is missing".into(),
        })?;
        let doc = match op {
            Op::Update => source.get("doc").ok_or(ItemError {
                status: 400,
                kind: "action_request_validation_exception",
                reason: "Validation Failed: 1: script or doc is missing;".into(),
            })?,
            _ => source,
        };
        let Value::Object(map) = doc else {
            return Err(ItemError {
                status: 400,
                kind: "document_parsing_exception",
                reason: "[1:1] failed to parse: root of the document must be an object".into(),
            });
        };
        self.check_mapping(id, map)?;
        // Only a server that keeps sources needs a copy of the document.
        let merged = keep_source.then(|| match (op, self.docs.get(id)) {
            (Op::Update, Some((_, Some(Value::Object(old))))) => {
                let mut m = old.clone();
                m.extend(map.clone());
                Value::Object(m)
            }
            _ => doc.clone(),
        });
        let version = exists.map_or(1, |v| v + 1);
        self.docs.insert(id.to_owned(), (version, merged));
        self.seq_no += 1;
        let (status, result) = if exists.is_some() {
            (200, "updated")
        } else {
            (201, "created")
        };
        Ok(Applied {
            status,
            result,
            version,
            seq_no: self.seq_no,
        })
    }
}
