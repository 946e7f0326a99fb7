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
    let gateway = latchkey_local::gateway(services.clone(), signer(), Default::default());
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

/// The URLs answers carry come from the configured public base, never from `Host` or
/// `X-Forwarded-Host`: a cacheable status body and track's `url` are the same whoever asks,
/// so a shared cache cannot be poisoned with a host the attacker named.
#[tokio::test]
async fn public_urls_come_from_configuration_not_from_the_host_header() {
    let w = World::setup().build().await;
    let base = "https://latchkey.example.net";
    let app = latchkey_local::gateway(
        w.services.clone(),
        signer(),
        latchkey::http::HttpSettings {
            public_base: latchkey::http::PublicBase::parse(base).unwrap(),
            ..latchkey::http::HttpSettings::default()
        },
    );
    let evil = |req: http::request::Builder| {
        req.header(header::HOST, "evil.example")
            .header("x-forwarded-host", "evil.example")
            .header("x-forwarded-proto", "http")
    };
    let plain = send(app.clone(), get("/status/api/v2/summary.json")).await;
    let poisoned = send(
        app.clone(),
        evil(Request::get("/status/api/v2/summary.json"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(plain.0, StatusCode::OK);
    assert_eq!(plain.2["page"]["url"], format!("{base}/status"));
    assert_eq!(poisoned.2, plain.2, "the body does not depend on the host");
    assert_eq!(poisoned.1[header::ETAG], plain.1[header::ETAG]);
    for path in ["/status", "/status/feed.atom"] {
        let r = Client::new(app.clone())
            .request(evil(Request::get(path)).body(Body::empty()).unwrap())
            .await;
        let text = String::from_utf8_lossy(&r.body).into_owned();
        assert!(!text.contains("evil.example"), "{path}");
    }

    let track = evil(Request::post("/v1/users/u-host/actions/signIn"))
        .header(header::AUTHORIZATION, w.server())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let (status, _, body) = send(app, track).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{base}/ui/challenge?token=")),
        "{url}"
    );
}

/// A DynamoDB endpoint that accepts connections and never answers (a hung dependency): the
/// SDK's timeouts (`latchkey::wiring::sdk_timeouts`) fail the call, and the request answers a
/// 503 in the wire format within a few seconds, not when its caller gives up.
#[tokio::test]
async fn a_hung_dynamodb_answers_503_in_the_wire_format_within_seconds() {
    use aws_sdk_dynamodb::config::{Credentials, Region};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            open.push(socket); // read nothing, answer nothing, close nothing
        }
    });
    let config = latchkey::wiring::aws_sdk_loader()
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(format!("http://{addr}")) // plain-http: a loopback test endpoint
        .load()
        .await;
    let store = latchkey::adapters::dynamodb::DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        "latchkey",
    );
    let w = World::setup().build().await;
    let services = Arc::new(Services::new(
        latchkey::domain::Ports {
            store: Arc::new(store),
            vault: w.services.vault.clone(),
            secrets: w.services.secrets.clone(),
            clock: w.services.clock.clone(),
            random: w.services.random.clone(),
            mailer: w.services.mailer.clone(),
        },
        latchkey::domain::services::CachePolicy {
            ttl: time::Duration::minutes(5),
            capacity: 10,
        },
        latchkey::domain::limits::AnonymousLimits::default(),
    ));
    let app = latchkey_local::gateway(
        services.clone(),
        signer(),
        latchkey::http::HttpSettings::default(),
    );
    let req = Request::post("/v1/users/u1/actions/signIn")
        .header(header::AUTHORIZATION, w.server())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    // Without the timeouts the request never ends; the bound is three times the SDK's 4.5 s
    // operation timeout, for a loaded CI machine.
    let (status, headers, body) =
        tokio::time::timeout(std::time::Duration::from_secs(15), send(app, req))
            .await
            .expect("the request ended");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_wire_error(status, &headers, &body, "service_unavailable");
    held.abort();
}

/// `/health` checks what the function runs on: the store, the key vault and the secrets.
#[tokio::test]
async fn health_checks_the_store_the_keys_and_the_secrets() {
    let w = world().await;
    let app = latchkey_local::gateway(w.services.clone(), signer(), Default::default());
    let (status, headers, body) = send(app, get("/health")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(body["status"], "ok");
    assert_eq!(
        body["checks"],
        serde_json::json!({"store": "ok", "keys": "ok", "secrets": "ok"})
    );
}

/// A secrets file whose root secret cannot be read is a configuration error, which no retry
/// mends: `/health` and the log say so, and requests answer the wire 503 (not a 500).
#[tokio::test]
async fn a_malformed_secret_is_reported_as_misconfiguration_in_health_and_the_log() {
    let w = World::setup().build().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.json");
    std::fs::write(&file, r#"{"root": {"current": "not base64 at all!"}}"#).unwrap();
    let secrets = latchkey::adapters::local_secrets::LocalSecrets::new(
        Default::default(),
        Some(file),
        w.services.random.clone(),
    );
    let services = Arc::new(Services::new(
        latchkey::domain::Ports {
            store: w.services.store.clone(),
            vault: w.services.vault.clone(),
            secrets: Arc::new(secrets),
            clock: w.services.clock.clone(),
            random: w.services.random.clone(),
            mailer: w.services.mailer.clone(),
        },
        latchkey::domain::services::CachePolicy {
            ttl: time::Duration::minutes(5),
            capacity: 10,
        },
        latchkey::domain::limits::AnonymousLimits::default(),
    ));
    let captured = latchkey_tests::logs::capture();
    let app = latchkey_local::gateway(services.clone(), signer(), Default::default());

    let (status, _, body) = send(app.clone(), get("/health")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "misconfigured", "{body}");
    assert_eq!(body["checks"]["secrets"], "misconfigured");
    assert_eq!(body["checks"]["store"], "ok");

    let req = Request::post("/v1/users/u1/actions/signIn")
        .header(header::AUTHORIZATION, w.server())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let (status, headers, body) = send(app, req).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_wire_error(status, &headers, &body, "service_unavailable");

    let logs = captured.text();
    let flagged: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["fields"]["misconfigured"] == true || l["misconfigured"] == true)
        .collect();
    assert!(
        flagged.len() >= 2,
        "the health check and the request each log the misconfiguration: {logs}"
    );
    assert!(!logs.contains("not base64"), "no secret value in the log");
}

/// `/health` is public: its checks run at most every 10 s per instance, so polling it cannot
/// flood the store, KMS or Secrets Manager.
#[tokio::test]
async fn health_checks_run_at_most_every_ten_seconds() {
    let w = World::setup().no_tenant().record_port_calls().build().await;
    let app = latchkey_local::gateway(w.services.clone(), signer(), Default::default());
    let probes = |w: &World| {
        w.port_calls
            .as_ref()
            .unwrap()
            .take()
            .into_iter()
            .filter(|c| *c == "vault.probe")
            .count()
    };
    probes(&w);
    for _ in 0..5 {
        let (status, _, _) = send(app.clone(), get("/health")).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(probes(&w), 1, "five requests, one check");
    w.clock.advance(time::Duration::seconds(11));
    send(app, get("/health")).await;
    assert_eq!(probes(&w), 1, "checked again once the 10 s have passed");
}

fn signer() -> std::sync::Arc<dyn latchkey::ports::signer::Signer> {
    std::sync::Arc::new(
        latchkey::adapters::local_signer::LocalSigner::ephemeral(
            &latchkey::ports::random::OsRandom,
        )
        .unwrap(),
    )
}
