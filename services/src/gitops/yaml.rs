//! Reads and replaces one number in a YAML file, leaving every other byte as it was: comments, order,
//! quoting, indentation and line endings.
//!
//! A YAML parser (yaml-rust2's event parser, which marks where each event starts) finds the scalar at
//! the key path; exactly that scalar's bytes are replaced; the result is parsed again and must be the
//! original document with that one value changed, or the edit is refused. Key paths are dot-separated
//! mapping keys with list indexes (`spec.containers[0].replicas`). Anything the parser cannot make exact
//! is refused with the reason: a key twice in one mapping, a path through an alias, an anchored value
//! (its aliases would change too), a block scalar, a value in more than one document.

use yaml_rust2::{
    Yaml, YamlLoader,
    parser::{Event, MarkedEventReceiver, Parser},
    scanner::{Marker, TScalarStyle},
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YamlEditError {
    #[error("key path {0:?} is not in the file")]
    KeyMissing(String),
    #[error("key path {0:?} appears more than once in the file")]
    Ambiguous(String),
    #[error("the value at {key:?} is {value:?}, not a whole number")]
    NotANumber { key: String, value: String },
    #[error("the value at {key:?} cannot be edited exactly: {reason}")]
    Refused { key: String, reason: String },
    #[error("key path {key:?} is not of the form a.b[0].c: {reason}")]
    BadKeyPath { key: String, reason: String },
    #[error("the file is not valid YAML: {0}")]
    NotYaml(String),
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

fn parse_path(key: &str) -> Result<Vec<Segment>, YamlEditError> {
    let bad = |reason: &str| YamlEditError::BadKeyPath {
        key: key.to_owned(),
        reason: reason.to_owned(),
    };
    let mut path = Vec::new();
    for part in key.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if name.is_empty() {
            return Err(bad("an empty key"));
        }
        path.push(Segment::Key(name.to_owned()));
        while !rest.is_empty() {
            let close = rest.find(']').ok_or_else(|| bad("an unclosed ["))?;
            let index = rest[1..close]
                .parse()
                .map_err(|_| bad("a list index that is not a whole number"))?;
            path.push(Segment::Index(index));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(bad("text after a list index"));
            }
        }
    }
    Ok(path)
}

/// Where the scalar at the key path sits in the text, and how it is written.
#[derive(Debug)]
struct Located {
    start: usize,
    end: usize,
    value: String,
    style: TScalarStyle,
}

/// The whole number at `key`.
pub fn read_scale(text: &str, key: &str) -> Result<u64, YamlEditError> {
    let found = locate(text, key)?;
    parse_number(&found.value, key)
}

/// `text` with the number at `key` replaced by `scale`, keeping its quotes if it had any.
pub fn set_scale(text: &str, key: &str, scale: u64) -> Result<String, YamlEditError> {
    let found = locate(text, key)?;
    parse_number(&found.value, key)?;
    let replacement = match found.style {
        TScalarStyle::SingleQuoted => format!("'{scale}'"),
        TScalarStyle::DoubleQuoted => format!("\"{scale}\""),
        _ => scale.to_string(),
    };
    let mut out = String::with_capacity(text.len() + 4);
    out.push_str(&text[..found.start]);
    out.push_str(&replacement);
    out.push_str(&text[found.end..]);
    verify(text, &out, key, &found, scale)?;
    Ok(out)
}

fn parse_number(value: &str, key: &str) -> Result<u64, YamlEditError> {
    value.parse().map_err(|_| YamlEditError::NotANumber {
        key: key.to_owned(),
        value: value.to_owned(),
    })
}

/// The edited text, parsed, is the original document with only the value at the key path changed.
fn verify(
    before: &str,
    after: &str,
    key: &str,
    found: &Located,
    scale: u64,
) -> Result<(), YamlEditError> {
    let refused = |reason: String| YamlEditError::Refused {
        key: key.to_owned(),
        reason,
    };
    let path = parse_path(key)?;
    let mut expected =
        YamlLoader::load_from_str(before).map_err(|e| YamlEditError::NotYaml(e.to_string()))?;
    let actual = YamlLoader::load_from_str(after)
        .map_err(|e| refused(format!("the edited file no longer parses: {e}")))?;
    let new_value = match found.style {
        TScalarStyle::Plain => Yaml::Integer(
            i64::try_from(scale).map_err(|_| refused(format!("{scale} is too large")))?,
        ),
        _ => Yaml::String(scale.to_string()),
    };
    let mut replaced = 0;
    for document in &mut expected {
        if let Some(slot) = value_at(document, &path) {
            *slot = new_value.clone();
            replaced += 1;
        }
    }
    if replaced != 1 || expected != actual {
        return Err(refused(
            "the edited file does not parse to the original with only that value changed"
                .to_owned(),
        ));
    }
    Ok(())
}

