//! `latchkey-load`: a bounded load generator for the Server API, for loopback only.
//!
//! It sends exactly the requested number of requests per scenario and stops:
//!
//! * **track**: `POST {base}/users/load-user-{n}/actions/signIn` with `{}`, spread over
//!   `--users` distinct user ids; the `token` of each response is kept.
//! * **validate**: `POST {base}/validate` with `{"token": ...}`, one token from the track phase
//!   per request (reused round-robin if there are fewer tokens than requests).
//!
//! Every request's latency is recorded (from sending the request to the last byte of the
//! response body); percentiles are nearest-rank over the sorted latencies. A request is an
//! error when the transport fails, it times out, or the status is not 2xx.
//!
//! Load against anything but loopback is refused: the base URL's host must be `localhost`, an
//! address in `127.0.0.0/8`, or `[::1]`, and `localhost` must also resolve to loopback only.
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::unimplemented,
    clippy::await_holding_lock,
    clippy::dbg_macro
)]

use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const ENV_BASE_URL: &str = "LATCHKEY_BASE_URL";
pub const ENV_SECRET_KEY: &str = "LATCHKEY_SECRET_KEY";
pub const ENV_TENANT_ID: &str = "LATCHKEY_TENANT_ID";
pub const DEFAULT_CONCURRENCY: usize = 16;
pub const DEFAULT_REQUESTS: usize = 5000;
pub const DEFAULT_WARMUP: usize = 200;
pub const DEFAULT_USERS: usize = 1000;
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Upper bounds that keep a run bounded in sockets and memory.
pub const MAX_CONCURRENCY: usize = 1024;
pub const MAX_REQUESTS: usize = 1_000_000;
/// A scenario fails when more than this share of its requests failed (1%).
pub const MAX_ERROR_PERCENT: usize = 1;
/// How many failures per scenario are kept to show.
const ERROR_SAMPLES: usize = 5;
const BODY_SNIPPET_CHARS: usize = 300;

pub const USAGE: &str = "\
usage: latchkey-load --base-url http://127.0.0.1:8787/v1 --secret-key <key>
                     [--concurrency 16] [--requests 5000] [--warmup 200]
                     [--users 1000] [--timeout-ms 10000]
                     [--scenarios track,validate] [--tenant-id <id>] [--server-pid <pid>]

Measures throughput and latency against latchkey-local on loopback:
scenario `track` (POST {base}/users/{userId}/actions/signIn), then scenario `validate`
(POST {base}/validate with the tokens track returned), and scenario `passkey` (a whole
usernameless passkey sign-in: authentication options, a software authenticator's
assertion, verify; each client registers its own passkey first). Each scenario sends
exactly --requests measured requests after --warmup unmeasured ones, --concurrency at a time.

  --base-url      Server API base URL; plain http, loopback host only
                  (127.0.0.0/8, localhost, [::1]). Default: $LATCHKEY_BASE_URL
  --secret-key    tenant secret key (sent as Basic auth). Default: $LATCHKEY_SECRET_KEY
  --concurrency   requests in flight at once (1-1024, default 16)
  --requests      measured requests per scenario (default 5000)
  --warmup        unmeasured requests per scenario first (default 200)
  --users         distinct user ids load-user-{n} for track (default 1000)
  --timeout-ms    per-request timeout, counted as an error (default 10000)
  --scenarios     comma-separated: track, validate, passkey (default track,validate)
  --tenant-id     the tenant's id, for the Client API calls of `passkey`
                  (Basic tenant auth). Default: $LATCHKEY_TENANT_ID
  --server-pid    latchkey-local's pid: `passkey` then also reports the server's CPU
                  time per sign-in (from /proc/<pid>/stat)
  -h, --help      this text

Prints a table and one JSON line per scenario. Exits 1 if more than 1% of a
scenario's requests failed, 2 on bad arguments or when the server is unreachable.
";

// ---------------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------------

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run(Box<Options>),
    Help,
}

