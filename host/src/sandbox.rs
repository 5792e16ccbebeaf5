//! What a job may touch and how much it may use: [`Sandbox`] = [`Grants`] +
//! [`Limits`]. The CLI flags, the embedding API and (later) pipeline stages
//! all build this one type.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::units::{exact_bytes, human_duration, parse_bytes, parse_duration};

/// A job's grants and limits.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sandbox {
    pub grants: Grants,
    pub limits: Limits,
}

/// What the guest can see besides its private `/work` directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Grants {
    /// Datasets (id or name) mounted read-only at `/datasets/<id>`.
    pub datasets: Vec<String>,
    /// Models (id or name) mounted read-only at `/models/<id>`.
    pub models: Vec<String>,
    /// Host directories.
    pub dirs: Vec<DirGrant>,
    /// Environment variables visible to the guest (none by default).
    pub env: Vec<(String, String)>,
    /// HTTP endpoints the guest may reach (none by default).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<crate::egress::HttpGrant>,
    /// Names of the secrets the guest may read with `secrets.get` (their
    /// values are resolved when the job starts and never recorded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
}

/// A host directory made visible to the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirGrant {
    pub host: PathBuf,
    /// Absolute guest path it appears at.
    pub guest: String,
    pub writable: bool,
}

/// Guest paths the host itself uses; a `--dir` may not shadow them.
pub(crate) const RESERVED_GUEST_ROOTS: &[&str] = &["/work", "/datasets", "/models", "/resume"];

impl FromStr for DirGrant {
    type Err = anyhow::Error;

    /// `HOST[::GUEST][:ro|:rw]` — read-only unless `:rw`; the guest path
    /// defaults to `/mnt/<basename of HOST>`. At most one `:ro`/`:rw`
    /// suffix; the guest path must be absolute and normal (see
    /// [`DirGrant::check`]).
    fn from_str(spec: &str) -> anyhow::Result<Self> {
        let shown = crate::text::for_terminal_line(spec);
        let (rest, writable) = if let Some(r) = spec.strip_suffix(":rw") {
            (r, true)
        } else if let Some(r) = spec.strip_suffix(":ro") {
            (r, false)
        } else {
            (spec, false)
        };
        if rest.ends_with(":ro") || rest.ends_with(":rw") {
            bail!("invalid directory grant `{shown}`: more than one :ro/:rw suffix (expected HOST[::GUEST][:ro|:rw])");
        }
        let (host, guest) = match rest.split_once("::") {
            Some((h, g)) => (h, Some(g)),
            None => (rest, None),
        };
        if host.is_empty() {
            bail!("invalid directory grant `{shown}`: expected HOST[::GUEST][:ro|:rw]");
        }
        let invalid = |e: anyhow::Error| anyhow::anyhow!("invalid directory grant `{shown}`: {e}");
        let host = PathBuf::from(host);
        // A relative HOST is checked against the filesystem where it is used
        // (a pipeline joins it to the file's directory first): here only
        // its spelling.
        check_host_dir(&host, host.is_absolute()).map_err(invalid)?;
        let guest = match guest {
            Some(g) => g.to_owned(),
            None => {
                let base = host
                    .canonicalize()
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .with_context(|| format!("invalid directory grant `{shown}`: cannot name a guest path for it; give HOST::GUEST"))?;
                format!("/mnt/{base}")
            }
        };
        let grant = DirGrant {
            host,
            guest,
            writable,
        };
        grant.check_guest().map_err(invalid)?;
        Ok(grant)
    }
}

impl DirGrant {
    /// Reject a host directory that is the filesystem root, and guest paths
    /// that are relative, not in normal form (`//x`, `/x/`, `.`, `..`),
    /// contain `:` or control characters, or shadow a host-managed mount.
    pub fn check(&self) -> anyhow::Result<()> {
        check_host_dir(&self.host, true)?;
        self.check_guest()
    }

