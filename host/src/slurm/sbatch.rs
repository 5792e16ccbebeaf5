//! What labhost asks `sbatch` for: the `[executor.slurm]` settings, a job's
//! limits mapped to Slurm's (with margins, so labhost's own limits fire
//! first and record the outcome), and the batch script. Pure: tested
//! without a cluster.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use serde::{Deserialize, Serialize};

use crate::sandbox::Limits;

/// `[executor.slurm]` in `labhost.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SlurmSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<String>,
    /// CPUs per job (default 1: a guest runs on one thread).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus_per_task: Option<u32>,
    /// More `sbatch` arguments, given after labhost's own (so they win),
    /// e.g. `["--constraint=fast", "--exclude=node7"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sbatch_args: Vec<String>,
    /// The `labhost` binary the nodes run (default: the submitting one,
    /// which must then be at the same path on every node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labhost: Option<PathBuf>,
}

impl SlurmSettings {
    pub fn check(&self) -> anyhow::Result<()> {
        if self.cpus_per_task == Some(0) {
            bail!("cpus-per-task must be at least 1");
        }
        for a in &self.sbatch_args {
            if !a.starts_with('-') {
                bail!("sbatch-args: `{a}` is not an option (each entry is one `--name=value`)");
            }
            for reserved in ["--parsable", "--output", "--wrap", "--array"] {
                if a == reserved || a.starts_with(&format!("{reserved}=")) {
                    bail!("sbatch-args: `{a}` is set by labhost");
                }
            }
        }
        Ok(())
    }
}

/// Added to a job's timeout and grace for Slurm's `--time`: labhost's own
/// timeout fires first and writes the outcome; Slurm's is the backstop.
pub const TIME_MARGIN: Duration = Duration::from_secs(60);
/// Added to a job's memory limit for Slurm's `--mem`: the host process
/// itself (runtime, compiled code, buffers) besides the guest's memory.
pub const HOST_MEMORY: u64 = 256 << 20;

/// Slurm's `--time`, in whole minutes (rounded up).
pub fn time_minutes(limits: &Limits) -> u64 {
    let total = limits.timeout + limits.grace + TIME_MARGIN;
    total.as_secs().div_ceil(60).max(1)
}

/// Slurm's `--mem`, in MiB (rounded up).
pub fn memory_mib(limits: &Limits) -> u64 {
    (limits.memory_bytes + HOST_MEMORY).div_ceil(1 << 20)
}

/// One job's `sbatch` arguments (the script comes on stdin).
pub fn args(settings: &SlurmSettings, limits: &Limits, name: &str, output: &Path) -> Vec<String> {
    let mut a = vec![
        "--parsable".to_owned(),
        format!("--job-name={name}"),
        format!("--output={}", output.display()),
        // Retries are the pipeline runner's: it resumes from the last
        // checkpoint, which Slurm's requeue would not.
        "--no-requeue".to_owned(),
        format!("--time={}", time_minutes(limits)),
        format!("--mem={}M", memory_mib(limits)),
        format!("--cpus-per-task={}", settings.cpus_per_task.unwrap_or(1)),
    ];
    for (flag, v) in [
        ("partition", &settings.partition),
        ("account", &settings.account),
        ("qos", &settings.qos),
    ] {
        if let Some(v) = v {
            a.push(format!("--{flag}={v}"));
        }
    }
    a.extend(settings.sbatch_args.iter().cloned());
    a
}

/// The batch script: the node runs the queued job with the normal host.
pub fn script(labhost: &Path, workspace: &Path, request: &Path) -> String {
    format!(
        "#!/bin/sh\n# labhost job (see {request})\nexec {} --workspace {} exec-request {}\n",
        quote(&labhost.to_string_lossy()),
        quote(&workspace.to_string_lossy()),
        quote(&request.to_string_lossy()),
        request = request.display(),
    )
}

/// `sbatch --parsable`'s answer: `ID` or `ID;CLUSTER`.
pub fn parse_job_id(stdout: &str) -> anyhow::Result<String> {
    let id = stdout.trim().split(';').next().unwrap_or_default();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("sbatch answered `{}`, not a job id", stdout.trim());
    }
    Ok(id.to_owned())
}

/// A single-quoted shell word.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_map_to_slurm_with_margins() {
        let mut limits = Limits {
            timeout: Duration::from_secs(90),
            grace: Duration::from_secs(10),
            memory_bytes: 512 << 20,
            ..Limits::default()
        };
        // 90 s + 10 s + 60 s = 160 s → 3 minutes.
        assert_eq!(time_minutes(&limits), 3);
        assert_eq!(memory_mib(&limits), 768);
        limits.timeout = Duration::from_secs(3600);
        assert_eq!(time_minutes(&limits), 62);
        let settings = SlurmSettings {
            partition: Some("gpu".into()),
            qos: Some("high".into()),
            sbatch_args: vec!["--exclude=node7".into()],
            ..Default::default()
        };
        assert_eq!(
            args(
                &settings,
                &limits,
                "labhost-trainer",
                Path::new("/ws/j/executor.out")
            ),
            [
                "--parsable",
                "--job-name=labhost-trainer",
                "--output=/ws/j/executor.out",
                "--no-requeue",
                "--time=62",
                "--mem=768M",
                "--cpus-per-task=1",
                "--partition=gpu",
                "--qos=high",
                "--exclude=node7",
            ]
        );
    }

    #[test]
    fn the_script_quotes_every_path() {
        let s = script(
            Path::new("/opt/lab host/labhost"),
            Path::new("/shared/it's"),
            Path::new("/shared/it's/req.json"),
        );
        assert!(
            s.ends_with(
                "exec '/opt/lab host/labhost' --workspace '/shared/it'\\''s' exec-request '/shared/it'\\''s/req.json'\n"
            ),
            "{s}"
        );
    }

    #[test]
    fn sbatch_answers_are_parsed_or_refused() {
        assert_eq!(parse_job_id("4242\n").unwrap(), "4242");
        assert_eq!(parse_job_id("17;labhost\n").unwrap(), "17");
        let err = parse_job_id("Submitted batch job 5").unwrap_err();
        assert_eq!(
            err.to_string(),
            "sbatch answered `Submitted batch job 5`, not a job id"
        );
    }

    #[test]
    fn settings_refuse_what_labhost_sets() {
        let bad = |arg: &str| SlurmSettings {
            sbatch_args: vec![arg.into()],
            ..Default::default()
        };
        assert_eq!(
            bad("--output=/tmp/x").check().unwrap_err().to_string(),
            "sbatch-args: `--output=/tmp/x` is set by labhost"
        );
        assert_eq!(
            bad("node7").check().unwrap_err().to_string(),
            "sbatch-args: `node7` is not an option (each entry is one `--name=value`)"
        );
        assert!(bad("--exclude=node7").check().is_ok());
        let zero = SlurmSettings {
            cpus_per_task: Some(0),
            ..Default::default()
        };
        assert!(zero.check().is_err());
    }
}
