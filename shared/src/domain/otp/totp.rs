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

/// An authenticator app's parameters: Latchkey's own (SHA1, 6 digits, 30 s) for apps enrolled
/// on the Client API, or what the `otpauth://` URI given to the Server API named. Codes are
/// checked with exactly these, so an app set to SHA256 or 60 s works as it shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpParams {
    pub algorithm: Algorithm,
    pub digits: usize,
    pub step: u64,
}

/// The shortest secret accepted: 80 bits, common in secrets imported from other systems
/// (`JBSWY3DPEHPK3PXP`). RFC 4226 asks for 128; Latchkey's own are 160.
pub const MIN_SECRET_BYTES: usize = 10;

impl TotpParams {
    /// The parameters Latchkey verifies with: SHA1, SHA256 or SHA512; 6 to 8 digits; a step of
    /// 15 to 120 seconds. Anything else is refused at enrollment, with the reason.
    pub fn checked(algorithm: Algorithm, digits: usize, step: u64) -> Result<Self, &'static str> {
        if !(6..=8).contains(&digits) {
            return Err("otpUri digits must be 6, 7 or 8");
        }
        if !(15..=120).contains(&step) {
            return Err("otpUri period must be 15 to 120 seconds");
        }
        Ok(Self {
            algorithm,
            digits,
            step,
        })
    }

    /// The parameters of an `otpauth://totp` URI and its secret, checked: what the Server API
    /// stores for an authenticator app.
    pub fn of_uri(uri: &str) -> Result<(Self, Secret), &'static str> {
        let t = Totp::from_url_unchecked(uri)
            .map_err(|_| "otpUri is not a valid otpauth://totp URI")?;
        if t.secret().len() < MIN_SECRET_BYTES {
            return Err("otpUri secret must be at least 80 bits");
        }
        let params = Self::checked(t.algorithm(), usize::from(t.digits()), t.step())?;
        Ok((params, Secret::new(t.secret().as_bytes().into())))
    }

    /// The stored parameters of an authenticator item (absent fields: the defaults).
    fn stored(
        algorithm: Option<String>,
        digits: Option<String>,
        step: Option<String>,
    ) -> Option<Self> {
        let algorithm = match algorithm.as_deref() {
            None | Some("SHA1") => Algorithm::SHA1,
            Some("SHA256") => Algorithm::SHA256,
            Some("SHA512") => Algorithm::SHA512,
            Some(_) => return None,
        };
        let digits = digits.map_or(Some(TOTP_DIGITS), |d| d.parse().ok())?;
        let step = step.map_or(Some(TOTP_STEP), |s| s.parse().ok())?;
        Self::checked(algorithm, digits, step).ok()
    }

    /// A code generator for these parameters. `build_noncompliant` because totp-rs's `build`
    /// refuses secrets under 128 bits; [`TotpParams::of_uri`] has checked what is stored.
    fn totp(&self, secret: Secret) -> Totp {
        let mut builder = Builder::new()
            .with_algorithm(self.algorithm)
            .with_step_duration(self.step)
            .with_skew(1)
            .with_secret(secret);
        if let Ok(digits) = u8::try_from(self.digits) {
            builder = builder.with_digits(digits);
        }
        builder.build_noncompliant()
    }

    fn well_formed(&self, code: &str) -> bool {
        code.len() == self.digits && code.bytes().all(|b| b.is_ascii_digit())
    }
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
fn matching_step(t: &Totp, params: &TotpParams, now: u64, code: &str) -> Option<i64> {
    let step = now / params.step;
    let mut found = None;
    for s in [step.saturating_sub(1), step, step + 1] {
        let expected = t.generate(s * params.step).to_string();
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
    if code.len() <= 8 && code.bytes().all(|b| b.is_ascii_digit()) {
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
            let algorithm = open(services, tenant, &item_key, item, "otpAlgorithm").await?;
            let digits = open(services, tenant, &item_key, item, "otpDigits").await?;
            let step = open(services, tenant, &item_key, item, "otpStep").await?;
            let Some(params) = TotpParams::stored(algorithm, digits, step) else {
                continue;
            };
            if !params.well_formed(code) {
                continue;
            }
            let t = params.totp(bytes);
            let last = item
                .attrs
                .get("lastStep")
                .and_then(Value::as_i64)
                .unwrap_or(-1);
            if let Some(step) = matching_step(&t, &params, now, code) {
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
