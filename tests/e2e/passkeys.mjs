// Browser end-to-end test of the /demo page: passkey sign-up, sign-out, then username-less
// sign-in, in Debian's Chromium driven by playwright-core, with a CDP virtual authenticator.
//
// Usage: BASE=http://localhost:8796 node tests/e2e/passkeys.mjs
// BASE must use the host name `localhost` (a secure context; an IP address is not a valid RP id).
// Prints one line per step and ends with "<n> passed, <m> failed"; exits 1 on any failure, after
// printing the page's status text and the path of a screenshot.
import { chromium } from 'playwright-core';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BASE = (process.env.BASE || 'http://localhost:8787').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP_TIMEOUT_MS = 30_000;
const WHOLE_RUN_TIMEOUT_MS = 180_000;

// A failed step: its name and what went wrong.
class StepError extends Error {
  constructor(step, message) {
    super(message);
    this.step = step;
  }
}

const results = { passed: 0, failed: 0 };
const apiLog = []; // the last API exchanges, shown when a step fails

const watchdog = setTimeout(() => {
  console.error(`passkeys.mjs: gave up after ${WHOLE_RUN_TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, WHOLE_RUN_TIMEOUT_MS);
watchdog.unref();

const profile = await mkdtemp(join(tmpdir(), 'latchkey-e2e-profile-'));
let context;
let page;
let exitCode = 0;

try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
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
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  recordApiTraffic(page);

  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });

  const response = await page.goto(`${BASE}/demo`, { waitUntil: 'load' });
  if (!response || !response.ok()) {
    throw new StepError('open /demo', `GET ${BASE}/demo answered ${response ? response.status() : 'nothing'}`);
  }

  let userId;

  await step('sign up with a passkey', async () => {
    const optionsResponse = page
      .waitForResponse((r) => r.url().endsWith('/passkey/registration-options'))
      .then((r) => r.json())
      .catch(() => null);
    await page.click('#sign-up');
    const text = await settledStatus((t) => t.startsWith('Signed in as'));
    userId = text.slice('Signed in as '.length).trim().split(/\s/)[0];
    if (!userId) throw new Error(`no user id in status "${text}"`);
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    if (credentials.length !== 1) throw new Error(`authenticator holds ${credentials.length} credentials, want 1`);
    if (!credentials[0].isResidentCredential) {
      const options = (await optionsResponse)?.options;
      const selection = JSON.stringify((options?.publicKey ?? options)?.authenticatorSelection);
      throw new Error(
        `the new passkey is not discoverable (resident), so a sign-in without a user name cannot find it; ` +
          `registration options asked for authenticatorSelection ${selection} (want residentKey "required" or "preferred")`,
      );
    }
    return `signed in as ${userId}; authenticator holds 1 discoverable credential`;
  });

  await step('sign out', async () => {
    await page.click('#sign-out');
    const text = await settledStatus((t) => t === 'Signed out');
    const validated = (await page.textContent('#validated')).trim();
    if (validated) throw new Error(`#validated still shows "${validated}" after sign-out`);
    return text;
  });

  await step('sign in with the passkey (no user name)', async () => {
    await page.click('#sign-in');
    const want = `Signed in as ${userId}`;
    const text = await settledStatus((t) => t.startsWith('Signed in as'));
    if (text !== want && !text.startsWith(want + ' ')) throw new Error(`status "${text}", want "${want}"`);
    const validated = (await page.textContent('#validated')).trim();
    if (!validated.includes('CHALLENGE_SUCCEEDED')) {
      throw new Error(`#validated is "${validated}", want CHALLENGE_SUCCEEDED`);
    }
    return `signed in as ${userId}, validated ${validated}`;
  });
} catch (e) {
  exitCode = 1;
  if (e instanceof StepError) {
    console.log(`FAIL ${e.step}: ${e.message}`);
    results.failed += 1;
  } else {
    console.log(`FAIL setup: ${e && e.stack ? e.stack : e}`);
    results.failed += 1;
  }
  await reportFailure();
} finally {
  console.log(`${results.passed} passed, ${results.failed} failed`);
  await context?.close().catch(() => {});
  await rm(profile, { recursive: true, force: true }).catch(() => {});
}
process.exit(exitCode);

// ---- helpers ----

async function step(name, body) {
  let detail;
  try {
    detail = await body();
  } catch (e) {
    throw new StepError(name, e && e.message ? e.message : String(e));
  }
  results.passed += 1;
  console.log(`ok ${results.passed} ${name}${detail ? ` — ${detail}` : ''}`);
}

// Waits until #status shows an outcome (success or an error) and returns its text; throws when
// the outcome is an error or not the one wanted.
async function settledStatus(isWanted) {
  await page.waitForFunction(
    () => {
      const t = (document.getElementById('status')?.textContent || '').trim();
      return t === 'Signed out' || t.startsWith('Signed in as') || t.startsWith('Error');
    },
    undefined,
    { timeout: STEP_TIMEOUT_MS, polling: 100 },
  ).catch(async () => {
    throw new Error(`#status still "${await statusText()}" after ${STEP_TIMEOUT_MS / 1000} s`);
  });
  const text = await statusText();
  if (!isWanted(text)) throw new Error(`#status is "${text}"`);
  return text;
}

async function statusText() {
  return ((await page.textContent('#status').catch(() => null)) || '').trim();
}

function recordApiTraffic(p) {
  p.on('response', async (res) => {
    const url = new URL(res.url());
    if (!url.pathname.startsWith('/v1/') && !url.pathname.startsWith('/demo/api/')) return;
    let body = '';
    try {
      body = (await res.text()).slice(0, 600);
    } catch {
      body = '(body unavailable)';
    }
    apiLog.push(`${res.request().method()} ${url.pathname} -> ${res.status()} ${body}`);
    if (apiLog.length > 12) apiLog.shift();
  });
  p.on('console', (msg) => {
    // The browser's own /favicon.ico request 404s; that is not the page's doing.
    if (msg.type() === 'error' && !msg.location().url.endsWith('/favicon.ico')) apiLog.push(`console.error: ${msg.text().slice(0, 600)}`);
  });
  p.on('pageerror', (err) => apiLog.push(`page error: ${err.message}`));
}

async function reportFailure() {
  if (!page) return;
  console.log(`page status: "${await statusText()}"`);
  const shot = join(tmpdir(), `latchkey-e2e-${Date.now()}.png`);
  try {
    await page.screenshot({ path: shot, fullPage: true, timeout: 10_000 });
    console.log(`screenshot: ${shot}`);
  } catch (e) {
    console.log(`screenshot failed: ${e.message}`);
  }
  if (apiLog.length) {
    console.log('recent API traffic:');
    for (const line of apiLog) console.log(`  ${line}`);
  }
}
