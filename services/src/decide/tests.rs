use chrono::{Duration, Utc};

use super::*;
use crate::{
    cluster::Policy,
    estimate::{
        EstimateError, last_scale_up,
        tests::{fresh, now, policy, saturated_history, scale_up_history},
    },
};

/// The worker's step with no facts beyond the previous change.
fn plan(
    history: &[Sample],
    policy: &Policy,
    direction: Direction,
    previous: Option<PreviousChange>,
    now: chrono::DateTime<Utc>,
) -> Plan {
    let facts = Facts {
        last_written: previous.map(|p| Written {
            at: p.at,
            direction: Some(p.direction),
        }),
        ..Facts::default()
    };
    super::plan(policy, direction, history, &facts, now)
}

#[test]
fn the_check_clamps_limits_steps_and_vetoes() {
    let p = policy(serde_json::json!({"min_scale": 2, "max_scale": 10, "partition_count": 8}));
    let apply = |direction, current, estimated, lag| {
        let job = JobNow {
            scale: current,
            lag_seconds: lag,
            knee: None,
        };
        post_check(&p, direction, job, estimated, None, now())
    };

    assert_eq!(
        apply(Direction::Up, 4, 20, Some(600.0)),
        CheckOutcome::Apply {
            to: 8,
            notes: vec!["clamped from 20 to 8 (min_scale 2, ceiling 8)".to_owned()]
        }
    );
    assert!(matches!(
        apply(Direction::Up, 4, 3, Some(600.0)),
        CheckOutcome::Apply { to: 5, .. }
    ));
    assert!(matches!(
        apply(Direction::Down, 8, 1, Some(1.0)),
        CheckOutcome::Apply { to: 4, .. }
    ));
    assert!(matches!(
        apply(Direction::Down, 3, 1, Some(1.0)),
        CheckOutcome::Apply { to: 2, .. }
    ));
    assert!(matches!(
        apply(Direction::Down, 4, 2, Some(120.0)),
        CheckOutcome::Veto { .. }
    ));
    assert!(matches!(
        apply(Direction::Down, 4, 2, None),
        CheckOutcome::Veto { .. }
    ));
    assert!(matches!(
        apply(Direction::Down, 4, 4, Some(1.0)),
        CheckOutcome::Skip { .. }
    ));
    assert!(matches!(
        apply(Direction::Up, 8, 9, Some(600.0)),
        CheckOutcome::Skip { .. }
    ));

    let recent_up = PreviousChange {
        direction: Direction::Up,
        at: now() - Duration::seconds(60),
    };
    let at_6 = JobNow {
        scale: 6,
        lag_seconds: Some(1.0),
        knee: None,
    };
    let reversal = post_check(&p, Direction::Down, at_6, 4, Some(recent_up), now());
    assert!(
        matches!(reversal, CheckOutcome::Veto { ref reason } if reason.contains("reverse")),
        "{reversal:?}"
    );
    let old_up = PreviousChange {
        at: now() - Duration::seconds(901),
        ..recent_up
    };
    assert!(matches!(
        post_check(&p, Direction::Down, at_6, 4, Some(old_up), now()),
        CheckOutcome::Apply { to: 4, .. }
    ));
}

