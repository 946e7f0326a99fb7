//! The management API (`/v1/admin`) through the local gateway: people sign in with a software
//! passkey through the Client API on the console tenant, as the console will; the
//! authorization matrix is walked cell by cell; the flow of issue #15's "done when" end to end.
use crate::passkeys::{Passkeys as _, credential_id_of, with_user_handle};
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use latchkey::domain::admin::accounts::{self, Invitee};
use latchkey::domain::admin::{Role, Scope, grants, keys};
use latchkey::domain::audit::AuditContext;
use latchkey::domain::tenants;
use latchkey_admin_api::{Need, TABLE};
use latchkey_tests::{ORIGIN, World, example_settings};
use serde_json::{Value, json};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

const CONSOLE: &str = "console";
const A: &str = "t-a";
const B: &str = "t-b";

fn ctx() -> AuditContext {
    AuditContext::system("test", "test-request")
}

async fn world() -> World {
    let w = World::setup()
        .tenant(A, example_settings("A"))
        .other_tenant(B, example_settings("B"))
        .build()
        .await;
    accounts::init_console(&w.services, &ctx(), CONSOLE, vec![ORIGIN.to_owned()])
        .await
        .unwrap();
    w
}

/// How a request authenticates.
#[derive(Clone, Debug)]
enum Cred {
    None,
    Cookie(String),
    Key(String),
}

/// A request to the gateway with the console's `Origin` (unless `origin` is `None`).
async fn call_with(
    w: &World,
    method: Method,
    uri: &str,
    cred: &Cred,
    body: Option<Value>,
    origin: Option<&str>,
) -> (StatusCode, Value, http::HeaderMap) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(o) = origin {
        req = req.header(header::ORIGIN, o);
    }
    match cred {
        Cred::None => {}
        // The console is on https://example.com: the cookie has the `__Host-` prefix.
        Cred::Cookie(c) => req = req.header(header::COOKIE, format!("__Host-lk_session={c}")),
        Cred::Key(k) => req = req.header(header::AUTHORIZATION, format!("Bearer {k}")),
    }
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let r = w.request(req.body(body).unwrap()).await;
    (r.status, r.json(), r.headers)
}

async fn call(
    w: &World,
    method: Method,
    uri: &str,
    cred: &Cred,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (s, v, _) = call_with(w, method, uri, cred, body, Some(ORIGIN)).await;
    (s, v)
}

/// A person of the management plane: their passkey and their session.
struct Person {
    account: String,
    passkey: SoftPasskey,
    credential_id: String,
    handle: String,
    cookie: String,
}

fn session_cookie(headers: &http::HeaderMap) -> String {
    let set = headers
        .get(header::SET_COOKIE)
        .expect("a Set-Cookie")
        .to_str()
        .unwrap();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    // The console is on https://example.com here, not localhost: the cookie is Secure.
    assert!(set.contains("Secure"), "{set}");
    set.split(';')
        .next()
        .unwrap()
        .strip_prefix("__Host-lk_session=")
        .unwrap_or_else(|| panic!("{set}"))
        .to_owned()
}

