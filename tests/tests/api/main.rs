//! Latchkey end to end on the embedded adapters: the real routers (the local gateway's, and each
//! function's) driven with `Request`s through `tower::ServiceExt::oneshot`, on the one fixture
//! (`latchkey_tests::World`). Needs nothing but Rust, except `audit_export`'s tests (ignored
//! unless `.ci/run` gives them a Python with `cryptography`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The management API: its authorization matrix cell by cell, and the invite-to-grant flow.
mod admin;
/// `infra/audit/verify_export.py` against Rust's verifier, on intact and tampered exports.
mod audit_export;
/// The Client API's authorization matrix, cell by cell, and the regressions of issue #11.
mod authorization;
/// The backup drill's comparison of a copy with the live table.
mod backup;
/// The HTTP layer: wire errors, headers, request ids, the body limit, logs.
mod http;
/// Each function's IAM policy against the AWS calls its code makes.
mod iam;
/// A recorded API Gateway HTTP API (v2) event through `lambda_http` into a function's router.
mod lambda;
/// Authenticator-app TOTP, email OTP and recovery codes, mail read from `.eml` files.
mod otp;
/// Passkey and security-key ceremonies with a software authenticator.
mod passkeys;
/// Root-secret rotations: every keyed hash keeps working, with the re-key job.
mod rotation;
/// The Server API route by route, two tenants, and what the raw store holds.
mod server_api;
/// The status page: Statuspage v2 documents, the feed, the HTML page, operators, notices.
mod status;
