//! Signing in with a passkey (with a token, or usernameless) and verifying with a security
//! key: options, then the assertion checked by webauthn-rs, then the action settled.
use super::*;
use crate::domain::audit::CommitError;

pub async fn authentication_options(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    access: &Access,
    challenge_id: Option<&str>,
) -> Result<(String, RequestChallengeResponse), Error> {
    let result = options_judged(services, tenant, ctx, access, challenge_id).await;
    match result {
        // This row's token is judged by its write (`authz::Facts::Written`): a caller the
        // route refuses learns that first, whatever else went wrong.
        Err(e) if access.pending.is_some() => {
            access.confirm(services, tenant, ctx).await?;
            Err(e)
        }
        other => other,
    }
}

async fn options_judged(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    access: &Access,
    challenge_id: Option<&str>,
) -> Result<(String, RequestChallengeResponse), Error> {
    let rp = relying_party(tenant)?;
    let claims = access.claims.as_ref();
    let action = match (claims, challenge_id.filter(|c| !c.is_empty())) {
        (Some(c), _) => Some((c.act.clone(), c.idk.clone())),
        (None, Some(id)) => {
            let named = take(services, tenant, id, &[CeremonyKind::NamedAction]).await?;
            Some((
                named.str("actionCode").unwrap_or_default().to_owned(),
                String::new(),
            ))
        }
        (None, None) => None,
    };
    // With a token the user is known: their passkeys are offered (not one enrolled on this
    // very action). Without one the browser offers any discoverable credential for this RP,
    // and the user is learnt at verify.
    let (options, kind, state, user_id, extra, checks) = match claims {
        Some(claims) => {
            let this = access.action_ref().unwrap_or_default();
            // The user's passkeys: as the authorization read them, or read here when the
            // authorization is left to the ceremony's write.
            let read;
            let auths = match &access.subject {
                Some(s) => &s.authenticators,
                None => {
                    read = crate::domain::authenticators::of_user(services, tenant, &claims.sub)
                        .await?;
                    &read
                }
            };
            // What this authorization is decided on, for the verify that finishes the
            // ceremony (its row takes its facts from here: `authz::Facts::Ceremony`), and the
            // condition that decides it when the row is `authz::Facts::Written`.
            let (facts, checks) = match access.written_facts(tenant, auths) {
                Some((facts, check)) => (facts, vec![check]),
                None => (
                    access.ceremony_facts().ok_or_else(|| {
                        Error::Internal("options without the token's action".into())
                    })?,
                    Vec::new(),
                ),
            };
            let passkeys: Vec<Passkey> = keys_of::<Passkey>(auths, Kind::Passkey)
                .into_iter()
                .filter(|(i, _)| i.str("enrolledFor") != Some(this.as_str()))
                .map(|(_, p)| p)
                .collect();
            if passkeys.is_empty() {
                return Err(Error::Invalid("The user has no passkey.".into()));
            }
            let (options, state): (RequestChallengeResponse, PasskeyAuthentication) = rp
                .start_passkey_authentication(&passkeys)
                .map_err(|e| Error::Internal(format!("authentication start: {e}")))?;
            (
                options,
                CeremonyKind::PasskeyAuthenticate,
                to_value(&state)?,
                Some(claims.sub.clone()),
                json!({ "authz": to_value(&facts)? }),
                checks,
            )
        }
        None => {
            let (options, state): (RequestChallengeResponse, DiscoverableAuthentication) = rp
                .start_discoverable_authentication()
                .map_err(|e| Error::Internal(format!("authentication start: {e}")))?;
            (
                options,
                CeremonyKind::PasskeyDiscover,
                to_value(&state)?,
                None,
                Value::Null,
                Vec::new(),
            )
        }
    };
    let id = save(
        services,
        tenant,
        Ceremony {
            kind,
            state,
            user_id,
            action,
            extra,
            // Counted (with the ceremony item, in one transaction) when anyone with the tenant
            // id could have asked.
            anonymous: claims.is_none().then(|| ctx.source_ip.clone()),
            checks,
        },
    )
    .await?;
    Ok((id, options))
}

