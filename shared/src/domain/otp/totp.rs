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
/// earlier pending one is replaced). Complete once a code from it verifies.
pub async fn enroll_totp(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
) -> Result<TotpEnrollment, Error> {
    check_may_enroll(services, tenant, claims).await?;
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
    let mut item = Item::new(user_pk(&tenant.id, user_id), format!("AUTH#{aid}"))
        .with("verificationMethod", "AUTHENTICATOR_APP")
        .with("createdAt", stamp(services)?)
        .with("isDefault", false)
        .with("pending", true)
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
    start_enrollment(
        services,
        tenant,
        ctx,
        user_id,
        ("AUTHENTICATOR_APP", "totp.enroll.start"),
        item,
    )
    .await?;
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

/// `POST /client/verify/totp {verificationCode}`: completes a pending enrollment or answers a
/// challenge for the token's action.
pub async fn verify_totp(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
    code: &str,
) -> Result<VerifyResponse, Error> {
    let user_id = &claims.sub;
    check_throttle(services, tenant, user_id).await?;
    let ch_id = bound_id(tenant, claims, "totp");
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
    let candidates = authenticators_of(services, tenant, user_id, "AUTHENTICATOR_APP").await?;
    if candidates.is_empty() {
        return Err(Error::Invalid("The user has no authenticator app.".into()));
    }
    let now = u64::try_from(now_epoch(services)).unwrap_or(0);
    let mut matched = None;
    if well_formed(code) {
        for item in candidates {
            let aid = aid_of(&item);
            let item_key = auth_item_key(user_id, &aid);
            let Some(secret) = open(services, tenant, &item_key, &item, "otpSecret").await? else {
                continue;
            };
            let bytes = Secret::try_from_base32(&secret)
                .map_err(|_| Error::Internal("stored TOTP secret is not base32".into()))?;
            // Authenticators enrolled through the Server API may name other parameters.
            let digits = open(services, tenant, &item_key, &item, "otpDigits")
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
                    matched = Some((item, step));
                    break;
                }
            }
        }
    }
    let Some((item, step)) = matched else {
        return Ok(
            match record_failure(
                services,
                tenant,
                ctx,
                claims,
                &ch_id,
                "AUTHENTICATOR_APP",
                "totp.verify.failed",
            )
            .await?
            {
                Failure::Wrong => VerifyResponse::failed(CODE_INVALID_OR_EXPIRED),
                Failure::Exhausted => VerifyResponse::failed(MAX_ATTEMPTS_EXCEEDED),
            },
        );
    };
    let now_text = stamp(services)?;
    let enrolling = item.str("verifiedAt").is_none();
    let recovery = if enrolling {
        first_strong_codes(services, tenant, user_id).await?
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
    if enrolling {
        updated.attrs.remove("pending");
        updated = updated.with("verifiedAt", now_text.clone());
    }
    // The version condition makes a step single-use even when two requests race with it.
    let mut ops = vec![WriteOp::Put {
        item: updated,
        condition: Condition::Version(v),
    }];
    let action = Some((claims.act.clone(), claims.idk.clone()));
    let (action_op, act, key) = settle_action(
        services,
        tenant,
        user_id,
        action,
        "CHALLENGE_SUCCEEDED",
        "AUTHENTICATOR_APP",
    )
    .await?;
    ops.extend(action_op);
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
        summary: json!({ "authenticatorId": aid_of(&item), "actionCode": act, "recoveryCodesIssued": codes.is_some() }),
        ops,
    };
    // A lost race (another request used this step first) fails the verification.
    succeed(
        services,
        tenant,
        ctx,
        claims,
        change,
        (&act, &key),
        VerifyResponse {
            user_authenticator: enrolling.then(|| view(&item, user_id, &verified_at)),
            recovery_codes: codes,
            ..VerifyResponse::default()
        },
    )
    .await
}
