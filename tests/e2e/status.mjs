// Browser end-to-end test of the public status page: an operator opens an incident through
// the write API, then Debian's Chromium (driven by playwright-core, JavaScript disabled, as a
// visitor without scripts would be) loads /status on a phone-sized and a desktop viewport,
// takes screenshots, and checks that the incident title and the overall status are on the page
// and that the Content-Security-Policy blocked nothing.
//
// Usage: BASE=http://localhost:8797 TOKEN=lko_... ARTIFACTS=/some/dir node tests/e2e/status.mjs
// Prints one line per step and ends with "<n> passed, <m> failed"; exits 1 on any failure.
import { chromium } from 'playwright-core';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BASE = (process.env.BASE || 'http://localhost:8787').replace(/\/+$/, '');
const TOKEN = process.env.TOKEN || '';
const ARTIFACTS = process.env.ARTIFACTS || join(tmpdir(), 'latchkey-status-e2e');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TITLE = 'Elevated error rates on passkey sign-in';
const OVERALL = 'Partial System Outage';

const watchdog = setTimeout(() => {
  console.error('status.mjs: gave up after 120 s');
  process.exit(1);
}, 120_000);
watchdog.unref();

const results = { passed: 0, failed: 0 };

async function step(name, body) {
  try {
    const detail = await body();
    results.passed += 1;
    console.log(`ok ${results.passed} ${name}${detail ? ` — ${detail}` : ''}`);
  } catch (e) {
    results.failed += 1;
    console.log(`FAIL ${name}: ${e && e.message ? e.message : e}`);
    throw e;
  }
}

async function operator(method, path, body, key) {
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  if (key) headers['idempotency-key'] = key;
  const res = await fetch(`${BASE}${path}`, { method, headers, body: JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

await mkdir(ARTIFACTS, { recursive: true });
const profile = await mkdtemp(join(tmpdir(), 'latchkey-status-profile-'));
let context;
let exitCode = 0;

try {
  if (!TOKEN.startsWith('lko_')) throw new Error('TOKEN must be an operator token (lko_...)');
  let componentId;
  await step('operator adds a component', async () => {
    const c = await operator('POST', '/status/manage/components', { name: 'Passkeys' });
    componentId = c.id;
    return `id ${c.id}`;
  });
  await step('operator opens a major incident on it', async () => {
    const i = await operator(
      'POST',
      '/status/manage/incidents',
      {
        name: TITLE,
        impact: 'major',
        body: 'Some sign-ins fail with a timeout. We are investigating.',
        components: { [componentId]: 'partial_outage' },
      },
      `e2e-${Date.now()}`,
    );
    if (i.status !== 'investigating') throw new Error(`status ${i.status}`);
    return `id ${i.id}`;
  });

  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    javaScriptEnabled: false,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20_000);
  const blocked = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) blocked.push(m.text());
  });
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));

  for (const [label, viewport] of [
    ['phone', { width: 390, height: 844 }],
    ['desktop', { width: 1280, height: 900 }],
  ]) {
    await step(`/status renders on a ${label} (${viewport.width}px) without JavaScript`, async () => {
      await page.setViewportSize(viewport);
      const res = await page.goto(`${BASE}/status`, { waitUntil: 'load' });
      if (!res || res.status() !== 200) throw new Error(`GET /status answered ${res ? res.status() : 'nothing'}`);
      const shot = join(ARTIFACTS, `status-${label}.png`);
      await page.screenshot({ path: shot, fullPage: true });
      const overall = (await page.locator('#overall').innerText()).trim();
      if (overall !== OVERALL) throw new Error(`overall status reads "${overall}", expected "${OVERALL}"`);
      if (!(await page.locator('#overall').isVisible())) throw new Error('overall status is not visible');
      // The banner's colour comes from the inline stylesheet: a CSP that blocked it shows here.
      const banner = await page.locator('#overall p').evaluate((el) => getComputedStyle(el).backgroundColor);
      if (banner === 'rgba(0, 0, 0, 0)' || banner === 'transparent') throw new Error('the overall status has no colour');
      const incident = page.locator('#active-incidents h3', { hasText: TITLE });
      if (!(await incident.isVisible())) throw new Error(`incident "${TITLE}" is not visible`);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      if (width > viewport.width) throw new Error(`page is ${width}px wide on a ${viewport.width}px screen`);
      return `screenshot ${shot}`;
    });
  }
  await step('the CSP blocked nothing and nothing was loaded from elsewhere', async () => {
    if (blocked.length) throw new Error(blocked.join('; '));
    const foreign = requests.filter((u) => !u.startsWith(BASE));
    if (foreign.length) throw new Error(`requests elsewhere: ${foreign.join(', ')}`);
    return `${requests.length} request(s), all to ${BASE}`;
  });
} catch (e) {
  exitCode = 1;
  if (results.failed === 0) console.log(`FAIL setup: ${e && e.stack ? e.stack : e}`);
} finally {
  console.log(`${results.passed} passed, ${results.failed} failed`);
  if (context) await context.close().catch(() => {});
  await rm(profile, { recursive: true, force: true }).catch(() => {});
}
process.exit(exitCode);