#[test]
fn past_a_capacity_knee_a_scale_down_to_the_knee_goes_ahead_with_a_lag() {
    let p = policy(serde_json::json!({}));
    let check = |knee, lag, estimated| {
        let job = JobNow {
            scale: 20,
            lag_seconds: lag,
            knee,
        };
        post_check(&p, Direction::Down, job, estimated, None, now())
    };
    // A backlog waits: no lower than the knee, whatever the estimate asks.
    let CheckOutcome::Apply { to, notes } = check(Some(14), Some(900.0), 10) else {
        panic!("expected the trim to the knee");
    };
    assert_eq!(to, 14);
    assert!(
        notes[0].contains("capacity ceiling's knee (14)"),
        "{notes:?}"
    );
    assert!(matches!(
        check(Some(14), Some(900.0), 16),
        CheckOutcome::Apply { to: 16, .. }
    ));
    // Without a knee below the scale, or with the lag unknown, the lag veto stands.
    for (knee, lag) in [
        (None, Some(900.0)),
        (Some(20), Some(900.0)),
        (Some(14), None),
    ] {
        assert!(
            matches!(check(knee, lag, 14), CheckOutcome::Veto { .. }),
            "{knee:?} {lag:?}"
        );
    }
    // With the backlog gone it is an ordinary scale-down, below the knee if the load allows.
    assert!(matches!(
        check(Some(14), Some(1.0), 10),
        CheckOutcome::Apply { to: 10, .. }
    ));
}

#[test]
fn a_plan_estimates_then_checks() {
    let scales = [2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 4.0, 4.0];
    let history = saturated_history(1000.0, &scales, 6000.0, 600_000.0);
    let plan = plan(
        &history,
        &policy(serde_json::json!({"max_scale": 6})),
        Direction::Up,
        None,
        now(),
    );
    assert_eq!(plan.estimate.as_ref().map(|e| e.scale), Some(9));
    let CheckOutcome::Apply { to, notes } = &plan.outcome else {
        panic!("expected a change, got {:?}", plan.outcome);
    };
    assert_eq!(*to, 6, "clamped to max_scale");
    assert!(notes.iter().any(|n| n.contains("clamped")), "{notes:?}");
}

#[test]
fn a_plan_without_an_estimate_is_a_veto_naming_the_missing_metric() {
    let mut history = saturated_history(1000.0, &[4.0; 8], 6000.0, 0.0);
    for sample in &mut history {
        sample.records_in = None;
    }
    let plan = plan(
        &history,
        &policy(serde_json::json!({})),
        Direction::Up,
        None,
        now(),
    );
    assert_eq!(plan.estimate, None);
    assert!(
        matches!(&plan.outcome, CheckOutcome::Veto { reason } if reason.contains("records_in")),
        "{:?}",
        plan.outcome
    );
}

#[test]
fn a_stalled_job_or_a_broken_scale_metric_cannot_ask_for_the_moon() {
    // Saturated with nothing coming out: the estimate is huge, the check clamps it.
    let mut history = saturated_history(1000.0, &[2.0; 8], 6000.0, 600_000.0);
    for s in &mut history {
        s.records_out = Some(0.0);
    }
    let planned = plan(
        &history,
        &policy(serde_json::json!({"max_scale": 12})),
        Direction::Up,
        None,
        now(),
    );
    assert!(
        matches!(planned.outcome, CheckOutcome::Apply { to: 12, .. }),
        "{planned:?}"
    );
    // A scale metric in the billions is refused, not stepped from.
    for s in &mut history {
        s.scale = Some(4e9);
    }
    assert_eq!(
        fresh(&history, &policy(serde_json::json!({}))),
        Err(EstimateError::ImplausibleScale(4e9))
    );
}

#[test]
fn a_scale_up_that_gained_nothing_blocks_the_next_one_and_says_why() {
    // A sink that takes 14000 records/s at most: 12 → 18 workers gained 2000 of the 6000 promised.
    let history = scale_up_history(12.0, 18.0, |scale| (1000.0 * scale).min(14_000.0));
    let p = policy(serde_json::json!({}));
    let effect = last_scale_up(&history, &p).expect("a measurable scale-up");
    assert_eq!((effect.from_scale, effect.to_scale), (12, 18));
    assert!(
        (effect.share_of_expected - 1.0 / 3.0).abs() < 0.01,
        "{effect:?}"
    );
    assert!(!effect.effective);

    let up = plan(&history, &p, Direction::Up, None, now());
    let CheckOutcome::Veto { reason } = &up.outcome else {
        panic!("expected the block, got {up:?}");
    };
    assert!(
        reason.contains("from 12 to 18") && reason.contains("33 %"),
        "{reason}"
    );
    assert_eq!(up.last_scale_up.as_ref(), Some(&effect));
}

