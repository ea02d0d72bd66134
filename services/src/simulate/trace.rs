//! Load traces: the input rate over time, as `seconds,records_per_second` rows, linearly interpolated
//! between rows. Two rows at the same second make a step.
//!
//! Lines starting with `#` are comments, except `# model: key=value ...`, which sets the job model for
//! this trace (a sink cap, a backlog at the start; flags on the command line win over it), and
//! `# goal: replica-hours=PERCENT`, the most ours may spend over the oracle on this trace. An optional
//! header `seconds,records_per_second` may come first.

use std::path::Path;

/// A relative change of the input rate at least this large, within `STEP_SECONDS`, is a load step.
const STEP_SHARE: f64 = 0.25;
const STEP_SECONDS: f64 = 60.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// (seconds, records per second), seconds non-decreasing, starting at 0.
    rows: Vec<(f64, f64)>,
    /// `key=value` settings from `# model:` lines, in file order, with the line they came from.
    pub model: Vec<ModelSetting>,
    /// `key=value` settings from `# goal:` lines, likewise.
    pub goals: Vec<ModelSetting>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelSetting {
    pub key: String,
    pub value: f64,
    pub line: usize,
}

/// A sudden change of the input rate, at which the steps-to-settle count starts.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LoadStep {
    pub at_seconds: f64,
    pub from: f64,
    pub to: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("cannot read the trace {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("line {line}, column {column}: {problem}")]
    Malformed {
        line: usize,
        column: usize,
        problem: String,
    },
    #[error("the trace has no rows: expected `seconds,records_per_second` lines")]
    Empty,
    #[error("the trace must last longer than 0 seconds (its last row is at 0)")]
    NoDuration,
}

/// The `# goal:` keys a trace may set: the replica-hours ours may spend over the oracle's, in percent.
pub const GOAL_KEYS: [&str; 1] = ["replica-hours"];

/// The `# model:` keys a trace may set, the same names as the command-line flags.
pub const MODEL_KEYS: [&str; 6] = [
    "capacity-per-worker",
    "scaling-exponent",
    "partitions",
    "sink-cap",
    "initial-lag",
    "initial-scale",
];

