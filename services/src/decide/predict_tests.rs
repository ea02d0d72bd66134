//! The predictive rule, its sizing and its veto, over a synthetic cluster: 2000 records/s all day but for
//! a daily peak of 8000 from 12:10 to 13:00 UTC, one worker moving 1000 records/s, running at scale 4.

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::{
    estimate::{
        seasonal::{BUCKET_SECONDS, RatePoint},
        tests::{now, policy},
    },
    rules::Outcome,
};

fn usual(at: DateTime<Utc>) -> f64 {
    let minutes = (at.timestamp().rem_euclid(86_400) / 60) as u32;
    if (12 * 60 + 10..13 * 60).contains(&minutes) {
        8000.0
    } else {
        2000.0
    }
}

/// The finished buckets of `days` days before `now()`.
fn seasonal(days: i64) -> Vec<RatePoint> {
    let width = i64::from(BUCKET_SECONDS);
    let count = days * 86_400 / width;
    (1..=count)
        .rev()
        .map(|i| {
            let at = now() - Duration::seconds(i * width);
            RatePoint {
                at,
                rate: usual(at),
            }
        })
        .collect()
}

/// An hour at 2000 records/s on 4 workers at half load, a sample every 30 s.
fn history() -> Vec<Sample> {
    (0..=120)
        .rev()
        .map(|i| Sample {
            sampled_at: now() - Duration::seconds(30 * i),
            cpu_load: Some(0.5),
            lag_records: Some(100.0),
            lag_seconds: Some(1.0),
            records_in: Some(2000.0),
            records_out: Some(2000.0),
            scale: Some(4.0),
        })
        .collect()
}

fn predictive(lead_time_seconds: u32) -> crate::cluster::Policy {
    policy(serde_json::json!({
        "predictive": {"enabled": true, "lead_time_seconds": lead_time_seconds}
    }))
}

fn evaluated(policy: &crate::cluster::Policy, seasonal: Option<Vec<RatePoint>>) -> Evaluation {
    let cluster = Cluster {
        policy,
        scrape_interval_seconds: 30,
    };
    let facts = Facts {
        seasonal,
        ..Facts::default()
    };
    evaluate(&cluster, &history(), &facts, now())
}

fn forecast_verdict(evaluation: &Evaluation) -> &crate::rules::Verdict {
    evaluation
        .verdicts
        .iter()
        .find(|v| v.rule == "forecast_peak")
        .expect("the predictive rule's verdict")
}

#[test]
fn the_rule_scales_up_ahead_of_a_forecast_peak_and_sizes_for_it() {
    let evaluation = evaluated(&predictive(1800), Some(seasonal(2)));
    let verdict = forecast_verdict(&evaluation);
    assert_eq!(verdict.outcome, Outcome::Fired, "{verdict:?}");
    assert_eq!(evaluation.direction(), Some(Direction::Up));
    // 8000 records/s below the CPU ceiling's 85.5 %: 11 workers, where the reactive estimate says 3.
    let prediction = evaluation.prediction.as_ref().expect("a prediction");
    assert_eq!(prediction.lead.rate, 8000.0);
    assert_eq!(prediction.lead.scale, 11);
    assert_eq!(prediction.current_scale, 4);
    assert!(
        verdict.reason.contains("forecast 8000 records/s at 12:"),
        "{verdict:?}"
    );
    assert_eq!(evaluation.target_scale, Some(11));
    let forecast = evaluation
        .checks
        .iter()
        .find(|c| c.check == "forecast")
        .expect("the forecast check");
    assert!(
        forecast.detail.starts_with("raised from 3 to 11"),
        "{forecast:?}"
    );
}

#[test]
fn a_peak_beyond_the_lead_time_is_not_acted_on_yet() {
    // The rise starts at 12:10: a 5-minute lead sees 2000 records/s at most.
    let evaluation = evaluated(&predictive(300), Some(seasonal(2)));
    let verdict = forecast_verdict(&evaluation);
    assert_eq!(verdict.outcome, Outcome::Quiet, "{verdict:?}");
    assert_ne!(evaluation.direction(), Some(Direction::Up));
}

