// `sentiment-evaluator-js`: score a sentiment model on a dataset split.
//
// The JavaScript port of guests/rust/plugins/evaluator (and of the Python one,
// guests/python/plugins/evaluator). Same kind, parameters and outputs, so it
// evaluates the Rust trainer's model and writes the same predictions table,
// byte for byte:
//
// It opens a `labhost-logreg-v1` model (a directory holding `model.json`:
// {"format", "vocab": {word: weight}, "bias", "tokenizer"}) and a dataset
// (`data.jsonl`, one {"text", "label", "split"} per line), predicts every row
// of the chosen split, and stores the predictions as the eval table
// `predictions` (CSV or JSON lines): input text, predicted label, expected
// label, score 1/0 for right/wrong, and the probability as an extra column.
// Accuracy, precision, recall and F1 (positive class = 1) become the job's
// scores.
//
// Where the output could differ from Rust's it is made not to:
// - token weights are summed left to right from -0.0 (Rust's f64 `Sum`),
//   then added to the bias, as `bias + weights.sum()` does;
// - the extra column is sent as JSON text written here, so a probability that
//   is a whole number stays a float (`1.0`, as serde_json writes it) instead
//   of JSON.stringify's `1`, which the host would re-emit as an integer;
// - `{:.3}` in the finish message rounds an exact tie half to even, like
//   Rust, where Number#toFixed rounds it up.

import * as lab from '../lab.js';
import { save as evalsSave } from 'lab:api/evals@0.2.0';

// ---- model and data ----------------------------------------------------------

/** Lowercase, then split on anything that is not alphanumeric (the
 * `lowercase-alnum` tokenizer; Rust's char::is_alphanumeric). */
function tokenize(text) {
  const tokens = [];
  let current = '';
  for (const c of text.toLowerCase()) {
    if (isAlphanumeric(c)) {
      current += c;
    } else if (current) {
      tokens.push(current);
      current = '';
    }
  }
  if (current) tokens.push(current);
  return tokens;
}

// Uncased letters and non-ASCII digits of common scripts (code point ranges,
// inclusive). componentize-js's SpiderMonkey is built without ICU, so regular
// expressions have no \p{...} classes: outside ASCII a character counts as
// alphanumeric when it is a cased letter or falls in one of these ranges.
// Exact for ASCII text (all the example datasets); an approximation of
// Unicode Alphabetic + Numeric elsewhere.
const UNCASED_ALNUM = [
  [0xaa, 0xaa], [0xb2, 0xb3], [0xb9, 0xba], [0xbc, 0xbe],
  [0x5d0, 0x5ea], [0x620, 0x64a], [0x660, 0x669], [0x66e, 0x6d3], [0x6f0, 0x6fc],
  [0x904, 0x939], [0x966, 0x96f], [0xe01, 0xe30], [0x3041, 0x3096], [0x30a1, 0x30fa],
  [0x3400, 0x4dbf], [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0xff10, 0xff19],
];

function isAlphanumeric(c) {
  const n = c.codePointAt(0);
  if (n < 0x80) {
    return (n >= 0x30 && n <= 0x39) || (n >= 0x61 && n <= 0x7a) || (n >= 0x41 && n <= 0x5a);
  }
  if (c.toLowerCase() !== c.toUpperCase()) return true;
  return UNCASED_ALNUM.some(([lo, hi]) => n >= lo && n <= hi);
}

/** The path of `model.json` in a model directory (or the path itself, should
 * the model have been saved as a single file). */
function modelFile(path) {
  const inside = `${path.replace(/\/+$/, '')}/model.json`;
  return lab.fs.exists(inside) ? inside : path;
}