pub async fn verify_authentication(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    access: &Access,
    challenge_id: &str,
    credential: &PublicKeyCredential,
) -> Result<Verified, Error> {
    let result = verify_settled(services, tenant, ctx, access, challenge_id, credential).await;
    match result {
        // The token's action changed since the options (the commit's version condition):
        // judged afresh, a refusal is told as such.
        Err(Error::Conflict(_)) if access.pending.is_some() => {
            access.confirm(services, tenant, ctx).await?;
            result
        }
        other => other,
    }
}

async fn verify_settled(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    access: &Access,
    challenge_id: &str,
    credential: &PublicKeyCredential,
) -> Result<Verified, Error> {
    let claims = access.claims.as_ref();
    // A token finishes only the ceremony it started; a tenant id only a usernameless one.
    // (Not rate-limited: only a counted options call hands out a ceremony id, and each id
    // finishes at most once.)
    let kinds: &[CeremonyKind] = match claims {
        Some(_) => &[CeremonyKind::PasskeyAuthenticate],
        None => &[CeremonyKind::PasskeyDiscover],
    };
    // Read now, taken by the transaction that records the outcome (success), or on its own just
    // before a refusal is recorded: of racing verifies, exactly one gets past either.
    let ceremony = match open(services, tenant, challenge_id, kinds).await {
        Ok(c) => c,
        Err(e) => {
            // A caller the route refuses learns that first, as on any other route.
            access.confirm(services, tenant, ctx).await?;
            return Err(e);
        }
    };
    // A token's access is decided on the facts its options recorded (`Facts::Ceremony`).
    let settled = access
        .settle(
            services,
            tenant,
            ctx,
            ceremony.attrs.get("extra").and_then(|e| e.get("authz")),
        )
        .await?;
    let access = &settled;
    let action = Some((
        ceremony.str("actionCode").unwrap_or_default().to_owned(),
        ceremony
            .str("idempotencyKey")
            .unwrap_or_default()
            .to_owned(),
    ));
    let rp = relying_party(tenant)?;
    let cred_id = URL_SAFE_NO_PAD.encode::<&[u8]>(credential.raw_id.as_ref());
    // Every refusal takes the ceremony, is audited, and moves the tracked action (if any) to
    // CHALLENGE_FAILED.
    let refuse = |user: Option<String>, reason: String| {
        let action = action.clone();
        let ceremony = &ceremony;
        async move {
            consume(services, ceremony).await?;
            record_failure(
                services,
                tenant,
                ctx,
                access,
                user.as_deref(),
                action,
                "passkey.verify.failed",
                &reason,
            )
            .await?;
            Err::<Verified, Error>(Error::Invalid(format!(
                "The credential was refused: {reason}."
            )))
        }
    };
    if cross_origin(&credential.response.client_data_json) {
        let user = claims.map(|c| c.sub.clone());
        return refuse(
            user,
            "the assertion was made in a cross-origin frame".into(),
        )
        .await;
    }
    let (user_id, result, record) = if let Some(claims) = claims {
        let expected = ceremony.str("userId").unwrap_or_default().to_owned();
        // The ceremony was started for this token's action, not another of the same user's.
        let same_action = action.as_ref() == Some(&(claims.act.clone(), claims.idk.clone()));
        if !same_action {
            consume(services, &ceremony).await?;
            return Err(Error::Invalid(
                "The challenge belongs to another action.".into(),
            ));
        }
        // The credential record names its owner: the token's user, and a passkey.
        let record = credentials::load(services, tenant, &cred_id).await?;
        let owned = record
            .as_ref()
            .filter(|r| r.user_id == claims.sub && r.kind == Kind::Passkey);
        let (true, Some(record)) = (claims.sub == expected, owned) else {
            return refuse(
                Some(expected),
                "the credential belongs to another user".into(),
            )
            .await;
        };
        let state: PasskeyAuthentication = from_value(ceremony.attrs.get("state"))?;
        // webauthn-rs checks the assertion against the credentials offered at options, and
        // refuses a signature counter that did not grow (a possible clone).
        match rp.finish_passkey_authentication(credential, &state) {
            Ok(r) => (expected, r, record.clone()),
            Err(e) => return refuse(Some(expected), e.to_string()).await,
        }
    } else {
        let (handle, _) = match rp.identify_discoverable_authentication(credential) {
            Ok(found) => found,
            Err(e) => return refuse(None, e.to_string()).await,
        };
        let Some(record) = credentials::load(services, tenant, &cred_id)
            .await?
            .filter(|r| r.kind == Kind::Passkey)
        else {
            return refuse(None, "unknown credential".into()).await;
        };
        // The user handle the browser sent must be the one the credential was made with.
        let same_user = match &record.handle {
            Some(h) => h.parse::<Uuid>().ok() == Some(handle),
            None => services
                .store
                .get(&handle_pk(&tenant.id, &handle), "UH")
                .await?
                .and_then(|h| h.str("userId").map(str::to_owned))
                .is_some_and(|u| u == record.user_id),
        };
        if !same_user {
            return refuse(
                Some(record.user_id.clone()),
                "the credential and the user handle belong to different users".into(),
            )
            .await;
        }
        let key: Passkey = record.key()?;
        let state: DiscoverableAuthentication = from_value(ceremony.attrs.get("state"))?;
        // webauthn-rs refuses a signature counter that did not grow (a possible clone).
        match rp.finish_discoverable_authentication_v2(
            credential,
            state,
            DiscoverableKey::from(&key),
        ) {
            Ok(r) => (record.user_id.clone(), r, record),
            Err(e) => return refuse(Some(record.user_id.clone()), e.to_string()).await,
        }
    };
    succeed(
        services,
        tenant,
        ctx,
        (&user_id, &record),
        &result,
        action,
        Kind::Passkey,
        claims.and_then(|c| c.scope.clone()),
        (access, Some(consume_op(&ceremony))),
    )
    .await
}

