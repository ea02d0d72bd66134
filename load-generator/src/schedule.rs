//! The rate plan: phases of a constant rate, run in order, optionally forever. Pure.

use std::time::Duration;

/// One phase: `rate` records per second for `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    pub duration: Duration,
    pub rate: f64,
}

/// Parses `120s=200,1m=2000`: phases of `DURATION=RATE`, durations in humantime's form.
pub fn parse(text: &str) -> Result<Vec<Phase>, String> {
    let phases = text
        .split(',')
        .map(|item| {
            let (duration, rate) = item
                .trim()
                .split_once('=')
                .ok_or_else(|| format!("phase {item:?} is not DURATION=RATE"))?;
            let duration = humantime::parse_duration(duration.trim())
                .map_err(|e| format!("phase {item:?}: duration: {e}"))?;
            if duration.is_zero() {
                return Err(format!("phase {item:?}: duration must be above zero"));
            }
            let rate = parse_rate(rate.trim()).map_err(|e| format!("phase {item:?}: {e}"))?;
            Ok(Phase { duration, rate })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if phases.is_empty() {
        return Err("the schedule is empty".to_owned());
    }
    Ok(phases)
}

/// A rate in records per second: finite and not negative.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= 0.0 => Ok(rate),
        _ => Err(format!(
            "rate {text:?} is not a number of records per second"
        )),
    }
}

/// The rate `elapsed` into the schedule; `None` once a non-repeating schedule is over.
pub fn rate_at(phases: &[Phase], repeat: bool, elapsed: Duration) -> Option<f64> {
    let total: Duration = phases.iter().map(|p| p.duration).sum();
    if total.is_zero() || (!repeat && elapsed >= total) {
        return None;
    }
    let mut into = Duration::from_nanos((elapsed.as_nanos() % total.as_nanos()) as u64);
    for phase in phases {
        if into < phase.duration {
            return Some(phase.rate);
        }
        into -= phase.duration;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn parses_phases_in_order() {
        let phases = parse("2m=200, 30s=2000").expect("valid");
        assert_eq!(
            phases,
            vec![
                Phase {
                    duration: secs(120),
                    rate: 200.0
                },
                Phase {
                    duration: secs(30),
                    rate: 2000.0
                }
            ]
        );
    }

    #[test]
    fn names_the_phase_at_fault() {
        assert!(
            parse("1m=200,30s")
                .expect_err("refused")
                .contains("\"30s\" is not DURATION=RATE")
        );
        assert!(parse("1m=-5").expect_err("refused").contains("rate \"-5\""));
        assert!(parse("soon=5").expect_err("refused").contains("duration"));
        assert!(parse("0s=5").expect_err("refused").contains("above zero"));
        assert!(parse("1m=NaN").is_err());
    }

    #[test]
    fn walks_the_phases_and_stops_or_repeats() {
        let phases = parse("10s=1,20s=2").expect("valid");
        assert_eq!(rate_at(&phases, false, secs(0)), Some(1.0));
        assert_eq!(rate_at(&phases, false, secs(10)), Some(2.0));
        assert_eq!(rate_at(&phases, false, secs(29)), Some(2.0));
        assert_eq!(rate_at(&phases, false, secs(30)), None);
        assert_eq!(rate_at(&phases, true, secs(30)), Some(1.0));
        assert_eq!(rate_at(&phases, true, secs(75)), Some(2.0));
    }
}
