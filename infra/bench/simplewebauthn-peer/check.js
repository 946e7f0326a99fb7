// Checks that the peer really verifies: a software P-256 authenticator of its own (node:crypto)
// registers a passkey, signs in, and then sends assertions that must be refused (a tampered
// signature, a signature by another key, a replayed challenge, a counter that did not grow, a
// wrong user handle, a wrong origin, authenticator data changed after signing, and no UV).
//
//   PEER_URL=http://127.0.0.1:8791 PEER_SECRET_KEY=... [PEER_TENANT_ID=bench] node check.js
//
// Exits 0 when every case answers as expected, 1 otherwise.
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { isoCBOR } from '@simplewebauthn/server/helpers';

const base = `${(process.env.PEER_URL ?? 'http://127.0.0.1:8791').replace(/\/+$/, '')}/v1`;
const secretKey = process.env.PEER_SECRET_KEY;
const tenantId = process.env.PEER_TENANT_ID ?? 'bench';
if (!secretKey) {
  console.error('check.js: PEER_SECRET_KEY is required');
  process.exit(2);
}
const port = new URL(base).port || '80';
const origin = `http://localhost:${port}`;

const b64u = (b) => Buffer.from(b).toString('base64url');
const sha256 = (b) => createHash('sha256').update(b).digest();
const basic = (user) => `Basic ${Buffer.from(`${user}:`).toString('base64')}`;

async function post(path, authorization, body) {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/json', origin },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

// The authenticator: one credential, its key and its signature counter.
const rpIdHash = sha256('localhost');
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const jwk = publicKey.export({ format: 'jwk' });
const credId = randomBytes(32);
let counter = 0;

const u32 = (n) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const clientData = (type, challenge, o = origin) =>
  Buffer.from(JSON.stringify({ type, challenge, origin: o, crossOrigin: false }));

function attestation(challenge) {
  const cose = isoCBOR.encode(
    new Map([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, Buffer.from(jwk.x, 'base64url')],
      [-3, Buffer.from(jwk.y, 'base64url')],
    ]),
  );
  const len = Buffer.alloc(2);
  len.writeUInt16BE(credId.length);
  // flags: UP | UV | AT
  const authData = Buffer.concat([rpIdHash, Buffer.from([0x45]), u32(0), Buffer.alloc(16), len, credId, Buffer.from(cose)]);
  const attestationObject = isoCBOR.encode(
    new Map([
      ['fmt', 'none'],
      ['attStmt', new Map()],
      ['authData', new Uint8Array(authData)],
    ]),
  );
  return {
    id: b64u(credId),
    rawId: b64u(credId),
    type: 'public-key',
    response: { attestationObject: b64u(attestationObject), clientDataJSON: b64u(clientData('webauthn.create', challenge)) },
    clientExtensionResults: {},
  };
}

/** An assertion over `challenge`; `opts` bends one part of it. */
function assertion(challenge, userHandle, opts = {}) {
  const n = opts.counter ?? ++counter;
  const flags = opts.flags ?? 0x05; // UP | UV
  const authData = Buffer.concat([rpIdHash, Buffer.from([flags]), u32(n)]);
  const cdj = clientData('webauthn.get', challenge, opts.origin);
  let signature = sign('sha256', Buffer.concat([authData, sha256(cdj)]), opts.key ?? privateKey);
  if (opts.flipSignature) {
    signature = Buffer.from(signature);
    signature[signature.length - 5] ^= 0x01;
  }
  const sentAuthData = opts.changeAuthData ? Buffer.concat([rpIdHash, Buffer.from([flags]), u32(n + 1000)]) : authData;
  return {
    id: b64u(credId),
    rawId: b64u(credId),
    type: 'public-key',
    response: {
      authenticatorData: b64u(sentAuthData),
      clientDataJSON: b64u(cdj),
      signature: b64u(signature),
      userHandle: opts.userHandle ?? userHandle,
    },
    clientExtensionResults: {},
  };
}

let failures = 0;
function expect(name, ok, detail) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok ? '' : `: ${JSON.stringify(detail)}`}`);
  if (!ok) failures += 1;
}

// Register.
const user = `check-${Date.now()}`;
const tracked = await post(`/users/${user}/actions/signUp`, basic(secretKey), {});
expect('track with the secret key', tracked.status === 200 && typeof tracked.body.token === 'string', tracked);
expect('track with a wrong key is 401', (await post(`/users/${user}/actions/signUp`, basic('nope'), {})).status === 401);
const bearer = `Bearer ${tracked.body.token}`;
const ro = await post('/client/user-authenticators/passkey/registration-options', bearer, { username: user });
expect('registration options', ro.status === 200 && ro.body.options?.challenge, ro);
const userHandle = ro.body.options.user.id;
const added = await post('/client/user-authenticators/passkey', bearer, {
  challengeId: ro.body.challengeId,
  registrationCredential: attestation(ro.body.options.challenge),
});
expect(
  'add passkey',
  added.status === 200 && added.body.userAuthenticator?.webauthnCredential?.credentialId === b64u(credId),
  added,
);

// Sign in: one good assertion, then each bent one on a fresh challenge.
const tenant = basic(tenantId);
async function signIn(opts, challengeId) {
  const o = await post('/client/user-authenticators/passkey/authentication-options', tenant, {});
  if (o.status !== 200 || o.body.options.allowCredentials !== undefined) throw new Error(`options: ${JSON.stringify(o)}`);
  const credential = assertion(o.body.options.challenge, userHandle, opts);
  const r = await post('/client/verify/passkey', tenant, { challengeId: challengeId ?? o.body.challengeId, authenticationCredential: credential });
  return { ...r, challengeId: o.body.challengeId, credential };
}
const good = await signIn({});
expect('a good assertion verifies', good.status === 200 && good.body.isVerified === true && good.body.userId === user, good);
const replay = await post('/client/verify/passkey', tenant, { challengeId: good.challengeId, authenticationCredential: good.credential });
expect('the same challenge a second time is refused', replay.status === 400 && /unknown or has expired/.test(replay.body.errorDescription), replay);
// Each refusal must be for its own reason, not an earlier check's.
for (const [name, opts, reason] of [
  ['a tampered signature is refused', { flipSignature: true }, /the signature did not verify/],
  ["another key's signature is refused", { key: other }, /the signature did not verify/],
  ['a counter that did not grow is refused', { counter: 1 }, /counter value 1 was lower than expected 1/],
  ['a wrong user handle is refused', { userHandle: b64u(Buffer.alloc(16, 9)) }, /user handle belong to different users/],
  ['a wrong origin is refused', { origin: 'http://localhost:1' }, /Unexpected authentication response origin/],
  ['authenticator data changed after signing is refused', { changeAuthData: true }, /the signature did not verify/],
  ['an assertion without UV is refused', { flags: 0x01 }, /User verification required/],
]) {
  const r = await signIn(opts);
  expect(name, r.status === 400 && reason.test(r.body.errorDescription ?? ''), { status: r.status, body: r.body });
}
const wrongTenant = await post('/client/user-authenticators/passkey/authentication-options', basic('other'), {});
expect('another tenant id is 401', wrongTenant.status === 401, wrongTenant);
const after = await signIn({});
expect('a good assertion still verifies after the refusals', after.status === 200 && after.body.isVerified === true, after);

console.log(failures === 0 ? 'check.js: all cases as expected' : `check.js: ${failures} case(s) failed`);
process.exit(failures === 0 ? 0 : 1);
