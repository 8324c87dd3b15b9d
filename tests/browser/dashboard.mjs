// The dashboard's browser checks (issue 16), run by tests/integration/test_dashboard.c
// against two real stacks: SYN_OPEN_URL (no tokens, workers w0 and w1) and
// SYN_SECURED_URL (API tokens: SYN_ADMIN_TOKEN, SYN_READ_TOKEN). One headless
// chromium (Debian's, /usr/bin/chromium) for every page. Each step waits for what
// the page shows, never for a fixed time; SYN_SCALE_MS is what 1000 ms is on this
// machine (SYN_TEST_TIMEOUT_MULTIPLIER). Any console error or uncaught exception in
// any page fails the run. Screenshots of each page go to SYN_SCREENSHOTS.
// Asks test_dashboard.c for what a browser cannot do with "@@ <command>" lines.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

const require = createRequire(path.join(process.env.NODE_PATH, 'noop.js'));
const { chromium } = require('playwright-core');

const OPEN = process.env.SYN_OPEN_URL;
const SECURED = process.env.SYN_SECURED_URL;
const ADMIN = process.env.SYN_ADMIN_TOKEN;
const READ = process.env.SYN_READ_TOKEN;
const SHOTS = process.env.SYN_SCREENSHOTS;
const SCALE = Number(process.env.SYN_SCALE_MS || 1000) / 1000;
const T = (ms) => Math.round(ms * SCALE);

// ---- the harness's commands -------------------------------------------------------
const replies = [];
const waiting = [];
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const w = waiting.shift();
  if (w) w(line);
  else replies.push(line);
});
async function ask(command) {
  process.stdout.write(`@@ ${command}\n`);
  const reply = replies.length ? replies.shift() : await new Promise((r) => waiting.push(r));
  if (reply !== 'ok') throw new Error(`${command}: ${reply}`);
}

