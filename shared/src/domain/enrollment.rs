//! Authenticators the tenant's backend enrolls or removes through the Server API (email,
//! phone, or an authenticator app it has already verified). The records themselves, and how
//! they are read, are [`crate::domain::authenticators`]'s.
use crate::domain::audit::{AuditContext, Change, CommitError};
use crate::domain::authenticators::{Authenticator, PREFIX, context, of_user, read};
use crate::domain::otp::first_strong_codes;
use crate::domain::tenants::Tenant;
use crate::domain::timestamps::Timestamp as _;
use crate::domain::users::{audit_ref, check_user_id, new_user_item, user_pk};
use crate::domain::{Error, Services};
use crate::ports::random::RandomExt as _;
use crate::ports::store::{Condition, Item, WriteOp};
use serde::Deserialize;
use serde_json::{Value, json};

/// `POST /users/{userId}/authenticators`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollVerified {
    pub verification_method: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub otp_uri: Option<String>,
    #[serde(default)]
    pub is_default: Option<bool>,
}

/// Enrolls an authenticator the tenant has already verified (email, phone, or an
/// authenticator app's `otpauth://` URI), creating the user if new. An authenticator app that
/// is the user's first strong authenticator comes with recovery codes, returned this once.
pub async fn enroll_verified(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    user_id: &str,
    req: EnrollVerified,
) -> Result<(Authenticator, Option<Vec<String>>), Error> {
    check_user_id(user_id)?;
    let method = req.verification_method.as_str();
    let mut sealed_fields: Vec<(&str, String)> = Vec::new();
    match method {
        "EMAIL_OTP" | "EMAIL_MAGIC_LINK" => {
            let email = req
                .email
                .filter(|e| e.contains('@') && e.len() <= 320)
                .ok_or_else(|| {
                    Error::Invalid("email is required for this verificationMethod".into())
                })?;
            sealed_fields.push(("email", email));
        }
        "SMS" | "WHATSAPP" => {
            let phone = req
                .phone_number
                .filter(|p| {
                    p.starts_with('+') && p.len() >= 8 && p[1..].bytes().all(|b| b.is_ascii_digit())
                })
                .ok_or_else(|| {
                    Error::Invalid(
                        "phoneNumber (E.164) is required for this verificationMethod".into(),
                    )
                })?;
            sealed_fields.push(("phoneNumber", phone));
        }
        "AUTHENTICATOR_APP" => {
            let uri = req
                .otp_uri
                .ok_or_else(|| Error::Invalid("otpUri is required for AUTHENTICATOR_APP".into()))?;
            let (params, secret) = crate::domain::otp::TotpParams::of_uri(&uri)
                .map_err(|why| Error::Invalid(why.into()))?;
            sealed_fields.push(("otpSecret", secret.to_base32()));
            sealed_fields.push(("otpAlgorithm", format!("{:?}", params.algorithm)));
            sealed_fields.push(("otpDigits", params.digits.to_string()));
            sealed_fields.push(("otpStep", params.step.to_string()));
        }
        _ => {
            return Err(Error::Invalid(
                "verificationMethod must be EMAIL_OTP, EMAIL_MAGIC_LINK, SMS, WHATSAPP or AUTHENTICATOR_APP".into(),
            ));
        }
    }
    let all = of_user(services, tenant, user_id).await?;
    let existing = all.verified_items();
    let is_default = req.is_default.unwrap_or(existing.is_empty());
    let id = services.random.hex_id(16);
    let sk = format!("{PREFIX}{id}");
    let item_key = format!("U#{user_id}#{sk}");
    let now = services.clock.now().rfc3339()?;
    let mut item = Item::new(user_pk(&tenant.id, user_id), sk)
        .with("verificationMethod", method)
        .with("createdAt", now.clone())
        .with("verifiedAt", now)
        .with("isDefault", is_default);
    for (field, value) in sealed_fields {
        let sealed = services
            .envelope
            .seal(
                &tenant.data_key,
                context(&tenant.id, &item_key, field),
                value.as_bytes(),
            )
            .await?;
        item.attrs.insert(field.into(), Value::String(sealed));
    }
    let mut ops = vec![WriteOp::Put {
        item: item.clone(),
        condition: Condition::Absent,
    }];
    // A verified authenticator ends every pending enrollment.
    ops.extend(all.drop_pending(None));
    if is_default {
        for other in existing
            .into_iter()
            .filter(|o| o.attrs.get("isDefault") == Some(&Value::Bool(true)))
        {
            let v = other.version;
            ops.push(WriteOp::Put {
                item: other.with("isDefault", false).with_version(v + 1),
                condition: Condition::Version(v),
            });
        }
    }
    let user = services
        .store
        .get(&user_pk(&tenant.id, user_id), "USER")
        .await?;
    if user.is_none() {
        ops.push(WriteOp::Put {
            item: new_user_item(services, &tenant.id, user_id)?,
            condition: Condition::Absent,
        });
        ops.push(crate::domain::users::listed(&tenant.id, user_id));
    }
    let recovery = if method == "AUTHENTICATOR_APP" {
        // Enrolled by the tenant's backend, not on an action: the codes answer any challenge.
        first_strong_codes(services, tenant, user_id, &all, "", "").await?
    } else {
        None
    };
    let codes = recovery.map(|(codes, more)| {
        ops.extend(more);
        codes
    });
    let change = Change {
        action: "authenticator.enroll",
        target: audit_ref(services, &tenant.id, user_id).await?,
        summary: json!({ "authenticatorId": id, "verificationMethod": method, "recoveryCodesIssued": codes.is_some() }),
        ops,
    };
    match services.journal.commit(&tenant.id, ctx, change).await {
        Ok(_) => {}
        Err(CommitError::Condition { .. }) => {
            return Err(Error::Conflict("the user changed; retry"));
        }
        Err(e) => return Err(e.into()),
    }
    Ok((read(services, tenant, user_id, &item).await?, codes))
}

pub async fn delete(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    user_id: &str,
    authenticator_id: &str,
) -> Result<(), Error> {
    check_user_id(user_id)?;
    let pk = user_pk(&tenant.id, user_id);
    let sk = format!("{PREFIX}{authenticator_id}");
    // A WebAuthn credential's record goes with it: it is what a sign-in reads.
    let Some(item) = services.store.get(&pk, &sk).await? else {
        return Err(Error::NotFound("authenticator"));
    };
    let mut ops = vec![WriteOp::Delete {
        pk,
        sk,
        condition: Condition::Version(item.version),
    }];
    if let Some(credential_id) = item.str("credentialId") {
        let (pk, sk) = crate::domain::users::credential_key(&tenant.id, credential_id);
        ops.push(WriteOp::Delete {
            pk,
            sk,
            condition: Condition::None,
        });
    }
    let change = Change {
        action: "authenticator.delete",
        target: audit_ref(services, &tenant.id, user_id).await?,
        summary: json!({ "authenticatorId": authenticator_id }),
        ops,
    };
    match services.journal.commit(&tenant.id, ctx, change).await {
        Ok(_) => Ok(()),
        Err(CommitError::Condition { .. }) => Err(Error::NotFound("authenticator")),
        Err(e) => Err(e.into()),
    }
}
