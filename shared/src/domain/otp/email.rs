//! Email OTP: enrollment, sending codes and verification.
use super::*;
use crate::domain::limits;

/// What the stored code hash is the HMAC of: the code, bound to its tenant and challenge.
fn code_message(tenant: &Tenant, ch_id: &str, code: &str) -> Vec<u8> {
    framed(&[&tenant.id, ch_id, "email-otp", code])
}

fn message(tenant: &Tenant, code: &str) -> (String, String, String) {
    let name = if tenant.settings.name.is_empty() {
        tenant.id.clone()
    } else {
        tenant.settings.name.clone()
    };
    let subject = format!("Your {name} verification code");
    let text = format!(
        "Your {name} verification code is {code}.\n\nIt expires in 10 minutes and works once. \
         If you did not ask for it, ignore this email: nobody can sign in with it without your \
         device.\n"
    );
    // maud escapes the tenant's name; the code is digits only.
    let html = maud::html! {
        (maud::DOCTYPE)
        html {
            body style="font-family:sans-serif" {
                p { "Your " (name) " verification code is" }
                p style="font-size:28px;letter-spacing:4px" { b { (code) } }
                p {
                    "It expires in 10 minutes and works once. If you did not ask for it, "
                    "ignore this email."
                }
            }
        }
    }
    .into_string();
    (subject, text, html)
}

/// Sends a fresh code for the token's email challenge, to the authenticator `record` (a
/// verified one answering a challenge, or the pending one being enrolled). Sends are limited
/// per user and per recipient address across every token ([`limits`]); the counters, the
/// challenge item and the audit event are written in one transaction before the email goes
/// out, so a code that was sent always has a hash to be checked against and was counted.
async fn send_code(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    access: &Access,
    record: &AuthenticatorRecord,
) -> Result<String, Error> {
    let claims = access.claims()?;
    let user_id = &claims.sub;
    let ch_id = bound_id(tenant, claims, CeremonyKind::EmailOtp);
    let pk = challenge_pk(&tenant.id, &ch_id);
    let now = now_epoch(services);
    let existing = services.store.get(&pk, "CH").await?;
    if let Some(e) = &existing {
        let sent = e.attrs.get("sentAt").and_then(Value::as_i64).unwrap_or(0);
        if now - sent < RESEND_COOLDOWN_SECONDS {
            return Err(Error::TooManyRequests);
        }
        if e.attrs.get("failed") == Some(&Value::Bool(true)) {
            return Err(Error::Invalid(
                "This challenge has failed; track a new action.".into(),
            ));
        }
    }
    let item = &record.item;
    let aid = aid_of(item);
    let email = open(
        services,
        tenant,
        &auth_item_key(user_id, &aid),
        item,
        "email",
    )
    .await?
    .ok_or_else(|| Error::Internal("email authenticator without an email".into()))?;
    let per_user = limits::read(
        services,
        &tenant.id,
        limits::EMAIL_SENDS_PER_USER,
        &limits::hashed(services, &tenant.id, &format!("user\0{user_id}")).await?,
    )
    .await?;
    let address = limits::hashed(services, &tenant.id, &email.to_lowercase()).await?;
    let per_address = limits::read(
        services,
        &tenant.id,
        limits::EMAIL_SENDS_PER_ADDRESS,
        &address,
    )
    .await?;
    if !per_user.allows() || !per_address.allows() {
        return Err(Error::TooManyRequests);
    }
    let code = new_code(services);
    let pepper = purpose_keys(services.secrets.as_ref(), Purpose::OtpPepper).await?;
    let ch = Item::new(&pk, "CH")
        .with("kind", CeremonyKind::EmailOtp.as_str())
        .with("userId", user_id.clone())
        .with("authenticatorId", aid.clone())
        .with(
            "codeHash",
            hex(pepper.mac(&code_message(tenant, &ch_id, &code))),
        )
        .with(
            "attempts",
            existing
                .as_ref()
                .and_then(|e| e.attrs.get("attempts"))
                .and_then(Value::as_i64)
                .unwrap_or(0),
        )
        .with("sentAt", now)
        .with("expiresAt", now + CODE_SECONDS)
        .with_ttl(now + CODE_SECONDS + 3600);
    let (ch, condition) = match existing {
        Some(e) => {
            let v = e.version;
            (ch.with_version(v + 1), Condition::Version(v))
        }
        None => (ch, Condition::Absent),
    };
    let change = Change {
        action: "email_otp.send",
        target: audit_ref(services, &tenant.id, user_id).await?,
        summary: json!({ "authenticatorId": aid }),
        ops: vec![
            WriteOp::Put {
                item: ch,
                condition,
            },
            per_user.hit(),
            per_address.hit(),
        ],
    };
    commit(services, tenant, ctx, change).await?;
    let (subject, text, html) = message(tenant, &code);
    services
        .mailer
        .send(&Email {
            to: email,
            subject,
            text,
            html,
            urgent: false,
        })
        .await
        .map_err(|e| match e {
            crate::ports::mailer::MailError::Rejected(m) => {
                Error::Invalid(format!("The email could not be sent: {m}"))
            }
            crate::ports::mailer::MailError::Unavailable(m) => Error::Unavailable(m),
        })?;
    Ok(ch_id)
}

