// Browser end-to-end test with Authsignal's official browser SDK (@authsignal/browser 1.16.0) in
// Debian's Chromium, driven by playwright-core, with CDP virtual authenticators:
//   part 1, security key (roaming, USB, not discoverable): the backend (this script) tracks an
//     action for a new user, the page runs securityKey.enroll(); the backend tracks a second
//     action, the page runs securityKey.verify(); the backend validates the token the SDK returned.
//   part 2, passkey (platform, discoverable): passkey.signUp({token, username}), then a
//     usernameless passkey.signIn() with no token; its data must carry token, userId,
//     isVerified: true, username and displayName.
// The page (tests/e2e/sdk_page/) is served by a small static server started here, on its own
// localhost port, so the SDK calls the API cross-origin as it does in a customer's app.
//
// Usage: BASE=http://localhost:8797 TENANT_ID=<dev tenant id> SECRET_KEY=<its secret key> \
//          node tests/e2e/sdk_browser.mjs
// BASE must use the host name `localhost` (a secure context; an IP address is not a valid RP id).
// Prints one line per step and ends with "<n> passed, <m> failed"; a failed step skips the rest
// of its part (the other part still runs); exits 1 on any failure, after printing the recent API
// traffic and the path of a screenshot.
import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

const BASE = (process.env.BASE || 'http://localhost:8797').replace(/\/+$/, '');
const TENANT_ID = process.env.TENANT_ID || '';
const SECRET_KEY = process.env.SECRET_KEY || '';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP_TIMEOUT_MS = 30_000;
const WHOLE_RUN_TIMEOUT_MS = 240_000;

const here = dirname(fileURLToPath(import.meta.url));
const PAGE_FILES = {
  '/': ['sdk_page/index.html', 'text/html; charset=utf-8'],
  '/app.js': ['sdk_page/app.js', 'text/javascript; charset=utf-8'],
  // The SDK's own ES module build: self-contained (its dependencies are bundled in), unmodified.
  '/sdk/authsignal-browser.js': ['node_modules/@authsignal/browser/dist/index.js', 'text/javascript; charset=utf-8'],
};

// A failed step: its name and what went wrong.
class StepError extends Error {
  constructor(step, message) {
    super(message);
    this.step = step;
  }
}

const results = { passed: 0, failed: 0, skipped: 0 };
const serverLog = []; // this script's own Server API exchanges, shown when a step fails

const watchdog = setTimeout(() => {
  console.error(`sdk_browser.mjs: gave up after ${WHOLE_RUN_TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, WHOLE_RUN_TIMEOUT_MS);
watchdog.unref();

if (!TENANT_ID || !SECRET_KEY) {
  console.error('sdk_browser.mjs: set TENANT_ID and SECRET_KEY (the dev tenant of the server at BASE)');
  process.exit(2);
}
if (new URL(BASE).hostname !== 'localhost') {
  console.error(`sdk_browser.mjs: BASE must use the host name localhost, not ${new URL(BASE).hostname}`);
  process.exit(2);
}

const profile = await mkdtemp(join(tmpdir(), 'latchkey-sdk-e2e-profile-'));
const pageServer = await startPageServer();
const PAGE_ORIGIN = `http://localhost:${pageServer.address().port}`;
let context;
let page;
let cdp;
let exitCode = 0;
const failures = [];

console.log(`API ${BASE}, page ${PAGE_ORIGIN}, @authsignal/browser ${await sdkVersion()}`);

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
  page.on('pageerror', (err) => serverLog.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') serverLog.push(`console.error: ${msg.text().slice(0, 600)}`);
  });
  cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });

  const response = await page.goto(`${PAGE_ORIGIN}/`, { waitUntil: 'load' });
  if (!response || !response.ok()) throw new Error(`GET ${PAGE_ORIGIN}/ answered ${response ? response.status() : 'nothing'}`);
  await page.waitForFunction(() => window.sdkTest, undefined, { timeout: STEP_TIMEOUT_MS });
  await page.evaluate((cfg) => window.sdkTest.init(cfg), {
    tenantId: TENANT_ID,
    baseUrl: `${BASE}/v1`,
  });

  await part('security key', securityKeyPart);
  await part('passkey', passkeyPart);
} catch (e) {
  exitCode = 1;
  results.failed += 1;
  failures.push('setup');
  console.log(`FAIL setup: ${e && e.stack ? e.stack : e}`);
}
if (results.failed) {
  exitCode = 1;
  await reportFailure();
}
console.log(`${results.passed} passed, ${results.failed} failed, ${results.skipped} skipped` +
  (failures.length ? ` (failed: ${failures.join('; ')})` : ''));
