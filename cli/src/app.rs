//! `labhost app`: deploy, list and undeploy apps (predictor plugins served
//! online) on a running `labhost serve`, through its REST API
//! (`/api/v1/apps`). A PLUGIN that is a file is uploaded first; otherwise
//! it is the name of one in the server's `paths.plugins` or the blake3 of
//! an uploaded one.

use std::path::Path;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use labhost::text::for_terminal_line;

#[derive(Args)]
pub struct AppArgs {
    /// The server's address.
    #[arg(
        long,
        global = true,
        env = "LABHOST_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// An API token (`labhost token create`), if the server has tokens.
    #[arg(long, global = true, env = "LABHOST_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    cmd: AppCmd,
}

#[derive(Subcommand)]
enum AppCmd {
    /// Deploy a predictor as an app: its instances load, then it answers
    /// POST /api/v1/apps/NAME/predict.
    Deploy {
        name: String,
        /// A predictor .wasm file (uploaded), or a plugin name or blake3 on the server.
        plugin: String,
        /// Grant a model (id or name) to every instance; repeatable.
        #[arg(long = "model", value_name = "ID")]
        models: Vec<String>,
        /// Warm instances (requests served at once).
        #[arg(long, default_value_t = 1)]
        instances: usize,
        /// Requests that may wait; more get 429.
        #[arg(long, default_value_t = 64)]
        queue: usize,
        /// Per-request time limit.
        #[arg(long, default_value = "30s")]
        timeout: String,
        /// Memory limit of each instance (e.g. 512MiB).
        #[arg(long)]
        memory: Option<String>,
        /// One parameter, `key=value` (a JSON value, else text); repeatable.
        #[arg(short = 'c', value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// List the deployed apps with their request figures.
    #[command(alias = "ls")]
    List {
        #[arg(long)]
        json: bool,
    },
    /// Undeploy an app: queued requests are answered, then its instances end.
    Undeploy { name: String },
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base.trim_end_matches('/')));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Send, and turn an error status into the server's one-line message.
    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach labhost serve at {} (start it with `labhost serve`, or give --server)", self.base))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "{} ({})",
                body["error"]
                    .as_str()
                    .map(for_terminal_line)
                    .unwrap_or_else(|| "no message".into()),
                status
            );
        }
        Ok(body)
    }
}

fn config_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

pub fn run(args: AppArgs) -> anyhow::Result<()> {
    let api = Api {
        http: reqwest::Client::new(),
        base: args.server,
        token: args.token,
    };
    crate::runtime()?.block_on(async move {
        match args.cmd {
            AppCmd::Deploy {
                name,
                plugin,
                models,
                instances,
                queue,
                timeout,
                memory,
                set,
            } => {
                let plugin = if Path::new(&plugin).is_file() {
                    let bytes = std::fs::read(&plugin).with_context(|| format!("cannot read {plugin}"))?;
                    let up = api
                        .send(api.request(reqwest::Method::POST, "/api/v1/plugins").body(bytes))
                        .await?;
                    up["blake3"].as_str().context("the server did not return the plugin's blake3")?.to_owned()
                } else {
                    plugin
                };
                let mut config = Map::new();
                for pair in &set {
                    let (k, v) = pair
                        .split_once('=')
                        .with_context(|| format!("-c {pair}: expected KEY=VALUE"))?;
                    config.insert(k.to_owned(), config_value(v));
                }
                let mut limits = Map::new();
                if let Some(m) = memory {
                    limits.insert("memory".into(), Value::String(m));
                }
                let body = json!({
                    "name": name, "plugin": plugin, "models": models, "config": config,
                    "instances": instances, "queue": queue, "timeout": timeout, "limits": limits,
                });
                let app = api.send(api.request(reqwest::Method::POST, "/api/v1/apps").json(&body)).await?;
                println!(
                    "deployed app {} ({} instance{}, queue {}, timeout {}): POST {}/api/v1/apps/{}/predict",
                    for_terminal_line(app["name"].as_str().unwrap_or_default()),
                    instances,
                    if instances == 1 { "" } else { "s" },
                    queue,
                    timeout,
                    api.base.trim_end_matches('/'),
                    app["name"].as_str().unwrap_or_default()
                );
            }
            AppCmd::List { json } => {
                let apps = api.send(api.request(reqwest::Method::GET, "/api/v1/apps")).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&apps)?);
                    return Ok(());
                }
                println!(
                    "{:<20} {:<20} {:>9} {:>7} {:>6} {:>9} {:>9} {:>7} {:>5}",
                    "APP", "PLUGIN", "INSTANCES", "QUEUED", "OK", "P50 MS", "P99 MS", "REQ/S", "429"
                );
                let ms = |v: &Value| v.as_f64().map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"));
                for a in apps.as_array().into_iter().flatten() {
                    let s = &a["stats"];
                    println!(
                        "{:<20} {:<20} {:>9} {:>7} {:>6} {:>9} {:>9} {:>7.1} {:>5}",
                        for_terminal_line(a["name"].as_str().unwrap_or_default()),
                        for_terminal_line(a["plugin"].as_str().unwrap_or_default()),
                        a["instances"].as_u64().unwrap_or(0),
                        a["queued"].as_u64().unwrap_or(0),
                        s["requests_ok"].as_u64().unwrap_or(0),
                        ms(&s["latency_p50_ms"]),
                        ms(&s["latency_p99_ms"]),
                        s["requests_per_second"].as_f64().unwrap_or(0.0),
                        s["rejected"].as_u64().unwrap_or(0),
                    );
                }
            }
            AppCmd::Undeploy { name } => {
                let path = format!("/api/v1/apps/{name}");
                let app = api.send(api.request(reqwest::Method::DELETE, &path)).await?;
                let n = app["stats"]["requests_ok"].as_u64().unwrap_or(0)
                    + app["stats"]["requests_failed"].as_u64().unwrap_or(0);
                println!(
                    "undeployed app {} after {n} request{}",
                    for_terminal_line(&name),
                    if n == 1 { "" } else { "s" }
                );
            }
        }
        Ok(())
    })
}
