//! Authenticator-app TOTP (RFC 6238): enrollment and verification.
use super::*;

fn totp(secret: Secret, issuer: &str, account: &str) -> Result<Totp, Error> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(TOTP_DIGITS as u8)
        .with_step_duration(TOTP_STEP)
        .with_skew(1)
        .with_secret(secret)
        .with_issuer(Some(issuer))
        .with_account_name(account)
        .build()
        .map_err(|e| Error::Internal(format!("totp: {e}")))
}

/// What the user sees the account as in their app: their email, username, or id; `:` is the
/// label separator of the otpauth URI, so it is replaced.
async fn account_label(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
) -> Result<String, Error> {
    let user = get_user(services, tenant, user_id).await?;
    let label = user
        .and_then(|u| u.attributes.email.or(u.attributes.username))
        .unwrap_or_else(|| user_id.to_owned());
    Ok(label.replace(':', "_"))
}

/// `POST /client/user-authenticators/totp`: a new pending authenticator-app enrollment (any
/// earlier pending one is replaced), bound to the token's action and expiring in 10 minutes.
/// Complete once a code from it verifies, with the same token's action.
pub async fn enroll_totp(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    access: &Access,
) -> Result<TotpEnrollment, Error> {
    let claims = access.claims()?;
    let user_id = &claims.sub;
    let issuer = if tenant.settings.name.is_empty() {
        tenant.id.replace(':', "_")
    } else {
        tenant.settings.name.replace(':', "_")
    };
    let account = account_label(services, tenant, user_id).await?;
    // 160 bits, the length RFC 4226 §4 recommends for HMAC-SHA-1.
    let t = totp(
        Secret::from(services.random.bytes::<20>()),
        &issuer,
        &account,
    )?;
    let secret_b32 = t.secret().to_base32();
    let uri = t
        .to_url()
        .map_err(|e| Error::Internal(format!("totp uri: {e}")))?;
    let aid = services.random.hex_id(16);
    let item_key = auth_item_key(user_id, &aid);
    let mut item = pending_item(
        services,
        tenant,
        access,
        &aid,
        VerificationMethod::AuthenticatorApp,
    )?
    .with("lastStep", -1);
    for (name, value) in [
        ("otpSecret", secret_b32.as_str()),
        ("otpAlgorithm", "SHA1"),
        ("otpDigits", "6"),
        ("otpStep", "30"),
    ] {
        let sealed = seal(services, tenant, &item_key, name, value).await?;
        item = item.with(name, sealed);
    }
    start_enrollment(services, tenant, ctx, access, "totp.enroll.start", item).await?;
    Ok(TotpEnrollment {
        user_authenticator_id: aid,
        user_id: user_id.clone(),
        uri,
        secret: secret_b32,
    })
}

/// The step (of −1, 0, +1 around now) whose code matches, if any. All three are computed and
/// compared in constant time, whichever matches.
fn matching_step(t: &Totp, now: u64, code: &str) -> Option<i64> {
    let step = now / TOTP_STEP;
    let mut found = None;
    for s in [step.saturating_sub(1), step, step + 1] {
        let expected = t.generate(s * TOTP_STEP).to_string();
        if codes_match(expected.as_bytes(), code.as_bytes()) && found.is_none() {
            found = i64::try_from(s).ok();
        }
    }
    found
}