/// A verified assertion: takes the ceremony (`consume`, when the caller has not yet), records
/// the credential's new counter and backup state (on its record and its authenticator item),
/// settles the action and audits, in one transaction; then issues the access token, which
/// carries the proof of this ceremony.
#[allow(clippy::too_many_arguments)]
async fn succeed(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    (user_id, record): (&str, &credentials::CredentialRecord),
    result: &AuthenticationResult,
    action: Option<(String, String)>,
    kind: Kind,
    scope: Option<String>,
    (access, consume): (&Access, Option<WriteOp>),
) -> Result<Verified, Error> {
    // webauthn-rs has already refused a counter that did not grow (a possible clone, as its
    // docs advise); record the new values.
    let updated =
        match kind {
            Kind::Passkey => record.key::<Passkey>().ok().and_then(|mut k| {
                (k.update_credential(result) == Some(true)).then(|| to_value(&k))
            }),
            Kind::SecurityKey => record.key::<SecurityKey>().ok().and_then(|mut k| {
                (k.update_credential(result) == Some(true)).then(|| to_value(&k))
            }),
        }
        .transpose()?;
    let authenticator_id = record.authenticator_id.clone();
    let now = stamp(services)?;
    let mut ops = record.verified_ops(&tenant.id, updated, result.backup_state(), &now);
    let (action_op, code, key) = settle_action_with(
        services,
        tenant,
        user_id,
        action,
        Event::CeremonySucceeded,
        kind.method(),
        Some(access),
    )
    .await?;
    ops.extend(action_op);
    // First, so that its failure (another verify took the ceremony) is told apart.
    let consumes = consume.is_some();
    if let Some(op) = consume {
        ops.insert(0, op);
    }
    // The authenticator item's update, which fails when the authenticator was deleted.
    let authenticator_op = usize::from(consumes) + 1;
    let change = Change {
        action: if kind == Kind::Passkey {
            "passkey.verify"
        } else {
            "security_key.verify"
        },
        target: audit_ref(services, &tenant.id, user_id).await?,
        summary: json!({ "authenticatorId": authenticator_id, "actionCode": code, "userVerified": result.user_verified(), "kind": kind.audit() }),
        ops,
    };
    match services.journal.commit(&tenant.id, ctx, change).await {
        Ok(_) => {}
        Err(CommitError::Condition { index: 0, .. }) if consumes => return Err(gone()),
        Err(CommitError::Condition { index, .. }) if index == authenticator_op => {
            return Err(Error::Invalid(
                "The credential was refused: it is no longer registered.".into(),
            ));
        }
        Err(CommitError::Condition { .. }) => {
            return Err(Error::Conflict("the user changed; retry"));
        }
        Err(e) => return Err(e.into()),
    }
    let proof = Proof {
        method: kind.method(),
        at: now_epoch(services),
    };
    let access_token = tokens::issue(
        services,
        &tenant.id,
        user_id,
        &code,
        &key,
        scope,
        Some(proof),
    )
    .await?;
    // What the browser SDK shows as `username` / `displayName`: the name the credential was
    // registered under, which is also what the authenticator showed the user when they chose
    // it (read with the credential: no read of the user's sealed attributes per sign-in).
    let username = record
        .user_name
        .clone()
        .unwrap_or_else(|| user_id.to_owned());
    Ok(Verified {
        is_verified: true,
        access_token,
        user_id: user_id.to_owned(),
        user_authenticator_id: authenticator_id,
        user_display_name: Some(username.clone()),
        username: Some(username),
        recovery_codes: None,
    })
}