/// Accepts an invite as someone not signed in: registers a passkey for the new account
/// through the Client API, then opens a session with the token and the invite.
async fn join(w: &World, invite: &str) -> Person {
    let (s, e) = call(
        w,
        Method::POST,
        "/v1/admin/invites/accept",
        &Cred::None,
        Some(json!({ "invite": invite })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["consoleTenantId"], CONSOLE);
    let token = e["token"].as_str().unwrap();
    let mut passkey = SoftPasskey::new(true);
    let (registered, handle) = w.register(&mut passkey, token).await;
    let (s, session, headers) = call_with(
        w,
        Method::POST,
        "/v1/admin/session",
        &Cred::None,
        Some(json!({ "token": token, "invite": invite })),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(session["account"]["id"], e["accountId"]);
    Person {
        account: e["accountId"].as_str().unwrap().to_owned(),
        credential_id: credential_id_of(&registered),
        handle,
        passkey,
        cookie: session_cookie(&headers),
    }
}

/// Signs in again without typing a name: the console's usernameless passkey sign-in on the
/// console tenant, then the token to `POST /v1/admin/session`.
async fn sign_in(w: &World, p: &mut Person) {
    let basic = latchkey_tests::client::tenant_basic(CONSOLE);
    let (_, c) = w
        .post(
            &basic,
            "/v1/client/challenge",
            json!({ "action": accounts::SIGN_IN }),
        )
        .await;
    let (challenge, credential) = w
        .assertion(
            &basic,
            json!({ "challengeId": c["challengeId"] }),
            &mut p.passkey,
            Some(&p.credential_id.clone()),
        )
        .await;
    let (s, ok) = w
        .verify(
            &basic,
            &challenge,
            &with_user_handle(&credential, &p.handle),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{ok}");
    let (s, session, headers) = call_with(
        w,
        Method::POST,
        "/v1/admin/session",
        &Cred::None,
        Some(json!({ "token": ok["accessToken"] })),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(session["account"]["id"], json!(p.account));
    p.cookie = session_cookie(&headers);
}

async fn invite(w: &World, invitee: Invitee) -> String {
    accounts::create_invite(&w.services, &ctx(), invitee, 24)
        .await
        .unwrap()
        .1
}

async fn member(w: &World, tenant: &str, role: Role) -> Person {
    let token = invite(
        w,
        Invitee::Member {
            tenant_id: tenant.into(),
            role,
        },
    )
    .await;
    join(w, &token).await
}

/// The principals of the matrix, in its columns' order.
const PRINCIPALS: [&str; 11] = [
    "none",
    "viewer",
    "admin",
    "owner",
    "other tenant's owner",
    "operator, no grant",
    "operator, read grant",
    "operator, configuration grant",
    "operator, expired grant",
    "viewer key",
    "admin key",
];

/// Every `/v1/admin` route and who may call it, one letter per column of [`PRINCIPALS`]:
/// `n` none, `v` viewer, `a` admin, `o` owner, `x` another tenant's owner, `p` operator
/// without a grant, `r` with a read grant, `c` with a configuration grant, `e` with an expired
/// grant, `k` viewer key, `K` admin key. Written out here, not derived from the code's model:
/// a change to who may do what must change this table.
#[rustfmt::skip]
const MATRIX: [(&str, &str, &str); 32] = [
    ("GET",    "/v1/admin/session",                                    "vaoxprce"),
    ("POST",   "/v1/admin/session/reauth",                             "vaoxprce"),
    ("POST",   "/v1/admin/session/invites",                            "vaoxprce"),
    ("GET",    "/v1/admin/tenants",                                    "vaoxprce"),
    ("GET",    "/v1/admin/tenants/{tenantId}",                         "vaorckK"),
    ("GET",    "/v1/admin/tenants/{tenantId}/overview",                "vaorckK"),
    ("PATCH",  "/v1/admin/tenants/{tenantId}",                         "aocK"),
    ("DELETE", "/v1/admin/tenants/{tenantId}",                         "o"),
    ("GET",    "/v1/admin/tenants/{tenantId}/keys",                    "vaorckK"),
    ("POST",   "/v1/admin/tenants/{tenantId}/keys",                    "aoK"),
    ("POST",   "/v1/admin/tenants/{tenantId}/keys/{keyId}/rotate",     "aoK"),
    ("DELETE", "/v1/admin/tenants/{tenantId}/keys/{keyId}",            "aoK"),
    ("GET",    "/v1/admin/tenants/{tenantId}/users",                   "vaorckK"),
    ("GET",    "/v1/admin/tenants/{tenantId}/users/{userId}",          "vaorckK"),
    ("DELETE", "/v1/admin/tenants/{tenantId}/users/{userId}",          "aoK"),
    ("POST",   "/v1/admin/tenants/{tenantId}/users/{userId}/export",   "aoK"),
    ("GET",    "/v1/admin/tenants/{tenantId}/audit",                   "vaorckK"),
    ("GET",    "/v1/admin/tenants/{tenantId}/audit/export",            "vaorckK"),
    ("GET",    "/v1/admin/tenants/{tenantId}/audit/verify",            "vaorckK"),
    ("GET",    "/v1/admin/tenants/{tenantId}/grants",                  "vaorckK"),
    ("POST",   "/v1/admin/tenants/{tenantId}/grants",                  "ao"),
    ("DELETE", "/v1/admin/tenants/{tenantId}/grants/{grantId}",        "ao"),
    ("GET",    "/v1/admin/tenants/{tenantId}/members",                 "vaorckK"),
    ("POST",   "/v1/admin/tenants/{tenantId}/invites",                 "ao"),
    ("GET",    "/v1/admin/tenants/{tenantId}/invites",                 "vaorckK"),
    ("DELETE", "/v1/admin/tenants/{tenantId}/invites/{inviteId}",      "ao"),
    ("DELETE", "/v1/admin/tenants/{tenantId}/members/{accountId}",     "ao"),
    ("POST",   "/v1/admin/tenants/{tenantId}/members/{accountId}/recovery", "aoc"),
    ("GET",    "/v1/admin/tenants/{tenantId}/management-keys",         "vaorckK"),
    ("POST",   "/v1/admin/tenants/{tenantId}/management-keys",         "ao"),
    ("DELETE", "/v1/admin/tenants/{tenantId}/management-keys/{keyId}", "ao"),
    // Last: it ends the column's session.
    ("DELETE", "/v1/admin/session",                                    "vaoxprce"),
];

const LETTERS: [char; 11] = ['n', 'v', 'a', 'o', 'x', 'p', 'r', 'c', 'e', 'k', 'K'];

/// The request a cell sends: a real target where the route changes one (made afresh for the
/// cell, so an allowed cell succeeds and the next finds its own), and the status an allowed
/// caller gets.
async fn request_for(
    w: &World,
    method: &str,
    path: &str,
    cell: usize,
) -> (Method, String, Option<Value>, StatusCode) {
    let ok = StatusCode::OK;
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let t = |rest: &str| format!("/v1/admin/tenants/{A}{rest}");
    let fresh_key = || async {
        tenants::create_api_key(&w.services, &ctx(), A, None)
            .await
            .unwrap()
            .0
    };
    let (uri, body, want) = match path {
        "/v1/admin/session" | "/v1/admin/tenants" | "/v1/admin/session/reauth" => {
            (path.to_owned(), None, ok)
        }
        "/v1/admin/session/invites" => {
            // A tenant of its own: one person (the operator) fills several columns.
            let joined = format!("t-join-{cell}");
            tenants::create_tenant(&w.services, &ctx(), &joined, example_settings("J"), vec![])
                .await
                .unwrap();
            let token = invite(
                w,
                Invitee::Member {
                    tenant_id: joined,
                    role: Role::Viewer,
                },
            )
            .await;
            (path.to_owned(), Some(json!({ "invite": token })), ok)
        }
        "/v1/admin/tenants/{tenantId}" if method == Method::PATCH => {
            (t(""), Some(json!({ "name": format!("A {cell}") })), ok)
        }
        // Without the fresh passkey check's token: an allowed caller is told the body is
        // incomplete (400), a refused one is refused first (the check runs before the body).
        "/v1/admin/tenants/{tenantId}" if method == Method::DELETE => {
            (t(""), Some(json!({})), StatusCode::BAD_REQUEST)
        }
        "/v1/admin/tenants/{tenantId}" => (t(""), None, ok),
        "/v1/admin/tenants/{tenantId}/keys" if method == Method::POST => {
            (t("/keys"), Some(json!({})), ok)
        }
        "/v1/admin/tenants/{tenantId}/keys/{keyId}/rotate" => (
            t(&format!("/keys/{}/rotate", fresh_key().await)),
            Some(json!({ "overlapHours": 1 })),
            ok,
        ),
        "/v1/admin/tenants/{tenantId}/keys/{keyId}" => {
            (t(&format!("/keys/{}", fresh_key().await)), None, ok)
        }
        "/v1/admin/tenants/{tenantId}/users/{userId}" if method == Method::DELETE => {
            let user = format!("gone-{cell}");
            w.track(&user, "signIn").await;
            (t(&format!("/users/{user}")), None, ok)
        }
        "/v1/admin/tenants/{tenantId}/users/{userId}" => (t("/users/u1"), None, ok),
        "/v1/admin/tenants/{tenantId}/users/{userId}/export" => {
            (t("/users/u1/export"), Some(json!({})), ok)
        }
        "/v1/admin/tenants/{tenantId}/grants" if method == Method::POST => (
            t("/grants"),
            Some(json!({ "scope": "read", "hours": 1, "reason": "matrix" })),
            ok,
        ),
        // No such grant: an allowed caller learns that; creating one would let operators in.
        "/v1/admin/tenants/{tenantId}/grants/{grantId}" => {
            (t("/grants/00000000deadbeef"), None, StatusCode::NOT_FOUND)
        }
        "/v1/admin/tenants/{tenantId}/invites" if method == Method::POST => {
            (t("/invites"), Some(json!({ "role": "viewer" })), ok)
        }
        "/v1/admin/tenants/{tenantId}/invites" => (t("/invites"), None, ok),
        // A real open invite per cell: an allowed caller revokes it.
        "/v1/admin/tenants/{tenantId}/invites/{inviteId}" => {
            let (info, _) = accounts::create_invite(
                &w.services,
                &ctx(),
                Invitee::Member {
                    tenant_id: A.into(),
                    role: Role::Viewer,
                },
                1,
            )
            .await
            .unwrap();
            (t(&format!("/invites/{}", info.invite_id)), None, ok)
        }
        "/v1/admin/tenants/{tenantId}/members/{accountId}" => {
            (t("/members/acct_nobody"), None, StatusCode::NOT_FOUND)
        }
        "/v1/admin/tenants/{tenantId}/members/{accountId}/recovery" => (
            t("/members/acct_nobody/recovery"),
            Some(json!({})),
            StatusCode::NOT_FOUND,
        ),
        "/v1/admin/tenants/{tenantId}/management-keys" if method == Method::POST => (
            t("/management-keys"),
            Some(json!({ "role": "viewer", "name": format!("cell {cell}") })),
            ok,
        ),
        "/v1/admin/tenants/{tenantId}/management-keys/{keyId}" => {
            let (info, _) = keys::create(&w.services, &ctx(), A, Role::Viewer, "doomed", 1)
                .await
                .unwrap();
            (t(&format!("/management-keys/{}", info.key_id)), None, ok)
        }
        other => (other.replace("{tenantId}", A), None, ok),
    };
    (method, uri, body, want)
}

/// Every cell of [`MATRIX`]: a refused caller gets 401 (no credential) or 403, an allowed one
/// the route's answer.
#[tokio::test]
async fn every_route_and_principal_of_the_management_api() {
    let w = world().await;
    w.track("u1", "signIn").await;
    // Every route of the table (except the public ones, driven by the flow test) has a row
    // here, and every row is a route of the table.
    let mut guarded: Vec<(&str, &str)> = TABLE
        .iter()
        .filter(|(_, _, _, need)| *need != Need::Public)
        .map(|(_, m, p, _)| (*m, *p))
        .collect();
    let mut rows: Vec<(&str, &str)> = MATRIX.iter().map(|(m, p, _)| (*m, *p)).collect();
    guarded.sort();
    rows.sort();
    assert_eq!(guarded, rows, "the matrix and the route table differ");

    let viewer = member(&w, A, Role::Viewer).await;
    let admin = member(&w, A, Role::Admin).await;
    let owner = member(&w, A, Role::Owner).await;
    let other = member(&w, B, Role::Owner).await;
    let mut operator = join(&w, &invite(&w, Invitee::Operator).await).await;
    let (_, viewer_key) = keys::create(&w.services, &ctx(), A, Role::Viewer, "ci", 30)
        .await
        .unwrap();
    let (_, admin_key) = keys::create(&w.services, &ctx(), A, Role::Admin, "ci", 30)
        .await
        .unwrap();

    let mut problems = Vec::new();
    let mut cell = 0;
    // Columns in an order that lets each set its own grants up: the operator's last.
    for col in [0, 1, 2, 3, 4, 9, 10, 5, 6, 7, 8] {
        let letter = LETTERS[col];
        let cred = match letter {
            'n' => Cred::None,
            'v' => Cred::Cookie(viewer.cookie.clone()),
            'a' => Cred::Cookie(admin.cookie.clone()),
            'o' => Cred::Cookie(owner.cookie.clone()),
            'x' => Cred::Cookie(other.cookie.clone()),
            'k' => Cred::Key(viewer_key.clone()),
            'K' => Cred::Key(admin_key.clone()),
            _ => {
                // The operator: no grant, then a read grant, a configuration grant, and a
                // grant that has expired (its clock moved past it; signed in afresh).
                for g in grants::live(&w.services, A).await.unwrap() {
                    grants::revoke(&w.services, &ctx(), A, &g.id).await.unwrap();
                }
                match letter {
                    'r' => {
                        grants::create(&w.services, &ctx(), A, Scope::Read, 2, "matrix")
                            .await
                            .unwrap();
                    }
                    'c' => {
                        grants::create(&w.services, &ctx(), A, Scope::Configuration, 2, "m")
                            .await
                            .unwrap();
                    }
                    'e' => {
                        grants::create(&w.services, &ctx(), A, Scope::Configuration, 1, "m")
                            .await
                            .unwrap();
                        w.clock.advance(time::Duration::minutes(61));
                        sign_in(&w, &mut operator).await;
                    }
                    _ => {}
                }
                Cred::Cookie(operator.cookie.clone())
            }
        };
        for (method, path, allowed) in MATRIX {
            cell += 1;
            let (m, uri, body, want) = request_for(&w, method, path, cell).await;
            let (status, answer) = call(&w, m, &uri, &cred, body).await;
            let expected = if allowed.contains(letter) {
                want
            } else if letter == 'n' {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::FORBIDDEN
            };
            if status != expected {
                problems.push(format!(
                    "{method} {path} as {}: {status}, expected {expected}: {answer}",
                    PRINCIPALS[col]
                ));
            }
            if path == "/v1/admin/session" && method == "DELETE" && status == StatusCode::OK {
                // Signed out: the cookie is refused from now on.
                let (s, _) = call(&w, Method::GET, "/v1/admin/session", &cred, None).await;
                if s != StatusCode::UNAUTHORIZED {
                    problems.push(format!(
                        "{} still signed in after sign-out",
                        PRINCIPALS[col]
                    ));
                }
            }
        }
        // The DELETE /session row signed this column out: sign the next operator column in.
        if letter == 'p' || letter == 'r' || letter == 'c' {
            sign_in(&w, &mut operator).await;
        }
    }
    assert_eq!(problems, Vec::<String>::new(), "{} cells", cell);
}

/// Issue #15's flow on the embedded store: invite → the owner registers a passkey → signs out
/// and in again without a name → makes a secret key → changes a rule → a track with the new
/// key shows it → the audit log lists each change and verifies → the owner grants read access
/// → an operator reads users under it → the grant expires → the operator is refused.
#[tokio::test]
async fn invite_sign_in_configure_audit_and_support_access_end_to_end() {
    let w = world().await;
    // `latchkey-admin invite create --tenant t-a --role owner`.
    let first = invite(
        &w,
        Invitee::Member {
            tenant_id: A.into(),
            role: Role::Owner,
        },
    )
    .await;
    let mut owner = join(&w, &first).await;
    // The invite is spent.
    let (s, _) = call(
        &w,
        Method::POST,
        "/v1/admin/invites/accept",
        &Cred::None,
        Some(json!({ "invite": first })),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let me = Cred::Cookie(owner.cookie.clone());
    let (s, _) = call(&w, Method::DELETE, "/v1/admin/session", &me, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&w, Method::GET, "/v1/admin/session", &me, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "signed out server-side");
    sign_in(&w, &mut owner).await;
    let me = Cred::Cookie(owner.cookie.clone());
    let (s, mine) = call(&w, Method::GET, "/v1/admin/tenants", &me, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        mine["tenants"],
        json!([{ "tenantId": A, "name": "A", "role": "owner" }])
    );

    // A secret key, shown once, works with the Server API.
    let secret = new_secret_key(&w, &me, A).await;
    let server = latchkey_tests::client::basic(&secret);

    // A rule: withdrawals are blocked. The next track says so.
    let (s, updated) = call(
        &w,
        Method::PATCH,
        &format!("/v1/admin/tenants/{A}"),
        &me,
        Some(json!({ "actions": { "withdraw": { "defaultOutcome": "BLOCK" } } })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{updated}");
    let (s, tracked) = w
        .post(&server, "/v1/users/alice/actions/withdraw", json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{tracked}");
    assert_eq!(tracked["state"], "BLOCK");

    // The audit log lists each change, by the owner, and verifies once sealed.
    w.audit(A).await;
    let (s, log) = call(
        &w,
        Method::GET,
        &format!("/v1/admin/tenants/{A}/audit?actor=admin:{}", owner.account),
        &me,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let mut actions: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    // (Both at one instant of the test's clock: in no particular order.)
    actions.sort();
    assert_eq!(actions, ["api_key.create", "tenant.settings.update"]);
    let (s, verified) = call(
        &w,
        Method::GET,
        &format!("/v1/admin/tenants/{A}/audit/verify"),
        &me,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(verified["broken"], Value::Null, "{verified}");
    assert!(
        verified["signedThrough"].as_u64().unwrap() >= 3,
        "{verified}"
    );

    // An operator, refused until the owner grants read access for two hours.
    let operator = join(&w, &invite(&w, Invitee::Operator).await).await;
    let op = Cred::Cookie(operator.cookie.clone());
    let users = format!("/v1/admin/tenants/{A}/users");
    let (s, _) = call(&w, Method::GET, &users, &op, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, grant) = call(
        &w,
        Method::POST,
        &format!("/v1/admin/tenants/{A}/grants"),
        &me,
        Some(json!({ "scope": "read", "hours": 2, "reason": "ticket 42: sign-ins failing" })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{grant}");
    let (s, listed) = call(&w, Method::GET, &users, &op, None).await;
    assert_eq!(s, StatusCode::OK, "{listed}");
    assert_eq!(listed["users"][0]["userId"], "alice");
    // Reads only: the grant's scope.
    let (s, _) = call(
        &w,
        Method::PATCH,
        &format!("/v1/admin/tenants/{A}"),
        &op,
        Some(json!({ "name": "taken over" })),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The read is in the tenant's own log, naming the grant.
    let events = w.events(A).await;
    let access: Vec<_> = events
        .iter()
        .filter(|e| e.action == "support.access")
        .collect();
    assert_eq!(access.len(), 1, "the read");
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e.action == "support.refused")
        .collect();
    assert_eq!(refused.len(), 1, "the write the grant does not cover");
    assert_eq!(refused[0].actor, format!("operator:{}", operator.account));
    let grant_id = grant["id"].as_str().unwrap();
    assert!(
        access
            .iter()
            .all(|e| e.actor == format!("operator:{}/grant:{grant_id}", operator.account)),
        "{access:?}"
    );
    // The grant expires (the clock moves on): the operator, signed in again, is refused.
    w.clock.advance(time::Duration::minutes(121));
    let mut operator = operator;
    sign_in(&w, &mut operator).await;
    let (s, _) = call(
        &w,
        Method::GET,
        &users,
        &Cred::Cookie(operator.cookie.clone()),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    w.audit(A).await;
    assert_eq!(w.verify_log(A).await.broken, None);
}

/// Sessions: a state-changing request with the cookie needs the console's `Origin`; idle and
/// absolute expiry end a session; cookies of another kind of credential are refused.
#[tokio::test]
async fn sessions_expire_when_idle_or_old_and_need_the_consoles_origin_to_change_anything() {
    let w = world().await;
    let mut owner = member(&w, A, Role::Owner).await;
    let me = Cred::Cookie(owner.cookie.clone());
    let patch = format!("/v1/admin/tenants/{A}");
    let body = json!({ "name": "renamed" });
    for origin in [None, Some("https://evil.example"), Some("null")] {
        let (s, v, _) = call_with(&w, Method::PATCH, &patch, &me, Some(body.clone()), origin).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{origin:?}: {v}");
    }
    // Reads need no Origin.
    let (s, _, _) = call_with(&w, Method::GET, &patch, &me, None, None).await;
    assert_eq!(s, StatusCode::OK);
    // A management key is not a cookie: no Origin needed (no browser sends it).
    let (_, admin_key) = keys::create(&w.services, &ctx(), A, Role::Admin, "ci", 1)
        .await
        .unwrap();
    let (s, _, _) = call_with(
        &w,
        Method::PATCH,
        &patch,
        &Cred::Key(admin_key.clone()),
        Some(body.clone()),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    // Idle: used within 30 minutes it lives on; 30 minutes unused, it is gone.
    for _ in 0..3 {
        w.clock.advance(time::Duration::minutes(25));
        let (s, _) = call(&w, Method::GET, "/v1/admin/session", &me, None).await;
        assert_eq!(s, StatusCode::OK);
    }
    w.clock.advance(time::Duration::minutes(31));
    let (s, _) = call(&w, Method::GET, "/v1/admin/session", &me, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "idle");

    // Absolute: 12 hours whatever the use.
    sign_in(&w, &mut owner).await;
    let me = Cred::Cookie(owner.cookie.clone());
    for _ in 0..28 {
        w.clock.advance(time::Duration::minutes(25));
        let (s, _) = call(&w, Method::GET, "/v1/admin/session", &me, None).await;
        assert_eq!(s, StatusCode::OK);
    }
    w.clock.advance(time::Duration::minutes(25));
    let (s, _) = call(&w, Method::GET, "/v1/admin/session", &me, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "past 12 hours");

    // The management key expired after its one day; a tampered cookie is refused.
    w.clock.advance(time::Duration::hours(11));
    let (s, _) = call(&w, Method::GET, &patch, &Cred::Key(admin_key), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    sign_in(&w, &mut owner).await;
    let mut forged = owner.cookie.clone();
    forged.pop();
    forged.push('x');
    for cookie in [forged, owner.cookie.replace("lks_", "lki_")] {
        let (s, _) = call(
            &w,
            Method::GET,
            "/v1/admin/session",
            &Cred::Cookie(cookie),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
}

/// A console token is spent by one sign-in, must come from a passkey ceremony on the console
/// tenant, and an invite is single use and expires.
#[tokio::test]
async fn console_tokens_and_invites_open_one_session_each() {
    let w = world().await;
    let owner = member(&w, A, Role::Owner).await;
    // An open invite is listed (never its token) and, once revoked, opens nothing.
    let me = Cred::Cookie(owner.cookie.clone());
    let (info, revoked) = accounts::create_invite(
        &w.services,
        &ctx(),
        Invitee::Member {
            tenant_id: A.into(),
            role: Role::Viewer,
        },
        1,
    )
    .await
    .unwrap();
    let (s, listed) = call(
        &w,
        Method::GET,
        &format!("/v1/admin/tenants/{A}/invites"),
        &me,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        listed["invites"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["inviteId"] == json!(info.invite_id)),
        "{listed}"
    );
    assert!(!listed.to_string().contains("lki_"), "no token in the list");
    let uri = format!("/v1/admin/tenants/{A}/invites/{}", info.invite_id);
    let (s, _) = call(&w, Method::DELETE, &uri, &me, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(
        &w,
        Method::POST,
        "/v1/admin/invites/accept",
        &Cred::None,
        Some(json!({ "invite": revoked })),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // A token from the console's track that no ceremony answered opens nothing.
    let unproven = accounts::begin_reauth(
        &w.services,
        &accounts::authenticate(&w.services, &owner.cookie)
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    let (s, _) = call(
        &w,
        Method::POST,
        "/v1/admin/session",
        &Cred::None,
        Some(json!({ "token": unproven })),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // A customer tenant's token (a user of t-a who passed a passkey check there) is no
    // console token.
    let tracked = w.track("u1", "signIn").await;
    let (s, _) = call(
        &w,
        Method::POST,
        "/v1/admin/session",
        &Cred::None,
        Some(json!({ "token": tracked.token })),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // An expired invite.
    let late = invite(
        &w,
        Invitee::Member {
            tenant_id: A.into(),
            role: Role::Admin,
        },
    )
    .await;
    w.clock.advance(time::Duration::hours(25));
    let (s, _) = call(
        &w,
        Method::POST,
        "/v1/admin/invites/accept",
        &Cred::None,
        Some(json!({ "invite": late })),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Invites last at most 72 hours; management keys are never owners.
    assert!(
        accounts::create_invite(&w.services, &ctx(), Invitee::Operator, 73)
            .await
            .is_err()
    );
    assert!(
        keys::create(&w.services, &ctx(), A, Role::Owner, "root", 1)
            .await
            .is_err()
    );
}

/// The status page's write side takes an operator's passkey session (and its Origin check);
/// a member who is no operator is refused, and operator tokens expire.
#[tokio::test]
async fn operators_write_the_status_page_with_their_passkey_session() {
    let w = world().await;
    let operator = join(&w, &invite(&w, Invitee::Operator).await).await;
    let owner = member(&w, A, Role::Owner).await;
    let incident = |cookie: &str, origin: Option<&str>| {
        let mut req = Request::post("/status/manage/incidents")
            .header("idempotency-key", format!("key-{}", &cookie[4..20]))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::COOKIE, format!("__Host-lk_session={cookie}"));
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        req.body(Body::from(
            json!({ "name": "Elevated errors", "impact": "minor", "body": "Investigating." })
                .to_string(),
        ))
        .unwrap()
    };
    let r = w.request(incident(&operator.cookie, None)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no Origin: {}", r.text());
    let r = w.request(incident(&owner.cookie, Some(ORIGIN))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no operator: {}", r.text());
    let r = w.request(incident(&operator.cookie, Some(ORIGIN))).await;
    assert!(r.status.is_success(), "{} {}", r.status, r.text());
    let events = w.events(latchkey::domain::audit::PLATFORM_JOURNAL).await;
    assert!(
        events
            .iter()
            .any(|e| e.actor == format!("operator:{}", operator.account)
                && e.action.starts_with("status.")),
        "{events:?}"
    );

    let (_, token) =
        latchkey::domain::status::operators::create_operator(&w.services, &ctx(), "deploy bot", 1)
            .await
            .unwrap();
    let whoami = || {
        Request::get("/status/manage/whoami")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(w.request(whoami()).await.status, StatusCode::OK);
    w.clock.advance(time::Duration::hours(25));
    assert_eq!(w.request(whoami()).await.status, StatusCode::UNAUTHORIZED);
}

/// Tenant deletion on the embedded store, read raw: the owner's fresh passkey check is
/// required; the tenant's own key is destroyed first, so its wrapped data key (in the table or
/// any copy of it, as a backup holds) never unwraps again; no plaintext personal data is in the
/// table; the purge job then deletes every item of the tenant and leaves the other tenant be.
#[tokio::test]
async fn deleting_a_tenant_shreds_its_key_first_and_the_purge_job_deletes_its_items() {
    let w = World::setup()
        .tenant(A, example_settings("A"))
        .other_tenant(B, example_settings("B"))
        .on_disk()
        .build()
        .await;
    accounts::init_console(&w.services, &ctx(), CONSOLE, vec![ORIGIN.to_owned()])
        .await
        .unwrap();
    let mut owner = member(&w, A, Role::Owner).await;
    let admin = member(&w, A, Role::Admin).await;
    let email = "alice.shredded@example.org";
    let a_key = latchkey_tests::client::basic(w.key_of(A));
    let b_key = latchkey_tests::client::basic(w.key_of(B));
    for (key, user) in [(&a_key, "alice"), (&b_key, "bob")] {
        let (s, v) = w
            .send(
                Method::PATCH,
                Some(key),
                &format!("/v1/users/{user}"),
                Some(json!({ "email": email, "username": user })),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let scan = || async {
        let mut items = Vec::new();
        let mut cursor = None;
        loop {
            let page = w.services.store.scan(cursor, 500).await.unwrap();
            items.extend(page.items);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        items
    };
    // What a backup taken now would hold of the tenant: its record, with the wrapped key.
    let copy = tenants::get_tenant(&w.services, A).await.unwrap().unwrap();
    let kek = copy.data_key.kek.clone().expect("a key of its own");
    let context = latchkey::ports::keys::KeyContext::tenant(A);
    assert!(
        w.services
            .vault
            .decrypt_data_key(Some(&kek), &copy.data_key.bytes, &context)
            .await
            .is_ok()
    );

    let me = Cred::Cookie(owner.cookie.clone());
    let tenant_uri = format!("/v1/admin/tenants/{A}");
    // An admin may not; the owner needs a fresh passkey check, not just the session.
    let (s, _) = call(
        &w,
        Method::DELETE,
        &tenant_uri,
        &Cred::Cookie(admin.cookie.clone()),
        Some(json!({ "token": "x" })),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, stale) = call(&w, Method::POST, "/v1/admin/session/reauth", &me, None).await;
    let (s, _) = call(
        &w,
        Method::DELETE,
        &tenant_uri,
        &me,
        Some(json!({ "token": stale["token"] })),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a token no passkey answered");
    let (_, re) = call(&w, Method::POST, "/v1/admin/session/reauth", &me, None).await;
    let token = re["token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {token}");
    let credential_id = owner.credential_id.clone();
    let (challenge, credential) = w
        .assertion(&bearer, json!({}), &mut owner.passkey, Some(&credential_id))
        .await;
    let (s, v) = w
        .verify(
            &bearer,
            &challenge,
            &serde_json::to_value(&credential).unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, receipt) = call(
        &w,
        Method::DELETE,
        &tenant_uri,
        &me,
        Some(json!({ "token": token })),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{receipt}");
    assert_eq!(receipt["keyDestroyed"], true);

    // The copy's wrapped data key opens nowhere: every sealed field of it is unreadable.
    assert_eq!(
        w.services
            .vault
            .decrypt_data_key(Some(&kek), &copy.data_key.bytes, &context)
            .await
            .map(|_| ()),
        Err(latchkey::ports::keys::KeyError::Refused)
    );
    // The tenant is gone for every API at once.
    let (s, _) = w.get(&a_key, "/v1/users/alice").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(&w, Method::GET, &tenant_uri, &me, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // No plaintext personal data anywhere in the table (tenant b's is sealed too).
    let raw = scan().await;
    let text = serde_json::to_string(&raw.iter().map(|i| &i.attrs).collect::<Vec<_>>()).unwrap();
    assert!(
        !text.contains("alice.shredded"),
        "plaintext email in the table"
    );
    assert!(raw.iter().any(|i| i.pk.starts_with(&format!("T#{A}#"))));

    // The job deletes every item of the tenant; the tombstone and the receipt stay.
    let report = latchkey::domain::shred::purge(&w.services, &ctx())
        .await
        .unwrap();
    assert_eq!(report.tenants, vec![A.to_owned()]);
    assert!(report.items > 10, "{report:?}");
    let left: Vec<_> = scan()
        .await
        .into_iter()
        .filter(|i| {
            i.pk.starts_with(&format!("T#{A}#"))
                || i.sk == format!("T#{A}")
                || i.str("tenantId") == Some(A)
        })
        .map(|i| (i.pk, i.sk))
        .collect();
    assert_eq!(left, Vec::<(String, String)>::new());
    let tombstone = w
        .services
        .store
        .get(&format!("T#{A}"), "TENANT")
        .await
        .unwrap()
        .unwrap();
    assert!(tombstone.attrs.contains_key("deletedAt"));
    assert!(!tombstone.attrs.contains_key("dataKey"));
    let platform = w.events(latchkey::domain::audit::PLATFORM_JOURNAL).await;
    assert!(platform.iter().any(|e| e.action == "tenant.delete.begin"));
    assert!(platform.iter().any(|e| e.action == "tenant.delete"
        && e.target == format!("tenant:{A}")
        && e.id == receipt["receiptEvent"].as_str().unwrap()));
    // The marker stays for a scan after every process's caches expired (an item a stale
    // process wrote meanwhile goes too); then it goes.
    assert!(!platform.iter().any(|e| e.action == "tenant.purged"));
    let late = latchkey::ports::store::Item::new(format!("T#{A}#U#late"), "USER");
    w.services
        .store
        .put(late, latchkey::ports::store::Condition::None)
        .await
        .unwrap();
    w.clock.advance(time::Duration::minutes(11));
    let second = latchkey::domain::shred::purge(&w.services, &ctx())
        .await
        .unwrap();
    assert_eq!(second.items, 1, "{second:?}");
    let platform = w.events(latchkey::domain::audit::PLATFORM_JOURNAL).await;
    assert!(platform.iter().any(|e| e.action == "tenant.purged"));
    // The other tenant is untouched; its data opens as before; the id is not reusable.
    let (s, bob) = w.get(&b_key, "/v1/users/bob").await;
    assert_eq!((s, bob["email"].as_str()), (StatusCode::OK, Some(email)));
    assert!(
        tenants::create_tenant(&w.services, &ctx(), A, example_settings("again"), vec![])
            .await
            .is_err()
    );
    // Nothing left to purge.
    let again = latchkey::domain::shred::purge(&w.services, &ctx())
        .await
        .unwrap();
    assert_eq!(again.items, 0);
}

/// More passkeys, and recovery. A fresh passkey check lets the same console token enroll a
/// second passkey, which then signs in. A member who lost their passkeys gets a recovery invite
/// from an owner (or an operator under a configuration grant): it registers a new passkey for
/// the same account and retires the old ones. Owners are recovered only by owners, and an
/// account that is also another tenant's is never recovered from one tenant.
#[tokio::test]
async fn a_second_passkey_and_a_recovery_that_retires_the_lost_ones() {
    let w = world().await;
    let mut owner = member(&w, A, Role::Owner).await;
    let me = Cred::Cookie(owner.cookie.clone());

    // A second passkey, on a fresh check.
    let (_, re) = call(&w, Method::POST, "/v1/admin/session/reauth", &me, None).await;
    let bearer = format!("Bearer {}", re["token"].as_str().unwrap());
    let credential_id = owner.credential_id.clone();
    let (challenge, credential) = w
        .assertion(&bearer, json!({}), &mut owner.passkey, Some(&credential_id))
        .await;
    let (s, checked) = w
        .verify(
            &bearer,
            &challenge,
            &serde_json::to_value(&credential).unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // The token the check returned carries its fresh proof: it may enroll another passkey.
    let mut spare = SoftPasskey::new(true);
    let (registered, _) = w
        .register(&mut spare, checked["accessToken"].as_str().unwrap())
        .await;
    let mut second = Person {
        account: owner.account.clone(),
        credential_id: credential_id_of(&registered),
        handle: owner.handle.clone(),
        passkey: spare,
        cookie: String::new(),
    };
    sign_in(&w, &mut second).await;

    // An admin of this tenant only, who loses their passkey.
    let mut lost = member(&w, A, Role::Admin).await;
    let recovery = format!("/v1/admin/tenants/{A}/members/{}/recovery", lost.account);
    let (s, r) = call(&w, Method::POST, &recovery, &me, Some(json!({}))).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let recovery_invite = r["invite"].as_str().unwrap().to_owned();
    // Whoever held the lost passkey keeps no session past the recovery.
    let thief = Cred::Cookie(lost.cookie.clone());
    w.clock.advance(time::Duration::seconds(1));
    let (s, e) = call(
        &w,
        Method::POST,
        "/v1/admin/invites/accept",
        &Cred::None,
        Some(json!({ "invite": recovery_invite })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["accountId"], json!(lost.account), "the same account");
    let (s, _) = call(&w, Method::GET, "/v1/admin/session", &thief, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the old session is cut off");
    // The invite was spent by the claim: a second accept (that would wipe the new passkey)
    // is refused.
    let (s, _) = call(
        &w,
        Method::POST,
        "/v1/admin/invites/accept",
        &Cred::None,
        Some(json!({ "invite": recovery_invite })),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let token = e["token"].as_str().unwrap().to_owned();
    let mut found = SoftPasskey::new(true);
    let (registered, handle) = w.register(&mut found, &token).await;
    let (s, session, _) = call_with(
        &w,
        Method::POST,
        "/v1/admin/session",
        &Cred::None,
        Some(json!({ "token": token })),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(session["account"]["memberships"][A], "admin");
    // The claim is in the tenant's log, naming the account.
    assert!(w.events(A).await.iter().any(|e| e.action == "admin.recover"
        && e.target == format!("account:{}", lost.account)));
    // The old passkey is retired: a usernameless sign-in with it fails at verify.
    let basic = latchkey_tests::client::tenant_basic(CONSOLE);
    let (_, c) = w
        .post(
            &basic,
            "/v1/client/challenge",
            json!({ "action": accounts::SIGN_IN }),
        )
        .await;
    let old_id = lost.credential_id.clone();
    let (challenge, credential) = w
        .assertion(
            &basic,
            json!({ "challengeId": c["challengeId"] }),
            &mut lost.passkey,
            Some(&old_id),
        )
        .await;
    let (s, _) = w
        .verify(
            &basic,
            &challenge,
            &with_user_handle(&credential, &lost.handle),
        )
        .await;
    assert!(s.is_client_error(), "the lost passkey still signs in: {s}");
    let mut recovered = Person {
        account: lost.account.clone(),
        credential_id: credential_id_of(&registered),
        handle,
        passkey: found,
        cookie: String::new(),
    };
    sign_in(&w, &mut recovered).await;
    // The recovery is in the tenant's log.
    assert!(
        w.events(A)
            .await
            .iter()
            .any(|e| e.action == "admin.recover")
    );

    // An admin may not recover an owner; nobody recovers a two-tenant account from one tenant.
    let admin = Cred::Cookie(recovered.cookie.clone());
    let owners = format!("/v1/admin/tenants/{A}/members/{}/recovery", owner.account);
    let (s, _) = call(&w, Method::POST, &owners, &admin, Some(json!({}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let both = member(&w, A, Role::Viewer).await;
    let join = invite(
        &w,
        Invitee::Member {
            tenant_id: B.into(),
            role: Role::Viewer,
        },
    )
    .await;
    let (s, _) = call(
        &w,
        Method::POST,
        "/v1/admin/session/invites",
        &Cred::Cookie(both.cookie.clone()),
        Some(json!({ "invite": join })),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let uri = format!("/v1/admin/tenants/{A}/members/{}/recovery", both.account);
    let (s, v) = call(&w, Method::POST, &uri, &me, Some(json!({}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");

    // An operator under a configuration grant recovers a viewer; never an admin or an owner
    // (the invite goes to the operator, and an admin's rights exceed the grant).
    let viewer = member(&w, A, Role::Viewer).await;
    let operator = join_operator(&w).await;
    grants::create(
        &w.services,
        &ctx(),
        A,
        Scope::Configuration,
        2,
        "locked out",
    )
    .await
    .unwrap();
    let op = Cred::Cookie(operator.cookie.clone());
    let uri = format!("/v1/admin/tenants/{A}/members/{}/recovery", viewer.account);
    let (s, v) = call(&w, Method::POST, &uri, &op, Some(json!({}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let uri = format!(
        "/v1/admin/tenants/{A}/members/{}/recovery",
        recovered.account
    );
    let (s, _) = call(&w, Method::POST, &uri, &op, Some(json!({}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "an admin");
    let (s, _) = call(&w, Method::POST, &owners, &op, Some(json!({}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // A recovery invite made while the account was this tenant's alone is refused once the
    // account has joined another tenant (claiming it would hand that tenant over too).
    let (s, r) = call(
        &w,
        Method::POST,
        &format!("/v1/admin/tenants/{A}/members/{}/recovery", viewer.account),
        &me,
        Some(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let stale = r["invite"].as_str().unwrap().to_owned();
    let join_b = invite(
        &w,
        Invitee::Member {
            tenant_id: B.into(),
            role: Role::Owner,
        },
    )
    .await;
    let (s, _) = call(
        &w,
        Method::POST,
        "/v1/admin/session/invites",
        &Cred::Cookie(viewer.cookie.clone()),
        Some(json!({ "invite": join_b })),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(
        &w,
        Method::POST,
        "/v1/admin/invites/accept",
        &Cred::None,
        Some(json!({ "invite": stale })),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

async fn join_operator(w: &World) -> Person {
    let token = invite(w, Invitee::Operator).await;
    join(w, &token).await
}

/// Review findings, each a test: a cookie without the `__Host-` prefix (as a sibling
/// subdomain could plant) is ignored on an https console; a sign-in or invite accept posted
/// from another site's page is refused (login CSRF); the console tenant takes no secret key,
/// member or management key.
#[tokio::test]
async fn planted_cookies_cross_site_sign_ins_and_the_console_tenant_are_refused() {
    let w = world().await;
    let owner = member(&w, A, Role::Owner).await;
    let plain = Request::get("/v1/admin/session")
        .header(header::COOKIE, format!("lk_session={}", owner.cookie))
        .body(Body::empty())
        .unwrap();
    assert_eq!(w.request(plain).await.status, StatusCode::UNAUTHORIZED);
    let invite_token = invite(
        &w,
        Invitee::Member {
            tenant_id: A.into(),
            role: Role::Viewer,
        },
    )
    .await;
    for path in ["/v1/admin/invites/accept", "/v1/admin/session"] {
        let (s, v, _) = call_with(
            &w,
            Method::POST,
            path,
            &Cred::None,
            Some(json!({ "invite": invite_token, "token": "x" })),
            Some("https://evil.example"),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {v}");
    }
    assert!(
        tenants::create_api_key(&w.services, &ctx(), CONSOLE, None)
            .await
            .is_err()
    );
    assert!(
        keys::create(&w.services, &ctx(), CONSOLE, Role::Viewer, "x", 1)
            .await
            .is_err()
    );
    let console_member = Invitee::Member {
        tenant_id: CONSOLE.into(),
        role: Role::Owner,
    };
    assert!(
        accounts::create_invite(&w.services, &ctx(), console_member, 1)
            .await
            .is_err()
    );
}

/// Two owners removing each other through the API: one removal commits, the other is refused,
/// and the tenant keeps an owner. (This does not force the two transactions to interleave; the
/// case where both read two owners before either commits is what `remove_member`'s condition on
/// the other owners' entries is for.)
#[tokio::test]
async fn two_owners_removing_each_other_at_once_leave_one_owner() {
    let w = world().await;
    let x = member(&w, A, Role::Owner).await;
    let y = member(&w, A, Role::Owner).await;
    let remove = |by: &Person, whom: &Person| {
        let cred = Cred::Cookie(by.cookie.clone());
        let uri = format!("/v1/admin/tenants/{A}/members/{}", whom.account);
        let w = &w;
        async move { call(w, Method::DELETE, &uri, &cred, None).await.0 }
    };
    let (a, b) = tokio::join!(remove(&x, &y), remove(&y, &x));
    let mut statuses = [a, b];
    statuses.sort();
    assert_eq!(statuses[0], StatusCode::OK, "{statuses:?}");
    assert_ne!(statuses[1], StatusCode::OK, "{statuses:?}");
    let owners = accounts::members(&w.services, A)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.role == Role::Owner)
        .count();
    assert_eq!(owners, 1);
}

/// A store that, right after the first read of a tenant's member list, deletes one member's
/// entry, as another owner's removal committing at that moment would.
struct RemovedMeanwhile {
    inner: std::sync::Arc<dyn latchkey::ports::Store>,
    members_pk: String,
    doomed_sk: String,
    fired: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl latchkey::ports::Store for RemovedMeanwhile {
    async fn get(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<latchkey::ports::store::Item>, latchkey::ports::store::StoreError> {
        self.inner.get(pk, sk).await
    }
    async fn put(
        &self,
        item: latchkey::ports::store::Item,
        condition: latchkey::ports::store::Condition,
    ) -> Result<(), latchkey::ports::store::StoreError> {
        self.inner.put(item, condition).await
    }
    async fn delete(
        &self,
        pk: &str,
        sk: &str,
        condition: latchkey::ports::store::Condition,
    ) -> Result<Option<latchkey::ports::store::Item>, latchkey::ports::store::StoreError> {
        self.inner.delete(pk, sk, condition).await
    }
    async fn query(
        &self,
        query: latchkey::ports::store::Query,
    ) -> Result<latchkey::ports::store::Page, latchkey::ports::store::StoreError> {
        let members = query.pk == self.members_pk;
        let page = self.inner.query(query).await?;
        if members && !self.fired.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.inner
                .delete(
                    &self.members_pk,
                    &self.doomed_sk,
                    latchkey::ports::store::Condition::None,
                )
                .await?;
        }
        Ok(page)
    }
    async fn scan(
        &self,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<latchkey::ports::store::Page, latchkey::ports::store::StoreError> {
        self.inner.scan(cursor, limit).await
    }
    async fn transact(
        &self,
        ops: Vec<latchkey::ports::store::WriteOp>,
    ) -> Result<(), latchkey::ports::store::StoreError> {
        self.inner.transact(ops).await
    }
}

/// The interleaving itself: owner y's removal reads two owners, then owner x's entry goes (x
/// removed by a concurrent request) before y's removal commits. The removal is refused, so the
/// tenant keeps y as its owner; without the condition on the other owners' entries it would be
/// left with none.
#[tokio::test]
async fn an_owners_removal_racing_another_owners_is_refused() {
    let w = world().await;
    let x = member(&w, A, Role::Owner).await;
    let y = member(&w, A, Role::Owner).await;
    let store = std::sync::Arc::new(RemovedMeanwhile {
        inner: w.services.store.clone(),
        members_pk: accounts::members_pk(A),
        doomed_sk: format!("M#{}", x.account),
        fired: std::sync::atomic::AtomicBool::new(false),
    });
    let services = latchkey::domain::Services::new(
        latchkey::domain::Ports {
            store,
            vault: w.services.vault.clone(),
            secrets: w.services.secrets.clone(),
            clock: w.services.clock.clone(),
            random: w.services.random.clone(),
            mailer: w.services.mailer.clone(),
        },
        latchkey::domain::CachePolicy {
            ttl: time::Duration::minutes(5),
            capacity: 10,
        },
        latchkey::domain::limits::AnonymousLimits::default(),
    );
    let refused = accounts::remove_member(&services, &ctx(), A, &y.account).await;
    assert!(
        matches!(refused, Err(latchkey::domain::Error::Conflict(_))),
        "{refused:?}"
    );
    let owners: Vec<_> = accounts::members(&w.services, A)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.role == Role::Owner)
        .map(|m| m.account_id)
        .collect();
    assert_eq!(owners, vec![y.account.clone()]);
}

/// The console's overview: users, and actions tracked in the last 24 hours (from the audit
/// log), counted for the tenant alone; a viewer may read it, an operator without a grant not.
#[tokio::test]
async fn the_overview_counts_the_tenants_users_and_the_last_days_tracks() {
    let w = world().await;
    let owner = member(&w, A, Role::Owner).await;
    let me = Cred::Cookie(owner.cookie.clone());
    let (s, o) = overview(&w, me.clone(), A).await;
    assert_eq!(s, StatusCode::OK, "{o}");
    assert_eq!(
        (o["users"].clone(), o["actionsLast24h"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(o["rpId"], "example.com");

    let server = latchkey_tests::client::basic(&new_secret_key(&w, &me, A).await);
    for (user, action) in [
        ("alice", "signIn"),
        ("bob", "signIn"),
        ("alice", "withdraw"),
    ] {
        let (s, t) = w
            .post(
                &server,
                &format!("/v1/users/{user}/actions/{action}"),
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{t}");
    }
    let (_, o) = overview(&w, me.clone(), A).await;
    assert_eq!(
        (o["users"].clone(), o["actionsLast24h"].clone()),
        (json!(2), json!(3)),
        "{o}"
    );
    assert_eq!(
        (o["usersMore"].clone(), o["actionsMore"].clone()),
        (json!(false), json!(false))
    );
    // Another tenant's figures are its own.
    let other = member(&w, B, Role::Viewer).await;
    let (s, ob) = overview(&w, Cred::Cookie(other.cookie.clone()), B).await;
    assert_eq!(
        (s, ob["users"].clone(), ob["actionsLast24h"].clone()),
        (StatusCode::OK, json!(0), json!(0))
    );
    // A day later the tracks have left the window; the users remain.
    w.clock.advance(time::Duration::hours(25));
    let owner_again = member(&w, A, Role::Viewer).await;
    let (_, o) = overview(&w, Cred::Cookie(owner_again.cookie.clone()), A).await;
    assert_eq!(
        (o["users"].clone(), o["actionsLast24h"].clone()),
        (json!(2), json!(0)),
        "{o}"
    );
}

/// `/console` and its two files come from the admin function with the console's policy; the
/// page learns the console tenant from `GET /v1/admin/console` before anyone signs in.
#[tokio::test]
async fn the_console_is_served_with_its_policy_and_finds_its_tenant() {
    let w = world().await;
    for (uri, kind) in [
        ("/console", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/webauthn.js", "text/javascript"),
        ("/console/app.css", "text/css"),
    ] {
        let r = w
            .request(Request::builder().uri(uri).body(Body::empty()).unwrap())
            .await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        let header = |name: header::HeaderName| {
            r.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert!(header(header::CONTENT_TYPE).starts_with(kind), "{uri}");
        assert_eq!(
            header(header::CONTENT_SECURITY_POLICY),
            latchkey_admin_api::console::CSP,
            "{uri}"
        );
        assert_eq!(header(header::X_FRAME_OPTIONS), "DENY", "{uri}");
    }
    let page = w
        .request(
            Request::builder()
                .uri("/console")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .text();
    assert!(page.contains(r#"<script src="/console/app.js" defer></script>"#));
    let (s, info) = call(&w, Method::GET, "/v1/admin/console", &Cred::None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        info,
        json!({ "consoleTenantId": CONSOLE, "rpId": "example.com", "signInAction": accounts::SIGN_IN })
    );
}

async fn overview(w: &World, cred: Cred, tenant: &str) -> (StatusCode, Value) {
    let uri = format!("/v1/admin/tenants/{tenant}/overview");
    call(w, Method::GET, &uri, &cred, None).await
}

/// A new secret key of `tenant`, made through the management API by `cred`: its secret.
async fn new_secret_key(w: &World, cred: &Cred, tenant: &str) -> String {
    let (s, key) = call(
        w,
        Method::POST,
        &format!("/v1/admin/tenants/{tenant}/keys"),
        cred,
        Some(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{key}");
    key["secret"].as_str().unwrap().to_owned()
}
