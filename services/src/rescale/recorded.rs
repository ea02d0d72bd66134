//! What earlier attempts at the same decision recorded, read back from the decision's steps.
//!
//! Flink keeps a savepoint operation's result only for `rest.async.store-duration` (5 minutes by
//! default). A retry after that cannot ask Flink which savepoint its stop produced; the steps the
//! earlier attempt recorded (`savepoint_triggered`, `savepoint_completed`) still say.

use serde_json::Value;

/// The stops and savepoints recorded on a decision, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Jobs an attempt stopped (or began to stop) with a savepoint.
    pub stopped: Vec<String>,
    /// Savepoints an attempt saw complete: (job id, location).
    pub savepoints: Vec<(String, String)>,
}

impl Recorded {
    /// Nothing recorded: a first attempt.
    pub fn none() -> Self {
        Self::default()
    }

    /// Reads a decision's `steps` (`[{"step": ..., "detail": {...}}, ...]`). Steps it does not know,
    /// and details without the fields it reads, are skipped.
    pub fn from_steps(steps: &Value) -> Self {
        let mut recorded = Self::default();
        for step in steps.as_array().into_iter().flatten() {
            let detail = &step["detail"];
            let Some(job_id) = detail["job_id"].as_str() else {
                continue;
            };
            match step["step"].as_str() {
                Some("savepoint_triggered" | "savepoint_resumed") => {
                    recorded.stopped.push(job_id.to_owned());
                }
                Some("savepoint_completed" | "savepoint_recovered") => {
                    if let Some(location) = detail["location"].as_str() {
                        recorded.stopped.push(job_id.to_owned());
                        recorded
                            .savepoints
                            .push((job_id.to_owned(), location.to_owned()));
                    }
                }
                _ => {}
            }
        }
        recorded
    }

    /// The newest savepoint recorded for `job_id`.
    pub(super) fn savepoint_of(&self, job_id: &str) -> Option<&str> {
        self.savepoints
            .iter()
            .rev()
            .find(|(job, _)| job == job_id)
            .map(|(_, location)| location.as_str())
    }

    /// The job an attempt stopped last.
    pub(super) fn last_stopped(&self) -> Option<&str> {
        self.stopped.last().map(String::as_str)
    }

    pub(super) fn stopped(&self, job_id: &str) -> bool {
        self.stopped.iter().any(|j| j == job_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stops_and_savepoints_are_read_from_the_steps_in_order() {
        let steps = json!([
            {"at": "t0", "step": "synced", "detail": {}},
            {"at": "t1", "step": "job_found", "detail": {"job_id": "a"}},
            {"at": "t2", "step": "savepoint_triggered", "detail": {"job_id": "a", "trigger_id": "x"}},
            {"at": "t3", "step": "savepoint_completed", "detail": {"job_id": "a", "location": "file:/sp-a"}},
            {"at": "t4", "step": "savepoint_triggered", "detail": {"job_id": "b"}},
            {"at": "t5", "step": "savepoint_completed", "detail": {"job_id": "b"}},
        ]);
        let r = Recorded::from_steps(&steps);
        assert_eq!(r.stopped, ["a", "a", "b"]);
        assert_eq!(r.savepoint_of("a"), Some("file:/sp-a"));
        assert_eq!(r.savepoint_of("b"), None);
        assert_eq!(r.last_stopped(), Some("b"));
        assert!(r.stopped("b") && !r.stopped("c"));
        assert_eq!(
            Recorded::from_steps(&json!({"not": "a list"})),
            Recorded::none()
        );
    }
}
