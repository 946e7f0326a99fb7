// The benchmark peer: the HTTP calls `latchkey-load --scenarios passkey` makes, served by
// @simplewebauthn/server on fastify with better-sqlite3, so one unchanged client can drive
// latchkey-local and this server in turn (infra/bench/passkey-vs-peer.sh).
//
// Routes (everything else is 404):
//   GET  /health                                                            readiness, for the script
//   POST /v1/users/:userId/actions/:action                                  track (Basic secret key)
//   POST /v1/client/user-authenticators/passkey/registration-options        Bearer track token
//   POST /v1/client/user-authenticators/passkey                             Bearer track token
//   POST /v1/client/user-authenticators/passkey/authentication-options      Basic tenant id (usernameless)
//   POST /v1/client/verify/passkey                                          Basic tenant id (usernameless)
//
// One tenant, from the environment:
//   PEER_LISTEN      host:port to listen on                (127.0.0.1:8791)
//   PEER_DATA_DIR    folder for peer.db (created if absent) (required)
//   PEER_TENANT_ID   the tenant id the Client API expects  (bench)
//   PEER_SECRET_KEY  the Server API secret key              (required)
//   PEER_RP_ID       WebAuthn RP id                         (localhost)
//   PEER_RP_NAME     WebAuthn RP name                       (Development)
//   PEER_ORIGINS     comma-separated allowed origins        (http://localhost:<listen port>, which
//                    is what latchkey-load sends: http://localhost:<port of its base URL>)
//
// Store: SQLite in WAL mode with synchronous=FULL (an fsync per commit). Every write is in a
// transaction. Per usernameless sign-in there are three commits: the challenge saved
// (options), the challenge taken (DELETE ... RETURNING, single use), and the counter update
// plus the new CHALLENGE_SUCCEEDED action (verify).
import Fastify from 'fastify';
import Database from 'better-sqlite3';
import {
  generateRegistrationOptions,
  verifyRegistrationResponse,
  generateAuthenticationOptions,
  verifyAuthenticationResponse,
} from '@simplewebauthn/server';
import { createHmac, randomBytes, randomUUID, timingSafeEqual, createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

// ---------------------------------------------------------------------------------------------
// Configuration

function env(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v.trim() === '') {
    if (fallback === undefined) {
      console.error(`simplewebauthn-peer: ${name} is required`);
      process.exit(2);
    }
    return fallback;
  }
  return v.trim();
}

const listen = env('PEER_LISTEN', '127.0.0.1:8791');
const colon = listen.lastIndexOf(':');
const HOST = listen.slice(0, colon);
const PORT = Number(listen.slice(colon + 1));
if (!HOST || !Number.isInteger(PORT) || PORT <= 0 || PORT > 65535) {
  console.error(`simplewebauthn-peer: PEER_LISTEN must be host:port, got ${listen}`);
  process.exit(2);
}
const DATA_DIR = env('PEER_DATA_DIR');
const TENANT_ID = env('PEER_TENANT_ID', 'bench');
const SECRET_KEY = env('PEER_SECRET_KEY');
const RP_ID = env('PEER_RP_ID', 'localhost');
const RP_NAME = env('PEER_RP_NAME', 'Development');
const ORIGINS = env('PEER_ORIGINS', `http://localhost:${PORT}`)
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
// What clientDataJSON.origin may be. latchkey-load's software authenticator (webauthn-rs's
// client side) writes the origin as a serialized URL, `http://localhost:8791/`, with a trailing
// slash that a browser does not send; webauthn-rs on the Latchkey side compares parsed URLs, so
// it accepts both. SimpleWebAuthn compares strings: each origin is listed in both spellings.
const CLIENT_DATA_ORIGINS = ORIGINS.flatMap((o) => [o, `${o.replace(/\/+$/, '')}/`]);