/// `POST /client/verify/totp {verificationCode}`: completes the token's action's pending
/// enrollment, or answers its challenge. Which codes count follows the matrix: the user's
/// verified authenticator apps (not one enrolled on this action) if the token may answer the
/// challenge, and the enrollment this action started if it may enroll. A pending enrollment of
/// another action, or an expired one, never counts.
pub async fn verify_totp(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    access: &Access,
    code: &str,
) -> Result<VerifyResponse, Error> {
    let claims = access.claims()?;
    let user_id = &claims.sub;
    check_throttle(services, tenant, user_id).await?;
    let ch_id = bound_id(tenant, claims, CeremonyKind::Totp);
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
    let now_epoch_s = now_epoch(services);
    let this = access.action_ref().unwrap_or_default();
    let auths = access.authenticators()?;
    let method = VerificationMethod::AuthenticatorApp;
    let mut candidates: Vec<&AuthenticatorRecord> = Vec::new();
    if access.grants.has(Grant::Challenge) {
        candidates.extend(auths.challengers(method, &this));
    }
    let pending = auths.pending_for(method, &this, now_epoch_s);
    if let Some(p) = pending {
        if access.grants.has(Grant::Enroll) {
            candidates.push(p);
        } else if candidates.is_empty() {
            access.require(Grant::Enroll)?;
        }
    }
    if candidates.is_empty() {
        return Err(Error::Invalid("The user has no authenticator app.".into()));
    }
    let now = u64::try_from(now_epoch_s).unwrap_or(0);
    let mut matched = None;
    if well_formed(code) {
        for record in candidates {
            let item = &record.item;
            let aid = aid_of(item);
            let item_key = auth_item_key(user_id, &aid);
            let Some(secret) = open(services, tenant, &item_key, item, "otpSecret").await? else {
                continue;
            };
            let bytes = Secret::try_from_base32(&secret)
                .map_err(|_| Error::Internal("stored TOTP secret is not base32".into()))?;
            // Authenticators enrolled through the Server API may name other parameters.
            let digits = open(services, tenant, &item_key, item, "otpDigits")
                .await?
                .and_then(|d| d.parse().ok())
                .unwrap_or(TOTP_DIGITS);
            if digits != TOTP_DIGITS {
                continue;
            }
            let t = totp(bytes, "Latchkey", "user")?;
            let last = item
                .attrs
                .get("lastStep")
                .and_then(Value::as_i64)
                .unwrap_or(-1);
            if let Some(step) = matching_step(&t, now, code) {
                // A step once accepted is never accepted again (RFC 6238 §5.2).
                if step > last {
                    matched = Some((record, step));
                    break;
                }
            }
        }
    }
    let Some((record, step)) = matched else {
        return Ok(
            match record_failure(
                services,
                tenant,
                ctx,
                access,
                &ch_id,
                method,
                "totp.verify.failed",
            )
            .await?
            {
                Failure::Wrong => VerifyResponse::failed(CODE_INVALID_OR_EXPIRED),
                Failure::Exhausted => VerifyResponse::failed(MAX_ATTEMPTS_EXCEEDED),
            },
        );
    };
    let enrolling = completes(record, access, now_epoch_s)?;
    let item = record.item.clone();
    let now_text = stamp(services)?;
    let recovery = if enrolling {
        first_strong_codes(services, tenant, user_id, auths, &claims.act, &claims.idk).await?
    } else {
        None
    };
    let v = item.version;
    let mut updated = item
        .clone()
        .with("lastStep", step)
        .with("lastVerifiedAt", now_text.clone())
        .with_version(v + 1);
    let verified_at = item.str("verifiedAt").unwrap_or(&now_text).to_owned();
    let (more, proof) =
        settle_code(services, tenant, access, &mut updated, enrolling, method).await?;
    // The version condition makes a step single-use even when two requests race with it.
    let mut ops = vec![WriteOp::Put {
        item: updated,
        condition: Condition::Version(v),
    }];
    ops.extend(more);
    let codes = recovery.map(|(codes, more)| {
        ops.extend(more);
        codes
    });
    if let Some(c) = ch {
        ops.push(WriteOp::Delete {
            pk: c.pk,
            sk: c.sk,
            condition: Condition::None,
        });
    }
    let change = Change {
        action: if enrolling {
            "totp.enroll"
        } else {
            "totp.verify"
        },
        target: audit_ref(services, &tenant.id, user_id).await?,
        summary: json!({ "authenticatorId": aid_of(&item), "actionCode": claims.act, "recoveryCodesIssued": codes.is_some() }),
        ops,
    };
    // A lost race (another request used this step first) fails the verification.
    succeed(
        services,
        tenant,
        ctx,
        access,
        change,
        proof,
        VerifyResponse {
            user_authenticator: enrolling.then(|| view(&item, user_id, &verified_at)),
            recovery_codes: codes,
            ..VerifyResponse::default()
        },
    )
    .await
}
