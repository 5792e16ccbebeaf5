//! `labhost serve`: the HTTP front end of a labhost workspace. One
//! long-running process whose only engine is the `labhost` library: plugins
//! stay loaded (compiled once), jobs it launches are ordinary workspace jobs
//! (visible to `labhost jobs` and `logs -f`), and jobs started elsewhere are
//! read from the same files through the library's read API.
//!
//! - [`routes`]: the REST API under `/api/v1` (+ `/api/v1/openapi.json`);
//! - [`auth`]: bearer tokens (`labhost token create`), dashboard sessions
//!   and scopes;
//! - [`session`]: the dashboard's login sessions (cookie, CSRF, origin);
//! - [`error`]: every failure as a status code and a one-line JSON error;
//! - [`dashboard`]: the web dashboard (embedded static pages) at `/`;
//! - [`outbox`]: webhooks out (signed lifecycle events, durable retries).

pub mod apps;
pub mod auth;
pub mod dashboard;
pub mod error;
pub mod lifecycle;
pub mod outbox;
pub mod pipelines;
pub mod registry;
pub mod routes;
pub mod session;
pub mod webhooks;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use labhost::tokens::Tokens;
use labhost::{Host, Plugin, Workspace};

/// Largest request body (a plugin upload), in bytes.
pub const MAX_BODY: usize = 512 << 20;

/// How the server is started.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub bind: SocketAddr,
    /// The settings profile in effect (`--profile`).
    pub profile: Option<String>,
    /// Run jobs and pipeline instances as Slurm jobs with these settings
    /// (`--executor slurm`); `None`: in this process.
    pub slurm: Option<labhost::slurm::SlurmSettings>,
}

/// What every handler shares.
pub struct AppState {
    pub host: Host,
    pub tokens: Tokens,
    pub profile: Option<String>,
    /// Loaded plugins by path: a launch of a warm plugin compiles nothing.
    plugins: Mutex<HashMap<PathBuf, Arc<Plugin>>>,
    /// Serialises the used-webhook-id file.
    pub(crate) webhook_ids: Mutex<()>,
    /// True when no token exists and the server is on loopback: requests
    /// without a token get the `run` scope (see [`auth`]).
    pub open_loopback: bool,
    /// The dashboard's login sessions.
    pub sessions: session::Sessions,
    /// Jobs go to Slurm (`--executor slurm`).
    pub slurm: Option<Arc<labhost::slurm::SlurmExecutor>>,
    /// Deployed apps by name ([`apps`]).
    pub apps: Mutex<HashMap<String, labhost::app::App>>,
    /// Names of apps being deployed (their instances loading).
    pub(crate) deploying: Mutex<std::collections::HashSet<String>>,
}

impl AppState {
    pub fn new(host: Host, profile: Option<String>, open_loopback: bool) -> AppState {
        let tokens = Tokens::new(host.workspace().root());
        AppState {
            host,
            tokens,
            profile,
            plugins: Mutex::new(HashMap::new()),
            webhook_ids: Mutex::new(()),
            open_loopback,
            sessions: session::Sessions::new(session::DEFAULT_TTL, "labhost_session"),
            slurm: None,
            apps: Mutex::new(HashMap::new()),
            deploying: Mutex::new(Default::default()),
        }
    }

    pub fn ws(&self) -> &Workspace {
        self.host.workspace()
    }

    /// Where uploaded plugins are kept, by blake3.
    pub fn uploads(&self) -> PathBuf {
        self.ws().root().join("plugins")
    }

    /// Load (once) the plugin at `path`.
    pub fn plugin(&self, path: &Path) -> anyhow::Result<Arc<Plugin>> {
        if let Some(p) = self.plugins.lock().unwrap().get(path) {
            return Ok(p.clone());
        }
        let p = self.host.load(path)?;
        self.plugins
            .lock()
            .unwrap()
            .insert(path.to_owned(), p.clone());
        Ok(p)
    }
}

/// How long a dashboard session lasts: `LABHOST_SESSION_TTL` (`30m`,
/// `8h`, …) or [`session::DEFAULT_TTL`].
fn session_ttl() -> anyhow::Result<std::time::Duration> {
    match std::env::var("LABHOST_SESSION_TTL") {
        Ok(v) => labhost::units::parse_duration(&v).context("LABHOST_SESSION_TTL"),
        Err(_) => Ok(session::DEFAULT_TTL),
    }
}

/// Serve until Ctrl-C. Refuses a non-loopback address while no token
/// exists. Prints `labhost serve: listening on http://ADDR` once bound.
pub async fn serve(host: Host, opts: ServeOptions) -> anyhow::Result<()> {
    let tokens = Tokens::new(host.workspace().root());
    let has_tokens = tokens.any_active()?;
    if !opts.bind.ip().is_loopback() && !has_tokens {
        bail!(
            "refusing to serve on {} without API tokens: create one with `labhost token create NAME --scope read`, or bind to 127.0.0.1",
            opts.bind
        );
    }
    let ttl = session_ttl()?;
    let webhooks_out = outbox::WebhooksOut::prepare(host.workspace())?;
    let listener = tokio::net::TcpListener::bind(opts.bind)
        .await
        .with_context(|| format!("cannot listen on {}", opts.bind))?;
    let addr = listener.local_addr()?;
    let slurm = match opts.slurm {
        Some(s) => Some(Arc::new(labhost::slurm::SlurmExecutor::new(
            host.clone(),
            s,
        )?)),
        None => None,
    };
    let mut state = AppState::new(host, opts.profile, !has_tokens);
    state.slurm = slurm;
    // One cookie name per port: browsers share cookies across the ports
    // of a host, so two servers on one machine keep their own sessions.
    state.sessions = session::Sessions::new(ttl, format!("labhost_session_{}", addr.port()));
    let state = Arc::new(state);
    if !has_tokens {
        eprintln!(
            "labhost serve: no API tokens: requests from this machine get the `run` scope (create a token with `labhost token create`)"
        );
    }
    if let Some(w) = webhooks_out {
        w.start()?;
    }
    println!("labhost serve: listening on http://{addr}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // Saved apps come back in the background: the API answers meanwhile.
    let redeploy = state.clone();
    tokio::spawn(async move { apps::redeploy_saved(&redeploy).await });
    axum::serve(listener, routes::router(state.clone()))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")?;
    // Apps stay saved; their instances end (queued requests answered).
    let running: Vec<labhost::app::App> =
        state.apps.lock().unwrap().drain().map(|(_, a)| a).collect();
    for app in running {
        app.undeploy().await;
    }
    Ok(())
}
