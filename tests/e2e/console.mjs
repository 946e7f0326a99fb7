// Browser end-to-end test of the console (/console) in Debian's Chromium, driven by
// playwright-core, with a CDP virtual authenticator per person (issue #16's "done when"):
//
//   accept the owner invite latchkey-local printed and register a passkey → sign out → sign in
//   without typing a name (keyboard only) → create a secret key and track with it through
//   Authsignal's Python SDK → configure an action's rules in the form (a validation error shown
//   next to its field first) and see the next tracks follow them → find the user the track
//   created → the audit log shows every one of those changes, verified → grant support access →
//   an operator, in a second browser context with its own passkey, reads the tenant's users
//   under the grant, and is refused once the owner revokes it.
//
// Every page is screenshotted at laptop (1280×800) and phone (390×844) widths into ARTIFACTS,
// and checked with axe-core: a serious or critical violation fails the run, as does anything
// the Content-Security-Policy blocks.
//
// Usage (tests/e2e/console.sh sets these): BASE=http://localhost:8795 INVITE_URL=... \
//   OPERATOR_INVITE=lki_... PYTHON=.venv-sdk/bin/python ARTIFACTS=dir node tests/e2e/console.mjs
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const BASE = (process.env.BASE || 'http://localhost:8795').replace(/\/+$/, '');
const INVITE_URL = process.env.INVITE_URL || '';
const OPERATOR_INVITE = process.env.OPERATOR_INVITE || '';
const SPARE_INVITE = process.env.SPARE_INVITE || '';
const PYTHON = process.env.PYTHON || 'python3';
const ARTIFACTS = process.env.ARTIFACTS || 'target/e2e/console';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const SDK = new URL('./console_sdk.py', import.meta.url).pathname;
const AXE = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const watchdog = setTimeout(() => {
  console.error('console.mjs: gave up after 300 s');
  process.exit(1);
}, 300_000);
watchdog.unref();

const results = { passed: 0, failed: 0 };
const accessibility = []; // one line per page checked
const cspViolations = [];
const shots = [];

async function step(name, body) {
  try {
    const detail = await body();
    results.passed += 1;
    console.log(`ok ${results.passed} ${name}${detail ? ` — ${detail}` : ''}`);
  } catch (e) {
    results.failed += 1;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
    throw e;
  }
}

function expect(cond, message) {
  if (!cond) throw new Error(message);
}

/** A person: a browser context with its own virtual authenticator. */
async function person(browser, name) {
  const context = await browser.newContext({ viewport: LAPTOP, acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('console', (m) => {
    const t = m.text();
    if (/Content Security Policy|Refused to (load|execute|apply|connect)/i.test(t)) cspViolations.push(`${name}: ${t}`);
  });
  page.on('pageerror', (e) => cspViolations.push(`${name}: uncaught ${e.message}`));
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
  return { name, context, page, cdp, authenticatorId };
}

/** Screenshots at both widths, and the accessibility check, of what `page` shows now. */
async function capture(page, name) {
  await page.waitForLoadState('networkidle').catch(() => {});
  for (const [label, size] of [['laptop', LAPTOP], ['phone', PHONE]]) {
    await page.setViewportSize(size);
    await page.waitForTimeout(150);
    const file = join(ARTIFACTS, `${name}-${label}.png`);
    await page.screenshot({ path: file, fullPage: true });
    shots.push(file);
  }
  await page.setViewportSize(LAPTOP);
  // axe-core runs through the DevTools protocol (not as a page script, which the page's
  // policy rightly refuses).
  const has = await page.evaluate(() => typeof window.axe !== 'undefined');
  if (!has) await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
  });
  const bad = found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  accessibility.push(`${name}: ${found.length} violation(s), ${bad.length} serious or critical${found.length ? ` (${found.map((v) => `${v.id}/${v.impact}`).join(', ')})` : ''}`);
  expect(!bad.length, `accessibility on ${name}: ${JSON.stringify(bad)}`);
}

async function waitHash(page, re) {
  await page.waitForFunction((src) => new RegExp(src).test(location.hash), re.source, { timeout: 20_000 });
}

function sdk(secret, user, action, custom) {
  const args = [SDK, `${BASE}/v1`, secret, user, action];
  if (custom) args.push(JSON.stringify(custom));
  return JSON.parse(execFileSync(PYTHON, args, { encoding: 'utf8' }));
}

