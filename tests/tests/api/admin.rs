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
        Cred::Cookie(c) => req = req.header(header::COOKIE, format!("lk_session={c}")),
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
        .strip_prefix("lk_session=")
        .unwrap()
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
const MATRIX: [(&str, &str, &str); 27] = [
    ("GET",    "/v1/admin/session",                                    "vaoxprce"),
    ("POST",   "/v1/admin/session/reauth",                             "vaoxprce"),
    ("POST",   "/v1/admin/session/invites",                            "vaoxprce"),
    ("GET",    "/v1/admin/tenants",                                    "vaoxprce"),
    ("GET",    "/v1/admin/tenants/{tenantId}",                         "vaorckK"),
    ("PATCH",  "/v1/admin/tenants/{tenantId}",                         "aocK"),
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
    ("DELETE", "/v1/admin/tenants/{tenantId}/members/{accountId}",     "ao"),
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
        "/v1/admin/tenants/{tenantId}/invites" => {
            (t("/invites"), Some(json!({ "role": "viewer" })), ok)
        }
        "/v1/admin/tenants/{tenantId}/members/{accountId}" => {
            (t("/members/acct_nobody"), None, StatusCode::NOT_FOUND)
        }
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