/// A validated run configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct Options {
    pub base_url: BaseUrl,
    pub secret_key: String,
    pub concurrency: usize,
    pub requests: usize,
    pub warmup: usize,
    pub users: usize,
    pub timeout: Duration,
    pub scenarios: Vec<String>,
    pub tenant_id: Option<String>,
    pub server_pid: Option<u32>,
}

/// The scenarios `--scenarios` may name.
pub const SCENARIOS: &[&str] = &["track", "validate", "passkey"];

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("base_url", &self.base_url)
            .field("secret_key", &"<redacted>")
            .field("concurrency", &self.concurrency)
            .field("requests", &self.requests)
            .field("warmup", &self.warmup)
            .field("users", &self.users)
            .field("timeout", &self.timeout)
            .field("scenarios", &self.scenarios)
            .field("tenant_id", &self.tenant_id)
            .field("server_pid", &self.server_pid)
            .finish()
    }
}

/// Why the arguments were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgError {
    UnknownArgument(String),
    MissingValue(&'static str),
    Missing {
        flag: &'static str,
        env: &'static str,
    },
    Invalid {
        flag: &'static str,
        value: String,
        reason: String,
    },
    BadUrl {
        url: String,
        reason: String,
    },
    NotLoopback {
        url: String,
        host: String,
    },
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownArgument(arg) => write!(f, "unknown argument `{arg}`"),
            Self::MissingValue(flag) => write!(f, "{flag} needs a value"),
            Self::Missing { flag, env } => write!(f, "{flag} is required (or set {env})"),
            Self::Invalid {
                flag,
                value,
                reason,
            } => {
                write!(f, "{flag} `{value}` is invalid: {reason}")
            }
            Self::BadUrl { url, reason } => write!(f, "base URL `{url}` is invalid: {reason}"),
            Self::NotLoopback { url, host } => write!(
                f,
                "refusing to send load to `{url}`: host `{host}` is not loopback. \
                 Load may only target 127.0.0.0/8, localhost or [::1]"
            ),
        }
    }
}

impl std::error::Error for ArgError {}

/// Parses the arguments after the program name. `env` looks up environment variables, which
/// supply `--base-url` and `--secret-key` when the flags are absent.
pub fn parse_args<I, S, E>(args: I, env: E) -> Result<Command, ArgError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
    E: Fn(&str) -> Option<String>,
{
    let mut base_url = None;
    let mut secret_key = None;
    let mut concurrency = DEFAULT_CONCURRENCY;
    let mut requests = DEFAULT_REQUESTS;
    let mut warmup = DEFAULT_WARMUP;
    let mut users = DEFAULT_USERS;
    let mut timeout_ms = DEFAULT_TIMEOUT_MS;
    let mut scenarios = vec!["track".to_owned(), "validate".to_owned()];
    let mut tenant_id = None;
    let mut server_pid = None;

    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_owned(), Some(value.into())),
            _ => (arg.clone(), None),
        };
        let flag: &'static str = match name.as_str() {
            "--base-url" => "--base-url",
            "--secret-key" => "--secret-key",
            "--concurrency" => "--concurrency",
            "--requests" => "--requests",
            "--warmup" => "--warmup",
            "--users" => "--users",
            "--timeout-ms" => "--timeout-ms",
            "--scenarios" => "--scenarios",
            "--tenant-id" => "--tenant-id",
            "--server-pid" => "--server-pid",
            _ => return Err(ArgError::UnknownArgument(arg)),
        };
        let value: String = match inline.or_else(|| args.next()) {
            Some(value) => value,
            None => return Err(ArgError::MissingValue(flag)),
        };
        match flag {
            "--base-url" => base_url = Some(value),
            "--secret-key" => secret_key = Some(value),
            "--concurrency" => concurrency = number(flag, &value, 1, MAX_CONCURRENCY)?,
            "--requests" => requests = number(flag, &value, 1, MAX_REQUESTS)?,
            "--warmup" => warmup = number(flag, &value, 0, MAX_REQUESTS)?,
            "--users" => users = number(flag, &value, 1, MAX_REQUESTS)?,
            "--tenant-id" => tenant_id = Some(value),
            "--server-pid" => server_pid = Some(number(flag, &value, 1, u32::MAX)?),
            "--scenarios" => {
                scenarios = value.split(',').map(|s| s.trim().to_owned()).collect();
                if let Some(bad) = scenarios.iter().find(|s| !SCENARIOS.contains(&s.as_str())) {
                    return Err(ArgError::Invalid {
                        flag,
                        value: value.clone(),
                        reason: format!("`{bad}` is not one of {}", SCENARIOS.join(", ")),
                    });
                }
            }
            _ => timeout_ms = number(flag, &value, 1, 600_000)?,
        }
    }

    let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let base_url = non_empty(base_url)
        .or_else(|| non_empty(env(ENV_BASE_URL)))
        .ok_or(ArgError::Missing {
            flag: "--base-url",
            env: ENV_BASE_URL,
        })?;
    let secret_key = non_empty(secret_key)
        .or_else(|| non_empty(env(ENV_SECRET_KEY)))
        .ok_or(ArgError::Missing {
            flag: "--secret-key",
            env: ENV_SECRET_KEY,
        })?;

    Ok(Command::Run(Box::new(Options {
        base_url: BaseUrl::parse(base_url.trim())?,
        secret_key: secret_key.trim().to_owned(),
        concurrency,
        requests,
        warmup,
        users,
        timeout: Duration::from_millis(timeout_ms),
        tenant_id: non_empty(tenant_id).or_else(|| non_empty(env(ENV_TENANT_ID))),
        scenarios,
        server_pid,
    })))
}