await context?.close().catch(() => {});
pageServer.closeAllConnections();
await new Promise((r) => pageServer.close(r));
await rm(profile, { recursive: true, force: true }).catch(() => {});
process.exit(exitCode);

// ---- part 1: security key (second factor) ----

async function securityKeyPart(step) {
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'usb',
      hasResidentKey: false,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  try {
    const userId = `sdk-sk-${randomBytes(6).toString('hex')}`;
    let token;
    await step('track an action for a new user (no scope)', async () => {
      token = await track(userId, 'enrollSecurityKey', {});
      return `user ${userId}`;
    });

    await step('securityKey.enroll()', async () => {
      const out = await page.evaluate((t) => window.sdkTest.enrollSecurityKey(t), token);
      const data = expectData('securityKey.enroll', out, await lastOptions('security-key/registration-options'));
      if (typeof data.token !== 'string' || !data.token) throw new Error(`data.token is ${show(data.token)}, want the new access token`);
      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      if (credentials.length !== 1) throw new Error(`the security key holds ${credentials.length} credentials, want 1`);
      return `enrolled; the key holds 1 credential (discoverable: ${credentials[0].isResidentCredential})`;
    });

    let verifyToken;
    await step('track a second action for the same user', async () => {
      verifyToken = await track(userId, 'verifySecurityKey', {});
      return 'got a new token';
    });

    let sdkToken;
    await step('securityKey.verify()', async () => {
      const out = await page.evaluate((t) => window.sdkTest.verifySecurityKey(t), verifyToken);
      const data = expectData('securityKey.verify', out, await lastOptions('security-key/authentication-options'));
      if (data.isVerified !== true) throw new Error(`data.isVerified is ${show(data.isVerified)}, want true`);
      if (typeof data.token !== 'string' || !data.token) throw new Error(`data.token is ${show(data.token)}, want the new access token`);
      sdkToken = data.token;
      return 'isVerified: true';
    });

    await step('validate the token securityKey.verify() returned', async () => {
      const v = await serverApi('POST', '/v1/validate', { token: sdkToken });
      expectFields('validate', v, {
        isValid: true,
        state: 'CHALLENGE_SUCCEEDED',
        verificationMethod: 'SECURITY_KEY',
        userId,
        action: 'verifySecurityKey',
      });
      return `isValid: true, state ${v.state}, verificationMethod ${v.verificationMethod}`;
    });
  } finally {
    await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId }).catch(() => {});
  }
}

// ---- part 2: passkey sign-up, then usernameless sign-in ----

