// Write labhost plugins in JavaScript (componentize-js / StarlingMonkey).
//
//     import * as lab from '../lab.js';
//
//     export const { describe, run } = lab.plugin({
//       name: 'hello',
//       kind: 'other',
//       description: 'Says hello',
//       params: [lab.param('who', 'text', 'world', 'Whom to greet')],
//       run() {
//         const who = lab.config().who;
//         lab.fs.writeFile('/work/hello.txt', `hello ${who}\n`);
//         lab.saveArtifact('/work/hello.txt');
//         lab.finish(`said hello to ${who}`);
//       },
//     });
//
// Every function is a thin wrapper over one call of the `lab:api` WIT package
// (wit/lab.wit), with JS types: plain objects instead of JSON text, numbers
// instead of BigInt (u64 sizes, steps and counts), `null` for a WIT `none`.
//
// Errors: a lab call the host refuses throws a `LabError` whose `kind` is the
// WIT variant tag (`invalid-argument`, `denied`, `not-found`,
// `limit-exceeded`, `io`). Throwing a `PluginError` (LabError is one) out of
// `run` returns `err(message)`: the job fails with that message. Any other
// exception is a crash: it is reported on stderr and the component traps,
// like a Rust panic.
//
// StarlingMonkey has no `fs` or `process`: `lab.fs` reads and writes files
// through wasi:filesystem (only the job's grants are visible), `lab.print`
// writes to stdout without a newline, `lab.sleep` blocks. console.log and
// console.error go to the job log as STDOUT/STDERR lines.

import { write as logWrite } from 'lab:api/log@0.1.0';
import { update as progressUpdate } from 'lab:api/progress@0.1.0';
import { get as configGet, info as configInfo } from 'lab:api/config@0.1.0';
import { recordMetric } from 'lab:api/metrics@0.1.0';
import {
  save as artifactsSave,
  list as artifactsList,
} from 'lab:api/artifacts@0.1.0';
import {
  save as checkpointsSave,
  list as checkpointsList,
  resumeFrom as checkpointsResumeFrom,
} from 'lab:api/checkpoints@0.1.0';
import {
  save as modelsSave,
  list as modelsList,
  open as modelsOpen,
} from 'lab:api/models@0.1.0';
import {
  saveRows as datasetsSaveRows,
  saveFile as datasetsSaveFile,
  list as datasetsList,
  open as datasetsOpen,
} from 'lab:api/datasets@0.1.0';
import { save as evalsSave } from 'lab:api/evals@0.1.0';
import {
  finish as jobFinish,
  fail as jobFail,
  shouldStop as jobShouldStop,
} from 'lab:api/job@0.1.0';
import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';
import { getStdout } from 'wasi:cli/stdout@0.2.12';
import { subscribeDuration } from 'wasi:clocks/monotonic-clock@0.2.12';

// ---- errors ----------------------------------------------------------------

/** An error that fails the job with its message when thrown out of `run`. */
export class PluginError extends Error {
  constructor(message) {
    super(message);
    this.name = 'PluginError';
  }
}

const KIND_TEXT = {
  'invalid-argument': 'invalid argument',
  denied: 'denied',
  'not-found': 'not found',
  'limit-exceeded': 'limit exceeded',
  io: 'io',
};

/** The host refused or failed a lab call. `kind` is the WIT variant tag. */
export class LabError extends PluginError {
  constructor(kind, detail) {
    super(`${KIND_TEXT[kind] ?? kind}: ${detail}`);
    this.name = 'LabError';
    /** `invalid-argument` | `denied` | `not-found` | `limit-exceeded` | `io` */
    this.kind = kind;
    /** The host's one-line explanation. */
    this.detail = detail;
  }
}

/** Call a fallible import; its `err(lab-error)` becomes a LabError. */
function call(f, ...args) {
  try {
    return f(...args);
  } catch (e) {
    const p = e?.payload;
    if (p && typeof p.tag === 'string' && typeof p.val === 'string') {
      throw new LabError(p.tag, p.val);
    }
    throw e;
  }
}