// ---- the API, for setting up what the pages then show ------------------------------
async function call(base, method, p, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const r = await fetch(base + p, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
const phase = (id, order, prompt, extra = {}) => ({ phase_id: id, name: id[0].toUpperCase() + id.slice(1), order, prompt_template: prompt, ...extra });
const WORKFLOWS = [
  { id: 'ui-demo', name: 'Research demo', workflow_type: 'research',
    description: 'three mock phases',
    input_declarations: [{ name: 'topic', required: true, description: 'what to look into' }, { name: 'depth', required: false, default: '2' }],
    phases: [
      phase('plan', 1, `Plan research on {{topic}} (depth {{depth}}).\n#mock sleep ${T(1500)}\n#mock tokens 1200 300`),
      phase('build', 2, `Write it up.\n#mock sleep ${T(1500)}\n#mock tokens 2400 800`),
      phase('review', 3, `Review it.\n#mock sleep ${T(1500)}\n#mock tokens 900 200`)] },
  { id: 'ui-steer', name: 'Steered', phases: [
    phase('first', 1, `First.\n#mock sleep ${T(8000)}`), phase('second', 2, 'Second.\n#mock sleep 200')] },
  { id: 'ui-stuck', name: 'Stuck', phases: [phase('stuck', 1, 'Stuck.\n#mock sleep 600000')] },
  { id: 'ui-fail', name: 'Failing', phases: [
    phase('fine', 1, 'Fine.\n#mock sleep 100'),
    phase('broken', 2, 'Broken.\n#mock fail model refused', { max_attempts: 1 })] },
  { id: 'ui-lost', name: 'Long', phases: [phase('long', 1, 'Long.\n#mock sleep 600000', { max_attempts: 3 })] },
];
const start = async (base, wf, token, inputs = {}) =>
  (await call(base, 'POST', `/workflows/${wf}/execute`, { inputs }, token)).execution_id;

// ---- pages -----------------------------------------------------------------------
const errors = [];
let allowed = null; // a console error expected while a step runs (the gateway away)
function watch(page, label) {
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (allowed && allowed.test(m.text())) return;
    errors.push(`${label}: console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`${label}: uncaught: ${e.message}`));
}
const pages = new Set(); // open pages: shown and closed when a check fails
async function open(context, url, label) {
  const page = await context.newPage();
  pages.add(page);
  page.on('close', () => pages.delete(page));
  watch(page, label);
  await page.goto(url);
  return page;
}
const shot = (page, name) => page.screenshot({ path: path.join(SHOTS, `dashboard-${name}.png`) });
// Another page of the loaded dashboard, without a reload.
const go = async (page, hash) => {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForSelector(`#main h1:text-is("${decodeURIComponent(hash.split('/').pop())}")`, { timeout: T(5000) });
};
const live = (page) => page.waitForSelector('#stream-state[data-state="live"]', { timeout: T(5000) });
const status = (page, s, timeout = 10000) =>
  page.waitForSelector(`#exec-status[data-status="${s}"]`, { timeout: T(timeout) });

const checks = [];
const check = (name, fn) => checks.push([name, fn]);

check('an execution run from the Workflows form shows in the list at once and moves live', async ({ desk }) => {
  const list = await open(desk, `${OPEN}/ui/#/executions`, 'list');
  await live(list);
  // What the list shows, as it changes: a phase shown for less time than a poll of
  // waitForSelector takes is still seen.
  await list.evaluate(() => {
    window.notReloaded = true;
    window.seen = {};
    const record = () => {
      for (const tr of document.querySelectorAll('tr[data-execution]')) {
        const shown = `${tr.dataset.status}:${tr.querySelector('td.phase').textContent}`;
        const log = (window.seen[tr.dataset.execution] ||= []);
        if (log[log.length - 1] !== shown) log.push(shown);
      }
    };
    new MutationObserver(record).observe(document.querySelector('main'), { subtree: true, childList: true, characterData: true, attributes: true });
  });
  const form = await open(desk, `${OPEN}/ui/#/workflows/ui-demo`, 'workflow');
  await form.waitForSelector('#run-form');
  // Declared inputs: required marked, defaults filled in.
  if (!(await form.$eval('#input-topic', (e) => e.required))) throw new Error('topic is not marked required');
  if ((await form.inputValue('#input-depth')) !== '2') throw new Error('depth default not filled in');
  await form.waitForSelector('#yaml:has-text("id: ui-demo")');
  await form.fill('#input-topic', 'sqlite WAL');
  await form.click('#run-submit');
  const id = await (await form.waitForSelector('#run-started', { timeout: T(5000) })).textContent();
  await shot(form, 'workflow');
  const row = `tr[data-execution="${id}"]`;
  // A tab in the background is not laid out, and nothing in it counts as visible.
  await list.bringToFront();
  await list.waitForSelector(row, { timeout: T(1000) });
  await list.waitForSelector(`${row}[data-status="completed"]`, { timeout: T(10000) });
  const seen = await list.evaluate((x) => window.seen[x], id);
  const order = ['running:plan', 'running:build', 'running:review', 'completed:–'];
  if (order.map((v) => seen.indexOf(v)).some((at, i, all) => at < 0 || (i && at < all[i - 1])))
    throw new Error(`the list did not move through the phases: ${seen.join(' → ')}`);
  await list.waitForSelector(`${row} progress[value="3"]`);
  if (!(await list.evaluate(() => window.notReloaded))) throw new Error('the list page was reloaded');
  // The inputs reached the prompt: the mock echoes it.
  const detail = await call(OPEN, 'GET', `/executions/${id}`);
  if (!detail.phases[0].output_preview.includes('sqlite WAL (depth 2)')) throw new Error('inputs not in the prompt');
  await form.close();
  await list.close();
});

check('pause, inject and resume from the Execution page; the message reaches the next prompt', async ({ desk }) => {
  // The page is loaded before the execution starts, and shows it by its address
  // alone: no page load between the start and the clicks.
  const page = await open(desk, `${OPEN}/ui/#/executions`, 'steer');
  await live(page);
  const id = await start(OPEN, 'ui-steer');
  await go(page, `#/executions/${id}`);
  await page.waitForSelector('tr[data-phase="first"][data-status="running"]', { timeout: T(5000) });
  await page.click('#btn-pause');
  await status(page, 'paused');
  await page.waitForSelector('#btn-resume:enabled');
  await page.waitForSelector('#btn-pause:disabled');
  await page.fill('#inject-text', 'mind the tests 42');
  await page.click('#btn-inject');
  await page.waitForSelector('#messages li:has-text("mind the tests 42")', { timeout: T(5000) });
  await page.click('#btn-resume');
  await status(page, 'running');
  await page.waitForSelector('#btn-pause:enabled');
  // The running phase finishes, and the next one's prompt holds the message.
  await status(page, 'completed', 15000);
  await page.click('button[name="phase-second"]');
  await page.waitForSelector('#output[data-phase="second"]:has-text("mind the tests 42")', { timeout: T(5000) });
  await page.waitForSelector('#output:has-text("## Operator messages")');
  for (const b of ['#btn-pause', '#btn-resume', '#btn-cancel', '#btn-inject'])
    await page.waitForSelector(`${b}:disabled`);
  await page.waitForSelector('#timeline rect.bar.a-completed');
  await shot(page, 'execution');
  await page.close();
});

check('cancel from the Execution page stops it', async ({ desk }) => {
  // The page is loaded before the execution starts, and shows it by its address
  // alone: no page load between the start and the clicks.
  const page = await open(desk, `${OPEN}/ui/#/executions`, 'cancel');
  await live(page);
  const id = await start(OPEN, 'ui-stuck');
  await go(page, `#/executions/${id}`);
  await page.waitForSelector('tr[data-phase="stuck"][data-status="running"]', { timeout: T(5000) });
  await page.click('#btn-cancel');
  await status(page, 'cancelled');
  await page.waitForSelector('tr[data-phase="stuck"][data-status="cancelled"]', { timeout: T(5000) });
  await page.waitForSelector('#exec-error:has-text("Cancelled by user")');
  for (const b of ['#btn-pause', '#btn-resume', '#btn-cancel', '#btn-inject'])
    await page.waitForSelector(`${b}:disabled`);
  await page.close();
});

check('a failed phase shows its error', async ({ desk }) => {
  // The page is loaded before the execution starts, and shows it by its address
  // alone: no page load between the start and the clicks.
  const page = await open(desk, `${OPEN}/ui/#/executions`, 'fail');
  await live(page);
  const id = await start(OPEN, 'ui-fail');
  await go(page, `#/executions/${id}`);
  await status(page, 'failed');
  await page.waitForSelector('#exec-error:has-text("Phase broken failed: model refused")', { timeout: T(5000) });
  await page.waitForSelector('tr[data-phase="broken"][data-status="failed"] td.error:has-text("model refused")');
  await page.waitForSelector('#timeline rect.bar.a-failed');
  await page.close();
});

check('keyboard: Tab reaches an execution, Enter opens it; a phone-sized screen does not scroll sideways', async ({ desk, phone }) => {
  const page = await open(desk, `${OPEN}/ui/#/executions`, 'keys');
  await page.waitForSelector('#executions tbody a[href^="#/executions/"]');
  let found = false;
  for (let i = 0; i < 40 && !found; i++) {
    await page.keyboard.press('Tab');
    found = await page.evaluate(() => (document.activeElement.getAttribute('href') || '').startsWith('#/executions/'));
  }
  if (!found) throw new Error('Tab never reached an execution link');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#exec-status');
  await page.close();
  const small = await open(phone, `${OPEN}/ui/#/executions`, 'phone');
  await small.waitForSelector('#executions tbody tr[data-execution]');
  const wide = await small.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  if (wide) throw new Error('the page is wider than a phone screen');
  await shot(small, 'phone');
  await small.close();
});

check('a killed worker shows the lost attempt and its rerun; the fleet shows it lost', async ({ desk }) => {
  // The agent runs for ten minutes: whatever the machine's load, the worker is
  // killed while it runs; the stack goes with it at the end.
  const fleet = await open(desk, `${OPEN}/ui/#/fleet`, 'fleet');
  await live(fleet);
  // The page is loaded before the execution starts, and shows it by its address
  // alone: no page load between the start and the clicks.
  const page = await open(desk, `${OPEN}/ui/#/executions`, 'lost');
  await live(page);
  const id = await start(OPEN, 'ui-lost');
  await go(page, `#/executions/${id}`);
  const first = await page.waitForSelector('li[data-attempt="1"][data-status="running"]', { timeout: T(5000) });
  const worker = await first.getAttribute('data-worker');
  await fleet.bringToFront();
  await fleet.waitForSelector(`tr[data-worker="${worker}"][data-state="healthy"] td.slots:has-text("1 / 1")`, { timeout: T(5000) });
  await ask(`kill-worker ${worker}`);
  await page.bringToFront();
  await page.waitForSelector('li[data-attempt="1"][data-status="lost"]', { timeout: T(10000) });
  const second = await page.waitForSelector('li[data-attempt="2"][data-status="running"]', { timeout: T(5000) });
  if ((await second.getAttribute('data-worker')) === worker) throw new Error('the rerun went to the lost worker');
  await fleet.bringToFront();
  await fleet.waitForSelector(`tr[data-worker="${worker}"][data-state="lost"]`, { timeout: T(5000) });
  await shot(fleet, 'fleet');
  await fleet.close();
  await page.close();
});

check('a gateway restart: the page says it lost the stream, then resumes', async ({ desk }) => {
  const page = await open(desk, `${OPEN}/ui/#/executions`, 'restart');
  await live(page);
  allowed = /ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET|503/;
  try {
    await ask('restart-gateway');
    await page.waitForSelector('#stream-state[data-state="lost"]', { timeout: T(5000) });
    await page.waitForSelector('#stream-state[data-state="live"]', { timeout: T(10000) });
  } finally {
    allowed = null;
  }
  // Events after the restart still reach the page.
  const id = await start(OPEN, 'ui-fail');
  await page.waitForSelector(`tr[data-execution="${id}"][data-status="failed"]`, { timeout: T(5000) });
  await shot(page, 'executions'); // every kind of execution the checks left
  await page.close();
});

check('with tokens: the page asks for one; a read token hides the controls', async ({ browser }) => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await open(ctx, `${SECURED}/ui/`, 'token');
  await page.waitForSelector('#token');
  await shot(page, 'token');
  await page.fill('#token', 'not-a-token');
  await page.click('button[type="submit"]');
  await page.waitForSelector('.token-form .error:has-text("not known")');
  await page.fill('#token', READ);
  await page.click('button[type="submit"]');
  await page.waitForSelector('#executions');
  await page.waitForSelector('#who:has-text("viewer (read)")');
  await live(page);
  const id = await start(SECURED, 'ui-fail', ADMIN);
  await page.waitForSelector(`tr[data-execution="${id}"]`, { timeout: T(5000) });
  await page.goto(`${SECURED}/ui/#/executions/${id}`);
  await status(page, 'failed');
  if (await page.$('#btn-pause, #btn-cancel, #btn-resume, #btn-inject')) throw new Error('a read token sees controls');
  await page.goto(`${SECURED}/ui/#/workflows/ui-fail`);
  await page.waitForSelector('#run:has-text("may read, not run")');
  // An admin token, in another tab's session, sees them.
  const admin = await browser.newContext();
  const other = await open(admin, `${SECURED}/ui/`, 'admin');
  await other.fill('#token', ADMIN);
  await other.click('button[type="submit"]');
  await other.waitForSelector('#executions');
  await other.goto(`${SECURED}/ui/#/executions/${id}`);
  await other.waitForSelector('#btn-cancel:disabled');
  await admin.close();
  await ctx.close();
});

// ---- run -------------------------------------------------------------------------
fs.mkdirSync(SHOTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.SYN_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
let failed = 0;
try {
  for (const w of WORKFLOWS) {
    await call(OPEN, 'POST', '/workflows', w);
    await call(SECURED, 'POST', '/workflows', w, ADMIN);
  }
  const desk = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  for (const [name, fn] of checks) {
    const t0 = Date.now();
    try {
      await fn({ browser, desk, phone });
      console.log(`ok    ${name} (${Date.now() - t0} ms)`);
    } catch (err) {
      failed++;
      console.log(`FAIL  ${name}: ${err.stack || err}`);
      for (const page of [...pages]) {
        const text = await page.evaluate(() => document.body.innerText).catch(() => '?');
        console.log(`----- ${page.url()}\n${text}\n-----`);
        await page.close();
      }
    }
  }
} finally {
  await browser.close();
}
for (const e of errors) console.log(`FAIL  ${e}`);
if (errors.length) failed++;
console.log(failed ? `${failed} failed` : 'all passed');
process.exit(failed ? 1 : 0);
