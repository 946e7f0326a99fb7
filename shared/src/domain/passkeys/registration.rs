//! Registering passkeys (discoverable, user verification required) and security keys
//! (second factor): options, then the authenticator's response, then the new authenticator
//! committed with its audit event and, for a first strong factor, recovery codes.
use super::*;

pub async fn registration_options(
    services: &Services,
    tenant: &Tenant,
    access: &Access,
    username: Option<&str>,
) -> Result<(String, CreationChallengeResponse), Error> {
    let claims = access.claims()?;
    let rp = relying_party(tenant)?;
    let user_id = &claims.sub;
    let handle = match user_handle(services, tenant, user_id).await? {
        Some(h) => h,
        None => Uuid::from_bytes(services.random.bytes::<16>()),
    };
    let exclude = credential_ids_of(access.authenticators()?);
    let name = username
        .filter(|n| !n.is_empty() && n.len() <= 256)
        .unwrap_or(user_id);
    let (mut options, state): (CreationChallengeResponse, PasskeyRegistration) = rp
        .start_passkey_registration(handle, name, name, Some(exclude))
        .map_err(|e| Error::Internal(format!("registration start: {e}")))?;
    // Usernameless sign-in needs the credential to be discoverable: ask for a resident key.
    // (Done on the JSON: webauthn-rs's prelude does not export the requirement type.)
    let mut json = to_value(&options)?;
    json["publicKey"]["authenticatorSelection"]["residentKey"] = json!("required");
    json["publicKey"]["authenticatorSelection"]["requireResidentKey"] = json!(true);
    options = serde_json::from_value(json).map_err(|e| Error::Internal(format!("options: {e}")))?;
    let id = save(
        services,
        tenant,
        Ceremony {
            kind: CeremonyKind::PasskeyRegister,
            state: to_value(&state)?,
            user_id: Some(user_id.clone()),
            action: Some((claims.act.clone(), claims.idk.clone())),
            extra: json!({ "handle": handle.to_string(), "name": name }),
            anonymous: None,
            checks: Vec::new(),
        },
    )
    .await?;
    Ok((id, options))
}

pub async fn finish_registration(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    access: &Access,
    challenge_id: &str,
    credential: &RegisterPublicKeyCredential,
) -> Result<(Verified, Value), Error> {
    let ceremony = take(
        services,
        tenant,
        challenge_id,
        &[CeremonyKind::PasskeyRegister],
    )
    .await?;
    register(
        services,
        tenant,
        ctx,
        access,
        ceremony,
        credential,
        Kind::Passkey,
    )
    .await
}

/// `POST /client/user-authenticators/security-key/registration-options`: the bare options.
pub async fn security_key_registration_options(
    services: &Services,
    tenant: &Tenant,
    access: &Access,
) -> Result<CreationChallengeResponse, Error> {
    let claims = access.claims()?;
    let rp = relying_party(tenant)?;
    let user_id = &claims.sub;
    let handle = match user_handle(services, tenant, user_id).await? {
        Some(h) => h,
        None => Uuid::from_bytes(services.random.bytes::<16>()),
    };
    let exclude = credential_ids_of(access.authenticators()?);
    let (options, state): (CreationChallengeResponse, SecurityKeyRegistration) = rp
        .start_securitykey_registration(handle, user_id, user_id, Some(exclude), None, None)
        .map_err(|e| Error::Internal(format!("registration start: {e}")))?;
    let options = without_cred_protect(options)?;
    save_as(
        services,
        tenant,
        bound_id(tenant, claims, CeremonyKind::SecurityKeyRegister),
        Condition::None,
        Ceremony {
            kind: CeremonyKind::SecurityKeyRegister,
            state: to_value(&state)?,
            user_id: Some(user_id.clone()),
            action: Some((claims.act.clone(), claims.idk.clone())),
            extra: json!({ "handle": handle.to_string() }),
            anonymous: None,
            checks: Vec::new(),
        },
    )
    .await?;
    Ok(options)
}

