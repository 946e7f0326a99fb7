//! The one table from domain error to HTTP status and wire body (`docs/wire.md` §3):
//! `{"error": code, "errorCode": code, "errorDescription": text}` with
//! `Content-Type: application/json` exactly (the Python SDK compares the header as a string).
//! Internal details are logged with the request id and never returned.
use crate::domain::Error;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Every kind of error the API returns, with its status, code and default description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    Unauthorized,
    ExpiredToken,
    InvalidCredential,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    TooManyRequests,
    Internal,
    Unavailable,
}

pub const UNAUTHORIZED_DESCRIPTION: &str = "The request is unauthorized. Check that your API key and region base URL are correctly configured.";

impl ErrorKind {
    pub fn table(self) -> (StatusCode, &'static str, &'static str) {
        use ErrorKind::*;
        match self {
            InvalidRequest => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request is invalid.",
            ),
            Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                UNAUTHORIZED_DESCRIPTION,
            ),
            ExpiredToken => (
                StatusCode::UNAUTHORIZED,
                "expired_token",
                "The token has expired.",
            ),
            InvalidCredential => (
                StatusCode::BAD_REQUEST,
                "invalid_credential",
                "The credential could not be verified.",
            ),
            Forbidden => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "The request is not allowed.",
            ),
            NotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "The resource was not found.",
            ),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "The method is not allowed on this resource.",
            ),
            Conflict => (
                StatusCode::CONFLICT,
                "conflict",
                "The resource changed; retry the request.",
            ),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is too large.",
            ),
            RequestTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "The request did not arrive or could not be answered in time.",
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "The request body must be JSON.",
            ),
            TooManyRequests => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many requests; slow down.",
            ),
            Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "An unexpected error occurred.",
            ),
            Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "The service is temporarily unavailable; retry later.",
            ),
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorKind,
    /// Shown to the caller; must carry no personal data or secret.
    pub description: Option<String>,
    /// Logged, never shown.
    pub internal: Option<String>,
    /// The deployment is set up wrong ([`Error::Misconfigured`]): logged as such.
    pub misconfigured: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireError<'a> {
    error: &'a str,
    error_code: &'a str,
    error_description: &'a str,
}

impl ApiError {
    pub fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            description: None,
            internal: None,
            misconfigured: false,
        }
    }

    pub fn invalid(description: impl Into<String>) -> Self {
        Self {
            description: Some(description.into()),
            ..Self::new(ErrorKind::InvalidRequest)
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(ErrorKind::Unauthorized)
    }

    pub fn not_found() -> Self {
        Self::new(ErrorKind::NotFound)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(ErrorKind::MethodNotAllowed)
    }

    pub fn too_large() -> Self {
        Self::new(ErrorKind::PayloadTooLarge)
    }

    pub fn request_timeout() -> Self {
        Self::new(ErrorKind::RequestTimeout)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let (kind, description, internal) = match e {
            Error::NotFound(what) => (
                ErrorKind::NotFound,
                Some(format!("The {what} was not found.")),
                None,
            ),
            Error::Invalid(m) => (ErrorKind::InvalidRequest, Some(m), None),
            Error::Conflict(m) => (ErrorKind::Conflict, Some(format!("Conflict: {m}.")), None),
            Error::Unauthorized => (ErrorKind::Unauthorized, None, None),
            Error::Forbidden => (ErrorKind::Forbidden, None, None),
            Error::Refused(m) => (ErrorKind::Forbidden, Some(m), None),
            Error::InvalidState(m) => (ErrorKind::Conflict, Some(m), None),
            Error::TooManyRequests => (ErrorKind::TooManyRequests, None, None),
            Error::Internal(m) => (ErrorKind::Internal, None, Some(m)),
            Error::Unavailable(m) => (ErrorKind::Unavailable, None, Some(m)),
            Error::Misconfigured(m) => {
                return Self {
                    internal: Some(m),
                    misconfigured: true,
                    ..Self::new(ErrorKind::Unavailable)
                };
            }
        };
        Self {
            kind,
            description,
            internal,
            misconfigured: false,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, default) = self.kind.table();
        match &self.internal {
            Some(internal) if self.misconfigured => tracing::error!(
                error_code = code,
                misconfigured = true,
                detail = %internal,
                "request failed: the deployment is misconfigured (a missing table, key or secret, \
                 or a permission the role lacks); retrying will not help"
            ),
            Some(internal) => {
                tracing::error!(error_code = code, detail = %internal, "request failed")
            }
            None => {}
        }
        let body = WireError {
            error: code,
            error_code: code,
            error_description: self.description.as_deref().unwrap_or(default),
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (status, bytes).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    const ALL: [ErrorKind; 14] = [
        ErrorKind::InvalidRequest,
        ErrorKind::Unauthorized,
        ErrorKind::ExpiredToken,
        ErrorKind::InvalidCredential,
        ErrorKind::Forbidden,
        ErrorKind::NotFound,
        ErrorKind::MethodNotAllowed,
        ErrorKind::Conflict,
        ErrorKind::PayloadTooLarge,
        ErrorKind::RequestTimeout,
        ErrorKind::UnsupportedMediaType,
        ErrorKind::TooManyRequests,
        ErrorKind::Internal,
        ErrorKind::Unavailable,
    ];

    #[tokio::test]
    async fn every_error_carries_error_and_error_code_as_the_sdks_read_them() {
        for kind in ALL {
            let (status, code, _) = kind.table();
            assert!(status.is_client_error() || status.is_server_error());
            let response = ApiError::new(kind).into_response();
            assert_eq!(response.status(), status);
            assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body["error"], code);
            assert_eq!(body["errorCode"], code);
            assert!(!body["errorDescription"].as_str().unwrap().is_empty());
        }
        let (_, _, description) = ErrorKind::Unauthorized.table();
        assert_eq!(description, UNAUTHORIZED_DESCRIPTION);
    }

    #[tokio::test]
    async fn internal_details_are_never_returned() {
        let e: ApiError = Error::Unavailable("dynamodb: table lk-prod timed out".into()).into();
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert!(!String::from_utf8_lossy(&bytes).contains("lk-prod"));
    }
}
