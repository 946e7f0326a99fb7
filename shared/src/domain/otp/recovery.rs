//! Recovery codes: ten, issued with a user's first strong authenticator, stored as keyed
//! hashes, each usable once, regenerable.
use super::*;

const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// Recovery codes as shown: `xxxxx-xxxxx`, 10 characters from a 31-letter alphabet without
/// look-alikes (≈ 49.5 bits each).
fn new_recovery_code(services: &Services) -> String {
    let mut out = String::with_capacity(11);
    for i in 0..10 {
        if i == 5 {
            out.push('-');
        }
        let n = services.random.below(RECOVERY_ALPHABET.len() as u64) as usize;
        out.push(char::from(RECOVERY_ALPHABET[n]));
    }
    out
}

pub(super) fn normalise_recovery(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn recovery_sk(key: &PurposeKey, tenant: &Tenant, user_id: &str, code: &str) -> String {
    format!(
        "RC#{}",
        hex(keyed_hash(
            key,
            &[&tenant.id, user_id, "recovery", &normalise_recovery(code)]
        ))
    )
}

/// Fresh codes and the writes that replace the user's old ones.
async fn recovery_ops(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
) -> Result<(Vec<String>, Vec<WriteOp>), Error> {
    let pepper = purpose_keys(services.secrets.as_ref(), Purpose::OtpPepper).await?;
    let pk = user_pk(&tenant.id, user_id);
    let mut ops: Vec<WriteOp> = services
        .store
        .query(Query::partition(pk.clone()).prefix("RC#").limit(1000))
        .await?
        .items
        .into_iter()
        .map(|old| WriteOp::Delete {
            pk: old.pk,
            sk: old.sk,
            condition: Condition::None,
        })
        .collect();
    let now = stamp(services)?;
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| new_recovery_code(services))
        .collect();
    for code in &codes {
        ops.push(WriteOp::Put {
            item: Item::new(&pk, recovery_sk(&pepper.current, tenant, user_id, code))
                .with("createdAt", now.clone()),
            condition: Condition::Absent,
        });
    }
    Ok((codes, ops))
}

/// `POST /client/user-authenticators/recovery-codes`: a new set, the old ones void. Only for a
/// user with a strong authenticator.
pub async fn regenerate_recovery_codes(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
) -> Result<Vec<String>, Error> {
    if !has_strong(services, tenant, &claims.sub).await? {
        return Err(Error::Invalid(
            "Recovery codes need a verified authenticator app, passkey or security key.".into(),
        ));
    }
    let (codes, ops) = recovery_ops(services, tenant, &claims.sub).await?;
    let change = Change {
        action: "recovery_codes.regenerate",
        target: audit_ref(services, &tenant.id, &claims.sub).await?,
        summary: json!({ "count": codes.len() }),
        ops,
    };
    commit(services, tenant, ctx, change).await?;
    Ok(codes)
}

/// Recovery codes for a user's first strong authenticator: `Some` (with the writes) only if
/// the user had none before.
pub(crate) async fn first_strong_codes(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
) -> Result<Option<(Vec<String>, Vec<WriteOp>)>, Error> {
    if has_strong(services, tenant, user_id).await? {
        return Ok(None);
    }
    let existing = services
        .store
        .query(
            Query::partition(user_pk(&tenant.id, user_id))
                .prefix("RC#")
                .limit(1),
        )
        .await?
        .items;
    if !existing.is_empty() {
        return Ok(None);
    }
    Ok(Some(recovery_ops(services, tenant, user_id).await?))
}

/// `POST /client/verify/recovery-code {verificationCode}`: uses one code up.
pub async fn verify_recovery_code(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
    code: &str,
) -> Result<VerifyResponse, Error> {
    let user_id = &claims.sub;
    check_throttle(services, tenant, user_id).await?;
    let ch_id = bound_id(tenant, claims, "rc");
    let ch = services
        .store
        .get(&challenge_pk(&tenant.id, &ch_id), "CH")
        .await?;
    if ch
        .as_ref()
        .is_some_and(|c| c.attrs.get("failed") == Some(&Value::Bool(true)))
    {
        return Ok(VerifyResponse::failed(MAX_ATTEMPTS_EXCEEDED));
    }
    let pepper = purpose_keys(services.secrets.as_ref(), Purpose::OtpPepper).await?;
    let pk = user_pk(&tenant.id, user_id);
    let mut found = None;
    if normalise_recovery(code).len() == 10 {
        for key in std::iter::once(&pepper.current).chain(pepper.previous.iter()) {
            let sk = recovery_sk(key, tenant, user_id, code);
            if let Some(item) = services.store.get(&pk, &sk).await? {
                found = Some(item);
                break;
            }
        }
    }
    let Some(item) = found else {
        return Ok(
            match record_failure(
                services,
                tenant,
                ctx,
                claims,
                &ch_id,
                "RECOVERY_CODE",
                "recovery_code.verify.failed",
            )
            .await?
            {
                Failure::Wrong => VerifyResponse::failed(CODE_INVALID_OR_EXPIRED),
                Failure::Exhausted => VerifyResponse::failed(MAX_ATTEMPTS_EXCEEDED),
            },
        );
    };
    let action = Some((claims.act.clone(), claims.idk.clone()));
    let (action_op, code_name, key) = settle_action(
        services,
        tenant,
        user_id,
        action,
        "CHALLENGE_SUCCEEDED",
        "RECOVERY_CODE",
    )
    .await?;
    // Deleting the code under an existence condition makes it single-use, even when raced.
    let mut ops = vec![WriteOp::Delete {
        pk: item.pk,
        sk: item.sk,
        condition: Condition::Exists,
    }];
    ops.extend(action_op);
    let change = Change {
        action: "recovery_code.verify",
        target: audit_ref(services, &tenant.id, user_id).await?,
        summary: json!({ "actionCode": code_name }),
        ops,
    };
    succeed(
        services,
        tenant,
        ctx,
        claims,
        change,
        (&code_name, &key),
        VerifyResponse::default(),
    )
    .await
}
