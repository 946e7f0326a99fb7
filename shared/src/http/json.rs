//! JSON request bodies: an empty body reads as `{}` (the browser SDK posts `content-length: 0`),
//! unknown fields are ignored, and a body that does not parse gets a 400 in the wire format that
//! says where, without echoing the input (it may hold personal data).
use crate::http::error::ApiError;
use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use serde::de::DeserializeOwned;

pub struct WireJson<T>(pub T);

impl<T, S> FromRequest<S> for WireJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::too_large())?;
        parse(&bytes).map(WireJson)
    }
}

pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        let what = match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => "is not valid JSON",
            Category::Data => "has a field of the wrong type or a missing field",
        };
        ApiError::invalid(format!(
            "The request body {what} (line {}, column {}).",
            e.line(),
            e.column()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    struct Body {
        #[serde(default)]
        email: Option<String>,
    }

    #[test]
    fn empty_body_is_an_empty_object_and_unknown_fields_are_ignored() {
        assert!(parse::<Body>(b"").unwrap().email.is_none());
        assert!(parse::<Body>(b"{\"other\":1}").unwrap().email.is_none());
    }

    #[test]
    fn a_bad_body_is_described_without_echoing_it() {
        let err = parse::<Body>(b"{\"email\": 42, \"x\": \"jane@example.com\"}").unwrap_err();
        let d = err.description.unwrap();
        assert!(d.contains("wrong type"), "{d}");
        assert!(!d.contains("jane") && !d.contains("42"), "{d}");
    }
}