/// `POST /client/user-authenticators/email-otp {email}`: a pending email authenticator, bound
/// to the token's action and expiring in 10 minutes, and a code sent to it. Enrollment
/// completes when the code verifies with the same action.
pub async fn enroll_email(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    access: &Access,
    email: &str,
) -> Result<EmailEnrollment, Error> {
    let claims = access.claims()?;
    let email = email.trim();
    if email.len() > 320 || email.parse::<lettre::Address>().is_err() {
        return Err(Error::Invalid("email is not a valid address.".into()));
    }
    let user_id = &claims.sub;
    let aid = services.random.hex_id(16);
    let item_key = auth_item_key(user_id, &aid);
    let item = pending_item(services, tenant, access, &aid, VerificationMethod::EmailOtp)?.with(
        "email",
        seal(services, tenant, &item_key, "email", email).await?,
    );
    start_enrollment(
        services,
        tenant,
        ctx,
        access,
        "email_otp.enroll.start",
        item.clone(),
    )
    .await?;
    let record = AuthenticatorRecord::from_item(item)
        .ok_or_else(|| Error::Internal("pending email item".into()))?;
    send_code(services, tenant, ctx, access, &record).await?;
    Ok(EmailEnrollment {
        user_authenticator_id: aid,
        user_id: user_id.clone(),
    })
}

/// `POST /client/challenge/email-otp`: a code to the user's verified email authenticator.
/// A pending enrollment never receives a challenge code (its address is not yet proven to be
/// the user's).
pub async fn challenge_email(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    access: &Access,
) -> Result<String, Error> {
    let this = access.action_ref().unwrap_or_default();
    let record = access
        .authenticators()?
        .challengers(VerificationMethod::EmailOtp, &this)
        .next()
        .cloned()
        .ok_or_else(|| Error::Invalid("The user has no email authenticator.".into()))?;
    send_code(services, tenant, ctx, access, &record).await
}

/// `POST /client/verify/email-otp {verificationCode}`.
pub async fn verify_email(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    access: &Access,
    code: &str,
) -> Result<VerifyResponse, Error> {
    let claims = access.claims()?;
    let user_id = &claims.sub;
    check_throttle(services, tenant, user_id).await?;
    let ch_id = bound_id(tenant, claims, CeremonyKind::EmailOtp);
    let Some(ch) = services
        .store
        .get(&challenge_pk(&tenant.id, &ch_id), "CH")
        .await?
    else {
        return Ok(VerifyResponse::failed(CODE_INVALID_OR_EXPIRED));
    };
    if ch.attrs.get("failed") == Some(&Value::Bool(true))
        || ch
            .attrs
            .get("attempts")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            >= MAX_ATTEMPTS
    {
        return Ok(VerifyResponse::failed(MAX_ATTEMPTS_EXCEEDED));
    }
    let now = now_epoch(services);
    let expired = ch
        .attrs
        .get("expiresAt")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        <= now;
    let stored = ch.str("codeHash").and_then(unhex).unwrap_or_default();
    let pepper = purpose_keys(services.secrets.as_ref(), Purpose::OtpPepper).await?;
    // The HMAC crate's constant-time tag check, current pepper then previous.
    let right = pepper.verify(&code_message(tenant, &ch_id, code), &stored);
    if !right || expired || !well_formed(code) {
        return Ok(
            match record_failure(
                services,
                tenant,
                ctx,
                access,
                &ch_id,
                VerificationMethod::EmailOtp,
                "email_otp.verify.failed",
            )
            .await?
            {
                Failure::Wrong => VerifyResponse::failed(CODE_INVALID_OR_EXPIRED),
                Failure::Exhausted => VerifyResponse::failed(MAX_ATTEMPTS_EXCEEDED),
            },
        );
    }
    let aid = ch.str("authenticatorId").unwrap_or_default().to_owned();
    let record = access
        .authenticators()?
        .records
        .iter()
        .find(|r| r.id == aid && r.method == VerificationMethod::EmailOtp)
        .ok_or_else(|| Error::Invalid("The email authenticator was removed.".into()))?;
    let enrolling = completes(record, access, now)?;
    let item = record.item.clone();
    let now_text = stamp(services)?;
    let verified_at = item.str("verifiedAt").unwrap_or(&now_text).to_owned();
    let v = item.version;
    let mut updated = item
        .clone()
        .with("lastVerifiedAt", now_text.clone())
        .with_version(v + 1);
    let (more, proof) = settle_code(
        services,
        tenant,
        access,
        &mut updated,
        enrolling,
        VerificationMethod::EmailOtp,
    )
    .await?;
    // Deleting the challenge under its version makes the code single-use, even when raced.
    let mut ops = vec![
        WriteOp::Delete {
            pk: ch.pk.clone(),
            sk: ch.sk.clone(),
            condition: Condition::Version(ch.version),
        },
        WriteOp::Put {
            item: updated,
            condition: Condition::Version(v),
        },
    ];
    ops.extend(more);
    let change = Change {
        action: if enrolling {
            "email_otp.enroll"
        } else {
            "email_otp.verify"
        },
        target: audit_ref(services, &tenant.id, user_id).await?,
        summary: json!({ "authenticatorId": aid, "actionCode": claims.act }),
        ops,
    };
    succeed(
        services,
        tenant,
        ctx,
        access,
        change,
        proof,
        VerifyResponse {
            user_authenticator: enrolling.then(|| view(&item, user_id, &verified_at)),
            ..VerifyResponse::default()
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_name_is_escaped_in_the_html_part() {
        let tenant = Tenant {
            id: "t".into(),
            settings: crate::domain::tenants::TenantSettings {
                name: "<script>Bank & Co</script>".into(),
                ..Default::default()
            },
            data_key: crate::crypto::WrappedKey {
                tenant_id: "t".into(),
                bytes: Vec::new(),
                kek: None,
            },
        };
        let (subject, text, html) = message(&tenant, "123456");
        assert!(subject.contains("<script>Bank & Co</script>"));
        assert!(text.contains("code is 123456."));
        assert!(html.contains("&lt;script&gt;Bank &amp; Co&lt;/script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("<b>123456</b>"));
    }
}
