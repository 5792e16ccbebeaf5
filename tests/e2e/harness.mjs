// What the end-to-end scripts share: headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core) in a throwaway profile,
// `step:` lines, screenshots, and the `E2E OK` / `E2E FAILED` ending the
// Rust test looks for. Env: SCREENSHOT_DIR, CHROMIUM.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export function assert(cond, msg) {
  if (!cond) throw new Error('assertion failed: ' + msg);
}

/** Start the browser; `run(t)` gets {ctx, page, step, shot, watch, launch, apiGet}. */
export async function e2e(run) {
  const shotDir = path.resolve(process.env.SCREENSHOT_DIR || '../../target/e2e-screenshots');
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  const started = Date.now();
  const dialogs = [];
  const pageErrors = [];
  const shots = [];
  const elapsed = () => ((Date.now() - started) / 1000).toFixed(1) + 's';
  const step = (s) => console.log(`step: [${elapsed()}] ${s}`);

  fs.mkdirSync(shotDir, { recursive: true });
  fs.rmSync(path.join(shotDir, 'failure.png'), { force: true });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'labhost-e2e-'));
  const ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    viewport: { width: 1280, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  /** Count dialogs (an XSS payload that ran) and page errors of `p`. */
  const watch = (p) => {
    p.setDefaultTimeout(30000);
    p.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
    p.on('pageerror', (e) => pageErrors.push(String(e)));
    return p;
  };
  const page = watch(ctx.pages()[0] || await ctx.newPage());

  async function shot(name, p = page) {
    const file = path.join(shotDir, `${name}.png`);
    await p.screenshot({ path: file, fullPage: true });
    shots.push(file);
  }

  /** Launch `plugin` from the form with `params` (id suffix → value); the new job's id. */
  async function launch(base, plugin, params, extra = {}) {
    await page.goto(base + '/#/launch');
    const value = await page.locator('#launch-plugin option', { hasText: plugin }).first().getAttribute('value');
    await page.selectOption('#launch-plugin', value);
    await page.locator('#param-scenario, #param-epochs, #param-rows').first().waitFor();
    for (const [k, v] of Object.entries(params)) await page.fill('#param-' + k, String(v));
    for (const [k, v] of Object.entries(extra)) await page.fill('#launch-' + k, String(v));
    await page.click('#launch-submit');
    await page.waitForURL(/#\/jobs\/[^/]+$/);
    const id = decodeURIComponent(new URL(page.url()).hash.replace('#/jobs/', ''));
    step(`launched ${plugin} from the form: job ${id}`);
    return id;
  }

  /** GET an API path from the page (its cookie, if any). */
  async function apiGet(p) {
    return page.evaluate(async (url) => {
      const r = await fetch(url);
      return { status: r.status, body: await r.json() };
    }, '/api/v1' + p);
  }

  const cleanup = async () => {
    await ctx.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  };
  try {
    const result = await run({ ctx, page, step, shot, watch, launch, apiGet });
    assert(dialogs.length === 0, `dialogs fired: ${dialogs}`);
    assert(pageErrors.length === 0, `page errors: ${pageErrors}`);
    for (const s of shots) console.log('screenshot: ' + s);
    console.log(`E2E OK in ${elapsed()} ${JSON.stringify(result || {})}`);
    await cleanup();
    process.exit(0);
  } catch (e) {
    try { await shot('failure'); } catch {}
    for (const s of shots) console.log('screenshot: ' + s);
    console.log(`E2E FAILED after ${elapsed()}: ${e && e.stack || e}`);
    console.log(`dialogs: ${JSON.stringify(dialogs)} page errors: ${JSON.stringify(pageErrors)}`);
    await cleanup();
    process.exit(1);
  }
}
