// WebAuthn's JSON wire objects <-> the browser's: base64url, and the options and credentials
// the Client API sends and takes. One copy, loaded by the console (/console) and the demo page
// (/demo) before their own scripts; it defines `window.LatchkeyWebAuthn` and nothing else.
"use strict";
window.LatchkeyWebAuthn = (() => {
  function toB64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let s = "";
    for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function fromB64url(text) {
    const b64 = String(text).replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function dropNulls(value) {
    if (Array.isArray(value)) return value.map(dropNulls);
    if (value && typeof value === "object") {
      const out = {};
      for (const [k, v] of Object.entries(value)) if (v !== null && v !== undefined) out[k] = dropNulls(v);
      return out;
    }
    return value;
  }
  function creationOptions(options) {
    const o = dropNulls((options && options.publicKey) || options);
    o.challenge = fromB64url(o.challenge);
    o.user = { ...o.user, id: fromB64url(o.user.id) };
    if (o.excludeCredentials) o.excludeCredentials = o.excludeCredentials.map((c) => ({ ...c, id: fromB64url(c.id) }));
    return o;
  }
  function requestOptions(options) {
    const o = dropNulls((options && options.publicKey) || options);
    o.challenge = fromB64url(o.challenge);
    if (o.allowCredentials) o.allowCredentials = o.allowCredentials.map((c) => ({ ...c, id: fromB64url(c.id) }));
    return o;
  }
  function credentialJSON(cred) {
    const r = cred.response;
    const response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      if (typeof r.getTransports === "function") response.transports = r.getTransports();
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      if (r.userHandle) response.userHandle = toB64url(r.userHandle);
    }
    const json = { id: cred.id, rawId: toB64url(cred.rawId), type: cred.type, response, clientExtensionResults: {} };
    if (cred.authenticatorAttachment) json.authenticatorAttachment = cred.authenticatorAttachment;
    return json;
  }
  return Object.freeze({ toB64url, fromB64url, dropNulls, creationOptions, requestOptions, credentialJSON });
})();