/** Open the granted model `name` (a name or id) and read its `model.json`. */
function openModel(name) {
  const path = modelFile(lab.openModel(name));
  let text;
  try {
    text = lab.fs.readText(path);
  } catch (e) {
    throw new lab.PluginError(`cannot read ${path}: ${e.message}`);
  }
  let model;
  try {
    model = JSON.parse(text);
  } catch (e) {
    throw new lab.PluginError(`${path} is not a logistic regression model: ${e.message}`);
  }
  const ok =
    model !== null &&
    typeof model === 'object' &&
    typeof model.format === 'string' &&
    typeof model.tokenizer === 'string' &&
    typeof model.bias === 'number' &&
    model.vocab !== null &&
    typeof model.vocab === 'object' &&
    !Array.isArray(model.vocab) &&
    Object.values(model.vocab).every((w) => typeof w === 'number');
  if (!ok) throw new lab.PluginError(`${path} is not a logistic regression model`);
  if (model.format !== 'labhost-logreg-v1') {
    throw new lab.PluginError(`unsupported model format ${JSON.stringify(model.format)}`);
  }
  if (model.tokenizer !== 'lowercase-alnum') {
    throw new lab.PluginError(`unsupported tokenizer ${JSON.stringify(model.tokenizer)}`);
  }
  const vocab = new Map(Object.entries(model.vocab));
  return {
    size: vocab.size,
    /** The sigmoid of the bias plus the weight of every token occurrence
     * (unknown tokens weigh 0), summed in Rust's order. */
    probability(text) {
      let sum = -0;
      for (const token of tokenize(text)) {
        const w = vocab.get(token);
        if (w !== undefined) sum += w;
      }
      const score = model.bias + sum;
      return 1 / (1 + exp(-score));
    },
  };
}

/** The rows of `split` in dataset `name` (a name or id). */
function loadSplit(name, split) {
  const path = `${lab.openDataset(name).replace(/\/+$/, '')}/data.jsonl`;
  let text;
  try {
    text = lab.fs.readText(path);
  } catch (e) {
    throw new lab.PluginError(`cannot read ${path}: ${e.message}`);
  }
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const rows = [];
  lines.forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!line.trim()) return;
    const fail = (why) => {
      throw new lab.PluginError(`${path} line ${i + 1}: ${why}`);
    };
    let row;
    try {
      row = JSON.parse(line);
    } catch (e) {
      fail(e.message);
    }
    if (row === null || typeof row !== 'object' || Array.isArray(row)) fail('not an object');
    for (const key of ['text', 'label', 'split']) {
      if (!(key in row)) fail(`missing field \`${key}\``);
    }
    if (typeof row.text !== 'string') fail('text must be a string');
    if (typeof row.split !== 'string') fail('split must be a string');
    if (row.label !== 0 && row.label !== 1) fail('label must be 0 or 1');
    if (row.split === split) rows.push({ text: row.text, label: row.label });
  });
  return rows;
}

// ---- exp, as Rust and Python compute it --------------------------------------------
//
// The Rust and Python plugins call wasi-libc's `exp` (musl's, from ARM's
// optimized-routines); SpiderMonkey's Math.exp (fdlibm) differs from it in
// the last bit now and then, which shows in the probability column. So this
// is a port of musl's src/math/exp.c (EXP_TABLE_BITS 7, polynomial order 5,
// no FMA, as on wasm32). EXP_TAB[2k], EXP_TAB[2k+1]: the bits of T[k] and of
// H[k] minus k << 45, where H[k] is 2^(k/128) rounded to a double and
// 2^(k/128) = H[k] * (1 + T[k]) (computed to 80 digits, as exp_data.c holds).

