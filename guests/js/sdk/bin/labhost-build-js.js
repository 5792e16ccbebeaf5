#!/usr/bin/env node
// labhost-build-js PLUGIN.js -o OUT.wasm
// Build a labhost plugin (an ES module exporting `describe` and `run`, written
// with `@labhost/lab`) into a WebAssembly component with componentize-js,
// against the WIT shipped in this package. Run it from the plugin's directory:
// componentize-js maps the working directory as the module root, so the
// plugin imports the SDK as './node_modules/@labhost/lab/lab.js'.
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { componentize } from '@bytecodealliance/componentize-js';

const args = process.argv.slice(2);
const o = args.indexOf('-o');
if (args.length !== 3 || o < 0 || o === 2) {
  console.error('usage: labhost-build-js PLUGIN.js -o OUT.wasm');
  process.exit(2);
}
const out = args[o + 1];
const source = args[o === 0 ? 2 : 0];
const wit = join(dirname(fileURLToPath(import.meta.url)), '..', 'wit');
const { component } = await componentize({
  sourcePath: source,
  witPath: wit,
  worldName: 'plugin',
  // No wasi:http import: the labhost host does not link it.
  disableFeatures: ['http', 'fetch-event'],
});
await writeFile(out, component);