const CHALLENGE_TTL_MS = 5 * 60 * 1000; // ceremonies expire after 5 minutes
const TOKEN_TTL_S = 10 * 60; // tokens live 10 minutes, as Latchkey's
const FRESH_CEREMONY_S = 5 * 60; // a ceremony's token may enroll for 5 minutes
// Tokens are HS256 JWTs under a key made at start (tokens do not outlive the process).
const TOKEN_KEY = randomBytes(32);
const SECRET_KEY_HASH = sha256(SECRET_KEY);

// ---------------------------------------------------------------------------------------------
// Store

mkdirSync(DATA_DIR, { recursive: true, mode: 0o700 });
const db = new Database(join(DATA_DIR, 'peer.db'));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma('foreign_keys = ON');
if (db.pragma('journal_mode', { simple: true }) !== 'wal' || db.pragma('synchronous', { simple: true }) !== 2) {
  console.error('simplewebauthn-peer: could not set WAL and synchronous=FULL');
  process.exit(1);
}

db.exec(`
CREATE TABLE IF NOT EXISTS users (
  user_id         TEXT PRIMARY KEY,
  webauthn_handle TEXT NOT NULL UNIQUE,  -- base64url of 16 random bytes: options.user.id
  created_at      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
  idempotency_key     TEXT PRIMARY KEY,
  user_id             TEXT NOT NULL REFERENCES users(user_id),
  action_code         TEXT NOT NULL,
  state               TEXT NOT NULL,
  verification_method TEXT,
  created_at          TEXT NOT NULL,
  updated_at          TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS challenges (
  challenge_id     TEXT PRIMARY KEY,
  kind             TEXT NOT NULL,        -- 'register' | 'discover'
  challenge        TEXT NOT NULL,        -- base64url, as sent in the options
  user_id          TEXT,                 -- register: the token's user
  idempotency_key  TEXT,                 -- register: the token's action
  expires_at       INTEGER NOT NULL      -- epoch ms
);
CREATE INDEX IF NOT EXISTS challenges_expiry ON challenges(expires_at);
CREATE TABLE IF NOT EXISTS credentials (
  credential_id         TEXT PRIMARY KEY, -- base64url
  user_authenticator_id TEXT NOT NULL UNIQUE,
  user_id               TEXT NOT NULL REFERENCES users(user_id),
  public_key            BLOB NOT NULL,    -- COSE
  counter               INTEGER NOT NULL,
  transports            TEXT,
  aaguid                TEXT NOT NULL,
  device_type           TEXT NOT NULL,
  backed_up             INTEGER NOT NULL,
  name                  TEXT NOT NULL,
  created_at            TEXT NOT NULL,
  last_verified_at      TEXT
);
CREATE INDEX IF NOT EXISTS credentials_user ON credentials(user_id);
`);

const q = {
  userGet: db.prepare('SELECT user_id, webauthn_handle FROM users WHERE user_id = ?'),
  userInsert: db.prepare(
    'INSERT INTO users (user_id, webauthn_handle, created_at) VALUES (?, ?, ?) ON CONFLICT (user_id) DO NOTHING',
  ),
  actionInsert: db.prepare(
    `INSERT INTO actions (idempotency_key, user_id, action_code, state, verification_method, created_at, updated_at)
     VALUES (@idk, @userId, @code, @state, @method, @now, @now)`,
  ),
  actionGet: db.prepare('SELECT * FROM actions WHERE idempotency_key = ?'),
  actionSettle: db.prepare(
    `UPDATE actions SET state = 'CHALLENGE_SUCCEEDED', verification_method = 'PASSKEY', updated_at = ?
     WHERE idempotency_key = ? AND state = 'CHALLENGE_REQUIRED'`,
  ),
  challengeInsert: db.prepare(
    `INSERT INTO challenges (challenge_id, kind, challenge, user_id, idempotency_key, expires_at)
     VALUES (@id, @kind, @challenge, @userId, @idk, @expiresAt)`,
  ),
  // Single use: the row is gone whether or not what follows succeeds.
  challengeTake: db.prepare(
    'DELETE FROM challenges WHERE challenge_id = ? AND kind = ? RETURNING challenge, user_id, idempotency_key, expires_at',
  ),
  challengePurge: db.prepare('DELETE FROM challenges WHERE expires_at <= ?'),
  credsOfUser: db.prepare('SELECT credential_id, transports FROM credentials WHERE user_id = ?'),
  credCount: db.prepare('SELECT count(*) AS n FROM credentials WHERE user_id = ?'),
  credInsert: db.prepare(
    `INSERT INTO credentials (credential_id, user_authenticator_id, user_id, public_key, counter, transports,
       aaguid, device_type, backed_up, name, created_at)
     VALUES (@id, @authenticatorId, @userId, @publicKey, @counter, @transports, @aaguid, @deviceType, @backedUp, @name, @now)`,
  ),
  credWithUser: db.prepare(
    `SELECT c.credential_id, c.user_authenticator_id, c.user_id, c.public_key, c.counter, c.transports,
            c.name, u.webauthn_handle
     FROM credentials c JOIN users u ON u.user_id = c.user_id WHERE c.credential_id = ?`,
  ),
  // Conditional on the counter read before verifying: two racing sign-ins with one assertion
  // counter cannot both be recorded.
  credCounter: db.prepare(
    `UPDATE credentials SET counter = ?, backed_up = ?, last_verified_at = ?
     WHERE credential_id = ? AND counter = ?`,
  ),
};

