//! The domain: what Latchkey does, on the ports alone. Nothing here imports an AWS crate or
//! `lambda_http`.
pub mod aaguid;
pub mod actions;
pub mod admin;
pub mod audit;
pub mod authenticators;
pub mod authz;
pub mod backups;
pub mod ceremony;
pub mod enrollment;
pub mod export;
pub mod keyring;
pub mod limits;
pub mod machine;
pub mod otp;
pub mod passkeys;
pub mod profile;
pub mod rekey;
pub mod retry;
pub mod rules;
pub mod services;
pub mod shred;
pub mod status;
pub mod tenants;
pub mod timestamps;
pub mod tokens;
pub mod users;

pub use services::{CachePolicy, Ports, Services};

use crate::crypto::envelope::SealError;
use crate::ports::keys::KeyError;
use crate::ports::secrets::SecretsError;
use crate::ports::store::StoreError;

/// Every error the domain returns. [`crate::http::error`] maps each to the wire, once.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Bad input; the message is safe to show the caller (no personal data, no secrets).
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("unauthorized")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    /// The caller is known but this credential does not authorize the request; the message
    /// names the rule (safe to show: no personal data).
    #[error("refused: {0}")]
    Refused(String),
    /// The action's state machine refused the move; the message says what is allowed.
    #[error("invalid state: {0}")]
    InvalidState(String),
    #[error("too many requests")]
    TooManyRequests,
    /// Something failed inside; the message is for logs only.
    #[error("internal: {0}")]
    Internal(String),
    /// A backend (store, KMS, Secrets Manager) failed or could not be reached.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The deployment is set up wrong: a missing table, key or secret, a disabled key, a
    /// permission the role lacks. Answered as [`Error::Unavailable`] is, but logged as what it
    /// is, since no retry helps. The message is for logs only.
    #[error("misconfigured: {0}")]
    Misconfigured(String),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => Error::Unavailable(m),
            StoreError::Misconfigured(m) => Error::Misconfigured(m),
            StoreError::InvalidCursor => Error::Invalid("invalid cursor".into()),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Unavailable(m) => Error::Unavailable(m),
            KeyError::Misconfigured(m) => Error::Misconfigured(m),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<SealError> for Error {
    fn from(e: SealError) -> Self {
        match e {
            SealError::Key(k) => k.into(),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<SecretsError> for Error {
    fn from(e: SecretsError) -> Self {
        match e {
            SecretsError::Unavailable(m) => Error::Unavailable(m),
            SecretsError::Misconfigured(_)
            | SecretsError::NotFound(_)
            | SecretsError::Malformed(_) => Error::Misconfigured(e.to_string()),
        }
    }
}
