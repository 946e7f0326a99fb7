//! Where the load goes: the base URL, which must name a loopback host, and the check, before
//! the first request, that the host also resolves to loopback only.
use crate::LoadError;
use http::Uri;
use std::fmt;
use std::net::IpAddr;

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

/// Why a base URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseUrlError {
    /// Not a plain-http absolute URL without credentials, query or fragment.
    Invalid { url: String, reason: String },
    /// A well-formed URL whose host is not loopback.
    NotLoopback { url: String, host: String },
}

impl fmt::Display for BaseUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { url, reason } => write!(f, "base URL `{url}` is invalid: {reason}"),
            Self::NotLoopback { url, host } => write!(
                f,
                "refusing to send load to `{url}`: host `{host}` is not loopback. \
                 Load may only target 127.0.0.0/8, localhost or [::1]"
            ),
        }
    }
}

impl std::error::Error for BaseUrlError {}

impl BaseUrl {
    /// Parses and checks a base URL: plain `http`, no credentials, query or fragment, and a
    /// loopback host.
    pub fn parse(url: &str) -> Result<Self, BaseUrlError> {
        let bad = |reason: &str| BaseUrlError::Invalid {
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
            return Err(BaseUrlError::NotLoopback {
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

    /// The host as written in the URL (`127.0.0.1`, `localhost`, `[::1]`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, 80 when the URL names none.
    pub fn port(&self) -> u16 {
        self.port
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

/// `localhost` could be mapped elsewhere in /etc/hosts: make sure every address the connector
/// could use is loopback before sending anything.
pub(crate) async fn ensure_resolves_to_loopback(base: &BaseUrl) -> Result<(), LoadError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_joins() {
        let base = BaseUrl::parse("http://127.0.0.1:8787/v1/").unwrap();
        assert_eq!(base.to_string(), "http://127.0.0.1:8787/v1");
        assert_eq!(base.join("/validate"), "http://127.0.0.1:8787/v1/validate");
        assert_eq!((base.host(), base.port()), ("127.0.0.1", 8787));
        let bare = BaseUrl::parse("http://localhost").unwrap();
        assert_eq!(
            (bare.join("/health"), bare.port()),
            ("http://localhost/health".into(), 80)
        );
    }

    #[test]
    fn refuses_malformed_urls() {
        for url in [
            "https://127.0.0.1/v1",
            "ftp://127.0.0.1/v1",
            "127.0.0.1:8787/v1",
            "http://u:p@127.0.0.1/v1",
            "http://127.0.0.1/v1?x=1",
            "http://127.0.0.1/v1#top",
            "",
        ] {
            assert!(
                matches!(BaseUrl::parse(url), Err(BaseUrlError::Invalid { .. })),
                "{url}"
            );
        }
    }

    #[test]
    fn refuses_non_loopback_hosts() {
        for url in [
            "http://10.0.0.5:8787/v1", // plain-http: test input, refused (not loopback)
            "http://192.168.1.10/v1",  // plain-http: test input, refused (not loopback)
            "http://0.0.0.0:8787/v1",  // plain-http: test input, refused (not loopback)
            "http://api.authsignal.com/v1", // plain-http: test input, refused (not loopback)
            "http://127.0.0.1.example.com/v1", // plain-http: test input, refused (not loopback)
            "http://localhost.example.com/v1", // plain-http: test input, refused (not loopback)
            "http://[::]:8787/v1",     // plain-http: test input, refused (not loopback)
            "http://[2001:db8::1]/v1", // plain-http: test input, refused (not loopback)
        ] {
            let refused = BaseUrl::parse(url);
            assert!(
                matches!(refused, Err(BaseUrlError::NotLoopback { .. })),
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

    #[tokio::test]
    async fn loopback_literals_resolve_to_loopback() {
        for url in ["http://127.0.0.1:8787/v1", "http://[::1]:8787/v1"] {
            let base = BaseUrl::parse(url).unwrap();
            assert_eq!(ensure_resolves_to_loopback(&base).await, Ok(()), "{url}");
        }
    }
}