const takeChallenge = db.transaction((id, kind) => q.challengeTake.get(id, kind));
const saveChallenge = db.transaction((row) => q.challengeInsert.run(row));
const track = db.transaction((userId, code, scope, now) => {
  q.userInsert.run(userId, randomBytes(16).toString('base64url'), now);
  const idk = randomBytes(16).toString('hex');
  q.actionInsert.run({ idk, userId, code, state: 'CHALLENGE_REQUIRED', method: null, now });
  return idk;
});
const enroll = db.transaction((cred, idk, now) => {
  q.credInsert.run(cred);
  q.actionSettle.run(now, idk);
});
const signedIn = db.transaction((cred, info, now) => {
  const moved = q.credCounter.run(
    info.newCounter,
    info.credentialBackedUp ? 1 : 0,
    now,
    cred.credential_id,
    cred.counter,
  );
  if (moved.changes !== 1) {
    throw new ApiError(400, 'invalid_request', 'The credential was refused: the counter was used concurrently.');
  }
  const idk = randomBytes(16).toString('hex');
  q.actionInsert.run({
    idk,
    userId: cred.user_id,
    code: 'signIn',
    state: 'CHALLENGE_SUCCEEDED',
    method: 'PASSKEY',
    now,
  });
  return idk;
});

// Expired challenges that were never taken are purged once a minute.
setInterval(() => db.transaction(() => q.challengePurge.run(Date.now()))(), 60_000).unref();

// ---------------------------------------------------------------------------------------------
// Credentials and tokens

class ApiError extends Error {
  constructor(status, code, description) {
    super(description);
    this.status = status;
    this.code = code;
  }
}
const unauthorized = () =>
  new ApiError(
    401,
    'unauthorized',
    'The request is unauthorized. Check that your API key and region base URL are correctly configured.',
  );
const invalid = (what) => new ApiError(400, 'invalid_request', what);

function sha256(text) {
  return createHash('sha256').update(text).digest();
}

/** The text before the first `:` of a Basic credential, or null. */
function basicUser(req) {
  const h = req.headers.authorization;
  if (typeof h !== 'string' || !h.startsWith('Basic ')) return null;
  const decoded = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
  const c = decoded.indexOf(':');
  return c < 0 ? decoded : decoded.slice(0, c);
}

/** Server API: Basic <secret key>: */
function requireSecretKey(req) {
  const key = basicUser(req);
  if (key === null || !timingSafeEqual(sha256(key), SECRET_KEY_HASH)) throw unauthorized();
}

/** Client API, usernameless: Basic <tenant id>, and an allowed Origin if one is sent. */
function requireTenant(req) {
  checkOrigin(req);
  if (basicUser(req) !== TENANT_ID) throw unauthorized();
}

