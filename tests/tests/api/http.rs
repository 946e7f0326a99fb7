//! The HTTP layer end to end through the local gateway's router: wire errors, headers, request
//! ids, the body limit, and logs that never carry personal data or secrets.
use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::post;
use http::{Request, StatusCode, header};
use latchkey::Services;
use latchkey::domain::audit::AuditContext;
use latchkey::domain::tenants::{TenantSettings, create_api_key, create_tenant};
use latchkey::http::{ApiError, WireJson};
use latchkey_tests::{Client, World};
use serde_json::Value;
use std::sync::Arc;

/// Services with no tenant: the HTTP layer needs none.
async fn world() -> World {
    World::setup().no_tenant().build().await
}

async fn send(app: Router, req: Request<Body>) -> (StatusCode, http::HeaderMap, Value) {
    let r = Client::new(app).request(req).await;
    let body = r.json();
    (r.status, r.headers, body)
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn assert_wire_error(status: StatusCode, headers: &http::HeaderMap, body: &Value, code: &str) {
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "application/json",
        "exactly, no charset"
    );
    assert_eq!(body["error"], code, "{status} {body}");
    assert_eq!(body["errorCode"], code);
    assert!(
        body["errorDescription"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
}

#[tokio::test]
async fn health_answers_with_security_headers_and_a_request_id() {
    let w = world().await;
    let (status, headers, body) = send(w.app.clone(), get("/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert!(
        headers[header::STRICT_TRANSPORT_SECURITY]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let id = headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
}

#[tokio::test]
async fn every_function_serves_health() {
    let w = world().await;
    let s = &w.services;
    for app in [
        latchkey_auth::app(s.clone(), Default::default()),
        latchkey_client::app(s.clone(), Default::default()),
        latchkey_status::app(s.clone(), Default::default(), None),
    ] {
        let (status, _, body) = send(app, get("/health")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body["service"].as_str().unwrap().starts_with("latchkey-"));
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_get_wire_errors() {
    let w = world().await;
    let app = w.app.clone();
    let (status, headers, body) = send(app.clone(), get("/v1/nothing/here")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_wire_error(status, &headers, &body, "not_found");
    assert!(headers.contains_key("x-request-id"));
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");

    let req = Request::post("/health").body(Body::empty()).unwrap();
    let (status, headers, body) = send(app, req).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_wire_error(status, &headers, &body, "method_not_allowed");
}

#[tokio::test]
async fn a_caller_request_id_is_kept_only_when_it_is_a_plain_token() {
    let w = world().await;
    let app = w.app.clone();
    let req = Request::get("/health")
        .header("x-request-id", "abc-123_DEF-456")
        .body(Body::empty())
        .unwrap();
    let (_, headers, _) = send(app.clone(), req).await;
    assert_eq!(headers["x-request-id"], "abc-123_DEF-456");
    let req = Request::get("/health")
        .header("x-request-id", "a b\"c;d=e/f")
        .body(Body::empty())
        .unwrap();
    let (_, headers, _) = send(app, req).await;
    assert_ne!(headers["x-request-id"], "a b\"c;d=e/f");
}

fn echo_app(services: Arc<Services>) -> Router {
    #[derive(serde::Deserialize)]
    struct Body {
        email: String,
    }
    let routes = Router::new().route(
        "/v1/users/{user_id}",
        post(
            |Path(_user): Path<String>, WireJson(body): WireJson<Body>| async move {
                if body.email.is_empty() {
                    return Err(ApiError::invalid("email is required"));
                }
                Ok(axum::Json(serde_json::json!({"ok": true})))
            },
        ),
    );
    latchkey::http::service(
        routes,
        &services,
        latchkey::http::HttpSettings::default(),
        "test",
    )
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_whether_declared_or_not() {
    let w = world().await;
    let app = echo_app(w.services.clone());
    let big = vec![b' '; 70 * 1024];
    let declared = Request::post("/v1/users/u1")
        .header(header::CONTENT_LENGTH, big.len())
        .body(Body::from(big.clone()))
        .unwrap();
    let (status, headers, body) = send(app.clone(), declared).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_wire_error(status, &headers, &body, "payload_too_large");

    // No Content-Length: the stream itself is cut at the limit.
    let stream = futures_stream(big);
    let undeclared = Request::post("/v1/users/u1").body(stream).unwrap();
    let (status, _, _) = send(app.clone(), undeclared).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let bad = Request::post("/v1/users/u1")
        .body(Body::from("{not json"))
        .unwrap();
    let (status, headers, body) = send(app.clone(), bad).await;
    assert_wire_error(status, &headers, &body, "invalid_request");
    let ok = Request::post("/v1/users/u1")
        .body(Body::from(r#"{"email":"a@b.c","extra":1}"#))
        .unwrap();
    assert_eq!(send(app, ok).await.0, StatusCode::OK);
}

fn futures_stream(bytes: Vec<u8>) -> Body {
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = bytes
        .chunks(4096)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    Body::from_stream(tokio_stream_iter(chunks))
}

fn tokio_stream_iter<T: Send + Unpin + 'static>(
    items: Vec<T>,
) -> impl futures_core::Stream<Item = T> + Send {
    struct Iter<T>(std::vec::IntoIter<T>);
    impl<T: Unpin> futures_core::Stream for Iter<T> {
        type Item = T;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<T>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Iter(items.into_iter())
}

#[tokio::test]
async fn logs_of_a_request_carry_neither_email_nor_secret_key() {
    let w = world().await;
    let services = w.services.clone();
    let ctx = AuditContext::system("test", "r1");
    let settings = TenantSettings {
        name: "Acme".into(),
        rp_id: "localhost".into(),
        allowed_origins: vec!["http://localhost:*".into()],
        ..Default::default()
    };
    create_tenant(&services, &ctx, "t-logs", settings, vec![])
        .await
        .unwrap();
    let (_, secret) = create_api_key(&services, &ctx, "t-logs", None)
        .await
        .unwrap();
    let email = "jane.doe@example.com";
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{secret}:"));

    // This test's own log lines (its thread's), through the process's one JSON subscriber.
    let captured = latchkey_tests::logs::capture();

    let app = echo_app(services.clone());
    let gateway = latchkey_local::gateway(services, Default::default());
    let requests = [
        (app.clone(), format!(r#"{{"email":"{email}"}}"#)),
        (app.clone(), r#"{"email":""}"#.to_owned()),
        (app, format!(r#"{{"email": 42, "note": "{email}"}}"#)),
        (gateway, format!(r#"{{"email":"{email}"}}"#)),
    ];
    for (router, body) in requests {
        let req = Request::post(format!("/v1/users/{email}"))
            .header(header::AUTHORIZATION, format!("Basic {basic}"))
            .header("x-api-key", secret.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        let (status, _, body) = send(router, req).await;
        assert!(
            !body.to_string().contains(email),
            "{status} error body echoes the email"
        );
    }

    let logs = captured.text();
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.len() >= 4,
        "one JSON line per request at least:\n{logs}"
    );
    assert!(
        logs.contains("/v1/users/{user_id}"),
        "the route template is logged:\n{logs}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l["span"]["request_id"].is_string() || l.get("request_id").is_some()),
        "{logs}"
    );
    for needle in [
        email,
        "jane.doe",
        secret.as_str(),
        basic.as_str(),
        "example.com",
    ] {
        assert!(!logs.contains(needle), "logs contain {needle:?}:\n{logs}");
    }
}
