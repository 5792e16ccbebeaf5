// End-to-end test of the dashboard's login, sessions and CSRF defences,
// its rerun button and its eval table, in real headless Chromium. Run by
// tests/dashboard.rs against a `labhost serve` with tokens configured, the
// probe uploaded and an LLM judge's eval table (one topic an XSS payload)
// in the workspace.
//
// Env: LABHOST_URL, RUN_TOKEN, READ_TOKEN, JUDGE_JOB, EVAL_ROWS (rows of
// its `judgement` table), SCREENSHOT_DIR, CHROMIUM.
//
// A page on another port of 127.0.0.1 (served here, by node) plays the
// attacker: it auto-submits forms to the dashboard's launch and cancel
// routes. Another port of the same host is the same *site*, so the browser
// sends the SameSite=Strict cookie along: only the server's origin and
// CSRF checks stand in the way.

import http from 'node:http';
import { assert, e2e } from './harness.mjs';

const env = (k) => {
  const v = process.env[k];
  if (!v) { console.error(`${k} is not set`); process.exit(2); }
  return v;
};
const base = env('LABHOST_URL');
const RUN = env('RUN_TOKEN');
const READ = env('READ_TOKEN');
const JUDGE = env('JUDGE_JOB');
const EVAL_ROWS = Number(env('EVAL_ROWS'));
const XSS = '<img src=x onerror=alert(1)>';
const MISSING_CSRF = "missing x-csrf-token header: a session's state-changing request carries the CSRF token from GET /api/v1/session";

