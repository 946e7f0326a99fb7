//! Scenario `passkey`: usernameless passkey sign-in (authentication options, the
//! authenticator's assertion, verify), as the demo page and the browser SDK do it.
//!
//! Before measuring, each concurrent client registers its own passkey for user
//! `load-passkey-{n}` (track, registration options, the software authenticator, add passkey).
//! A sign-in is timed from the options request to the verify response; the software
//! authenticator's signing (a P-256 signature, tens of microseconds) is inside that time, as
//! a browser's would be.
use crate::client::{HttpClient, basic_authorization, error_chain, parse_uri, snippet};
use crate::drive::ERROR_SAMPLES;
use crate::{BaseUrl, ENV_TENANT_ID, LoadError, Options, ScenarioReport};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, ORIGIN};
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt as _, Full};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator as _;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

/// One client: its authenticator and what the server knows it by.
struct Client {
    authenticator: SoftPasskey,
    credential_id: String,
    user_handle: String,
}

/// What every request needs.
struct Target {
    client: HttpClient,
    base: BaseUrl,
    origin: HeaderValue,
    origin_url: Url,
    server: HeaderValue,
    tenant: HeaderValue,
}

impl Target {
    async fn post(
        &self,
        path: &str,
        authorization: &HeaderValue,
        body: &Value,
    ) -> Result<Value, String> {
        let uri = parse_uri(&self.base.join(path)).map_err(|e| e.0)?;
        let mut req = Request::new(Full::new(Bytes::from(body.to_string())));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        h.insert(AUTHORIZATION, authorization.clone());
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(ORIGIN, self.origin.clone());
        let response = self
            .client
            .request(req)
            .await
            .map_err(|e| error_chain(&e))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| error_chain(&e))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("{path}: HTTP {status}: {}", snippet(&bytes)));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("{path}: not JSON: {e}"))
    }

    /// Registers a passkey for `user` the way a browser would. The track asks for
    /// `add:authenticators`: a run against a server that kept an earlier run's users adds a
    /// passkey to a user who has one, which the Client API allows only with that scope.
    async fn register(&self, user: &str) -> Result<Client, String> {
        let tracked = self
            .post(
                &format!("/users/{user}/actions/signUp"),
                &self.server,
                &json!({ "scope": "add:authenticators" }),
            )
            .await?;
        let token = tracked["token"]
            .as_str()
            .ok_or("track returned no token")?
            .to_owned();
        let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|e| format!("token is not a header value: {e}"))?;
        let o = self
            .post(
                "/client/user-authenticators/passkey/registration-options",
                &bearer,
                &json!({ "username": user }),
            )
            .await?;
        let mut options = o["options"].clone();
        // The software authenticator keeps no resident keys; its assertions get the user
        // handle added, as a browser's discoverable credential would carry it.
        options["authenticatorSelection"]["residentKey"] = json!("discouraged");
        options["authenticatorSelection"]["requireResidentKey"] = json!(false);
        let user_handle = options["user"]["id"]
            .as_str()
            .ok_or("options have no user id")?
            .to_owned();
        let mut authenticator = SoftPasskey::new(true);
        let credential = authenticator
            .do_registration(
                self.origin_url.clone(),
                serde_json::from_value(json!({ "publicKey": options }))
                    .map_err(|e| format!("registration options: {e}"))?,
            )
            .map_err(|e| format!("the software authenticator refused to register: {e:?}"))?;
        let done = self
            .post(
                "/client/user-authenticators/passkey",
                &bearer,
                &json!({ "challengeId": o["challengeId"], "registrationCredential": credential }),
            )
            .await?;
        let credential_id = done["userAuthenticator"]["webauthnCredential"]["credentialId"]
            .as_str()
            .ok_or("registration returned no credential id")?
            .to_owned();
        Ok(Client {
            authenticator,
            credential_id,
            user_handle,
        })
    }

    /// One usernameless sign-in.
    async fn sign_in(&self, c: &mut Client) -> Result<(), String> {
        let o = self
            .post(
                "/client/user-authenticators/passkey/authentication-options",
                &self.tenant,
                &json!({}),
            )
            .await?;
        let mut options = o["options"].clone();
        options["allowCredentials"] = json!([{ "type": "public-key", "id": c.credential_id }]);
        let assertion = c
            .authenticator
            .do_authentication(
                self.origin_url.clone(),
                serde_json::from_value(json!({ "publicKey": options }))
                    .map_err(|e| format!("authentication options: {e}"))?,
            )
            .map_err(|e| format!("the software authenticator refused to sign: {e:?}"))?;
        let mut assertion =
            serde_json::to_value(&assertion).map_err(|e| format!("assertion: {e}"))?;
        assertion["response"]["userHandle"] = json!(c.user_handle);
        let ok = self
            .post(
                "/client/verify/passkey",
                &self.tenant,
                &json!({ "challengeId": o["challengeId"], "authenticationCredential": assertion }),
            )
            .await?;
        if ok["isVerified"] == json!(true) {
            Ok(())
        } else {
            Err(format!("verify did not verify: {ok}"))
        }
    }
}

