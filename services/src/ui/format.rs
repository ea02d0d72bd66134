//! Numbers and times the way the pages show them.

use chrono::{DateTime, Utc};
use maud::{Markup, html};

use crate::storage::DecisionStatus;

/// `45s ago`, `12m ago`, `3h ago`, `2d ago`.
pub fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds().max(0);
    let short = match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86_400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    };
    format!("{short} ago")
}

/// A duration in seconds as `1h 02m`, `4m 05s` or `12.3s`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "-".to_owned();
    }
    let whole = seconds.round() as i64;
    match whole {
        ..60 => format!("{seconds:.1}s"),
        60..3600 => format!("{}m {:02}s", whole / 60, whole % 60),
        _ => format!("{}h {:02}m", whole / 3600, (whole % 3600) / 60),
    }
}

/// A count or rate with a unit prefix: `950`, `12.4k`, `3.1M`.
pub fn quantity(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if magnitude >= 1e4 {
        format!("{:.1}k", value / 1e3)
    } else if magnitude >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// An optional reading; a dash when the metric was missing.
pub fn reading(value: Option<f64>, show: impl Fn(f64) -> String) -> String {
    value.map_or_else(|| "-".to_owned(), show)
}

pub fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub fn status(status: DecisionStatus) -> Markup {
    html! { span class=(format!("status {}", status.as_str())) { (status.as_str()) } }
}

/// " ×N" after the status of a decision that stands for N identical skips; nothing for one.
pub fn repeats(repeats: i32) -> Markup {
    html! { @if repeats > 1 { " " span.muted.repeats { "×" (repeats) } } }
}

pub fn scale_change(from: Option<i32>, to: Option<i32>) -> String {
    let show = |v: Option<i32>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
    match (from, to) {
        (None, None) => "-".to_owned(),
        _ => format!("{} → {}", show(from), show(to)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_numbers_and_durations() {
        assert_eq!(quantity(950.0), "950");
        assert_eq!(quantity(12_400.0), "12.4k");
        assert_eq!(quantity(3_100_000.0), "3.1M");
        assert_eq!(quantity(2.5), "2.5");
        assert_eq!(duration(12.34), "12.3s");
        assert_eq!(duration(245.0), "4m 05s");
        assert_eq!(duration(3720.0), "1h 02m");
        assert_eq!(reading(None, quantity), "-");
    }
}
