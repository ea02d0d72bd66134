//! A Flink REST API test server for rescaling, faithful to what a real Flink 2.3 answers (the contract
//! tests in `tests/flink_contract/` run the same checks against both). It exists for what a real Flink cannot be made to show on demand: a savepoint
//! that fails, a submission that fails with a chosen status, a program that pins its parallelism,
//! exact control of timing.
//!
//! Endpoints: `GET /overview`, `GET /jobmanager/config`, `GET /jobs/overview`, `GET /jobs/{jobid}`
//! (from a cache that can lag, like Flink's), `GET /jobs/{jobid}/status`, `GET
//! /jobs/{jobid}/checkpoints`, `POST /jobs/{jobid}/stop` (asynchronous, idempotent for a client-chosen
//! `triggerId` while Flink keeps the result), `GET /jobs/{jobid}/savepoints/{triggerid}`, `POST
//! /jars/{jarid}/run`, `GET|PUT /jobs/{jobid}/resource-requirements` (adaptive scheduler only), and
//! the disabled `PATCH /jobs/{jobid}/rescaling` (503). Error bodies have Flink's shapes (see
//! `errors.rs`).
//!
//! Time is counted in polls: a savepoint completes, a submitted job's subtasks start and an adaptive
//! rescale takes effect after a configurable number of reads. Operation results expire, the
//! adaptive scheduler's cooldown passes and cached details age by the clock.

mod cluster;
mod errors;
mod operations;
mod requirements;
mod routes;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

use cluster::{Jar, Job};
pub use cluster::{JobInfo, JobState, MAX_PARALLELISM};
use operations::SavepointOp;

use crate::serve::Running;

/// The configuration key of the adaptive scheduler's cooldown.
pub const COOLDOWN_KEY: &str = "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling";
/// How long Flink keeps an asynchronous operation's result by default (`rest.async.store-duration`).
pub const DEFAULT_STORE_DURATION: Duration = Duration::from_secs(300);

/// A running Flink REST test server. Clones share state; the server stops when the last clone is
/// dropped or on [`FlinkServer::shutdown`].
#[derive(Clone)]
pub struct FlinkServer {
    shared: Arc<Shared>,
    running: Running,
}

pub(crate) struct Shared {
    state: Mutex<State>,
}

pub(crate) struct State {
    pub(crate) jars: BTreeMap<String, Jar>,
    pub(crate) jobs: BTreeMap<String, Job>,
    /// Savepoint operations by (job id, trigger id), as Flink's operation cache keys them; also
    /// for jobs it does not know.
    pub(crate) operations: BTreeMap<(String, String), SavepointOp>,
    /// Every savepoint a stop wrote: a run may restore from these only.
    pub(crate) savepoints: BTreeSet<String>,
    next_id: u64,
    /// The last time handed out, in ms.
    clock: i64,
    pub(crate) polls_to_complete: u32,
    pub(crate) fail_next_savepoint: Option<String>,
    pub(crate) cancel_before_next_stop: bool,
    pub(crate) fail_next_submission: Option<(u16, String)>,
    pub(crate) adaptive: bool,
    pub(crate) slots_total: u32,
    pub(crate) cooldown: Duration,
    pub(crate) store_duration: Duration,
    pub(crate) details_cache: Duration,
    pub(crate) requirements_update_time: Duration,
    pub(crate) conf: BTreeMap<String, String>,
    pub(crate) stop_requests: Vec<Value>,
    pub(crate) submissions: Vec<Value>,
    pub(crate) requirement_updates: Vec<Value>,
    pub(crate) rescaling_calls: u32,
}

impl State {
    /// A fresh 32-hex id; distinct from every other id this server hands out.
    pub(crate) fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{:016x}{:016x}", 0x5eed_f11c_0000_0000_u64, self.next_id)
    }

    /// The wall clock in ms, strictly increasing from call to call so start times are ordered.
    pub(crate) fn now(&mut self) -> i64 {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        self.clock = wall.max(self.clock + 1);
        self.clock
    }

    /// Slots no live job holds.
    pub(crate) fn free_slots(&self) -> u32 {
        let held: u32 = self.jobs.values().map(Job::slots).sum();
        self.slots_total.saturating_sub(held)
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("flink test server state poisoned by a panicking test")
    }
}