const EXP_TAB = [
  0x0000000000000000n, 0x3ff0000000000000n,
  0x3c9b3b4f1a88bf6en, 0x3feff63da9fb3335n,
  0xbc7160139cd8dc5dn, 0x3fefec9a3e778061n,
  0xbc905e7a108766d1n, 0x3fefe315e86e7f85n,
  0x3c8cd2523567f613n, 0x3fefd9b0d3158574n,
  0xbc8bce8023f98efan, 0x3fefd06b29ddf6den,
  0x3c60f74e61e6c861n, 0x3fefc74518759bc8n,
  0x3c90a3e45b33d399n, 0x3fefbe3ecac6f383n,
  0x3c979aa65d837b6dn, 0x3fefb5586cf9890fn,
  0x3c8eb51a92fdeffcn, 0x3fefac922b7247f7n,
  0x3c3ebe3d702f9cd1n, 0x3fefa3ec32d3d1a2n,
  0xbc6a033489906e0bn, 0x3fef9b66affed31bn,
  0xbc9556522a2fbd0en, 0x3fef9301d0125b51n,
  0xbc5080ef8c4eea55n, 0x3fef8abdc06c31ccn,
  0xbc91c923b9d5f416n, 0x3fef829aaea92de0n,
  0x3c80d3e3e95c55afn, 0x3fef7a98c8a58e51n,
  0xbc801b15eaa59348n, 0x3fef72b83c7d517bn,
  0xbc8f1ff055de323dn, 0x3fef6af9388c8dean,
  0x3c8b898c3f1353bfn, 0x3fef635beb6fcb75n,
  0xbc96d99c7611eb26n, 0x3fef5be084045cd4n,
  0x3c9aecf73e3a2f60n, 0x3fef54873168b9aan,
  0xbc8fe782cb86389dn, 0x3fef4d5022fcd91dn,
  0x3c8a6f4144a6c38dn, 0x3fef463b88628cd6n,
  0x3c807a05b0e4047dn, 0x3fef3f49917ddc96n,
  0x3c968efde3a8a894n, 0x3fef387a6e756238n,
  0x3c875e18f274487dn, 0x3fef31ce4fb2a63fn,
  0x3c80472b981fe7f2n, 0x3fef2b4565e27cddn,
  0xbc96b87b3f71085en, 0x3fef24dfe1f56381n,
  0x3c82f7e16d09ab31n, 0x3fef1e9df51fdee1n,
  0xbc3d219b1a6fbffan, 0x3fef187fd0dad990n,
  0x3c8b3782720c0ab4n, 0x3fef1285a6e4030bn,
  0x3c6e149289cecb8fn, 0x3fef0cafa93e2f56n,
  0x3c834d754db0abb6n, 0x3fef06fe0a31b715n,
  0x3c864201e2ac744cn, 0x3fef0170fc4cd831n,
  0x3c8fdd395dd3f84an, 0x3feefc08b26416ffn,
  0xbc86a3803b8e5b04n, 0x3feef6c55f929ff1n,
  0xbc924aedcc4b5068n, 0x3feef1a7373aa9cbn,
  0xbc9907f81b512d8en, 0x3feeecae6d05d866n,
  0xbc71d1e83e9436d2n, 0x3feee7db34e59ff7n,
  0xbc991919b3ce1b15n, 0x3feee32dc313a8e5n,
  0x3c859f48a72a4c6dn, 0x3feedea64c123422n,
  0xbc9312607a28698an, 0x3feeda4504ac801cn,
  0xbc58a78f4817895bn, 0x3feed60a21f72e2an,
  0xbc7c2c9b67499a1bn, 0x3feed1f5d950a897n,
  0x3c4363ed60c2ac11n, 0x3feece086061892dn,
  0x3c9666093b0664efn, 0x3feeca41ed1d0057n,
  0x3c6ecce1daa10379n, 0x3feec6a2b5c13cd0n,
  0x3c93ff8e3f0f1230n, 0x3feec32af0d7d3den,
  0x3c7690cebb7aafb0n, 0x3feebfdad5362a27n,
  0x3c931dbdeb54e077n, 0x3feebcb299fddd0dn,
  0xbc8f94340071a38en, 0x3feeb9b2769d2ca7n,
  0xbc87deccdc93a349n, 0x3feeb6daa2cf6642n,
  0xbc78dec6bd0f385fn, 0x3feeb42b569d4f82n,
  0xbc861246ec7b5cf6n, 0x3feeb1a4ca5d920fn,
  0x3c93350518fdd78en, 0x3feeaf4736b527dan,
  0x3c7b98b72f8a9b05n, 0x3feead12d497c7fdn,
  0x3c9063e1e21c5409n, 0x3feeab07dd485429n,
  0x3c34c7855019c6ean, 0x3feea9268a5946b7n,
  0x3c9432e62b64c035n, 0x3feea76f15ad2148n,
  0xbc8ce44a6199769fn, 0x3feea5e1b976dc09n,
  0xbc8c33c53bef4da8n, 0x3feea47eb03a5585n,
  0xbc845378892be9aen, 0x3feea34634ccc320n,
  0xbc93cedd78565858n, 0x3feea23882552225n,
  0x3c5710aa807e1964n, 0x3feea155d44ca973n,
  0xbc93b3efbf5e2228n, 0x3feea09e667f3bcdn,
  0xbc6a12ad8734b982n, 0x3feea012750bdabfn,
  0xbc6367efb86da9een, 0x3fee9fb23c651a2fn,
  0xbc80dc3d54e08851n, 0x3fee9f7df9519484n,
  0xbc781f647e5a3ecfn, 0x3fee9f75e8ec5f74n,
  0xbc86ee4ac08b7db0n, 0x3fee9f9a48a58174n,
  0xbc8619321e55e68an, 0x3fee9feb564267c9n,
  0x3c909ccb5e09d4d3n, 0x3feea0694fde5d3fn,
  0xbc7b32dcb94da51dn, 0x3feea11473eb0187n,
  0x3c94ecfd5467c06bn, 0x3feea1ed0130c132n,
  0x3c65ebe1abd66c55n, 0x3feea2f336cf4e62n,
  0xbc88a1c52fb3cf42n, 0x3feea427543e1a12n,
  0xbc9369b6f13b3734n, 0x3feea589994cce13n,
  0xbc805e843a19ff1en, 0x3feea71a4623c7adn,
  0xbc94d450d872576en, 0x3feea8d99b4492edn,
  0x3c90ad675b0e8a00n, 0x3feeaac7d98a6699n,
  0x3c8db72fc1f0eab4n, 0x3feeace5422aa0dbn,
  0xbc65b6609cc5e7ffn, 0x3feeaf3216b5448cn,
  0x3c7bf68359f35f44n, 0x3feeb1ae99157736n,
  0xbc93091fa71e3d83n, 0x3feeb45b0b91ffc6n,
  0xbc5da9b88b6c1e29n, 0x3feeb737b0cdc5e5n,
  0xbc6c23f97c90b959n, 0x3feeba44cbc8520fn,
  0xbc92434322f4f9aan, 0x3feebd829fde4e50n,
  0xbc85ca6cd7668e4bn, 0x3feec0f170ca07ban,
  0x3c71affc2b91ce27n, 0x3feec49182a3f090n,
  0x3c6dd235e10a73bbn, 0x3feec86319e32323n,
  0xbc87c50422622263n, 0x3feecc667b5de565n,
  0x3c8b1c86e3e231d5n, 0x3feed09bec4a2d33n,
  0xbc91bbd1d3bcbb15n, 0x3feed503b23e255dn,
  0x3c90cc319cee31d2n, 0x3feed99e1330b358n,
  0x3c8469846e735ab3n, 0x3feede6b5579fdbfn,
  0xbc82dfcd978e9db4n, 0x3feee36bbfd3f37an,
  0x3c8c1a7792cb3387n, 0x3feee89f995ad3adn,
  0xbc907b8f4ad1d9fan, 0x3feeee07298db666n,
  0xbc55c3d956dcaeban, 0x3feef3a2b84f15fbn,
  0xbc90a40e3da6f640n, 0x3feef9728de5593an,
  0xbc68d6f438ad9334n, 0x3feeff76f2fb5e47n,
  0xbc91eee26b588a35n, 0x3fef05b030a1064an,
  0x3c74ffd70a5fddcdn, 0x3fef0c1e904bc1d2n,
  0xbc91bdfbfa9298acn, 0x3fef12c25bd71e09n,
  0x3c736eae30af0cb3n, 0x3fef199bdd85529cn,
  0x3c8ee3325c9ffd94n, 0x3fef20ab5fffd07an,
  0x3c84e08fd10959acn, 0x3fef27f12e57d14bn,
  0x3c63cdaf384e1a67n, 0x3fef2f6d9406e7b5n,
  0x3c676b2c6c921968n, 0x3fef3720dcef9069n,
  0xbc808a1883ccb5d2n, 0x3fef3f0b555dc3fan,
  0xbc8fad5d3ffffa6fn, 0x3fef472d4a07897cn,
  0xbc900dae3875a949n, 0x3fef4f87080d89f2n,
  0x3c74a385a63d07a7n, 0x3fef5818dcfba487n,
  0xbc82919e2040220fn, 0x3fef60e316c98398n,
  0x3c8e5a50d5c192acn, 0x3fef69e603db3285n,
  0x3c843a59ac016b4bn, 0x3fef7321f301b460n,
  0xbc82d52107b43e1fn, 0x3fef7c97337b9b5fn,
  0xbc892ab93b470dc9n, 0x3fef864614f5a129n,
  0x3c74b604603a88d3n, 0x3fef902ee78b3ff6n,
  0x3c83c5ec519d7271n, 0x3fef9a51fbc74c83n,
  0xbc8ff7128fd391f0n, 0x3fefa4afa2a490dan,
  0xbc8dae98e223747dn, 0x3fefaf482d8e67f1n,
  0x3c8ec3bc41aa2008n, 0x3fefba1bee615a27n,
  0x3c842b94c3a9eb32n, 0x3fefc52b376bba97n,
  0x3c8a64a931d185een, 0x3fefd0765b6e4540n,
  0xbc8e37bae43be3edn, 0x3fefdbfdad9cbe14n,
  0x3c77893b4d91cd9dn, 0x3fefe7c1819e90d8n,
  0x3c5305c14160cc89n, 0x3feff3c22b8f71f1n
];