const none = (v) => (v === null || v === undefined ? undefined : v);
const some = (v) => (v === undefined ? null : v);
const u64 = (v) => (v === undefined || v === null ? undefined : BigInt(v));

function json(value, what) {
  let s;
  try {
    s = JSON.stringify(value);
  } catch (e) {
    throw new PluginError(`${what} is not JSON-serialisable: ${e.message}`);
  }
  if (s === undefined) {
    throw new PluginError(`${what} is not JSON-serialisable`);
  }
  return s;
}

// ---- the plugin --------------------------------------------------------------

/**
 * A parameter for `plugin({params})`. `type`: text, integer, number, boolean
 * or json; `defaultValue` is any JSON value (`undefined`: required).
 */
export function param(name, type, defaultValue, description = '') {
  return {
    name,
    type,
    default: defaultValue === undefined ? undefined : json(defaultValue, `default of ${name}`),
    description,
  };
}

/**
 * Declare the plugin; returns the component's `{describe, run}` exports:
 * `export const { describe, run } = lab.plugin({...})`.
 * `kind`: generator, trainer, evaluator or other.
 */
export function plugin({ name, version = '0.1.0', kind = 'other', description = '', params = [], run }) {
  const info = { name, version, kind, description, params };
  return {
    describe() {
      return info;
    },
    run() {
      try {
        run();
      } catch (e) {
        if (e instanceof PluginError) {
          // componentize-js lowers a thrown string as the `err` of result<_, string>.
          throw e.message;
        }
        // A crash: report it like an uncaught exception, then trap. Anything
        // but a string thrown out of an export returning result<_, string>
        // cannot be lowered as its `err`, so the engine aborts (a trap). Not
        // the caught value itself: SpiderMonkey throws the *string* "out of
        // memory" when the host refuses to grow memory, and that must stay a
        // crash (the host then reports its memory limit), not an `err`.
        try {
          const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
          const stack = e instanceof Error && e.stack ? `\n${e.stack}` : '';
          console.error(`Uncaught ${what}${stack}`);
        } catch {
          // Reporting needs memory too; trap regardless.
        }
        throw null;
      }
    },
  };
}

// ---- log ---------------------------------------------------------------------

/** Append a message to the job log; `level`: trace, debug, info, warn, error. */
export function log(level, message) {
  logWrite(level, String(message));
}
export const debug = (message) => log('debug', message);
export const info = (message) => log('info', message);
export const warn = (message) => log('warn', message);
export const error = (message) => log('error', message);

// ---- progress, metrics -------------------------------------------------------

/** Report progress in percent (0–100), optionally with a stage text. */
export function progress(percent, stage) {
  call(progressUpdate, percent, none(stage));
}

/** Record a metric value, optionally at an integer step. */
export function metric(name, value, step) {
  call(recordMetric, name, value, u64(step));
}

// ---- config ------------------------------------------------------------------

/** The job's parameters (defaults filled in) as an object. */
export function config() {
  return JSON.parse(configGet());
}

/** `{jobId, experiment, workDir}`. */
export function jobInfo() {
  return configInfo();
}

/** The job's private read-write scratch directory (`/work`). */
export function workDir() {
  return configInfo().workDir;
}

// ---- artifacts, checkpoints --------------------------------------------------

function stored(s) {
  return { name: s.name, location: s.location, size: Number(s.size), files: s.files, digest: s.digest };
}

/** Store a file or directory as an artifact (name: the path's last component). */
export function saveArtifact(path, name) {
  return stored(call(artifactsSave, path, none(name)));
}
export function artifacts() {
  return artifactsList().map(stored);
}

/** Store a file or directory as a checkpoint. */
export function saveCheckpoint(path, name) {
  return stored(call(checkpointsSave, path, name));
}
export function checkpoints() {
  return checkpointsList().map(stored);
}

/** `{jobId, name, path}` of the checkpoint to resume from, or null. */
export function resumeFrom() {
  return some(checkpointsResumeFrom()) ?? null;
}

// ---- models, datasets --------------------------------------------------------