impl FlinkServer {
    /// Binds 127.0.0.1 on a free port. Flink's REST API has no authentication of its own.
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                jars: BTreeMap::new(),
                jobs: BTreeMap::new(),
                operations: BTreeMap::new(),
                savepoints: BTreeSet::new(),
                next_id: 0,
                clock: 0,
                polls_to_complete: 1,
                fail_next_savepoint: None,
                cancel_before_next_stop: false,
                fail_next_submission: None,
                adaptive: false,
                slots_total: 64,
                cooldown: Duration::ZERO,
                store_duration: DEFAULT_STORE_DURATION,
                details_cache: Duration::ZERO,
                requirements_update_time: Duration::ZERO,
                conf: BTreeMap::from([
                    ("jobmanager.scheduler".to_owned(), "default".to_owned()),
                    (COOLDOWN_KEY.to_owned(), "0 ms".to_owned()),
                ]),
                stop_requests: Vec::new(),
                submissions: Vec::new(),
                requirement_updates: Vec::new(),
                rescaling_calls: 0,
            }),
        });
        let running = Running::spawn(|_| routes::router(shared.clone())).await?;
        Ok(Self { shared, running })
    }

    /// e.g. `http://127.0.0.1:41234`
    pub fn url(&self) -> String {
        self.running.url()
    }

    /// Stops serving (for every clone).
    pub fn shutdown(&self) {
        self.running.shutdown();
    }

    /// Uploads a jar; returns its id as `POST /jars/upload` would (`<uuid>_<file name>`).
    pub fn add_jar(&self, file_name: &str) -> String {
        let mut state = self.shared.lock();
        let id = format!("{}_{file_name}", uuid_like(&state.new_id()));
        state.jars.insert(
            id.clone(),
            Jar {
                program_name: None,
                pinned_parallelism: None,
            },
        );
        id
    }

    /// The jar's program sets its own parallelism, so a submission's `parallelism` is ignored.
    pub fn pin_jar_parallelism(&self, jar_id: &str, parallelism: u32) {
        let mut state = self.shared.lock();
        match state.jars.get_mut(jar_id) {
            Some(jar) => jar.pinned_parallelism = Some(parallelism),
            None => panic!("flink test server: no jar {jar_id:?}"),
        }
    }

    /// Starts a job from a jar, every subtask RUNNING at once, every vertex at `parallelism`;
    /// returns its job id. The jar's program names its jobs `name` from now on, resubmissions
    /// included.
    pub fn start_job(&self, name: &str, jar_id: &str, parallelism: u32) -> String {
        let mut state = self.shared.lock();
        match state.jars.get_mut(jar_id) {
            Some(jar) => jar.program_name = Some(name.to_owned()),
            None => panic!("flink test server: no jar {jar_id:?}"),
        }
        let jid = state.new_id();
        let at = state.now();
        let mut job = Job::new(
            jid.clone(),
            name.to_owned(),
            jar_id.to_owned(),
            parallelism,
            at,
        );
        job.adaptive = Some(state.adaptive);
        state.jobs.insert(jid.clone(), job);
        jid
    }

    /// The next stop-with-savepoint completes with a `failure-cause` whose stack trace starts with
    /// `CompletionException: <cause>`; the job keeps running, as it does in Flink.
    pub fn fail_next_savepoint(&self, cause: &str) {
        self.shared.lock().fail_next_savepoint = Some(cause.to_owned());
    }

    /// The job the next stop-with-savepoint names is cancelled just before the stop reaches it (a
    /// race with someone else), so the stop is accepted and its operation fails.
    pub fn cancel_before_next_stop(&self) {
        self.shared.lock().cancel_before_next_stop = true;
    }

    /// The next `POST /jars/{jarid}/run` fails with `status` and starts nothing: a 5xx carries
    /// `message` in Flink's server-side shape, a 4xx as a handler's exception.
    pub fn fail_next_submission(&self, status: u16, message: &str) {
        self.shared.lock().fail_next_submission = Some((status, message.to_owned()));
    }

    /// Savepoint operations answer IN_PROGRESS to the first `n` polls, then COMPLETED (default 1).
    /// Submitted jobs' subtasks initialize for `n` reads, and adaptive rescales take `n` reads.
    pub fn set_polls_to_complete(&self, n: u32) {
        self.shared.lock().polls_to_complete = n;
    }

    /// Runs jobs (those running now included) with `jobmanager.scheduler: adaptive`, which enables
    /// the resource-requirements API.
    pub fn enable_adaptive_scheduler(&self) {
        let mut state = self.shared.lock();
        state.adaptive = true;
        state
            .conf
            .insert("jobmanager.scheduler".to_owned(), "adaptive".to_owned());
        for job in state.jobs.values_mut().filter(|j| !j.state.ended()) {
            job.adaptive = Some(true);
        }
    }

    /// The cluster's task slots (default 64). The adaptive scheduler runs a job at what the free
    /// slots allow.
    pub fn set_slots(&self, total: u32) {
        self.shared.lock().slots_total = total;
    }

    /// The adaptive scheduler's cooldown after a (re)start or rescale (default 0; Flink's is 30 s),
    /// also shown in `GET /jobmanager/config`.
    pub fn set_cooldown(&self, cooldown: Duration) {
        let mut state = self.shared.lock();
        state.cooldown = cooldown;
        let shown = format!("{} ms", cooldown.as_millis());
        state.conf.insert(COOLDOWN_KEY.to_owned(), shown);
    }

    /// Any other configuration key `GET /jobmanager/config` shows.
    pub fn set_conf(&self, key: &str, value: &str) {
        self.shared
            .lock()
            .conf
            .insert(key.to_owned(), value.to_owned());
    }

    /// How long a completed operation's result is kept (`rest.async.store-duration`, default 5 min).
    pub fn set_operation_store_duration(&self, duration: Duration) {
        self.shared.lock().store_duration = duration;
    }

    /// How long `GET /jobs/{jobid}` answers from its cache (Flink: `web.refresh-interval`, 3 s;
    /// default here 0, always fresh).
    pub fn set_details_cache(&self, duration: Duration) {
        self.shared.lock().details_cache = duration;
    }

    /// How long a requirements update takes to persist; another one meanwhile gets a 409.
    pub fn set_requirements_update_time(&self, duration: Duration) {
        self.shared.lock().requirements_update_time = duration;
    }

    pub fn job(&self, jid: &str) -> Option<JobInfo> {
        self.shared.lock().jobs.get(jid).map(JobInfo::from)
    }

    /// Every job, oldest first.
    pub fn jobs(&self) -> Vec<JobInfo> {
        let state = self.shared.lock();
        let mut jobs: Vec<&Job> = state.jobs.values().collect();
        jobs.sort_by_key(|j| j.start_time);
        jobs.into_iter().map(JobInfo::from).collect()
    }

    /// The jobs named `name` that have not ended.
    pub fn live_jobs(&self, name: &str) -> Vec<JobInfo> {
        self.jobs()
            .into_iter()
            .filter(|j| j.name == name && !j.state.ended())
            .collect()
    }

    /// Every stop request body that parsed, in arrival order.
    pub fn stop_requests(&self) -> Vec<Value> {
        self.shared.lock().stop_requests.clone()
    }

    /// How many savepoint operations were registered, over all jobs (expired ones included).
    pub fn savepoint_operations(&self) -> usize {
        let state = self.shared.lock();
        state.operations.values().map(|op| op.generation).sum()
    }

    /// Every `jars/{jarid}/run` body that parsed, including refused ones, in arrival order.
    pub fn submissions(&self) -> Vec<Value> {
        self.shared.lock().submissions.clone()
    }

    /// Every accepted `PUT resource-requirements` body.
    pub fn requirement_updates(&self) -> Vec<Value> {
        self.shared.lock().requirement_updates.clone()
    }

    /// Calls to the disabled `PATCH /jobs/{jobid}/rescaling`; a client should make none.
    pub fn rescaling_calls(&self) -> u32 {
        self.shared.lock().rescaling_calls
    }
}

/// Formats 32 hex digits as a UUID, the prefix of uploaded jar ids.
fn uuid_like(hex: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
