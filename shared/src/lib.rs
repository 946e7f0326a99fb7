//! Latchkey's common crate: the domain, the ports it needs, the adapters behind them (embedded and
//! AWS), and the HTTP layer every function shares.
//!
//! Layout follows `docs/architecture.md` §2: `domain/` never imports an AWS crate or `lambda_http`; `ports/`
//! are the small traits the domain asks for; `adapters/` implement them; `http/` maps domain errors
//! to the wire format once. [`wiring`], the only module that reads both [`config::Config`]
//! and the adapters, picks the adapters once, at cold start, and hands the domain its
//! [`domain::Services`].
pub mod adapters;
pub mod canonical;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod http;
pub mod ids;
#[cfg(test)]
mod layering;
pub mod logging;
pub mod ports;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod wiring;

pub use config::Config;
pub use domain::Services;