function checkOrigin(req) {
  const origin = req.headers.origin;
  if (origin !== undefined && !ORIGINS.includes(origin)) {
    throw new ApiError(403, 'forbidden', 'The origin is not allowed for this tenant.');
  }
}

const JWT_HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

function issueToken(userId, action, idk, scope, amr) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: 'peer', aud: TENANT_ID, sub: userId, act: action, idk, iat: now, exp: now + TOKEN_TTL_S, jti: randomUUID() };
  if (scope) claims.scope = scope;
  if (amr) Object.assign(claims, { amr, vat: now });
  const body = `${JWT_HEADER}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${body}.${createHmac('sha256', TOKEN_KEY).update(body).digest('base64url')}`;
}

/** Client API with a token: the verified claims and the action they name. */
function requireBearer(req) {
  checkOrigin(req);
  const h = req.headers.authorization;
  if (typeof h !== 'string' || !h.startsWith('Bearer ')) throw unauthorized();
  const parts = h.slice(7).trim().split('.');
  if (parts.length !== 3 || parts[0] !== JWT_HEADER) throw unauthorized();
  const mac = createHmac('sha256', TOKEN_KEY).update(`${parts[0]}.${parts[1]}`).digest();
  const sig = Buffer.from(parts[2], 'base64url');
  if (sig.length !== mac.length || !timingSafeEqual(sig, mac)) throw unauthorized();
  let claims;
  try {
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    throw unauthorized();
  }
  if (claims.iss !== 'peer' || claims.aud !== TENANT_ID) throw unauthorized();
  if (!(claims.exp > Date.now() / 1000)) throw new ApiError(401, 'expired_token', 'The token has expired.');
  const action = q.actionGet.get(claims.idk);
  if (!action || action.user_id !== claims.sub) throw unauthorized();
  if (!['ALLOW', 'CHALLENGE_REQUIRED', 'CHALLENGE_SUCCEEDED'].includes(action.state)) {
    throw new ApiError(403, 'forbidden', `The action is ${action.state}.`);
  }
  return { claims, action };
}

/** Enrolling: a user without passkeys, a token with add:authenticators, or a fresh ceremony. */
function mayEnroll({ claims }) {
  const scopes = typeof claims.scope === 'string' ? claims.scope.split(' ') : [];
  if (scopes.includes('add:authenticators')) return true;
  if (claims.vat && Date.now() / 1000 - claims.vat < FRESH_CEREMONY_S) return true;
  return q.credCount.get(claims.sub).n === 0;
}

function crossOrigin(clientDataJSON) {
  try {
    return JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8')).crossOrigin === true;
  } catch {
    return false;
  }
}

const nowIso = () => new Date().toISOString();

// ---------------------------------------------------------------------------------------------
// HTTP

const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });

app.setErrorHandler((err, _req, reply) => {
  if (err instanceof ApiError) {
    return reply.code(err.status).send({ error: err.code, errorCode: err.code, errorDescription: err.message });
  }
  if (err.statusCode && err.statusCode < 500) {
    return reply.code(err.statusCode).send({ error: 'invalid_request', errorCode: 'invalid_request', errorDescription: err.message });
  }
  console.error('simplewebauthn-peer:', err);
  return reply.code(500).send({ error: 'internal_error', errorCode: 'internal_error', errorDescription: 'Internal error.' });
});
app.setNotFoundHandler((_req, reply) =>
  reply.code(404).send({ error: 'not_found', errorCode: 'not_found', errorDescription: 'Not found.' }),
);

app.get('/health', async () => ({ status: 'ok', service: 'simplewebauthn-peer' }));

