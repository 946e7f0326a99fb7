//! The HTTP side: one plain HTTP/1.1 client (loopback only, no TLS), the tenant's Basic
//! authorization, and a request sent to completion.
use crate::{LoadError, Options};
use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// How much of a failed response's body an error keeps.
pub(crate) const BODY_SNIPPET_CHARS: usize = 300;

pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A pooled client that keeps up to `--concurrency` idle connections and sends `TCP_NODELAY`.
/// `enforce_http`: the connector refuses anything but `http://` URIs.
pub(crate) fn http_client(opts: &Options) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.enforce_http(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(opts.concurrency)
        .build(connector)
}

/// `Basic base64(<key>:)`, marked sensitive so it is never logged.
pub(crate) fn basic_authorization(key: &str, what: &str) -> Result<HeaderValue, LoadError> {
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
    let mut value = HeaderValue::from_str(&format!("Basic {credentials}"))
        .map_err(|e| LoadError(format!("{what} is not a header value: {e}")))?;
    value.set_sensitive(true);
    Ok(value)
}

/// A JSON `POST` with the given authorization.
pub(crate) fn post(uri: Uri, authorization: &HeaderValue, body: Bytes) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = uri;
    req.headers_mut()
        .insert(AUTHORIZATION, authorization.clone());
    req.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    req
}

pub(crate) fn parse_uri(url: &str) -> Result<Uri, LoadError> {
    url.parse()
        .map_err(|e| LoadError(format!("cannot build the URL `{url}`: {e}")))
}

/// One request to completion: the body of a 2xx response, or why it failed.
pub(crate) async fn send(client: &HttpClient, req: Request<Full<Bytes>>) -> Result<Bytes, String> {
    let response = client.request(req).await.map_err(|e| error_chain(&e))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("HTTP {status}, then reading the body: {}", error_chain(&e)))?
        .to_bytes();
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("HTTP {status}: {}", snippet(&body)))
    }
}

/// The start of a response body, for an error message.
pub(crate) fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .take(BODY_SNIPPET_CHARS)
        .collect()
}

/// An error and its sources, `outer: inner: ...`.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_is_basic_key_colon_and_sensitive() {
        let value = basic_authorization("sk", "the secret key").unwrap();
        assert_eq!(value.to_str().unwrap(), "Basic c2s6");
        assert!(value.is_sensitive());
    }

    #[test]
    fn snippet_is_bounded() {
        assert_eq!(snippet(b"{}"), "{}");
        assert_eq!(snippet(&[b'x'; 1000]).len(), BODY_SNIPPET_CHARS);
    }
}