async function passkeyPart(step) {
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
  try {
    const suffix = randomBytes(6).toString('hex');
    const userId = `sdk-pk-${suffix}`;
    const username = `sdk-pk-${suffix}@example.com`;
    let token;
    await step('track a sign-up action for a new user', async () => {
      token = await track(userId, 'signUp', {});
      return `user ${userId}`;
    });

    await step('passkey.signUp({token, username})', async () => {
      const out = await page.evaluate(([t, u]) => window.sdkTest.passkeySignUp(t, u), [token, username]);
      const data = expectData('passkey.signUp', out, await lastOptions('passkey/registration-options'));
      if (typeof data.token !== 'string' || !data.token) throw new Error(`data.token is ${show(data.token)}, want the new access token`);
      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      if (credentials.length !== 1) throw new Error(`the authenticator holds ${credentials.length} credentials, want 1`);
      if (!credentials[0].isResidentCredential) {
        throw new Error('the new passkey is not discoverable, so a sign-in without a user name cannot find it');
      }
      return `signed up as ${username}; 1 discoverable credential`;
    });

    let signIn;
    await step('passkey.signIn() (no token, usernameless)', async () => {
      const out = await page.evaluate(() => window.sdkTest.passkeySignIn());
      signIn = expectData('passkey.signIn', out, await lastOptions('passkey/authentication-options'));
      const problems = [];
      if (signIn.isVerified !== true) problems.push(`isVerified is ${show(signIn.isVerified)}, want true`);
      if (typeof signIn.token !== 'string' || !signIn.token) problems.push(`token is ${show(signIn.token)}, want a string`);
      if (signIn.userId !== userId) problems.push(`userId is ${show(signIn.userId)}, want ${show(userId)}`);
      if (signIn.username !== username) problems.push(`username is ${show(signIn.username)}, want ${show(username)}`);
      if (typeof signIn.displayName !== 'string' || !signIn.displayName) {
        problems.push(`displayName is ${show(signIn.displayName)}, want a non-empty string`);
      }
      if (problems.length) {
        throw new Error(`signIn data: ${problems.join('; ')} (the SDK takes username/displayName from the ` +
          `verify response's username/userDisplayName)`);
      }
      return `userId ${signIn.userId}, username ${signIn.username}, displayName ${signIn.displayName}`;
    });

    await step('validate the token passkey.signIn() returned', async () => {
      const v = await serverApi('POST', '/v1/validate', { token: signIn.token });
      expectFields('validate', v, { isValid: true, state: 'CHALLENGE_SUCCEEDED', verificationMethod: 'PASSKEY', userId });
      return `isValid: true, state ${v.state}, verificationMethod ${v.verificationMethod}, action ${v.action}`;
    });

    // The token path: options and verify take their authorization from the token's action
    // (checked by the options' write, recorded in the ceremony) rather than reading it first.
    let stepUp;
    await step('track a step-up action for the enrolled user', async () => {
      const r = await serverApi('POST', `/v1/users/${encodeURIComponent(userId)}/actions/withdraw`, {});
      if (r.state !== 'CHALLENGE_REQUIRED' || typeof r.token !== 'string') {
        throw new Error(`track answered ${JSON.stringify(r).slice(0, 300)}, want CHALLENGE_REQUIRED with a token`);
      }
      stepUp = r.token;
      return 'CHALLENGE_REQUIRED';
    });

    let withToken;
    await step('passkey.signIn({token}) (the user known from the token)', async () => {
      const out = await page.evaluate((t) => window.sdkTest.passkeySignInWithToken(t), stepUp);
      withToken = expectData('passkey.signIn({token})', out, await lastOptions('passkey/authentication-options'));
      if (withToken.isVerified !== true || withToken.userId !== userId || typeof withToken.token !== 'string') {
        throw new Error(`signIn data: ${JSON.stringify(withToken).slice(0, 300)}`);
      }
      return `userId ${withToken.userId}, username ${withToken.username}`;
    });

    await step('validate the token passkey.signIn({token}) returned', async () => {
      const v = await serverApi('POST', '/v1/validate', { token: withToken.token });
      expectFields('validate', v, { isValid: true, state: 'CHALLENGE_SUCCEEDED', verificationMethod: 'PASSKEY', userId });
      if (v.action !== 'withdraw') throw new Error(`validated action ${v.action}, want withdraw`);
      return `isValid: true, state ${v.state}, action ${v.action}`;
    });
  } finally {
    await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId }).catch(() => {});
  }
}

// ---- helpers ----

// Runs one part: its steps run in order; after a failure the remaining steps are skipped.
async function part(name, body) {
  let failed = false;
  const step = async (stepName, stepBody) => {
    const full = `${name}: ${stepName}`;
    if (failed) {
      results.skipped += 1;
      console.log(`skip ${full}`);
      return;
    }
    let detail;
    try {
      detail = await stepBody();
    } catch (e) {
      failed = true;
      results.failed += 1;
      failures.push(full);
      console.log(`FAIL ${full}: ${e && e.message ? e.message : String(e)}`);
      return;
    }
    results.passed += 1;
    console.log(`ok ${results.passed} ${full}${detail ? ` — ${detail}` : ''}`);
  };
  try {
    await body(step);
  } catch (e) {
    results.failed += 1;
    failures.push(`${name} (setup)`);
    console.log(`FAIL ${name} (setup): ${e && e.stack ? e.stack : e}`);
  }
}

// The data of an SDK result, or an error saying what the SDK returned or threw. `options` (the
// WebAuthn options the server sent, if any) is quoted when the browser refused the ceremony.
function expectData(call, out, options) {
  if (out.thrown) {
    const t = out.thrown;
    let msg = `${call} threw ${t.name}${t.code ? ` (${t.code})` : ''}: ${t.message}`;
    if (t.cause) msg += `; the browser's error: ${t.cause.name}: ${t.cause.message}`;
    if (options) {
      const o = options.publicKey ?? options.options ?? options;
      msg += `; the server's options had authenticatorSelection ${JSON.stringify(o.authenticatorSelection)}` +
        `, extensions ${JSON.stringify(o.extensions)}`;
    }
    throw new Error(msg);
  }
  const r = out.result;
  if (!r || typeof r !== 'object') throw new Error(`${call} resolved ${show(r)}, want {data}`);
  if ('error' in r) {
    throw new Error(`${call} returned an error: errorCode ${show(r.errorCode)}, errorDescription ${show(r.errorDescription)}` +
      (r.error !== r.errorDescription ? `, error ${show(r.error)}` : ''));
  }
  if (!r.data || typeof r.data !== 'object') throw new Error(`${call} resolved ${show(r)}, want {data}`);
  return r.data;
}

