//! Operator tokens for the status page's write side, for automation: people sign in with a
//! passkey on the management plane, whose session the status function accepts as well
//! (`latchkey_status::SessionsOrTokens`). A token is scoped to the status page's writes (no
//! other function accepts it) and expires ([`MAX_TOKEN_DAYS`] at most).
//!
//! A token reads `lko_{16 hex id}_{secret}`. The id makes lookup one read of `OP#{id}`; the
//! store holds only HMAC-SHA256(operator-token pepper, whole token), compared in constant time
//! under the current and, during a rotation, the previous pepper. The token is shown once.
use crate::crypto::keys::{Purpose, purpose_keys};
use crate::crypto::{hex, unhex};
use crate::domain::Error;
use crate::domain::Services;
use crate::domain::audit::{AuditContext, Change, CommitError};
use crate::domain::keyring;
use crate::domain::status::PLATFORM_JOURNAL;
use crate::domain::timestamps::Timestamp as _;
use crate::ports::random::RandomExt as _;
use crate::ports::store::{Condition, Item, WriteOp};
use serde_json::json;

pub const TOKEN_PREFIX: &str = "lko_";
const ID_LEN: usize = 16;

/// An authenticated operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub id: String,
    pub name: String,
}

impl Operator {
    pub fn audit(&self, request_id: &str, source_ip: Option<String>) -> AuditContext {
        AuditContext {
            actor: format!("operator:{}", self.id),
            request_id: request_id.to_owned(),
            source_ip,
        }
    }
}

fn operator_pk(id: &str) -> String {
    format!("OP#{id}")
}

/// The operator id of a token, if it has the shape of one.
pub fn operator_id_of(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, tail) = rest.split_at_checked(ID_LEN)?;
    let secret = tail.strip_prefix('_')?;
    let id_ok = id
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    (id_ok && secret.len() >= 32).then_some(id)
}

/// The longest an operator token lives: people sign in with passkeys (the management plane's
/// sessions, which the status function accepts too); tokens are for automation, and expire.
pub const MAX_TOKEN_DAYS: i64 = 365;

/// Mints an operator token valid for `days`; returns (id, token). The token is not
/// recoverable afterwards.
pub async fn create_operator(
    services: &Services,
    ctx: &AuditContext,
    name: &str,
    days: i64,
) -> Result<(String, String), Error> {
    if name.trim().is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "operator name must be 1-100 characters".into(),
        ));
    }
    if !(1..=MAX_TOKEN_DAYS).contains(&days) {
        return Err(Error::Invalid(format!(
            "an operator token lives 1 to {MAX_TOKEN_DAYS} days"
        )));
    }
    let id = services.random.hex_id(ID_LEN / 2);
    let token = format!("{TOKEN_PREFIX}{id}_{}", services.random.token(32));
    let pepper = purpose_keys(services.secrets.as_ref(), Purpose::OperatorTokenPepper).await?;
    let now = services.clock.now();
    let expires = now + time::Duration::days(days);
    let item = Item::new(operator_pk(&id), "OPERATOR")
        .with("name", name)
        .with("hash", hex(pepper.mac(token.as_bytes())))
        .with("gen", keyring::current_generation(services).await?)
        .with("createdAt", now.rfc3339()?)
        .with("expiresAt", expires.rfc3339()?)
        .with("expiresEpoch", expires.unix_timestamp());
    let change = Change {
        action: "operator.create",
        target: format!("operator:{id}"),
        summary: json!({}),
        ops: vec![WriteOp::Put {
            item,
            condition: Condition::Absent,
        }],
    };
    match services.journal.commit(PLATFORM_JOURNAL, ctx, change).await {
        Ok(_) => Ok((id, token)),
        Err(CommitError::Condition { .. }) => Err(Error::Conflict("operator id exists; retry")),
        Err(e) => Err(e.into()),
    }
}