fn number<T>(flag: &'static str, value: &str, min: T, max: T) -> Result<T, ArgError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let invalid = |reason: String| ArgError::Invalid {
        flag,
        value: value.to_owned(),
        reason,
    };
    let n: T = value
        .trim()
        .parse()
        .map_err(|_| invalid("not a whole number".into()))?;
    if n < min || n > max {
        return Err(invalid(format!("must be between {min} and {max}")));
    }
    Ok(n)
}

/// A Server API base URL on a loopback host, e.g. `http://127.0.0.1:8787/v1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// Scheme, host and port, as given (`http://127.0.0.1:8787`).
    origin: String,
    /// The path prefix without a trailing slash (`/v1`, or empty).
    prefix: String,
    host: String,
    port: u16,
}

impl BaseUrl {
    /// Parses and checks a base URL: plain `http`, no credentials, query or fragment, and a
    /// loopback host.
    pub fn parse(url: &str) -> Result<Self, ArgError> {
        let bad = |reason: &str| ArgError::BadUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(bad(
                    "use plain http: load only targets loopback, which has no TLS",
                ));
            }
            Some(_) => return Err(bad("the scheme must be http")),
            None => {
                return Err(bad(
                    "expected an absolute URL such as http://127.0.0.1:8787/v1",
                ));
            }
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad(
                "credentials in the URL are not supported; use --secret-key",
            ));
        }
        if uri.query().is_some() || url.contains('#') {
            return Err(bad("a query or fragment is not supported"));
        }
        let host = authority.host().to_owned();
        if !is_loopback_host(&host) {
            return Err(ArgError::NotLoopback {
                url: url.to_owned(),
                host,
            });
        }
        // The host was just checked to be loopback (and `ensure_resolves_to_loopback` checks
        // what it resolves to before any request): plain HTTP never leaves the machine.
        Ok(Self {
            origin: format!("http://{authority}"), // plain-http: loopback only
            prefix: uri.path().trim_end_matches('/').to_owned(),
            port: authority.port_u16().unwrap_or(80),
            host,
        })
    }

    /// The URL of `path` (which starts with `/`) under this base.
    pub fn join(&self, path: &str) -> String {
        format!("{}{}{}", self.origin, self.prefix, path)
    }

    pub fn host(&self) -> &str {
        &self.host
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin, self.prefix)
    }
}

