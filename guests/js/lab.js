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
// Every function is a thin wrapper over one call of the `lab:api@0.2.0` WIT
// package (wit/lab.wit), with JS types: plain objects instead of JSON text,
// numbers instead of BigInt (u64 sizes, steps and counts), `null` for a WIT
// `none`, Uint8Array for bytes.
//
// New in lab:api 0.2.0: `updateProgress` (progress and metrics in one call),
// `getModel`/`getDataset` (one registry entry), `updateStatus` (a status
// stage), `getMetadata`/`updateMetadata`/`resetMetadata` (the job's free
// metadata), `lab.http.request`/`get`/`post` (outbound HTTP to granted
// endpoints), `getSecret` (granted secrets), and the error kind `network`.
// With it, `lab.nn` runs inference on models granted to the job through
// wasi:nn (`lab.nn.Model.load(name).runF32(input, dims, values)`).
//
// Errors: a lab call the host refuses throws a `LabError` whose `kind` is the
// WIT variant tag (`invalid-argument`, `denied`, `not-found`,
// `limit-exceeded`, `io`, `network`). Throwing a `PluginError` (LabError is one) out of
// `run` returns `err(message)`: the job fails with that message. Any other
// exception is a crash: it is reported on stderr and the component traps,
// like a Rust panic.
//
// StarlingMonkey has no `fs` or `process`: `lab.fs` reads and writes files
// through wasi:filesystem (only the job's grants are visible), `lab.print`
// writes to stdout without a newline, `lab.sleep` blocks. console.log and
// console.error go to the job log as STDOUT/STDERR lines.

import { write as logWrite } from 'lab:api/log@0.2.0';
import { update as progressUpdate, report as progressReport } from 'lab:api/progress@0.2.0';
import { get as configGet, info as configInfo } from 'lab:api/config@0.2.0';
import { recordMetric } from 'lab:api/metrics@0.2.0';
import {
  save as artifactsSave,
  list as artifactsList,
} from 'lab:api/artifacts@0.2.0';
import {
  save as checkpointsSave,
  list as checkpointsList,
  resumeFrom as checkpointsResumeFrom,
} from 'lab:api/checkpoints@0.2.0';
import {
  save as modelsSave,
  list as modelsList,
  open as modelsOpen,
  get as modelsGet,
} from 'lab:api/models@0.2.0';
import {
  saveRows as datasetsSaveRows,
  saveFile as datasetsSaveFile,
  list as datasetsList,
  open as datasetsOpen,
  get as datasetsGet,
} from 'lab:api/datasets@0.2.0';
import { save as evalsSave } from 'lab:api/evals@0.2.0';
import {
  finish as jobFinish,
  fail as jobFail,
  shouldStop as jobShouldStop,
  updateStatus as jobUpdateStatus,
} from 'lab:api/job@0.2.0';
import {
  get as metadataGet,
  update as metadataUpdate,
  reset as metadataReset,
} from 'lab:api/metadata@0.2.0';
import { send as httpSend } from 'lab:api/http@0.2.0';
import { get as secretsGet } from 'lab:api/secrets@0.2.0';
import {
  load as nnGraphLoad,
  loadByName as nnGraphLoadByName,
} from 'wasi:nn/graph@0.2.0-rc-2024-10-28';
import { Tensor as NnWitTensor } from 'wasi:nn/tensor@0.2.0-rc-2024-10-28';
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
  network: 'network',
};

