//! Apps: predictor plugins (world `lab:api/predictor`) served online.
//!
//! A deployed app is a bounded queue in front of a warm pool of instances.
//! Each instance is a job (experiment `apps`, metadata `{"app", "instance"}`)
//! that loaded the predictor once and answers one request at a time, so the
//! app's concurrency is its instance count; a request that finds the queue
//! full is refused at once ([`PredictError::Overloaded`], HTTP 429). An
//! instance that traps or exceeds the per-request timeout ends (its job
//! record says why) and its supervisor starts a replacement; queued
//! requests wait for it, none is dropped. Undeploying closes the queue: the
//! requests already in it are answered, then every instance ends COMPLETE.
//!
//! Async predictions ([`App::submit`]) go through the same queue; their
//! results are kept in memory (the latest [`MAX_RESULTS`]) for
//! [`App::result`].

pub mod serving;
pub mod stats;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use crate::{Host, JobSpec, Plugin, Sandbox};
use serving::{Request, Serving};
use stats::{Outcome, Stats, StatsView};

/// Instances an app may have.
pub const MAX_INSTANCES: usize = 64;
/// Requests an app's queue may hold.
pub const MAX_QUEUE: usize = 100_000;
/// Async results kept per app (the oldest finished ones are forgotten).
pub const MAX_RESULTS: usize = 10_000;
/// An instance's job time limit: as long as the app is deployed.
const INSTANCE_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// The experiment instance jobs are recorded in.
pub const EXPERIMENT: &str = "apps";

/// Why a prediction got no outputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PredictError {
    #[error("app `{app}` is at capacity: its queue of {queue} requests is full")]
    Overloaded { app: String, queue: usize },
    #[error(
        "the prediction took longer than the app's timeout of {0}; its instance is being replaced"
    )]
    Timeout(String),
    #[error("the predictor failed: {0}")]
    Failed(String),
    #[error("the predictor crashed ({0}); its instance is being replaced")]
    Crashed(String),
    #[error("app `{0}` is not deployed")]
    Undeployed(String),
}

/// What to deploy.
#[derive(Clone)]
pub struct AppSpec {
    pub name: String,
    pub plugin: Arc<Plugin>,
    pub config: Map<String, Value>,
    /// Grants (models above all) and limits of every instance; the time
    /// limit is replaced by the app's lifetime.
    pub sandbox: Sandbox,
    pub instances: usize,
    pub queue: usize,
    /// Per request.
    pub timeout: Duration,
}

/// One instance slot, as the API shows it.
#[derive(Debug, Clone, Serialize, Default)]
pub struct InstanceView {
    /// The job serving now (or the last one).
    pub job: Option<String>,
    /// `starting`, `ready` or `restarting`.
    pub state: String,
    /// Replacements started so far.
    pub restarts: u64,
    /// Why the last instance ended, if it did.
    pub last_end: Option<String>,
}

/// An app as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AppView {
    pub name: String,
    pub plugin: String,
    pub plugin_path: String,
    pub plugin_digest: String,
    pub models: Vec<String>,
    pub instances: usize,
    pub queue: usize,
    pub timeout_ms: u64,
    pub deployed_at: DateTime<Utc>,
    /// Requests waiting now.
    pub queued: usize,
    /// Requests being predicted now (at most `instances`).
    pub serving: usize,
    pub stats: StatsView,
    pub pool: Vec<InstanceView>,
}

/// The state of an async prediction.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum AsyncResult {
    Pending,
    Done { outputs: Vec<Value> },
    Failed { error: String },
}