/// `localhost`, any IPv4 address in 127.0.0.0/8, or `::1` (bracketed or not, and the
/// IPv4-mapped form of a 127/8 address).
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    bare.parse::<IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

// ---------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------

/// The nearest-rank `p`th percentile (0 < p <= 100) of ascending `sorted` samples: the smallest
/// sample with at least p% of samples at or below it. `None` for no samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// One scenario's measured phase.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioReport {
    pub scenario: &'static str,
    pub requests: usize,
    pub errors: usize,
    pub concurrency: usize,
    pub wall: Duration,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// The first few failures, as `HTTP 401 Unauthorized: {body}` or a transport error.
    pub error_samples: Vec<String>,
    /// Observations about successful responses (missing tokens, `isValid` counts).
    pub notes: Vec<String>,
}

impl ScenarioReport {
    /// Summarises `latencies` (every request's, in any order) and the failures.
    pub fn new(
        scenario: &'static str,
        concurrency: usize,
        wall: Duration,
        mut latencies: Vec<Duration>,
        errors: usize,
        error_samples: Vec<String>,
    ) -> Self {
        latencies.sort_unstable();
        let at = |p| percentile(&latencies, p).unwrap_or_default();
        Self {
            scenario,
            requests: latencies.len(),
            errors,
            concurrency,
            wall,
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            max: latencies.last().copied().unwrap_or_default(),
            error_samples,
            notes: Vec::new(),
        }
    }

    /// Requests per second over the wall time of the measured phase.
    pub fn rps(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }

    /// More than 1% of the requests failed.
    pub fn failed(&self) -> bool {
        self.errors * 100 > self.requests * MAX_ERROR_PERCENT
    }

    /// One JSON object on one line, `scenario` first, for quoting in the README.
    pub fn json_line(&self) -> String {
        let num = |x: f64| serde_json::Value::from(x);
        format!(
            "{{\"scenario\":{},\"requests\":{},\"errors\":{},\"concurrency\":{},\"wall_s\":{},\"rps\":{},\"p50_ms\":{},\"p90_ms\":{},\"p99_ms\":{},\"max_ms\":{}}}",
            serde_json::Value::from(self.scenario),
            self.requests,
            self.errors,
            self.concurrency,
            num(round(self.wall.as_secs_f64(), 3)),
            num(round(self.rps(), 1)),
            num(round(ms(self.p50), 3)),
            num(round(ms(self.p90), 3)),
            num(round(ms(self.p99), 3)),
            num(round(ms(self.max), 3)),
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

/// Every scenario that ran, and any that could not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub scenarios: Vec<ScenarioReport>,
    /// Scenarios that did not run, with the reason.
    pub skipped: Vec<String>,
}

impl Report {
    /// Every scenario ran and none failed more than 1% of its requests.
    pub fn passed(&self) -> bool {
        self.skipped.is_empty() && !self.scenarios.iter().any(ScenarioReport::failed)
    }

    /// A fixed-width table of the scenarios.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<10} {:>9} {:>7} {:>6} {:>9} {:>11} {:>9} {:>9} {:>9} {:>9}\n",
            "scenario",
            "requests",
            "errors",
            "conc",
            "wall_s",
            "req/s",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "max_ms"
        );
        for s in &self.scenarios {
            out.push_str(&format!(
                "{:<10} {:>9} {:>7} {:>6} {:>9.3} {:>11.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3}\n",
                s.scenario,
                s.requests,
                s.errors,
                s.concurrency,
                s.wall.as_secs_f64(),
                s.rps(),
                ms(s.p50),
                ms(s.p90),
                ms(s.p99),
                ms(s.max),
            ));
        }
        out
    }

    /// What goes to stdout: the table, the notes, then one JSON line per scenario.
    pub fn summary(&self) -> String {
        let mut out = self.table();
        for s in &self.scenarios {
            for note in &s.notes {
                out.push_str(&format!("  {}: {note}\n", s.scenario));
            }
        }
        out.push('\n');
        for s in &self.scenarios {
            out.push_str(&s.json_line());
            out.push('\n');
        }
        out
    }