/// Revokes an operator token; it stops working at once.
pub async fn revoke_operator(
    services: &Services,
    ctx: &AuditContext,
    id: &str,
) -> Result<(), Error> {
    let item = services
        .store
        .get(&operator_pk(id), "OPERATOR")
        .await?
        .ok_or(Error::NotFound("operator"))?;
    let now = services.clock.now().rfc3339()?;
    let version = item.version;
    let change = Change {
        action: "operator.revoke",
        target: format!("operator:{id}"),
        summary: json!({}),
        ops: vec![WriteOp::Put {
            item: item.with("revokedAt", now).with_version(version + 1),
            condition: Condition::Version(version),
        }],
    };
    services
        .journal
        .commit(PLATFORM_JOURNAL, ctx, change)
        .await?;
    Ok(())
}

/// Checks an operator token: one read by its id, then the keyed hash compared in constant
/// time. Every failure is the same `Unauthorized`.
pub async fn authenticate(services: &Services, token: &str) -> Result<Operator, Error> {
    let id = operator_id_of(token).ok_or(Error::Unauthorized)?;
    let item = services
        .store
        .get(&operator_pk(id), "OPERATOR")
        .await?
        .ok_or(Error::Unauthorized)?;
    let live = item
        .attrs
        .get("expiresEpoch")
        .and_then(serde_json::Value::as_i64)
        .is_some_and(|at| at > services.clock.now().unix_timestamp());
    if item.attrs.get("revokedAt").is_some_and(|v| !v.is_null()) || !live {
        return Err(Error::Unauthorized);
    }
    let stored = item
        .str("hash")
        .and_then(unhex)
        .ok_or(Error::Unauthorized)?;
    // The HMAC's constant-time check: current pepper, previous, then the keyring's older ones.
    let Some(under) = keyring::verify(
        services,
        Purpose::OperatorTokenPepper,
        token.as_bytes(),
        &stored,
    )
    .await?
    else {
        return Err(Error::Unauthorized);
    };
    if under == keyring::Under::Older {
        rehash_token(services, &item, id, token).await;
    }
    Ok(Operator {
        id: id.to_owned(),
        name: item.str("name").unwrap_or_default().to_owned(),
    })
}

/// A token that verified under an older root generation is hashed again under the current
/// one, as secret keys are (`tenants::authenticate`): audited, conditional, and on failure only
/// logged.
async fn rehash_token(services: &Services, item: &Item, id: &str, token: &str) {
    let rehashed = async {
        let pepper = purpose_keys(services.secrets.as_ref(), Purpose::OperatorTokenPepper).await?;
        let next = item
            .clone()
            .with("hash", hex(pepper.mac(token.as_bytes())))
            .with("gen", keyring::current_generation(services).await?)
            .with_version(item.version + 1);
        let change = Change {
            action: "operator.rekey",
            target: format!("operator:{id}"),
            summary: json!({ "fields": ["hash"] }),
            ops: vec![WriteOp::Put {
                item: next,
                condition: Condition::Version(item.version),
            }],
        };
        let ctx = AuditContext::system("rekey", format!("rekey-{id}"));
        services
            .journal
            .commit(PLATFORM_JOURNAL, &ctx, change)
            .await?;
        Ok::<(), Error>(())
    }
    .await;
    if let Err(e) = rehashed {
        tracing::warn!(operator = id, error = %e, "operator token not re-hashed under the current root");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape_is_checked_before_any_read() {
        let secret = "a".repeat(43);
        assert_eq!(
            operator_id_of(&format!("lko_0123456789abcdef_{secret}")),
            Some("0123456789abcdef")
        );
        assert_eq!(
            operator_id_of(&format!("lk_0123456789abcdef_{secret}")),
            None
        );
        assert_eq!(
            operator_id_of(&format!("lko_0123456789ABCDEF_{secret}")),
            None
        );
        assert_eq!(operator_id_of("lko_0123456789abcdef_short"), None);
    }
}
