//! The comparison over one or more seeds: per policy every run's score, the median and the worst of each
//! figure, and the goals checked for ours. Printed as a table for people or as JSON.

use std::{collections::BTreeMap, io::Write};

use serde::Serialize;

use super::{
    frontier::Point,
    job::JobModel,
    run::{Action, Settings},
    score::Score,
    trace::LoadStep,
};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub trace: String,
    pub duration_hours: f64,
    pub model: JobModel,
    /// The settings of the first seed's run; the others differ in the seed only.
    pub settings: Settings,
    pub seeds: Vec<u64>,
    pub load_steps: Vec<LoadStep>,
    pub policies: Vec<PolicyReport>,
    pub goals: Vec<Goal>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyReport {
    pub policy: &'static str,
    /// One score per seed, in seed order.
    pub runs: Vec<Score>,
    /// The changes of the first seed's run, to see what the policy did.
    pub actions: Vec<Action>,
    pub median: BTreeMap<&'static str, f64>,
    /// The highest value over the seeds (every figure is better lower).
    pub worst: BTreeMap<&'static str, f64>,
}

impl PolicyReport {
    pub fn new(policy: &'static str, runs: Vec<Score>, actions: Vec<Action>) -> Self {
        let mut by_figure: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
        for run in &runs {
            for (name, value) in run.figures() {
                by_figure.entry(name).or_default().push(value);
            }
        }
        let mut median = BTreeMap::new();
        let mut worst = BTreeMap::new();
        for (name, mut values) in by_figure {
            values.retain(|v| !v.is_nan());
            values.sort_by(f64::total_cmp);
            let (mid, high) = match values.len() {
                0 => (f64::NAN, f64::NAN),
                n if n % 2 == 1 => (values[n / 2], values[n - 1]),
                n => ((values[n / 2 - 1] + values[n / 2]) / 2.0, values[n - 1]),
            };
            median.insert(name, mid);
            worst.insert(name, high);
        }
        Self {
            policy,
            runs,
            actions,
            median,
            worst,
        }
    }

    pub(crate) fn median(&self, figure: &str) -> f64 {
        self.median.get(figure).copied().unwrap_or(f64::NAN)
    }

    pub(crate) fn worst(&self, figure: &str) -> f64 {
        self.worst.get(figure).copied().unwrap_or(f64::NAN)
    }
}

/// One of the goals for ours on this trace.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    pub goal: &'static str,
    /// `None` when the trace does not test it (no load step).
    pub met: Option<bool>,
    pub detail: String,
}

/// The policies ours is judged against (the oracle is the reference, not a rival).
const BASELINES: [&str; 3] = ["hpa", "keda", "ds2"];

/// The goals: settle in at most 2 actions after a load step and never reverse within the cooldown (worst
/// seed); lag above the threshold no longer than the oracle's plus a delay and a restart, replica-hours
/// within the trace's bound over the oracle's (`# goal: replica-hours=PERCENT`; none set, none judged),
/// no baseline with both fewer replica-hours and no more lag, and fewer actions and no more lag than the
/// HPA and KEDA (medians).
pub fn goals(
    policies: &[PolicyReport],
    settings: &Settings,
    steps: usize,
    replica_hours_percent: Option<f64>,
) -> Vec<Goal> {
    let find = |name: &str| policies.iter().find(|p| p.policy == name);
    let (Some(ours), Some(oracle)) = (find("ours"), find("oracle")) else {
        return Vec::new();
    };
    let mut goals = Vec::new();

    let settle = ours.worst("max_settle_actions");
    goals.push(Goal {
        goal: "settles in at most 2 actions after each load step",
        met: (steps > 0).then_some(settle <= 2.0),
        detail: if steps > 0 {
            format!(
                "worst {} actions after a step ({steps} steps; oracle worst {})",
                number(settle),
                number(oracle.worst("max_settle_actions"))
            )
        } else {
            "no load step in this trace".to_owned()
        },
    });

    let quick = ours.worst("quick_reversals");
    goals.push(Goal {
        goal: "never reverses direction within the cooldown",
        met: Some(quick == 0.0),
        detail: format!(
            "worst {} quick reversals ({} reversals in all)",
            number(quick),
            number(ours.worst("reversals"))
        ),
    });

    let allowance = f64::from(settings.actuation_delay_seconds + settings.restart_seconds) / 60.0;
    let (lag, oracle_lag) = (
        ours.median("lag_over_minutes"),
        oracle.median("lag_over_minutes"),
    );
    goals.push(Goal {
        goal: "lag above the threshold within a delay plus a restart of the oracle's",
        met: Some(lag <= oracle_lag + allowance + 1e-9),
        detail: format!(
            "{} min against the oracle's {} min + {} min allowed (short by {} min)",
            number(lag),
            number(oracle_lag),
            number(allowance),
            number((lag - oracle_lag - allowance).max(0.0))
        ),
    });

    let (hours, oracle_hours) = (ours.median("replica_hours"), oracle.median("replica_hours"));
    let excess = if oracle_hours > 0.0 {
        hours / oracle_hours - 1.0
    } else {
        0.0
    };
    goals.push(Goal {
        goal: "replica-hours within the trace's bound over the oracle's",
        met: replica_hours_percent.map(|bound| excess * 100.0 <= bound + 1e-9),
        detail: format!(
            "{} against {} replica-hours: {:+.1} % (bound: {})",
            number(hours),
            number(oracle_hours),
            excess * 100.0,
            replica_hours_percent.map_or("none for this trace".to_owned(), |b| format!(
                "{} %",
                number(b)
            ))
        ),
    });

    let point = |p: &PolicyReport| {
        Point::new(
            p.policy,
            p.median("replica_hours"),
            oracle_hours.max(f64::MIN_POSITIVE),
            p.median("lag_over_minutes"),
        )
    };
    let ours_point = point(ours);
    let dominating: Vec<String> = BASELINES
        .iter()
        .filter_map(|name| find(name))
        .map(point)
        .filter(|baseline| baseline.dominates(&ours_point))
        .map(|baseline| baseline.policy)
        .collect();
    goals.push(Goal {
        goal: "no baseline has both fewer replica-hours and no more lag",
        met: Some(dominating.is_empty()),
        detail: if dominating.is_empty() {
            "none dominates ours".to_owned()
        } else {
            format!("dominated by {}", dominating.join(", "))
        },
    });

    for rival in ["hpa", "keda"] {
        let Some(other) = find(rival) else { continue };
        let fewer = ours.median("actions") < other.median("actions");
        let (lag, their_lag) = (
            ours.median("lag_over_minutes"),
            other.median("lag_over_minutes"),
        );
        let (peak, their_peak) = (
            ours.median("peak_lag_seconds"),
            other.median("peak_lag_seconds"),
        );
        let less_lag = lag < their_lag || (lag == their_lag && peak <= their_peak);
        goals.push(Goal {
            goal: if rival == "hpa" {
                "beats the HPA on actions and lag"
            } else {
                "beats KEDA on actions and lag"
            },
            met: Some(fewer && less_lag),
            detail: format!(
                "actions {} vs {}; lag above threshold {} vs {} min; peak lag {} vs {} s",
                number(ours.median("actions")),
                number(other.median("actions")),
                number(lag),
                number(their_lag),
                number(peak),
                number(their_peak)
            ),
        });
    }
    goals
}