/// webauthn-rs asks security keys for the credProtect policy `userVerificationRequired`
/// while its security-key flow sets `residentKey: "discouraged"`; Chromium refuses that
/// combination ("Requested protection policy is inconsistent", a `NotSupportedError`), so no
/// browser could enroll a key. The options go out without the credProtect request: a
/// non-discoverable credential needs no protection policy (CTAP 2.1 §12.1), and webauthn-rs
/// does not require the extension's output at finish.
fn without_cred_protect(
    options: CreationChallengeResponse,
) -> Result<CreationChallengeResponse, Error> {
    let mut json = to_value(&options)?;
    if let Some(ext) = json["publicKey"]
        .get_mut("extensions")
        .and_then(Value::as_object_mut)
    {
        ext.remove("credentialProtectionPolicy");
        ext.remove("enforceCredentialProtectionPolicy");
    }
    serde_json::from_value(json).map_err(|e| Error::Internal(format!("options: {e}")))
}

/// `POST /client/user-authenticators/security-key` with the bare registration response.
pub async fn finish_security_key_registration(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    access: &Access,
    credential: &RegisterPublicKeyCredential,
) -> Result<(Verified, Value), Error> {
    let claims = access.claims()?;
    let ceremony = take(
        services,
        tenant,
        &bound_id(tenant, claims, CeremonyKind::SecurityKeyRegister),
        &[CeremonyKind::SecurityKeyRegister],
    )
    .await?;
    register(
        services,
        tenant,
        ctx,
        access,
        ceremony,
        credential,
        Kind::SecurityKey,
    )
    .await
}

