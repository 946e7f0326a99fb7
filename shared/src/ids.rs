//! Formats of the identifiers that configuration and domain both check: tenant ids and secret
//! keys. A leaf module (it imports nothing of the crate), so neither depends on the other
//! through it.

/// The prefix of every secret key: `lk_{key id}_{secret}`.
pub const KEY_PREFIX: &str = "lk_";
/// A key id is this many lowercase hex digits.
pub const KEY_ID_LEN: usize = 16;

/// Tenant ids appear in keys and URLs: 3–64 of `[A-Za-z0-9_-]`.
/// A tenant id: 3-64 characters of A-Z, a-z, 0-9, '-' and '_', not starting with '_' (ids
/// starting with '_' are Latchkey's own journals, such as the status page's `_platform`).
pub fn valid_tenant_id(id: &str) -> bool {
    (3..=64).contains(&id.len())
        && !id.starts_with('_')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Splits a secret key into its key id, if it has the shape of one.
pub fn key_id_of(secret: &str) -> Option<&str> {
    let rest = secret.strip_prefix(KEY_PREFIX)?;
    let (id, tail) = rest.split_at_checked(KEY_ID_LEN)?;
    let secret_part = tail.strip_prefix('_')?;
    let id_ok = id
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    (id_ok && secret_part.len() >= 22).then_some(id)
}