#[test]
fn diminishing_returns_are_not_an_ineffective_scale_up() {
    // Capacity growing as scale^0.85: doubling gives 80 % of what linear scaling promised.
    let history = scale_up_history(5.0, 10.0, |scale| 1000.0 * f64::powf(scale, 0.85));
    let p = policy(serde_json::json!({}));
    let effect = last_scale_up(&history, &p).expect("a measurable scale-up");
    assert!(effect.effective, "{effect:?}");
    assert!(!matches!(
        plan(&history, &p, Direction::Up, None, now()).outcome,
        CheckOutcome::Veto { .. }
    ));
}

#[test]
fn safeguards_block_paused_in_flight_cooldown_bounds_and_unknown_scale() {
    let policy = policy(serde_json::json!({"min_scale": 2, "max_scale": 8, "partition_count": 6}));
    let ok = ClusterFacts {
        current_scale: Some(4.0),
        ..ClusterFacts::default()
    };
    assert_eq!(check_safeguards(&policy, &ok, Direction::Up, now()), Ok(()));

    let cases = [
        (
            ClusterFacts {
                paused: true,
                ..ok.clone()
            },
            Direction::Up,
            "paused",
        ),
        (
            ClusterFacts {
                decision_in_flight: true,
                ..ok.clone()
            },
            Direction::Up,
            "in flight",
        ),
        (
            ClusterFacts {
                last_change_at: Some(now() - Duration::seconds(60)),
                ..ok.clone()
            },
            Direction::Up,
            "cooldown",
        ),
        (
            ClusterFacts {
                current_scale: Some(6.0),
                ..ok.clone()
            },
            Direction::Up,
            "ceiling of 6",
        ),
        (
            ClusterFacts {
                current_scale: Some(2.0),
                ..ok.clone()
            },
            Direction::Down,
            "min_scale",
        ),
        (
            ClusterFacts {
                current_scale: None,
                ..ok.clone()
            },
            Direction::Up,
            "unknown",
        ),
    ];
    for (facts, direction, expected) in cases {
        let blocked = check_safeguards(&policy, &facts, direction, now()).expect_err("blocked");
        assert!(
            blocked.contains(expected),
            "{blocked} should mention {expected}"
        );
    }
    let after_cooldown = ClusterFacts {
        last_change_at: Some(now() - Duration::seconds(901)),
        ..ok
    };
    assert_eq!(
        check_safeguards(&policy, &after_cooldown, Direction::Up, now()),
        Ok(())
    );
}

#[test]
fn a_scale_up_the_lag_kept_growing_through_for_a_whole_window_may_be_followed_within_the_cooldown()
{
    let policy = policy(serde_json::json!({"max_scale": 8}));
    let behind = |seconds_ago: i64, lag_growing: bool| ClusterFacts {
        current_scale: Some(4.0),
        last_change_at: Some(now() - Duration::seconds(seconds_ago)),
        lag_growing,
        ..ClusterFacts::default()
    };
    // A whole scale-up window (300 s) at the new scale with the lag still growing: not enough.
    assert_eq!(
        check_safeguards(&policy, &behind(300, true), Direction::Up, now()),
        Ok(())
    );
    // Too soon to tell, no lag rule behind it, or the other direction: the cooldown holds.
    for (facts, direction) in [
        (behind(299, true), Direction::Up),
        (behind(600, false), Direction::Up),
        (behind(600, true), Direction::Down),
    ] {
        let blocked = check_safeguards(&policy, &facts, direction, now()).expect_err("cooldown");
        assert!(blocked.contains("cooldown"), "{blocked}");
    }
}