const F64 = new Float64Array(1);
const U64 = new BigUint64Array(F64.buffer);
const asU64 = (x) => {
  F64[0] = x;
  return U64[0];
};
const asF64 = (b) => {
  U64[0] = BigInt.asUintN(64, b);
  return F64[0];
};

const INV_LN2_N = (0x171547652b82fe / 2 ** 52) * 128; // 0x1.71547652b82fep0 * N
const NEG_LN2_HI_N = -0x162e42fefa0000 / 2 ** 52 / 2 ** 8; // -0x1.62e42fefa0000p-8
const NEG_LN2_LO_N = -0x1cf79abc9e3b3a / 2 ** 52 / 2 ** 47; // -0x1.cf79abc9e3b3ap-47
const SHIFT = 0x18000000000000; // 0x1.8p52
const C2 = 0x1ffffffffffdbd / 2 ** 52 / 2 ** 2; // 0x1.ffffffffffdbdp-2
const C3 = 0x1555555555543c / 2 ** 52 / 2 ** 3; // 0x1.555555555543cp-3
const C4 = 0x155555cf172b91 / 2 ** 52 / 2 ** 5; // 0x1.55555cf172b91p-5
const C5 = 0x11111167a4d017 / 2 ** 52 / 2 ** 7; // 0x1.1111167a4d017p-7