function modelInfo(m) {
  return {
    id: m.id,
    name: m.name,
    jobId: m.jobId,
    architecture: some(m.meta.architecture),
    pipelineTag: some(m.meta.pipelineTag),
    parentModel: some(m.meta.parentModel),
    metadata: JSON.parse(m.meta.metadata),
    files: stored(m.files),
  };
}

/**
 * Store a file or directory as a model. `meta`: `{architecture, pipelineTag,
 * parentModel, metadata}` (all optional; metadata an object).
 */
export function saveModel(path, name, meta = {}) {
  const m = call(modelsSave, path, name, {
    architecture: none(meta.architecture),
    pipelineTag: none(meta.pipelineTag),
    parentModel: none(meta.parentModel),
    metadata: json(meta.metadata ?? {}, 'model metadata'),
  });
  return modelInfo(m);
}
export function models() {
  return modelsList().map(modelInfo);
}
/** The read-only path of a model granted to this job (by id or name). */
export function openModel(idOrName) {
  return call(modelsOpen, idOrName);
}

function datasetInfo(d) {
  return {
    id: d.id,
    name: d.name,
    jobId: d.jobId,
    rows: d.rows === undefined || d.rows === null ? null : Number(d.rows),
    description: some(d.description),
    metadata: JSON.parse(d.metadata),
    files: stored(d.files),
  };
}

/** Store rows (objects) as a dataset. `opts`: `{description, metadata}`. */
export function saveDataset(name, rows, opts = {}) {
  const lines = rows.map((r, i) => json(r, `row ${i}`));
  return datasetInfo(
    call(datasetsSaveRows, name, lines, none(opts.description), json(opts.metadata ?? {}, 'dataset metadata')),
  );
}
/** Store a file or directory as a dataset. `opts`: `{description, metadata}`. */
export function saveDatasetFile(path, name, opts = {}) {
  return datasetInfo(
    call(datasetsSaveFile, path, name, none(opts.description), json(opts.metadata ?? {}, 'dataset metadata')),
  );
}
export function datasets() {
  return datasetsList().map(datasetInfo);
}
/** The read-only path of a dataset granted to this job (by id or name). */
export function openDataset(idOrName) {
  return call(datasetsOpen, idOrName);
}

// ---- evals -------------------------------------------------------------------

/**
 * Store an eval table. `rows`: `{input, output, expected?, score, extra?}`
 * (extra: an object of extra columns); `format`: csv or jsonl.
 * Returns `{name, count, meanScore, file}`.
 */
export function saveEval(name, rows, format = 'csv') {
  const wit = rows.map((r) => ({
    input: String(r.input),
    output: String(r.output),
    expected: none(r.expected),
    score: r.score,
    extra: json(r.extra ?? {}, 'eval extra'),
  }));
  const s = call(evalsSave, name, wit, format);
  return { name: s.name, count: Number(s.count), meanScore: s.meanScore, file: stored(s.file) };
}

// ---- job end -----------------------------------------------------------------

/** End the job successfully; `scores`: `{name: value}` or `[[name, value]]`. */
export function finish(message, scores = {}) {
  const list = Array.isArray(scores) ? scores : Object.entries(scores);
  call(jobFinish, message, list.map(([k, v]) => [String(k), v]));
}
/** End the job as failed. */
export function fail(message) {
  call(jobFail, message);
}
/** True once the job was asked to stop: checkpoint and return promptly. */
export function shouldStop() {
  return jobShouldStop();
}

// ---- stdio, time -------------------------------------------------------------

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Write text to stdout as is (console.log adds a newline). */
export function print(text) {
  const bytes = encoder.encode(String(text));
  const out = getStdout();
  for (let i = 0; i < bytes.length; i += 4096) {
    out.blockingWriteAndFlush(bytes.subarray(i, i + 4096));
  }
}

/** Block for `ms` milliseconds. */
export function sleep(ms) {
  subscribeDuration(BigInt(Math.max(0, Math.round(ms * 1e6)))).block();
}

// ---- files -------------------------------------------------------------------

