// {{name}}: a labhost plugin. Build with ./build.sh, run with
// `labhost run {{name}}.wasm -c greeting=hi`.
// componentize-js resolves only relative imports: the SDK by path.
import * as lab from './node_modules/@labhost/lab/lab.js';

export const { describe, run } = lab.plugin({
  name: '{{name}}',
  kind: '{{kind}}',
  description: 'Describe what {{name}} does',
  params: [
    lab.param('greeting', 'text', 'hello', 'What to write'),
    lab.param('repeat', 'integer', 3, 'How many lines'),
  ],
  run() {
    const { greeting, repeat } = lab.config();
    lab.info(`writing ${repeat} lines`);
    let text = '';
    for (let i = 0; i < repeat; i++) {
      if (lab.shouldStop()) return lab.fail('stopped on request');
      text += `${greeting} ${i}\n`;
      lab.progress((100 * (i + 1)) / repeat, 'writing');
    }
    lab.fs.writeFile('/work/out.txt', text);
    const stored = lab.saveArtifact('/work/out.txt');
    lab.finish(`wrote ${stored.size} bytes`, { lines: repeat });
  },
});
