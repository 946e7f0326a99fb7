//! What every challenge ceremony shares (passkeys, security keys, one-time codes): where a
//! ceremony's item lives, the id of a ceremony bound to a token, settling the tracked action,
//! and committing a change with its audit event.
use crate::domain::Error;
use crate::domain::audit::{AuditContext, Change, CommitError};
use crate::domain::tenants::Tenant;
use crate::domain::tokens::Claims;
use crate::domain::users::user_pk;
use crate::ports::random::RandomExt as _;
use crate::ports::store::{Condition, Item, WriteOp};
use crate::runtime::Services;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use time::format_description::well_known::Rfc3339;

/// The action a usernameless sign-in records when the page named none.
pub const DEFAULT_SIGN_IN_ACTION: &str = "signIn";

pub(crate) fn challenge_pk(tenant_id: &str, id: &str) -> String {
    format!("T#{tenant_id}#CH#{id}")
}

/// The ceremony id of a security-key ceremony: bound to the token's tenant, user and action
/// instance, since the wire carries no challenge id. Not secret: only the holder of a token for
/// that user can start or finish it.
pub(crate) fn bound_id(tenant: &Tenant, claims: &Claims, step: &str) -> String {
    let mut h = Sha256::new();
    for part in [&tenant.id, &claims.sub, &claims.act, &claims.idk] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let hex = crate::crypto::hex(&digest[..20]);
    format!("{step}.{hex}")
}

/// The action a finished ceremony completes: moved to `state`, or (usernameless sign-in)
/// created in it. Returns the write and the idempotency key. Shared with the OTP ceremonies.
pub(crate) async fn settle_action(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
    action: Option<(String, String)>,
    state: &str,
    method: &str,
) -> Result<(Option<WriteOp>, String, String), Error> {
    let (code, key) = action.unwrap_or_default();
    let code = if code.is_empty() {
        DEFAULT_SIGN_IN_ACTION.to_owned()
    } else {
        code
    };
    let now = stamp(services)?;
    let pk = user_pk(&tenant.id, user_id);
    if !key.is_empty() {
        let sk = format!("ACT#{code}#{key}");
        let Some(item) = services.store.get(&pk, &sk).await? else {
            return Ok((None, code, key));
        };
        let v = item.version;
        let updated = item
            .with("state", state)
            .with("verificationMethod", method)
            .with("stateUpdatedAt", now.clone())
            .with("updatedAt", now)
            .with_version(v + 1);
        return Ok((
            Some(WriteOp::Put {
                item: updated,
                condition: Condition::Version(v),
            }),
            code,
            key,
        ));
    }
    let key = services.random.hex_id(16);
    let item = Item::new(&pk, format!("ACT#{code}#{key}"))
        .with("actionCode", code.clone())
        .with("idempotencyKey", key.clone())
        .with("state", state)
        .with("verificationMethod", method)
        .with("createdAt", now.clone())
        .with("createdEpoch", now_epoch(services))
        .with("updatedAt", now.clone())
        .with("stateUpdatedAt", now)
        .with("ruleIds", Vec::<String>::new())
        .with("output", json!({}));
    Ok((
        Some(WriteOp::Put {
            item,
            condition: Condition::Absent,
        }),
        code,
        key,
    ))
}

pub(crate) async fn commit(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    change: Change,
) -> Result<(), Error> {
    match services.journal.commit(&tenant.id, ctx, change).await {
        Ok(_) => Ok(()),
        Err(CommitError::Condition { .. }) => Err(Error::Conflict("the user changed; retry")),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn now_epoch(services: &Services) -> i64 {
    services.clock.now().unix_timestamp()
}

pub(crate) fn stamp(services: &Services) -> Result<String, Error> {
    services
        .clock
        .now()
        .format(&Rfc3339)
        .map_err(|e| Error::Internal(e.to_string()))
}