fn by_hand(minutes_ago: i64) -> GitFacts {
    GitFacts {
        value: 7,
        human_commit: Some(HumanCommit {
            sha: "0123456789abcdef".to_owned(),
            author: "Ada".to_owned(),
            at: now() - Duration::minutes(minutes_ago),
        }),
    }
}

#[test]
fn a_recent_change_by_hand_vetoes_before_anything_is_estimated() {
    let history = saturated_history(1000.0, &[4.0; 8], 6000.0, 600_000.0);
    let p = policy(serde_json::json!({}));
    let facts = Facts {
        git: Some(by_hand(5)),
        ..Facts::default()
    };
    let planned = super::plan(&p, Direction::Up, &history, &facts, now());
    let CheckOutcome::Veto { reason } = &planned.outcome else {
        panic!("expected the human veto, got {planned:?}");
    };
    assert!(
        reason.contains("Ada set the scale to 7 by hand in commit 0123456789ab"),
        "{reason}"
    );
    assert_eq!(planned.estimate, None);
    assert_eq!(
        planned.human_change.map(|c| c.author),
        Some("Ada".to_owned())
    );

    // Once the cooldown (900 s) ran out, or when our own change is newer, the person's value is a start.
    for facts in [
        Facts {
            git: Some(by_hand(16)),
            ..Facts::default()
        },
        Facts {
            git: Some(by_hand(5)),
            last_written: Some(Written::new(Some(2), Some(4), now() - Duration::minutes(1))),
            ..Facts::default()
        },
    ] {
        let planned = super::plan(&p, Direction::Up, &history, &facts, now());
        assert_eq!(planned.human_change, None, "{facts:?}");
        assert!(
            matches!(planned.outcome, CheckOutcome::Apply { .. }),
            "{planned:?}"
        );
    }
}

#[test]
fn a_scale_git_already_holds_is_skipped() {
    let scales = [2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 4.0, 4.0];
    let history = saturated_history(1000.0, &scales, 6000.0, 600_000.0);
    let p = policy(serde_json::json!({"max_scale": 6}));
    let facts = Facts {
        git: Some(GitFacts {
            value: 6,
            human_commit: None,
        }),
        ..Facts::default()
    };
    let planned = super::plan(&p, Direction::Up, &history, &facts, now());
    assert_eq!(
        planned.outcome,
        CheckOutcome::Skip {
            reason: "Git already holds 6".to_owned()
        }
    );
}

#[test]
fn evaluate_runs_the_rules_the_safeguards_and_the_plan_together() {
    // Lag far above 5 minutes in every sample of the window, at 30 s spacing over the last hour.
    let history: Vec<Sample> = (0..120)
        .map(|i| Sample {
            sampled_at: now() - Duration::seconds(30 * (119 - i)),
            cpu_load: Some(1.0),
            lag_records: Some(600_000.0 + 1000.0 * i as f64),
            lag_seconds: Some(900.0),
            records_in: Some(4000.0),
            records_out: Some(4000.0),
            scale: Some(4.0),
        })
        .collect();
    let p = policy(serde_json::json!({}));
    let cluster = Cluster {
        policy: &p,
        scrape_interval_seconds: 30,
    };
    let evaluation = evaluate(&cluster, &history, &Facts::default(), now());
    assert!(evaluation.act, "{evaluation:?}");
    assert_eq!(evaluation.direction(), Some(Direction::Up));
    let plan = evaluation.plan.expect("a plan for the fired rule");
    assert!(
        matches!(plan.outcome, CheckOutcome::Apply { to, .. } if to > 4),
        "{plan:?}"
    );

    // Paused: the rule still fires and the plan still says what it would do, but nothing acts.
    let paused = Facts {
        paused: true,
        ..Facts::default()
    };
    let evaluation = evaluate(&cluster, &history, &paused, now());
    assert!(!evaluation.act);
    assert_eq!(
        evaluation.blocked_by.as_deref(),
        Some("the cluster is paused")
    );
    assert!(evaluation.plan.is_some());
}

