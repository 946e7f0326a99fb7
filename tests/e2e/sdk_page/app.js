// The page side of tests/e2e/sdk_browser.mjs: Authsignal's own browser SDK (@authsignal/browser,
// served unmodified from node_modules by the test's static server) behind a few functions the
// test calls with page.evaluate. Each returns a plain JSON-safe object:
//   {result}                      the SDK call resolved (result is what the SDK returned)
//   {thrown: {name, message, code?, cause?}}   it threw (WebAuthn errors are thrown, not returned)
// Exchanges with the API are recorded in window.sdkTest.traffic ({method, path, status, body} or
// {method, path, failed} or {note}) for the test's checks and failure report.
import { Authsignal } from '/sdk/authsignal-browser.js';

let authsignal;
const traffic = [];

function recordTraffic() {
  const realFetch = window.fetch.bind(window);
  window.fetch = async (input, init) => {
    const url = typeof input === 'string' ? input : input.url;
    const method = (init && init.method) || 'GET';
    const path = new URL(url, location.href).pathname;
    try {
      const response = await realFetch(input, init);
      const body = await response.clone().text().catch(() => '(body unavailable)');
      traffic.push({ method, path, status: response.status, body });
      return response;
    } catch (e) {
      // A CORS refusal or a connection failure: fetch rejects with a bare TypeError.
      traffic.push({ method, path, failed: `fetch failed: ${e && e.message}` });
      throw e;
    }
  };
}

function describeThrown(e) {
  if (!e || typeof e !== 'object') return { name: typeof e, message: String(e) };
  const out = { name: e.name, message: e.message };
  if (e.code) out.code = e.code;
  // @simplewebauthn/browser (inside the SDK) wraps the browser's DOMException, often with a
  // message that guesses at the cause; the DOMException itself says what the browser refused.
  if (e.cause && typeof e.cause === 'object') out.cause = { name: e.cause.name, message: e.cause.message };
  return out;
}

async function settle(promise) {
  try {
    return { result: await promise };
  } catch (e) {
    return { thrown: describeThrown(e) };
  }
}

window.sdkTest = {
  traffic,
  init({ tenantId, baseUrl }) {
    recordTraffic(); // records what the server really sent
    authsignal = new Authsignal({ tenantId, baseUrl });
    return { anonymousId: authsignal.anonymousId };
  },
  // securityKey.enroll() and verify() take no token: they use the SDK's token cache (setToken).
  enrollSecurityKey(token) {
    authsignal.setToken(token);
    return settle(authsignal.securityKey.enroll());
  },
  verifySecurityKey(token) {
    authsignal.setToken(token);
    return settle(authsignal.securityKey.verify());
  },
  passkeySignUp(token, username) {
    return settle(authsignal.passkey.signUp({ token, username }));
  },
  // Usernameless: no token, no action; the SDK calls with Basic <tenant id>.
  passkeySignIn() {
    return settle(authsignal.passkey.signIn());
  },
  // With a token from track: the SDK calls with Bearer <token>, the user's passkeys offered.
  passkeySignInWithToken(token) {
    return settle(authsignal.passkey.signIn({ token }));
  },
};
document.getElementById('log').textContent = 'ready';