// Track: a new action for the user (made on first sight), CHALLENGE_REQUIRED, and its token.
app.post('/v1/users/:userId/actions/:action', async (req) => {
  requireSecretKey(req);
  const { userId, action } = req.params;
  if (!userId || userId.length > 255 || !/^[a-zA-Z0-9_-]{1,64}$/.test(action)) {
    throw invalid('The user id or action code is not valid.');
  }
  const body = req.body ?? {};
  const scope = typeof body.scope === 'string' ? body.scope : undefined;
  const idk = track(userId, action, scope, nowIso());
  const methods = q.credCount.get(userId).n > 0 ? ['PASSKEY'] : [];
  return {
    state: 'CHALLENGE_REQUIRED',
    idempotencyKey: idk,
    token: issueToken(userId, action, idk, scope),
    isEnrolled: methods.length > 0,
    enrolledVerificationMethods: methods,
    allowedVerificationMethods: ['PASSKEY'],
    ruleIds: [],
  };
});

// Passkey registration, step 1: creation options; the challenge kept server-side.
app.post('/v1/client/user-authenticators/passkey/registration-options', async (req) => {
  const access = requireBearer(req);
  if (!mayEnroll(access)) throw new ApiError(403, 'forbidden', 'This token may not add an authenticator.');
  const user = q.userGet.get(access.claims.sub);
  const body = req.body ?? {};
  const username = typeof body.username === 'string' && body.username ? body.username.slice(0, 256) : user.user_id;
  const options = await generateRegistrationOptions({
    rpName: RP_NAME,
    rpID: RP_ID,
    userName: username,
    userDisplayName: username,
    userID: Buffer.from(user.webauthn_handle, 'base64url'),
    attestationType: 'none',
    excludeCredentials: q.credsOfUser.all(user.user_id).map((c) => ({
      id: c.credential_id,
      transports: c.transports ? JSON.parse(c.transports) : undefined,
    })),
    authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
    timeout: CHALLENGE_TTL_MS,
  });
  const challengeId = randomUUID();
  saveChallenge({
    id: challengeId,
    kind: 'register',
    challenge: options.challenge,
    userId: user.user_id,
    idk: access.claims.idk,
    expiresAt: Date.now() + CHALLENGE_TTL_MS,
  });
  return { challengeId, options };
});

