// End-to-end test of the labhost dashboard in real headless Chromium
// (Debian's /usr/bin/chromium driven by playwright-core). Run by
// tests/dashboard.rs against a `labhost serve` it started, with the probe,
// sentiment-datagen and sentiment-trainer uploaded and the `sentiment`
// dataset generated. Env: LABHOST_URL (required), SCREENSHOT_DIR,
// CHROMIUM (default /usr/bin/chromium).
//
// Prints one `step:` line per step, the screenshots' paths, and finally
// `E2E OK …` (exit 0) or `E2E FAILED: …` (exit 1) (tests/e2e/harness.mjs).

import { assert, e2e } from './harness.mjs';

const base = process.env.LABHOST_URL;
if (!base) { console.error('LABHOST_URL is not set'); process.exit(2); }
const XSS = '<img src=x onerror=alert(1)>';
const started = Date.now();

await e2e(async ({ page, step, shot, launch: launchAt, apiGet }) => {
  const launch = (plugin, params, extra) => launchAt(base, plugin, params, extra);
  const result = {};
  // 1. A training run launched from the form; its chart and log fill live.
  const train1 = await launch('sentiment-trainer',
    { epochs: 400, batch_size: 500, lr: 0.5 }, { experiment: 'e2e-train', datasets: 'sentiment' });
  const samples = [];
  let midShot = false;
  const deadline = Date.now() + 120000;
  for (;;) {
    const s = await page.evaluate(() => ({
      points: Number(document.querySelector('#metric-chart')?.dataset.points || 0),
      lines: document.querySelectorAll('#log .line').length,
      ended: document.querySelector('#log')?.dataset.ended || null,
    }));
    samples.push({ t: Date.now() - started, ...s });
    if (!midShot && s.points > 0 && !s.ended) { await shot('1-run-live'); midShot = true; }
    if (s.ended) break;
    assert(Date.now() < deadline, 'the training run did not end in 120 s');
    await page.waitForTimeout(50);
  }
  await page.waitForFunction(() => document.querySelector('#run-status')?.textContent === 'COMPLETE');
  await page.waitForTimeout(300); // the last throttled redraw
  const final = Number(await page.getAttribute('#metric-chart', 'data-points'));
  const stored = (await apiGet(`/jobs/${train1}/metrics?names=loss&max_points=1000000`)).body.length;
  const distinct = [...new Set(samples.map((s) => s.points).filter((p) => p > 0))];
  step(`training run ended: ${final} chart points (${stored} stored), ${samples.at(-1).lines} log lines; ` +
    `the chart was seen at ${distinct.length} sizes while it ran: ${distinct.slice(0, 12).join(', ')}${distinct.length > 12 ? ', …' : ''}`);
  assert(final === stored && stored > 100, `chart shows ${final} of ${stored} loss points`);
  assert(distinct.length >= 3, `the chart grew live (seen at ${distinct.length} sizes)`);
  const lineCounts = [...new Set(samples.map((s) => s.lines))];
  assert(samples.at(-1).lines > 0, 'log lines shown');
  assert(await page.locator('#log .line', { hasText: 'trained model' }).count() > 0 ||
    await page.locator('#log .line').count() > 0, 'log lines of the trainer');
  // The level filter hides info lines when only errors are wanted.
  await page.selectOption('#log-level', '4');
  const visibleErrorsOnly = await page.locator('#log .line:visible').count();
  await page.selectOption('#log-level', '0');
  const visibleAll = await page.locator('#log .line:visible').count();
  assert(visibleErrorsOnly < visibleAll, `level filter: ${visibleErrorsOnly} error lines < ${visibleAll} lines`);
  await shot('2-run-complete');
  result.train = { id: train1, points: final, liveSizes: distinct.length, logSizes: lineCounts.length };

  // 2. A second training run (different learning rate) to compare with.
  const train2 = await launch('sentiment-trainer',
    { epochs: 40, batch_size: 500, lr: 0.05 }, { experiment: 'e2e-train', datasets: 'sentiment' });
  await page.waitForFunction(() => document.querySelector('#log')?.dataset.ended, null, { timeout: 120000 });
  assert(await page.textContent('#run-status') === 'COMPLETE' ||
    (await page.waitForFunction(() => document.querySelector('#run-status')?.textContent === 'COMPLETE'), true), 'second run complete');

  // 3. Guest-controlled text with markup is shown as text.
  const xss = await launch('probe', { scenario: 'all-api', target: XSS, extra: JSON.stringify({ note: XSS }) },
    { experiment: 'e2e-xss' });
  await page.waitForFunction(() => document.querySelector('#log')?.dataset.ended, null, { timeout: 60000 });
  await page.waitForFunction(() => document.querySelector('#run-status')?.textContent === 'COMPLETE');
  const xssLine = page.locator('#log .line', { hasText: XSS });
  await xssLine.first().waitFor({ state: 'visible' });
  assert(await page.locator('#log img, #run-config img, img').count() === 0, 'no <img> element was created');
  assert((await page.textContent('#run-config')).includes(XSS), 'the config shows the payload as text');
  // Artifacts and checkpoints with working download links.
  await page.locator('#run-files a', { hasText: 'hello.txt' }).waitFor();
  const href = await page.getAttribute('#run-files a:text-is("hello.txt")', 'href');
  const body = await page.evaluate(async (u) => (await fetch(u)).text(), href);
  assert(body === 'hello artifact\n', `artifact download: ${JSON.stringify(body)}`);
  assert(await page.locator('#run-files ul[data-kind=checkpoints] a', { hasText: 'step-7' }).count() === 1, 'checkpoint link');
  await xssLine.first().scrollIntoViewIfNeeded();
  await shot('3-xss-as-text');
  step(`XSS payload shown as text in ${await xssLine.count()} log line(s); artifact downloaded`);

  // 4. The runs table: filter, pick the two training runs, compare.
  await page.goto(base + '/#/');
  await page.waitForFunction(() => document.querySelectorAll('#runs-body tr').length >= 4);
  const rows = await page.locator('#runs-body tr').count();
  await page.fill('#filter-text', 'sentiment-trainer');
  await page.waitForFunction(() => document.querySelectorAll('#runs-body tr').length < 4);
  const order = await page.$$eval('#runs-body tr', (trs) => trs.map((t) => t.dataset.id));
  const plugins = await page.$$eval('#runs-body tr td:nth-child(3)', (tds) => tds.map((t) => t.textContent));
  assert(plugins.every((p) => p === 'sentiment-trainer'), `plugin filter: ${plugins}`);
  assert(order.indexOf(train2) >= 0 && order.indexOf(train2) < order.indexOf(train1), `newest first: ${order}`);
  await page.check(`#runs-body input.pick[data-id="${train1}"]`);
  await page.check(`#runs-body input.pick[data-id="${train2}"]`);
  await page.waitForTimeout(1200); // a refresh keeps the selection
  assert(await page.isChecked(`#runs-body input.pick[data-id="${train1}"]`), 'selection survives the refresh');
  await shot('4-runs-table');
  await page.fill('#filter-text', '');
  await page.selectOption('#filter-status', 'complete');
  await page.waitForTimeout(1300);
  const statuses = await page.$$eval('#runs-body tr', (trs) => trs.map((t) => t.dataset.status));
  assert(statuses.length > 0 && statuses.every((s) => s === 'COMPLETE'), `status filter: ${statuses}`);
  step(`runs table: ${rows} runs, filtered and two selected`);
  await page.click('#compare');
  await page.waitForSelector('#compare-chart[data-series="2"]');
  const metric = await page.getAttribute('#compare-chart', 'data-metric');
  const cmpPoints = Number(await page.getAttribute('#compare-chart', 'data-points'));
  const legend = await page.$$eval('#compare-chart .u-legend .u-series', (s) => s.map((e) => e.textContent));
  assert(metric === 'loss', `compared metric ${metric}`);
  assert(legend.filter((l) => l.includes(train1) || l.includes(train2)).length === 2, `legend: ${legend}`);
  await shot('5-compare');
  step(`compare: 2 series of ${metric}, ${cmpPoints} points`);
  result.compare = { series: 2, points: cmpPoints };

  // 5. The registries: the trainers' models and the generated dataset,
  // with downloads and the dataset's row browser (filter, order, page).
  await page.goto(base + '/#/models');
  await page.waitForSelector('#models-body tr[data-name="sentiment-logreg"]');
  const models = await page.$$eval('#models-body tr', (trs) => trs.map((t) => t.dataset.name));
  assert(models.filter((n) => n === 'sentiment-logreg').length === 2, `models: ${models}`);
  const modelLink = page.locator('#models-body tr[data-name="sentiment-logreg"] a', { hasText: 'model.json' }).first();
  const model = JSON.parse(await page.evaluate(async (u) => (await fetch(u)).text(), await modelLink.getAttribute('href')));
  assert(model.vocab && typeof model.bias === 'number', 'model.json downloaded');
  const savedBy = await page.$$eval('#models-body tr td a[href^="#/jobs/"]', (as) => as.map((a) => a.textContent));
  assert(savedBy.includes(train1) && savedBy.includes(train2), `models saved by ${savedBy}`);
  await page.goto(base + '/#/datasets');
  await page.waitForSelector('#datasets-body tr[data-name="sentiment"]');
  const rowsCell = await page.textContent('#datasets-body tr[data-name="sentiment"] td:nth-child(3)');
  assert(rowsCell === '20000', `sentiment rows: ${rowsCell}`);
  await page.click('#datasets-body tr[data-name="sentiment"] a.browse');
  const rowsSummary = (t) => page.waitForFunction((want) => document.querySelector('#rows-summary')?.textContent === want &&
    !document.querySelector('#rows-table')?.dataset.loading, t);
  await rowsSummary('rows 1–25 of 20000');
  await page.selectOption('#rows-field', 'label');
  await page.selectOption('#rows-op', '=');
  await page.fill('#rows-value', '1');
  await page.click('#rows-add');
  await page.waitForFunction(() => /^rows 1–25 of \d+$/.test(document.querySelector('#rows-summary')?.textContent || '') &&
    document.querySelector('#rows-summary').textContent !== 'rows 1–25 of 20000' && !document.querySelector('#rows-table')?.dataset.loading);
  const positives = Number((await page.textContent('#rows-summary')).split(' of ')[1]);
  const labels = await page.$$eval('#rows-body td[data-col=label]', (tds) => tds.map((t) => t.textContent));
  assert(positives > 0 && positives < 20000 && labels.every((l) => l === '1'), `label = 1: ${positives} rows, ${labels}`);
  await page.click('#rows-table th[data-col=text] button');
  await page.click('#rows-table th[data-col=text] button');
  await page.waitForSelector('#rows-table th[data-col=text][aria-sort=descending]');
  await rowsSummary(`rows 1–25 of ${positives}`);
  const texts = await page.$$eval('#rows-body td[data-col=text]', (tds) => tds.map((t) => t.textContent));
  assert(texts.every((t, i) => i === 0 || texts[i - 1] >= t), `text descending: ${texts.slice(0, 3)}`);
  await page.click('#rows-next');
  await rowsSummary(`rows 26–50 of ${positives}`);
  // A filter the server refuses is shown and dropped.
  await page.selectOption('#rows-field', 'label');
  await page.selectOption('#rows-op', 'LIKE');
  await page.fill('#rows-value', '');
  await page.click('#rows-add');
  await page.waitForFunction(() => document.querySelector('#rows-error')?.textContent.startsWith('400'));
  step(`registries: 2 models (model.json downloaded), dataset browsed: ${positives} rows with label = 1, ordered by text, paged; ` +
    `refused filter shown: ${await page.textContent('#rows-error')}`);
  await shot('6-datasets');

  // A pipeline run's page: the stage graph (generate → score ×2 and
  // generate → wait), each instance's state live; cancelled and resumed
  // from the page, the complete stages are kept.
  const runId = process.env.PIPELINE_RUN;
  assert(runId, 'PIPELINE_RUN is not set');
  await page.goto(base + '/#/pipelines');
  await page.click(`#pipelines-body tr[data-id="${runId}"] a`);
  const nodeStatus = () => page.$$eval('#stage-graph .node', (ns) =>
    Object.fromEntries(ns.map((n) => [n.dataset.instance, n.dataset.status])));
  await page.waitForFunction(() => {
    const ns = [...document.querySelectorAll('#stage-graph .node')];
    return ns.length === 4 && ns.filter((n) => n.dataset.status === 'COMPLETE').length === 3 &&
      ns.some((n) => n.dataset.status === 'RUNNING');
  }, null, { timeout: 60000 });
  const columns = await page.$$eval('#stage-graph .column', (cs) => cs.map((c) => c.querySelectorAll('.node').length));
  const edges = await page.$$eval('#stage-graph path.edge', (es) => es.map((e) => `${e.dataset.from}->${e.dataset.to}`).sort());
  assert(JSON.stringify(columns) === '[1,3]', `graph columns: ${columns}`);
  assert(edges.length === 3 && edges.every((e) => e.startsWith('generate->')), `edges: ${edges}`);
  assert(await page.textContent('#task-run-status') === 'active', 'task run active');
  await shot('7-pipeline');
  await page.click('#pipeline-cancel');
  await page.waitForFunction(() => document.querySelector('#task-run-status')?.textContent === 'paused', null, { timeout: 30000 });
  const cancelled = await nodeStatus();
  assert(cancelled.wait === 'CANCELLED' && cancelled.generate === 'COMPLETE', `after cancel: ${JSON.stringify(cancelled)}`);
  await page.waitForSelector('#pipeline-resume:not([disabled])');
  await page.click('#pipeline-resume');
  await page.waitForFunction(() => document.querySelector('#stage-graph .node[data-instance="wait"]')?.dataset.status === 'RUNNING',
    null, { timeout: 30000 });
  const generateAttempts = await page.textContent('#stage-graph .node[data-instance="generate"]');
  assert(generateAttempts.includes('attempts: 1'), `generate ran once: ${generateAttempts}`);
  await page.waitForSelector('#pipeline-cancel:not([disabled])');
  await page.click('#pipeline-cancel');
  await page.waitForFunction(() => document.querySelector('#task-run-status')?.textContent === 'paused', null, { timeout: 30000 });
  step(`pipeline ${runId}: graph columns ${columns}, edges ${edges.join(', ')}; cancelled, resumed (generate kept), cancelled`);

  // 6. A cooperative run cancelled with the button.
  const coop = await launch('probe', { scenario: 'cooperative' }, { experiment: 'e2e-cancel' });
  await page.waitForFunction(() => document.querySelector('#run-status')?.textContent === 'RUNNING');
  await page.waitForSelector('#cancel:not([disabled])');
  await page.click('#cancel');
  await page.waitForFunction(() => document.querySelector('#run-status')?.textContent === 'CANCELLED', null, { timeout: 30000 });
  assert(await page.isDisabled('#cancel'), 'cancel disabled once ended');
  await shot('8-cancelled');
  step(`job ${coop} cancelled from its page`);

  // 7. The Apps page: the app deployed beside the test, its pool and figures.
  await page.goto(base + '/#/apps');
  await page.waitForSelector('#apps-body tr[data-name="echo-app"]');
  const row = await page.$eval('#apps-body tr[data-name="echo-app"]', (r) => ({
    ok: r.querySelector('td.ok').textContent,
    p50: r.querySelector('td.p50').textContent,
    p99: r.querySelector('td.p99').textContent,
    pool: [...r.querySelectorAll('.pool li')].map((li) => li.dataset.state),
  }));
  assert(row.ok === '3', `apps: ok ${row.ok}`);
  assert(/^\d+\.\d\d ms$/.test(row.p50) && /^\d+\.\d\d ms$/.test(row.p99), `apps: p50 ${row.p50}, p99 ${row.p99}`);
  assert(JSON.stringify(row.pool) === '["ready","ready"]', `apps: pool ${row.pool}`);
  await shot('9-apps');
  step(`app echo-app: ${row.ok} answers, p50 ${row.p50}, p99 ${row.p99}, pool ${row.pool}`);

  return result;
});
