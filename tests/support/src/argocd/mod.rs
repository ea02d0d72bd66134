//! A contract-faithful Argo CD API test server (docs/reference/external-apis.md §1.1–1.4, §6):
//! bearer authentication, `GET /api/v1/applications/{name}` (with `?refresh=`) and
//! `POST /api/v1/applications/{name}/sync`, grpc-gateway error shapes, and a simulated controller
//! that runs each sync operation to completion over a configurable number of GETs.
//!
//! Applications deploy from bare Git repositories on disk: revisions are resolved with
//! `git rev-parse` at request time, so a push by the code under test is visible to the next sync.

mod app;
mod errors;
mod operation;
mod routes;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

pub use app::App;
use app::{AppRecord, Applied};

use crate::git;
use crate::serve::Running;

/// Called with (application name, applied commit SHA) each time a non-dry-run operation succeeds.
/// It runs on the server's request task after the state lock is released, so it may call back into
/// the server; keep it quick or spawn.
pub type AppliedCallback = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// A running Argo CD test server. Clones share state; the server stops when the last clone is
/// dropped or on [`ArgoCdServer::shutdown`].
#[derive(Clone)]
pub struct ArgoCdServer {
    shared: Arc<Shared>,
    running: Running,
}

pub(crate) struct Shared {
    token: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    apps: BTreeMap<String, AppRecord>,
    on_applied: Vec<AppliedCallback>,
    next_uid: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("argocd test server state poisoned by a panicking test")
    }

    /// Runs the `on_applied` callbacks outside the lock.
    fn notify(&self, applied: Vec<Applied>) {
        if applied.is_empty() {
            return;
        }
        let callbacks = self.lock().on_applied.clone();
        for a in &applied {
            for callback in &callbacks {
                callback(&a.app, &a.revision);
            }
        }
    }
}

impl ArgoCdServer {
    /// Binds 127.0.0.1 on a free port; every API call must carry `Authorization: Bearer <token>`.
    pub async fn start(token: &str) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            state: Mutex::new(State::default()),
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

    /// Adds (or replaces) an application. It starts Synced and Healthy at the commit its
    /// `target_revision` resolves to now (`Unknown` with a ComparisonError if it does not resolve).
    pub fn add_application(&self, app: App) {
        let deployed = git::rev_parse(&app.repo, &app.target_revision);
        let mut state = self.shared.lock();
        state.next_uid += 1;
        let uid = format!("00000000-0000-4000-8000-{:012x}", state.next_uid);
        let name = app.name.clone();
        state.apps.insert(name, AppRecord::new(app, uid, deployed));
    }

    /// An operation completes on the `n`-th GET of the app after it started (default 2: the first
    /// GET shows phase Running, the second Succeeded/Failed). With 0 it completes right after the
    /// response that started it.
    pub fn set_polls_to_complete(&self, name: &str, n: u32) {
        self.with_app(name, |rec| rec.gets_to_complete = n);
    }

    /// While closed, syncs get 403 code 7 "cannot sync: blocked by sync window" and refreshes start no automated sync.
    pub fn set_sync_window_closed(&self, name: &str, closed: bool) {
        self.with_app(name, |rec| rec.sync_window_closed = closed);
    }

    /// Someone else (user "admin") starts a sync of the deployed revision; ours gets 400 code 9
    /// until it completes after the configured number of GETs. No-op if an operation is already running.
    pub fn start_foreign_operation(&self, name: &str) {
        self.with_app(name, |rec| {
            rec.set_foreign_operation();
        });
    }

    /// The next operation to complete ends in phase Failed with `message`, health Degraded.
    pub fn fail_next_operation(&self, name: &str, message: &str) {
        let message = message.to_owned();
        self.with_app(name, |rec| rec.fail_next = Some(message));
    }

    /// Every sync request body received for this app that passed authentication and the project
    /// guard, including refused ones, in arrival order (an empty body is recorded as `{}`).
    pub fn sync_requests(&self, name: &str) -> Vec<Value> {
        self.with_app(name, |rec| rec.sync_requests.clone())
    }

    /// The commit the cluster runs: resolved when the app was added, then moved by each successful
    /// non-dry-run operation.
    pub fn applied_revision(&self, name: &str) -> Option<String> {
        self.with_app(name, |rec| rec.deployed_revision.clone())
    }

    /// Whether `.operation` is set (queued or running).
    pub fn operation_in_progress(&self, name: &str) -> bool {
        self.with_app(name, |rec| rec.operation_in_progress())
    }

    /// The Application JSON as a GET would return it, without counting as a GET.
    pub fn application(&self, name: &str) -> Value {
        self.with_app(name, |rec| rec.to_json())
    }

    /// Registers a callback for each successful operation (see [`AppliedCallback`]).
    pub fn on_applied(&self, callback: AppliedCallback) {
        self.shared.lock().on_applied.push(callback);
    }

    /// Panics on an unknown app: a control call naming no app is a bug in the test.
    fn with_app<T>(&self, name: &str, f: impl FnOnce(&mut AppRecord) -> T) -> T {
        let mut state = self.shared.lock();
        match state.apps.get_mut(name) {
            Some(rec) => f(rec),
            None => panic!("argocd test server: no application named {name:?}"),
        }
    }
}