/// A figure for people: whole numbers without decimals, others with one or two.
pub fn number(value: f64) -> String {
    if value.is_nan() {
        "-".to_owned()
    } else if value.fract() == 0.0 && value.abs() < 1e12 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn percent(value: f64) -> String {
    if value.is_nan() {
        "-".to_owned()
    } else {
        format!("{:.1}", value * 100.0)
    }
}

/// The columns of the table, in order: header and figure.
const COLUMNS: [(&str, &str); 11] = [
    ("actions", "actions"),
    ("reversals", "reversals"),
    ("quick rev.", "quick_reversals"),
    ("settle", "max_settle_actions"),
    ("lag>thr min", "lag_over_minutes"),
    ("day 2 min", "lag_over_minutes_day_2"),
    ("peak lag s", "peak_lag_seconds"),
    ("drain min", "longest_drain_minutes"),
    ("replica-h", "replica_hours"),
    ("over %", "over_provisioning"),
    ("under %", "under_provisioning"),
];

impl Report {
    pub fn write_table(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let s = &self.settings;
        writeln!(
            out,
            "trace {} ({:.1} h, {} load step(s))",
            self.trace,
            self.duration_hours,
            self.load_steps.len()
        )?;
        let sink = self
            .model
            .sink_cap
            .map_or("none".to_owned(), |c| format!("{c} records/s"));
        writeln!(
            out,
            "job: {} records/s per worker, exponent {}, {} partitions, sink cap {sink}; start at scale {} \
             with {} s of backlog",
            self.model.capacity_per_worker,
            self.model.scaling_exponent,
            self.model.partitions,
            s.initial_scale,
            s.initial_lag_seconds
        )?;
        writeln!(
            out,
            "loop: scrape every {} s, actuation delay {} s, restart {} s, noise {} %, scale {}..{}",
            s.scrape_interval_seconds,
            s.actuation_delay_seconds,
            s.restart_seconds,
            s.noise * 100.0,
            s.bounds().min,
            s.bounds().max
        )?;
        let seeds = match self.seeds.as_slice() {
            [one] => format!("seed {one}"),
            many => format!(
                "medians over {} seeds ({}..={})",
                many.len(),
                many.first().copied().unwrap_or_default(),
                many.last().copied().unwrap_or_default()
            ),
        };
        writeln!(
            out,
            "{seeds}; lag threshold {} s",
            s.policy.lag_seconds_high
        )?;
        writeln!(out)?;

        let width = self
            .policies
            .iter()
            .map(|p| p.policy.len())
            .max()
            .unwrap_or(0)
            .max(8);
        write!(out, "{:<width$}", "policy")?;
        for (header, _) in COLUMNS {
            write!(out, " {header:>11}")?;
        }
        writeln!(out)?;
        for policy in &self.policies {
            write!(out, "{:<width$}", policy.policy)?;
            for (_, figure) in COLUMNS {
                let value = policy.median(figure);
                let text = if figure.ends_with("provisioning") {
                    percent(value)
                } else {
                    number(value)
                };
                write!(out, " {text:>11}")?;
            }
            writeln!(out)?;
        }
        writeln!(out)?;
        writeln!(out, "goals for ours:")?;
        for goal in &self.goals {
            let mark = match goal.met {
                Some(true) => "met  ",
                Some(false) => "SHORT",
                None => "n/a  ",
            };
            writeln!(out, "  [{mark}] {}: {}", goal.goal, goal.detail)?;
        }
        Ok(())
    }

    pub fn write_json(&self, out: &mut dyn Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, self).map_err(std::io::Error::other)?;
        writeln!(out)
    }
}