/// Finishes a registration of either kind: verifies it with webauthn-rs, then stores the
/// authenticator, the credential index, the user handle and the settled action with the audit
/// event, in one transaction.
async fn register(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    access: &Access,
    ceremony: Item,
    credential: &RegisterPublicKeyCredential,
    kind: Kind,
) -> Result<(Verified, Value), Error> {
    let user_id = ceremony.str("userId").unwrap_or_default().to_owned();
    let action = Some((
        ceremony.str("actionCode").unwrap_or_default().to_owned(),
        ceremony
            .str("idempotencyKey")
            .unwrap_or_default()
            .to_owned(),
    ));
    let claims = access.claims()?;
    if user_id != claims.sub || action.as_ref() != Some(&(claims.act.clone(), claims.idk.clone())) {
        return Err(Error::Invalid(
            "The challenge belongs to another user or action.".into(),
        ));
    }
    let auths = access.authenticators()?;
    let rp = relying_party(tenant)?;
    let outcome = match kind {
        Kind::Passkey => {
            let state: PasskeyRegistration = from_value(ceremony.attrs.get("state"))?;
            rp.finish_passkey_registration(credential, &state)
                .map(|p| (p.cred_id().clone(), to_value(&p)))
        }
        Kind::SecurityKey => {
            let state: SecurityKeyRegistration = from_value(ceremony.attrs.get("state"))?;
            rp.finish_securitykey_registration(credential, &state)
                .map(|k| (k.cred_id().clone(), to_value(&k)))
        }
    };
    let (raw_id, stored) = match outcome {
        Ok((id, stored)) => (id, stored?),
        Err(e) => {
            record_failure(
                services,
                tenant,
                ctx,
                access,
                Some(&user_id),
                action,
                if kind == Kind::Passkey {
                    "passkey.register.failed"
                } else {
                    "security_key.register.failed"
                },
                &e.to_string(),
            )
            .await?;
            return Err(Error::Invalid(format!("The credential was refused: {e}.")));
        }
    };
    let extra = ceremony.attrs.get("extra").cloned().unwrap_or(Value::Null);
    let handle = extra["handle"].as_str().unwrap_or_default().to_owned();
    let username = extra["name"].as_str().map(str::to_owned);
    let cred_id = URL_SAFE_NO_PAD.encode::<&[u8]>(raw_id.as_ref());
    let (aaguid, name) = aaguid::display_name(
        credential.response.attestation_object.as_ref(),
        kind == Kind::SecurityKey,
    );
    let backup_eligible = stored["cred"]["backup_eligible"].as_bool().unwrap_or(false);
    let backed_up = stored["cred"]["backup_state"].as_bool().unwrap_or(false);
    let aid = services.random.hex_id(16);
    let now = stamp(services)?;
    let pk = user_pk(&tenant.id, &user_id);
    let registered_name = username.clone().unwrap_or_else(|| user_id.clone());
    let record = credentials::record_item(
        &tenant.id,
        &cred_id,
        &user_id,
        &aid,
        kind,
        (kind == Kind::Passkey && !handle.is_empty()).then_some(handle.as_str()),
        &registered_name,
        stored.clone(),
    );
    let mut authenticator = Item::new(&pk, format!("AUTH#{aid}"))
        .with("verificationMethod", kind.method().as_str())
        .with("createdAt", now.clone())
        .with("verifiedAt", now.clone())
        .with("isDefault", false)
        .with("credentialId", cred_id.clone())
        .with("name", name)
        .with("backupEligible", backup_eligible)
        .with("backedUp", backed_up)
        .with("enrolledFor", access.action_ref().unwrap_or_default())
        .with("userName", registered_name)
        .with(kind.field(), stored);
    if let Some(a) = aaguid {
        authenticator = authenticator.with("aaguid", a.hyphenated().to_string());
    }
    let view = json!({
        "userAuthenticatorId": aid,
        "userId": user_id,
        "verificationMethod": kind.method().as_str(),
        "createdAt": now,
        "verifiedAt": now,
        "isDefault": false,
        "webauthnCredential": crate::domain::authenticators::webauthn_view(&authenticator),
    });
    let mut ops = vec![
        WriteOp::Put {
            item: authenticator,
            condition: Condition::Absent,
        },
        WriteOp::Put {
            item: record,
            condition: Condition::Absent,
        },
    ];
    let user = services.store.get(&pk, "USER").await?;
    match user {
        Some(u) if u.str("webauthnUserId").is_some() => {}
        Some(u) => {
            let v = u.version;
            ops.push(WriteOp::Put {
                item: u.with("webauthnUserId", handle.clone()).with_version(v + 1),
                condition: Condition::Version(v),
            });
        }
        None => {
            ops.push(WriteOp::Put {
                item: new_user_item(services, &tenant.id, &user_id)?
                    .with("webauthnUserId", handle.clone()),
                condition: Condition::Absent,
            });
            ops.push(crate::domain::users::listed(&tenant.id, &user_id));
        }
    }
    if let Ok(h) = handle.parse::<Uuid>() {
        ops.push(WriteOp::Put {
            item: Item::new(handle_pk(&tenant.id, &h), "UH").with("userId", user_id.clone()),
            condition: Condition::None,
        });
    }
    // The user's first authenticator answers a waiting challenge; a later one does not.
    let (action_op, proof) = settle_enrollment(services, tenant, access, kind.method()).await?;
    ops.extend(action_op);
    ops.extend(auths.drop_pending(None));
    let (code, key) = (claims.act.clone(), claims.idk.clone());
    let recovery_codes =
        crate::domain::otp::first_strong_codes(services, tenant, &user_id, auths, &code, &key)
            .await?
            .map(|(codes, more)| {
                ops.extend(more);
                codes
            });
    let change = Change {
        action: if kind == Kind::Passkey {
            "passkey.register"
        } else {
            "security_key.register"
        },
        target: audit_ref(services, &tenant.id, &user_id).await?,
        summary: json!({ "authenticatorId": aid, "actionCode": code, "kind": kind.audit(), "recoveryCodesIssued": recovery_codes.is_some() }),
        ops,
    };
    commit(services, tenant, ctx, change).await?;
    let access_token = tokens::issue(
        services,
        &tenant.id,
        &user_id,
        &code,
        &key,
        claims.scope.clone(),
        proof,
    )
    .await?;
    Ok((
        Verified {
            is_verified: true,
            access_token,
            user_id,
            user_authenticator_id: aid,
            user_display_name: username.clone(),
            username,
            recovery_codes,
        },
        view,
    ))
}
