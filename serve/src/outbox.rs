//! Webhooks out: the lifecycle events of jobs and pipeline runs
//! (`labhost::lifecycle_events`) POSTed to the URLs of `[[webhooks]]` in
//! `labhost.toml`, signed the Standard Webhooks way (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 over
//! id.timestamp.body>`, signed by [`crate::webhooks::sign_standard`]).
//!
//! - a watcher thread finds events in the workspace's records (the CLI's
//!   jobs too) and queues them durably in `<workspace>/outbox/`;
//! - one task per webhook delivers its queue in order: a 2xx removes the
//!   event; anything else (an error, a timeout, a redirect, which is never
//!   followed) is retried with exponential backoff, the attempt count and
//!   next try written down (a restart keeps them); after the last attempt
//!   the event moves to `outbox/<hook>/dead/` and the log says so;
//! - a webhook that hangs only delays its own queue;
//! - the signing key is read from its secret at each attempt (a rotated
//!   secret applies at once) and never logged; URLs are logged without
//!   their query.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use labhost::lifecycle_events::{backoff, AfterFailure, HookQueue, Outbox, PendingEvent, Watcher};
use labhost::settings::Settings;
use labhost::store::dirs;
use labhost::{Secrets, Workspace};
use tokio::sync::Notify;

use crate::webhooks::{sign_standard, standard_key};

/// How often the watcher looks at the workspace.
pub const TICK: Duration = Duration::from_millis(250);

/// One configured webhook, checked.
#[derive(Debug, Clone)]
struct Hook {
    url: String,
    /// The URL for logs: without its query or fragment.
    shown: String,
    /// The name of the secret holding the key.
    secret: String,
    max_attempts: u32,
    timeout: Duration,
}

/// Webhooks out, ready to start: settings checked, secrets resolved, the
/// outbox locked and its watcher opened.
pub struct WebhooksOut {
    ws: Workspace,
    hooks: Vec<Hook>,
    outbox: Arc<Outbox>,
    watcher: Watcher,
    _lock: std::fs::File,
}

impl WebhooksOut {
    /// `None` when no webhook is configured (or another server delivers
    /// this workspace's outbox). A webhook whose secret is missing or not a
    /// key is an error: the server does not start.
    pub fn prepare(ws: &Workspace) -> anyhow::Result<Option<WebhooksOut>> {
        let settings = Settings::load(ws.root())?;
        if settings.webhooks.is_empty() {
            return Ok(None);
        }
        let file = Settings::path(ws.root());
        let mut hooks = Vec::new();
        let mut queues = Vec::new();
        for (i, w) in settings.webhooks.iter().enumerate() {
            let at = || format!("{}: [[webhooks]] #{}", file.display(), i + 1);
            let url = w.parsed_url().with_context(at)?;
            let value = Secrets::resolve([&w.secret], |n| std::env::var(n).ok(), ws.root())
                .with_context(at)?;
            let value = value.get(&w.secret).expect("resolved");
            if standard_key(value).is_none() {
                return Err(anyhow::anyhow!(
                    "secret `{}` is not a Standard Webhooks key (whsec_<base64>)",
                    w.secret
                ))
                .with_context(at);
            }
            let mut shown = url.clone();
            shown.set_query(None);
            shown.set_fragment(None);
            hooks.push(Hook {
                url: w.url.clone(),
                shown: shown.to_string(),
                secret: w.secret.clone(),
                max_attempts: w.max_attempts(),
                timeout: w.timeout().with_context(at)?,
            });
            queues.push((w.url.clone(), w.event_types().with_context(at)?));
        }
        let dir = Outbox::dir(ws);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let Some(lock) = dirs::try_lock(&dir.join(".lock"))? else {
            eprintln!(
                "labhost serve: webhooks out: another labhost serve delivers {}; this one sends none",
                dir.display()
            );
            return Ok(None);
        };
        let outbox = Outbox::open(ws, &queues)?;
        for (path, url, n) in outbox.orphans() {
            eprintln!(
                "labhost serve: webhooks out: {n} undelivered events for {} (no longer configured) are kept in {}",
                labhost::text::for_terminal_line(url.split('?').next().unwrap_or_default()),
                path.display()
            );
        }
        let watcher = Watcher::open(ws, &outbox)?;
        Ok(Some(WebhooksOut {
            ws: ws.clone(),
            hooks,
            outbox: Arc::new(outbox),
            watcher,
            _lock: lock,
        }))
    }

