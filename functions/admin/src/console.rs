//! The console at `/console`: one HTML page, two scripts and one stylesheet, compiled into this
//! function, that run in the browser on the management API (`/v1/admin`) and the Client API's
//! passkey ceremonies on the console tenant (`/v1/client`), on the same origin.
//!
//! Why a small client of the API rather than server-rendered pages: every decision (who may
//! do what, what a rule may say, what an invite is worth) is already made once, by the route
//! table and the domain, behind the JSON API that automation uses too; pages rendered on the
//! server would be a second caller of the domain to keep in step, and the passkey ceremonies
//! need a script in any case. The script is plain JavaScript with no framework, no build step
//! and nothing from a CDN (`functions/admin/console/`), so what runs is what is reviewed.
//!
//! The Content-Security-Policy admits only these files and same-origin fetches: no
//! inline script or style, no framing, no form posts elsewhere, no plugins.
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

pub const PAGE: &str = include_str!("../console/index.html");
pub const SCRIPT: &str = include_str!("../console/app.js");
/// WebAuthn's JSON objects to the browser's and back: one copy, for the console and the demo
/// page that latchkey-local serves.
pub const WEBAUTHN: &str = include_str!("../console/webauthn.js");
pub const STYLE: &str = include_str!("../console/app.css");

/// The console's policy: its own files, its own origin's API, nothing else.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'; object-src 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    // Revalidated on every load: a deployment's new script is never mixed with an old page.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// `GET /console`: the page (every view is a `#/…` location within it).
pub async fn page() -> Response {
    asset(PAGE, "text/html; charset=utf-8")
}

/// `GET /console/app.js`.
pub async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

/// `GET /console/webauthn.js`.
pub async fn webauthn() -> Response {
    asset(WEBAUTHN, "text/javascript; charset=utf-8")
}

/// `GET /console/app.css`.
pub async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_files_and_has_no_inline_script_or_style() {
        let page = PAGE.to_ascii_lowercase();
        // Every <script> has a same-origin src; no inline handlers or style attributes, which
        // the policy would block (and which a reviewer should not have to look for).
        for (i, _) in page.match_indices("<script") {
            let tag = &page[i..i + page[i..].find('>').unwrap()];
            assert!(tag.contains("src=\"/console/"), "{tag}");
        }
        for needle in [
            " style=",
            "<style",
            " onclick=",
            " onload=",
            // Any address at all: the page names only its own files, by path.
            "://",
        ] {
            assert!(!page.contains(needle), "the page contains {needle}");
        }
        // The script names other addresses only as examples in its messages; it never
        // builds markup from strings or evaluates text.
        let mut script = format!("{SCRIPT}{WEBAUTHN}").to_ascii_lowercase();
        for example in [
            "https://example.com",
            "https://app.example.com",
            "http://localhost",
        ] {
            script = script.replace(example, "");
        }
        for needle in [
            "://",
            "eval(",
            "new function",
            "innerhtml",
            "outerhtml",
            "document.write",
        ] {
            assert!(!script.contains(needle), "app.js contains {needle}");
        }
        assert!(
            !STYLE.contains("url(http"),
            "app.css loads something remote"
        );
        assert!(!STYLE.contains("@import"), "app.css imports something");
    }

    #[test]
    fn the_policy_admits_no_inline_code_and_no_other_origin() {
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(CSP.contains(directive), "{directive}");
        }
        assert!(!CSP.contains("unsafe"));
    }
}