// Passkey registration, step 2: the attestation verified, the credential stored.
app.post('/v1/client/user-authenticators/passkey', async (req) => {
  const access = requireBearer(req);
  if (!mayEnroll(access)) throw new ApiError(403, 'forbidden', 'This token may not add an authenticator.');
  const { challengeId, registrationCredential } = req.body ?? {};
  if (typeof challengeId !== 'string' || typeof registrationCredential !== 'object' || registrationCredential === null) {
    throw invalid('challengeId and registrationCredential are required.');
  }
  const ceremony = takeChallenge(challengeId, 'register');
  if (!ceremony || ceremony.expires_at <= Date.now()) throw invalid('The challenge is unknown or has expired.');
  if (ceremony.user_id !== access.claims.sub || ceremony.idempotency_key !== access.claims.idk) {
    throw invalid('The challenge belongs to another action.');
  }
  let result;
  try {
    result = await verifyRegistrationResponse({
      response: registrationCredential,
      expectedChallenge: ceremony.challenge,
      expectedOrigin: CLIENT_DATA_ORIGINS,
      expectedRPID: RP_ID,
      requireUserVerification: true,
    });
  } catch (e) {
    throw invalid(`The credential was refused: ${e.message}.`);
  }
  if (!result.verified) throw invalid('The credential was refused: the attestation did not verify.');
  const info = result.registrationInfo;
  const now = nowIso();
  const cred = {
    id: info.credential.id,
    authenticatorId: randomUUID(),
    userId: ceremony.user_id,
    publicKey: Buffer.from(info.credential.publicKey),
    counter: info.credential.counter,
    transports: info.credential.transports ? JSON.stringify(info.credential.transports) : null,
    aaguid: info.aaguid,
    deviceType: info.credentialDeviceType,
    backedUp: info.credentialBackedUp ? 1 : 0,
    name: 'Passkey',
    now,
  };
  try {
    enroll(cred, ceremony.idempotency_key, now);
  } catch (e) {
    if (e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw invalid('The credential is already registered.');
    throw e;
  }
  const accessToken = issueToken(ceremony.user_id, access.claims.act, ceremony.idempotency_key, access.claims.scope, 'PASSKEY');
  return {
    isVerified: true,
    accessToken,
    userId: ceremony.user_id,
    userAuthenticatorId: cred.authenticatorId,
    username: ceremony.user_id,
    userDisplayName: ceremony.user_id,
    userAuthenticator: {
      userAuthenticatorId: cred.authenticatorId,
      userId: ceremony.user_id,
      verificationMethod: 'PASSKEY',
      createdAt: now,
      verifiedAt: now,
      isDefault: true,
      webauthnCredential: {
        credentialId: cred.id,
        name: cred.name,
        aaguid: cred.aaguid,
        credentialBackedUp: info.credentialBackedUp,
        credentialDeviceType: info.credentialDeviceType,
      },
    },
  };
});

// Usernameless sign-in, step 1: request options without allowCredentials (a discoverable
// request); the challenge kept server-side.
app.post('/v1/client/user-authenticators/passkey/authentication-options', async (req) => {
  requireTenant(req);
  const options = await generateAuthenticationOptions({
    rpID: RP_ID,
    userVerification: 'required',
    timeout: CHALLENGE_TTL_MS,
  });
  const challengeId = randomUUID();
  saveChallenge({
    id: challengeId,
    kind: 'discover',
    challenge: options.challenge,
    userId: null,
    idk: null,
    expiresAt: Date.now() + CHALLENGE_TTL_MS,
  });
  return { challengeId, options };
});

// Usernameless sign-in, step 2: challenge taken (single use), credential looked up by id and
// matched with the user handle, assertion verified, counter and a CHALLENGE_SUCCEEDED signIn
// action written in one transaction, an access token issued.
app.post('/v1/client/verify/passkey', async (req) => {
  requireTenant(req);
  const { challengeId, authenticationCredential: credential } = req.body ?? {};
  if (typeof challengeId !== 'string' || typeof credential !== 'object' || credential === null) {
    throw invalid('challengeId and authenticationCredential are required.');
  }
  const ceremony = takeChallenge(challengeId, 'discover');
  if (!ceremony || ceremony.expires_at <= Date.now()) throw invalid('The challenge is unknown or has expired.');
  const refused = (why) => invalid(`The credential was refused: ${why}.`);
  if (typeof credential.id !== 'string' || typeof credential.response !== 'object' || credential.response === null) {
    throw refused('not a WebAuthn assertion');
  }
  if (crossOrigin(credential.response.clientDataJSON)) throw refused('the assertion was made in a cross-origin frame');
  const stored = q.credWithUser.get(credential.id);
  if (!stored) throw refused('unknown credential');
  if (credential.response.userHandle !== stored.webauthn_handle) {
    throw refused('the credential and the user handle belong to different users');
  }
  let result;
  try {
    result = await verifyAuthenticationResponse({
      response: credential,
      expectedChallenge: ceremony.challenge,
      expectedOrigin: CLIENT_DATA_ORIGINS,
      expectedRPID: RP_ID,
      credential: {
        id: stored.credential_id,
        publicKey: new Uint8Array(stored.public_key),
        counter: stored.counter,
        transports: stored.transports ? JSON.parse(stored.transports) : undefined,
      },
      requireUserVerification: true,
    });
  } catch (e) {
    throw refused(e.message);
  }
  if (!result.verified) throw refused('the signature did not verify');
  const idk = signedIn(stored, result.authenticationInfo, nowIso());
  return {
    isVerified: true,
    accessToken: issueToken(stored.user_id, 'signIn', idk, undefined, 'PASSKEY'),
    userId: stored.user_id,
    userAuthenticatorId: stored.user_authenticator_id,
    username: stored.user_id,
    userDisplayName: stored.user_id,
  };
});

// ---------------------------------------------------------------------------------------------

function stop() {
  app.close().finally(() => {
    db.close();
    process.exit(0);
  });
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

await app.listen({ host: HOST, port: PORT });
console.log(`simplewebauthn-peer listening on ${HOST}:${PORT} (tenant ${TENANT_ID}, RP id ${RP_ID}, origins ${ORIGINS.join(' ')})`);
