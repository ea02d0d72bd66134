//! The worker's step for one fired rule: the human-change veto, the estimate, the ineffective-scaling
//! veto, the post-evaluation check, and whether Git already holds the result.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    CheckOutcome, Facts, HumanCommit, JobNow, Prediction, Sample, human, post_check, predict,
};
use crate::{
    cluster::Policy,
    estimate::{Estimate, EstimateError, ScaleUpEffect, estimate, last_scale_up},
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
    /// The seasonal prediction the plan was sized or vetoed by (`policy.predictive`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Prediction>,
}

impl Plan {
    /// A plan the check `check` stopped with `reason`: its verdict ends `checks`, and nothing changes.
    /// Callers add what they knew by then (the estimate, the last scale-up, the prediction).
    fn vetoed(mut checks: Vec<CheckVerdict>, check: &'static str, reason: String) -> Self {
        checks.push(CheckVerdict::new(
            check,
            CheckState::Blocked,
            reason.clone(),
        ));
        Self {
            estimate: None,
            outcome: CheckOutcome::Veto { reason },
            last_scale_up: None,
            human_change: None,
            checks,
            prediction: None,
        }
    }
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

/// The smallest scale at which the estimate's capacity model runs `rate` below the policy's CPU ceiling.
pub(super) fn cpu_floor(estimate: &Estimate, policy: &Policy, rate: f64) -> u32 {
    estimate.scale_for(rate / policy.cpu_ceiling())
}

/// Plans a change in `direction` from `history` (time order, newest last) and the caller's `facts`.
pub fn plan(
    policy: &Policy,
    direction: Direction,
    history: &[Sample],
    facts: &Facts,
    now: DateTime<Utc>,
) -> Plan {
    let estimated = estimate(history, policy, &facts.capacity, now);
    plan_estimated(policy, direction, history, facts, now, estimated)
}

/// [`plan`] with the estimate already made from the same `history`, `policy`, memory and `now` (the
/// manager's evaluation makes it before the rules, which read its capacity ceiling).
pub(super) fn plan_estimated(
    policy: &Policy,
    direction: Direction,
    history: &[Sample],
    facts: &Facts,
    now: DateTime<Utc>,
    estimated: Result<Estimate, EstimateError>,
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
                return Plan {
                    human_change: Some(commit.clone()),
                    ..Plan::vetoed(checks, "human_change", reason)
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
    let estimate = match estimated {
        Ok(estimate) => estimate,
        Err(error) => {
            let reason = format!("cannot estimate: {error}");
            return Plan {
                last_scale_up,
                ..Plan::vetoed(checks, "estimate", reason)
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
    // The remembered ceiling outlasts the history that showed it.
    let at_ceiling = estimate
        .ceiling
        .filter(|c| estimate.current_scale >= c.scale);
    let blocked = ineffective
        .map(ScaleUpEffect::block_reason)
        .or_else(|| at_ceiling.map(|c| c.block_reason()));
    match (direction, blocked.clone()) {
        (Direction::Up, Some(reason)) => {
            return Plan {
                estimate: Some(estimate),
                last_scale_up,
                ..Plan::vetoed(checks, "ineffective_scaling", reason)
            };
        }
        (_, blocked) => checks.push(CheckVerdict::new(
            "ineffective_scaling",
            Passed,
            match (&last_scale_up, &estimate.ceiling) {
                _ if blocked.is_some() => "scale-ups are blocked, scale-downs are not".to_owned(),
                (Some(effect), _) => format!(
                    "the scale-up from {} to {} gained {:.0} % of what it promised",
                    effect.from_scale,
                    effect.to_scale,
                    effect.share_of_expected * 100.0
                ),
                (None, Some(ceiling)) => format!(
                    "capacity stops growing at scale {} ({:.0} records/s): no scale above it is asked for",
                    ceiling.scale, ceiling.capacity
                ),
                (None, None) => "no measurable scale-up in the history".to_owned(),
            },
        )),
    }
    let lag_seconds_now = history
        .iter()
        .rev()
        .find_map(|s| s.lag_seconds.filter(|v| v.is_finite()));
    let floor = cpu_floor(&estimate, policy, estimate.forecast_input);
    let prediction = predict(
        policy,
        Some(&estimate),
        history,
        facts.seasonal.as_deref(),
        now,
    );
    let forecast = match forecast_check(
        prediction.as_ref(),
        direction,
        estimate.current_scale,
        estimate.scale.max(floor),
    ) {
        Ok(forecast) => forecast,
        Err(reason) => {
            return Plan {
                estimate: Some(estimate),
                last_scale_up,
                prediction: prediction.and_then(Result::ok),
                ..Plan::vetoed(checks, "forecast", reason)
            };
        }
    };
    if let Some((state, detail, _)) = &forecast {
        checks.push(CheckVerdict::new("forecast", *state, detail.clone()));
    }
    let previous = facts.last_written.and_then(|w| w.previous_change());
    let job = JobNow {
        scale: estimate.current_scale,
        lag_seconds: lag_seconds_now,
        knee: estimate.ceiling.map(|c| c.scale),
    };
    let mut outcome = post_check(
        policy,
        direction,
        job,
        forecast
            .as_ref()
            .and_then(|(_, _, scale)| *scale)
            .unwrap_or(estimate.scale.max(floor)),
        previous,
        now,
    );
    if let (Some((_, detail, Some(_))), CheckOutcome::Apply { notes, .. }) =
        (&forecast, &mut outcome)
    {
        notes.insert(0, detail.clone());
    }
    if floor > estimate.scale
        && let CheckOutcome::Apply { notes, .. } = &mut outcome
    {
        notes.insert(
            0,
            format!(
                "raised from {} to {floor}: the forecast input must run below {:.0} % CPU",
                estimate.scale,
                policy.cpu_ceiling() * 100.0
            ),
        );
    }
    if let (Some(reason), CheckOutcome::Apply { notes, .. }) = (blocked, &mut outcome) {
        notes.push(reason);
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
        prediction: prediction.and_then(Result::ok),
    }
}

/// The predictive sizing and veto (`policy.predictive`), where a prediction was asked for: `Err` with the
/// reason when the forecast vetoes a scale-down it would undo within the cooldown, else the check's
/// state and detail and, where the forecast raised it, the scale to plan for instead of `sized`.
fn forecast_check(
    prediction: Option<&Result<Prediction, String>>,
    direction: Direction,
    current: u32,
    sized: u32,
) -> Result<Option<(CheckState, String, Option<u32>)>, String> {
    let prediction = match prediction {
        None => return Ok(None),
        Some(Err(reason)) => return Ok(Some((CheckState::NotChecked, reason.clone(), None))),
        Some(Ok(prediction)) => prediction,
    };
    let peak = prediction.peak_for(direction);
    let figures = format!(
        "the forecast peaks at {:.0} records/s at {} (within {}s), which needs scale {}",
        peak.rate,
        peak.at.format("%H:%M UTC"),
        peak.within_seconds,
        peak.scale
    );
    match direction {
        Direction::Down if peak.scale >= current => Err(format!(
            "scale-down refused: {figures}; the current scale ({current}) would be needed again within the cooldown"
        )),
        _ if peak.scale > sized => Ok(Some((
            CheckState::Passed,
            format!("raised from {sized} to {}: {figures}", peak.scale),
            Some(peak.scale),
        ))),
        _ => Ok(Some((
            CheckState::Passed,
            format!("{figures}, not above {sized}"),
            None,
        ))),
    }
}