/**
 * A failed file operation. `code` is the wasi:filesystem error code
 * (`no-entry`, `access`, `not-permitted`, `read-only`, `exist`, ...).
 */
export class FsError extends Error {
  constructor(code, op, path) {
    super(`${op} ${path}: ${code}`);
    this.name = 'FsError';
    this.code = code;
    this.path = path;
  }
}

function fsCall(op, path, f) {
  try {
    return f();
  } catch (e) {
    if (e instanceof FsError) throw e;
    const code = typeof e?.payload === 'string' ? e.payload : 'io';
    throw new FsError(code, op, path);
  }
}

/** The preopened directory holding `path` and the path relative to it. */
function resolve(path) {
  path = String(path);
  if (!path.startsWith('/')) path = `${workDir()}/${path}`;
  let best = null;
  for (const [dir, at] of getDirectories()) {
    const root = at.replace(/\/+$/, '');
    if (path === root || path.startsWith(`${root}/`)) {
      if (!best || root.length > best[1].length) best = [dir, root];
    }
  }
  if (!best) throw new FsError('no-entry', 'open', path);
  const rel = path.slice(best[1].length).replace(/^\/+/, '') || '.';
  return [best[0], rel];
}

function open(path, openFlags, flags, op) {
  return fsCall(op, path, () => {
    const [dir, rel] = resolve(path);
    return dir.openAt({ symlinkFollow: true }, rel, openFlags, flags);
  });
}

function close(fd) {
  fd[Symbol.dispose]?.();
}

export const fs = {
  /** Read a file's bytes (Uint8Array). */
  readFile(path) {
    const fd = open(path, {}, { read: true }, 'read');
    try {
      const chunks = [];
      let offset = 0n;
      let total = 0;
      for (;;) {
        const [data, eof] = fsCall('read', path, () => fd.read(65536n, offset));
        if (data.length) {
          chunks.push(data);
          total += data.length;
          offset += BigInt(data.length);
        }
        if (eof || data.length === 0) break;
      }
      const out = new Uint8Array(total);
      let at = 0;
      for (const c of chunks) {
        out.set(c, at);
        at += c.length;
      }
      return out;
    } finally {
      close(fd);
    }
  },

  /** Read a UTF-8 text file. */
  readText(path) {
    return decoder.decode(fs.readFile(path));
  },

  /** Create or replace a file with `data` (a string, written as UTF-8, or bytes). */
  writeFile(path, data) {
    const bytes = typeof data === 'string' ? encoder.encode(data) : new Uint8Array(data);
    const fd = open(path, { create: true, truncate: true }, { write: true }, 'write');
    try {
      let offset = 0;
      while (offset < bytes.length) {
        const n = fsCall('write', path, () => fd.write(bytes.subarray(offset), BigInt(offset)));
        offset += Number(n);
      }
    } finally {
      close(fd);
    }
  },

  /** Create a directory and its missing parents. */
  mkdir(path) {
    const [dir, rel] = fsCall('mkdir', path, () => resolve(path));
    let sub = '';
    for (const part of rel.split('/')) {
      if (!part || part === '.') continue;
      sub = sub ? `${sub}/${part}` : part;
      try {
        dir.createDirectoryAt(sub);
      } catch (e) {
        if (e?.payload !== 'exist') throw new FsError(e?.payload ?? 'io', 'mkdir', path);
      }
    }
  },

  /** The names in a directory (unsorted). */
  readdir(path) {
    const fd = open(path, { directory: true }, { read: true }, 'readdir');
    try {
      const stream = fsCall('readdir', path, () => fd.readDirectory());
      const names = [];
      for (;;) {
        const entry = fsCall('readdir', path, () => stream.readDirectoryEntry());
        if (!entry) break;
        names.push(entry.name);
      }
      close(stream);
      return names;
    } finally {
      close(fd);
    }
  },

  /** True if `path` can be opened for reading. */
  exists(path) {
    try {
      close(open(path, {}, {}, 'stat'));
      return true;
    } catch (e) {
      if (e instanceof FsError) return false;
      throw e;
    }
  },
};
