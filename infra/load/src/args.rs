//! The command line: [`Options`] is the clap command, every bound checked while parsing.
//!
//! `--base-url`, `--secret-key` and `--tenant-id` fall back to the `LKCLI_*` environment
//! variables named by [`ENV_BASE_URL`], [`ENV_SECRET_KEY`] and [`ENV_TENANT_ID`]; a flag always
//! wins. (Not `LATCHKEY_*`: latchkey-local refuses `LATCHKEY_*` variables it does not know, so
//! one shell could not hold both.) The variables are read through a lookup function that
//! [`parse_args`] takes, not by clap itself, so tests control them without touching the
//! process environment.
use crate::target::BaseUrl;
use clap::builder::{PossibleValue, PossibleValuesParser, RangedU64ValueParser, TypedValueParser};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, CommandFactory as _, FromArgMatches as _, Parser};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::time::Duration;

pub const ENV_BASE_URL: &str = "LKCLI_BASE_URL";
pub const ENV_SECRET_KEY: &str = "LKCLI_SECRET_KEY";
pub const ENV_TENANT_ID: &str = "LKCLI_TENANT_ID";
pub const DEFAULT_CONCURRENCY: usize = 16;
pub const DEFAULT_REQUESTS: usize = 5000;
pub const DEFAULT_WARMUP: usize = 200;
pub const DEFAULT_USERS: usize = 1000;
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Upper bounds that keep a run bounded in sockets, memory and time.
pub const MAX_CONCURRENCY: usize = 1024;
pub const MAX_REQUESTS: usize = 1_000_000;
pub const MAX_TIMEOUT_MS: u64 = 600_000;

/// The scenarios `--scenarios` may name.
pub const SCENARIOS: &[&str] = &["track", "validate", "passkey"];

const AFTER_HELP: &str = "\
Each scenario sends --warmup unmeasured requests, then exactly --requests measured ones,
--concurrency at a time:
  track     POST {base}/users/load-user-<n>/actions/signIn, spread over --users user ids
  validate  POST {base}/validate with the tokens track returned
  passkey   a whole usernameless passkey sign-in: authentication options, a software
            authenticator's assertion, verify; each client registers its own passkey
            first. Needs --tenant-id; with --server-pid, also reports the server's CPU
            time per sign-in (user + system, from /proc/<pid>/stat)

The base URL must be plain http to localhost, 127.0.0.0/8 or [::1], and resolve to
loopback only. A flag beats its environment variable.

Prints a table and one JSON line per scenario. Exits 1 if more than 1% of a scenario's
requests failed or a scenario could not run, 2 on bad arguments or when the server is
unreachable.

Example:
  LKCLI_SECRET_KEY=<key> latchkey-load --base-url http://127.0.0.1:8787/v1";

/// A validated run configuration: the command line of `latchkey-load`. (Each field's doc
/// comment is its `--help` line: keep it to one short line, as clap here does not wrap.)
#[derive(Parser, Clone, PartialEq, Eq)]
#[command(
    name = "latchkey-load",
    version,
    about = "Bounded Server API load against latchkey-local: throughput and latency, \
             on loopback only",
    long_about = None,
    after_help = AFTER_HELP,
    args_override_self = true
)]
pub struct Options {
    /// Server API base URL, plain http to loopback
    #[arg(long, value_name = "URL", env = ENV_BASE_URL, hide_env_values = true,
          value_parser = parse_base_url)]
    pub base_url: BaseUrl,

    /// Tenant secret key, sent as Basic auth
    #[arg(long, value_name = "KEY", env = ENV_SECRET_KEY, hide_env_values = true,
          value_parser = non_empty)]
    pub secret_key: String,

    /// Requests in flight at once, 1-1024
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CONCURRENCY,
          value_parser = count(1, MAX_CONCURRENCY))]
    pub concurrency: usize,

    /// Measured requests per scenario, 1-1000000
    #[arg(long, value_name = "N", default_value_t = DEFAULT_REQUESTS,
          value_parser = count(1, MAX_REQUESTS))]
    pub requests: usize,

    /// Unmeasured requests per scenario first, 0-1000000
    #[arg(long, value_name = "N", default_value_t = DEFAULT_WARMUP,
          value_parser = count(0, MAX_REQUESTS))]
    pub warmup: usize,

    /// Distinct user ids load-user-N for track, 1-1000000
    #[arg(long, value_name = "N", default_value_t = DEFAULT_USERS,
          value_parser = count(1, MAX_REQUESTS))]
    pub users: usize,

    /// Per-request timeout, 1-600000; a timeout is an error
    #[arg(long = "timeout-ms", value_name = "MS", default_value = DEFAULT_TIMEOUT_MS.to_string(),
          value_parser = Trimmed(RangedU64ValueParser::<u64>::new().range(1..=MAX_TIMEOUT_MS))
              .map(Duration::from_millis))]
    pub timeout: Duration,

    /// Comma-separated: track, validate, passkey
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "track,validate",
          hide_possible_values = true, value_parser = Trimmed(PossibleValuesParser::new(SCENARIOS)))]
    pub scenarios: Vec<String>,

    /// Tenant id, for passkey's Client API calls
    #[arg(long, value_name = "ID", env = ENV_TENANT_ID, hide_env_values = true,
          value_parser = non_empty)]
    pub tenant_id: Option<String>,

    /// latchkey-local's pid, for passkey's server CPU time
    #[arg(long, value_name = "PID",
          value_parser = Trimmed(RangedU64ValueParser::<u32>::new().range(1..=u64::from(u32::MAX))))]
    pub server_pid: Option<u32>,
}