impl Trace {
    pub fn read(path: &Path) -> Result<Self, TraceError> {
        let text = std::fs::read_to_string(path).map_err(|source| TraceError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// The value of the last `# model:` setting of `key`, if any.
    pub fn model_setting(&self, key: &str) -> Option<f64> {
        last_value(&self.model, key)
    }

    /// The value of the last `# goal:` setting of `key`, if any.
    pub fn goal(&self, key: &str) -> Option<f64> {
        last_value(&self.goals, key)
    }

    pub fn parse(text: &str) -> Result<Self, TraceError> {
        let mut rows: Vec<(f64, f64)> = Vec::new();
        let (mut model, mut goals) = (Vec::new(), Vec::new());
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            if let Some(comment) = trimmed.strip_prefix('#') {
                let comment = comment.trim_start();
                if let Some(settings) = comment.strip_prefix("model:") {
                    let offset = raw.len() - settings.len();
                    model.extend(parse_settings(
                        settings,
                        line,
                        offset,
                        "model",
                        &MODEL_KEYS,
                    )?);
                } else if let Some(settings) = comment.strip_prefix("goal:") {
                    let offset = raw.len() - settings.len();
                    goals.extend(parse_settings(settings, line, offset, "goal", &GOAL_KEYS)?);
                }
                continue;
            }
            if rows.is_empty() && trimmed.replace(' ', "") == "seconds,records_per_second" {
                continue;
            }
            let row = parse_row(raw, line)?;
            if let Some(&(previous, _)) = rows.last() {
                if row.0 < previous {
                    return Err(malformed(
                        line,
                        1,
                        format!("seconds go backwards: {} after {previous}", row.0),
                    ));
                }
            } else if row.0 != 0.0 {
                return Err(malformed(
                    line,
                    1,
                    format!("the first row must be at 0 seconds, not {}", row.0),
                ));
            }
            rows.push(row);
        }
        match rows.last() {
            None => Err(TraceError::Empty),
            Some((end, _)) if *end <= 0.0 => Err(TraceError::NoDuration),
            Some(_) => Ok(Self { rows, model, goals }),
        }
    }

    /// A trace from `(seconds, records_per_second)` rows built in code (a replayed history), held to the
    /// rules a file is: starting at 0, seconds non-decreasing, rates finite and not negative.
    pub fn from_rows(rows: Vec<(f64, f64)>) -> Result<Self, TraceError> {
        for (index, pair) in rows.windows(2).enumerate() {
            if pair[1].0 < pair[0].0 {
                return Err(malformed(
                    index + 2,
                    1,
                    format!("seconds go backwards: {} after {}", pair[1].0, pair[0].0),
                ));
            }
        }
        if let Some((index, (_, rate))) = rows
            .iter()
            .enumerate()
            .find(|(_, (t, r))| !(t.is_finite() && r.is_finite() && *r >= 0.0))
        {
            return Err(malformed(
                index + 1,
                2,
                format!("records_per_second must be a finite number of 0 or more, not {rate}"),
            ));
        }
        match (rows.first(), rows.last()) {
            (None, _) | (_, None) => Err(TraceError::Empty),
            (Some((first, _)), _) if *first != 0.0 => Err(malformed(
                1,
                1,
                format!("the first row must be at 0 seconds, not {first}"),
            )),
            (_, Some((end, _))) if *end <= 0.0 => Err(TraceError::NoDuration),
            _ => Ok(Self {
                rows,
                model: Vec::new(),
                goals: Vec::new(),
            }),
        }
    }

    /// How long the trace lasts, in seconds.
    pub fn duration(&self) -> f64 {
        self.rows.last().map_or(0.0, |(t, _)| *t)
    }

    /// The input rate at `seconds`, interpolated; at a step, the rate after it.
    pub fn rate_at(&self, seconds: f64) -> f64 {
        let after = self.rows.partition_point(|(t, _)| *t <= seconds);
        match (
            after.checked_sub(1).map(|i| self.rows[i]),
            self.rows.get(after),
        ) {
            (Some((_, rate)), None) => rate,
            (None, Some((_, rate))) => *rate,
            (Some((t0, r0)), Some((t1, r1))) => r0 + (r1 - r0) * (seconds - t0) / (t1 - t0),
            (None, None) => 0.0,
        }
    }

    /// The sudden changes of load: the rate moving by a quarter or more within a minute. Changes less
    /// than a minute apart count as one.
    pub fn steps(&self) -> Vec<LoadStep> {
        let mut steps: Vec<LoadStep> = Vec::new();
        for pair in self.rows.windows(2) {
            let ((t0, r0), (t1, r1)) = (pair[0], pair[1]);
            let sudden = t1 - t0 <= STEP_SECONDS && (r1 - r0).abs() >= STEP_SHARE * r0.max(1.0);
            if !sudden {
                continue;
            }
            match steps.last_mut() {
                Some(last) if t0 - last.at_seconds <= STEP_SECONDS => last.to = r1,
                _ => steps.push(LoadStep {
                    at_seconds: t0,
                    from: r0,
                    to: r1,
                }),
            }
        }
        steps
    }
}

fn malformed(line: usize, column: usize, problem: String) -> TraceError {
    TraceError::Malformed {
        line,
        column,
        problem,
    }
}

/// One `seconds,records_per_second` row; errors name the 1-based column where the bad field starts.
fn parse_row(raw: &str, line: usize) -> Result<(f64, f64), TraceError> {
    let fields: Vec<(usize, &str)> = raw
        .split(',')
        .scan(0, |start, field| {
            let column = *start + 1 + (field.len() - field.trim_start().len());
            *start += field.len() + 1;
            Some((column, field.trim()))
        })
        .collect();
    if fields.len() != 2 {
        return Err(malformed(
            line,
            1,
            format!(
                "expected 2 fields `seconds,records_per_second`, found {}",
                fields.len()
            ),
        ));
    }
    let number = |(column, text): (usize, &str), name: &str| -> Result<f64, TraceError> {
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
            Ok(value) => Err(malformed(
                line,
                column,
                format!("{name} must be a finite number of 0 or more, not {value}"),
            )),
            Err(_) => Err(malformed(
                line,
                column,
                format!("{name} is not a number: {text:?}"),
            )),
        }
    };
    Ok((
        number(fields[0], "seconds")?,
        number(fields[1], "records_per_second")?,
    ))
}

/// A later line wins over an earlier one.
fn last_value(settings: &[ModelSetting], key: &str) -> Option<f64> {
    settings
        .iter()
        .rev()
        .find(|s| s.key == key)
        .map(|s| s.value)
}

/// The `key=value` words of a `# model:` or `# goal:` line (`what`), each key one of `known`.
fn parse_settings(
    settings: &str,
    line: usize,
    offset: usize,
    what: &str,
    known: &[&str],
) -> Result<Vec<ModelSetting>, TraceError> {
    let mut parsed = Vec::new();
    let mut position = 0;
    for word in settings.split(' ') {
        let column = offset + position + 1;
        position += word.len() + 1;
        if word.is_empty() {
            continue;
        }
        let Some((key, value)) = word.split_once('=') else {
            return Err(malformed(
                line,
                column,
                format!("expected key=value in the {what} line, found {word:?}"),
            ));
        };
        if !known.contains(&key) {
            return Err(malformed(
                line,
                column,
                format!("unknown {what} key {key:?}; known: {}", known.join(", ")),
            ));
        }
        let value = value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| {
                malformed(
                    line,
                    column + key.len() + 1,
                    format!("{key} must be a number of 0 or more, not {value:?}"),
                )
            })?;
        parsed.push(ModelSetting {
            key: key.to_owned(),
            value,
            line,
        });
    }
    Ok(parsed)
}