    /// What went wrong, for stderr: the first failures of each scenario and skipped scenarios.
    pub fn problems(&self) -> String {
        let mut out = String::new();
        for s in self.scenarios.iter().filter(|s| s.errors > 0) {
            let verdict = if s.failed() { "over" } else { "within" };
            out.push_str(&format!(
                "{}: {} of {} requests failed ({verdict} the {MAX_ERROR_PERCENT}% limit); first failures:\n",
                s.scenario, s.errors, s.requests
            ));
            for sample in &s.error_samples {
                out.push_str(&format!("  {sample}\n"));
            }
        }
        for skipped in &self.skipped {
            out.push_str(&format!("skipped {skipped}\n"));
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

/// A run that could not start or could not continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError(pub String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A progress line on stderr; a closed stderr is not worth stopping the run for.
macro_rules! progress {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod passkey;
pub use passkey::cpu_from_stat;

/// What a successful response body told us.
enum Extract {
    Token(String),
    IsValid(bool),
    Missing,
}

/// A request shape, indexed so requests are spread deterministically.
trait Scenario: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn request(&self, index: usize) -> Request<Full<Bytes>>;
    fn extract(&self, body: &[u8]) -> Extract;
}

fn post(uri: Uri, authorization: &HeaderValue, body: Bytes) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = uri;
    req.headers_mut()
        .insert(AUTHORIZATION, authorization.clone());
    req.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    req
}

fn parse_uri(url: &str) -> Result<Uri, LoadError> {
    url.parse()
        .map_err(|e| LoadError(format!("cannot build the URL `{url}`: {e}")))
}

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
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("token")?.as_str().map(str::to_owned))
            .map_or(Extract::Missing, Extract::Token)
    }
}

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
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("isValid")?.as_bool())
            .map_or(Extract::Missing, Extract::IsValid)
    }
}

/// The results of one batch of requests.
struct Phase {
    wall: Duration,
    latencies: Vec<Duration>,
    errors: usize,
    error_samples: Vec<String>,
    extracts: Vec<Extract>,
}

/// Sends requests `offset..offset + count` of `scenario`, `concurrency` at a time, and waits
/// for all of them.
async fn drive<S: Scenario>(
    client: &HttpClient,
    scenario: &Arc<S>,
    offset: usize,
    count: usize,
    concurrency: usize,
    timeout: Duration,
) -> Result<Phase, LoadError> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(count) {
        let (client, scenario, next) = (client.clone(), Arc::clone(scenario), Arc::clone(&next));
        workers.spawn(async move {
            let mut results = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break results;
                }
                let req = scenario.request(offset + i);
                let sent = Instant::now();
                let outcome = tokio::time::timeout(timeout, send(&client, req)).await;
                let latency = sent.elapsed();
                let outcome = match outcome {
                    Ok(Ok(body)) => Ok(scenario.extract(&body)),
                    Ok(Err(failure)) => Err(failure),
                    Err(_) => Err(format!("timed out after {} ms", timeout.as_millis())),
                };
                results.push((latency, outcome));
            }
        });
    }
    let mut phase = Phase {
        wall: Duration::ZERO,
        latencies: Vec::with_capacity(count),
        errors: 0,
        error_samples: Vec::new(),
        extracts: Vec::with_capacity(count),
    };
    while let Some(joined) = workers.join_next().await {
        let results = joined.map_err(|e| LoadError(format!("a load worker stopped: {e}")))?;
        for (latency, outcome) in results {
            phase.latencies.push(latency);
            match outcome {
                Ok(extract) => phase.extracts.push(extract),
                Err(failure) => {
                    phase.errors += 1;
                    if phase.error_samples.len() < ERROR_SAMPLES {
                        phase.error_samples.push(failure);
                    }
                }
            }
        }
    }
    phase.wall = started.elapsed();
    Ok(phase)
}