impl Options {
    /// `--scenarios` names `scenario`.
    pub fn wants(&self, scenario: &str) -> bool {
        self.scenarios.iter().any(|s| s == scenario)
    }
}

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

/// The clap command, with the environment read through `env` instead of by clap: each argument
/// that names a variable takes that variable's value (when set and not blank) as its default,
/// so a flag on the command line still wins. The help keeps showing the variable's name.
pub fn command(env: impl Fn(&str) -> Option<String>) -> clap::Command {
    let mut cmd = Options::command();
    let named: Vec<_> = cmd
        .get_arguments()
        .filter_map(|arg| {
            let name = arg.get_env()?.to_string_lossy().into_owned();
            Some((arg.get_id().clone(), name))
        })
        .collect();
    for (id, name) in named {
        let value = env(&name).filter(|v| !v.trim().is_empty());
        cmd = cmd.mut_arg(id, |arg| from_lookup(arg, &name, value));
    }
    cmd
}

/// `arg` without clap's own reading of `name` (which happened when the command was built, from
/// the process environment), and with `value` as its default instead.
fn from_lookup(arg: Arg, name: &str, value: Option<String>) -> Arg {
    let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
    let arg = arg
        .env(None::<&'static str>)
        .help(format!("{help} [env: {name}]"));
    match value {
        Some(value) => arg
            .default_value(value)
            .hide_default_value(true)
            .required(false),
        None => arg,
    }
}

/// Parses a command line (program name first, as `std::env::args_os` gives it), reading the
/// `LKCLI_*` variables through `env`. `--help` and `--version` come back as the error of kind
/// `DisplayHelp` / `DisplayVersion`, whose `print` writes them to stdout.
pub fn parse_args<I, T>(
    args: I,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Options, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut cmd = command(env);
    let mut matches = cmd.try_get_matches_from_mut(args).map_err(with_env_tip)?;
    Options::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut cmd))
}

/// A missing `--base-url` or `--secret-key` error also names the variables that can stand in.
fn with_env_tip(mut e: clap::Error) -> clap::Error {
    if e.kind() == ErrorKind::MissingRequiredArgument && e.get(ContextKind::Suggested).is_none() {
        let tip = format!(
            "--base-url and --secret-key may come from {ENV_BASE_URL} and {ENV_SECRET_KEY}"
        );
        e.insert(
            ContextKind::Suggested,
            ContextValue::StyledStrs(vec![tip.into()]),
        );
    }
    e
}

fn parse_base_url(value: &str) -> Result<BaseUrl, crate::BaseUrlError> {
    BaseUrl::parse(value.trim())
}

fn non_empty(value: &str) -> Result<String, &'static str> {
    match value.trim() {
        "" => Err("must not be empty"),
        value => Ok(value.to_owned()),
    }
}

