// `npm pack` / `npm publish` in guests/js/sdk: copy the SDK and its WIT from
// the labhost checkout into the package (git-ignored here; never edited):
//   ../lab.js                     -> lab.js
//   ../wit/world.wit              -> wit/world.wit      (the JS plugin world)
//   ../../../host/wit/*.wit       -> wit/deps/lab-api/  (lab:api@0.2.0)
//   jco's WASI 0.2.12 WIT         -> wit/deps/wasi-*/   (what the world imports)
// The WASI WIT comes from ../node_modules (scripts/build-guests.sh js installs it).
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const js = join(here, '..');
const wasi = join(js, 'node_modules/@bytecodealliance/jco/lib/wit/builtin/0.2.12');
const hostWit = join(js, '../../host/wit');

rmSync(join(here, 'wit'), { recursive: true, force: true });
mkdirSync(join(here, 'wit/deps/lab-api'), { recursive: true });
cpSync(join(js, 'lab.js'), join(here, 'lab.js'));
cpSync(join(js, 'wit/world.wit'), join(here, 'wit/world.wit'));
for (const f of readdirSync(hostWit).filter((f) => f.endsWith('.wit'))) {
  cpSync(join(hostWit, f), join(here, 'wit/deps/lab-api', f));
}
for (const pkg of ['cli', 'clocks', 'filesystem', 'io', 'random', 'sockets']) {
  cpSync(join(wasi, `wasi-${pkg}`), join(here, `wit/deps/wasi-${pkg}`), { recursive: true });
}
