//! The tuner on recorded histories whose answer is known: a wasteful setting is made cheaper, and no
//! proposal lets through more lag than the current settings did.

use super::*;
use crate::simulate::history::tests::{policy, recorded};

fn tuned(history: &History) -> Tuning {
    propose(history).expect("a replay")
}

/// Three hours of a step load, recorded at a scale that carries it (the CPU fit reads 1000 per worker).
fn step_history(policy: Policy) -> History {
    let rate = |s: f64| {
        if (3600.0..7200.0).contains(&s) {
            6000.0
        } else {
            3000.0
        }
    };
    recorded(1000.0, 8, 3 * 3600, rate, policy)
}

#[test]
fn the_grid_holds_the_current_setting_first_and_only_valid_windows() {
    let mut current = policy(16);
    current.scale_up_window_seconds = 1200;
    current.scale_down_window_seconds = 2400;
    let grid = grid(&current);
    assert_eq!(grid[0], Knobs::of(&current));
    assert!(grid.len() <= 80, "{}", grid.len());
    // 900 is below the scale-up window: never proposed.
    assert!(grid.iter().all(|k| k.scale_down_window_seconds >= 1200));
    // Targets 0.85 (current), 0.6, 0.7, 0.8, 0.9; windows 2400 (current), 1800, 3600; cooldowns 900
    // (current), 300, 1800.
    assert_eq!(grid.len(), 5 * 3 * 3);
}

#[test]
fn a_wasteful_setting_is_made_cheaper_within_the_lag_bound() {
    // Half the capacity idle by design, scale-downs held back an hour.
    let mut wasteful = policy(16);
    wasteful.target_utilization = 0.5;
    wasteful.scale_down_window_seconds = 3600;
    wasteful.cooldown_seconds = 1800;
    let tuning = tuned(&step_history(wasteful.clone()));
    let p = &tuning.proposal;
    assert_eq!(p.current.settings, Knobs::of(&wasteful));
    assert!(!p.changes.is_empty(), "{p:#?}");
    assert!(
        p.proposed.replica_hours < p.current.replica_hours * 0.95,
        "at least 5 % cheaper: {p:#?}"
    );
    assert!(p.proposed.lag_over_minutes <= p.max_lag_over_minutes);
    assert!(p.proposed.settings.target_utilization > 0.5, "{p:#?}");
    // The proposal is what was replayed: its run costs what its row says.
    let hours = tuning
        .proposed_run
        .scale
        .iter()
        .map(|s| f64::from(*s))
        .sum::<f64>()
        / 3600.0;
    assert!((hours - p.proposed.replica_hours).abs() < 1e-9);
    assert_eq!(p.candidates[0], p.proposed);
}

#[test]
fn no_proposal_lets_through_more_lag_than_the_current_settings() {
    // A load that doubles within a minute: the leanest settings let lag build above the threshold.
    let mut current = policy(24);
    current.target_utilization = 0.6;
    current.lag_seconds_high = 60.0;
    current.lag_seconds_low = 10.0;
    let rate = |s: f64| match s {
        s if s < 3600.0 => 4000.0,
        s if s < 5400.0 => 9000.0,
        _ => 4000.0,
    };
    let history = recorded(1000.0, 12, 3 * 3600, rate, current);
    let p = tuned(&history).proposal;
    assert!(p.beyond_bound > 0, "the bound bites on this load: {p:#?}");
    let beyond = p.cheapest_beyond_bound.as_ref().expect("one beyond");
    assert!(beyond.lag_over_minutes > p.max_lag_over_minutes);
    assert!(
        p.proposed.lag_over_minutes <= p.max_lag_over_minutes,
        "{p:#?}"
    );
    assert!(
        p.candidates
            .iter()
            .all(|c| c.within_bound && c.lag_over_minutes <= p.max_lag_over_minutes)
    );
    assert!(p.proposed.replica_hours <= p.current.replica_hours);
}

#[test]
fn the_table_shows_current_proposed_and_the_change_and_the_plot_is_drawn() {
    let mut wasteful = policy(16);
    wasteful.target_utilization = 0.5;
    let tuning = tuned(&step_history(wasteful));
    let mut out = Vec::new();
    tuning.proposal.write_table(&mut out).expect("written");
    let table = String::from_utf8(out).expect("utf-8");
    assert!(
        table.contains("current ") && table.contains("proposed "),
        "{table}"
    );
    assert!(table.contains("target_utilization 0.50 →"), "{table}");

    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("tune.svg");
    draw(&path, &tuning).expect("drawn");
    let svg = std::fs::read_to_string(&path).expect("written");
    assert!(
        svg.contains("current") && svg.contains("proposed"),
        "{}",
        &svg[..200]
    );
}
