//! `labhost`: the command line over the labhost library. It parses
//! arguments, builds a [`labhost::JobSpec`] and renders job events; all the
//! work happens in the library.

mod app;
mod config_edit;
mod lifecycle;
mod new;
mod pipeline;
mod registry;
mod render;
mod show;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use labhost::settings::Effective;
use labhost::text::for_terminal_line;
use labhost::{DirGrant, Host, JobSpec, JobStatus, Settings, Workspace};

#[derive(Parser)]
#[command(
    name = "labhost",
    version,
    about = "Run ML-lab plugins (WebAssembly components) in a sandbox"
)]
struct Cli {
    /// Workspace directory holding jobs, models and datasets.
    #[arg(
        long,
        short = 'w',
        global = true,
        env = "LABHOST_HOME",
        default_value = "labhost-workspace"
    )]
    workspace: PathBuf,
    /// Settings profile of the workspace's labhost.toml ([profiles.NAME]).
    #[arg(long, global = true, env = "LABHOST_PROFILE")]
    profile: Option<String>,
    #[command(subcommand)]
    command: Command,
}

// One value per process: the size difference between variants is moot.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run a plugin as a job.
    Run(RunArgs),
    /// Show what a plugin says about itself and which lab interfaces it imports.
    Inspect {
        plugin: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// List jobs, with filters, sorting and paging.
    Jobs(JobsArgs),
    /// Run a recorded job again with the same plugin (same digest), config,
    /// grants, limits and resume point.
    Rerun {
        job: String,
        /// Print job events as JSON lines.
        #[arg(long)]
        json: bool,
        /// Print every metric point as it is reported.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Pipelines: stages chained and fanned out, with retries and resume.
    Pipeline {
        #[command(subcommand)]
        action: pipeline::Action,
    },
    /// Workspace settings (labhost.toml): default limits, workers, paths, profiles.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Show one job's record.
    Show {
        job: String,
        #[arg(long)]
        json: bool,
    },
    /// Print a job's log (control characters shown escaped).
    Logs {
        job: String,
        /// Keep printing new lines until the job ends.
        #[arg(long, short)]
        follow: bool,
        /// Print the log file's bytes unchanged, control characters
        /// included (for piping into other tools, not for a terminal).
        #[arg(long)]
        raw: bool,
    },
    /// Print a job's metrics.
    Metrics {
        job: String,
        /// Only this metric (repeatable).
        #[arg(long = "name", value_name = "NAME")]
        names: Vec<String>,
        /// Only points with a step in FIRST..=LAST (e.g. `100..200`).
        #[arg(long, value_name = "FIRST..LAST", value_parser = parse_steps)]
        steps: Option<std::ops::RangeInclusive<u64>>,
        /// Downsample to at most N points per metric (lowest and highest of
        /// each bucket kept, for charts).
        #[arg(long, value_name = "N")]
        max_points: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// The model registry: list it, or `add` a model file or directory.
    Models(registry::ModelsArgs),
    /// The dataset registry: list it, `add` a CSV/JSONL/Parquet file,
    /// `append` rows as a new version, query `rows`, `export`.
    Datasets(registry::DatasetsArgs),
    /// List a job's eval tables.
    Evals {
        job: String,
        #[arg(long)]
        json: bool,
    },
    /// Create a new plugin project (sources + build.sh) in any guest language.
    New {
        /// Plugin name (lowercase letters, digits, `-`); also the directory.
        name: String,
        #[arg(long, value_enum)]
        lang: new::Lang,
        #[arg(long, value_enum, default_value = "other")]
        kind: new::Kind,
        /// Where to create the project directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// A directory of packaged SDKs (`scripts/package-sdks.sh` makes
        /// `guests/dist/sdk/`): a Rust project then patches `labhost-sdk` to
        /// the crate there instead of taking it from crates.io.
        #[arg(long, env = "LABHOST_SDK_PATH")]
        sdk_path: Option<PathBuf>,
    },
    /// Compile plugins ahead of time into the workspace's compile cache.
    Compile {
        #[arg(required = true)]
        plugins: Vec<PathBuf>,
    },
    /// The compile cache: list or clear it.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Serve the workspace over HTTP: the REST API under /api/v1 (OpenAPI at
    /// /api/v1/openapi.json), live job events as Server-Sent Events.
    Serve {
        /// Address to listen on (a non-loopback address needs an API token).
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: std::net::SocketAddr,
        /// Where launched jobs and pipeline instances run: here, or as
        /// Slurm jobs (`[executor.slurm]`).
        #[arg(long, value_enum, default_value = "local")]
        executor: ExecutorKind,
    },
    /// Apps on a running `labhost serve`: deploy a predictor plugin as a
    /// warm pool, list apps with their latency figures, undeploy.
    App(app::AppArgs),
    /// API tokens for `labhost serve`: create, list, revoke.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Cancel a running job (from any process): its plugin sees should-stop,
    /// then is interrupted after the grace period.
    Cancel {
        job: String,
        /// Wait until the job has ended.
        #[arg(long)]
        wait: bool,
    },
    /// Delete a job or a pipeline run with what it stored (refused while
    /// it runs or what it saved is in use).
    Rm(lifecycle::RmArgs),
    /// Remove leftovers of interrupted work: temp files, trash, orphaned
    /// registry entries, stale cancel requests.
    Gc(lifecycle::GcArgs),
    /// Write a job or pipeline run as a bundle (tar) with every file's blake3.
    Export(lifecycle::ExportArgs),
    /// Add the jobs of a bundle to this workspace, every digest verified first.
    Import(lifecycle::ImportArgs),
    /// Run a job an executor queued (what a Slurm batch script runs on
    /// the node): its directory adopted, its heartbeat kept.
    #[command(hide = true)]
    ExecRequest { request: PathBuf },
    /// Re-hash stored files and compare them with the recorded blake3 digests.
    Verify {
        /// Only this job (default: every job, model and dataset).
        job: Option<String>,
    },
}

#[derive(Args)]
struct JobsArgs {
    #[arg(long, short)]
    experiment: Option<String>,
    /// Only jobs with this status (repeatable): queued, running, complete,
    /// failed, cancelled, interrupted.
    #[arg(long, value_parser = labhost::query::parse_status)]
    status: Vec<labhost::JobStatus>,
    /// Plugin name, or part of its path.
    #[arg(long)]
    plugin: Option<String>,
    /// Jobs of this pipeline run.
    #[arg(long)]
    pipeline: Option<String>,
    /// Created at or after: RFC 3339, YYYY-MM-DD, or an age like 2h.
    #[arg(long, value_parser = labhost::query::parse_time)]
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Created before (same forms as --since).
    #[arg(long, value_parser = labhost::query::parse_time)]
    until: Option<chrono::DateTime<chrono::Utc>>,
    /// created, ended, duration, status, plugin or progress; prefix - for
    /// descending (default: -created, newest first).
    #[arg(long, allow_hyphen_values = true)]
    sort: Option<labhost::query::Sort>,
    /// At most this many jobs.
    #[arg(long)]
    limit: Option<usize>,
    /// Skip this many jobs first.
    #[arg(long, default_value_t = 0)]
    offset: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Write a labhost.toml listing every setting at its default (commented out).
    Init,
    /// Print the settings in effect and where each comes from.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Set one setting (in --profile's table if given), e.g. `limits.timeout 30m`.
    Set { key: String, value: String },
    /// Reset one setting to its default (remove it from the file).
    Unset { key: String },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create a token; it is printed once (only its hash is kept).
    Create {
        /// A name to recognise it by.
        name: String,
        /// read: read everything; run: also launch and cancel; admin: also
        /// grant HTTP endpoints and secrets.
        #[arg(long, default_value = "read")]
        scope: labhost::tokens::Scope,
    },
    /// List tokens (without their secrets).
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum CacheAction {
    /// List cached components.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Remove every cached component.
    Clear,
}

#[derive(Args)]
struct RunArgs {
    /// The plugin component (.wasm).
    plugin: PathBuf,
    #[arg(long, short, default_value = "default")]
    experiment: String,
    /// Parameters from a JSON file (an object).
    #[arg(long)]
    config: Option<PathBuf>,
    /// One parameter, `key=value` (value read by the parameter's type); repeatable.
    #[arg(short = 'c', value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Grant a dataset (id or name), mounted read-only at /datasets/<id>.
    #[arg(long = "dataset", value_name = "ID")]
    datasets: Vec<String>,
    /// Grant a model (id or name), mounted read-only at /models/<id>.
    #[arg(long = "model", value_name = "ID")]
    models: Vec<String>,
    /// Grant a host directory: HOST[::GUEST][:ro|:rw] (read-only by default, at /mnt/<name>).
    #[arg(long = "dir", value_name = "HOST[::GUEST][:ro|:rw]")]
    dirs: Vec<DirGrant>,
    /// Environment variable visible to the plugin, KEY=VALUE; repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Let the plugin reach this HTTP endpoint (scheme, host, port, optional
    /// path prefix), e.g. https://api.openai.com/v1; repeatable.
    #[arg(long = "allow-http", value_name = "URL")]
    allow_http: Vec<String>,
    /// A header the host adds to every request to the --allow-http endpoint
    /// given before it, e.g. 'Authorization: Bearer {secret:API_KEY}' (the
    /// secret is filled in on the host: the plugin never sees it); repeatable.
    #[arg(long = "http-header", value_name = "'NAME: VALUE'")]
    http_headers: Vec<String>,
    /// Let the plugin read this secret (lab secrets.get), from the
    /// environment or <workspace>/secrets.toml (mode 600); repeatable.
    #[arg(long = "secret", value_name = "NAME")]
    secrets: Vec<String>,
    /// Resume from a job's checkpoint: JOB (its latest) or JOB:CHECKPOINT.
    #[arg(long, value_name = "JOB[:CHECKPOINT]")]
    resume: Option<String>,
    #[command(flatten)]
    limits: LimitArgs,
    /// Positions of --allow-http and --http-header on the command line
    /// (a header belongs to the endpoint before it).
    #[arg(skip)]
    http_positions: (Vec<usize>, Vec<usize>),
    /// Keep the job's /work scratch directory after it ends.
    #[arg(long)]
    keep_work: bool,
    /// Where the job runs: here, or as a Slurm job (`[executor.slurm]` in
    /// labhost.toml) on a node sharing the workspace.
    #[arg(long, value_enum, default_value = "local")]
    executor: ExecutorKind,
    /// Print job events as JSON lines on stdout instead of a live view.
    #[arg(long)]
    json: bool,
    /// Print every metric point as it is reported (by default the live view
    /// shows each metric's latest value, the summary its final one).
    #[arg(long, short)]
    verbose: bool,
}

/// Where jobs run (`--executor`).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorKind {
    /// In this process.
    Local,
    /// As Slurm jobs (`sbatch`), against the shared workspace.
    Slurm,
}

/// The limit flags of `run`: one `--KEY VALUE` per row of the library's
/// limits table (`labhost::sandbox::LIMIT_TABLE`), so a limit added there
/// is a flag here; they override the workspace settings (`labhost config`).
#[derive(Default)]
struct LimitArgs(labhost::LimitOverrides);

impl LimitArgs {
    fn overrides(&self) -> labhost::LimitOverrides {
        self.0.clone()
    }
}

impl clap::FromArgMatches for LimitArgs {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut o = labhost::LimitOverrides::default();
        for l in labhost::sandbox::LIMIT_TABLE {
            if let Some(v) = m.get_one::<String>(l.key) {
                // Checked by the value parser already.
                o.set(l.key, v)
                    .map_err(|e| clap::Error::raw(clap::error::ErrorKind::ValueValidation, e))?;
            }
        }
        Ok(LimitArgs(o))
    }
    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for LimitArgs {
    fn augment_args(mut cmd: clap::Command) -> clap::Command {
        for l in labhost::sandbox::LIMIT_TABLE {
            let key = l.key;
            cmd = cmd.arg(
                clap::Arg::new(key)
                    .long(key)
                    .value_name(match l.kind {
                        labhost::sandbox::LimitKind::duration => "DURATION",
                        labhost::sandbox::LimitKind::bytes => "SIZE",
                        labhost::sandbox::LimitKind::count => "N",
                        labhost::sandbox::LimitKind::metric => "METRIC:min|max",
                    })
                    .help(l.help)
                    .value_parser(move |v: &str| -> Result<String, String> {
                        labhost::LimitOverrides::default()
                            .set(key, v)
                            .map(|()| v.to_owned())
                            .map_err(|e| e.to_string())
                    }),
            );
        }
        cmd
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

fn parse_env(s: &str) -> anyhow::Result<(String, String)> {
    let (k, v) = s.split_once('=').with_context(|| {
        format!(
            "invalid --env `{}`: expected KEY=VALUE",
            for_terminal_line(s)
        )
    })?;
    labhost::names::check_env(k, v).map_err(anyhow::Error::msg)?;
    Ok((k.to_owned(), v.to_owned()))
}

/// Exit codes: 0 complete, 1 error before/around the job, 2 bad usage
/// (clap), 3 job FAILED, 4 job CANCELLED.
fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes
    // away (`labhost show JOB | head`): Rust ignores SIGPIPE, which makes
    // every print after it panic on EPIPE instead.
    // SAFETY: setting a signal disposition to the default, before any thread.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let mut cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let (Command::Run(args), Some(("run", m))) = (&mut cli.command, matches.subcommand()) {
        let at = |id: &str| m.indices_of(id).map(Iterator::collect).unwrap_or_default();
        args.http_positions = (at("allow_http"), at("http_headers"));
    }
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            // Errors quote guest text (describe() strings, messages).
            eprintln!(
                "error: {}",
                for_terminal_line(&labhost::text::error_line(&e))
            );
            ExitCode::from(1)
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<ExitCode> {
    let open = || Workspace::open(&cli.workspace);
    match cli.command {
        Command::Run(args) => {
            let ws = open()?;
            let settings = settings(&ws, cli.profile.as_deref())?;
            run(ws, &settings, args)
        }
        Command::Inspect { plugin, json } => {
            // Describing needs no workspace on disk; use a throwaway one.
            let tmp = std::env::temp_dir().join(format!("labhost-inspect-{}", std::process::id()));
            let cache = labhost::CompileCache::for_workspace(&cli.workspace);
            let result = (|| {
                let host = Host::with_cache(Workspace::open(&tmp)?, Some(cache))?;
                let plugin = host.load(&plugin)?;
                show::plugin(&plugin, json)
            })();
            let _ = std::fs::remove_dir_all(&tmp);
            result.map(|()| ExitCode::SUCCESS)
        }
        Command::Jobs(a) => {
            let query = labhost::query::JobQuery {
                statuses: a.status,
                experiment: a.experiment,
                plugin: a.plugin,
                pipeline: a.pipeline,
                since: a.since,
                until: a.until,
                sort: a.sort.unwrap_or_default(),
                offset: a.offset,
                limit: a.limit,
            };
            let ws = open()?;
            sweep_slurm(&ws);
            // One bad record never hides the others: it is skipped, and said.
            for u in labhost::query::unreadable_jobs(&ws)? {
                eprintln!(
                    "warning: skipped an unreadable record {}: {}",
                    u.path.display(),
                    labhost::text::for_terminal_line(&u.error)
                );
            }
            show::jobs(&ws, &query, a.json).map(|()| ExitCode::SUCCESS)
        }
        Command::Rerun { job, json, verbose } => {
            let ws = open()?;
            let (rec, _) = ws.find_job(&job)?;
            let runtime = runtime()?;
            runtime.block_on(async move {
                let host = Host::new(ws)?;
                let spec = host.spec_from_record(&rec)?;
                run_spec(&host, spec, json, verbose).await
            })
        }
        Command::Pipeline { action } => {
            let ws = open()?;
            let settings = settings(&ws, cli.profile.as_deref())?;
            pipeline::main(ws, &settings, action)
        }
        Command::Config { action } => config(&cli.workspace, cli.profile.as_deref(), action),
        Command::Show { job, json } => {
            let ws = open()?;
            sweep_slurm(&ws);
            show::job(&ws, &job, json).map(|()| ExitCode::SUCCESS)
        }
        Command::Logs { job, follow, raw } => {
            show::logs(&open()?, &job, follow, raw).map(|()| ExitCode::SUCCESS)
        }
        Command::Metrics {
            job,
            names,
            steps,
            max_points,
            json,
        } => {
            let q = labhost::read::MetricQuery {
                names,
                steps,
                max_points,
            };
            show::metrics(&open()?, &job, &q, json).map(|()| ExitCode::SUCCESS)
        }
        Command::Models(args) => registry::models(&open()?, args).map(|()| ExitCode::SUCCESS),
        Command::Datasets(args) => registry::datasets(&open()?, args).map(|()| ExitCode::SUCCESS),
        Command::Evals { job, json } => {
            show::evals(&open()?, &job, json).map(|()| ExitCode::SUCCESS)
        }
        Command::Verify { job } => show::verify(&open()?, job.as_deref()),
        Command::Rm(a) => lifecycle::rm(&open()?, a),
        Command::Gc(a) => lifecycle::gc(&open()?, a),
        Command::Export(a) => lifecycle::export(&open()?, a),
        Command::Import(a) => lifecycle::import(&open()?, a),
        Command::Cancel { job, wait } => cancel(&open()?, &job, wait),
        Command::ExecRequest { request } => {
            let ws = open()?;
            runtime()?.block_on(async move {
                let host = Host::new(ws)?;
                let rec = labhost::slurm::run_queued(&host, &request).await?;
                render::summary(host.workspace(), &rec);
                Ok(status_code(rec.status))
            })
        }
        Command::New {
            name,
            lang,
            kind,
            dir,
            sdk_path,
        } => {
            let dir = new::scaffold(&name, lang, kind, &dir, sdk_path)?;
            println!(
                "created {} — build it with {}/build.sh",
                dir.display(),
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Compile { plugins } => {
            let host = Host::new(open()?)?;
            for p in plugins {
                let started = std::time::Instant::now();
                let plugin = host.load(&p)?;
                println!(
                    "{} {} ({:?}, {:.2}s) {}",
                    for_terminal_line(&plugin.info.name),
                    for_terminal_line(&plugin.info.version),
                    plugin.cache,
                    started.elapsed().as_secs_f64(),
                    for_terminal_line(&p.display().to_string())
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { bind, executor } => {
            // A server outlives clients that hang up mid-response: ignore
            // SIGPIPE again (main restores the default for piped output),
            // else writing to a closed socket ends the whole process.
            // SAFETY: setting a signal disposition, before any thread.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            }
            let ws = open()?;
            let profile = cli.profile.clone();
            // A bad labhost.toml is an error now.
            let effective = settings(&ws, profile.as_deref())?;
            let slurm = (executor == ExecutorKind::Slurm).then_some(effective.slurm);
            runtime()?.block_on(async move {
                let host = Host::new(ws)?;
                let opts = labhost_serve::ServeOptions {
                    bind,
                    profile,
                    slurm,
                };
                labhost_serve::serve(host, opts).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::App(a) => {
            app::run(a)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { action } => {
            let tokens = labhost::tokens::Tokens::new(open()?.root());
            match action {
                TokenAction::Create { name, scope } => {
                    let (info, text) = tokens.create(&name, scope)?;
                    eprintln!(
                        "created token {} ({}, scope {}); it is shown only now:",
                        info.id,
                        for_terminal_line(&info.name),
                        info.scope
                    );
                    println!("{text}");
                }
                TokenAction::Ls { json } => show::tokens(&tokens.list()?, json)?,
                TokenAction::Revoke { id } => {
                    let t = tokens.revoke(&id)?;
                    println!("revoked token {} ({})", t.id, for_terminal_line(&t.name));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Cache { action } => {
            let cache = labhost::CompileCache::for_workspace(open()?.root());
            match action {
                CacheAction::Ls { json } => show::cache(&cache, json)?,
                CacheAction::Clear => println!("removed {} compiled components", cache.clear()?),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn cancel(ws: &Workspace, id: &str, wait: bool) -> anyhow::Result<ExitCode> {
    let (found, _) = ws.find_job(id)?;
    if found
        .executor
        .as_ref()
        .is_some_and(|e| e.kind == labhost::slurm::KIND)
    {
        // The node may be another machine: the cancel request, then
        // scancel after the grace period; so this waits for the end.
        let rec = runtime()?.block_on(async {
            let host = Host::new(ws.clone())?;
            println!("cancel requested for job {} (Slurm)", found.id);
            labhost::slurm::cancel_and_wait(&host, &found.id).await
        })?;
        println!(
            "{} {}: {}",
            rec.status,
            rec.id,
            for_terminal_line(rec.message.as_deref().unwrap_or_default())
        );
        return Ok(ExitCode::SUCCESS);
    }
    let rec = ws.request_cancel(id)?;
    println!("cancel requested for job {}", rec.id);
    if !wait {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        ws.recover_interrupted()?; // the job's host may die meanwhile
        let (now, _) = ws.find_job(&rec.id)?;
        if now.status.is_terminal() {
            println!(
                "{} {}: {}",
                now.status,
                now.id,
                for_terminal_line(now.message.as_deref().unwrap_or_default())
            );
            return Ok(ExitCode::SUCCESS);
        }
    }
}

/// Slurm jobs nobody waits for whose node is gone are ended before a
/// listing shows them (see `labhost::slurm::sweep`); a failure is a warning.
pub fn sweep_slurm(ws: &Workspace) {
    if let Err(e) = labhost::slurm::sweep_blocking(ws) {
        eprintln!(
            "warning: cannot check Slurm jobs in flight: {}",
            for_terminal_line(&labhost::text::error_line(&e))
        );
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// The workspace settings in effect (labhost.toml + profile).
fn settings(ws: &Workspace, profile: Option<&str>) -> anyhow::Result<Effective> {
    Settings::load(ws.root())?.effective(ws.root(), profile)
}

fn config(
    root: &std::path::Path,
    profile: Option<&str>,
    action: ConfigAction,
) -> anyhow::Result<ExitCode> {
    let ws = Workspace::open(root)?;
    match action {
        ConfigAction::Init => {
            let path = labhost::settings::init(ws.root())?;
            println!("wrote {}", path.display());
        }
        ConfigAction::Show { json } => show::settings(&settings(&ws, profile)?, json)?,
        ConfigAction::Set { key, value } => {
            config_edit::set(ws.root(), profile, &key, Some(&value))?;
            settings(&ws, profile)?; // the profile now exists and the file reads back
            println!(
                "{}{key} = {value}",
                profile
                    .map(|p| format!("profiles.{p}."))
                    .unwrap_or_default()
            );
        }
        ConfigAction::Unset { key } => {
            config_edit::set(ws.root(), profile, &key, None)?;
            println!(
                "{}{key} reset to its default",
                profile
                    .map(|p| format!("profiles.{p}."))
                    .unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run(ws: Workspace, settings: &Effective, args: RunArgs) -> anyhow::Result<ExitCode> {
    let runtime = runtime()?;
    runtime.block_on(async move {
        let host = Host::new(ws)?;
        let plugin = host.load(&settings.resolve_plugin(&args.plugin))?;
        let mut spec = JobSpec::new(plugin.clone());
        spec.experiment = args.experiment;
        if let Some(path) = &args.config {
            spec.config = labhost::config::read_file(path)?;
        }
        for pair in &args.set {
            labhost::config::apply_override(&plugin.info, &mut spec.config, pair)?;
        }
        let grants = &mut spec.sandbox.grants;
        grants.datasets = args.datasets;
        grants.models = args.models;
        grants.dirs = args.dirs;
        grants.env = args.env;
        let (url_at, header_at) = &args.http_positions;
        grants.http = labhost::egress::grants_from_flags(
            &url_at
                .iter()
                .copied()
                .zip(args.allow_http)
                .collect::<Vec<_>>(),
            &header_at
                .iter()
                .copied()
                .zip(args.http_headers)
                .collect::<Vec<_>>(),
        )?;
        grants.secrets = args.secrets;
        // The workspace's (and profile's) grants come first.
        grants.http.splice(0..0, settings.http.iter().cloned());
        grants
            .secrets
            .splice(0..0, settings.secrets.iter().cloned());
        spec.sandbox.limits = settings.limits.clone();
        args.limits.overrides().apply(&mut spec.sandbox.limits);
        spec.resume = args.resume.map(|r| match r.split_once(':') {
            Some((job, ckpt)) => labhost::ResumePoint::at(job, ckpt),
            None => labhost::ResumePoint::latest(r),
        });
        spec.keep_work = args.keep_work;
        match args.executor {
            ExecutorKind::Local => run_spec(&host, spec, args.json, args.verbose).await,
            ExecutorKind::Slurm => run_on_slurm(&host, settings, spec, args.json).await,
        }
    })
}

/// First Ctrl-C: print `notice` and call `cancel`. Second: exit at once (130).
/// Must be called within a tokio runtime.
pub fn cancel_on_ctrl_c(notice: &'static str, cancel: impl FnOnce() + Send + 'static) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("{notice}");
            cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
}

/// Start a job, render its events, print its summary; the exit code tells its status.
async fn run_spec(
    host: &Host,
    spec: JobSpec,
    json: bool,
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    let mut handle = host.start(spec)?;
    let events = handle.events();
    let control = handle.control();
    // The plugin sees should-stop, then is stopped after the grace period.
    cancel_on_ctrl_c(
        "cancelling the job (Ctrl-C again to stop now)...",
        move || control.cancel(),
    );
    let renderer = if json {
        render::Renderer::json()
    } else {
        render::Renderer::human(verbose)
    };
    let render_task = tokio::spawn(renderer.run(events));
    let record = handle.wait().await?;
    let _ = render_task.await;
    if !json {
        render::summary(host.workspace(), &record);
    }
    Ok(status_code(record.status))
}

/// Submit a job to Slurm, print its log as the node writes it, then its
/// summary; the exit code tells its status.
async fn run_on_slurm(
    host: &Host,
    settings: &Effective,
    spec: JobSpec,
    json: bool,
) -> anyhow::Result<ExitCode> {
    use labhost::executor::{Executor, JobRequest};
    let exec = std::sync::Arc::new(labhost::slurm::SlurmExecutor::new(
        host.clone(),
        settings.slurm.clone(),
    )?);
    let id = exec.submit(JobRequest::from_spec(&spec)).await?;
    eprintln!("job {id} submitted to Slurm (Ctrl-C cancels it)");
    let (canceller, job) = (exec.clone(), id.clone());
    cancel_on_ctrl_c(
        "cancelling the job (Ctrl-C again to stop waiting)...",
        move || {
            tokio::spawn(async move {
                if let Err(e) = canceller.cancel(&job).await {
                    eprintln!(
                        "error: {}",
                        for_terminal_line(&labhost::text::error_line(&e))
                    );
                }
            });
        },
    );
    let follow = (!json).then(|| {
        let (ws, job) = (host.workspace().clone(), id.clone());
        tokio::task::spawn_blocking(move || show::logs(&ws, &job, true, false))
    });
    let record = exec.wait(&id).await?;
    if let Some(f) = follow {
        let _ = f.await;
        render::summary(host.workspace(), &record);
    } else {
        println!("{}", serde_json::to_string(&record)?);
    }
    Ok(status_code(record.status))
}

/// The exit code of a job's end: 0 complete, 4 cancelled, 3 otherwise.
fn status_code(status: JobStatus) -> ExitCode {
    match status {
        JobStatus::Complete => ExitCode::SUCCESS,
        JobStatus::Cancelled => ExitCode::from(4),
        _ => ExitCode::from(3),
    }
}

/// `100..200` (both ends included).
fn parse_steps(s: &str) -> Result<std::ops::RangeInclusive<u64>, String> {
    let bad = || format!("invalid step range `{s}`: expected FIRST..LAST, e.g. 100..200");
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let (a, b): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a > b {
        return Err(bad());
    }
    Ok(a..=b)
}