function expectFields(what, obj, want) {
  const wrong = Object.entries(want)
    .filter(([k, v]) => obj?.[k] !== v)
    .map(([k, v]) => `${k} is ${show(obj?.[k])}, want ${show(v)}`);
  if (wrong.length) throw new Error(`${what}: ${wrong.join('; ')} (response ${JSON.stringify(obj).slice(0, 500)})`);
}

// The parsed body of the latest page exchange whose path ends with `suffix`, or null.
async function lastOptions(suffix) {
  const traffic = await page.evaluate(() => window.sdkTest.traffic.slice()).catch(() => []);
  const hit = traffic.filter((t) => t.path && t.path.endsWith(suffix) && t.body !== undefined).pop();
  if (!hit) return null;
  try {
    return JSON.parse(hit.body);
  } catch {
    return null;
  }
}

function trafficLine(t) {
  if (t.note) return t.note;
  if (t.failed) return `${t.method} ${t.path} -> ${t.failed}`;
  return `${t.method} ${t.path} -> ${t.status} ${t.body.length > 700 ? `${t.body.slice(0, 700)}…` : t.body}`;
}

// Server API track: POST /v1/users/{userId}/actions/{action}; returns the token.
async function track(userId, action, body) {
  const r = await serverApi('POST', `/v1/users/${encodeURIComponent(userId)}/actions/${action}`, body);
  if (typeof r.token !== 'string' || !r.token) throw new Error(`track answered no token: ${JSON.stringify(r).slice(0, 500)}`);
  return r.token;
}

async function serverApi(method, path, body) {
  let res;
  try {
    res = await fetch(`${BASE}${path}`, {
      method,
      headers: {
        Authorization: `Basic ${Buffer.from(`${SECRET_KEY}:`).toString('base64')}`,
        'Content-Type': 'application/json',
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
    });
  } catch (e) {
    throw new Error(`${method} ${BASE}${path} failed: ${e.cause?.code || e.cause?.message || e.message}`);
  }
  const text = await res.text();
  serverLog.push(`(server API) ${method} ${path} -> ${res.status} ${text.slice(0, 600)}`);
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${method} ${path} answered ${res.status} with a non-JSON body: ${text.slice(0, 300)}`);
  }
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 500)}`);
  return json;
}

function show(v) {
  return v === undefined ? 'missing' : JSON.stringify(v);
}

async function sdkVersion() {
  try {
    return JSON.parse(await readFile(join(here, 'node_modules/@authsignal/browser/package.json'), 'utf8')).version;
  } catch {
    return '(not installed: run npm ci --prefix tests/e2e)';
  }
}

// Serves the test page and the SDK's module on 127.0.0.1 (reached as http://localhost:PORT).
function startPageServer() {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, 'http://localhost').pathname;
    const entry = PAGE_FILES[path];
    if (req.method !== 'GET' || !entry) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    try {
      const body = await readFile(join(here, entry[0]));
      res.writeHead(200, { 'Content-Type': entry[1], 'Cache-Control': 'no-store' }).end(body);
    } catch (e) {
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end(String(e));
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(process.env.PAGE_PORT || 0), '127.0.0.1', () => resolve(server));
  });
}

async function reportFailure() {
  if (!page) return;
  const shot = join(tmpdir(), `latchkey-sdk-e2e-${Date.now()}.png`);
  try {
    await page.screenshot({ path: shot, fullPage: true, timeout: 10_000 });
    console.log(`screenshot: ${shot}`);
  } catch (e) {
    console.log(`screenshot failed: ${e.message}`);
  }
  const traffic = await page.evaluate(() => window.sdkTest?.traffic.slice() ?? []).catch(() => []);
  if (traffic.length) {
    console.log('recent SDK traffic (from the page):');
    for (const t of traffic.slice(-14)) console.log(`  ${trafficLine(t)}`);
  }
  if (serverLog.length) {
    console.log('recent Server API calls and page errors:');
    for (const line of serverLog.slice(-10)) console.log(`  ${line}`);
  }
}