/** The host refused or failed a lab call. `kind` is the WIT variant tag. */
export class LabError extends PluginError {
  constructor(kind, detail) {
    super(`${KIND_TEXT[kind] ?? kind}: ${detail}`);
    this.name = 'LabError';
    /** `invalid-argument` | `denied` | `not-found` | `limit-exceeded` | `io` | `network` */
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

/** `{name: value}` or `[[name, value], ...]` as a WIT list of (string, f64). */
function pairs(values) {
  const list = Array.isArray(values) ? values : Object.entries(values ?? {});
  return list.map(([k, v]) => [String(k), v]);
}

/**
 * Report progress (percent in [0, 100]) and metric values in one call
 * (Transformer Lab's `update_progress(progress, metrics=..., step=...)`).
 * `opts`: `{stage, metrics, step}`, all optional: `stage` a text such as
 * "epoch 2/3", `metrics` `{name: value}` or `[[name, value]]`, recorded as
 * by `metric(name, value, step)`, `step` an integer. Out-of-range or NaN
 * values throw a LabError `invalid-argument`.
 *
 *     lab.updateProgress(50, { stage: 'half', metrics: { loss: 0.5 }, step: 7 });
 */
export function updateProgress(percent, opts = {}) {
  const { stage, metrics, step } = opts;
  call(progressReport, percent, none(stage), pairs(metrics), u64(step));
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
/**
 * One model of the workspace registry (as `models()` shows it) by id or
 * name: `{id, name, jobId, architecture, pipelineTag, parentModel, metadata,
 * files}`. Throws `not-found`, or `invalid-argument` for a name saved by
 * several jobs (give the id).
 */
export function getModel(idOrName) {
  return modelInfo(call(modelsGet, idOrName));
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
/**
 * One dataset of the workspace registry (as `datasets()` shows it) by id or
 * name: `{id, name, jobId, rows, description, metadata, files}`. Throws
 * `not-found` when there is none.
 */
export function getDataset(idOrName) {
  return datasetInfo(call(datasetsGet, idOrName));
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
  call(jobFinish, message, pairs(scores));
}
/** End the job as failed. */
export function fail(message) {
  call(jobFail, message);
}
/** True once the job was asked to stop: checkpoint and return promptly. */
export function shouldStop() {
  return jobShouldStop();
}

/**
 * Report a status stage (Labelbox `update_status`): a short name such as
 * 'preparing', 'training' or 'uploading'. `opts`: `{metadata, errorMessage}`,
 * both optional: `metadata` an object merged into the job's metadata (as
 * `updateMetadata`), `errorMessage` a text. Shown by `labhost jobs`, `show`
 * and `pipeline status`; it does not end the job. An empty status throws
 * `invalid-argument`.
 */
export function updateStatus(status, opts = {}) {
  const { metadata, errorMessage } = opts;
  const md = metadata === undefined || metadata === null ? undefined : json(metadata, 'status metadata');
  call(jobUpdateStatus, String(status), md, none(errorMessage));
}

// ---- job metadata --------------------------------------------------------------

/**
 * The job's free metadata, an object recorded in the job record (`{}` until
 * set; Labelbox `get_config`). At most 64 KiB of JSON.
 */
export function getMetadata() {
  return JSON.parse(metadataGet());
}

/**
 * Merge `patch` (an object) into the job's metadata key by key, as JSON
 * Merge Patch (RFC 7386) does: a `null` value removes the key, an object
 * value is merged recursively. Returns the merged metadata. A patch that is
 * not an object throws `invalid-argument`; past 64 KiB, `limit-exceeded`.
 */
export function updateMetadata(patch) {
  return JSON.parse(call(metadataUpdate, json(patch, 'metadata patch')));
}

/** Replace the job's metadata with `value` (an object; `{}` clears it). */
export function resetMetadata(value = {}) {
  call(metadataReset, json(value, 'metadata'));
}

// ---- secrets -------------------------------------------------------------------

/**
 * The value of secret `name` granted to the job (`labhost run --secret
 * NAME`); throws `denied` when it was not granted. The host redacts the
 * value wherever the plugin logs, records or returns it. Prefer header
 * injection (`--http-header`), which never hands the value to the plugin.
 */
export function getSecret(name) {
  return call(secretsGet, String(name));
}

// ---- http ----------------------------------------------------------------------

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A request or response body as bytes: a string is UTF-8 encoded. */
function bytes(body) {
  if (body === undefined || body === null) return new Uint8Array(0);
  if (typeof body === 'string') return encoder.encode(body);
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  throw new PluginError('http body must be a string, Uint8Array or ArrayBuffer');
}

function response(r) {
  const headers = r.headers.map(([k, v]) => [k, v]);
  const body = r.body instanceof Uint8Array ? r.body : new Uint8Array(r.body);
  return {
    status: r.status,
    /** True for a 2xx status. */
    ok: r.status >= 200 && r.status < 300,
    /** `[[name, value], ...]` in the order received (names may repeat). */
    headers,
    body,
    /** The URL that answered (after redirects). */
    url: r.url,
    /** The value of the first header named `name` (any case), or null. */
    header(name) {
      const n = String(name).toLowerCase();
      const h = headers.find(([k]) => k.toLowerCase() === n);
      return h ? h[1] : null;
    },
    /** The body decoded as UTF-8. */
    text() {
      return decoder.decode(body);
    },
    /** The body parsed as JSON. */
    json() {
      return JSON.parse(decoder.decode(body));
    },
  };
}

/**
 * Outbound HTTP to the endpoints granted to the job (`labhost run
 * --allow-http URL`); any other URL throws a LabError `denied`, a request
 * that does not complete (refused, reset, TLS, timeout) `network`. A
 * non-2xx status is a response, not an error. Redirects are followed only
 * to granted URLs; headers the grant injects replace the plugin's.
 *
 *     const r = lab.http.request({ method: 'POST', url, headers: { 'x-a': '1' }, body: 'hi' });
 *     if (r.ok) lab.info(r.json().answer);
 *
 * The response: `{status, ok, headers: [[name, value]], body: Uint8Array,
 * url, header(name), text(), json()}`.
 */
export const http = {
  /**
   * Send one request and read the whole response. `method`: GET (default),
   * POST, PUT, PATCH, DELETE or HEAD; `url`: absolute http:// or https://;
   * `headers`: `{name: value}` or `[[name, value], ...]`; `body`: a string
   * (sent as UTF-8), Uint8Array or ArrayBuffer; `timeoutMs`: a timeout
   * shorter than the job's per-request limit.
   */
  request({ method = 'GET', url, headers = [], body, timeoutMs } = {}) {
    const list = Array.isArray(headers) ? headers : Object.entries(headers);
    const req = {
      method: String(method),
      url: String(url),
      headers: list.map(([k, v]) => [String(k), String(v)]),
      body: bytes(body),
      timeoutMs: none(timeoutMs),
    };
    return response(call(httpSend, req));
  },

  /** GET `url`; `opts`: `{headers, timeoutMs}`. */
  get(url, opts = {}) {
    return http.request({ ...opts, method: 'GET', url });
  },

  /**
   * POST `value` as JSON (content-type application/json) to `url`; `opts`:
   * `{headers, timeoutMs}` (a content-type among `headers` wins).
   */
  post(url, value, opts = {}) {
    const extra = Array.isArray(opts.headers) ? opts.headers : Object.entries(opts.headers ?? {});
    const headers = extra.some(([k]) => String(k).toLowerCase() === 'content-type')
      ? extra
      : [['content-type', 'application/json'], ...extra];
    return http.request({ method: 'POST', url, headers, body: json(value, 'http body'), timeoutMs: opts.timeoutMs });
  },
};

// ---- inference (wasi:nn) -----------------------------------------------------

/**
 * A failed wasi:nn call. `code` is the WIT spelling of the wasi:nn error code
 * (`invalid-argument`, `invalid-encoding`, `not-found`, `security`,
 * `too-large`, ...), `detail` the host's message. A PluginError: thrown out
 * of `run`, it fails the job with `<code>: <detail>`.
 */
export class NnError extends PluginError {
  constructor(code, detail) {
    super(`${code}: ${detail}`);
    this.name = 'NnError';
    this.code = code;
    this.detail = detail;
  }
}

/** Call a fallible wasi:nn import; its `err(error)` (a resource, released
 * here) becomes an NnError. */
function nnCall(f, ...args) {
  try {
    return f(...args);
  } catch (e) {
    const p = e?.payload;
    if (p && typeof p.code === 'function' && typeof p.data === 'function') {
      const err = new NnError(p.code(), p.data());
      p[Symbol.dispose]?.();
      throw err;
    }
    throw e;
  }
}

/** Fresh bytes of any typed array / ArrayBuffer / array of bytes. */
function ownBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return Uint8Array.from(data);
}

/** One tensor: `name`, `dims` (array of sizes), `ty` (`FP32`, `I64`, ...:
 * the WIT spelling) and `data` (a Uint8Array, little-endian, row-major). */
class NnTensor {
  constructor(name, dims, ty, data) {
    this.name = String(name);
    this.dims = Array.from(dims, Number);
    this.ty = ty;
    this.data = ownBytes(data);
  }

  /** An FP32 tensor from numbers (an array or a Float32Array, row-major). */
  static f32(name, dims, values) {
    const v = values instanceof Float32Array ? values : Float32Array.from(values);
    return new NnTensor(name, dims, 'FP32', new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }

  /** An I64 tensor from integers (numbers or BigInts; token ids, ...). */
  static i64(name, dims, values) {
    const v = values instanceof BigInt64Array ? values : BigInt64Array.from(values, (x) => BigInt(x));
    return new NnTensor(name, dims, 'I64', new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }

  /** The values of an FP32 tensor (a Float32Array). */
  toF32() {
    this.#expect('FP32');
    return new Float32Array(this.data.slice(0, this.data.length - (this.data.length % 4)).buffer);
  }

  /** The values of an I64 tensor (a BigInt64Array: class labels, token ids). */
  toI64() {
    this.#expect('I64');
    return new BigInt64Array(this.data.slice(0, this.data.length - (this.data.length % 8)).buffer);
  }

  #expect(ty) {
    if (this.ty !== ty) throw new NnError('invalid-argument', `tensor \`${this.name}\` is ${this.ty}, not ${ty}`);
  }
}

/** The outputs of one run, in the model's order (`tensors`, iterable);
 * `get(name)` finds one by name. */
class NnOutputs {
  constructor(tensors) {
    this.tensors = tensors;
  }

  /** The output named `name`; NnError `not-found` if the model has none. */
  get(name) {
    const t = this.tensors.find((t) => t.name === name);
    if (!t) {
      const names = this.tensors.map((t) => t.name).join(', ');
      throw new NnError('not-found', `no output \`${name}\` (outputs: ${names})`);
    }
    return t;
  }

  get length() {
    return this.tensors.length;
  }

  names() {
    return this.tensors.map((t) => t.name);
  }

  [Symbol.iterator]() {
    return this.tensors[Symbol.iterator]();
  }
}

/** A loaded model with its execution context. */
class NnModel {
  #graph;
  #ctx;

  constructor(graph, ctx) {
    this.#graph = graph;
    this.#ctx = ctx;
  }

  /** Load a model granted to the job, by registry id or name (or
   * `ID/FILE.onnx` for one file of a model holding several). */
  static load(name) {
    const graph = nnCall(nnGraphLoadByName, String(name));
    const ctx = nnCall(() => graph.initExecutionContext());
    return new NnModel(graph, ctx);
  }

  /** Run the model on named inputs (an array of `lab.nn.Tensor`); returns
   * every output (`lab.nn.Outputs`). */
  run(inputs) {
    if (!this.#ctx) throw new NnError('invalid-argument', 'the model was closed');
    const named = inputs.map((t) => [t.name, new NnWitTensor(Uint32Array.from(t.dims), t.ty, t.data)]);
    const out = nnCall(() => this.#ctx.compute(named));
    return new NnOutputs(
      out.map(([name, t]) => {
        const tensor = new NnTensor(name, t.dimensions(), t.ty(), t.data());
        t[Symbol.dispose]?.();
        return tensor;
      }),
    );
  }

  /** Run a single-input model on an FP32 tensor. */
  runF32(input, dims, values) {
    return this.run([NnTensor.f32(input, dims, values)]);
  }

  /** Release the model now (otherwise when it is garbage-collected). */
  close() {
    this.#ctx?.[Symbol.dispose]?.();
    this.#graph?.[Symbol.dispose]?.();
    this.#ctx = this.#graph = null;
  }

  [Symbol.dispose]() {
    this.close();
  }
}

/**
 * Inference on a model granted to the job, through wasi:nn: the host runs
 * the model (ONNX) at native speed.
 *
 *     const model = lab.nn.Model.load('digits-mlp');           // id or name
 *     const out = model.runF32('input', [1, 64], pixels);      // every output
 *     const probabilities = out.get('probabilities').toF32();  // Float32Array
 *
 * Failures throw `lab.nn.NnError` (`code`: `invalid-argument`,
 * `invalid-encoding`, `not-found`, `security`, `too-large`, ...).
 */
export const nn = {
  Model: NnModel,
  Tensor: NnTensor,
  Outputs: NnOutputs,
  NnError,
  /** The code as the WIT spells it (the bindings already use that spelling). */
  codeName: (code) => String(code),
  /** The element type as the WIT spells it (`FP32`, `I64`, ...). */
  typeName: (ty) => String(ty),
  /**
   * wasi:nn `graph.load` of model bytes (`builders`: an array of byte
   * arrays; encoding `onnx`, target `cpu` by default). labhost refuses it
   * (NnError `security`): load granted registry models with `Model.load`.
   */
  loadBytes(builders, encoding = 'onnx', target = 'cpu') {
    return nnCall(nnGraphLoad, builders.map(ownBytes), encoding, target);
  },
};

// ---- stdio, time -------------------------------------------------------------

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
