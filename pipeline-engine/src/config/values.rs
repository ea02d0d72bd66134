//! Value types of the configuration, parsed by serde: durations in humantime form, http(s) URLs,
//! lists that may be written as `a,b`, and librdkafka properties.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `Duration` as humantime text: `500ms`, `5s`, `1m 30s`.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(t) => humantime::parse_duration(t.trim()).map_err(|e| {
                D::Error::custom(format!(
                    "`{t}` is not a duration such as `500ms`, `5s` or `1m` ({e})"
                ))
            }),
            // A bare number has no unit; refuse rather than guess.
            Raw::Number(n) => Err(D::Error::custom(format!(
                "`{n}` has no unit; write a duration such as `{n}ms` or `{n}s`"
            ))),
        }
    }
}

/// An `http://` or `https://` URL, kept as written (without a trailing `/`) and readable as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(String);

impl HttpUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for HttpUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let parsed = url::Url::parse(s).map_err(|e| format!("`{s}` is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!("`{s}` is not an http(s) URL"));
        }
        Ok(Self(s.trim_end_matches('/').to_owned()))
    }
}

impl std::ops::Deref for HttpUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for HttpUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Accepts `a,b` as well as a list, so list keys are easy to set from the environment.
pub fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let items: Vec<String> = match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        OneOrMany::Many(v) => v,
    };
    items
        .iter()
        .map(|s| s.parse().map_err(serde::de::Error::custom))
        .collect()
}

/// librdkafka takes every property as a string; accept `fetch.wait.max.ms: 10` as well as `'10'`.
/// A property set from the environment (`ENGINE__KAFKA__PROPERTIES__FETCH.WAIT.MAX.MS`) arrives
/// nested at its dots; it is flattened back into its dotted name.
pub fn scalar_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    use serde::de::Error;
    fn flatten(
        prefix: &str,
        v: serde_yaml::Value,
        out: &mut BTreeMap<String, String>,
    ) -> Result<(), String> {
        let s = match v {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::Bool(b) => b.to_string(),
            serde_yaml::Value::Mapping(m) => {
                for (k, v) in m {
                    let k = match k {
                        serde_yaml::Value::String(s) => s,
                        other => format!("{other:?}"),
                    };
                    flatten(&format!("{prefix}.{k}"), v, out)?;
                }
                return Ok(());
            }
            other => return Err(format!("`{prefix}` must be a scalar, got {other:?}")),
        };
        out.insert(prefix.to_owned(), s);
        Ok(())
    }
    let raw = BTreeMap::<String, serde_yaml::Value>::deserialize(d)?;
    let mut out = BTreeMap::new();
    for (k, v) in raw {
        flatten(&k, v, &mut out).map_err(D::Error::custom)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_and_lose_a_trailing_slash() {
        assert_eq!(
            "http://es:9200/".parse::<HttpUrl>().map(|u| u.to_string()),
            Ok("http://es:9200".to_owned())
        );
        assert!("ftp://es".parse::<HttpUrl>().is_err());
        assert!("es:9200".parse::<HttpUrl>().is_err());
    }
}
