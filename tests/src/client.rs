//! A small test client: requests to a router through `tower::ServiceExt::oneshot`, JSON in and
//! out, with Basic or Bearer credentials and, where a browser would send one, an `Origin`.
use axum::Router;
use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

/// `Basic` with a secret key as the user name and an empty password, as the server SDKs send it.
pub fn basic(secret_key: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{secret_key}:")))
}

/// `Basic <tenant id>`, as the browser SDK sends it before it has a token.
pub fn tenant_basic(tenant_id: &str) -> String {
    format!("Basic {}", STANDARD.encode(tenant_id))
}

/// `Bearer <token>`; a value that already is one is kept as it is.
pub fn bearer(token: &str) -> String {
    if token.starts_with("Bearer ") {
        token.to_owned()
    } else {
        format!("Bearer {token}")
    }
}

/// What came back: status, headers and the body's bytes.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON, or `null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends requests to one router, with one `Origin` (or none).
#[derive(Clone)]
pub struct Client {
    app: Router,
    origin: Option<String>,
}

impl Client {
    pub fn new(app: Router) -> Self {
        Self { app, origin: None }
    }

    /// Every request built by [`Client::send`] and [`Client::reply`] carries this `Origin`.
    pub fn with_origin(mut self, origin: Option<&str>) -> Self {
        self.origin = origin.map(str::to_owned);
        self
    }

    /// Sends `req` exactly as built.
    pub async fn request(&self, req: Request<Body>) -> Reply {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// `method uri` with `auth` as the `Authorization` header and `body` as JSON.
    pub async fn reply(
        &self,
        method: Method,
        auth: Option<&str>,
        uri: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(origin) = &self.origin {
            req = req.header(header::ORIGIN, origin);
        }
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        self.request(req.body(body).unwrap()).await
    }

    /// As [`Client::reply`], keeping the status and the JSON body (`null` when not JSON).
    pub async fn send(
        &self,
        method: Method,
        auth: Option<&str>,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let r = self.reply(method, auth, uri, body).await;
        (r.status, r.json())
    }
}
