//! What `GET /status` reports, shared between the consumer thread, the supervisor and the HTTP server.

use std::sync::Mutex;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Starting,
    Running,
    Rescaling,
    Draining,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct AssignedPartition {
    pub topic: String,
    pub partition: i32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub pipeline: String,
    pub instance_id: String,
    pub state: State,
    pub parallelism: usize,
    pub sink_parallelism: usize,
    pub in_flight_per_sink: usize,
    pub assigned_partitions: Vec<AssignedPartition>,
}

pub struct StatusBoard(Mutex<Status>);

impl StatusBoard {
    pub fn new(status: Status) -> Self {
        Self(Mutex::new(status))
    }

    pub fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    pub fn snapshot(&self) -> Status {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