/// Per-phase results.
struct Phase {
    wall: Duration,
    latencies: Vec<Duration>,
    errors: Vec<String>,
    clients: Vec<Client>,
}

async fn phase(
    target: &Arc<Target>,
    clients: Vec<Client>,
    count: usize,
    timeout: Duration,
) -> Result<Phase, LoadError> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for mut client in clients {
        let (target, next) = (Arc::clone(target), Arc::clone(&next));
        workers.spawn(async move {
            let mut results = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let sent = Instant::now();
                let outcome = tokio::time::timeout(timeout, target.sign_in(&mut client)).await;
                let outcome = match outcome {
                    Ok(r) => r,
                    Err(_) => Err(format!("timed out after {} ms", timeout.as_millis())),
                };
                results.push((sent.elapsed(), outcome));
            }
            (client, results)
        });
    }
    let mut out = Phase {
        wall: Duration::ZERO,
        latencies: Vec::with_capacity(count),
        errors: Vec::new(),
        clients: Vec::new(),
    };
    while let Some(joined) = workers.join_next().await {
        let (client, results) =
            joined.map_err(|e| LoadError(format!("a load worker stopped: {e}")))?;
        out.clients.push(client);
        for (latency, outcome) in results {
            out.latencies.push(latency);
            if let Err(e) = outcome {
                out.errors.push(e);
            }
        }
    }
    out.wall = started.elapsed();
    Ok(out)
}

/// Server CPU time (user + system) of process `pid` so far, from `/proc/<pid>/stat`.
/// The fields are in USER_HZ ticks, which Linux fixes at 100 per second for this interface.
pub fn process_cpu(pid: u32) -> Result<Duration, LoadError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| LoadError(format!("cannot read /proc/{pid}/stat: {e}")))?;
    cpu_from_stat(&stat).ok_or_else(|| LoadError(format!("/proc/{pid}/stat is not as expected")))
}

/// utime + stime of a `/proc/<pid>/stat` line. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted after its closing `)`.
pub fn cpu_from_stat(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Registers the clients, warms up, then measures `opts.requests` sign-ins.
pub(crate) async fn run(
    client: &HttpClient,
    opts: &Options,
    server: HeaderValue,
) -> Result<ScenarioReport, LoadError> {
    let tenant_id = opts.tenant_id.as_deref().ok_or_else(|| {
        LoadError(format!(
            "scenario passkey needs --tenant-id (or {ENV_TENANT_ID})"
        ))
    })?;
    let tenant = basic_authorization(tenant_id, "the tenant id")?;
    // WebAuthn needs a domain, not an IP: the origin is http://localhost:<port>, which the
    // development tenant allows (`http://localhost:*`).
    let origin_text = format!("http://localhost:{}", opts.base_url.port());
    let origin_url =
        Url::parse(&origin_text).map_err(|e| LoadError(format!("origin {origin_text}: {e}")))?;
    let target = Arc::new(Target {
        client: client.clone(),
        base: opts.base_url.clone(),
        origin: HeaderValue::from_str(&origin_text)
            .map_err(|e| LoadError(format!("origin: {e}")))?,
        origin_url,
        server,
        tenant,
    });
    progress!("passkey: registering {} passkeys", opts.concurrency);
    let mut clients = Vec::with_capacity(opts.concurrency);
    for n in 0..opts.concurrency {
        clients.push(
            target
                .register(&format!("load-passkey-{n}"))
                .await
                .map_err(|e| LoadError(format!("passkey registration failed: {e}")))?,
        );
    }
    if opts.warmup > 0 {
        progress!("passkey: warming up with {} sign-ins", opts.warmup);
        clients = phase(&target, clients, opts.warmup, opts.timeout)
            .await?
            .clients;
    }
    progress!(
        "passkey: {} sign-ins, {} at a time",
        opts.requests,
        opts.concurrency
    );
    let cpu_before = opts.server_pid.map(process_cpu).transpose()?;
    let measured = phase(&target, clients, opts.requests, opts.timeout).await?;
    let cpu_after = opts.server_pid.map(process_cpu).transpose()?;
    let errors = measured.errors.len();
    let samples = measured.errors.into_iter().take(ERROR_SAMPLES).collect();
    let mut report = ScenarioReport::new(
        "passkey",
        opts.concurrency,
        measured.wall,
        measured.latencies,
        errors,
        samples,
    );
    report
        .notes
        .push("one request = a whole sign-in: options, assertion, verify".into());
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        let per = after.saturating_sub(before).as_secs_f64() * 1000.0 / opts.requests as f64;
        report.notes.push(format!(
            "server CPU (user + system, /proc) per sign-in: {per:.3} ms"
        ));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_read_after_the_command_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
        let stat = "42 (latchkey (local)) S 1 42 42 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 5";
        assert_eq!(cpu_from_stat(stat), Some(Duration::from_millis(2800)));
        assert_eq!(cpu_from_stat("garbage"), None);
        assert_eq!(cpu_from_stat("1 (x) S 1 2"), None);
    }
}
