//! A contract-faithful Flink REST API test server for rescaling (docs/reference/external-apis.md §5):
//! `GET /jobs/overview`, `GET /jobs/{jobid}`, `GET /jobs/{jobid}/status`, `POST /jobs/{jobid}/stop`
//! (asynchronous, idempotent for a client-chosen `triggerId`), `GET /jobs/{jobid}/savepoints/{triggerid}`,
//! `POST /jars/{jarid}/run`, `GET|PUT /jobs/{jobid}/resource-requirements` (adaptive scheduler only),
//! and the disabled `PATCH /jobs/{jobid}/rescaling` (503). Errors are `{"errors": [...]}`; unknown ids
//! are 404, malformed ids and bodies 400.
//!
//! Time is counted in polls: a savepoint completes, a submitted job leaves INITIALIZING and an adaptive
//! rescale takes effect after a configurable number of reads.

mod cluster;
mod errors;
mod routes;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use cluster::{Jar, Job};
pub use cluster::{JobInfo, JobState, MAX_PARALLELISM};

use crate::serve::Running;

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
    next_id: u64,
    /// A fake clock in milliseconds, advanced on every id handed out so start times are ordered.
    clock: i64,
    pub(crate) polls_to_complete: u32,
    pub(crate) fail_next_savepoint: Option<String>,
    pub(crate) fail_next_submission: Option<(u16, String)>,
    pub(crate) adaptive: bool,
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

    pub(crate) fn now(&mut self) -> i64 {
        self.clock += 1000;
        self.clock
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
                next_id: 0,
                clock: 1_700_000_000_000,
                polls_to_complete: 1,
                fail_next_savepoint: None,
                fail_next_submission: None,
                adaptive: false,
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

    /// Starts a job from a jar, RUNNING at once, every vertex at `parallelism`; returns its job id.
    /// The jar's program names its jobs `name` from now on, resubmissions included.
    pub fn start_job(&self, name: &str, jar_id: &str, parallelism: u32) -> String {
        let mut state = self.shared.lock();
        match state.jars.get_mut(jar_id) {
            Some(jar) => jar.program_name = Some(name.to_owned()),
            None => panic!("flink test server: no jar {jar_id:?}"),
        }
        let jid = state.new_id();
        let at = state.now();
        let job = Job::new(
            jid.clone(),
            name.to_owned(),
            jar_id.to_owned(),
            parallelism,
            at,
        );
        state.jobs.insert(jid.clone(), job);
        jid
    }

    /// The next stop-with-savepoint completes with a `failure-cause` carrying `cause`; the job keeps
    /// running, as it does in Flink when the savepoint fails.
    pub fn fail_next_savepoint(&self, cause: &str) {
        self.shared.lock().fail_next_savepoint = Some(cause.to_owned());
    }

    /// The next `POST /jars/{jarid}/run` answers `status` with `{"errors": [message]}` and starts nothing.
    pub fn fail_next_submission(&self, status: u16, message: &str) {
        self.shared.lock().fail_next_submission = Some((status, message.to_owned()));
    }

    /// Savepoint operations answer IN_PROGRESS to the first `n` polls, then COMPLETED (default 1).
    /// Submitted jobs stay INITIALIZING for `n` reads, and adaptive rescales take `n` reads.
    pub fn set_polls_to_complete(&self, n: u32) {
        self.shared.lock().polls_to_complete = n;
    }

    /// Runs jobs with `jobmanager.scheduler: adaptive`, which enables the resource-requirements API.
    pub fn enable_adaptive_scheduler(&self) {
        self.shared.lock().adaptive = true;
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

    /// The RUNNING or INITIALIZING jobs named `name`.
    pub fn live_jobs(&self, name: &str) -> Vec<JobInfo> {
        self.jobs()
            .into_iter()
            .filter(|j| j.name == name && j.state != JobState::Finished)
            .collect()
    }

    /// Every accepted-for-parsing stop request body, in arrival order.
    pub fn stop_requests(&self) -> Vec<Value> {
        self.shared.lock().stop_requests.clone()
    }

    /// How many distinct savepoint operations were triggered, over all jobs.
    pub fn savepoint_operations(&self) -> usize {
        self.shared
            .lock()
            .jobs
            .values()
            .map(|j| j.savepoints.len())
            .sum()
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