/** musl's exp(x). */
function exp(x) {
  let abstop = Number((asU64(x) >> 52n) & 0x7ffn);
  if (abstop - 0x3c9 < 0 || abstop - 0x3c9 >= 0x408 - 0x3c9) {
    if (abstop - 0x3c9 < 0) return 1 + x; // tiny x
    if (abstop >= 0x409) {
      if (x === -Infinity) return 0;
      if (abstop >= 0x7ff) return 1 + x;
      return x < 0 ? 0 : Infinity;
    }
    abstop = 0; // large x: special case below
  }
  const z = INV_LN2_N * x;
  let kd = z + SHIFT;
  const ki = asU64(kd);
  kd -= SHIFT;
  const r = x + kd * NEG_LN2_HI_N + kd * NEG_LN2_LO_N;
  const idx = 2 * Number(ki & 127n);
  const top = BigInt.asUintN(64, ki << 45n);
  const tail = asF64(EXP_TAB[idx]);
  const sbits = BigInt.asUintN(64, EXP_TAB[idx + 1] + top);
  const r2 = r * r;
  const tmp = tail + r + r2 * (C2 + r * C3) + r2 * r2 * (C4 + r * C5);
  if (abstop === 0) return expSpecial(tmp, sbits, ki);
  const scale = asF64(sbits);
  return scale + scale * tmp;
}

function expSpecial(tmp, sbits, ki) {
  if ((ki & 0x80000000n) === 0n) {
    const scale = asF64(sbits - (1009n << 52n));
    return 2 ** 1009 * (scale + scale * tmp);
  }
  const scale = asF64(sbits + (1022n << 52n));
  let y = scale + scale * tmp;
  if (y < 1) {
    let lo = scale - y + scale * tmp;
    const hi = 1 + y;
    lo = 1 - hi + y + lo;
    y = hi + lo - 1;
    if (y === 0) y = 0;
  }
  return 2 ** -1022 * y;
}

// ---- formatting like Rust ------------------------------------------------------

/** serde_json's text of a finite f64: shortest round trip, with `.0` on
 * whole numbers (JS omits it) and ryu's exponent form. */