    fn check_guest(&self) -> anyhow::Result<()> {
        let g = &self.guest;
        let shown = crate::text::for_terminal_line(g);
        if !g.starts_with('/') || g == "/" {
            bail!("invalid guest path `{shown}`: must be absolute and not `/`");
        }
        if let Some(c) = g.chars().find(|c| c.is_control()) {
            bail!("invalid guest path `{shown}`: must not contain the control character {c:?}");
        }
        if g.contains(':') {
            bail!("invalid guest path `{shown}`: must not contain `:` (give at most one :ro or :rw suffix)");
        }
        if g.split('/').any(|c| c == "." || c == "..") {
            bail!("invalid guest path `{shown}`: `.`/`..` are not allowed");
        }
        if g[1..].split('/').any(str::is_empty) {
            let normal: Vec<&str> = g.split('/').filter(|c| !c.is_empty()).collect();
            bail!(
                "invalid guest path `{shown}`: empty component or trailing `/` (write `/{}`)",
                normal.join("/")
            );
        }
        for r in RESERVED_GUEST_ROOTS {
            if g == r || g.starts_with(&format!("{r}/")) || r.starts_with(&format!("{g}/")) {
                bail!("invalid guest path `{shown}`: `{r}` is reserved by labhost");
            }
        }
        Ok(())
    }
}

/// Refuse the filesystem root as a granted host directory (read-only or
/// not): it would hand the plugin the whole host. Spelled `/`, `//`, `/..`
/// or (with `resolve`) reached through `..` or a symlink.
fn check_host_dir(host: &Path, resolve: bool) -> anyhow::Result<()> {
    use std::path::Component;
    let lexically_root = host.has_root()
        && host.components().all(|c| {
            matches!(
                c,
                Component::RootDir | Component::CurDir | Component::ParentDir
            )
        });
    let resolves_to_root = resolve && host.canonicalize().is_ok_and(|p| p.parent().is_none());
    if lexically_root || resolves_to_root {
        bail!(
            "host directory `{}` is the filesystem root: granting it would expose the whole host; grant a directory below it",
            crate::text::for_terminal_line(&host.display().to_string())
        );
    }
    Ok(())
}

/// Every limit, defined once: the field of [`Limits`], its key (in
/// settings files, pipeline `limits` tables, `labhost config set limits.KEY`
/// and as the `--KEY` flag of `labhost run`), the field of
/// [`LimitOverrides`], its kind, its default and its help text. The structs,
/// the key list, layering, applying, describing and parsing are all
/// generated from this one table ([`LIMIT_TABLE`] lists it at run time,
/// e.g. for a front end to build its flags).
macro_rules! limits {
    ($(
        $(#[doc = $doc:literal])*
        $field:ident / $over:ident : $kind:ident ($with:literal, $opt_with:literal) = $key:literal, default $default:expr, help $help:literal;
    )*) => {
        /// Resource limits of one job. Every limit hit ends the job (or the
        /// call) with a message naming the limit and its value.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Limits {
            $(
                $(#[doc = $doc])*
                #[serde(with = $with)]
                pub $field: limit_type!($kind),
            )*
        }

        impl Default for Limits {
            fn default() -> Self {
                Limits { $($field: $default,)* }
            }
        }

        /// Limits as a config file, a pipeline stage or the CLI gives them:
        /// each one optional, in human units (`timeout = "10m"`, `memory =
        /// "512MiB"`), laid over a job's [`Limits`] in order: defaults ←
        /// workspace config ← profile ← pipeline defaults ← stage ← command line.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub struct LimitOverrides {
            $(
                #[serde(default, with = $opt_with, skip_serializing_if = "Option::is_none")]
                pub $over: Option<limit_type!($kind)>,
            )*
        }

        /// One row of the limits table.
        #[derive(Debug, Clone, Copy)]
        pub struct LimitInfo {
            pub key: &'static str,
            pub kind: LimitKind,
            pub help: &'static str,
        }

        /// The limits table, in order.
        pub const LIMIT_TABLE: &[LimitInfo] = &[
            $(LimitInfo { key: $key, kind: LimitKind::$kind, help: $help },)*
        ];

        impl LimitOverrides {
            /// The key names, as written in files and after `limits.` in
            /// `labhost config set`.
            pub const KEYS: &'static [&'static str] = &[$($key),*];

            /// Set the given ones on `limits`.
            pub fn apply(&self, limits: &mut Limits) {
                $(if let Some(v) = &self.$over { limits.$field = Clone::clone(v); })*
            }

            /// `self` with the ones `over` gives replaced.
            pub fn then(&self, over: &LimitOverrides) -> LimitOverrides {
                LimitOverrides { $($over: Clone::clone(&over.$over).or_else(|| Clone::clone(&self.$over)),)* }
            }

            /// Set the limit `key` from its text (as a flag or a file
            /// gives it), checked by its kind.
            pub fn set(&mut self, key: &str, value: &str) -> anyhow::Result<()> {
                match key {
                    $($key => self.$over = Some(limit_parse!($kind, value)?),)*
                    _ => bail!("unknown limit `{key}` (known: {})", Self::KEYS.join(", ")),
                }
                Ok(())
            }
        }

        impl Limits {
            /// Every limit as `(key, value in human units)`, keyed like
            /// [`LimitOverrides`].
            pub fn describe(&self) -> Vec<(&'static str, String)> {
                vec![$(($key, limit_show!($kind, self.$field)),)*]
            }
        }
    };
}

