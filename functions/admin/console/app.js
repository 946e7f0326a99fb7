// The Latchkey console: plain JavaScript on the management API (/v1/admin) and, for the passkey
// ceremonies, the Client API of the console tenant (/v1/client), both on this origin. No
// framework, no build step, nothing from another origin; the page's Content-Security-Policy
// admits this file and same-origin fetches only. Every view is a "#/..." location.
//
// The DOM is built with textContent and attributes only (the h() helper), never from HTML
// strings: nothing a tenant's users or an API answer contain is ever parsed as markup.
"use strict";
(() => {
  // ---------------------------------------------------------------------------------------
  // DOM helpers
  // ---------------------------------------------------------------------------------------
  const $ = (selector, root = document) => root.querySelector(selector);

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "class") el.className = v;
      else if (k === "value") el.value = v;
      else if (k === "checked") el.checked = !!v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  let uid = 0;
  const nextId = (prefix) => `${prefix}-${++uid}`;

  /** A labelled control with a place for its error, linked by aria-describedby. */
  function field(label, control, hint) {
    const id = control.id || nextId("f");
    control.id = id;
    const err = h("span", { class: "error", id: `${id}-error`, "aria-live": "polite" });
    const described = [`${id}-error`];
    let hintEl = null;
    if (hint) {
      hintEl = h("span", { class: "hint", id: `${id}-hint` }, hint);
      described.push(`${id}-hint`);
    }
    control.setAttribute("aria-describedby", described.join(" "));
    const wrap = h("div", { class: "field" }, h("label", { for: id }, label), control, hintEl, err);
    wrap.control = control;
    wrap.setError = (message) => {
      err.textContent = message || "";
      if (message) control.setAttribute("aria-invalid", "true");
      else control.removeAttribute("aria-invalid");
    };
    return wrap;
  }

  const input = (attrs = {}) => h("input", { type: "text", ...attrs });
  function select(options, value, attrs = {}) {
    return h(
      "select",
      attrs,
      options.map(([v, text]) => h("option", { value: v, selected: v === value ? true : undefined }, text)),
    );
  }

  function table(headers, rows, caption) {
    return h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        // Explicit roles: a phone's stylesheet lays rows out as cards, which would otherwise
        // drop the table's semantics in some browsers.
        { role: "table" },
        caption ? h("caption", { class: "hint" }, caption) : null,
        h("thead", {}, h("tr", { role: "row" }, headers.map((t) => h("th", { scope: "col", role: "columnheader" }, t || h("span", { class: "sr-only" }, "Actions"))))),
        h("tbody", {}, rows.length ? rows.map((r) => row(headers, r)) : h("tr", { role: "row" }, h("td", { role: "cell", colspan: headers.length }, "None."))),
      ),
    );
  }

  /** A table row whose cells carry their column's name (a phone shows each row as a card). */
  function row(headers, cells) {
    return h("tr", { role: "row" }, cells.map((c, i) => h("td", { role: "cell", "data-label": headers[i] || "" }, c)));
  }

  function facts(pairs) {
    return h("dl", { class: "facts" }, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v === undefined || v === null || v === "" ? "—" : v)]));
  }

  const when = (iso) => {
    if (!iso) return "—";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  };

  function notify(text) {
    const n = $("#notice");
    n.textContent = text;
    clearTimeout(notify.timer);
    notify.timer = setTimeout(() => (n.textContent = ""), 6000);
  }

  /** A status line for a long operation: progress, then a clear result. */
  function progressLine() {
    const el = h("div", { role: "status", "aria-live": "polite" });
    el.step = (text) => {
      el.className = "progress";
      el.textContent = text;
    };
    el.done = (text) => {
      el.className = "success";
      el.textContent = text;
    };
    el.fail = (e) => {
      el.className = "alert";
      el.setAttribute("role", "alert");
      el.textContent = describe(e);
    };
    return el;
  }

  function alertBox() {
    const el = h("div", { class: "alert", role: "alert" });
    el.show = (e) => (el.textContent = e ? describe(e) : "");
    return el;
  }

  /** Runs `action` with `button` disabled, showing any failure in `errorEl`. */
  async function busy(button, errorEl, action) {
    if (button) button.disabled = true;
    if (errorEl) errorEl.show(null);
    try {
      return await action();
    } catch (e) {
      if (errorEl) errorEl.show(e);
      else notify(describe(e));
      if (e instanceof ApiError && e.status === 401) await lostSession();
      return undefined;
    } finally {
      if (button) button.disabled = false;
    }
  }

  function download(name, text, type) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const a = h("a", { href: url, download: name }, name);
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }

  async function copy(text, button) {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed: select the text and copy it";
    }
  }

  /** A secret shown once, with a copy button. */
  function secretPanel(title, secret, note) {
    const out = h("output", { id: "new-secret", "aria-label": title }, secret);
    const btn = h("button", { type: "button", class: "secondary", onclick: () => copy(secret, btn) }, "Copy");
    return h("div", { class: "panel", role: "region", "aria-label": title }, h("h2", {}, title), h("p", {}, note), h("div", { class: "secret" }, out, btn));
  }

  /** Shows a secret in the current page's `areaId` (after any re-render) and focuses it. */
  function revealOnce(areaId, title, secret, note) {
    $(`#${areaId}`).replaceChildren(secretPanel(title, secret, note));
    $("#new-secret").focus();
  }

  // ---------------------------------------------------------------------------------------
  // HTTP in the wire format
  // ---------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(message, status, code) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  const WORDS = {
    400: "The request was not accepted",
    401: "You are not signed in, or your session has ended. Sign in again.",
    403: "You are not allowed to do this here.",
    404: "Not found: it may have been deleted.",
    409: "Someone changed this at the same time; reload and try again.",
    429: "Too many requests; wait a minute and try again.",
    503: "The service is unavailable for a moment; try again.",
  };

  /** Any failure, in words for a person. */
  function describe(e) {
    if (e instanceof ApiError) return e.message;
    if (e && e.name === "NotAllowedError") return "The passkey request was cancelled or timed out. Try again.";
    if (e && e.name === "InvalidStateError") return "This authenticator already holds a passkey for this account.";
    if (e && e.name === "SecurityError") return "The browser refused the passkey request for this address (open the console on https, or on http://localhost).";
    if (e && e.name === "AbortError") return "Cancelled.";
    if (e instanceof TypeError) return "The server could not be reached. Check your connection and try again.";
    return (e && e.message) || String(e);
  }

  async function api(method, path, body, { auth, idempotent, raw } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth) headers.Authorization = auth;
    if (idempotent) headers["Idempotency-Key"] = crypto.randomUUID();
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
    const text = await response.text();
    if (raw && response.ok) return text;
    let data = {};
    try {
      data = text ? JSON.parse(text) : {};
    } catch {
      data = null;
    }
    if (!response.ok || (data && typeof data === "object" && "error" in data && "errorCode" in data)) {
      const base = WORDS[response.status] || `The server answered ${response.status}.`;
      const detail = data && (data.errorDescription || data.message);
      // A lost session on the management API reads the same whatever the cause; elsewhere (a
      // passkey the Client API refused) the server's own words say what went wrong.
      let message = response.status === 401 && path.startsWith("/v1/admin") ? WORDS[401] : detail ? (response.status === 403 ? `${base} ${detail}` : detail) : base;
      const tenant = /^\/v1\/admin\/tenants\/([^/?]+)/.exec(path);
      if (response.status === 403 && tenant && state.me && state.me.account.operator && !(state.me.account.memberships || {})[decodeURIComponent(tenant[1])]) {
        message += " An operator sees a tenant only while it grants support access, within the grant's scope.";
      }
      throw new ApiError(message, response.status, data && data.errorCode);
    }
    if (data === null) throw new ApiError(`The server's answer to ${method} ${path} was not JSON.`, response.status);
    return data;
  }

  const bearer = (token) => "Bearer " + token;
  const basic = (tenantId) => "Basic " + btoa(encodeURIComponent(tenantId));
  const T = (tid) => `/v1/admin/tenants/${encodeURIComponent(tid)}`;

  // ---------------------------------------------------------------------------------------
  // WebAuthn JSON <-> browser objects
  // ---------------------------------------------------------------------------------------
  const { creationOptions, requestOptions, credentialJSON } = window.LatchkeyWebAuthn;
  function requireWebAuthn() {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      throw new Error("This browser, or this address, offers no passkeys: open the console on https, or on http://localhost.");
    }
  }

  let consoleInfo = null;
  async function getConsole() {
    if (!consoleInfo) consoleInfo = await api("GET", "/v1/admin/console");
    return consoleInfo;
  }

  /** A passkey assertion through the console tenant's Client API; returns its access token. */
  async function assertPasskey(auth, challengeId, { mediation, signal } = {}) {
    const o = await api("POST", "/v1/client/user-authenticators/passkey/authentication-options", challengeId ? { challengeId } : {}, { auth });
    const cred = await navigator.credentials.get({ publicKey: requestOptions(o.options), mediation, signal });
    if (!cred) throw new Error("The authenticator returned no passkey.");
    const v = await api("POST", "/v1/client/verify/passkey", { challengeId: o.challengeId || challengeId, authenticationCredential: credentialJSON(cred) }, { auth });
    if (!v.isVerified || !v.accessToken) throw new ApiError("The server did not accept this passkey.", 401);
    return v.accessToken;
  }

  /** Signs in without a name: a usernameless passkey ceremony, then a session. */
  async function signInWithPasskey(options) {
    requireWebAuthn();
    const info = await getConsole();
    const auth = basic(info.consoleTenantId);
    const c = await api("POST", "/v1/client/challenge", { action: info.signInAction }, { auth });
    const token = await assertPasskey(auth, c.challengeId, options);
    return api("POST", "/v1/admin/session", { token });
  }

  /** A fresh passkey check for a signed-in person (before deleting a tenant). */
  async function reauthenticate() {
    requireWebAuthn();
    const r = await api("POST", "/v1/admin/session/reauth", {});
    await assertPasskey(bearer(r.token));
    return r.token;
  }

  // ---------------------------------------------------------------------------------------
  // Session and navigation
  // ---------------------------------------------------------------------------------------
  const state = { me: null, conditional: null };

  async function loadMe() {
    try {
      state.me = await api("GET", "/v1/admin/session");
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) state.me = null;
      else throw e;
    }
    return state.me;
  }

  async function lostSession() {
    state.me = null;
    if (!location.hash.startsWith("#/sign-in")) {
      sessionStorage.setItem("latchkey-next", location.hash);
      go("#/sign-in");
    }
  }

  const go = (hash) => {
    if (location.hash === hash) render();
    else location.hash = hash;
  };

  function home() {
    const me = state.me;
    if (!me) return "#/sign-in";
    const tenants = Object.keys(me.account.memberships || {});
    if (tenants.length) return `#/t/${encodeURIComponent(tenants[0])}/overview`;
    if (me.account.operator) return "#/operator";
    return "#/accept";
  }

  const TENANT_PAGES = [
    ["overview", "Overview"],
    ["keys", "Secret keys"],
    ["origins", "Allowed origins"],
    ["rules", "Actions and rules"],
    ["users", "Users"],
    ["audit", "Audit log"],
    ["support", "Support access"],
    ["members", "Admins and invites"],
  ];

  function chrome(tenantId, page) {
    const me = state.me;
    const who = $("#who");
    const nav = $("#tenant-nav");
    const side = $("#side");
    who.replaceChildren();
    nav.replaceChildren();
    side.replaceChildren();
    if (!me) return;
    const memberships = me.account.memberships || {};
    const role = tenantId && memberships[tenantId] ? memberships[tenantId] : me.account.operator ? (tenantId ? "operator, under support access" : "operator") : "";
    who.append(
      h("span", {}, `Signed in: `, h("span", { class: "mono" }, me.account.id), role ? ` — ${role}` : ""),
      h("button", { type: "button", class: "secondary", id: "sign-out", onclick: signOut }, "Sign out"),
    );
    const ids = Object.keys(memberships);
    if (ids.length > 1 || (tenantId && !memberships[tenantId] && ids.length)) {
      const sel = select(
        [...(tenantId && !memberships[tenantId] ? [[tenantId, tenantId]] : []), ...ids.map((t) => [t, t])],
        tenantId,
        { id: "tenant-select" },
      );
      sel.addEventListener("change", () => go(`#/t/${encodeURIComponent(sel.value)}/overview`));
      nav.append(h("label", { for: "tenant-select", class: "hint" }, "Tenant "), sel);
    }
    const link = (hash, text, current) => h("li", {}, h("a", { href: hash, "aria-current": current ? "page" : undefined }, text));
    if (tenantId) {
      side.append(
        h("h2", {}, "Tenant"),
        h("ul", {}, TENANT_PAGES.map(([p, text]) => link(`#/t/${encodeURIComponent(tenantId)}/${p}`, text, p === page))),
      );
    }
    if (me.account.operator) {
      side.append(
        h("h2", {}, "Operator"),
        h("ul", {}, link("#/operator", "Open a tenant", page === "operator"), link("#/operator/status", "Status page", page === "status")),
      );
    }
  }

  async function signOut() {
    await busy(null, null, async () => {
      await api("DELETE", "/v1/admin/session");
      state.me = null;
      notify("Signed out.");
      go("#/sign-in");
    });
  }

  function view(title, ...children) {
    const main = $("#main");
    main.replaceChildren(h("h1", { id: "page-title" }, title), ...children);
    document.title = `${title} — Latchkey console`;
    return main;
  }

  const ROUTES = [
    [/^#\/sign-in$/, () => signInPage()],
    [/^#\/accept(?:\/(.+))?$/, (m) => acceptPage(m[1] ? decodeURIComponent(m[1]) : "")],
    [/^#\/operator$/, () => operatorPage()],
    [/^#\/operator\/status$/, () => statusPage()],
    [/^#\/t\/([^/]+)\/users\/(.+)$/, (m) => userPage(decodeURIComponent(m[1]), decodeURIComponent(m[2]))],
    [/^#\/t\/([^/]+)\/([a-z]+)$/, (m) => tenantPage(decodeURIComponent(m[1]), m[2])],
  ];

  let rendering = 0;
  async function render() {
    const mine = ++rendering;
    if (state.conditional) {
      state.conditional.abort();
      state.conditional = null;
    }
    const hash = location.hash || "";
    try {
      if (state.me === null && !hash.startsWith("#/accept")) await loadMe();
      if (mine !== rendering) return;
      const route = ROUTES.find(([re]) => re.test(hash));
      const open = hash.startsWith("#/sign-in") || hash.startsWith("#/accept");
      if (!route) return go(home());
      if (!open && !state.me) return lostSession();
      if (hash.startsWith("#/sign-in") && state.me) return go(home());
      await route[1](hash.match(route[0]));
      if (mine === rendering) {
        const title = $("#page-title");
        if (title && document.activeElement === document.body) $("#main").focus({ preventScroll: true });
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return lostSession();
      chrome(null, null);
      view("Something went wrong", h("div", { class: "alert", role: "alert" }, describe(e)), h("p", {}, h("a", { href: home() }, "Back")));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Sign in, accept an invite
  // ---------------------------------------------------------------------------------------
  function afterSignIn(session) {
    state.me = session;
    const next = sessionStorage.getItem("latchkey-next");
    sessionStorage.removeItem("latchkey-next");
    notify("Signed in.");
    go(next && !next.startsWith("#/sign-in") ? next : home());
  }

  async function signInPage() {
    chrome(null, null);
    const err = alertBox();
    const hintInput = input({ id: "passkey-autofill", name: "username", autocomplete: "username webauthn", placeholder: "Choose your passkey" });
    const button = h("button", { type: "button", id: "sign-in" }, "Sign in with a passkey");
    button.addEventListener("click", () =>
      busy(button, err, async () => {
        if (state.conditional) state.conditional.abort();
        state.conditional = null;
        afterSignIn(await signInWithPasskey());
      }),
    );
    view(
      "Sign in",
      h("div", { class: "center" },
        h("p", {}, "Sign in with the passkey you registered when you accepted your invite. There is no name or password to type."),
        h("div", { class: "panel" },
          field("Passkey", hintInput, "Your browser may offer your passkey here as you focus this field."),
          h("div", { class: "actions" }, button),
          err,
        ),
        h("p", {}, "Invited? ", h("a", { href: "#/accept" }, "Accept your invite"), "."),
      ),
    );
    // Autofill (conditional mediation) where the browser offers it: a pending request the
    // button's modal ceremony replaces.
    try {
      if (window.PublicKeyCredential && PublicKeyCredential.isConditionalMediationAvailable && (await PublicKeyCredential.isConditionalMediationAvailable())) {
        const ctrl = new AbortController();
        state.conditional = ctrl;
        signInWithPasskey({ mediation: "conditional", signal: ctrl.signal })
          .then((session) => {
            if (state.conditional === ctrl) afterSignIn(session);
          })
          .catch((e) => {
            if (state.conditional === ctrl && e && e.name !== "AbortError") err.show(e);
          });
      }
    } catch {
      // No autofill: the button remains.
    }
  }

  async function acceptPage(invite) {
    chrome(null, null);
    if (invite) history.replaceState(null, "", "#/accept"); // the invite leaves the address bar and history
    if (state.me === null) await loadMe();
    const err = alertBox();
    const progress = progressLine();
    const inviteInput = input({ id: "invite", autocomplete: "off", spellcheck: "false", value: invite });
    const nameInput = input({ id: "passkey-name", autocomplete: "email", value: "" });
    const button = h("button", { type: "submit", id: "accept" }, state.me ? "Join with my signed-in account" : "Accept and register a passkey");
    const inviteField = field("Invite", inviteInput, "The one-time invite from the link you were sent (it begins with lki_).");
    const form = h("form", { novalidate: true },
      inviteField,
      state.me ? null : field("Name for your passkey", nameInput, "Shown by your password manager next to the passkey, e.g. your email address. Optional."),
      h("div", { class: "actions" }, button),
      progress,
      err,
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const value = inviteInput.value.trim();
      inviteField.setError(/^lki_[A-Za-z0-9_-]+$/.test(value) ? "" : "An invite begins with lki_ and has no spaces.");
      if (!/^lki_[A-Za-z0-9_-]+$/.test(value)) return inviteInput.focus();
      busy(button, err, async () => {
        try {
          if (state.me) {
            progress.step("Joining…");
            await api("POST", "/v1/admin/session/invites", { invite: value });
            await loadMe();
            progress.done("You joined. Opening the tenant…");
            return go(home());
          }
          requireWebAuthn();
          progress.step("Checking the invite…");
          const e = await api("POST", "/v1/admin/invites/accept", { invite: value });
          const auth = bearer(e.token);
          const name = nameInput.value.trim() || `latchkey-${e.accountId.slice(0, 8)}`;
          const o = await api("POST", "/v1/client/user-authenticators/passkey/registration-options", { username: name }, { auth });
          progress.step("Confirm with your authenticator to create the passkey…");
          const cred = await navigator.credentials.create({ publicKey: creationOptions(o.options) });
          if (!cred) throw new Error("The authenticator made no passkey.");
          progress.step("Saving the passkey…");
          const added = await api("POST", "/v1/client/user-authenticators/passkey", { challengeId: o.challengeId, registrationCredential: credentialJSON(cred) }, { auth });
          if (added.isVerified === false) throw new ApiError("The server did not accept the new passkey.", 400);
          progress.step("Signing in…");
          const session = await api("POST", "/v1/admin/session", { token: e.token, invite: value });
          progress.done("Your passkey is registered and you are signed in.");
          afterSignIn(session);
        } catch (e) {
          progress.replaceChildren();
          progress.className = "";
          throw e;
        }
      });
    });
    view(
      state.me ? "Join a tenant" : "Accept your invite",
      h("div", { class: "center" },
        h("p", {}, state.me
          ? "You are signed in: the invite adds its tenant to your account."
          : "An invite is good once. Accepting it registers a passkey on this device (or your password manager), which is how you sign in from now on."),
        form,
        state.me ? null : h("p", {}, "Already registered? ", h("a", { href: "#/sign-in" }, "Sign in"), "."),
      ),
    );
  }

  // ---------------------------------------------------------------------------------------
  // Tenant pages
  // ---------------------------------------------------------------------------------------
  const PAGES = {
    overview: overviewPage,
    keys: keysPage,
    origins: originsPage,
    rules: rulesPage,
    users: usersPage,
    audit: auditPage,
    support: supportPage,
    members: membersPage,
  };

  async function tenantPage(tid, page) {
    const fn = PAGES[page];
    if (!fn) return go(`#/t/${encodeURIComponent(tid)}/overview`);
    chrome(tid, page);
    await fn(tid);
  }

  const roleIn = (tid) => (state.me && (state.me.account.memberships || {})[tid]) || null;

  async function overviewPage(tid) {
    const o = await api("GET", `${T(tid)}/overview`);
    const count = (n, more) => (more ? `${n.toLocaleString()}+` : n.toLocaleString());
    const children = [
      facts([
        ["Tenant id", h("span", { class: "mono", id: "tenant-id" }, o.tenantId)],
        ["Name", o.name],
        ["RP id (passkeys)", h("span", { class: "mono" }, o.rpId)],
        ["Allowed origins", (o.allowedOrigins || []).length ? h("ul", {}, o.allowedOrigins.map((x) => h("li", { class: "mono" }, x))) : "None yet"],
        ["Verification methods", (o.allowedMethods || []).join(", ")],
        ["Users", h("span", { id: "user-count" }, count(o.users, o.usersMore))],
        ["Actions in the last 24 hours", h("span", { id: "action-count" }, count(o.actionsLast24h, o.actionsMore))],
        ["Action codes configured", String(Object.keys(o.actions || {}).length)],
      ]),
    ];
    if (roleIn(tid) === "owner") children.push(deleteTenantPanel(tid));
    view(o.name || tid, ...children);
  }

  function deleteTenantPanel(tid) {
    const err = alertBox();
    const progress = progressLine();
    const confirmInput = input({ id: "confirm-delete", autocomplete: "off" });
    const confirmField = field("Type the tenant id to confirm", confirmInput);
    const button = h("button", { type: "submit", class: "danger" }, "Delete this tenant");
    const form = h("form", { novalidate: true, "aria-labelledby": "danger-title" },
      h("h2", { id: "danger-title" }, "Delete the tenant"),
      h("p", {}, "Destroys the tenant's own key first, so every sealed field is unreadable in the table and in every backup; then its items are purged. This cannot be undone. You will confirm with your passkey."),
      confirmField,
      h("div", { class: "actions" }, button),
      progress,
      err,
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      confirmField.setError(confirmInput.value.trim() === tid ? "" : "This is not the tenant id.");
      if (confirmInput.value.trim() !== tid) return confirmInput.focus();
      busy(button, err, async () => {
        try {
          progress.step("Step 1 of 2: confirm with your passkey…");
          const token = await reauthenticate();
          progress.step("Step 2 of 2: destroying the tenant's key and marking it deleted…");
          const receipt = await api("DELETE", T(tid), { token });
          progress.done(`Deleted at ${when(receipt.deletedAt)}. The tenant's key was ${receipt.keyDestroyed ? "destroyed" : "not destroyed (this tenant had none of its own)"}; its items are purged within the hour. Receipt: event ${receipt.receiptEvent} in the platform's journal.`);
          await loadMe();
          chrome(null, null);
          form.append(h("p", {}, h("a", { href: home(), id: "after-delete" }, "Continue")));
        } catch (e) {
          progress.fail(e);
        }
      });
    });
    return form;
  }

  async function keysPage(tid) {
    const { keys } = await api("GET", `${T(tid)}/keys`);
    const err = alertBox();
    const shown = h("div", { id: "secret-area" });
    const reload = () => keysPage(tid);
    const created = async (r, what) => {
      await keysPage(tid);
      revealOnce("secret-area", what, r.secret, "Shown once: copy it now into your backend's secret store. Latchkey keeps only a keyed hash of it.");
    };
    const create = h("button", { type: "button", id: "create-key" }, "Create a secret key");
    create.addEventListener("click", () =>
      busy(create, err, async () => created(await api("POST", `${T(tid)}/keys`, {}), "Your new secret key")),
    );
    const rows = keys.map((k) => {
      const cells = [h("span", { class: "mono" }, `${k.prefix}…`), h("span", { class: `state ${k.state === "active" ? "good" : k.state === "revoked" || k.state === "expired" ? "bad" : "wait"}` }, k.state), when(k.createdAt), when(k.expiresAt)];
      const buttons = h("div", { class: "actions" });
      if (k.state === "active") {
        const rotate = h("button", { type: "button", class: "secondary", "aria-label": `Rotate key ${k.prefix}` }, "Rotate");
        rotate.addEventListener("click", () =>
          busy(rotate, err, async () => created(await api("POST", `${T(tid)}/keys/${encodeURIComponent(k.keyId)}/rotate`, { overlapHours: 24 }), "The replacement key (the old one keeps working for 24 hours)")),
        );
        buttons.append(rotate);
      }
      if (k.state !== "revoked") {
        const revoke = h("button", { type: "button", class: "danger", "aria-label": `Revoke key ${k.prefix}` }, "Revoke");
        revoke.addEventListener("click", () =>
          busy(revoke, err, async () => {
            await api("DELETE", `${T(tid)}/keys/${encodeURIComponent(k.keyId)}`);
            notify("Key revoked: it is refused from the next request.");
            await reload();
          }),
        );
        buttons.append(revoke);
      }
      cells.push(buttons);
      return cells;
    });
    view(
      "Secret keys",
      h("p", {}, "Your backend calls the Server API with a secret key (an Authsignal SDK's API secret). A new key's secret is shown once."),
      h("div", { class: "actions" }, create),
      err,
      shown,
      table(["Key", "State", "Created", "Expires", ""], rows),
    );
  }

  function originProblem(o) {
    let u;
    try {
      u = new URL(o);
    } catch {
      return "Not an origin: write it as https://example.com (with a port if it has one).";
    }
    if (u.origin !== o) return `Write only the origin, with no path or trailing slash: ${u.origin}`;
    if (u.protocol === "https:") return "";
    if (u.protocol === "http:" && (u.hostname === "localhost" || u.hostname === "127.0.0.1")) return "";
    return "Only https origins (and http://localhost for development) are allowed.";
  }

  async function originsPage(tid) {
    const t = await api("GET", T(tid));
    let origins = [...(t.allowedOrigins || [])];
    const err = alertBox();
    const list = h("ul", { id: "origin-list" });
    const add = input({ id: "new-origin", inputmode: "url", autocomplete: "url", placeholder: "https://app.example.com" });
    const addField = field("Origin to add", add, "Where your front end runs: the browser SDK's calls are accepted only from these origins.");
    const save = h("button", { type: "button", id: "save-origins" }, "Save origins");
    const draw = () =>
      list.replaceChildren(
        ...origins.map((o, i) =>
          h("li", { class: "row" }, h("span", { class: "mono" }, o), " ",
            h("button", { type: "button", class: "secondary", "aria-label": `Remove ${o}`, onclick: () => { origins.splice(i, 1); draw(); } }, "Remove")),
        ),
      );
    draw();
    const addButton = h("button", { type: "button", class: "secondary", id: "add-origin" }, "Add");
    addButton.addEventListener("click", () => {
      const o = add.value.trim();
      const problem = o ? originProblem(o) : "Write an origin first.";
      addField.setError(problem || (origins.includes(o) ? "Already in the list." : ""));
      if (problem || origins.includes(o)) return add.focus();
      origins.push(o);
      add.value = "";
      draw();
    });
    save.addEventListener("click", () =>
      busy(save, err, async () => {
        try {
          const r = await api("PATCH", T(tid), { allowedOrigins: origins });
          origins = [...r.allowedOrigins];
          draw();
          notify("Origins saved.");
        } catch (e) {
          addField.setError(describe(e));
          throw e;
        }
      }),
    );
    view(
      "Allowed origins",
      facts([["RP id (passkeys)", h("span", { class: "mono" }, t.rpId)]]),
      list,
      h("div", { class: "panel" }, h("div", { class: "row" }, addField, addButton)),
      h("div", { class: "actions" }, save),
      err,
    );
  }

  // ---- actions and rules ----
  const OUTCOMES = [["ALLOW", "Allow"], ["CHALLENGE", "Challenge (step up)"], ["REVIEW", "Review"], ["BLOCK", "Block"]];
  const CONDITIONS = [
    ["ipInCidr", "IP address in networks"],
    ["custom", "Custom data field equals"],
    ["userAgentContains", "User agent contains"],
    ["isEnrolled", "User is enrolled"],
    ["newDevice", "Device is new"],
    ["actionCountExceeds", "More actions than"],
  ];
  const CIDR = /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}(?:\/(?:3[0-2]|[12]?\d))?|[0-9a-fA-F:]+:[0-9a-fA-F:.]*(?:\/(?:12[0-8]|1[01]\d|\d?\d))?)$/;

  function blankCondition(type) {
    switch (type) {
      case "ipInCidr": return { type, cidrs: [] };
      case "custom": return { type, field: "", equals: "" };
      case "userAgentContains": return { type, text: "" };
      case "isEnrolled": return { type, value: true };
      case "newDevice": return { type, value: true };
      default: return { type: "actionCountExceeds", count: 5, windowSeconds: 3600 };
    }
  }

  /** The rule editor: a form per condition type, and the same configuration as JSON. */
  function ruleEditor(tid, code, initial, isNew) {
    let config = JSON.parse(JSON.stringify(initial || { defaultOutcome: "CHALLENGE", rules: [] }));
    // A saved rule keeps its id when renamed; a new one takes its id from its name.
    config.rules = (config.rules || []).map((r) => ({ ...r, idFixed: true }));
    const err = alertBox();
    const box = h("div", { id: "rule-editor" });
    const checks = []; // [() => problem or ""]

    function numberField(label, value, min, max, set) {
      const el = input({ type: "number", min, max, step: 1, value: String(value ?? ""), inputmode: "numeric" });
      const f = field(label, el);
      el.addEventListener("input", () => set(el.value === "" ? NaN : Number(el.value)));
      checks.push(() => {
        const n = Number(el.value);
        const bad = el.value === "" || !Number.isInteger(n) || n < min || n > max;
        f.setError(bad ? `A whole number from ${min} to ${max}.` : "");
        return bad ? f : null;
      });
      return f;
    }
    function textField(label, value, set, check, hint) {
      const el = input({ value: value ?? "" });
      const f = field(label, el, hint);
      el.addEventListener("input", () => set(el.value));
      if (check) checks.push(() => {
        const p = check(el.value);
        f.setError(p);
        return p ? f : null;
      });
      return f;
    }
    function boolField(label, value, set) {
      const el = select([["true", "Yes"], ["false", "No"]], String(!!value));
      el.addEventListener("change", () => set(el.value === "true"));
      return field(label, el);
    }

    function conditionFields(c) {
      switch (c.type) {
        case "ipInCidr":
          return [textField("Networks (CIDR, comma-separated)", (c.cidrs || []).join(", "), (v) => (c.cidrs = v.split(",").map((s) => s.trim()).filter(Boolean)),
            (v) => {
              const parts = v.split(",").map((s) => s.trim()).filter(Boolean);
              if (!parts.length) return "At least one network, e.g. 10.0.0.0/8.";
              const bad = parts.find((p) => !CIDR.test(p));
              return bad ? `Not a network: ${bad}` : "";
            })];
        case "custom":
          return [
            textField("Custom field", c.field, (v) => (c.field = v), (v) => (v.trim() ? "" : "Name the field of the track's custom data.")),
            textField("Equals (JSON: true, 3, \"text\")", JSON.stringify(c.equals), (v) => {
              try { c.equals = JSON.parse(v); } catch { c.equals = v; }
            }, (v) => (v.trim() === "" ? "A value to compare with." : ""), "Unquoted text is taken as a string."),
          ];
        case "userAgentContains":
          return [textField("Text", c.text, (v) => (c.text = v), (v) => (v.trim() ? "" : "The text to look for."))];
        case "isEnrolled":
          return [boolField("Enrolled", c.value, (v) => (c.value = v))];
        case "newDevice":
          return [boolField("New device", c.value, (v) => (c.value = v))];
        default:
          return [
            numberField("Count", c.count, 0, 1000000, (v) => (c.count = v)),
            numberField("Window (seconds)", c.windowSeconds, 1, 31536000, (v) => (c.windowSeconds = v)),
          ];
      }
    }

    function draw() {
      checks.length = 0;
      const def = select(OUTCOMES, config.defaultOutcome || "CHALLENGE", { id: "default-outcome" });
      def.addEventListener("change", () => (config.defaultOutcome = def.value));
      const rules = config.rules.map((r, i) => {
        const conds = (r.conditions = r.conditions || []).map((c, j) => {
          const type = select(CONDITIONS, c.type);
          type.addEventListener("change", () => {
            r.conditions[j] = blankCondition(type.value);
            draw();
          });
          return h("fieldset", { class: "condition" },
            h("legend", {}, `Condition ${j + 1}`),
            h("div", { class: "row" }, field("Type", type), ...conditionFields(c)),
            h("button", { type: "button", class: "secondary", onclick: () => { r.conditions.splice(j, 1); draw(); } }, `Remove condition ${j + 1}`),
          );
        });
        const outcome = select(OUTCOMES, r.outcome || "ALLOW");
        outcome.addEventListener("change", () => (r.outcome = outcome.value));
        return h("fieldset", { class: "rule" },
          h("legend", {}, `Rule ${i + 1}${r.name ? `: ${r.name}` : ""}`),
          h("div", { class: "row" },
            textField("Name", r.name, (v) => {
              r.name = v;
              if (!r.idFixed) r.id = v.trim().toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
            }, (v) => (v.trim() ? "" : "A rule needs a name.")),
            numberField("Priority (0 first)", r.priority ?? 10, 0, 99, (v) => (r.priority = v)),
            field("Outcome", outcome),
          ),
          h("p", { class: "hint" }, "All conditions must hold; a rule with none always matches."),
          conds,
          h("div", { class: "actions" },
            h("button", { type: "button", class: "secondary", onclick: () => { r.conditions.push(blankCondition("custom")); draw(); } }, `Add a condition to rule ${i + 1}`),
            h("button", { type: "button", class: "secondary", onclick: () => { config.rules.splice(i, 1); draw(); } }, `Remove rule ${i + 1}`),
          ),
        );
      });
      const json = h("textarea", { id: "rule-json", spellcheck: "false" }, JSON.stringify(clean(), null, 2));
      const jsonField = field("The same configuration as JSON", json, "Edit it and apply, or edit the form above.");
      const applyJson = h("button", { type: "button", class: "secondary" }, "Apply JSON to the form");
      applyJson.addEventListener("click", () => {
        try {
          const parsed = JSON.parse(json.value);
          if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("The configuration is a JSON object.");
          config = parsed;
          config.rules = (config.rules || []).map((r) => ({ ...r, idFixed: true }));
          draw();
        } catch (e) {
          jsonField.setError(`Not valid JSON: ${describe(e)}`);
          json.focus();
        }
      });
      const save = h("button", { type: "submit", id: "save-rules" }, "Save");
      const remove = isNew ? null : h("button", { type: "button", class: "danger" }, `Delete ${code}`);
      if (remove) remove.addEventListener("click", () =>
        busy(remove, err, async () => {
          await api("PATCH", T(tid), { actions: { [code]: null } });
          notify(`${code} deleted.`);
          await rulesPage(tid);
        }));
      const form = h("form", { novalidate: true, "aria-labelledby": "editor-title" },
        h("h2", { id: "editor-title" }, isNew ? `New action code: ${code}` : `Action code ${code}`),
        field("Outcome when no rule matches", def),
        rules,
        h("div", { class: "actions" },
          h("button", { type: "button", class: "secondary", id: "add-rule", onclick: () => { config.rules.push({ id: "", name: "", priority: 10, outcome: "ALLOW", conditions: [] }); draw(); } }, "Add a rule"),
        ),
        jsonField,
        h("div", { class: "actions" }, applyJson),
        h("div", { class: "actions" }, save, remove),
        err,
      );
      // The JSON view follows the form (unless it is being edited itself).
      const sync = (ev) => {
        if (ev.target !== json) json.value = JSON.stringify(clean(), null, 2);
      };
      form.addEventListener("input", sync);
      form.addEventListener("change", sync);
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        const firstBad = checks.map((c) => c()).find(Boolean);
        if (firstBad) {
          err.show(new Error("Some fields need attention; each says what is wrong."));
          return firstBad.control.focus();
        }
        const ids = config.rules.map((r) => r.id);
        if (ids.some((x, k) => !x || ids.indexOf(x) !== k)) {
          err.show(new Error("Two rules have the same name (or a name gives no id): give each rule its own name."));
          return;
        }
        busy(save, err, async () => {
          const r = await api("PATCH", T(tid), { actions: { [code]: clean() } });
          notify(`${code} saved (settings version ${r.version}).`);
          await rulesPage(tid, code);
          $("#save-status").textContent = `${code} saved: settings version ${r.version}. The next track of ${code} follows it.`;
        });
      });
      box.replaceChildren(form, h("p", { id: "save-status", role: "status", class: "hint" }));
    }

    function clean() {
      return {
        defaultOutcome: config.defaultOutcome || "CHALLENGE",
        rules: (config.rules || []).map((r) => {
          const out = { id: r.id, name: r.name, priority: r.priority, outcome: r.outcome, conditions: r.conditions || [] };
          if (r.description) out.description = r.description;
          return out;
        }),
      };
    }
    draw();
    return box;
  }

  async function rulesPage(tid, selected) {
    const t = await api("GET", T(tid));
    const codes = Object.keys(t.actions || {}).sort();
    const editorArea = h("div", { id: "editor-area" });
    const open = (code, isNew) => {
      editorArea.replaceChildren(ruleEditor(tid, code, (t.actions || {})[code], isNew));
      const first = $("#default-outcome");
      if (first) first.focus();
    };
    const newCode = input({ id: "new-code", autocomplete: "off", spellcheck: "false" });
    const newField = field("New action code", newCode, "As your backend names it in track, e.g. signIn or transferFunds.");
    const newButton = h("button", { type: "button", class: "secondary", id: "new-action" }, "Configure");
    newButton.addEventListener("click", () => {
      const code = newCode.value.trim();
      const bad = !/^[A-Za-z0-9_.:-]{1,64}$/.test(code) ? "Letters, digits and _ . : - only, up to 64." : codes.includes(code) ? "Already configured: pick it from the list." : "";
      newField.setError(bad);
      if (bad) return newCode.focus();
      open(code, true);
    });
    view(
      "Actions and rules",
      h("p", {}, "Each action code has an outcome when no rule matches, and rules checked by priority; the first that matches decides the action's state."),
      table(["Action code", "When no rule matches", "Rules", ""], codes.map((c) => [
        h("span", { class: "mono" }, c),
        t.actions[c].defaultOutcome,
        String((t.actions[c].rules || []).length),
        h("button", { type: "button", class: "secondary", "aria-label": `Edit ${c}`, onclick: () => open(c, false) }, "Edit"),
      ])),
      h("div", { class: "panel" }, h("div", { class: "row" }, newField, newButton)),
      editorArea,
    );
    if (selected) open(selected, false);
  }

  // ---- users ----
  async function usersPage(tid) {
    const err = alertBox();
    const by = select([["userId", "User id"], ["email", "Email"], ["username", "Username"], ["phoneNumber", "Phone number"]], "userId", { id: "find-by" });
    const value = input({ id: "find-value", autocomplete: "off", spellcheck: "false", type: "search" });
    const valueField = field("Value", value, "Exact match; email, username and phone are found through their blind indexes.");
    const results = h("div", { id: "user-results" });
    const more = h("div", { class: "actions" });
    const search = h("button", { type: "submit", id: "find-user" }, "Find");
    const all = h("button", { type: "button", class: "secondary", id: "list-users" }, "List every user");
    const show = (users, append) => {
      const rows = users.map((u) => [
        h("a", { href: `#/t/${encodeURIComponent(tid)}/users/${encodeURIComponent(u.userId)}`, class: "mono" }, u.userId),
        u.email || "—",
        u.username || "—",
        u.phoneNumber || "—",
      ]);
      if (append) {
        const tbody = $("tbody", results);
        if (tbody) for (const r of rows) tbody.append(row(["User id", "Email", "Username", "Phone"], r));
      } else {
        results.replaceChildren(table(["User id", "Email", "Username", "Phone"], rows, `${users.length} found`));
      }
    };
    const page = async (after) => {
      const q = new URLSearchParams({ limit: "50" });
      if (after) q.set("lastEvaluatedUserId", after);
      const r = await api("GET", `${T(tid)}/users?${q}`);
      show(r.users, !!after);
      more.replaceChildren();
      if (r.lastEvaluatedUserId) {
        const next = h("button", { type: "button", class: "secondary" }, "More users");
        next.addEventListener("click", () => busy(next, err, () => page(r.lastEvaluatedUserId)));
        more.append(next);
      }
    };
    all.addEventListener("click", () => busy(all, err, () => page(null)));
    const form = h("form", { novalidate: true, role: "search", "aria-label": "Find users" },
      h("div", { class: "row" }, field("Find by", by), valueField, search, all),
      err,
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (!value.value.trim()) {
        valueField.setError("Write what to look for, or list every user.");
        return value.focus();
      }
      valueField.setError("");
      busy(search, err, async () => {
        const q = new URLSearchParams({ [by.value]: value.value.trim() });
        const r = await api("GET", `${T(tid)}/users?${q}`);
        show(r.users, false);
        more.replaceChildren();
      });
    });
    view("Users", form, results, more);
    await busy(null, err, () => page(null));
  }

  async function userPage(tid, userId) {
    chrome(tid, "users");
    const d = await api("GET", `${T(tid)}/users/${encodeURIComponent(userId)}`);
    const u = d.user || {};
    const err = alertBox();
    const progress = progressLine();
    const exportButton = h("button", { type: "button", class: "secondary", id: "export-user" }, "Export everything held about this user");
    exportButton.addEventListener("click", () =>
      busy(exportButton, null, async () => {
        try {
          progress.step("Collecting the user's data (profile, authenticators, actions, audit events)…");
          const data = await api("POST", `${T(tid)}/users/${encodeURIComponent(userId)}/export`, {});
          const text = JSON.stringify(data, null, 2);
          download(`latchkey-user-${userId}.json`, text, "application/json");
          progress.done(`Export ready: ${text.length.toLocaleString()} bytes, saved as latchkey-user-${userId}.json. The export is in the audit log.`);
        } catch (e) {
          progress.fail(e);
        }
      }),
    );
    const confirmInput = input({ id: "confirm-user", autocomplete: "off" });
    const confirmField = field("Type the user id to delete the user", confirmInput);
    const del = h("button", { type: "button", class: "danger", id: "delete-user" }, "Delete this user");
    del.addEventListener("click", () => {
      const ok = confirmInput.value.trim() === userId;
      confirmField.setError(ok ? "" : "This is not the user id.");
      if (!ok) return confirmInput.focus();
      busy(del, err, async () => {
        progress.step("Deleting the user's records and personal data…");
        await api("DELETE", `${T(tid)}/users/${encodeURIComponent(userId)}`);
        progress.done("The user is deleted; the audit log keeps that it happened, without their data.");
        setTimeout(() => go(`#/t/${encodeURIComponent(tid)}/users`), 1500);
      });
    });
    const shown = (v) => (v === undefined || v === null ? "—" : typeof v === "object" ? JSON.stringify(v) : String(v));
    view(
      `User ${userId}`,
      h("p", {}, h("a", { href: `#/t/${encodeURIComponent(tid)}/users` }, "← All users")),
      h("h2", {}, "Profile"),
      facts(Object.entries(u).map(([k, v]) => [k, shown(v)])),
      h("h2", {}, "Authenticators"),
      table(["Method", "Name", "Added", "Last used"], (d.authenticators || []).map((a) => [
        a.verificationMethod || "—",
        (a.webauthnCredential && a.webauthnCredential.name) || a.email || a.phoneNumber || a.userAuthenticatorId || "—",
        when(a.createdAt),
        when(a.lastVerifiedAt),
      ])),
      h("h2", {}, "Recent actions"),
      table(["Action", "State", "When", "Rules matched"], (d.recentActions || []).map((a) => [
        a.actionCode || a.action || "—",
        h("span", { class: "state" }, a.state || "—"),
        when(a.createdAt),
        (a.ruleIds || a.rules || []).join(", ") || "—",
      ])),
      h("h2", {}, "Data requests"),
      h("div", { class: "actions" }, exportButton),
      h("div", { class: "panel" }, confirmField, h("div", { class: "actions" }, del)),
      progress,
      err,
    );
  }

  // ---- audit log ----
  function verification(report) {
    if (report.broken) {
      const b = report.broken;
      return h("div", { class: "broken", id: "audit-state", role: "alert" },
        h("p", { class: "state bad" }, "Verification failed: the log does not match its sealed chain."),
        h("p", {}, `${b.kind}${b.seq !== undefined ? ` at sealed entry ${b.seq}` : ""}${b.checkpoint !== undefined ? `, checkpoint ${b.checkpoint}` : ""}${b.eventId ? `, event ${b.eventId}` : ""}: ${b.reason}`));
    }
    const allSealed = report.sealed >= report.events && report.pending === 0;
    return h("div", { class: allSealed ? "verified" : "pending", id: "audit-state" },
      h("p", { class: `state ${allSealed ? "good" : "wait"}` },
        allSealed ? "Verified: every event is sealed in the chain." : `Verified so far: ${report.pending.toLocaleString()} new event(s) not sealed yet (sealed within seconds).`),
      report.signedThrough < report.sealed
        ? h("p", {}, `${(report.sealed - report.signedThrough).toLocaleString()} most recent sealed entr${report.sealed - report.signedThrough === 1 ? "y is" : "ies are"} chained but not yet under a signed checkpoint (one is signed every 1,000 entries, or 5 minutes after activity).`)
        : h("p", {}, "Every sealed entry is under a signed checkpoint."),
      facts([
        ["Events", report.events.toLocaleString()],
        ["Sealed entries", report.sealed.toLocaleString()],
        ["Signed checkpoints", report.checkpoints.toLocaleString()],
        ["Signed through entry", report.signedThrough.toLocaleString()],
      ]),
    );
  }

  const AUDIT_COLUMNS = ["When", "Action", "Actor", "Target", "Details"];

  async function auditPage(tid) {
    const err = alertBox();
    const stateArea = h("div", { id: "audit-verify" }, h("p", {}, "Checking the sealed chain…"));
    const verifyButton = h("button", { type: "button", class: "secondary", id: "verify-audit" }, "Verify again");
    const doVerify = () => busy(verifyButton, err, async () => stateArea.replaceChildren(verification(await api("GET", `${T(tid)}/audit/verify`))));
    verifyButton.addEventListener("click", doVerify);
    const f = {
      action: input({ id: "f-action", placeholder: "e.g. tenant.settings.update or user." }),
      actor: input({ id: "f-actor" }),
      target: input({ id: "f-target" }),
      since: input({ id: "f-since", type: "datetime-local" }),
      until: input({ id: "f-until", type: "datetime-local" }),
    };
    const results = h("div", { id: "audit-results" });
    const more = h("div", { class: "actions" });
    const apply = h("button", { type: "submit", id: "filter-audit" }, "Show events");
    const query = (cursor) => {
      const q = new URLSearchParams({ limit: "50" });
      for (const k of ["action", "actor", "target"]) if (f[k].value.trim()) q.set(k, f[k].value.trim());
      for (const k of ["since", "until"]) if (f[k].value) q.set(k, new Date(f[k].value).toISOString());
      if (cursor) q.set("cursor", cursor);
      return q;
    };
    const rowsOf = (events) => events.map((e) => [when(e.time), h("span", { class: "mono" }, e.action), h("span", { class: "mono" }, e.actor), h("span", { class: "mono" }, e.target), h("span", { class: "mono" }, e.summary && Object.keys(e.summary).length ? JSON.stringify(e.summary) : "—")]);
    const load = async (cursor) => {
      const r = await api("GET", `${T(tid)}/audit?${query(cursor)}`);
      if (cursor) {
        const tbody = $("tbody", results);
        for (const cells of rowsOf(r.events)) tbody.append(row(AUDIT_COLUMNS, cells));
      } else {
        results.replaceChildren(table(AUDIT_COLUMNS, rowsOf(r.events)));
      }
      more.replaceChildren();
      if (r.cursor) {
        const next = h("button", { type: "button", class: "secondary", id: "older-events" }, "Older events");
        next.addEventListener("click", () => busy(next, err, () => load(r.cursor)));
        more.append(next);
      }
    };
    const form = h("form", { novalidate: true, "aria-label": "Filter the audit log" },
      h("div", { class: "row" },
        field("Action (exact, or a prefix ending in .)", f.action),
        field("Actor", f.actor),
        field("Target", f.target),
      ),
      h("div", { class: "row" }, field("Since", f.since), field("Until", f.until), apply),
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      busy(apply, err, () => load(null));
    });
    const progress = progressLine();
    const exportButton = h("button", { type: "button", class: "secondary", id: "export-audit" }, "Export the log (NDJSON)");
    exportButton.addEventListener("click", () =>
      busy(exportButton, null, async () => {
        try {
          progress.step("Exporting events, sealed entries and signed checkpoints…");
          const text = await api("GET", `${T(tid)}/audit/export`, undefined, { raw: true });
          const lines = text.split("\n").filter(Boolean).length;
          download(`latchkey-audit-${tid}.ndjson`, text, "application/x-ndjson");
          progress.done(`Export ready: ${lines.toLocaleString()} lines, saved as latchkey-audit-${tid}.ndjson. Check it offline with infra/audit/verify_export.py.`);
        } catch (e) {
          progress.fail(e);
        }
      }),
    );
    view(
      "Audit log",
      h("h2", {}, "Tamper evidence"),
      stateArea,
      h("div", { class: "actions" }, verifyButton, exportButton),
      progress,
      h("h2", {}, "Events"),
      form,
      err,
      results,
      more,
    );
    await Promise.all([doVerify(), busy(null, err, () => load(null))]);
  }

  // ---- support access ----
  async function supportPage(tid) {
    const { grants } = await api("GET", `${T(tid)}/grants`);
    const err = alertBox();
    const scope = select([["read", "Read: see settings, users and the audit log"], ["configuration", "Configuration: read, and change settings"]], "read", { id: "grant-scope" });
    const hours = input({ id: "grant-hours", type: "number", min: 1, max: 168, value: "4", inputmode: "numeric" });
    const reason = input({ id: "grant-reason", autocomplete: "off" });
    const hoursField = field("Hours", hours, "From 1 to 168 (a week).");
    const reasonField = field("Reason", reason, "Recorded with the grant and in the audit log, e.g. a support ticket.");
    const grant = h("button", { type: "submit", id: "grant-access" }, "Grant support access");
    const form = h("form", { novalidate: true, "aria-labelledby": "grant-title" },
      h("h2", { id: "grant-title" }, "Grant access"),
      h("div", { class: "row" }, field("Scope", scope), hoursField),
      reasonField,
      h("div", { class: "actions" }, grant),
      err,
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const n = Number(hours.value);
      const badHours = !Number.isInteger(n) || n < 1 || n > 168;
      hoursField.setError(badHours ? "A whole number of hours from 1 to 168." : "");
      reasonField.setError(reason.value.trim() ? "" : "Say why: it is kept with the grant.");
      if (badHours) return hours.focus();
      if (!reason.value.trim()) return reason.focus();
      busy(grant, err, async () => {
        await api("POST", `${T(tid)}/grants`, { scope: scope.value, hours: n, reason: reason.value.trim() });
        notify("Support access granted.");
        await supportPage(tid);
      });
    });
    const rows = grants.map((g) => {
      const cells = [g.scope, g.reason, h("span", { class: "mono" }, g.createdBy), when(g.createdAt), when(g.expiresAt), h("span", { class: `state ${g.state === "live" ? "good" : "bad"}` }, g.state)];
      if (g.state === "live") {
        const revoke = h("button", { type: "button", class: "danger", "aria-label": `Revoke the grant: ${g.reason}` }, "Revoke");
        revoke.addEventListener("click", () =>
          busy(revoke, err, async () => {
            await api("DELETE", `${T(tid)}/grants/${encodeURIComponent(g.id)}`);
            notify("Support access revoked: refused from the next request.");
            await supportPage(tid);
          }),
        );
        cells.push(revoke);
      } else cells.push("");
      return cells;
    });
    view(
      "Support access",
      h("p", {}, "Latchkey's operators can see your tenant only under a grant you give, for the scope and time you choose; everything they do is in your audit log."),
      table(["Scope", "Reason", "Granted by", "Granted", "Expires", "State", ""], rows),
      form,
    );
  }

  // ---- admins and invites ----
  function inviteLink(token) {
    return `${location.origin}/console#/accept/${token}`;
  }

  async function membersPage(tid) {
    const [{ members }, { invites }] = await Promise.all([api("GET", `${T(tid)}/members`), api("GET", `${T(tid)}/invites`)]);
    const err = alertBox();
    const shown = h("div", { id: "invite-area" });
    const showInvite = (r, title) =>
      revealOnce("invite-area", title, inviteLink(r.invite), `One-time link, good until ${when(r.expiresAt)}. Send it to the person over a channel you trust.`);
    const memberRows = members.map((m) => {
      const buttons = h("div", { class: "actions" });
      if (m.accountId !== state.me.account.id) {
        const recover = h("button", { type: "button", class: "secondary", "aria-label": `Recovery link for ${m.accountId}` }, "Recovery link");
        recover.addEventListener("click", () =>
          busy(recover, err, async () => showInvite(await api("POST", `${T(tid)}/members/${encodeURIComponent(m.accountId)}/recovery`, {}), "Recovery link (registers a new passkey, retires the old ones)")));
        const remove = h("button", { type: "button", class: "danger", "aria-label": `Remove ${m.accountId}` }, "Remove");
        remove.addEventListener("click", () =>
          busy(remove, err, async () => {
            await api("DELETE", `${T(tid)}/members/${encodeURIComponent(m.accountId)}`);
            notify("Removed.");
            await membersPage(tid);
          }));
        buttons.append(recover, remove);
      } else buttons.append("(you)");
      return [h("span", { class: "mono" }, m.accountId), m.role, when(m.since), buttons];
    });
    const inviteRows = invites.map((i) => {
      const revoke = h("button", { type: "button", class: "danger", "aria-label": `Revoke invite ${i.inviteId}` }, "Revoke");
      revoke.addEventListener("click", () =>
        busy(revoke, err, async () => {
          await api("DELETE", `${T(tid)}/invites/${encodeURIComponent(i.inviteId)}`);
          notify("Invite revoked.");
          await membersPage(tid);
        }));
      return [h("span", { class: "mono" }, i.inviteId), i.role, when(i.expiresAt), revoke];
    });
    const role = select([["viewer", "Viewer: reads everything"], ["admin", "Admin: keys, settings, users, members"], ["owner", "Owner: everything, deletion included"]], "viewer", { id: "invite-role" });
    const hours = input({ id: "invite-hours", type: "number", min: 1, max: 168, value: "24", inputmode: "numeric" });
    const hoursField = field("Good for (hours)", hours);
    const create = h("button", { type: "submit", id: "invite-member" }, "Create an invite link");
    const form = h("form", { novalidate: true, "aria-labelledby": "invite-title" },
      h("h2", { id: "invite-title" }, "Invite someone"),
      h("div", { class: "row" }, field("Role", role), hoursField, create),
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const n = Number(hours.value);
      const bad = !Number.isInteger(n) || n < 1 || n > 168;
      hoursField.setError(bad ? "A whole number of hours from 1 to 168." : "");
      if (bad) return hours.focus();
      busy(create, err, async () => {
        const r = await api("POST", `${T(tid)}/invites`, { role: role.value, hours: n });
        await membersPage(tid);
        showInvite(r, `Invite link for a new ${r.role}`);
      });
    });
    view(
      "Admins and invites",
      err,
      shown,
      h("h2", {}, "Members"),
      table(["Account", "Role", "Since", ""], memberRows),
      h("h2", {}, "Open invites"),
      table(["Invite", "Role", "Expires", ""], inviteRows),
      form,
    );
  }

  // ---------------------------------------------------------------------------------------
  // Operators
  // ---------------------------------------------------------------------------------------
  async function operatorPage() {
    chrome(null, "operator");
    const tenant = input({ id: "operator-tenant", autocomplete: "off", spellcheck: "false" });
    const tenantField = field("Tenant id", tenant, "You see a tenant only while it has granted support access; every request is in its audit log.");
    const open = h("button", { type: "submit", id: "open-tenant" }, "Open");
    const form = h("form", { novalidate: true, "aria-label": "Open a tenant" }, h("div", { class: "row" }, tenantField, open));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const t = tenant.value.trim();
      tenantField.setError(t ? "" : "Write the tenant id the customer gave you.");
      if (!t) return tenant.focus();
      go(`#/t/${encodeURIComponent(t)}/users`);
    });
    view("Open a tenant", h("p", {}, "As an operator you act on a customer's tenant under its support-access grant."), form);
  }

  const COMPONENT_STATUS = [["operational", "Operational"], ["degraded_performance", "Degraded performance"], ["partial_outage", "Partial outage"], ["major_outage", "Major outage"], ["under_maintenance", "Under maintenance"]];
  const INCIDENT_STATUS = [["investigating", "Investigating"], ["identified", "Identified"], ["monitoring", "Monitoring"], ["resolved", "Resolved"]];
  const IMPACT = [["none", "None"], ["minor", "Minor"], ["major", "Major"], ["critical", "Critical"]];

  async function statusPage() {
    chrome(null, "status");
    if (!state.me.account.operator) {
      view("Status page", h("div", { class: "alert", role: "alert" }, "Only operators manage the status page."));
      return;
    }
    const summary = await api("GET", "/status/api/v2/summary.json");
    const err = alertBox();
    const components = summary.components || [];
    const reload = () => statusPage();

    const cName = input({ id: "component-name" });
    const cField = field("Component name", cName);
    const cButton = h("button", { type: "submit", id: "add-component" }, "Add component");
    const cForm = h("form", { novalidate: true, "aria-labelledby": "c-title" }, h("h2", { id: "c-title" }, "Add a component"), h("div", { class: "row" }, cField, cButton));
    cForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      cField.setError(cName.value.trim() ? "" : "A component needs a name.");
      if (!cName.value.trim()) return cName.focus();
      busy(cButton, err, async () => {
        await api("POST", "/status/manage/components", { name: cName.value.trim() }, { idempotent: true });
        notify("Component added.");
        await reload();
      });
    });

    const iName = input({ id: "incident-name" });
    const iBody = h("textarea", { id: "incident-body" });
    const iImpact = select(IMPACT, "minor", { id: "incident-impact" });
    const iComponent = select([["", "No component"], ...components.map((c) => [c.id, c.name])], "", { id: "incident-component" });
    const iCStatus = select(COMPONENT_STATUS, "partial_outage", { id: "incident-component-status" });
    const iNameField = field("Title", iName);
    const iBodyField = field("First update (public)", iBody);
    const iButton = h("button", { type: "submit", id: "open-incident" }, "Open incident");
    const iForm = h("form", { novalidate: true, "aria-labelledby": "i-title" },
      h("h2", { id: "i-title" }, "Open an incident"),
      iNameField,
      h("div", { class: "row" }, field("Impact", iImpact), field("Component", iComponent), field("Component's status", iCStatus)),
      iBodyField,
      h("div", { class: "actions" }, iButton),
    );
    iForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      iNameField.setError(iName.value.trim() ? "" : "An incident needs a title.");
      iBodyField.setError(iBody.value.trim() ? "" : "Say what is happening.");
      if (!iName.value.trim()) return iName.focus();
      if (!iBody.value.trim()) return iBody.focus();
      busy(iButton, err, async () => {
        const body = { name: iName.value.trim(), impact: iImpact.value, body: iBody.value.trim(), components: iComponent.value ? { [iComponent.value]: iCStatus.value } : {} };
        await api("POST", "/status/manage/incidents", body, { idempotent: true });
        notify("Incident opened; subscribers are notified.");
        await reload();
      });
    });

    const incidents = (summary.incidents || []).map((i) => {
      const status = select(INCIDENT_STATUS, i.status, { "aria-label": `New status for ${i.name}` });
      const text = input({ "aria-label": `Update for ${i.name}` });
      const post = h("button", { type: "button", class: "secondary" }, "Post update");
      post.addEventListener("click", () =>
        busy(post, err, async () => {
          if (!text.value.trim()) throw new Error("Write the update first.");
          await api("POST", `/status/manage/incidents/${encodeURIComponent(i.id)}/updates`, { status: status.value, body: text.value.trim() }, { idempotent: true });
          notify("Update posted.");
          await reload();
        }));
      return [i.name, i.status, i.impact, when(i.updated_at || i.created_at), h("div", { class: "row" }, status, text, post)];
    });

    const mName = input({ id: "maint-name" });
    const mBody = input({ id: "maint-body" });
    const mFrom = input({ id: "maint-from", type: "datetime-local" });
    const mUntil = input({ id: "maint-until", type: "datetime-local" });
    const mNameField = field("Title", mName);
    const mFromField = field("From", mFrom);
    const mUntilField = field("Until", mUntil);
    const mButton = h("button", { type: "submit", id: "schedule-maintenance" }, "Schedule");
    const mForm = h("form", { novalidate: true, "aria-labelledby": "m-title" },
      h("h2", { id: "m-title" }, "Schedule maintenance"),
      mNameField, field("Details (public)", mBody),
      h("div", { class: "row" }, mFromField, mUntilField, mButton),
    );
    mForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      mNameField.setError(mName.value.trim() ? "" : "A maintenance needs a title.");
      mFromField.setError(mFrom.value ? "" : "When it starts.");
      mUntilField.setError(!mUntil.value ? "When it ends." : mFrom.value && new Date(mUntil.value) <= new Date(mFrom.value) ? "It must end after it starts." : "");
      if (!mName.value.trim() || !mFrom.value || !mUntil.value || new Date(mUntil.value) <= new Date(mFrom.value)) return;
      busy(mButton, err, async () => {
        await api("POST", "/status/manage/maintenances", { name: mName.value.trim(), body: mBody.value.trim() || mName.value.trim(), scheduled_for: new Date(mFrom.value).toISOString(), scheduled_until: new Date(mUntil.value).toISOString() }, { idempotent: true });
        notify("Maintenance scheduled.");
        await reload();
      });
    });

    view(
      "Status page",
      h("p", {}, "What the public status page shows (", h("a", { href: "/status" }, "open it"), "): ", h("span", { class: "state" }, (summary.status && summary.status.description) || "—"), "."),
      err,
      h("h2", {}, "Components"),
      table(["Component", "Status"], components.map((c) => [c.name, c.status])),
      cForm,
      h("h2", {}, "Open incidents"),
      table(["Incident", "Status", "Impact", "Updated", "Post an update"], incidents),
      iForm,
      h("h2", {}, "Scheduled maintenance"),
      table(["Maintenance", "Status", "From", "Until"], (summary.scheduled_maintenances || []).map((m) => [m.name, m.status, when(m.scheduled_for), when(m.scheduled_until)])),
      mForm,
    );
  }

  window.addEventListener("hashchange", render);
  if (!location.hash) history.replaceState(null, "", "#/");
  render();
})();
