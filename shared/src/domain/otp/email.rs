//! Email OTP: enrollment, sending codes and verification.
use super::*;

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

/// Sends a fresh code for the token's email challenge, to the authenticator `item`. The
/// challenge item is written before the email goes out, so a code that was sent always has a
/// hash to be checked against.
async fn send_code(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
    item: &Item,
) -> Result<String, Error> {
    let user_id = &claims.sub;
    let ch_id = bound_id(tenant, claims, "eotp");
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
    let code = new_code(services);
    let pepper = purpose_keys(services.secrets.as_ref(), Purpose::OtpPepper).await?;
    let ch = Item::new(&pk, "CH")
        .with("kind", "EMAIL_OTP")
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
        ops: vec![WriteOp::Put {
            item: ch,
            condition,
        }],
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

/// `POST /client/user-authenticators/email-otp {email}`: a pending email authenticator, and a
/// code sent to it. Enrollment completes when the code verifies.
pub async fn enroll_email(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
    email: &str,
) -> Result<EmailEnrollment, Error> {
    check_may_enroll(services, tenant, claims).await?;
    let email = email.trim();
    if email.len() > 320 || email.parse::<lettre::Address>().is_err() {
        return Err(Error::Invalid("email is not a valid address.".into()));
    }
    let user_id = &claims.sub;
    let aid = services.random.hex_id(16);
    let item_key = auth_item_key(user_id, &aid);
    let item = Item::new(user_pk(&tenant.id, user_id), format!("AUTH#{aid}"))
        .with("verificationMethod", "EMAIL_OTP")
        .with("createdAt", stamp(services)?)
        .with("isDefault", false)
        .with("pending", true)
        .with(
            "email",
            seal(services, tenant, &item_key, "email", email).await?,
        );
    start_enrollment(
        services,
        tenant,
        ctx,
        user_id,
        ("EMAIL_OTP", "email_otp.enroll.start"),
        item.clone(),
    )
    .await?;
    send_code(services, tenant, ctx, claims, &item).await?;
    Ok(EmailEnrollment {
        user_authenticator_id: aid,
        user_id: user_id.clone(),
    })
}

/// `POST /client/challenge/email-otp`: a code to the user's email authenticator (a pending
/// enrollment if that is all there is).
pub async fn challenge_email(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
) -> Result<String, Error> {
    let item = authenticators_of(services, tenant, &claims.sub, "EMAIL_OTP")
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Invalid("The user has no email authenticator.".into()))?;
    send_code(services, tenant, ctx, claims, &item).await
}

/// `POST /client/verify/email-otp {verificationCode}`.
pub async fn verify_email(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
    code: &str,
) -> Result<VerifyResponse, Error> {
    let user_id = &claims.sub;
    check_throttle(services, tenant, user_id).await?;
    let ch_id = bound_id(tenant, claims, "eotp");
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
    let expired = ch
        .attrs
        .get("expiresAt")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        <= now_epoch(services);
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
                claims,
                &ch_id,
                "EMAIL_OTP",
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
    let pk = user_pk(&tenant.id, user_id);
    let item = services
        .store
        .get(&pk, &format!("AUTH#{aid}"))
        .await?
        .ok_or_else(|| Error::Invalid("The email authenticator was removed.".into()))?;
    let now_text = stamp(services)?;
    let enrolling = item.str("verifiedAt").is_none();
    let verified_at = item.str("verifiedAt").unwrap_or(&now_text).to_owned();
    let v = item.version;
    let mut updated = item
        .clone()
        .with("lastVerifiedAt", now_text.clone())
        .with_version(v + 1);
    if enrolling {
        updated.attrs.remove("pending");
        updated = updated.with("verifiedAt", now_text.clone());
    }
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
    let action = Some((claims.act.clone(), claims.idk.clone()));
    let (action_op, act, key) = settle_action(
        services,
        tenant,
        user_id,
        action,
        "CHALLENGE_SUCCEEDED",
        "EMAIL_OTP",
    )
    .await?;
    ops.extend(action_op);
    let change = Change {
        action: if enrolling {
            "email_otp.enroll"
        } else {
            "email_otp.verify"
        },
        target: audit_ref(services, &tenant.id, user_id).await?,
        summary: json!({ "authenticatorId": aid, "actionCode": act }),
        ops,
    };
    succeed(
        services,
        tenant,
        ctx,
        claims,
        change,
        (&act, &key),
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