fn value_at<'y>(node: &'y mut Yaml, path: &[Segment]) -> Option<&'y mut Yaml> {
    let Some((first, rest)) = path.split_first() else {
        return Some(node);
    };
    let child = match (node, first) {
        (Yaml::Hash(map), Segment::Key(name)) => map.get_mut(&Yaml::String(name.clone()))?,
        (Yaml::Array(items), Segment::Index(i)) => items.get_mut(*i)?,
        _ => return None,
    };
    value_at(child, rest)
}

/// Collects the parser's events with where each starts.
#[derive(Default)]
struct Events(Vec<(Event, Marker)>);

impl MarkedEventReceiver for Events {
    fn on_event(&mut self, event: Event, mark: Marker) {
        self.0.push((event, mark));
    }
}

/// A collection being walked: where its children sit on the key path.
enum Frame {
    Mapping {
        /// The path of this mapping's value, if it is on the key path so far (`None` off the path).
        on_path: Option<usize>,
        /// The key just read, waiting for its value.
        key: Option<Option<String>>,
        seen: Vec<String>,
    },
    Sequence {
        on_path: Option<usize>,
        next: usize,
    },
}

fn locate(text: &str, key: &str) -> Result<Located, YamlEditError> {
    let path = parse_path(key)?;
    let refused = |reason: &str| YamlEditError::Refused {
        key: key.to_owned(),
        reason: reason.to_owned(),
    };
    let mut events = Events::default();
    Parser::new_from_str(text)
        .load(&mut events, true)
        .map_err(|e| YamlEditError::NotYaml(e.to_string()))?;

    let mut stack: Vec<Frame> = Vec::new();
    let mut found: Option<Located> = None;
    for (event, mark) in events.0 {
        if matches!(event, Event::MappingEnd | Event::SequenceEnd) {
            stack.pop();
            continue;
        }
        // The depth on the key path this event's node has (Some(n): it is the node at path[..n]).
        let depth = match stack.last_mut() {
            None => Some(0),
            Some(Frame::Mapping {
                on_path,
                key: pending,
                seen,
            }) => match pending.take() {
                // This event is a key.
                None => {
                    let name = match &event {
                        Event::Scalar(name, ..) => Some(name.clone()),
                        _ => None,
                    };
                    if let Some(name) = &name {
                        // A key twice in one mapping: parsers disagree on which one wins.
                        if on_path.is_some() && seen.contains(name) {
                            return Err(YamlEditError::Ambiguous(key.to_owned()));
                        }
                        seen.push(name.clone());
                    }
                    *pending = Some(name);
                    // A key that is a collection: walk it off the path.
                    match event {
                        Event::MappingStart(..) | Event::SequenceStart(..) => None,
                        _ => continue,
                    }
                }
                Some(name) => on_path.and_then(|d| {
                    (d < path.len() && name.as_ref() == key_of(&path[d])).then_some(d + 1)
                }),
            },
            Some(Frame::Sequence { on_path, next }) => {
                let index = *next;
                *next += 1;
                on_path.and_then(|d| {
                    (d < path.len() && path[d] == Segment::Index(index)).then_some(d + 1)
                })
            }
        };
        let on_key_path = depth.is_some_and(|d| d <= path.len());
        if depth == Some(path.len()) {
            let what = match &event {
                Event::MappingStart(..) => Some("a mapping"),
                Event::SequenceStart(..) => Some("a list"),
                Event::Alias(_) => Some("an alias"),
                _ => None,
            };
            if let Some(what) = what {
                return Err(YamlEditError::NotANumber {
                    key: key.to_owned(),
                    value: what.to_owned(),
                });
            }
        }
        match event {
            Event::MappingStart(anchor, _) => {
                if on_key_path && anchor > 0 && depth.is_some_and(|d| d > 0) {
                    return Err(refused(
                        "the path runs through an anchored mapping; its aliases would change too",
                    ));
                }
                stack.push(Frame::Mapping {
                    on_path: depth.filter(|d| *d < path.len()),
                    key: None,
                    seen: Vec::new(),
                });
            }
            Event::SequenceStart(anchor, _) => {
                if on_key_path && anchor > 0 && depth.is_some_and(|d| d > 0) {
                    return Err(refused(
                        "the path runs through an anchored list; its aliases would change too",
                    ));
                }
                stack.push(Frame::Sequence {
                    on_path: depth.filter(|d| *d < path.len()),
                    next: 0,
                });
            }
            Event::Alias(_) if depth.is_some_and(|d| d > 0) => {
                return Err(refused("the path runs through an alias"));
            }
            Event::Scalar(value, style, anchor, tag) if depth == Some(path.len()) => {
                if anchor > 0 {
                    return Err(refused(
                        "the value is anchored; its aliases would change too",
                    ));
                }
                if tag.is_some() {
                    return Err(refused("the value carries a tag"));
                }
                if matches!(style, TScalarStyle::Literal | TScalarStyle::Folded) {
                    return Err(YamlEditError::NotANumber {
                        key: key.to_owned(),
                        value: value.clone(),
                    });
                }
                let located = span(text, mark, value, style)
                    .ok_or_else(|| refused("the value is not written as the parser reads it"))?;
                if found.replace(located).is_some() {
                    return Err(YamlEditError::Ambiguous(key.to_owned()));
                }
            }
            Event::DocumentStart => stack.clear(),
            _ => {}
        }
    }
    found.ok_or_else(|| YamlEditError::KeyMissing(key.to_owned()))
}