await mkdir(ARTIFACTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let exitCode = 0;
try {
  expect(INVITE_URL.includes('/console#/accept/lki_'), `INVITE_URL is not a console invite link: ${INVITE_URL}`);
  expect(OPERATOR_INVITE.startsWith('lki_'), 'OPERATOR_INVITE must be an invite (lki_...)');
  const owner = await person(browser, 'owner');
  const page = owner.page;
  let tid;
  let secret;
  const user = `console-user-${Date.now().toString(36)}`;
  const ACTION = 'consoleTransfer';

  await step('the page is served with a strict Content-Security-Policy', async () => {
    const r = await page.request.get(`${BASE}/console`);
    const csp = r.headers()['content-security-policy'] || '';
    expect(r.ok() && csp.includes("script-src 'self'") && !csp.includes('unsafe'), `CSP: ${csp}`);
    return csp;
  });

  await step('accept the invite latchkey-local printed, and register a passkey', async () => {
    await page.goto(INVITE_URL);
    await page.waitForSelector('#accept');
    expect((await page.inputValue('#invite')).startsWith('lki_'), 'the invite is not filled in from the link');
    expect(!(await page.evaluate(() => location.hash.includes('lki_'))), 'the invite stays in the address bar');
    await capture(page, '01-accept-invite');
    await page.fill('#passkey-name', 'owner@example.com');
    await page.click('#accept');
    await waitHash(page, /^#\/t\/[^/]+\/overview$/);
    await page.waitForSelector('#tenant-id');
    tid = (await page.textContent('#tenant-id')).trim();
    const { credentials } = await owner.cdp.send('WebAuthn.getCredentials', { authenticatorId: owner.authenticatorId });
    expect(credentials.length === 1 && credentials[0].isResidentCredential, `authenticator holds ${credentials.length} credential(s)`);
    await capture(page, '02-overview');
    return `tenant ${tid}; one discoverable passkey`;
  });

  const presence = (who, enabled) =>
    who.cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId: who.authenticatorId, enabled });

  await step('sign out', async () => {
    // No automatic presence for now: the sign-in page's pending autofill request waits, as it
    // does for a person who has not picked their passkey yet.
    await presence(owner, false);
    await page.click('#sign-out');
    await waitHash(page, /^#\/sign-in$/);
    const r = await page.request.get(`${BASE}/v1/admin/session`);
    expect(r.status() === 401, `the session still answers ${r.status()} after sign-out`);
    await page.waitForSelector('#sign-in');
    await capture(page, '03-sign-in');
  });

  await step('sign in with the passkey without typing a name, by keyboard alone', async () => {
    await page.reload();
    await page.waitForSelector('#sign-in');
    let focused = '';
    for (let i = 0; i < 12 && focused !== 'sign-in'; i++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
    }
    expect(focused === 'sign-in', 'Tab never reached the sign-in button');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    expect(outline !== 'none', 'the focused button shows no focus outline');
    await presence(owner, true);
    await page.keyboard.press('Enter');
    await waitHash(page, /^#\/t\/[^/]+\/overview$/);
    return `focus outline: ${outline}`;
  });

  await step('sign in through autofill (conditional mediation): no name, no button', async () => {
    const signedOut = page.waitForResponse((r) => r.url().endsWith('/v1/admin/session') && r.request().method() === 'DELETE');
    const verified = page.waitForResponse((r) => r.url().endsWith('/v1/client/verify/passkey'));
    const session = page.waitForResponse((r) => r.url().endsWith('/v1/admin/session') && r.request().method() === 'POST');
    await page.click('#sign-out');
    expect((await signedOut).ok(), 'sign-out failed');
    // The sign-in page starts a conditional request; the virtual authenticator answers it as a
    // person picking their passkey from the field's suggestions would.
    expect((await verified).ok(), 'the autofill passkey was not verified');
    expect((await session).ok(), 'no session from the autofill passkey');
    await waitHash(page, /^#\/t\/[^/]+\/overview$/);
    return 'signed in from the pending autofill request';
  });

  await step('create a secret key, shown once, and track with it through the Python SDK', async () => {
    await page.goto(`${BASE}/console#/t/${tid}/keys`);
    await page.click('#create-key');
    await page.waitForSelector('#new-secret');
    secret = (await page.textContent('#new-secret')).trim();
    expect(/^lk_[0-9a-f]{16}_/.test(secret), `not a secret key: ${secret.slice(0, 20)}…`);
    await capture(page, '04-secret-keys');
    const tracked = sdk(secret, user, 'signIn');
    expect(tracked.state === 'CHALLENGE_REQUIRED', `track answered ${JSON.stringify(tracked)}`);
    return `signIn → ${tracked.state}`;
  });

  await step('allowed origins: a bad origin is refused next to its field, a good one saved', async () => {
    await page.goto(`${BASE}/console#/t/${tid}/origins`);
    await page.waitForSelector('#new-origin');
    await page.fill('#new-origin', 'ftp://shop.example.com/');
    await page.click('#add-origin');
    const error = (await page.textContent('#new-origin-error')).trim();
    expect(error.length > 0, 'no error next to the origin field');
    await page.fill('#new-origin', 'https://shop.example.com');
    await page.click('#add-origin');
    await page.click('#save-origins');
    await page.waitForFunction(() => document.querySelector('#notice').textContent.includes('Origins saved'));
    await capture(page, '05-origins');
    return `refused with "${error}"`;
  });

  await step('configure an action in the rules form: a validation error first, then saved', async () => {
    await page.goto(`${BASE}/console#/t/${tid}/rules`);
    await page.fill('#new-code', ACTION);
    await page.click('#new-action');
    await page.selectOption('#default-outcome', 'BLOCK');
    await page.click('#add-rule');
    await page.getByLabel('Name', { exact: true }).fill('Trusted device');
    await page.getByLabel('Outcome', { exact: true }).selectOption('ALLOW');
    await page.click('text=Add a condition to rule 1');
    await page.click('#save-rules');
    const fieldError = await page.getByLabel('Custom field').evaluate((el) => document.getElementById(`${el.id}-error`).textContent);
    expect(fieldError.includes('Name the field'), `no error next to the empty custom field (got "${fieldError}")`);
    await capture(page, '06-rules-validation');
    await page.getByLabel('Custom field').fill('trusted');
    await page.getByLabel(/^Equals/).fill('true');
    const json = JSON.parse(await page.inputValue('#rule-json'));
    expect(json.rules[0].conditions[0].field === 'trusted', `the JSON view does not follow the form: ${JSON.stringify(json)}`);
    await page.click('#save-rules');
    await page.waitForFunction((a) => document.querySelector('#save-status') && document.querySelector('#save-status').textContent.includes(`${a} saved`), ACTION);
    await capture(page, '07-rules');
    return JSON.stringify(json);
  });

  await step('the next tracks follow the new rules', async () => {
    const blocked = sdk(secret, user, ACTION);
    const allowed = sdk(secret, user, ACTION, { trusted: true });
    expect(blocked.state === 'BLOCK', `without custom data: ${JSON.stringify(blocked)}`);
    expect(allowed.state === 'ALLOW', `with trusted: true: ${JSON.stringify(allowed)}`);
    return `no custom data → BLOCK; trusted: true → ALLOW`;
  });

  await step('find the user the track created, and open them', async () => {
    await page.goto(`${BASE}/console#/t/${tid}/users`);
    await page.fill('#find-value', user);
    await page.click('#find-user');
    await page.click(`a:has-text("${user}")`);
    await waitHash(page, /\/users\/.+$/);
    await page.waitForSelector(`td:has-text("${ACTION}")`);
    await capture(page, '08-user');
    await page.click('#export-user');
    await page.waitForSelector('.success:has-text("Export ready")');
    return 'their consoleTransfer actions listed; export done';
  });

  await step('the audit log shows every change, and the sealed chain verifies', async () => {
    await page.goto(`${BASE}/console#/t/${tid}/audit`);
    let state = '';
    for (let i = 0; i < 30; i++) {
      await page.waitForSelector('#audit-state');
      state = await page.getAttribute('#audit-state', 'class');
      if (state === 'verified') break;
      await page.waitForTimeout(1000);
      await page.click('#verify-audit');
      await page.waitForTimeout(200);
    }
    expect(state === 'verified', `the chain state is "${state}": ${await page.textContent('#audit-verify')}`);
    const text = await page.textContent('#audit-results');
    for (const a of ['admin.join', 'api_key.create', 'tenant.settings.update', 'action.track', 'user.export']) {
      expect(text.includes(a), `no ${a} event in the audit log`);
    }
    await page.fill('#f-action', 'tenant.settings.update');
    await page.click('#filter-audit');
    await page.waitForFunction(() => [...document.querySelectorAll('#audit-results tbody tr')].every((r) => r.textContent.includes('tenant.settings.update')));
    await capture(page, '09-audit');
    await page.click('#export-audit');
    await page.waitForSelector('.success:has-text("Export ready")');
    return (await page.textContent('#audit-state')).replace(/\s+/g, ' ').trim();
  });

  await step('grant support access (read, 2 hours)', async () => {
    await page.goto(`${BASE}/console#/t/${tid}/support`);
    await page.selectOption('#grant-scope', 'read');
    await page.fill('#grant-hours', '2');
    await page.click('#grant-access');
    const reasonError = (await page.textContent('#grant-reason-error')).trim();
    expect(reasonError.length > 0, 'no error next to the empty reason');
    await page.fill('#grant-reason', 'Ticket 4242: sign-in questions');
    await page.click('#grant-access');
    await page.waitForSelector('td:has-text("Ticket 4242")');
    await capture(page, '10-support-access');
  });

  await step('admins and invites: an invite link for a viewer', async () => {
    await page.goto(`${BASE}/console#/t/${tid}/members`);
    await page.selectOption('#invite-role', 'viewer');
    await page.click('#invite-member');
    await page.waitForSelector('#new-secret');
    const link = (await page.textContent('#new-secret')).trim();
    expect(link.startsWith(`${BASE}/console#/accept/lki_`), `not an invite link: ${link.slice(0, 40)}`);
    await capture(page, '11-members');
  });

  const op = await person(browser, 'operator');
  await step('an operator accepts their invite in a second browser context', async () => {
    await op.page.goto(`${BASE}/console#/accept/${OPERATOR_INVITE}`);
    await op.page.waitForSelector('#accept');
    await op.page.click('#accept');
    await waitHash(op.page, /^#\/operator$/);
    await capture(op.page, '12-operator');
  });

  await step("the operator reads the tenant's users under the grant", async () => {
    await op.page.fill('#operator-tenant', tid);
    await op.page.click('#open-tenant');
    await waitHash(op.page, /\/users$/);
    await op.page.waitForSelector(`a:has-text("${user}")`);
    await capture(op.page, '13-operator-users');
  });

  await step("the operator manages the status page's components and incidents", async () => {
    await op.page.goto(`${BASE}/console#/operator/status`);
    await op.page.fill('#component-name', 'Passkeys');
    await op.page.click('#add-component');
    await op.page.waitForSelector('td:has-text("Passkeys")');
    await op.page.fill('#incident-name', 'Slow sign-ins');
    await op.page.selectOption('#incident-component', { label: 'Passkeys' });
    await op.page.fill('#incident-body', 'We are looking into slow passkey sign-ins.');
    await op.page.click('#open-incident');
    await op.page.waitForSelector('td:has-text("Slow sign-ins")');
    await capture(op.page, '14-operator-status');
  });

  await step('the owner revokes the grant; the operator is refused', async () => {
    await page.goto(`${BASE}/console#/t/${tid}/support`);
    await page.click('button:has-text("Revoke")');
    await page.waitForSelector('td:has-text("revoked")');
    await op.page.goto(`${BASE}/console#/t/${tid}/users`);
    await op.page.reload();
    await op.page.waitForSelector('[role="alert"]:has-text("not allowed")');
    const text = (await op.page.textContent('[role="alert"]:has-text("not allowed")')).trim();
    await capture(op.page, '15-operator-refused');
    return text;
  });

  await step("the owner's audit log holds the operator's access and the grant's end", async () => {
    await page.goto(`${BASE}/console#/t/${tid}/audit`);
    await page.waitForSelector('#audit-results tbody');
    const text = await page.textContent('#audit-results');
    for (const a of ['support.grant', 'support.access', 'support.revoke']) expect(text.includes(a), `no ${a} event`);
  });

  await step('join a second tenant signed in, and delete it after a fresh passkey check', async () => {
    await page.goto(`${BASE}/console#/accept/${SPARE_INVITE}`);
    await page.waitForSelector('#accept:has-text("Join")');
    await page.click('#accept');
    await page.waitForSelector('#tenant-select');
    await page.selectOption('#tenant-select', 'spare-tenant');
    await waitHash(page, /^#\/t\/spare-tenant\/overview$/);
    await page.fill('#confirm-delete', 'not-the-id');
    await page.click('button:has-text("Delete this tenant")');
    expect((await page.textContent('#confirm-delete-error')).includes('not the tenant id'), 'no error next to a wrong confirmation');
    await page.fill('#confirm-delete', 'spare-tenant');
    await page.click('button:has-text("Delete this tenant")');
    await page.waitForSelector('.success:has-text("Deleted at")');
    const text = (await page.textContent('.success')).trim();
    expect(text.includes('key was destroyed'), text);
    await capture(page, '16-tenant-deleted');
    const r = await page.request.get(`${BASE}/v1/admin/tenants/spare-tenant/overview`);
    expect(r.status() === 403 || r.status() === 404, `the deleted tenant still answers ${r.status()}`);
    return text;
  });

  await step('no Content-Security-Policy violation or script error on any page', async () => {
    expect(!cspViolations.length, cspViolations.join('\n'));
    return `${shots.length} screenshots in ${ARTIFACTS}`;
  });
} catch {
  exitCode = 1;
} finally {
  await writeFile(join(ARTIFACTS, 'accessibility.txt'), accessibility.join('\n') + '\n').catch(() => {});
  console.log(accessibility.map((l) => `  axe ${l}`).join('\n'));
  console.log(`${results.passed} passed, ${results.failed} failed`);
  await browser.close().catch(() => {});
}
process.exit(exitCode);