/// A count in `min..=max`.
fn count(min: u64, max: usize) -> Trimmed<RangedU64ValueParser<usize>> {
    // usize is at most 64 bits on every target this runs on.
    let max = u64::try_from(max).unwrap_or(u64::MAX);
    Trimmed(RangedU64ValueParser::new().range(min..=max))
}

/// A value parser that ignores surrounding whitespace (`--scenarios "track, validate"`).
#[derive(Clone)]
struct Trimmed<P>(P);

impl<P: TypedValueParser> TypedValueParser for Trimmed<P> {
    type Value = P::Value;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<Self::Value, clap::Error> {
        match value.to_str() {
            Some(text) => self.0.parse_ref(cmd, arg, OsStr::new(text.trim())),
            None => self.0.parse_ref(cmd, arg, value),
        }
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        self.0.possible_values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BaseUrlError;
    use std::collections::HashMap;

    const BASE: [&str; 5] = [
        "latchkey-load",
        "--base-url",
        "http://127.0.0.1:8787/v1",
        "--secret-key",
        "k",
    ];

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// An environment of exactly `vars`.
    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    fn options(args: &[&str]) -> Options {
        match parse_args(args, no_env) {
            Ok(opts) => opts,
            Err(e) => panic!("expected options, got {e}"),
        }
    }

    /// `BASE` plus `extra`.
    fn with(extra: &[&str]) -> Result<Options, clap::Error> {
        parse_args([&BASE[..], extra].concat(), no_env)
    }

    fn kind(result: Result<Options, clap::Error>) -> ErrorKind {
        match result {
            Ok(opts) => panic!("expected an error, got {opts:?}"),
            Err(e) => e.kind(),
        }
    }

    #[test]
    fn the_command_is_well_formed() {
        Options::command().debug_assert();
        command(env_of(&[
            (ENV_BASE_URL, "http://[::1]/v1"),
            (ENV_SECRET_KEY, "s"),
        ]))
        .debug_assert();
    }

    #[test]
    fn parses_flags_and_defaults() {
        let opts = options(&[
            "latchkey-load",
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
            (
                DEFAULT_CONCURRENCY,
                DEFAULT_REQUESTS,
                DEFAULT_WARMUP,
                DEFAULT_USERS
            )
        );
        assert_eq!(
            (opts.concurrency, opts.requests, opts.warmup, opts.users),
            (16, 5000, 200, 1000)
        );
        assert_eq!(opts.timeout, Duration::from_millis(DEFAULT_TIMEOUT_MS));
        assert_eq!(opts.scenarios, ["track", "validate"]);
        assert_eq!((opts.tenant_id.as_deref(), opts.server_pid), (None, None));
        assert!(!format!("{opts:?}").contains("sk\""), "secret is redacted");

        let opts = options(&[
            "latchkey-load",
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

        let opts = options(&[
            "latchkey-load",
            "--base-url=http://localhost:8797/v1",
            "--secret-key=k",
            "--scenarios=passkey",
            "--tenant-id=bench",
            "--server-pid=4242",
        ]);
        assert_eq!(opts.scenarios, ["passkey"]);
        assert!(opts.wants("passkey") && !opts.wants("track"));
        assert_eq!(
            (opts.tenant_id.as_deref(), opts.server_pid),
            (Some("bench"), Some(4242))
        );
        // A repeated flag overrides the earlier one, as the shell idiom `"$@"` after defaults needs.
        assert_eq!(with(&["--secret-key=later"]).unwrap().secret_key, "later");
        assert_eq!(
            with(&["--scenarios", "track, validate,passkey"])
                .unwrap()
                .scenarios,
            ["track", "validate", "passkey"]
        );
    }

    #[test]
    fn accepts_each_bound() {
        let opts = with(&[
            "--concurrency=1024",
            "--requests=1000000",
            "--warmup=1000000",
            "--users=1000000",
            "--timeout-ms=600000",
            "--server-pid=4294967295",
        ])
        .unwrap();
        assert_eq!(
            (opts.concurrency, opts.requests, opts.warmup, opts.users),
            (MAX_CONCURRENCY, MAX_REQUESTS, MAX_REQUESTS, MAX_REQUESTS)
        );
        assert_eq!(opts.timeout, Duration::from_millis(MAX_TIMEOUT_MS));
        assert_eq!(opts.server_pid, Some(u32::MAX));
        let opts = with(&[
            "--concurrency=1",
            "--requests=1",
            "--warmup=0",
            "--users=1",
            "--timeout-ms=1",
            "--server-pid=1",
        ])
        .unwrap();
        assert_eq!(
            (opts.concurrency, opts.requests, opts.warmup, opts.users),
            (1, 1, 0, 1)
        );
        assert_eq!(opts.timeout, Duration::from_millis(1));
    }

    #[test]
    fn refuses_each_value_out_of_bounds() {
        for (flag, value) in [
            ("--concurrency", "0"),
            ("--concurrency", "1025"),
            ("--requests", "0"),
            ("--requests", "1000001"),
            ("--requests", "many"),
            ("--requests", "-1"),
            ("--requests", "1.5"),
            ("--warmup", "1000001"),
            ("--warmup", "-1"),
            ("--users", "0"),
            ("--users", "1000001"),
            ("--timeout-ms", "0"),
            ("--timeout-ms", "600001"),
            ("--server-pid", "0"),
            ("--server-pid", "4294967296"),
        ] {
            let result = with(&[&format!("{flag}={value}")]);
            assert_eq!(kind(result), ErrorKind::ValueValidation, "{flag} {value}");
        }
        for (flag, value) in [("--secret-key", " "), ("--tenant-id", "")] {
            let result = with(&[&format!("{flag}={value}")]);
            assert_eq!(kind(result), ErrorKind::ValueValidation, "{flag} {value:?}");
        }
    }

    #[test]
    fn refuses_unknown_or_incomplete_arguments() {
        assert_eq!(
            kind(with(&["--scenarios=track,login"])),
            ErrorKind::InvalidValue
        );
        assert_eq!(kind(with(&["--scenarios="])), ErrorKind::InvalidValue);
        assert_eq!(kind(with(&["--rps", "5"])), ErrorKind::UnknownArgument);
        assert_eq!(kind(with(&["extra"])), ErrorKind::UnknownArgument);
        assert_eq!(kind(with(&["--warmup"])), ErrorKind::InvalidValue);
        let no_url = parse_args(["latchkey-load", "--secret-key", "k"], no_env);
        let Err(e) = no_url else {
            panic!("no base URL");
        };
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        assert!(e.to_string().contains("--base-url"), "{e}");
        assert!(
            e.to_string()
                .contains("tip: --base-url and --secret-key may come from LKCLI_BASE_URL"),
            "{e}"
        );
        let no_key = parse_args(
            ["latchkey-load", "--base-url", "http://127.0.0.1/v1"],
            no_env,
        );
        assert_eq!(kind(no_key), ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn refuses_bad_and_non_loopback_base_urls() {
        let base_url_error = |url: &str| {
            let Err(e) = parse_args(
                ["latchkey-load", "--secret-key=k", "--base-url", url],
                no_env,
            ) else {
                panic!("{url} was accepted");
            };
            assert_eq!(e.kind(), ErrorKind::ValueValidation, "{url}");
            let source =
                std::error::Error::source(&e).and_then(|s| s.downcast_ref::<BaseUrlError>());
            (source.cloned(), e.to_string())
        };
        for url in [
            "http://10.0.0.5:8787/v1", // plain-http: test input, refused (not loopback)
            "http://api.authsignal.com/v1", // plain-http: test input, refused (not loopback)
            "http://[::]/v1",          // plain-http: test input, refused (not loopback)
        ] {
            let (source, text) = base_url_error(url);
            assert!(
                matches!(source, Some(BaseUrlError::NotLoopback { .. })),
                "{url}: {text}"
            );
            assert!(text.contains("not loopback"), "{text}");
        }
        for url in [
            "https://127.0.0.1/v1",
            "127.0.0.1:8787/v1",
            "http://u:p@127.0.0.1/v1",
        ] {
            let (source, text) = base_url_error(url);
            assert!(
                matches!(source, Some(BaseUrlError::Invalid { .. })),
                "{url}: {text}"
            );
        }
    }

    #[test]
    fn environment_supplies_defaults_and_flags_win() {
        let env = env_of(&[
            (ENV_BASE_URL, "http://[::1]:8787/v1"),
            (ENV_SECRET_KEY, " from-env "),
            (ENV_TENANT_ID, "tenant-env"),
        ]);
        let opts = parse_args(["latchkey-load"], &env).unwrap();
        assert_eq!(opts.base_url.to_string(), "http://[::1]:8787/v1");
        assert_eq!(opts.secret_key, "from-env");
        assert_eq!(opts.tenant_id.as_deref(), Some("tenant-env"));

        let opts = parse_args(
            [
                "latchkey-load",
                "--secret-key",
                "flag",
                "--base-url=http://localhost:1/v1",
                "--tenant-id=flag-tenant",
            ],
            &env,
        )
        .unwrap();
        assert_eq!(opts.secret_key, "flag");
        assert_eq!(opts.base_url.to_string(), "http://localhost:1/v1");
        assert_eq!(opts.tenant_id.as_deref(), Some("flag-tenant"));
    }

    #[test]
    fn blank_or_old_environment_variables_are_not_used() {
        let blank = env_of(&[
            (ENV_BASE_URL, "http://127.0.0.1/v1"),
            (ENV_SECRET_KEY, "  "),
        ]);
        assert_eq!(
            kind(parse_args(["latchkey-load"], blank)),
            ErrorKind::MissingRequiredArgument
        );
        let old = env_of(&[
            ("LATCHKEY_BASE_URL", "http://127.0.0.1/v1"),
            ("LATCHKEY_SECRET_KEY", "k"),
        ]);
        assert_eq!(
            kind(parse_args(["latchkey-load"], old)),
            ErrorKind::MissingRequiredArgument
        );
        let opts = parse_args(BASE, env_of(&[("LATCHKEY_TENANT_ID", "t")])).unwrap();
        assert_eq!(opts.tenant_id, None);
    }

    #[test]
    fn a_bad_environment_value_is_refused_like_a_flag() {
        let env = env_of(&[
            (ENV_BASE_URL, "http://192.168.1.10/v1"), // plain-http: test input, refused
            (ENV_SECRET_KEY, "k"),
        ]);
        let Err(e) = parse_args(["latchkey-load"], &env) else {
            panic!("a non-loopback URL from the environment was accepted");
        };
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        assert!(e.to_string().contains("not loopback"), "{e}");
        // A flag replaces the bad value before it is ever parsed.
        assert!(parse_args(["latchkey-load", "--base-url=http://127.0.0.1/v1"], &env).is_ok());
    }

    #[test]
    fn help_names_every_flag_and_variable_but_no_secret() {
        let env = env_of(&[
            (ENV_SECRET_KEY, "very-secret"),
            (ENV_BASE_URL, "http://127.0.0.1/v1"),
        ]);
        let Err(e) = parse_args(["latchkey-load", "--help"], env) else {
            panic!("--help parsed as a run");
        };
        assert_eq!(e.kind(), ErrorKind::DisplayHelp);
        assert!(!e.use_stderr());
        let help = e.to_string();
        for text in [
            "--base-url <URL>",
            "--secret-key <KEY>",
            "--concurrency <N>",
            "--requests <N>",
            "--warmup <N>",
            "--users <N>",
            "--timeout-ms <MS>",
            "--scenarios <LIST>",
            "--tenant-id <ID>",
            "--server-pid <PID>",
            "[env: LKCLI_BASE_URL]",
            "[env: LKCLI_SECRET_KEY]",
            "[env: LKCLI_TENANT_ID]",
            "[default: 16]",
            "[default: track,validate]",
            "Comma-separated: track, validate, passkey",
            "Exits 1",
        ] {
            assert!(help.contains(text), "{text} missing from\n{help}");
        }
        // The bounds the help states are the ones enforced.
        for bound in [
            format!("1-{MAX_CONCURRENCY}"),
            format!("1-{MAX_REQUESTS}"),
            format!("0-{MAX_REQUESTS}"),
            format!("1-{MAX_TIMEOUT_MS}"),
        ] {
            assert!(help.contains(&bound), "{bound} missing from\n{help}");
        }
        assert!(help.lines().all(|l| l.len() <= 100), "{help}");
        assert!(!help.contains("very-secret"), "{help}");
        assert!(!help.contains("LATCHKEY_"), "{help}");
        assert_eq!(
            kind(parse_args(["latchkey-load", "-h"], no_env)),
            ErrorKind::DisplayHelp
        );
    }
}