    /// Start the watcher thread and one delivery task per webhook (within
    /// the server's tokio runtime).
    pub fn start(self) -> anyhow::Result<()> {
        let WebhooksOut {
            ws,
            hooks,
            outbox,
            mut watcher,
            _lock,
        } = self;
        let notifies: Vec<Arc<Notify>> = hooks.iter().map(|_| Arc::new(Notify::new())).collect();
        let shown: Vec<&str> = hooks.iter().map(|h| h.shown.as_str()).collect();
        eprintln!(
            "labhost serve: webhooks out to {} (outbox {})",
            shown.join(", "),
            outbox.path().display()
        );
        for (i, hook) in hooks.into_iter().enumerate() {
            let client = reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("labhost/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(hook.timeout.min(Duration::from_secs(10)))
                .timeout(hook.timeout)
                .build()
                .context("cannot create the webhooks' HTTP client")?;
            let queue = outbox.hooks()[i].clone();
            let notify = notifies[i].clone();
            let root = ws.root().to_owned();
            tokio::spawn(deliver(hook, queue, client, notify, root));
        }
        let ob = outbox.clone();
        std::thread::Builder::new()
            .name("labhost-webhooks-watch".into())
            .spawn(move || {
                let _lock = _lock; // held while this process delivers
                let mut last_error = String::new();
                loop {
                    match watcher.tick(&ob) {
                        Ok(events) => {
                            if !events.is_empty() {
                                notifies.iter().for_each(|n| n.notify_one());
                            }
                            last_error.clear();
                        }
                        Err(e) => {
                            let e = format!("{e:#}");
                            if e != last_error {
                                eprintln!("labhost serve: webhooks out: {e} (retrying)");
                                last_error = e;
                            }
                        }
                    }
                    std::thread::sleep(TICK);
                }
            })
            .context("cannot start the webhooks watcher")?;
        Ok(())
    }
}

/// Deliver `queue` in order, for ever.
async fn deliver(
    hook: Hook,
    queue: HookQueue,
    client: reqwest::Client,
    notify: Arc<Notify>,
    root: PathBuf,
) {
    let mut backlog: VecDeque<PathBuf> = VecDeque::new();
    loop {
        if backlog.is_empty() {
            // Files named after a growing sequence: listed when the backlog
            // is done, so new ones always come after it.
            let q = queue.clone();
            match tokio::task::spawn_blocking(move || q.pending()).await {
                Ok(Ok(files)) => backlog = files.into(),
                Ok(Err(e)) => log(&hook, &format!("cannot list its queue: {e}")),
                Err(_) => {}
            }
            if backlog.is_empty() {
                tokio::select! {
                    _ = notify.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
        }
        let path = backlog.front().expect("not empty").clone();
        let mut ev = match HookQueue::read(&path) {
            Ok(ev) => ev,
            Err(_) if !path.exists() => {
                backlog.pop_front();
                continue;
            }
            Err(e) => {
                // Not ours to guess: put aside, keep the queue moving.
                let dead = queue.dead_dir().join(path.file_name().unwrap_or_default());
                let _ = std::fs::create_dir_all(queue.dead_dir());
                let _ = std::fs::rename(&path, &dead);
                log(&hook, &format!("{e:#}; moved to {}", dead.display()));
                backlog.pop_front();
                continue;
            }
        };
        if let Some(at) = ev.next_try {
            if let Ok(wait) = (at - Utc::now()).to_std() {
                tokio::time::sleep(wait).await;
            }
        }
        match send(&hook, &client, &ev, &root).await {
            Ok(()) => {
                if let Err(e) = queue.delivered(&path) {
                    log(&hook, &format!("cannot remove {}: {e}", path.display()));
                }
                backlog.pop_front();
            }
            Err(why) => match queue.failed(&path, &mut ev, &why, Utc::now(), hook.max_attempts) {
                Ok(AfterFailure::RetryAt(_)) => {
                    let wait = backoff(ev.attempts);
                    log(
                        &hook,
                        &format!(
                            "{} {} attempt {} failed ({why}); next try in {}",
                            ev.kind,
                            ev.id,
                            ev.attempts,
                            labhost::units::human_duration(wait)
                        ),
                    );
                }
                Ok(AfterFailure::Dead(dead)) => {
                    log(
                        &hook,
                        &format!(
                            "{} {} given up after {} attempt{} ({why}); moved to {}",
                            ev.kind,
                            ev.id,
                            ev.attempts,
                            if ev.attempts == 1 { "" } else { "s" },
                            dead.display()
                        ),
                    );
                    backlog.pop_front();
                }
                Err(e) => {
                    log(&hook, &format!("cannot record a failed attempt: {e}"));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
        }
    }
}

fn log(hook: &Hook, what: &str) {
    eprintln!(
        "labhost serve: webhook {}: {}",
        labhost::text::for_terminal_line(&hook.shown),
        labhost::text::for_terminal_line(what)
    );
}

/// One attempt: sign with the key as it is now, POST, 2xx or why not.
async fn send(
    hook: &Hook,
    client: &reqwest::Client,
    ev: &PendingEvent,
    root: &Path,
) -> Result<(), String> {
    let value = Secrets::find(&hook.secret, |n| std::env::var(n).ok(), root)
        .map_err(|e| format!("{e:#}"))?
        .ok_or_else(|| format!("secret `{}` is not set", hook.secret))?;
    let key = standard_key(&value)
        .ok_or_else(|| format!("secret `{}` is not whsec_<base64>", hook.secret))?;
    let ts = Utc::now().timestamp().to_string();
    let signature = sign_standard(&key, &ev.id, &ts, ev.body.as_bytes());
    let resp = client
        .post(&hook.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &ev.id)
        .header("webhook-timestamp", &ts)
        .header("webhook-signature", signature)
        .body(ev.body.clone())
        .send()
        .await
        .map_err(|e| network(&e, hook.timeout))?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else if status.is_redirection() {
        Err(format!("HTTP {status}: redirects are not followed"))
    } else {
        Err(format!("HTTP {status}"))
    }
}

/// A request error on one line, without the URL (reqwest's text holds it).
fn network(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!(
            "no answer within {}",
            labhost::units::human_duration(timeout)
        );
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let what = if e.is_connect() {
        "cannot connect"
    } else {
        "the request failed"
    };
    format!("{what}: {cause}")
}