/// The kinds of limit values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum LimitKind {
    /// A duration: `90s`, `10m`, `2h`, `250ms`.
    duration,
    /// A size: `512MiB`, `2GiB`, `1000`.
    bytes,
    /// A count.
    count,
    /// A metric and a direction: `eval_loss:min`, `accuracy:max` (`none`: unset).
    metric,
}

macro_rules! limit_type {
    (duration) => {
        Duration
    };
    (bytes) => {
        u64
    };
    (count) => {
        u64
    };
    (metric) => {
        Option<crate::lifecycle::retention::KeepBest>
    };
}

macro_rules! limit_parse {
    (duration, $v:expr) => {
        parse_duration($v)
    };
    (bytes, $v:expr) => {
        parse_bytes($v)
    };
    (count, $v:expr) => {
        $v.trim()
            .parse::<u64>()
            .map_err(|_| anyhow::anyhow!("invalid count `{}`: expected a whole number", $v))
    };
    (metric, $v:expr) => {
        crate::lifecycle::retention::KeepBest::parse_setting($v)
    };
}

macro_rules! limit_show {
    (duration, $v:expr) => {
        human_duration($v)
    };
    (bytes, $v:expr) => {
        exact_bytes($v)
    };
    (count, $v:expr) => {
        $v.to_string()
    };
    (metric, $v:expr) => {
        $v.as_ref()
            .map_or_else(|| "none".to_owned(), ToString::to_string)
    };
}

