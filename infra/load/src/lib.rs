//! `latchkey-load`: a bounded load generator for the Server API, for loopback only.
//!
//! It sends exactly the requested number of requests per scenario and stops:
//!
//! * **track**: `POST {base}/users/load-user-{n}/actions/signIn` with `{}`, spread over
//!   `--users` distinct user ids; the `token` of each response is kept.
//! * **validate**: `POST {base}/validate` with `{"token": ...}`, one token from the track phase
//!   per request (reused round-robin if there are fewer tokens than requests).
//! * **passkey**: a whole usernameless passkey sign-in per request (authentication options, a
//!   software authenticator's assertion, verify); each client registers its own passkey first.
//!
//! Every request's latency is recorded (from sending the request to the last byte of the
//! response body); percentiles are nearest-rank over the sorted latencies. A request is an
//! error when the transport fails, it times out, or the status is not 2xx.
//!
//! Load against anything but loopback is refused: the base URL's host must be `localhost`, an
//! address in `127.0.0.0/8`, or `[::1]`, and `localhost` must also resolve to loopback only.
//!
//! The command line is [`Options`] (clap); `--base-url`, `--secret-key` and `--tenant-id` may
//! come from `LKCLI_BASE_URL`, `LKCLI_SECRET_KEY` and `LKCLI_TENANT_ID` instead.
//!
//! Modules: `args` (the command line), `target` (the loopback base URL), `client` (HTTP),
//! `drive` (the load loop and its phases), `scenarios` (track, validate), `passkey`, and
//! `report` (percentiles, the table and JSON lines).
use std::fmt;

/// A progress line on stderr; a closed stderr is not worth stopping the run for.
macro_rules! progress {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod args;
mod client;
mod drive;
mod passkey;
mod report;
mod scenarios;
mod target;

pub use args::{
    DEFAULT_CONCURRENCY, DEFAULT_REQUESTS, DEFAULT_TIMEOUT_MS, DEFAULT_USERS, DEFAULT_WARMUP,
    ENV_BASE_URL, ENV_SECRET_KEY, ENV_TENANT_ID, MAX_CONCURRENCY, MAX_REQUESTS, MAX_TIMEOUT_MS,
    Options, SCENARIOS, command, parse_args,
};
pub use passkey::cpu_from_stat;
pub use report::{MAX_ERROR_PERCENT, Report, ScenarioReport, percentile};
pub use target::{BaseUrl, BaseUrlError, is_loopback_host};

/// A run that could not start or could not continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError(pub String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

/// Checks that the base URL resolves to loopback only, then runs the scenarios asked for:
/// track, then validate with the tokens track returned, then passkey.
pub async fn run(opts: &Options) -> Result<Report, LoadError> {
    target::ensure_resolves_to_loopback(&opts.base_url).await?;
    let authorization = client::basic_authorization(&opts.secret_key, "the secret key")?;
    let client = client::http_client(opts);

    let mut report = Report::default();
    if opts.wants("track") || opts.wants("validate") {
        scenarios::track_and_validate(&client, opts, authorization.clone(), &mut report).await?;
    }
    if opts.wants("passkey") {
        report
            .scenarios
            .push(passkey::run(&client, opts, authorization).await?);
    }
    Ok(report)
}
