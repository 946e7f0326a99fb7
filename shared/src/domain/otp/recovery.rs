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

/// Fresh codes and the writes that replace the user's old ones. Each code remembers the
/// action it was minted on (`code#key`): it can never answer that action's challenge, so a
/// token cannot mint codes and then pass its own challenge with them.
async fn recovery_ops(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
    minted_for: &str,
) -> Result<(Vec<String>, Vec<WriteOp>), Error> {
    let pepper = purpose_keys(services.secrets.as_ref(), Purpose::OtpPepper).await?;
    let generation = keyring::current_generation(services).await?;
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
                .with("gen", generation.clone())
                .with("createdAt", now.clone())
                .with("mintedFor", minted_for),
            condition: Condition::Absent,
        });
    }
    Ok((codes, ops))
}

/// `POST /client/user-authenticators/recovery-codes`: a new set, the old ones void. The
/// matrix allows it only with a fresh proof of a strong factor on the token's action, or the
/// `add:authenticators` scope for a user who has a strong authenticator.
pub async fn regenerate_recovery_codes(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    access: &Access,
) -> Result<Vec<String>, Error> {
    access.require(Grant::RegenerateRecovery)?;
    let claims = access.claims()?;
    let minted_for = access.action_ref().unwrap_or_default();
    let (codes, ops) = recovery_ops(services, tenant, &claims.sub, &minted_for).await?;
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
    auths: &UserAuthenticators,
    act: &str,
    idk: &str,
) -> Result<Option<(Vec<String>, Vec<WriteOp>)>, Error> {
    if auths.has_strong() {
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
    let minted_for = crate::domain::actions::action_ref(act, idk);
    Ok(Some(
        recovery_ops(services, tenant, user_id, &minted_for).await?,
    ))
}

/// `POST /client/verify/recovery-code {verificationCode}`: uses one code up.
pub async fn verify_recovery_code(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    access: &Access,
    code: &str,
) -> Result<VerifyResponse, Error> {
    let claims = access.claims()?;
    let user_id = &claims.sub;
    check_throttle(services, tenant, user_id).await?;
    let ch_id = bound_id(tenant, claims, CeremonyKind::RecoveryCode);
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
    let pk = user_pk(&tenant.id, user_id);
    let mut found = None;
    if normalise_recovery(code).len() == 10 {
        // Under the current pepper, the previous, then each older generation's: a code minted
        // before any number of rotations still works (it is used once, so never re-keyed).
        let mut search = keyring::Search::new(services, Purpose::OtpPepper).await?;
        while let Some((key, _)) = search.next().await? {
            let sk = recovery_sk(&key, tenant, user_id, code);
            if let Some(item) = services.store.get(&pk, &sk).await? {
                found = Some(item);
                break;
            }
        }
    }
    let this = access.action_ref().unwrap_or_default();
    if let Some(item) = &found
        && item.str("mintedFor") == Some(this.as_str())
    {
        return Err(Error::Refused(
            "A recovery code cannot answer the challenge of the action it was issued on.".into(),
        ));
    }
    let Some(item) = found else {
        return Ok(
            match record_failure(
                services,
                tenant,
                ctx,
                access,
                &ch_id,
                VerificationMethod::RecoveryCode,
                "recovery_code.verify.failed",
            )
            .await?
            {
                Failure::Wrong => VerifyResponse::failed(CODE_INVALID_OR_EXPIRED),
                Failure::Exhausted => VerifyResponse::failed(MAX_ATTEMPTS_EXCEEDED),
            },
        );
    };
    let code_name = claims.act.clone();
    let action_op = settle_own_action(
        services,
        tenant,
        access,
        Event::CeremonySucceeded,
        VerificationMethod::RecoveryCode,
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
    let proof = Proof {
        method: VerificationMethod::RecoveryCode,
        at: now_epoch(services),
    };
    succeed(
        services,
        tenant,
        ctx,
        access,
        change,
        Some(proof),
        VerifyResponse::default(),
    )
    .await
}