limits! {
    /// Wall-clock time for the whole job.
    timeout / timeout: duration("duration_secs", "opt_duration") = "timeout", default Duration::from_secs(60 * 60),
        help "Wall-clock limit (e.g. 90s, 10m, 2h)";
    /// After a cancel request, how long the guest gets to return on its own.
    grace / grace: duration("duration_secs", "opt_duration") = "grace", default Duration::from_secs(10),
        help "After a cancel, how long the plugin gets to stop by itself (e.g. 10s)";
    /// Linear memory, in bytes, across the guest's memories.
    memory_bytes / memory: bytes("plain_u64", "opt_bytes") = "memory", default 1 << 30,
        help "Memory limit (e.g. 512MiB, 2GiB)";
    /// Log bytes kept per job; later lines are dropped after a marker.
    log_bytes / max_log: bytes("plain_u64", "opt_bytes") = "max-log", default 64 << 20,
        help "Log bytes kept for the job (then a truncation marker), e.g. 64MiB";
    /// Bytes the job may store (artifacts, checkpoints, models, datasets,
    /// evals, and the metadata and file lists of their records).
    stored_bytes / max_stored: bytes("plain_u64", "opt_bytes") = "max-stored", default 8 << 30,
        help "Bytes the job may store (artifacts, checkpoints, models, datasets, evals)";
    /// Files the job may store.
    stored_files / max_files: count("plain_u64", "opt_count") = "max-files", default 10_000,
        help "Files the job may store";
    /// Live WASI handles (open files, directories, streams, pollables) the
    /// guest may hold at once: bounds host memory and file descriptors
    /// (and never more than a quarter of the process's descriptors).
    handles / max_handles: count("plain_u64", "opt_count") = "max-handles", default 4096,
        help "Live WASI handles (open files, streams) the plugin may hold";
    /// Bytes of `metrics.jsonl`; later metric calls get `limit-exceeded`.
    metrics_bytes / max_metrics: bytes("plain_u64", "opt_bytes") = "max-metrics", default 256 << 20,
        help "Bytes of metrics the job may record (metrics.jsonl), e.g. 256MiB";
    /// Bytes the guest may keep in its `/work` scratch directory (checked
    /// about once a second; the job is ended when it is over).
    scratch_bytes / max_scratch: bytes("plain_u64", "opt_bytes") = "max-scratch", default 16 << 30,
        help "Bytes the plugin may keep in its /work scratch directory, e.g. 16GiB";
    /// HTTP requests the job may send (each redirect hop counts).
    http_requests / max_http_requests: count("plain_u64", "opt_count") = "max-http-requests", default 1000,
        help "HTTP requests the plugin may send to its granted endpoints";
    /// Bytes the job may send over HTTP (bodies and headers).
    http_bytes_out / max_http_out: bytes("plain_u64", "opt_bytes") = "max-http-out", default 64 << 20,
        help "Bytes the plugin may send over HTTP, e.g. 64MiB";
    /// Bytes the job may receive over HTTP (response bodies).
    http_bytes_in / max_http_in: bytes("plain_u64", "opt_bytes") = "max-http-in", default 256 << 20,
        help "Bytes the plugin may receive over HTTP, e.g. 256MiB";
    /// Time one HTTP request may take, response body included.
    http_timeout / http_timeout: duration("duration_secs", "opt_duration") = "http-timeout", default Duration::from_secs(60),
        help "Time one HTTP request may take, body included (e.g. 60s)";
    /// Time all the job's HTTP requests may take together.
    http_time / max_http_time: duration("duration_secs", "opt_duration") = "max-http-time", default Duration::from_secs(30 * 60),
        help "Time all HTTP requests of the job may take together (e.g. 30m)";
    /// Checkpoints kept: the newest N (and the best by `keep-best`); older
    /// ones are deleted as new ones are saved. 0 keeps every checkpoint.
    keep_checkpoints / keep_checkpoints: count("plain_u64", "opt_count") = "keep-checkpoints", default 0,
        help "Checkpoints kept: the newest N plus the best by keep-best; older ones are deleted (0: keep all)";
    /// With `keep-checkpoints`: also keep the checkpoint saved when this
    /// metric's latest value was best (`eval_loss:min`, `accuracy:max`).
    keep_best / keep_best: metric("crate::lifecycle::retention::keep_best_plain", "crate::lifecycle::retention::keep_best_opt") = "keep-best", default None,
        help "With keep-checkpoints: also keep the best checkpoint by a metric, METRIC:min or METRIC:max";
}

impl LimitOverrides {
    /// Defaults with these applied.
    pub fn to_limits(&self) -> Limits {
        let mut l = Limits::default();
        self.apply(&mut l);
        l
    }
}

/// A plain number (bytes and counts in records).
mod plain_u64 {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        u64::deserialize(d)
    }
}

