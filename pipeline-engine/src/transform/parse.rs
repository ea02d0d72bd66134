//! Zero-copy JSON for the hot path: a record's top-level fields are parsed into names and raw value
//! text borrowed from the payload, so a document is re-emitted by copying slices instead of building
//! and re-serializing a tree. Values are validated by the parser but never materialized, except the
//! few the transform needs (event time, routing fields).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Above this many fields, duplicate names are found with a hash map instead of a linear scan.
const LINEAR_SCAN_FIELDS: usize = 32;

/// The top-level fields of a JSON object, in order of first appearance; a repeated name keeps its
/// first position and its last value (as a JSON object map would).
#[derive(Debug, Default)]
pub struct Fields<'a> {
    pub pairs: Vec<(Cow<'a, str>, &'a str)>,
}

impl<'a> Fields<'a> {
    /// Parses a JSON object, validating all of it. `Err` carries serde_json's message.
    pub fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs
            .iter()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| *v)
    }
}

impl<'de> de::Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pairs: Vec<(Cow<'de, str>, &'de str)> = Vec::with_capacity(16);
        let mut index: Option<HashMap<Cow<'de, str>, usize>> = None;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value: &'de RawValue = map.next_value()?;
            let value = value.get();
            let existing = match &mut index {
                Some(ix) => ix.get(&key).copied(),
                None => pairs.iter().position(|(k, _)| *k == key),
            };
            match existing {
                Some(i) => pairs[i].1 = value,
                None => {
                    if let Some(ix) = &mut index {
                        ix.insert(key.clone(), pairs.len());
                    }
                    pairs.push((key, value));
                    if index.is_none() && pairs.len() > LINEAR_SCAN_FIELDS {
                        index = Some(
                            pairs
                                .iter()
                                .enumerate()
                                .map(|(i, (k, _))| (k.clone(), i))
                                .collect(),
                        );
                    }
                }
            }
        }
        Ok(Fields { pairs })
    }
}

/// Borrows a key from the input when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// The string a raw JSON string value holds (unescaped), or `None` if the value is not a string.
pub fn raw_str(raw: &str) -> Option<Cow<'_, str>> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// Appends `s` as a JSON string literal (quoted, escaped).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_str_content(out, s);
    out.push(b'"');
}

/// Appends the escaped content of a JSON string literal, without quotes.
pub fn write_str_content(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends an object key (escaped; keys borrowed from valid input come out unchanged).
pub fn write_key(out: &mut Vec<u8>, key: &str) {
    write_str(out, key);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_order_and_raw_values() {
        let f = Fields::parse(r#" {"a": 1, "b" : {"x":[1, 2]}, "c":"s\"q", "a":true} "#)
            .expect("valid");
        let got: Vec<(&str, &str)> = f.pairs.iter().map(|(k, v)| (k.as_ref(), *v)).collect();
        assert_eq!(
            got,
            vec![("a", "true"), ("b", r#"{"x":[1, 2]}"#), ("c", r#""s\"q""#)]
        );
    }

    #[test]
    fn escaped_keys_are_unescaped_and_written_back_escaped() {
        let f = Fields::parse(r#"{"a\"b\u0041":1}"#).expect("valid");
        assert_eq!(f.pairs[0].0, "a\"bA");
        let mut out = Vec::new();
        write_key(&mut out, &f.pairs[0].0);
        assert_eq!(out, br#""a\"bA""#);
    }

    #[test]
    fn invalid_json_anywhere_is_an_error() {
        for bad in [
            r#"{"a":}"#,
            r#"{"a":[1,}"#,
            r#"{"a":1} x"#,
            r#"{"a":"\q"}"#,
            "[1]",
            "{",
        ] {
            assert!(Fields::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn many_fields_with_duplicates_keep_the_last_value() {
        let mut text = String::from("{");
        for i in 0..100 {
            text.push_str(&format!("\"f{}\":{i},", i % 50));
        }
        text.push_str("\"z\":0}");
        let f = Fields::parse(&text).expect("valid");
        assert_eq!(f.pairs.len(), 51);
        assert_eq!(f.get("f7"), Some("57"));
    }

    #[test]
    fn strings_are_escaped_like_serde_json() {
        for s in [
            "plain",
            "q\"b\\s",
            "nl\n\r\t",
            "ctl\u{1}\u{1f}",
            "ünïcode ✓",
        ] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            let back: String = serde_json::from_slice(&out).expect("valid JSON string");
            assert_eq!(back, s);
        }
        assert_eq!(raw_str(r#""a\nb""#).as_deref(), Some("a\nb"));
        assert_eq!(raw_str(r#""ab""#).as_deref(), Some("ab"));
        assert_eq!(raw_str("12"), None);
    }
}
