//! Field-level envelope encryption and purpose keys.
//!
//! Why a small layer of our own rather than `aws-esdk` / `aws-db-esdk`: measured on these
//! machines (`docs/tooling.md`), the AWS crates double a function's binary, have no
//! data-key cache in the Rust KMS keyring, and `aws-db-esdk` is DynamoDB-only, which would leave
//! the embedded store unencrypted. This layer is AES-256-GCM (RustCrypto `aes-gcm`) with data
//! keys from the [`KeyVault`](crate::ports::KeyVault) port, about 200 lines, and fixed test
//! vectors pin its format.
pub mod envelope;
pub mod jwt;
pub mod keys;
pub mod signatures;

pub use envelope::{Envelope, FieldContext, WrappedKey};

/// Lower-case hex, the one text form of hashes and MACs stored in items (the `hex` crate).
pub fn hex(bytes: impl AsRef<[u8]>) -> String {
    ::hex::encode(bytes)
}

/// The bytes of a hex string, or `None` if it is not one.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    ::hex::decode(text).ok()
}