#[test]
fn decision_inputs_round_trip_as_typed_json() {
    let inputs = DecisionInputs::bare(Direction::Down, "low load", now(), 600);
    let value = serde_json::to_value(&inputs).expect("serialise");
    assert_eq!(value["direction"], "down");
    let back: DecisionInputs = serde_json::from_value(value).expect("deserialise");
    assert_eq!(back, inputs);
}

#[test]
fn the_plan_fits_on_what_the_cluster_remembers_and_hands_back_what_it_learned() {
    // One scale this hour; earlier decisions saw 2 and 8 workers.
    let history = saturated_history(1000.0, &[4.0; 8], 6000.0, 0.0);
    let p = policy(serde_json::json!({}));
    let remembered = |scale: u32| crate::estimate::CapacityPoint {
        scale,
        capacity: 1000.0 * f64::from(scale),
        spread: 0.0,
        samples: 10,
        observed_at: now() - Duration::hours(2),
    };
    let facts = Facts {
        capacity: crate::estimate::CapacityMemory {
            points: vec![remembered(2), remembered(8)],
        },
        ..Facts::default()
    };
    let planned = super::plan(&p, Direction::Up, &history, &facts, now());
    let estimate = planned.estimate.expect("an estimate");
    assert!(
        matches!(estimate.method, crate::estimate::Method::Regression { .. }),
        "{estimate:?}"
    );
    assert_eq!(estimate.remembered_scales, 2);
    let scales: Vec<u32> = estimate.learned.points.iter().map(|p| p.scale).collect();
    assert_eq!(scales, [2, 4, 8]);
    // The dry run reports the same model.
    let summary = EstimateSummary::from(&estimate);
    assert_eq!(
        (summary.model, summary.remembered_scales),
        ("regression", 2)
    );
}

#[test]
fn a_remembered_ceiling_blocks_scale_ups_past_it_until_newer_evidence_contradicts_it() {
    // Six workers move 1000 records/s each with a backlog waiting; an hour ago twelve moved no more.
    let history = saturated_history(1000.0, &[6.0; 8], 9000.0, 600_000.0);
    let p = policy(serde_json::json!({}));
    let facts = |capacity_at_12: f64| Facts {
        capacity: crate::estimate::CapacityMemory {
            points: vec![crate::estimate::CapacityPoint {
                scale: 12,
                capacity: capacity_at_12,
                spread: 0.0,
                samples: 10,
                observed_at: now() - Duration::hours(1),
            }],
        },
        ..Facts::default()
    };
    let blocked = super::plan(&p, Direction::Up, &history, &facts(5900.0), now());
    let CheckOutcome::Veto { reason } = &blocked.outcome else {
        panic!("expected the ceiling to block, got {blocked:?}");
    };
    assert!(
        reason.starts_with("capacity stops growing at scale 6: at 12 the job moved 5900 records/s"),
        "{reason}"
    );
    let estimate = blocked.estimate.expect("an estimate");
    assert_eq!(
        estimate.ceiling.map(|c| (c.scale, c.shown_at)),
        Some((6, 12))
    );
    // The ceiling's point stays in the memory, so it outlasts this history.
    assert!(estimate.learned.points.iter().any(|p| p.scale == 12));
    // A scale-down is not blocked by it.
    let down = super::plan(&p, Direction::Down, &history, &facts(5900.0), now());
    assert!(
        down.checks
            .iter()
            .any(|c| c.check == "ineffective_scaling" && c.state == CheckState::Passed),
        "{down:?}"
    );

    // Six workers now move well over what twelve did then: the bottleneck moved, the block is lifted.
    let lifted = super::plan(&p, Direction::Up, &history, &facts(5000.0), now());
    let CheckOutcome::Apply { to, .. } = lifted.outcome else {
        panic!("expected a scale-up, got {lifted:?}");
    };
    assert!(to > 6, "{to}");
    assert_eq!(lifted.estimate.and_then(|e| e.ceiling), None);
}