#[test]
fn without_enough_history_or_with_the_rule_off_nothing_is_predicted() {
    let evaluation = evaluated(&predictive(1800), Some(seasonal(1)));
    let verdict = forecast_verdict(&evaluation);
    assert_eq!(verdict.outcome, Outcome::NoData);
    assert!(verdict.reason.contains("not enough history"), "{verdict:?}");
    assert_eq!(evaluation.prediction, None);

    let off = evaluated(&policy(serde_json::json!({})), Some(seasonal(2)));
    assert!(off.verdicts.iter().all(|v| v.rule != "forecast_peak"));
    assert_eq!(off.prediction, None);
}

#[test]
fn a_scale_down_the_forecast_would_undo_within_the_cooldown_is_refused() {
    let facts = Facts {
        seasonal: Some(seasonal(2)),
        ..Facts::default()
    };
    // The cooldown (900 s) reaches 12:15, into the peak.
    let planned = plan(&predictive(300), Direction::Down, &history(), &facts, now());
    let CheckOutcome::Veto { reason } = &planned.outcome else {
        panic!("expected the forecast's veto, got {planned:?}");
    };
    assert!(
        reason.starts_with("scale-down refused: the forecast peaks at 8000 records/s")
            && reason.contains("needs scale 11")
            && reason.contains("current scale (4)"),
        "{reason}"
    );
    assert_eq!(planned.prediction.map(|p| p.cooldown.scale), Some(11));

    // With a 5-minute cooldown the peak is out of reach, and the scale-down goes ahead.
    let short = policy(serde_json::json!({
        "cooldown_seconds": 300,
        "predictive": {"enabled": true, "lead_time_seconds": 300}
    }));
    let planned = plan(&short, Direction::Down, &history(), &facts, now());
    assert!(
        matches!(planned.outcome, CheckOutcome::Apply { to: 3, .. }),
        "{planned:?}"
    );
}

#[test]
fn a_prediction_is_checked_against_the_rate_observed_around_its_time() {
    let peak = Peak {
        within_seconds: 900,
        at: now() - Duration::minutes(30),
        rate: 2200.0,
        scale: 4,
    };
    // 2000 observed against 2200 predicted: 9 % off, held.
    let check = check_prediction(&peak, &history(), now());
    assert_eq!(check.observed_rate, Some(2000.0));
    assert_eq!(check.held, Some(true));
    let missed = check_prediction(
        &Peak {
            rate: 8000.0,
            ..peak
        },
        &history(),
        now(),
    );
    assert_eq!(missed.held, Some(false));
    assert!((missed.error_share.expect("an error") + 0.75).abs() < 1e-9);
    // Before the history: nothing observed, no verdict.
    let unseen = check_prediction(
        &Peak {
            at: now() - Duration::hours(3),
            ..peak
        },
        &history(),
        now(),
    );
    assert_eq!((unseen.observed_rate, unseen.held), (None, None));
}

#[test]
fn the_decision_records_the_prediction_and_when_to_check_it() {
    let p = predictive(1800);
    let evaluation = evaluated(&p, Some(seasonal(2)));
    let inputs = DecisionInputs::new(&p, &evaluation, &history(), None).expect("fired");
    let prediction = inputs.prediction.as_ref().expect("recorded");
    assert_eq!(
        inputs.prediction_due(),
        Some(prediction.carry.at + Duration::minutes(5))
    );
    // Typed both ways, and a decision from before the predictive rule still reads.
    let json = serde_json::to_value(&inputs).expect("json");
    let back: DecisionInputs = serde_json::from_value(json).expect("typed");
    assert_eq!(back, inputs);
    let old = DecisionInputs::bare(Direction::Up, "lag", now(), 300);
    assert_eq!(old.prediction_due(), None);
}
