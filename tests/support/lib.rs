//! Shared helpers for the integration tests: where the built guests and the
//! CLI binary are, a throwaway workspace with a host, and readers for what a
//! job left on disk.

pub mod httpd;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use labhost::{CompileCache, Host, JobRecord, JobSpec, Plugin, Workspace};
use serde_json::Value;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A built guest component, e.g. `guest("rust", "probe")`.
pub fn guest(lang: &str, name: &str) -> PathBuf {
    let p = repo_root()
        .join("guests/dist")
        .join(lang)
        .join(format!("{name}.wasm"));
    assert!(
        p.is_file(),
        "{} is missing: run scripts/build-guests.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

/// The `labhost` binary of this build (scripts/test.sh builds it first).
pub fn labhost_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> -> target/<profile>/labhost
    let p = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join(format!("labhost{}", std::env::consts::EXE_SUFFIX));
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build -p labhost` (scripts/test.sh does)",
        p.display()
    );
    p
}

/// A temporary workspace with a host over it.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub host: Host,
    pub rt: tokio::runtime::Runtime,
}

impl Lab {
    /// A fresh workspace with its own (empty) compile cache.
    pub fn new() -> Self {
        Self::build(Host::new)
    }

    /// A fresh workspace whose host shares one compile cache (in the cargo
    /// target dir, `target/tmp/conformance-compiled`) with the other tests,
    /// so the large Python and JS components are compiled once per change,
    /// not once per test.
    pub fn with_shared_cache() -> Self {
        // target/<profile>/deps/<test> -> target/tmp
        let exe = std::env::current_exe().unwrap();
        let target = exe.ancestors().nth(3).unwrap();
        let cache = CompileCache::new(target.join("tmp").join("conformance-compiled"));
        Self::build(|ws| Host::with_cache(ws, Some(cache)))
    }

    fn build(host: impl FnOnce(Workspace) -> anyhow::Result<Host>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let host = host(Workspace::open(dir.path().join("ws")).unwrap()).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Lab { dir, host, rt }
    }

    pub fn ws(&self) -> &Workspace {
        self.host.workspace()
    }

    pub fn root(&self) -> &Path {
        self.ws().root()
    }

    pub fn load(&self, lang: &str, name: &str) -> Arc<Plugin> {
        self.host.load(&guest(lang, name)).unwrap()
    }

    /// A spec with `config` (a JSON object) applied.
    pub fn spec(&self, plugin: &Arc<Plugin>, config: Value) -> JobSpec {
        let mut spec = JobSpec::new(plugin.clone());
        spec.config = config.as_object().cloned().expect("config is an object");
        spec
    }

    pub fn run(&self, spec: JobSpec) -> JobRecord {
        let _guard = self.rt.enter();
        self.rt.block_on(self.host.run(spec)).unwrap()
    }

    pub fn try_run(&self, spec: JobSpec) -> anyhow::Result<JobRecord> {
        let _guard = self.rt.enter();
        self.rt.block_on(self.host.run(spec))
    }

    pub fn job_dir(&self, rec: &JobRecord) -> PathBuf {
        self.ws().job_paths(&rec.experiment, &rec.id).dir
    }

    pub fn log(&self, rec: &JobRecord) -> String {
        std::fs::read_to_string(self.job_dir(rec).join("output.log")).unwrap()
    }

    /// The `probe: KEY VALUE` lines the probe logged, in order.
    pub fn reports(&self, rec: &JobRecord) -> Vec<(String, String)> {
        probe_reports(&self.log(rec))
    }

    /// The value of the one report `key` (panics if absent or repeated).
    pub fn report(&self, rec: &JobRecord, key: &str) -> String {
        let all: Vec<String> = self
            .reports(rec)
            .into_iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(all.len(), 1, "report `{key}` in {:?}", self.reports(rec));
        all.into_iter().next().unwrap()
    }

    /// The record as stored on disk (what a reader sees).
    pub fn stored_record(&self, rec: &JobRecord) -> Value {
        serde_json::from_slice(&std::fs::read(self.job_dir(rec).join("job.json")).unwrap()).unwrap()
    }

    /// Add a model file with these bytes to the registry as `name`
    /// (`labhost models add`); returns its id.
    pub fn add_model(&self, name: &str, file: &str, bytes: &[u8]) -> String {
        let dir = self.dir.path().join("model-sources").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(file);
        std::fs::write(&path, bytes).unwrap();
        self.ws()
            .add_model(labhost::store::import::ModelImport::new(name, path))
            .unwrap()
            .id
    }

    /// Run the CLI against this workspace.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(labhost_bin())
            .arg("--workspace")
            .arg(self.root())
            .args(args)
            .output()
            .unwrap()
    }
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

pub fn probe_reports(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter_map(|l| l.split_once(" probe: "))
        .map(|(_, rest)| {
            // Keys may be quoted (`artifact-name "../x"`): split after the key.
            match rest.strip_prefix("artifact-name ") {
                Some(r) => {
                    let (name, v) = r.rsplit_once(' ').unwrap();
                    (format!("artifact-name {name}"), v.to_owned())
                }
                None => {
                    let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
                    (k.to_owned(), v.to_owned())
                }
            }
        })
        .collect()
}

pub fn blake3_file(p: &Path) -> String {
    blake3::hash(&std::fs::read(p).unwrap())
        .to_hex()
        .to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Assert that no file under `dir` (at any depth) holds `needle`: where a
/// secret must never be written.
pub fn assert_nowhere(dir: &Path, needle: &str) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            assert_nowhere(&p, needle);
        } else {
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds the secret",
                p.display()
            );
        }
    }
}

/// A running `labhost serve` on 127.0.0.1 (a free port) over `lab`'s
/// workspace, its stderr in a file ([`Server::log`]), killed on drop.
pub struct Server {
    child: std::process::Child,
    pub base: String,
    log: PathBuf,
}

impl Server {
    pub fn start(lab: &Lab) -> Server {
        Self::start_with_env(lab, &[])
    }

    /// The same, with these environment variables set for the server.
    pub fn start_with_env(lab: &Lab, env: &[(&str, &str)]) -> Server {
        Self::start_with(lab, &[], env)
    }

    /// `labhost serve` with more arguments (`--executor slurm`) and
    /// environment variables.
    pub fn start_with(lab: &Lab, args: &[&str], env: &[(&str, &str)]) -> Server {
        use std::io::BufRead;
        let log = lab.dir.path().join("serve.log");
        let err = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut child = Command::new(labhost_bin())
            .arg("--workspace")
            .arg(lab.root())
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(err)
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("labhost serve: listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {line:?}; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })
            .to_owned();
        Server { child, base, log }
    }

    /// What the server wrote to stderr so far (every run in this lab).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`, and wait for it.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