function rustF64(x) {
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return `${x.toFixed(0)}.0`;
  let s = String(x);
  // ryu writes 1e-7 where JS writes 1e-7 too, but 0.000001 as 1e-6 and
  // 1e21 without the '+'.
  if (/^-?0\.00000\d/.test(s)) {
    const neg = s.startsWith('-');
    const digits = s.replace(/^-?0\.0*/, '');
    const exp = -(s.replace(/^-?0\./, '').length - digits.length + 1);
    const mant = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    s = `${neg ? '-' : ''}${mant}e${exp}`;
  }
  return s.replace('e+', 'e');
}

/** `format!("{x:.3}")`: like toFixed(3), but an exact tie rounds half to even. */
function fixed3(x) {
  const exact = Math.abs(x).toFixed(100).replace(/0+$/, '');
  const m = /^(\d+)\.(\d{3})5$/.exec(exact);
  if (!m) return x.toFixed(3);
  const down = `${m[1]}.${m[2]}`;
  const last = Number(m[2][2]);
  const s = last % 2 === 0 ? down : Math.abs(x).toFixed(3);
  return x < 0 ? `-${s}` : s;
}

const ratio = (n, d) => (d === 0 ? 0 : n / d);

// ---- the plugin ------------------------------------------------------------------

export const { describe, run } = lab.plugin({
  name: 'sentiment-evaluator-js',
  kind: 'evaluator',
  description: 'Evaluates a logistic regression sentiment model on a dataset split',
  params: [
    lab.param('model', 'text', 'sentiment-logreg', 'Model to evaluate (name or id)'),
    lab.param('dataset', 'text', 'sentiment', 'Dataset to evaluate on (name or id)'),
    lab.param('split', 'text', 'test', 'Dataset split to evaluate'),
    lab.param('format', 'text', 'csv', 'Format of the predictions table: csv or jsonl'),
  ],
  run() {
    const config = lab.config();
    if (config.format !== 'csv' && config.format !== 'jsonl') {
      throw new lab.PluginError(
        `format must be "csv" or "jsonl", not ${JSON.stringify(config.format)}`,
      );
    }
    const split = JSON.stringify(config.split);

    lab.progress(0, 'loading');
    const model = openModel(config.model);
    const rows = loadSplit(config.dataset, config.split);
    if (rows.length === 0) {
      throw new lab.PluginError(`dataset ${config.dataset} has no rows in split ${split}`);
    }
    lab.info(
      `evaluating model ${config.model} (${model.size} words) on ${rows.length} ` +
        `${split} rows of dataset ${config.dataset}`,
    );

    lab.progress(30, 'predicting');
    let tp = 0;
    let fp = 0;
    let tn = 0;
    let fn = 0;
    const table = rows.map(({ text, label }) => {
      const probability = model.probability(text);
      const predicted = probability >= 0.5 ? 1 : 0;
      if (predicted === 1 && label === 1) tp += 1;
      else if (predicted === 1) fp += 1;
      else if (label === 1) fn += 1;
      else tn += 1;
      return {
        input: text,
        output: String(predicted),
        expected: String(label),
        score: predicted === label ? 1 : 0,
        extra: `{"probability":${rustF64(probability)}}`,
      };
    });

    lab.progress(80, 'saving predictions');
    let summary;
    try {
      summary = evalsSave('predictions', table, config.format);
    } catch (e) {
      const p = e?.payload;
      if (p && typeof p.tag === 'string' && typeof p.val === 'string') {
        throw new lab.LabError(p.tag, p.val);
      }
      throw e;
    }
    lab.info(`saved ${Number(summary.count)} predictions (mean score ${fixed3(summary.meanScore)})`);

    const accuracy = ratio(tp + tn, tp + fp + tn + fn);
    const precision = ratio(tp, tp + fp);
    const recall = ratio(tp, tp + fn);
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    const scores = [
      ['accuracy', accuracy],
      ['precision', precision],
      ['recall', recall],
      ['f1', f1],
    ];
    for (const [name, value] of scores) lab.metric(name, value);
    lab.progress(100, 'done');
    lab.finish(`accuracy ${fixed3(accuracy)} on ${rows.length} ${split} rows`, scores);
  },
});
