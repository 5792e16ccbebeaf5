// The conformance probe, in JavaScript: a port of guests/rust/testing/probe.
//
// Same description, same scenarios, same `probe: <key> <value>` reports with
// the same values (Rust's formatting is reproduced where it shows: `Some(2)`,
// `"quoted names"`, `Level::Info`, I/O error kinds), so tests/conformance.rs
// can hold every guest language to one set of expectations.

import * as lab from '../lab.js';

function report(key, value) {
  lab.info(`probe: ${key} ${value}`);
}

/** Name of the lab error variant a call threw, or `ok`. */
function outcome(f) {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (e instanceof lab.LabError) return e.kind;
    if (e instanceof lab.PluginError) return `other(${e.message})`;
    throw e;
  }
}

// ---- Rust formatting, so reports compare equal across languages ----------

/** `format!("{s:?}")` of a Rust &str. */
function rustDebugStr(s) {
  let out = '"';
  for (const c of s) {
    const n = c.codePointAt(0);
    if (c === '"' || c === '\\') out += `\\${c}`;
    else if (n === 0) out += '\\0';
    else if (c === '\t') out += '\\t';
    else if (c === '\n') out += '\\n';
    else if (c === '\r') out += '\\r';
    else if (n < 0x20 || n === 0x7f) out += `\\u{${n.toString(16)}}`;
    else out += c;
  }
  return `${out}"`;
}

/** `format!("{v:?}")` of a Rust Option<u64>. */
const rustOption = (v) => (v === null || v === undefined ? 'None' : `Some(${v})`);

/**
 * `format!("{x}")` of a Rust f32: the shortest decimal that reads back as the
 * same f32, in plain notation (no exponent, no `.0`).
 */
function rustF32(x) {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  let s;
  for (let prec = 1; prec <= 9; prec++) {
    s = x.toExponential(prec - 1);
    if (Math.fround(Number(s)) === x) break;
  }
  const [mantissa, exp] = s.split('e');
  const sign = mantissa.startsWith('-') ? '-' : '';
  const digits = mantissa.replace('-', '').replace('.', '').replace(/0+$/, '') || '0';
  const point = Number(exp) + 1; // digits before the decimal point
  let out;
  if (point <= 0) out = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) out = digits + '0'.repeat(point - digits.length);
  else out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return sign + out;
}