/// One request to completion: the body of a 2xx response, or why it failed.
async fn send(client: &HttpClient, req: Request<Full<Bytes>>) -> Result<Bytes, String> {
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
        let text: String = String::from_utf8_lossy(&body)
            .chars()
            .take(BODY_SNIPPET_CHARS)
            .collect();
        Err(format!("HTTP {status}: {text}"))
    }
}

/// An error and its sources, `outer: inner: ...`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// `localhost` could be mapped elsewhere in /etc/hosts: make sure every address the connector
/// could use is loopback before sending anything.
async fn ensure_resolves_to_loopback(base: &BaseUrl) -> Result<(), LoadError> {
    let host = base.host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<_> = tokio::net::lookup_host((host, base.port))
        .await
        .map_err(|e| LoadError(format!("cannot resolve `{}`: {e}", base.host)))?
        .collect();
    match addrs.iter().find(|a| !a.ip().to_canonical().is_loopback()) {
        Some(addr) => Err(LoadError(format!(
            "refusing to send load: `{}` resolves to {addr}, which is not loopback",
            base.host
        ))),
        None if addrs.is_empty() => Err(LoadError(format!("`{}` resolves to nothing", base.host))),
        None => Ok(()),
    }
}

/// Runs the warmup (unmeasured) and then the measured phase of `scenario`. Requests are
/// indexed warmup first, so each request in the run gets its own user id / token slot.
async fn scenario<S: Scenario>(
    client: &HttpClient,
    scenario: S,
    opts: &Options,
) -> Result<ScenarioRun, LoadError> {
    let scenario = Arc::new(scenario);
    let name = scenario.name();
    let mut warmup = Vec::new();
    if opts.warmup > 0 {
        progress!("{name}: warming up with {} requests", opts.warmup);
        let warm = drive(
            client,
            &scenario,
            0,
            opts.warmup,
            opts.concurrency,
            opts.timeout,
        )
        .await?;
        if warm.errors == opts.warmup {
            return Err(LoadError(format!(
                "every {name} warmup request to {} failed; is latchkey-local running there \
                 and is the secret key right? first failure: {}",
                opts.base_url,
                warm.error_samples.first().map_or("?", String::as_str)
            )));
        }
        warmup = warm.extracts;
    }
    progress!(
        "{name}: {} requests, {} at a time",
        opts.requests,
        opts.concurrency
    );
    let run = drive(
        client,
        &scenario,
        opts.warmup,
        opts.requests,
        opts.concurrency,
        opts.timeout,
    )
    .await?;
    let report = ScenarioReport::new(
        name,
        opts.concurrency,
        run.wall,
        run.latencies,
        run.errors,
        run.error_samples,
    );
    Ok(ScenarioRun {
        report,
        warmup,
        measured: run.extracts,
    })
}

/// A scenario's report and what its successful responses held, warmup and measured apart.
struct ScenarioRun {
    report: ScenarioReport,
    warmup: Vec<Extract>,
    measured: Vec<Extract>,
}

/// Runs track, then validate with the tokens track returned.
pub async fn run(opts: &Options) -> Result<Report, LoadError> {
    ensure_resolves_to_loopback(&opts.base_url).await?;

    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:", opts.secret_key));
    let mut authorization = HeaderValue::from_str(&format!("Basic {credentials}"))
        .map_err(|e| LoadError(format!("cannot build the Authorization header: {e}")))?;
    authorization.set_sensitive(true);

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.enforce_http(true);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(opts.concurrency)
        .build(connector);

    let mut report = Report::default();
    let wants = |name: &str| opts.scenarios.iter().any(|s| s == name);

    if wants("track") || wants("validate") {
        track_and_validate(&client, opts, authorization.clone(), &mut report).await?;
    }
    if wants("passkey") {
        report
            .scenarios
            .push(passkey::run(&client, opts, authorization).await?);
    }
    Ok(report)
}