/// A deployed app (cheap to clone).
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    spec: AppSpec,
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    stats: Arc<Mutex<Stats>>,
    busy: Arc<std::sync::atomic::AtomicUsize>,
    deployed: (Instant, DateTime<Utc>),
    pool: Mutex<Vec<InstanceView>>,
    supervisors: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    results: Mutex<(HashMap<String, AsyncResult>, VecDeque<String>)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl App {
    /// Check `spec` and start its instances (each loads the predictor in
    /// the background; requests queue meanwhile). Must be called within a
    /// tokio runtime.
    pub fn deploy(host: &Host, mut spec: AppSpec) -> anyhow::Result<App> {
        crate::names::check_name("app", &spec.name).map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            spec.plugin.is_predictor(),
            "{} is not a predictor (world lab:api/predictor exports load and predict); plugins run as jobs",
            spec.plugin.path.display()
        );
        anyhow::ensure!(
            (1..=MAX_INSTANCES).contains(&spec.instances),
            "instances must be 1 to {MAX_INSTANCES}, not {}",
            spec.instances
        );
        anyhow::ensure!(
            (1..=MAX_QUEUE).contains(&spec.queue),
            "queue must be 1 to {MAX_QUEUE}, not {}",
            spec.queue
        );
        anyhow::ensure!(!spec.timeout.is_zero(), "timeout must be more than 0");
        spec.sandbox.limits.timeout = INSTANCE_LIFETIME;
        // What a job would check at its start, checked once here: a bad
        // config or grant is an error for the deployer, not a restart loop.
        crate::launch::check_spec(host.workspace(), &instance_spec(&spec, 0, None))?;
        let (tx, rx) = mpsc::channel(spec.queue);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let instances = spec.instances;
        let app = App {
            inner: Arc::new(Inner {
                spec,
                tx: Mutex::new(Some(tx)),
                stats: Arc::default(),
                busy: Arc::default(),
                deployed: (Instant::now(), Utc::now()),
                pool: Mutex::new(vec![InstanceView::default(); instances]),
                supervisors: Mutex::default(),
                results: Mutex::default(),
            }),
        };
        let handles = (0..instances)
            .map(|slot| tokio::spawn(supervise(host.clone(), app.clone(), slot, rx.clone())))
            .collect();
        *lock(&app.inner.supervisors) = handles;
        Ok(app)
    }

    /// Wait until every instance has loaded; the error is why one ended
    /// before it did (its `load` failed, it trapped, its model is bad).
    pub async fn wait_ready(&self, within: Duration) -> Result<(), String> {
        let until = Instant::now() + within;
        loop {
            {
                let pool = lock(&self.inner.pool);
                if pool.iter().all(|v| v.state == "ready") {
                    return Ok(());
                }
                if let Some(v) = pool.iter().find(|v| v.last_end.is_some()) {
                    return Err(v.last_end.clone().unwrap_or_default());
                }
            }
            if Instant::now() >= until {
                return Err(format!(
                    "its instances did not load within {}",
                    crate::units::human_duration(within)
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.spec.name
    }

    fn enqueue(
        &self,
        inputs: Vec<String>,
    ) -> Result<oneshot::Receiver<Result<Vec<String>, PredictError>>, PredictError> {
        let (reply, rx) = oneshot::channel();
        let tx = lock(&self.inner.tx).clone();
        let Some(tx) = tx else {
            return Err(PredictError::Undeployed(self.name().into()));
        };
        match tx.try_send(Request { inputs, reply }) {
            Ok(()) => Ok(rx),
            Err(mpsc::error::TrySendError::Full(_)) => {
                let now = Instant::now();
                lock(&self.inner.stats).record(Outcome::Rejected, Duration::ZERO, 0, now);
                Err(PredictError::Overloaded {
                    app: self.name().into(),
                    queue: self.inner.spec.queue,
                })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Err(PredictError::Undeployed(self.name().into()))
            }
        }
    }

    /// Predict a batch (each input a JSON text) and wait for the outputs.
    pub async fn predict(&self, inputs: Vec<String>) -> Result<Vec<String>, PredictError> {
        let rx = self.enqueue(inputs)?;
        rx.await
            .unwrap_or_else(|_| Err(PredictError::Undeployed(self.name().into())))
    }

    /// Queue a batch and return its id at once; [`App::result`] has the
    /// outputs when they are ready.
    pub fn submit(&self, inputs: Vec<String>) -> Result<String, PredictError> {
        let rx = self.enqueue(inputs)?;
        let id = new_id();
        {
            let mut results = lock(&self.inner.results);
            let (map, order) = &mut *results;
            while order.len() >= MAX_RESULTS {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
            map.insert(id.clone(), AsyncResult::Pending);
            order.push_back(id.clone());
        }
        let app = self.clone();
        let key = id.clone();
        tokio::spawn(async move {
            let r = rx
                .await
                .unwrap_or_else(|_| Err(PredictError::Undeployed(app.name().into())));
            let state = match r {
                Ok(outputs) => AsyncResult::Done {
                    outputs: outputs.iter().map(|o| parse_json(o)).collect(),
                },
                Err(e) => AsyncResult::Failed {
                    error: e.to_string(),
                },
            };
            if let Some(slot) = lock(&app.inner.results).0.get_mut(&key) {
                *slot = state;
            }
        });
        Ok(id)
    }

    /// An async prediction's state; `None` for an unknown (or forgotten) id.
    pub fn result(&self, id: &str) -> Option<AsyncResult> {
        lock(&self.inner.results).0.get(id).cloned()
    }

    pub fn view(&self) -> AppView {
        let s = &self.inner.spec;
        let queued = lock(&self.inner.tx)
            .as_ref()
            .map_or(0, |tx| tx.max_capacity() - tx.capacity());
        AppView {
            name: s.name.clone(),
            plugin: s.plugin.info.name.clone(),
            plugin_path: s.plugin.path.display().to_string(),
            plugin_digest: s.plugin.digest.clone(),
            models: s.sandbox.grants.models.clone(),
            instances: s.instances,
            queue: s.queue,
            timeout_ms: s.timeout.as_millis() as u64,
            deployed_at: self.inner.deployed.1,
            queued,
            serving: self.inner.busy.load(std::sync::atomic::Ordering::SeqCst),
            stats: lock(&self.inner.stats).view(Instant::now(), self.inner.deployed.0),
            pool: lock(&self.inner.pool).clone(),
        }
    }

    /// Close the queue, answer what is in it, and wait for every instance
    /// to end.
    pub async fn undeploy(&self) {
        lock(&self.inner.tx).take();
        let handles = std::mem::take(&mut *lock(&self.inner.supervisors));
        for h in handles {
            let _ = h.await;
        }
    }

    fn stopped(&self) -> bool {
        lock(&self.inner.tx).is_none()
    }
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// A random id for an async prediction (128 bits, hex).
fn new_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random source");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn instance_spec(spec: &AppSpec, slot: usize, serving: Option<Arc<Serving>>) -> JobSpec {
    let mut j = JobSpec::new(spec.plugin.clone());
    j.experiment = EXPERIMENT.into();
    j.config = spec.config.clone();
    j.sandbox = spec.sandbox.clone();
    j.metadata = serde_json::json!({"app": spec.name, "instance": slot})
        .as_object()
        .cloned()
        .unwrap_or_default();
    j.serving = serving;
    j
}

/// Keep instance `slot` of `app` running until the app is undeployed.
async fn supervise(
    host: Host,
    app: App,
    slot: usize,
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Request>>>,
) {
    let spec = app.inner.spec.clone();
    let mut backoff = Duration::from_millis(100);
    loop {
        let ready_app = app.clone();
        let serving = Arc::new(Serving::new(
            queue.clone(),
            app.inner.stats.clone(),
            app.inner.busy.clone(),
            spec.timeout,
            Box::new(move || lock(&ready_app.inner.pool)[slot].state = "ready".into()),
        ));
        let started = Instant::now();
        let set = |f: &dyn Fn(&mut InstanceView)| f(&mut lock(&app.inner.pool)[slot]);
        // Before the start: the instance may load (and say so) at once.
        set(&|v| v.state = "starting".into());
        let ended = match host.start(instance_spec(&spec, slot, Some(serving.clone()))) {
            Ok(handle) => {
                let id = handle.id.clone();
                set(&|v| v.job = Some(id.clone()));
                match handle.wait().await {
                    Ok(rec) => format!(
                        "job {} ended {}: {}",
                        rec.id,
                        rec.status,
                        rec.message.unwrap_or_default()
                    ),
                    Err(e) => format!("job {id}: {e:#}"),
                }
            }
            Err(e) => format!("could not start: {e:#}"),
        };
        if app.stopped() {
            set(&|v| {
                v.state = "stopped".into();
                v.last_end = Some(ended.clone());
            });
            return;
        }
        set(&|v| {
            v.state = "restarting".into();
            v.restarts += 1;
            v.last_end = Some(ended.clone());
        });
        // An instance that served or lived a while is replaced at once; one
        // that keeps failing at start waits longer each time (at most 5 s).
        if serving.answered.load(std::sync::atomic::Ordering::SeqCst) > 0
            || started.elapsed() > Duration::from_secs(10)
        {
            backoff = Duration::from_millis(100);
        } else {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            if app.stopped() {
                set(&|v| v.state = "stopped".into());
                return;
            }
        }
    }
}