/// An optional count in settings and pipeline files.
mod opt_count {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(n: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match n {
            Some(n) => s.serialize_u64(*n),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Option::<u64>::deserialize(d)
    }
}

/// `Option<Duration>` as a human string (or a number of seconds).
mod opt_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::human_duration(*d)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match super::StrOrNum::deserialize(d)? {
            super::StrOrNum::Str(s) => super::parse_duration(&s).map(Some),
            super::StrOrNum::Num(n) => super::parse_duration(&n.to_string()).map(Some),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// `Option<u64>` bytes as a human string (or a number).
mod opt_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(n: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match n {
            Some(n) => s.serialize_str(&super::exact_bytes(*n)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match super::StrOrNum::deserialize(d)? {
            super::StrOrNum::Str(s) => super::parse_bytes(&s).map(Some),
            super::StrOrNum::Num(n) if n >= 0.0 && n.fract() == 0.0 => Ok(Some(n as u64)),
            super::StrOrNum::Num(n) => Err(anyhow::anyhow!("invalid size `{n}`")),
        }
        .map_err(serde::de::Error::custom)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StrOrNum {
    Str(String),
    Num(f64),
}

mod duration_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_grant_forms() {
        let g: DirGrant = "/tmp::/data:rw".parse().unwrap();
        assert_eq!(
            g,
            DirGrant {
                host: "/tmp".into(),
                guest: "/data".into(),
                writable: true
            }
        );
        let g: DirGrant = "/tmp::/data".parse().unwrap();
        assert!(!g.writable);
        let g: DirGrant = "/tmp::/data:ro".parse().unwrap();
        assert_eq!((g.guest.as_str(), g.writable), ("/data", false));
        let g: DirGrant = "/tmp:ro".parse().unwrap();
        assert_eq!(g.guest, "/mnt/tmp");
        let g: DirGrant = "/tmp::/a/b-c/ü d".parse().unwrap();
        assert_eq!(g.guest, "/a/b-c/ü d");
        // A relative HOST is only checked where it is used.
        let g: DirGrant = "data::/data".parse().unwrap();
        assert_eq!(g.host, PathBuf::from("data"));
        for bad in [
            "/tmp::data",
            "/tmp::/work",
            "/tmp::/work/x",
            "/tmp::/",
            "/tmp::/a/../b",
            "::/x",
        ] {
            assert!(bad.parse::<DirGrant>().is_err(), "{bad} should be rejected");
        }
    }

    fn refused(spec: &str) -> String {
        match spec.parse::<DirGrant>() {
            Ok(g) => panic!("{spec:?} was accepted as {g:?}"),
            Err(e) => {
                let msg = e.to_string();
                assert!(!msg.contains('\n'), "{msg}");
                msg
            }
        }
    }

    #[test]
    fn dir_grant_suffixes_and_colons() {
        assert_eq!(
            refused("/tmp::/x:ro:rw"),
            "invalid directory grant `/tmp::/x:ro:rw`: more than one :ro/:rw suffix (expected HOST[::GUEST][:ro|:rw])"
        );
        for spec in ["/tmp::/x:rw:ro", "/tmp::/x:ro:ro", "/tmp:ro:rw"] {
            assert!(
                refused(spec).contains("more than one :ro/:rw suffix"),
                "{spec}"
            );
        }
        assert_eq!(
            refused("/tmp::/x:y"),
            "invalid directory grant `/tmp::/x:y`: invalid guest path `/x:y`: must not contain `:` (give at most one :ro or :rw suffix)"
        );
        assert!(refused("/tmp::/x:rwx").contains("must not contain `:`"));
        assert_eq!(
            refused("/tmp::/x\ty"),
            "invalid directory grant `/tmp::/x\ty`: invalid guest path `/x\ty`: must not contain the control character '\\t'"
        );
        assert!(refused("/tmp::/x\x1b[2J").contains("invalid guest path `/x\\x1b[2J`"));
    }

    #[test]
    fn dir_grant_guest_paths_must_be_normal() {
        for (spec, normal) in [
            ("/tmp:://work", "/work"),
            ("/tmp::/work/", "/work"),
            ("/tmp::/data/", "/data"),
            ("/tmp::/a//b", "/a/b"),
            ("/tmp:://datasets:rw", "/datasets"),
            ("/tmp::///models", "/models"),
        ] {
            let err = refused(spec);
            assert!(
                err.ends_with(&format!(
                    ": empty component or trailing `/` (write `{normal}`)"
                )),
                "{spec}: {err}"
            );
        }
        for spec in [
            "/tmp::/./work",
            "/tmp::/work/.",
            "/tmp::/x/..",
            "/tmp::/../work",
        ] {
            assert!(
                refused(spec).ends_with("`.`/`..` are not allowed"),
                "{spec}"
            );
        }
        for (spec, root) in [
            ("/tmp::/work", "/work"),
            ("/tmp::/resume/x", "/resume"),
            ("/tmp::/models", "/models"),
            ("/tmp::/datasets/imdb", "/datasets"),
        ] {
            assert!(
                refused(spec).ends_with(&format!("`{root}` is reserved by labhost")),
                "{spec}"
            );
        }
        // Shadowing a reserved root by mounting its parent... `/` is refused
        // on its own; a prefix that is not a component is fine.
        let g: DirGrant = "/tmp::/workshop".parse().unwrap();
        assert_eq!(g.guest, "/workshop");
        // The same checks hold for a grant built in code.
        let g = DirGrant {
            host: "/tmp".into(),
            guest: "//work".into(),
            writable: true,
        };
        assert!(g.check().is_err());
    }

    #[test]
    fn dir_grant_refuses_the_host_root() {
        let why = "is the filesystem root: granting it would expose the whole host; grant a directory below it";
        for spec in [
            "/::/host",
            "/::/host:ro",
            "/::/host:rw",
            "//::/host:rw",
            "/.::/host",
            "/..::/host",
            "/../..::/host:ro",
        ] {
            let err = refused(spec);
            assert!(
                err.starts_with(&format!(
                    "invalid directory grant `{spec}`: host directory `"
                )),
                "{err}"
            );
            assert!(err.ends_with(why), "{err}");
        }
        // Without a guest path: still the root's problem, not the naming.
        assert!(refused("/:rw").ends_with(why));
        // Resolved: `..` above a real directory, and a symlink to `/`.
        let dir = tempfile::tempdir().unwrap();
        let up = format!("{}/../../../../../../../../..", dir.path().display());
        assert!(refused(&format!("{up}::/x")).ends_with(why));
        let link = dir.path().join("root-link");
        std::os::unix::fs::symlink("/", &link).unwrap();
        assert!(refused(&format!("{}::/x:ro", link.display())).ends_with(why));
        // check() (run and pipelines call it) resolves relative paths too.
        let g = DirGrant {
            host: "/".into(),
            guest: "/x".into(),
            writable: false,
        };
        assert!(g.check().unwrap_err().to_string().ends_with(why));
        let g: DirGrant = format!("{}::/x", dir.path().display()).parse().unwrap();
        assert_eq!(g.check().map_err(|e| e.to_string()), Ok(()));
    }

    /// The one table drives everything: each key parses, applies and is
    /// described back as given; settings files read the same keys.
    #[test]
    fn every_limit_round_trips_through_its_key() {
        let samples = |k: LimitKind| match k {
            LimitKind::duration => "90s",
            LimitKind::bytes => "3MiB",
            LimitKind::count => "7",
            LimitKind::metric => "eval_loss:min",
        };
        assert_eq!(LIMIT_TABLE.len(), LimitOverrides::KEYS.len());
        for l in LIMIT_TABLE {
            let mut o = LimitOverrides::default();
            o.set(l.key, samples(l.kind)).unwrap();
            let limits = o.to_limits();
            let shown: std::collections::HashMap<_, _> = limits.describe().into_iter().collect();
            assert_eq!(shown[l.key], samples(l.kind), "{}", l.key);
            let file: LimitOverrides =
                toml::from_str(&format!("{} = \"{}\"", l.key, samples(l.kind)))
                    .or_else(|_| toml::from_str(&format!("{} = {}", l.key, samples(l.kind))))
                    .unwrap();
            assert_eq!(file, o, "{}", l.key);
        }
        assert!(LimitOverrides::default().set("speed", "1").is_err());
    }

    #[test]
    fn limit_overrides_layer_and_apply() {
        let base: LimitOverrides =
            toml::from_str("timeout = \"10m\"\nmemory = \"512MiB\"").unwrap();
        let stage: LimitOverrides = toml::from_str("timeout = 30\nmax-files = 7").unwrap();
        let l = base.then(&stage).to_limits();
        assert_eq!(l.timeout, Duration::from_secs(30));
        assert_eq!(l.memory_bytes, 512 << 20);
        assert_eq!(l.stored_files, 7);
        assert_eq!(l.grace, Limits::default().grace);
        let err = toml::from_str::<LimitOverrides>("timout = \"1m\"").unwrap_err();
        assert!(err.to_string().contains("unknown field `timout`"), "{err}");
        let err = toml::from_str::<LimitOverrides>("memory = \"lots\"").unwrap_err();
        assert!(err.to_string().contains("invalid size `lots`"), "{err}");
    }
}