/// Track, then (if asked) validate with the tokens track returned.
async fn track_and_validate(
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
    if !opts.scenarios.iter().any(|s| s == "validate") {
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

    fn env_none(_: &str) -> Option<String> {
        None
    }

    fn parse(args: &[&str]) -> Result<Command, ArgError> {
        parse_args(args.iter().copied(), env_none)
    }

    fn options(args: &[&str]) -> Options {
        match parse(args) {
            Ok(Command::Run(opts)) => *opts,
            other => panic!("expected options, got {other:?}"),
        }
    }

    #[test]
    fn parses_flags_and_defaults() {
        let opts = options(&[
            "--base-url",
            "http://127.0.0.1:8787/v1/",
            "--secret-key",
            "sk",
        ]);
        assert_eq!(opts.base_url.to_string(), "http://127.0.0.1:8787/v1");
        assert_eq!(
            opts.base_url.join("/validate"),
            "http://127.0.0.1:8787/v1/validate"
        );
        assert_eq!(opts.secret_key, "sk");
        assert_eq!(
            (opts.concurrency, opts.requests, opts.warmup, opts.users),
            (16, 5000, 200, 1000)
        );
        assert!(!format!("{opts:?}").contains("sk\""), "secret is redacted");

        let opts = options(&[
            "--base-url=http://localhost:8797/v1",
            "--secret-key=k",
            "--concurrency",
            "4",
            "--requests=10",
            "--warmup",
            "0",
            "--users=3",
            "--timeout-ms=250",
        ]);
        assert_eq!(
            (opts.concurrency, opts.requests, opts.warmup, opts.users),
            (4, 10, 0, 3)
        );
        assert_eq!(opts.timeout, Duration::from_millis(250));
        assert_eq!(opts.scenarios, ["track", "validate"]);
        assert_eq!(parse(&["--help"]), Ok(Command::Help));

        let opts = options(&[
            "--base-url=http://localhost:8797/v1",
            "--secret-key=k",
            "--scenarios=passkey",
            "--tenant-id=bench",
            "--server-pid=4242",
        ]);
        assert_eq!(opts.scenarios, ["passkey"]);
        assert_eq!(
            (opts.tenant_id.as_deref(), opts.server_pid),
            (Some("bench"), Some(4242))
        );
        assert!(matches!(
            parse(&[
                "--base-url=http://127.0.0.1:1/v1",
                "--secret-key=k",
                "--scenarios=track,login"
            ]),
            Err(ArgError::Invalid {
                flag: "--scenarios",
                ..
            })
        ));
    }

    #[test]
    fn environment_supplies_defaults_and_flags_win() {
        let env = |k: &str| match k {
            ENV_BASE_URL => Some("http://[::1]:8787/v1".to_owned()),
            ENV_SECRET_KEY => Some("from-env".to_owned()),
            _ => None,
        };
        let Ok(Command::Run(opts)) = parse_args(Vec::<String>::new(), env) else {
            panic!("env should be enough");
        };
        assert_eq!(opts.base_url.to_string(), "http://[::1]:8787/v1");
        assert_eq!(opts.secret_key, "from-env");

        let Ok(Command::Run(opts)) = parse_args(["--secret-key", "flag"], env) else {
            panic!("flag with env");
        };
        assert_eq!(opts.secret_key, "flag");
    }

    #[test]
    fn refuses_bad_arguments() {
        assert_eq!(
            parse(&["--secret-key", "k"]),
            Err(ArgError::Missing {
                flag: "--base-url",
                env: ENV_BASE_URL
            })
        );
        assert_eq!(
            parse(&["--base-url", "http://127.0.0.1/v1"]),
            Err(ArgError::Missing {
                flag: "--secret-key",
                env: ENV_SECRET_KEY
            })
        );
        let base = ["--base-url", "http://127.0.0.1/v1", "--secret-key", "k"];
        let with = |extra: &[&str]| parse(&[&base[..], extra].concat());
        assert!(matches!(
            with(&["--concurrency", "0"]),
            Err(ArgError::Invalid { .. })
        ));
        assert!(matches!(
            with(&["--requests", "many"]),
            Err(ArgError::Invalid { .. })
        ));
        assert!(matches!(
            with(&["--requests", "-1"]),
            Err(ArgError::Invalid { .. })
        ));
        assert_eq!(with(&["--warmup"]), Err(ArgError::MissingValue("--warmup")));
        assert_eq!(
            with(&["--rps", "5"]),
            Err(ArgError::UnknownArgument("--rps".into()))
        );
        for url in [
            "https://127.0.0.1/v1",
            "127.0.0.1:8787/v1",
            "http://u:p@127.0.0.1/v1",
            "http://127.0.0.1/v1?x=1",
        ] {
            assert!(
                matches!(BaseUrl::parse(url), Err(ArgError::BadUrl { .. })),
                "{url}"
            );
        }
    }

    #[test]
    fn refuses_non_loopback_hosts() {
        for url in [
            "http://10.0.0.5:8787/v1",
            "http://192.168.1.10/v1",
            "http://0.0.0.0:8787/v1",
            "http://api.authsignal.com/v1",
            "http://127.0.0.1.example.com/v1",
            "http://localhost.example.com/v1",
            "http://[::]:8787/v1",
            "http://[2001:db8::1]/v1",
        ] {
            let refused = parse(&["--base-url", url, "--secret-key", "k"]);
            assert!(
                matches!(refused, Err(ArgError::NotLoopback { .. })),
                "{url}: {refused:?}"
            );
            if let Err(e) = refused {
                assert!(e.to_string().contains("not loopback"), "{e}");
            }
        }
        for url in [
            "http://127.0.0.1:8787/v1",
            "http://127.8.9.10/v1",
            "http://localhost:8787/v1",
            "http://LOCALHOST/v1",
            "http://[::1]:8787/v1",
            "http://[::ffff:127.0.0.1]/v1",
        ] {
            assert!(BaseUrl::parse(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let ms = |n: u64| Duration::from_millis(n);
        let sorted: Vec<_> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(ms(50)));
        assert_eq!(percentile(&sorted, 90.0), Some(ms(90)));
        assert_eq!(percentile(&sorted, 99.0), Some(ms(99)));
        assert_eq!(percentile(&sorted, 100.0), Some(ms(100)));
        assert_eq!(percentile(&sorted, 0.5), Some(ms(1)));

        let few = [ms(3), ms(7), ms(20)];
        assert_eq!(percentile(&few, 50.0), Some(ms(7)));
        assert_eq!(percentile(&few, 99.0), Some(ms(20)));
        assert_eq!(percentile(&[ms(4)], 99.0), Some(ms(4)));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&few, 0.0), None);
        assert_eq!(percentile(&few, 101.0), None);
    }

    #[test]
    fn report_summarises_and_prints_one_json_line() {
        let latencies = (1..=200).rev().map(Duration::from_millis).collect();
        let report = ScenarioReport::new(
            "track",
            16,
            Duration::from_secs(2),
            latencies,
            2,
            vec!["HTTP 500 Internal Server Error: {}".into()],
        );
        assert_eq!(report.requests, 200);
        assert_eq!(report.p50, Duration::from_millis(100));
        assert_eq!(report.p99, Duration::from_millis(198));
        assert_eq!(report.max, Duration::from_millis(200));
        assert!((report.rps() - 100.0).abs() < 1e-9);
        assert!(!report.failed(), "2 of 200 is exactly 1%");
        let over = ScenarioReport {
            errors: 3,
            ..report.clone()
        };
        assert!(over.failed());

        let line = report.json_line();
        assert!(
            line.starts_with("{\"scenario\":\"track\",\"requests\":200,"),
            "{line}"
        );
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["rps"], 100.0);
        assert_eq!(v["p50_ms"], 100.0);
        assert_eq!(v["p99_ms"], 198.0);
        assert_eq!(v["errors"], 2);

        let table = Report {
            scenarios: vec![report],
            skipped: vec![],
        };
        assert!(table.passed());
        assert!(
            table
                .table()
                .lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("track"))
        );
        assert!(table.summary().ends_with(&format!("{line}\n")));
        assert!(table.problems().contains("HTTP 500"));
    }
}
