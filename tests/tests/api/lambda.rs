//! One API Gateway HTTP API event (payload format 2.0), in the shape API Gateway hands it to the
//! function (`tests/fixtures/apigw-v2-post-track.json`: a server SDK's track call, Basic auth,
//! JSON body, the client's address in `requestContext.http.sourceIp`), through `lambda_http`'s
//! own conversions into the Server API function's router and back out as the response API
//! Gateway reads. This is what `lambda_http::run` does with each invocation, without the loop
//! that fetches invocations from the Lambda runtime API: the event deserialised as
//! `LambdaRequest`, turned into an `http::Request` by `lambda_http` (which puts the request
//! context in its extensions), and the router's answer turned into a `LambdaResponse` by
//! `lambda_http::Adapter`, the service `run` wraps the handler in.
use axum::Router;
use lambda_http::request::{LambdaRequest, RequestOrigin};
use lambda_http::{Adapter, Context, LambdaEvent};
use latchkey::http::HttpSettings;
use latchkey_tests::{TENANT, World, basic};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const EVENT: &str = include_str!("../../fixtures/apigw-v2-post-track.json");
/// The secret key whose Basic header the event carries.
const SECRET_KEY: &str = "lk_5e1f0c2a9b3d4e67_q7Lr2Wv9Xc4Tn8Bz1Hy6Kd3Mf5Gp0Sa7Je2Uw9Rt4V";
/// `requestContext.http.sourceIp`: the address that connected to API Gateway.
const SOURCE_IP: &str = "203.0.113.77";
/// The deployment's configured public URL (`LATCHKEY_PUBLIC_URL`); the event's `Host` header
/// names another host, `auth.example.com`.
const PUBLIC_URL: &str = "https://latchkey.example.net";

/// A world whose tenant holds the event's secret key, with the auth function's own router.
async fn auth_function() -> (World, Router) {
    let w = World::setup().secret_key(SECRET_KEY).build().await;
    let settings = HttpSettings {
        public_base: latchkey::http::PublicBase::parse(PUBLIC_URL).unwrap(),
        ..HttpSettings::default()
    };
    let app = latchkey_auth::app(w.services.clone(), settings);
    (w, app)
}

/// Invokes `app` with `event` as the Lambda runtime would hand it over; the response as the
/// JSON document API Gateway receives.
async fn invoke(app: Router, event: &str) -> Value {
    let payload: LambdaRequest = serde_json::from_str(event).unwrap();
    assert!(
        matches!(payload.request_origin(), RequestOrigin::ApiGatewayV2),
        "read as an HTTP API v2 event"
    );
    let response = Adapter::from(app)
        .oneshot(LambdaEvent::new(payload, Context::default()))
        .await
        .unwrap();
    serde_json::to_value(&response).unwrap()
}

#[tokio::test]
async fn a_recorded_api_gateway_v2_event_is_served_with_its_source_ip() {
    let (w, app) = auth_function().await;
    let response = invoke(app, EVENT).await;

    // API Gateway's v2 response: status, single-valued headers, a text body, no cookies.
    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(response["isBase64Encoded"], false);
    assert_eq!(response["cookies"], json!([]));
    let headers = &response["headers"];
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-request-id"].as_str().unwrap().len(), 32);
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["idempotencyKey"], "recorded-1", "the body was read");
    assert_eq!(body["state"], "CHALLENGE_REQUIRED");
    // The pre-built UI is at the configured public URL, whatever Host the request named.
    let url = body["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://latchkey.example.net/ui/challenge?token="),
        "{url}"
    );

    // The middleware took the caller's address from the API Gateway request context: the
    // track's audit event names it by its keyed hash, and the store holds no address. (The body's `ipAddress`, 198.51.100.23, is the end
    // user's, which the tenant's backend reports for the rules; it is not who called.)
    let events = w.events(TENANT).await;
    let track = events
        .iter()
        .rev()
        .find(|e| e.action == "action.track")
        .expect("the track is audited");
    let source = w
        .services
        .journal
        .source_ref(TENANT, SOURCE_IP)
        .await
        .unwrap();
    assert_eq!(track.source_ref.as_deref(), Some(&*source));
    let mut cursor = None;
    loop {
        let page = w.services.store.scan(cursor, 1000).await.unwrap();
        for item in &page.items {
            let text = serde_json::to_string(&item.attrs).unwrap();
            assert!(
                !text.contains(SOURCE_IP),
                "the caller's address in {}",
                item.pk
            );
        }
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }

    // The same call without API Gateway's context (a plain request to the router, no socket):
    // no source address, so the one above can only have come from the request context. The
    // test clock moves on a second so that this track's event lists last (events list in
    // commit-time order, and in id order within one millisecond).
    w.clock.advance(time::Duration::seconds(1));
    let (status, _) = w
        .post(
            &w.server(),
            "/v1/users/user-1/actions/signIn",
            json!({ "idempotencyKey": "direct-1" }),
        )
        .await;
    assert_eq!(status, 200);
    let events = w.events(TENANT).await;
    let direct = events.last().unwrap();
    assert_eq!(direct.action, "action.track");
    assert_eq!(direct.source_ref, None);
}

/// A refusal comes back in the same v2 shape: the wire error as a text body, and the request id.
#[tokio::test]
async fn a_refused_event_gets_the_wire_error_in_the_v2_response_shape() {
    let (_w, app) = auth_function().await;
    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    event["headers"]["authorization"] = json!(basic("lk_0000000000000000_unknownunknownunknown00"));
    let response = invoke(app, &event.to_string()).await;
    assert_eq!(response["statusCode"], 401, "{response}");
    assert_eq!(response["isBase64Encoded"], false);
    assert_eq!(response["headers"]["content-type"], "application/json");
    assert!(response["headers"]["x-request-id"].is_string());
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["errorCode"], "unauthorized", "{body}");
    assert!(!response.to_string().contains(SECRET_KEY));
}