fn key_of(segment: &Segment) -> Option<&String> {
    match segment {
        Segment::Key(name) => Some(name),
        Segment::Index(_) => None,
    }
}

/// The bytes of a one-line scalar starting at `mark`, checked against what the parser read.
fn span(text: &str, mark: Marker, value: String, style: TScalarStyle) -> Option<Located> {
    // The marker counts characters; the text is indexed by bytes.
    let start = text
        .char_indices()
        .map(|(at, _)| at)
        .chain(std::iter::once(text.len()))
        .nth(mark.index())?;
    let written = match style {
        TScalarStyle::Plain => value.clone(),
        TScalarStyle::SingleQuoted => format!("'{value}'"),
        TScalarStyle::DoubleQuoted => format!("\"{value}\""),
        _ => return None,
    };
    let end = start + written.len();
    (text.get(start..end)? == written).then_some(Located {
        start,
        end,
        value,
        style,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: &str = "\
# Scale of the logs pipeline. Changed by the autoscaler; review in the PR.
engine:
  image: registry.example.com/engine:1.4.2   # pinned
  replicas: 3 # workers
  resources:
    limits: {cpu: \"2\", memory: 1Gi}
  'quoted key': \"7\"
other:
  replicas: 9
";

    #[test]
    fn changes_only_the_value_at_the_key_path() {
        let changed = set_scale(VALUES, "engine.replicas", 12).expect("edited");
        assert_eq!(
            changed,
            VALUES.replace("replicas: 3 # workers", "replicas: 12 # workers")
        );
        assert_eq!(read_scale(&changed, "engine.replicas"), Ok(12));
        assert_eq!(read_scale(&changed, "other.replicas"), Ok(9));
    }

    #[test]
    fn a_yaml_parser_sees_the_same_document_but_for_the_one_value() {
        let before: serde_yaml::Value = serde_yaml::from_str(VALUES).expect("parses");
        let changed = set_scale(VALUES, "engine.replicas", 12).expect("edited");
        let mut after: serde_yaml::Value = serde_yaml::from_str(&changed).expect("still parses");
        assert_eq!(after["engine"]["replicas"], serde_yaml::Value::from(12));
        after["engine"]["replicas"] = serde_yaml::Value::from(3);
        assert_eq!(after, before);
    }

    #[test]
    fn keeps_quotes_and_reads_quoted_keys() {
        assert_eq!(read_scale(VALUES, "engine.quoted key"), Ok(7));
        let changed = set_scale(VALUES, "engine.quoted key", 8).expect("edited");
        assert!(changed.contains("'quoted key': \"8\"\n"), "{changed}");
    }

    #[test]
    fn keeps_crlf_line_endings() {
        let crlf = "engine:\r\n  replicas: 3\r\n";
        assert_eq!(
            set_scale(crlf, "engine.replicas", 4),
            Ok("engine:\r\n  replicas: 4\r\n".to_owned())
        );
    }

    #[test]
    fn refuses_a_missing_key_or_a_value_that_is_not_a_number() {
        assert_eq!(
            set_scale(VALUES, "engine.parallelism", 2),
            Err(YamlEditError::KeyMissing("engine.parallelism".to_owned()))
        );
        assert!(matches!(
            set_scale(VALUES, "engine.image", 2),
            Err(YamlEditError::NotANumber { .. })
        ));
        assert!(matches!(
            set_scale(VALUES, "engine.resources", 2),
            Err(YamlEditError::NotANumber { .. })
        ));
        assert_eq!(
            read_scale("a:\n  b: 1\na:\n  b: 2\n", "a.b"),
            Err(YamlEditError::Ambiguous("a.b".to_owned()))
        );
    }

    #[test]
    fn a_list_item_is_reached_only_by_its_index() {
        let text = "\
pipelines:
  - name: app   # the first
    replicas: 2
  - name: other
    replicas: 5
";
        // The old line walker matched `pipelines.replicas` through the list item and edited it.
        assert_eq!(
            read_scale(text, "pipelines.replicas"),
            Err(YamlEditError::KeyMissing("pipelines.replicas".to_owned()))
        );
        assert_eq!(read_scale(text, "pipelines[1].replicas"), Ok(5));
        assert_eq!(
            set_scale(text, "pipelines[0].replicas", 3),
            Ok(text.replace("replicas: 2", "replicas: 3"))
        );
    }

    #[test]
    fn text_inside_a_block_scalar_is_not_a_key() {
        let text = "\
notes: |
  engine:
    replicas: 4
engine:
  replicas: 2
";
        assert_eq!(
            set_scale(text, "engine.replicas", 6),
            Ok(text.replace("  replicas: 2", "  replicas: 6"))
        );
        let only_in_text = "notes: |\n  engine:\n    replicas: 4\n";
        assert_eq!(
            read_scale(only_in_text, "engine.replicas"),
            Err(YamlEditError::KeyMissing("engine.replicas".to_owned()))
        );
    }

    #[test]
    fn flow_mappings_are_edited_exactly_and_anchors_and_aliases_are_refused() {
        let flow = "engine: {image: x, replicas: 3}   # flow\n";
        assert_eq!(
            set_scale(flow, "engine.replicas", 4),
            Ok("engine: {image: x, replicas: 4}   # flow\n".to_owned())
        );
        let anchored = "base: &scale 3\nengine:\n  replicas: *scale\n";
        assert!(matches!(
            set_scale(anchored, "base", 4),
            Err(YamlEditError::Refused { .. })
        ));
        assert!(matches!(
            set_scale(anchored, "engine.replicas", 4),
            Err(YamlEditError::NotANumber { .. })
        ));
        let twice = "engine:\n  replicas: 1\n  replicas: 2\n";
        assert_eq!(
            set_scale(twice, "engine.replicas", 4),
            Err(YamlEditError::Ambiguous("engine.replicas".to_owned()))
        );
        assert!(matches!(
            read_scale(flow, "engine[0"),
            Err(YamlEditError::BadKeyPath { .. })
        ));
    }

    #[test]
    fn a_value_in_two_documents_is_ambiguous() {
        let text = "engine:\n  replicas: 1\n---\nengine:\n  replicas: 2\n";
        assert_eq!(
            set_scale(text, "engine.replicas", 4),
            Err(YamlEditError::Ambiguous("engine.replicas".to_owned()))
        );
    }

    #[test]
    fn a_key_nested_elsewhere_does_not_match() {
        let text = "other:\n  engine:\n    replicas: 5\n";
        assert_eq!(
            read_scale(text, "engine.replicas"),
            Err(YamlEditError::KeyMissing("engine.replicas".to_owned()))
        );
        assert_eq!(read_scale(text, "other.engine.replicas"), Ok(5));
    }
}