/// `POST /client/user-authenticators/security-key/authentication-options`: the bare options
/// for the token's user's security keys (not one enrolled on this very action).
pub async fn security_key_authentication_options(
    services: &Services,
    tenant: &Tenant,
    access: &Access,
) -> Result<RequestChallengeResponse, Error> {
    let claims = access.claims()?;
    let rp = relying_party(tenant)?;
    let this = access.action_ref().unwrap_or_default();
    let keys: Vec<SecurityKey> =
        keys_of::<SecurityKey>(access.authenticators()?, Kind::SecurityKey)
            .into_iter()
            .filter(|(i, _)| i.str("enrolledFor") != Some(this.as_str()))
            .map(|(_, k)| k)
            .collect();
    if keys.is_empty() {
        return Err(Error::Invalid("The user has no security key.".into()));
    }
    let (options, state): (RequestChallengeResponse, SecurityKeyAuthentication) = rp
        .start_securitykey_authentication(&keys)
        .map_err(|e| Error::Internal(format!("authentication start: {e}")))?;
    save_as(
        services,
        tenant,
        bound_id(tenant, claims, CeremonyKind::SecurityKeyAuthenticate),
        Condition::None,
        Ceremony {
            kind: CeremonyKind::SecurityKeyAuthenticate,
            state: to_value(&state)?,
            user_id: Some(claims.sub.clone()),
            action: Some((claims.act.clone(), claims.idk.clone())),
            extra: Value::Null,
            anonymous: None,
            checks: Vec::new(),
        },
    )
    .await?;
    Ok(options)
}

/// `POST /client/verify/security-key` with the bare assertion.
pub async fn verify_security_key(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    access: &Access,
    credential: &PublicKeyCredential,
) -> Result<Verified, Error> {
    let claims = access.claims()?;
    // Read now, taken by the transaction that records the outcome, or on its own just before a
    // refusal is recorded.
    let ceremony = open(
        services,
        tenant,
        &bound_id(tenant, claims, CeremonyKind::SecurityKeyAuthenticate),
        &[CeremonyKind::SecurityKeyAuthenticate],
    )
    .await?;
    let action = Some((claims.act.clone(), claims.idk.clone()));
    let user_id = claims.sub.clone();
    let refuse = |reason: String| {
        let action = action.clone();
        let user_id = user_id.clone();
        let ceremony = &ceremony;
        async move {
            consume(services, ceremony).await?;
            record_failure(
                services,
                tenant,
                ctx,
                access,
                Some(&user_id),
                action,
                "security_key.verify.failed",
                &reason,
            )
            .await?;
            Err::<Verified, Error>(Error::Invalid(format!(
                "The credential was refused: {reason}."
            )))
        }
    };
    if cross_origin(&credential.response.client_data_json) {
        return refuse("the assertion was made in a cross-origin frame".into()).await;
    }
    let cred_id = URL_SAFE_NO_PAD.encode::<&[u8]>(credential.raw_id.as_ref());
    let record = credentials::load(services, tenant, &cred_id)
        .await?
        .filter(|r| r.user_id == user_id && r.kind == Kind::SecurityKey);
    let (true, Some(record)) = (ceremony.str("userId") == Some(user_id.as_str()), record) else {
        return refuse("the credential belongs to another user".into()).await;
    };
    let state: SecurityKeyAuthentication = from_value(ceremony.attrs.get("state"))?;
    let result = match relying_party(tenant)?.finish_securitykey_authentication(credential, &state)
    {
        Ok(r) => r,
        Err(e) => return refuse(e.to_string()).await,
    };
    succeed(
        services,
        tenant,
        ctx,
        (&user_id, &record),
        &result,
        action,
        Kind::SecurityKey,
        claims.scope.clone(),
        (access, Some(consume_op(&ceremony))),
    )
    .await
}