/** serde_json's `to_string` of a value (compact, keys sorted). */
function compact(value) {
  if (Array.isArray(value)) return `[${value.map(compact).join(',')}]`;
  if (value && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${compact(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

// std::io::ErrorKind's Display for the wasi:filesystem error codes a
// sandboxed guest sees.
const IO_KINDS = {
  'no-entry': 'entity not found',
  access: 'permission denied',
  'not-permitted': 'permission denied',
  'read-only': 'read-only filesystem or storage medium',
  exist: 'entity already exists',
  'is-directory': 'is a directory',
  'not-directory': 'not a directory',
};
const ioKind = (e) => IO_KINDS[e.code] ?? 'other error';

function writable(path) {
  try {
    lab.fs.writeFile(path, 'x');
    return true;
  } catch (e) {
    if (e instanceof lab.FsError) return false;
    throw e;
  }
}

function readable(path) {
  try {
    lab.fs.readFile(path);
    return true;
  } catch (e) {
    if (e instanceof lab.FsError) return false;
    throw e;
  }
}

function text(name) {
  const v = lab.config()[name];
  return typeof v === 'string' ? v : '';
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];
const capitalized = (s) => s[0].toUpperCase() + s.slice(1);

// ---- the plugin ----------------------------------------------------------

export const { describe, run } = lab.plugin({
  name: 'probe',
  kind: 'other',
  description: 'Conformance probe: exercises the lab API per scenario',
  params: [
    lab.param('scenario', 'text', 'all-api', 'What to do'),
    lab.param('count', 'integer', 3, 'A number some scenarios use'),
    lab.param('ratio', 'number', 0.5, 'A number'),
    lab.param('flag', 'boolean', false, 'A boolean'),
    lab.param('extra', 'json', {}, 'Free JSON'),
    lab.param('target', 'text', '', 'A path, id or name some scenarios use'),
  ],
  run() {
    const scenario = text('scenario');
    switch (scenario) {
      case 'all-api':
        return allApi();
      case 'open':
        return open();
      case 'bad-names':
        return badNames();
      case 'escape':
        return escape();
      case 'read':
        return read();
      case 'api-0-2':
        return api02();
      case 'nn':
        return nn();
      case 'trap':
        // An uncaught exception: reported on stderr, then the component traps.
        throw new Error('probe panicked on purpose');
      case 'return-error':
        throw new lab.PluginError('probe returned an error on purpose');
      case 'no-finish':
        return;
      case 'fail':
        return lab.fail('probe failed on purpose');
      case 'finish-twice':
        lab.finish('first finish', { first: 1.0 });
        report('second-finish', outcome(() => lab.finish('second finish')));
        return;
      case 'cooperative':
        // Wait for should-stop, then end by itself.
        while (!lab.shouldStop()) lab.sleep(5);
        return lab.fail('stopped on request');
      case 'spin':
        for (;;) {
          // A loop inside wasm: only the host's epoch deadline ends it.
        }
      case 'alloc': {
        const mib = Number(lab.config().count ?? 0);
        const chunks = [];
        for (let i = 0; i < mib; i++) chunks.push(new Uint8Array(1 << 20).fill(1));
        return lab.finish(`allocated ${chunks.length} MiB`);
      }
      case 'stdio':
        console.log('hello from stdout');
        console.error('hello from stderr');
        lab.print('unterminated');
        return lab.finish('printed');
      case 'log-flood': {
        const line = 'x'.repeat(1000);
        const n = Number(lab.config().count ?? 0);
        for (let i = 0; i < n; i++) lab.info(line);
        return lab.finish('flooded');
      }
      default:
        throw new lab.PluginError(`unknown scenario \`${scenario}\``);
    }
  },
});

/** Every lab call, with the results reported. */
function allApi() {
  for (const level of LEVELS) lab.log(level, `level Level::${capitalized(level)}`);
  report('config', compact(lab.config()));
  const info = lab.jobInfo();
  report('job-id', info.jobId);
  report('experiment', info.experiment);
  report('work-dir', info.workDir);
  lab.progress(10, 'writing');
  report('progress-over-100', outcome(() => lab.progress(150)));
  report('progress-nan', outcome(() => lab.progress(NaN)));
  for (let step = 0; step < 3; step++) lab.metric('loss', 1 / (step + 1), step);
  lab.metric('lr', 0.1);
  report('metric-nan', outcome(() => lab.metric('loss', NaN, 9)));

  const work = lab.workDir();
  lab.fs.writeFile(`${work}/hello.txt`, 'hello artifact\n');
  lab.fs.mkdir(`${work}/bundle/sub`);
  lab.fs.writeFile(`${work}/bundle/a.txt`, 'a');
  lab.fs.writeFile(`${work}/bundle/sub/b.txt`, 'bb');
  const a = lab.saveArtifact('/work/hello.txt');
  report('artifact', `${a.name} ${a.size} ${a.digest}`);
  const b = lab.saveArtifact('bundle', 'bundle-dir');
  report('artifact', `${b.name} ${b.size} ${b.digest} files=${b.files}`);
  report('artifact-dup', outcome(() => lab.saveArtifact('/work/hello.txt')));
  report('artifact-missing', outcome(() => lab.saveArtifact('/work/nope.txt')));
  report('artifacts', lab.artifacts().length);
  lab.progress(40, 'checkpoints');

  lab.fs.writeFile(`${work}/ckpt.json`, JSON.stringify({ step: 7 }));
  lab.saveCheckpoint('/work/ckpt.json', 'step-7');
  report('checkpoints', lab.checkpoints().map((c) => c.name).join(','));
  const r = lab.resumeFrom();
  if (r) {
    const content = lab.fs.readText(r.path);
    report('resume', `${r.jobId} ${r.name} ${content}`);
    report('resume-write', writable(r.path) ? 'allowed' : 'denied');
  } else {
    report('resume', 'none');
  }

  lab.fs.mkdir(`${work}/model`);
  lab.fs.writeFile(`${work}/model/weights.bin`, new Uint8Array([1, 2, 3, 4]));
  const m = lab.saveModel('/work/model', 'probe-model', {
    architecture: 'probe-arch',
    pipelineTag: 'text-classification',
    parentModel: 'base-model',
    metadata: { layers: 2 },
  });
  report('model', `${m.id} ${m.name} files=${m.files.files}`);
  report('models', lab.models().length);
  // Metadata that is not a JSON object.
  report('model-bad-metadata', outcome(() => lab.saveModel('/work/model', 'probe-model-2', { metadata: [1, 2] })));

  // Keys in sorted order: what serde_json writes for Rust's json!().
  const rows = [
    { label: 1, text: 'a' },
    { label: 0, text: 'b' },
  ];
  const d = lab.saveDataset('probe-rows', rows, { description: 'two rows', metadata: { source: 'probe' } });
  report('dataset', `${d.id} ${d.name} rows=${rustOption(d.rows)}`);
  report('dataset-not-object', outcome(() => lab.saveDataset('probe-bad', [[1]])));
  lab.fs.writeFile(`${work}/data.csv`, 'x,y\n1,2\n');
  const f = lab.saveDatasetFile('/work/data.csv', 'probe-file');
  report('dataset-file', `${f.id} rows=${rustOption(f.rows)}`);
  report('datasets', lab.datasets().length);
  report('open-ungranted', outcome(() => lab.openDataset('probe-rows')));

  const evalRows = [
    { input: 'a', output: '1', expected: '1', score: 1.0, extra: { p: 0.9 } },
    { input: 'b, with comma', output: '1', expected: '0', score: 0.0, extra: { p: 0.6 } },
    { input: 'c', output: '0', expected: null, score: 0.5, extra: {} },
  ];
  for (const [name, format] of [
    ['probe-eval', 'csv'],
    ['probe-eval-jsonl', 'jsonl'],
  ]) {
    const s = lab.saveEval(name, evalRows, format);
    report('eval', `${s.name} count=${s.count} mean=${s.meanScore}`);
  }
  report('should-stop', lab.shouldStop());
  lab.progress(100, 'done');
  lab.finish('all calls made', { calls: 20, mean: 0.5 });
}

/** Inference through wasi:nn on the granted model named by `target`, then
 * the error codes of bad inputs and refused loads. */
function nn() {
  const { Model, Tensor, NnError } = lab.nn;
  const model = Model.load(text('target'));
  const out = model.run([Tensor.f32('x', [2, 3], [1, 2, 3, 0, 0, -4])]);
  report('nn_outputs', [...out].map((t) => `${t.name}:${lab.nn.typeName(t.ty)}:${t.dims.join('x')}`).join(','));
  report('nn_scores', Array.from(out.get('scores').toF32(), rustF32).join(','));
  report('nn_labels', Array.from(out.get('label').toI64(), String).join(','));
  const code = (f) => {
    try {
      f();
      return 'ok';
    } catch (e) {
      if (e instanceof NnError) return e.code;
      throw e;
    }
  };
  report('nn_bad_dims', code(() => model.run([Tensor.f32('x', [1, 4], [0, 0, 0, 0])])));
  for (const [key, name] of [['nn_malformed', 'garbage'], ['nn_ungranted', 'ungranted'], ['nn_missing', 'nosuch']]) {
    report(key, code(() => Model.load(name)));
  }
  report('nn_load_bytes', code(() => lab.nn.loadBytes([new Uint8Array([1, 2, 3])])));
  lab.finish('nn done');
}

/**
 * The calls new in lab:api 0.2.0: metadata, status, progress report, secrets,
 * HTTP (to `target`), dataset/model get. Metadata is reported as the host's
 * compact JSON text (serde_json: sorted keys, no spaces).
 */
function api02() {
  report('meta0', compact(lab.getMetadata()));
  report('meta1', compact(lab.updateMetadata({ a: 1, b: { c: 2 } })));
  report('meta2', compact(lab.updateMetadata({ b: null, d: 'x' })));
  lab.resetMetadata({ r: true });
  report('meta3', compact(lab.getMetadata()));
  report('meta-err', outcome(() => lab.updateMetadata([1])));

  lab.updateStatus('preparing', { metadata: { phase: 1 } });
  report('status', outcome(() => lab.updateStatus('training', { errorMessage: 'warming up' })));
  report('status-err', outcome(() => lab.updateStatus('')));

  report('report', outcome(() => lab.updateProgress(50.0, { stage: 'half', metrics: [['loss', 0.5], ['acc', 0.75]], step: 7 })));
  report('report-err', outcome(() => lab.updateProgress(150.0)));

  const secret = lab.getSecret('PROBE_SECRET');
  report('secret-len', new TextEncoder().encode(secret).length);
  // Not a probe line: the host must redact the value.
  lab.info(`probe-secret ${secret}`);
  report('secret-err', outcome(() => lab.getSecret('NOT_GRANTED')));

  const r = lab.http.request({
    method: 'POST',
    url: text('target'),
    headers: [
      ['content-type', 'application/json'],
      ['x-probe', '1'],
    ],
    body: '{"hello":"world"}',
  });
  report('http-status', r.status);
  report('http-body', r.text());
  report('http-denied', outcome(() => lab.http.request({ method: 'GET', url: 'http://example.invalid/' })));

  lab.saveDataset('qa', [{ q: '1' }, { q: '2' }]);
  const d = lab.getDataset('qa');
  report('dataset-get', `${d.id} ${d.rows ?? 'none'}`);
  report('model-get-err', outcome(() => lab.getModel('no-such-model')));
  lab.finish('api-0-2 done');
}

/** Open the granted dataset/model named by `target` and report a file. */
function open() {
  const target = text('target');
  const at = target.indexOf(':');
  const [kind, id] = at < 0 ? [null, null] : [target.slice(0, at), target.slice(at + 1)];
  let path;
  if (kind === 'dataset') path = lab.openDataset(id);
  else if (kind === 'model') path = lab.openModel(id);
  else throw new lab.PluginError('target must be dataset:ID or model:ID');
  report('path', path);
  report('files', lab.fs.readdir(path).sort().join(','));
  report('write', writable(`${path}/new.txt`) ? 'allowed' : 'denied');
  lab.finish('opened');
}

/** Names that must be refused with invalid-argument. */
function badNames() {
  lab.fs.writeFile(`${lab.workDir()}/f.txt`, 'x');
  const long = 'n'.repeat(300);
  for (const name of ['../x', 'a/b', '', 'nul\0byte', '..', '.', long, '/abs']) {
    report(`artifact-name ${rustDebugStr(name)}`, outcome(() => lab.saveArtifact('/work/f.txt', name)));
  }
  report('checkpoint-name', outcome(() => lab.saveCheckpoint('/work/f.txt', '../up')));
  report('model-name', outcome(() => lab.saveModel('/work/f.txt', 'a/b')));
  report('dataset-name', outcome(() => lab.saveDataset('..', [{}])));
  report('eval-name', outcome(() => lab.saveEval('x/y', [], 'csv')));
  report('metric-name', outcome(() => lab.metric('', 1.0)));
  report('artifacts', lab.artifacts().length);
  lab.finish('bad names tried');
}

/** Paths that leave the grants, directly or through symlinks. */
function escape() {
  report('etc-passwd', outcome(() => lab.saveArtifact('/etc/passwd')));
  report('dotdot', outcome(() => lab.saveArtifact('/work/../../etc/passwd')));
  report('relative-dotdot', outcome(() => lab.saveArtifact('../etc/passwd')));
  report('open-etc', readable('/etc/passwd') ? 'readable' : 'unreadable');
  // Symlinks out of a grant (`target` is a granted directory holding
  // `link` -> /etc/passwd and `dir/up` -> /etc): never followed.
  const target = text('target');
  if (target) {
    report('symlink-file', outcome(() => lab.saveArtifact(`${target}/link`, 'link')));
    report('symlink-in-dir', outcome(() => lab.saveArtifact(`${target}/dir`, 'dir')));
    report('symlink-read', readable(`${target}/link`) ? 'readable' : 'unreadable');
  }
  report('artifacts', lab.artifacts().length);
  lab.finish('escapes tried');
}

/** Read a file at `target` and report its content. */
function read() {
  const target = text('target');
  try {
    report('content', lab.fs.readText(target).trim());
  } catch (e) {
    if (!(e instanceof lab.FsError)) throw e;
    report('read-error', ioKind(e));
  }
  report('write', writable(`${target}.new`) ? 'allowed' : 'denied');
  lab.finish('read');
}
