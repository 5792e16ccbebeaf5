//! Inside one app instance: the job's thread runs the predictor's `load`,
//! then answers requests from the app's queue one at a time until the app
//! is undeployed (the queue closes). A request that takes longer than the
//! app's timeout is stopped (the epoch check for a computing guest, the
//! dropped call for a waiting one) and ends the instance, as a trap does:
//! a predictor interrupted mid-call is not used again. The app's
//! supervisor (`super::supervise`) starts a replacement; the other requests
//! wait in the queue meanwhile, none is dropped.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use wasmtime::Store;

use super::stats::{Outcome, Stats};
use super::PredictError;
use crate::bindings::predictor::Predictor;
use crate::state::HostState;
use crate::store::JobStatus;

/// A request in the app's queue.
pub(crate) struct Request {
    pub inputs: Vec<String>,
    pub reply: oneshot::Sender<Result<Vec<String>, PredictError>>,
}

/// What one instance's job needs to serve (see [`crate::JobSpec`]).
pub struct Serving {
    pub(crate) queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Request>>>,
    pub(crate) stats: Arc<Mutex<Stats>>,
    /// Instances of the app inside `predict` now.
    pub(crate) busy: Arc<std::sync::atomic::AtomicUsize>,
    pub(crate) timeout: Duration,
    /// When the request in progress must end (none between requests).
    deadline: Mutex<Option<Instant>>,
    /// Requests this instance answered.
    pub(crate) answered: std::sync::atomic::AtomicU64,
    /// Called once `load` returned.
    on_ready: Box<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serving")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Serving {
    pub(crate) fn new(
        queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Request>>>,
        stats: Arc<Mutex<Stats>>,
        busy: Arc<std::sync::atomic::AtomicUsize>,
        timeout: Duration,
        on_ready: Box<dyn Fn() + Send + Sync>,
    ) -> Self {
        Serving {
            queue,
            stats,
            busy,
            timeout,
            deadline: Mutex::new(None),
            answered: Default::default(),
            on_ready,
        }
    }

    /// Whether the request in progress is past its deadline (checked by the
    /// job's epoch callback while the guest computes).
    pub(crate) fn overdue(&self, now: Instant) -> bool {
        self.deadline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|d| now >= d)
    }

    pub(crate) fn timeout_text(&self) -> String {
        format!(
            "a prediction took longer than the app's timeout of {}",
            crate::units::human_duration(self.timeout)
        )
    }

    fn set_deadline(&self, d: Option<Instant>) {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) = d;
    }

    fn record(&self, outcome: Outcome, started: Instant, batch: usize) {
        let now = Instant::now();
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).record(
            outcome,
            now - started,
            batch,
            now,
        );
    }
}

/// Load the predictor, then serve until the queue closes. Returns as a
/// plugin's `run` does: `Ok(Ok)` when undeployed (the job then ends
/// COMPLETE), `Ok(Err)` when `load` failed, `Err` for a trap or a timeout.
pub(crate) async fn serve(
    predictor: &Predictor,
    store: &mut Store<HostState>,
    serving: &Serving,
) -> wasmtime::Result<Result<(), String>> {
    if let Err(m) = predictor.call_load(&mut *store).await? {
        return Ok(Err(format!("load failed: {m}")));
    }
    (serving.on_ready)();
    loop {
        let next = serving.queue.lock().await.recv().await;
        let Some(req) = next else {
            let answered = serving.answered.load(std::sync::atomic::Ordering::SeqCst);
            if let Some(job) = store.data_mut().job.as_mut() {
                job.outcome.get_or_insert((
                    JobStatus::Complete,
                    format!(
                        "undeployed after answering {answered} request{}",
                        if answered == 1 { "" } else { "s" }
                    ),
                ));
            }
            return Ok(Ok(()));
        };
        if req.reply.is_closed() {
            continue; // the client went away while it waited
        }
        let started = Instant::now();
        let batch = req.inputs.len();
        serving.set_deadline(Some(started + serving.timeout));
        serving
            .busy
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let call = tokio::time::timeout(
            serving.timeout,
            predictor.call_predict(&mut *store, &req.inputs),
        )
        .await;
        serving
            .busy
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        serving.set_deadline(None);
        serving
            .answered
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match call {
            Ok(Ok(Ok(outputs))) if outputs.len() == batch => {
                serving.record(Outcome::Ok, started, batch);
                let _ = req.reply.send(Ok(outputs));
            }
            Ok(Ok(Ok(outputs))) => {
                serving.record(Outcome::Failed, started, batch);
                let _ = req.reply.send(Err(PredictError::Failed(format!(
                    "the predictor returned {} outputs for {batch} inputs",
                    outputs.len()
                ))));
            }
            Ok(Ok(Err(m))) => {
                serving.record(Outcome::Failed, started, batch);
                let _ = req.reply.send(Err(PredictError::Failed(m)));
            }
            Ok(Err(trap)) => {
                let cause = crate::engine::root_cause(&trap);
                let timed_out = cause.contains(&serving.timeout_text());
                if timed_out {
                    serving.record(Outcome::Timeout, started, batch);
                    let _ =
                        req.reply
                            .send(Err(PredictError::Timeout(crate::units::human_duration(
                                serving.timeout,
                            ))));
                } else {
                    serving.record(Outcome::Crashed, started, batch);
                    let _ = req.reply.send(Err(PredictError::Crashed(cause)));
                }
                return Err(trap);
            }
            Err(_) => {
                serving.record(Outcome::Timeout, started, batch);
                let _ = req
                    .reply
                    .send(Err(PredictError::Timeout(crate::units::human_duration(
                        serving.timeout,
                    ))));
                return Err(wasmtime::Error::msg(serving.timeout_text()));
            }
        }
    }
}
