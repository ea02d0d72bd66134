//! The worker's step for one fired rule: the human-change veto, the estimate, the ineffective-scaling
//! veto, the post-evaluation check, and whether Git already holds the result.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{CheckOutcome, Facts, HumanCommit, Sample, human, post_check};
use crate::{
    cluster::Policy,
    estimate::{Estimate, ScaleUpEffect, estimate, last_scale_up},
    rules::Direction,
};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// `None` when the history could not support an estimate; `outcome` then says why.
    pub estimate: Option<Estimate>,
    pub outcome: CheckOutcome,
    /// What the newest scale-up in the history gained, where a backlog on both sides tells.
    pub last_scale_up: Option<ScaleUpEffect>,
    /// The person's commit that vetoed the change, for the caller to record as a human change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub human_change: Option<HumanCommit>,
    /// Every check's verdict, in the order they ran.
    pub checks: Vec<CheckVerdict>,
}

/// One check's verdict, for the decision, the dry run and the API.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CheckVerdict {
    /// `paused`, `in_flight`, `cooldown`, `scale_bounds` (the safeguards), then `human_change`,
    /// `estimate`, `ineffective_scaling`, `post_check`, `git_holds` (the plan's).
    pub check: &'static str,
    pub state: CheckState,
    /// Why, with the figures.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckState {
    Passed,
    /// This check stopped the change (or, for the plan's last checks, made it a no-op).
    Blocked,
    /// The caller had not the facts to run it (the dry run reads no Git), or an earlier check stopped.
    NotChecked,
}

impl CheckVerdict {
    pub fn new(check: &'static str, state: CheckState, detail: impl Into<String>) -> Self {
        Self {
            check,
            state,
            detail: detail.into(),
        }
    }
}

/// The new scale must carry the forecast input with CPU this far below `cpu_high`, or the CPU rule would
/// fire again as soon as the cooldown is over.
const CPU_MARGIN: f64 = 0.9;

/// The smallest scale at which the estimate's capacity model runs the forecast input below
/// `cpu_high × CPU_MARGIN`.
fn cpu_floor(estimate: &Estimate, policy: &Policy) -> u32 {
    let needed = estimate.forecast_input / (policy.cpu_high * CPU_MARGIN);
    let scale = estimate.method.scale_for(needed);
    if scale.is_finite() {
        scale.ceil().clamp(1.0, f64::from(u32::MAX)) as u32
    } else {
        1
    }
}

/// Plans a change in `direction` from `history` (time order, newest last) and the caller's `facts`.
pub fn plan(
    policy: &Policy,
    direction: Direction,
    history: &[Sample],
    facts: &Facts,
    now: DateTime<Utc>,
) -> Plan {
    use CheckState::{Blocked, NotChecked, Passed};
    let mut checks = Vec::new();
    // A person's recent commit wins before anything is estimated.
    match &facts.git {
        None => checks.push(CheckVerdict::new(
            "human_change",
            NotChecked,
            "Git was not read",
        )),
        Some(git) => {
            let veto = git.human_commit.as_ref().and_then(|commit| {
                human::veto(policy, commit, git.value, facts.last_written, now)
                    .map(|reason| (commit, reason))
            });
            if let Some((commit, reason)) = veto {
                checks.push(CheckVerdict::new("human_change", Blocked, reason.clone()));
                return Plan {
                    estimate: None,
                    outcome: CheckOutcome::Veto { reason },
                    last_scale_up: None,
                    human_change: Some(commit.clone()),
                    checks,
                };
            }
            checks.push(CheckVerdict::new(
                "human_change",
                Passed,
                "no recent change by hand",
            ));
        }
    }
    let last_scale_up = last_scale_up(history, policy);
    let estimate = match estimate(history, policy, &facts.capacity, now) {
        Ok(estimate) => estimate,
        Err(error) => {
            let reason = format!("cannot estimate: {error}");
            checks.push(CheckVerdict::new("estimate", Blocked, reason.clone()));
            return Plan {
                estimate: None,
                outcome: CheckOutcome::Veto { reason },
                last_scale_up,
                human_change: None,
                checks,
            };
        }
    };
    checks.push(CheckVerdict::new(
        "estimate",
        Passed,
        format!(
            "scale {} for {:.0} records/s required",
            estimate.scale, estimate.required_throughput
        ),
    ));
    let ineffective = last_scale_up.as_ref().filter(|effect| !effect.effective);
    match (direction, ineffective) {
        (Direction::Up, Some(effect)) => {
            let reason = effect.block_reason();
            checks.push(CheckVerdict::new(
                "ineffective_scaling",
                Blocked,
                reason.clone(),
            ));
            return Plan {
                estimate: Some(estimate),
                outcome: CheckOutcome::Veto { reason },
                last_scale_up,
                human_change: None,
                checks,
            };
        }
        _ => checks.push(CheckVerdict::new(
            "ineffective_scaling",
            Passed,
            match &last_scale_up {
                Some(effect) if effect.effective => format!(
                    "the scale-up from {} to {} gained {:.0} % of what it promised",
                    effect.from_scale,
                    effect.to_scale,
                    effect.share_of_expected * 100.0
                ),
                Some(_) => "scale-ups are blocked, scale-downs are not".to_owned(),
                None => "no measurable scale-up in the history".to_owned(),
            },
        )),
    }
    let lag_seconds_now = history
        .iter()
        .rev()
        .find_map(|s| s.lag_seconds.filter(|v| v.is_finite()));
    let floor = cpu_floor(&estimate, policy);
    let previous = facts.last_written.and_then(|w| w.previous_change());
    let mut outcome = post_check(
        policy,
        direction,
        estimate.current_scale,
        estimate.scale.max(floor),
        lag_seconds_now,
        previous,
        now,
    );
    if floor > estimate.scale
        && let CheckOutcome::Apply { notes, .. } = &mut outcome
    {
        notes.insert(
            0,
            format!(
                "raised from {} to {floor}: the forecast input must run below {:.0} % CPU",
                estimate.scale,
                policy.cpu_high * CPU_MARGIN * 100.0
            ),
        );
    }
    if let (Some(effect), CheckOutcome::Apply { notes, .. }) = (ineffective, &mut outcome) {
        notes.push(effect.block_reason());
    }
    checks.push(match &outcome {
        CheckOutcome::Apply { to, notes } => CheckVerdict::new(
            "post_check",
            Passed,
            if notes.is_empty() {
                format!("to {to}")
            } else {
                format!("to {to}: {}", notes.join("; "))
            },
        ),
        CheckOutcome::Veto { reason } | CheckOutcome::Skip { reason } => {
            CheckVerdict::new("post_check", Blocked, reason.clone())
        }
    });
    // The estimate reads the scale from the samples; Git may already hold the result (a change merged
    // that has not taken effect yet).
    match (&facts.git, &outcome) {
        (Some(git), CheckOutcome::Apply { to, .. }) if u64::from(*to) == git.value => {
            let reason = format!("Git already holds {to}");
            checks.push(CheckVerdict::new("git_holds", Blocked, reason.clone()));
            outcome = CheckOutcome::Skip { reason };
        }
        (Some(git), _) => checks.push(CheckVerdict::new(
            "git_holds",
            Passed,
            format!("Git holds {}", git.value),
        )),
        (None, _) => checks.push(CheckVerdict::new(
            "git_holds",
            NotChecked,
            "Git was not read",
        )),
    }
    Plan {
        estimate: Some(estimate),
        outcome,
        last_scale_up,
        human_change: None,
        checks,
    }
}