// ---- the attacker's page ----------------------------------------------------
let forgery = { launch: null, cancel: null };
const evil = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://evil');
  let form;
  if (u.pathname === '/launch' && forgery.launch) {
    // A text/plain form whose field joins into a JSON launch request:
    // `{"plugin":…,"target":"` + `=` + `"}}`.
    const name = `{"plugin":"${forgery.launch}","experiment":"evil","config":{"scenario":"all-api","target":"`;
    form = `<form method="post" action="${base}/api/v1/jobs" enctype="text/plain">` +
      `<input type="hidden" name='${name}' value='"}}'></form>`;
  } else if (u.pathname === '/cancel' && forgery.cancel) {
    form = `<form method="post" action="${base}/api/v1/jobs/${forgery.cancel}/cancel">` +
      `<input type="hidden" name="why" value="prize"></form>`;
  } else {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><title>You won a prize</title><h1>Claim your prize</h1>${form}` +
    '<script>document.forms[0].submit()</script>');
});
await new Promise((r) => evil.listen(0, '127.0.0.1', r));
const evilBase = `http://127.0.0.1:${evil.address().port}`;

await e2e(async ({ ctx, page, step, shot, watch, launch: launchAt, apiGet }) => {
  const launch = (plugin, params, extra) => launchAt(base, plugin, params, extra);
  const waitStatus = (s, timeout = 60000) =>
    page.waitForFunction((want) => document.querySelector('#run-status')?.textContent === want, s, { timeout });
  const result = {};

  // 1. Tokens are configured: the dashboard sends the browser to log in.
  await page.goto(base + '/');
  assert(new URL(page.url()).pathname === '/login', `redirected to ${page.url()}`);
  await page.waitForSelector('#login-token');
  await shot('auth-1-login');
  step('the dashboard redirected to /login');

  // 2. A wrong token is refused, visibly.
  await page.fill('#login-token', 'lht_00000000_' + '0'.repeat(64));
  const [refused] = await Promise.all([
    page.waitForResponse((r) => r.url() === base + '/login' && r.request().method() === 'POST'),
    page.click('#login-submit'),
  ]);
  assert(refused.status() === 401, `wrong token: ${refused.status()}`);
  const shown = await page.textContent('#login-error');
  assert(shown === 'That token is not valid (wrong, or revoked).', `error shown: ${shown}`);
  assert((await ctx.cookies(base)).length === 0, 'no cookie after a refused login');
  await shot('auth-2-login-refused');
  step(`a wrong token was refused (401): "${shown}"`);

  // 3. The run token logs in: a session cookie the page cannot read.
  await page.fill('#login-token', RUN);
  await Promise.all([page.waitForURL(base + '/'), page.click('#login-submit')]);
  await page.waitForFunction(() => document.querySelector('#who-scope')?.dataset.scope === 'run');
  const cookies = await ctx.cookies(base);
  assert(cookies.length === 1, `cookies: ${JSON.stringify(cookies)}`);
  const c = cookies[0];
  assert(/^labhost_session_\d+$/.test(c.name) && /^[0-9a-f]{64}$/.test(c.value), `cookie ${c.name}`);
  assert(c.httpOnly === true && c.sameSite === 'Strict' && c.path === '/' && c.secure === false,
    `cookie flags: ${JSON.stringify({ ...c, value: '…' })}`);
  assert(!(await page.evaluate(() => document.cookie)).includes('labhost_session'), 'HttpOnly: not in document.cookie');
  result.cookie = { name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite, expiresInHours: Math.round((c.expires - Date.now() / 1000) / 3600) };
  step(`logged in with the run token: cookie ${c.name} HttpOnly, SameSite=${c.sameSite}, expires in ${result.cookie.expiresInHours} h`);

  // 4. A job launched from the form (the good job the attacks run beside).
  const coop = await launch('probe', { scenario: 'cooperative' }, { experiment: 'e2e-auth-coop' });
  await waitStatus('RUNNING');
  const probe = (await apiGet('/plugins')).body.find((p) => p.name === 'probe').blake3;

  // 5. The page's own fetch without the CSRF token is refused.
  const bare = await page.evaluate(async ([id, plugin]) => {
    const out = [];
    for (const [url, body] of [[`/api/v1/jobs/${id}/cancel`, undefined],
      ['/api/v1/jobs', JSON.stringify({ plugin, experiment: 'evil' })]]) {
      const r = await fetch(url, { method: 'POST', body, headers: body ? { 'content-type': 'application/json' } : {} });
      out.push({ status: r.status, error: (await r.json()).error });
    }
    return out;
  }, [coop, probe]);
  for (const r of bare) assert(r.status === 403 && r.error === MISSING_CSRF, `fetch without CSRF: ${JSON.stringify(r)}`);
  step(`fetches without the CSRF token: ${bare.map((r) => r.status).join(', ')}`);

  // 6. Cross-site form posts from another port of 127.0.0.1, with the
  // victim's cookie: refused, nothing started or cancelled.
  forgery = { launch: probe, cancel: coop };
  const attacker = watch(await ctx.newPage());
  const attacks = {};
  for (const [what, url] of [['launch', base + '/api/v1/jobs'], ['cancel', `${base}/api/v1/jobs/${coop}/cancel`]]) {
    const [resp] = await Promise.all([
      attacker.waitForResponse((r) => r.url() === url && r.request().method() === 'POST'),
      attacker.goto(`${evilBase}/${what}`),
    ]);
    const headers = await resp.request().allHeaders();
    const body = await resp.json();
    attacks[what] = { status: resp.status(), error: body.error, cookieSent: (headers.cookie || '').includes(c.name), site: headers['sec-fetch-site'] };
    assert(resp.status() === 403, `${what}: ${JSON.stringify(attacks[what])}`);
    // The cookie went along (another port is the same site): only the
    // server's checks refused it.
    assert(attacks[what].cookieSent && attacks[what].site === 'same-site', `${what}: ${JSON.stringify(attacks[what])}`);
    assert(body.error === 'cross-origin request refused (Sec-Fetch-Site: same-site)', `${what}: ${body.error}`);
    await attacker.waitForLoadState();
  }
  await attacker.waitForSelector('text=cross-origin request refused');
  await shot('auth-3-cross-site-refused', attacker);
  await attacker.close();
  const evilJobs = (await apiGet('/jobs?experiment=evil')).body.total;
  const coopNow = (await apiGet('/jobs/' + coop)).body.status;
  assert(evilJobs === 0, `${evilJobs} jobs started by the attacker`);
  assert(coopNow === 'RUNNING', `the good job is ${coopNow}`);
  result.crossSite = attacks;
  step(`cross-site form posts refused: ${JSON.stringify(attacks)}; no job started, the good job still RUNNING`);

  // 7. The page's own cancel button still works.
  await page.waitForSelector('#cancel:not([disabled])');
  await page.click('#cancel');
  await waitStatus('CANCELLED', 30000);
  step(`job ${coop} cancelled from its page`);

  // 8. Rerun: the same plugin and config, a new job.
  const first = await launch('probe', { scenario: 'all-api' }, { experiment: 'e2e-auth' });
  await waitStatus('COMPLETE');
  await page.click('#rerun');
  await page.waitForFunction((id) => location.hash.startsWith('#/jobs/') && location.hash !== '#/jobs/' + id, first);
  const second = decodeURIComponent(new URL(page.url()).hash.replace('#/jobs/', ''));
  await waitStatus('COMPLETE');
  const cfg = JSON.parse(await page.textContent('#run-config'));
  assert(cfg.scenario === 'all-api', `rerun config ${JSON.stringify(cfg)}`);
  // Its checkpoints and artifacts can be downloaded.
  const href = await page.getAttribute('#run-files a:text-is("hello.txt")', 'href');
  const got = await page.evaluate(async (u) => (await fetch(u)).text(), href);
  assert(got === 'hello artifact\n', `artifact: ${JSON.stringify(got)}`);
  assert(await page.locator('#run-files ul[data-kind=checkpoints] a', { hasText: 'step-7' }).count() === 1, 'checkpoint link');
  step(`rerun of ${first}: job ${second}, complete; its artifact downloaded`);
  result.rerun = { first, second };

  // 9. The judge's eval table: XSS as text, sort, page, filter, colours.
  await page.goto(`${base}/#/jobs/${JUDGE}`);
  await waitStatus('COMPLETE');
  // The judge was granted an HTTP endpoint: rerunning it needs admin.
  await page.click('#rerun');
  await page.waitForFunction(() => document.querySelector('#action-note')?.textContent.startsWith('403'));
  const note = await page.textContent('#action-note');
  assert(note === '403: rerunning a job granted host directories, HTTP endpoints or secrets needs a token with the `admin` scope (this one has `run`)', note);
  await page.waitForSelector('#eval-card:not([hidden])');
  const summary = (text) => page.waitForFunction((t) => document.querySelector('#eval-summary')?.textContent === t &&
    !document.querySelector('#eval-table')?.dataset.loading, text);
  await summary(`rows 1–${Math.min(25, EVAL_ROWS)} of ${EVAL_ROWS}`);
  await page.selectOption('#eval-limit', '10');
  await summary(`rows 1–10 of ${EVAL_ROWS}`);
  const heads = await page.$$eval('#eval-table th', (ths) => ths.map((t) => t.dataset.col));
  assert(heads.join() === 'input,output,expected_output,score,rating,verdict', `columns ${heads}`);
  await page.fill('#eval-search', '<img');
  await summary('rows 1–2 of 2');
  const inputs = await page.$$eval('#eval-body td[data-col=input]', (tds) => tds.map((t) => t.textContent));
  assert(inputs.length === 2 && inputs.every((t) => t.includes(XSS)), `XSS rows: ${inputs}`);
  assert(await page.locator('#eval-table img, img').count() === 0, 'no <img> element was created');
  await shot('auth-4-eval-xss-as-text');
  await page.fill('#eval-search', '');
  await summary(`rows 1–10 of ${EVAL_ROWS}`);

  const scores = () => page.$$eval('#eval-body td.score', (tds) => tds.map((t) => Number(t.dataset.score)));
  const sorted = (xs, dir) => xs.every((x, i) => i === 0 || (dir > 0 ? xs[i - 1] <= x : xs[i - 1] >= x));
  await page.click('#eval-table th[data-col=score] button');
  await page.waitForSelector('#eval-table th[data-col=score][aria-sort=ascending]');
  await summary(`rows 1–10 of ${EVAL_ROWS}`);
  const asc = await scores();
  assert(asc.length === 10 && sorted(asc, 1), `ascending: ${asc}`);
  await page.click('#eval-table th[data-col=score] button');
  await page.waitForSelector('#eval-table th[data-col=score][aria-sort=descending]');
  await summary(`rows 1–10 of ${EVAL_ROWS}`);
  const desc1 = await scores();
  assert(sorted(desc1, -1) && desc1[0] >= asc.at(-1), `descending: ${desc1}`);
  await page.click('#eval-next');
  await summary(`rows 11–20 of ${EVAL_ROWS}`);
  const desc2 = await scores();
  assert(desc2.length === 10 && sorted(desc2, -1) && desc2[0] <= desc1.at(-1), `page 2: ${desc2} after ${desc1}`);
  assert(!(await page.isDisabled('#eval-prev')), 'previous enabled on page 2');
  // Colours: the best score green, the worst red.
  const rgb = (sel) => page.$eval(sel, (td) => getComputedStyle(td).backgroundColor.match(/\d+/g).map(Number));
  await page.click('#eval-prev');
  await summary(`rows 1–10 of ${EVAL_ROWS}`);
  const [hr, hg] = await rgb('#eval-body tr:first-child td.score');
  await page.click('#eval-table th[data-col=score] button');
  await page.waitForSelector('#eval-table th[data-col=score][aria-sort=ascending]');
  await summary(`rows 1–10 of ${EVAL_ROWS}`);
  const [lr, lg] = await rgb('#eval-body tr:first-child td.score');
  assert(hg > hr && lr > lg, `colours: best rgb(${hr},${hg},…) worst rgb(${lr},${lg},…)`);
  // A score range, as the server counts it.
  const want = (await apiGet(`/jobs/${JUDGE}/evals/judgement/rows?min_score=0.5&limit=1`)).body.total;
  await page.fill('#eval-min', '0.5');
  await page.press('#eval-min', 'Tab');
  await summary(`rows 1–${Math.min(10, want)} of ${want}`);
  const ranged = await scores();
  assert(want > 0 && want < EVAL_ROWS && ranged.every((s) => s >= 0.5) && sorted(ranged, 1), `min 0.5: ${ranged}`);
  await page.locator('#eval-card').scrollIntoViewIfNeeded();
  await shot('auth-5-eval-table');
  result.evals = { rows: EVAL_ROWS, asc: asc.slice(0, 3), desc: desc1.slice(0, 3), minHalf: want };
  step(`eval table: ${EVAL_ROWS} rows sorted both ways, paged, ${want} with score ≥ 0.5, coloured; XSS shown as text`);

  // The judged questions came from a dataset: browse it, the payload
  // found by a LIKE filter and shown as text.
  await page.goto(base + '/#/datasets');
  await page.waitForSelector('#datasets-body tr[data-name="qa"]');
  await page.click('#datasets-body tr[data-name="qa"] a.browse');
  await page.waitForFunction((n) => document.querySelector('#rows-summary')?.textContent === `rows 1–${n} of ${n}`, EVAL_ROWS);
  await page.selectOption('#rows-field', 'question');
  await page.selectOption('#rows-op', 'LIKE');
  await page.fill('#rows-value', '%<img%');
  await page.click('#rows-add');
  await page.waitForFunction(() => document.querySelector('#rows-summary')?.textContent === 'rows 1–2 of 2');
  const questions = await page.$$eval('#rows-body td[data-col=question]', (tds) => tds.map((t) => t.textContent));
  assert(questions.length === 2 && questions.every((q) => q.includes(XSS)), `qa rows: ${questions}`);
  assert(await page.locator('img').count() === 0, 'no <img> element was created');
  await shot('auth-6-dataset-xss-as-text');
  step('dataset rows: the XSS payload found with LIKE and shown as text');

  // 10. Log out: the session is gone for the API too.
  await Promise.all([page.waitForURL(base + '/login'), page.click('#logout')]);
  const after = await page.evaluate(async () => (await fetch('/api/v1/jobs')).status);
  assert(after === 401, `after logout: ${after}`);
  step('logged out; the API now answers 401');

  // 11. A read token's session cannot launch: the 403 is shown.
  await page.fill('#login-token', READ);
  await Promise.all([page.waitForURL(base + '/'), page.click('#login-submit')]);
  await page.waitForFunction(() => document.querySelector('#who-scope')?.dataset.scope === 'read');
  await page.goto(base + '/#/launch');
  const value = await page.locator('#launch-plugin option', { hasText: 'probe' }).first().getAttribute('value');
  await page.selectOption('#launch-plugin', value);
  await page.fill('#param-scenario', 'all-api');
  await page.fill('#launch-experiment', 'e2e-read');
  await page.click('#launch-submit');
  await page.waitForFunction(() => document.querySelector('#launch-error')?.textContent);
  const denied = await page.textContent('#launch-error');
  assert(denied === '403: launching a job needs a token with the `run` scope (this one has `read`)', denied);
  assert(new URL(page.url()).hash === '#/launch', 'still on the form');
  await shot('auth-7-read-refused');
  step(`a read session's launch: "${denied}"`);

  evil.close();
  return result;
});
