//! Scenarios `track` and `validate`: one Server API call per request. `validate` checks the
//! tokens that `track` returned, so the two run as a pair. (Scenario `passkey`, a whole
//! sign-in per request, is its own module.)
use crate::client::{HttpClient, parse_uri, post};
use crate::drive::{Extract, Scenario, scenario};
use crate::{LoadError, Options, Report};
use bytes::Bytes;
use http::{HeaderValue, Request, Uri};
use http_body_util::Full;

/// `POST {base}/users/load-user-{n}/actions/signIn` with `{}`, over `--users` user ids.
struct Track {
    uris: Vec<Uri>,
    authorization: HeaderValue,
}

impl Track {
    fn new(opts: &Options, authorization: HeaderValue) -> Result<Self, LoadError> {
        let uris = (0..opts.users)
            .map(|n| {
                parse_uri(
                    &opts
                        .base_url
                        .join(&format!("/users/load-user-{n}/actions/signIn")),
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            uris,
            authorization,
        })
    }
}

impl Scenario for Track {
    fn name(&self) -> &'static str {
        "track"
    }

    fn request(&self, index: usize) -> Request<Full<Bytes>> {
        let uri = self.uris[index % self.uris.len()].clone();
        post(uri, &self.authorization, Bytes::from_static(b"{}"))
    }

    fn extract(&self, body: &[u8]) -> Extract {
        token(body).map_or(Extract::Missing, Extract::Token)
    }
}

/// `POST {base}/validate` with `{"token": ...}`, the tokens reused round-robin.
struct Validate {
    uri: Uri,
    bodies: Vec<Bytes>,
    authorization: HeaderValue,
}

impl Validate {
    fn new(
        opts: &Options,
        authorization: HeaderValue,
        tokens: &[String],
    ) -> Result<Self, LoadError> {
        if tokens.is_empty() {
            return Err(LoadError("no tokens to validate".into()));
        }
        let bodies = tokens
            .iter()
            .map(|token| {
                serde_json::to_vec(&serde_json::json!({ "token": token }))
                    .map(Bytes::from)
                    .map_err(|e| LoadError(format!("cannot encode a validate body: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            uri: parse_uri(&opts.base_url.join("/validate"))?,
            bodies,
            authorization,
        })
    }
}

impl Scenario for Validate {
    fn name(&self) -> &'static str {
        "validate"
    }

    fn request(&self, index: usize) -> Request<Full<Bytes>> {
        let body = self.bodies[index % self.bodies.len()].clone();
        post(self.uri.clone(), &self.authorization, body)
    }

    fn extract(&self, body: &[u8]) -> Extract {
        is_valid(body).map_or(Extract::Missing, Extract::IsValid)
    }
}

/// The `token` of a track response.
fn token(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("token")?.as_str().map(str::to_owned))
}

/// The `isValid` of a validate response.
fn is_valid(body: &[u8]) -> Option<bool> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("isValid")?.as_bool())
}

/// Track, then (if asked) validate with the tokens track returned.
pub(crate) async fn track_and_validate(
    client: &HttpClient,
    opts: &Options,
    authorization: HeaderValue,
    report: &mut Report,
) -> Result<(), LoadError> {
    let track = scenario(client, Track::new(opts, authorization.clone())?, opts).await?;
    let mut tokens = Vec::with_capacity(track.warmup.len() + track.measured.len());
    let mut without_token = 0;
    let warmed = track.warmup.len();
    for (i, extract) in track.warmup.into_iter().chain(track.measured).enumerate() {
        match extract {
            Extract::Token(token) => tokens.push(token),
            _ if i >= warmed => without_token += 1,
            _ => {}
        }
    }
    let mut track_report = track.report;
    if without_token > 0 {
        track_report.notes.push(format!(
            "{without_token} successful responses had no `token`"
        ));
    }
    report.scenarios.push(track_report);
    if !opts.wants("validate") {
        return Ok(());
    }

    if tokens.is_empty() {
        report
            .skipped
            .push("validate: track returned no tokens to validate".into());
        return Ok(());
    }
    let distinct = tokens.len();
    let validate = scenario(client, Validate::new(opts, authorization, &tokens)?, opts).await?;
    let (mut valid, mut invalid, mut absent) = (0, 0, 0);
    for extract in &validate.measured {
        match extract {
            Extract::IsValid(true) => valid += 1,
            Extract::IsValid(false) => invalid += 1,
            _ => absent += 1,
        }
    }
    let mut validate = validate.report;
    validate.notes.push(format!(
        "isValid true {valid}, false {invalid}, absent {absent} (over {distinct} tokens)"
    ));
    report.scenarios.push(validate);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_args;

    fn options() -> Options {
        parse_args(
            [
                "latchkey-load",
                "--base-url=http://127.0.0.1:8787/v1",
                "--secret-key=k",
                "--users=3",
            ],
            |_| None,
        )
        .unwrap()
    }

    #[test]
    fn track_spreads_requests_over_the_users() {
        let auth = HeaderValue::from_static("Basic aw==");
        let track = Track::new(&options(), auth).unwrap();
        let uri = |i| track.request(i).uri().to_string();
        assert_eq!(
            uri(0),
            "http://127.0.0.1:8787/v1/users/load-user-0/actions/signIn"
        );
        assert_eq!(uri(4), uri(1));
        let req = track.request(2);
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.headers()["authorization"], "Basic aw==");
        assert_eq!(req.headers()["content-type"], "application/json");
    }

    #[test]
    fn validate_reuses_tokens_round_robin() {
        let auth = HeaderValue::from_static("Basic aw==");
        let tokens = ["a".to_owned(), "b".to_owned()];
        let validate = Validate::new(&options(), auth.clone(), &tokens).unwrap();
        assert_eq!(
            validate.request(3).uri().to_string(),
            "http://127.0.0.1:8787/v1/validate"
        );
        assert!(Validate::new(&options(), auth, &[]).is_err());
    }

    #[test]
    fn extracts_token_and_is_valid() {
        assert_eq!(token(br#"{"token":"t","x":1}"#).as_deref(), Some("t"));
        assert_eq!(token(br#"{"token":5}"#), None);
        assert_eq!(token(b"not json"), None);
        assert_eq!(is_valid(br#"{"isValid":false}"#), Some(false));
        assert_eq!(is_valid(br#"{}"#), None);
    }
}
