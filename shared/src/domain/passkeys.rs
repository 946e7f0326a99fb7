//! WebAuthn ceremonies with webauthn-rs: passkey registration, sign-in with a token,
//! usernameless (discoverable) sign-in, and security keys (second factor, bare wire objects).
//!
//! Ceremony state stays server-side: a challenge item under a random id, with an expiry checked
//! in code (DynamoDB's TTL deletion lags). Finishing deletes the item under an existence
//! condition, so a ceremony finishes at most once, however many requests race for it. The
//! relying party is the tenant's: its RP id and allowed origins, matched exactly (webauthn-rs
//! does no suffix matching unless told to), with user verification required for passkeys.
//!
//! Security keys (API.md §5.1) carry no challenge id on the wire: their ceremony is stored under
//! an id derived from the token (tenant, user, action instance), so each token has at most one
//! open security-key ceremony, and a new options call replaces it.
use crate::domain::Error;
use crate::domain::aaguid;
use crate::domain::actions::check_code;
use crate::domain::audit::{AuditContext, Change};
use crate::domain::ceremony::{bound_id, challenge_pk, commit, now_epoch, settle_action, stamp};
use crate::domain::tenants::Tenant;
use crate::domain::tokens::{self, Claims};
use crate::domain::users::{audit_ref, new_user_item, user_pk};
use crate::ports::random::RandomExt as _;
use crate::ports::store::{Condition, Item, Query, WriteOp};
use crate::runtime::Services;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, CredentialID, DiscoverableAuthentication,
    DiscoverableKey, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse, SecurityKey, SecurityKeyAuthentication,
    SecurityKeyRegistration, Url, Uuid, Webauthn, WebauthnBuilder,
};

/// The two kinds of WebAuthn authenticator, stored side by side under the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Discoverable, user-verifying: a first factor.
    Passkey,
    /// A second factor: user presence is enough, user verification is preferred.
    SecurityKey,
}

impl Kind {
    fn method(self) -> &'static str {
        match self {
            Kind::Passkey => "PASSKEY",
            Kind::SecurityKey => "SECURITY_KEY",
        }
    }

    /// The attribute holding webauthn-rs's credential record.
    fn field(self) -> &'static str {
        match self {
            Kind::Passkey => "passkey",
            Kind::SecurityKey => "securityKey",
        }
    }

    fn audit(self) -> &'static str {
        match self {
            Kind::Passkey => "passkey",
            Kind::SecurityKey => "security_key",
        }
    }
}

/// How long a ceremony may take, start to finish.
pub const CEREMONY_SECONDS: i64 = 5 * 60;
pub use crate::domain::ceremony::DEFAULT_SIGN_IN_ACTION;

fn credential_pk(tenant_id: &str, credential_id: &str) -> String {
    format!("T#{tenant_id}#CRED#{credential_id}")
}

fn handle_pk(tenant_id: &str, handle: &Uuid) -> String {
    format!("T#{tenant_id}#UH#{handle}")
}

/// The tenant's relying party. Origins are matched exactly; `http://localhost:*` allows any
/// port on localhost, for development.
pub fn relying_party(tenant: &Tenant) -> Result<Webauthn, Error> {
    let s = &tenant.settings;
    let mut any_port = false;
    let mut origins = Vec::new();
    for o in &s.allowed_origins {
        let text = match o.strip_suffix(":*") {
            Some(base) => {
                any_port = true;
                base
            }
            None => o.as_str(),
        };
        origins.push(
            Url::parse(text).map_err(|_| Error::Internal("tenant origin is not a URL".into()))?,
        );
    }
    let (first, rest) = origins
        .split_first()
        .ok_or_else(|| Error::Invalid("the tenant has no allowed origins".into()))?;
    let mut builder = WebauthnBuilder::new(&s.rp_id, first)
        .map_err(|e| Error::Internal(format!("relying party: {e}")))?
        .rp_name(if s.name.is_empty() { &s.rp_id } else { &s.name })
        .allow_any_port(any_port);
    for o in rest {
        builder = builder.append_allowed_origin(o);
    }
    builder
        .build()
        .map_err(|e| Error::Internal(format!("relying party: {e}")))
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, Error> {
    serde_json::to_value(v).map_err(|e| Error::Internal(format!("ceremony state: {e}")))
}

fn from_value<T: serde::de::DeserializeOwned>(v: Option<&Value>) -> Result<T, Error> {
    serde_json::from_value(v.cloned().unwrap_or(Value::Null))
        .map_err(|e| Error::Internal(format!("ceremony state: {e}")))
}

/// What a ceremony started with, and finishes against.
struct Ceremony {
    kind: &'static str,
    state: Value,
    user_id: Option<String>,
    action: Option<(String, String)>,
    extra: Value,
}

async fn save(services: &Services, tenant: &Tenant, c: Ceremony) -> Result<String, Error> {
    save_as(
        services,
        tenant,
        services.random.token(24),
        Condition::Absent,
        c,
    )
    .await
}

/// Stores a ceremony under `id`; `condition` is `Absent` for random ids, `None` for the
/// token-bound security-key ids (a new start replaces the open ceremony).
async fn save_as(
    services: &Services,
    tenant: &Tenant,
    id: String,
    condition: Condition,
    c: Ceremony,
) -> Result<String, Error> {
    let expires = now_epoch(services) + CEREMONY_SECONDS;
    let mut item = Item::new(challenge_pk(&tenant.id, &id), "CH")
        .with("kind", c.kind)
        .with("state", c.state)
        .with("expiresAt", expires)
        .with("extra", c.extra)
        .with_ttl(expires + 3600);
    if let Some(u) = c.user_id {
        item = item.with("userId", u);
    }
    if let Some((code, key)) = c.action {
        item = item.with("actionCode", code).with("idempotencyKey", key);
    }
    services.store.put(item, condition).await?;
    Ok(id)
}

/// Takes a ceremony out of the store: at most one caller ever gets it.
async fn take(
    services: &Services,
    tenant: &Tenant,
    id: &str,
    kinds: &[&str],
) -> Result<Item, Error> {
    let gone = || Error::Invalid("The challenge is unknown, expired or already used.".into());
    if id.is_empty() || id.len() > 64 {
        return Err(gone());
    }
    let item = match services
        .store
        .delete(&challenge_pk(&tenant.id, id), "CH", Condition::Exists)
        .await
    {
        Ok(Some(item)) => item,
        Ok(None) | Err(crate::ports::store::StoreError::ConditionFailed { .. }) => {
            return Err(gone());
        }
        Err(e) => return Err(e.into()),
    };
    let expires = item
        .attrs
        .get("expiresAt")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if expires <= now_epoch(services) || !kinds.contains(&item.str("kind").unwrap_or_default()) {
        return Err(gone());
    }
    Ok(item)
}

/// `POST /client/challenge {action}`: remembers which action a usernameless sign-in is for.
pub async fn challenge_for_action(
    services: &Services,
    tenant: &Tenant,
    action: &str,
) -> Result<String, Error> {
    check_code(action)?;
    save(
        services,
        tenant,
        Ceremony {
            kind: "action",
            state: Value::Null,
            user_id: None,
            action: Some((action.to_owned(), String::new())),
            extra: Value::Null,
        },
    )
    .await
}

async fn authenticator_items(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
) -> Result<Vec<Item>, Error> {
    Ok(services
        .store
        .query(
            Query::partition(user_pk(&tenant.id, user_id))
                .prefix("AUTH#")
                .limit(1000),
        )
        .await?
        .items)
}

/// A user's credentials of one kind, with the items that hold them.
async fn keys_of<T: serde::de::DeserializeOwned>(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
    kind: Kind,
) -> Result<Vec<(Item, T)>, Error> {
    let mut out = Vec::new();
    for item in authenticator_items(services, tenant, user_id).await? {
        if item.str("verificationMethod") == Some(kind.method())
            && let Some(v) = item.attrs.get(kind.field())
            && let Ok(key) = serde_json::from_value::<T>(v.clone())
        {
            out.push((item, key));
        }
    }
    Ok(out)
}

async fn passkeys_of(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
) -> Result<Vec<(Item, Passkey)>, Error> {
    keys_of(services, tenant, user_id, Kind::Passkey).await
}

/// Every WebAuthn credential the user has, of either kind: excluded at registration so one
/// authenticator is not registered twice.
async fn credential_ids_of(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
) -> Result<Vec<CredentialID>, Error> {
    Ok(authenticator_items(services, tenant, user_id)
        .await?
        .iter()
        .filter_map(|i| i.str("credentialId"))
        .filter_map(|c| URL_SAFE_NO_PAD.decode(c).ok())
        .collect())
}

/// The stable WebAuthn user handle of a user, if one was made.
async fn user_handle(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
) -> Result<Option<Uuid>, Error> {
    Ok(services
        .store
        .get(&user_pk(&tenant.id, user_id), "USER")
        .await?
        .and_then(|u| u.str("webauthnUserId").and_then(|s| s.parse().ok())))
}

pub async fn registration_options(
    services: &Services,
    tenant: &Tenant,
    claims: &Claims,
    username: Option<&str>,
) -> Result<(String, CreationChallengeResponse), Error> {
    crate::domain::otp::check_may_enroll(services, tenant, claims).await?;
    let rp = relying_party(tenant)?;
    let user_id = &claims.sub;
    let handle = match user_handle(services, tenant, user_id).await? {
        Some(h) => h,
        None => Uuid::from_bytes(services.random.bytes::<16>()),
    };
    let exclude = credential_ids_of(services, tenant, user_id).await?;
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
            kind: "register",
            state: to_value(&state)?,
            user_id: Some(user_id.clone()),
            action: Some((claims.act.clone(), claims.idk.clone())),
            extra: json!({ "handle": handle.to_string(), "name": name }),
        },
    )
    .await?;
    Ok((id, options))
}

/// What a successful ceremony returns to the browser.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verified {
    pub is_verified: bool,
    pub access_token: String,
    pub user_id: String,
    pub user_authenticator_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Recovery codes, when this registration was the user's first strong authenticator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

/// Records a failed ceremony: the action (if any) moves to CHALLENGE_FAILED, with its event.
async fn record_failure(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    user_id: Option<&str>,
    action: Option<(String, String)>,
    what: &'static str,
    reason: &str,
) -> Result<(), Error> {
    let kind = if what.starts_with("security_key") {
        Kind::SecurityKey
    } else {
        Kind::Passkey
    };
    let mut ops = Vec::new();
    let target = match user_id {
        Some(u) => {
            if action.as_ref().is_some_and(|(_, k)| !k.is_empty()) {
                let (op, _, _) = settle_action(
                    services,
                    tenant,
                    u,
                    action,
                    "CHALLENGE_FAILED",
                    kind.method(),
                )
                .await?;
                ops.extend(op);
            }
            audit_ref(services, &tenant.id, u).await?
        }
        None => "user:unknown".to_owned(),
    };
    // An audit event needs a write to go with it; a failure with no action writes a marker.
    if ops.is_empty() {
        ops.push(WriteOp::Put {
            item: Item::new(format!("T#{}#FAIL", tenant.id), services.random.hex_id(8))
                .with("what", what)
                .with_ttl(now_epoch(services) + 86_400),
            condition: Condition::Absent,
        });
    }
    let change = Change {
        action: what,
        target,
        summary: json!({ "reason": reason }),
        ops,
    };
    commit(services, tenant, ctx, change).await
}

pub async fn finish_registration(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
    challenge_id: &str,
    credential: &RegisterPublicKeyCredential,
) -> Result<(Verified, Value), Error> {
    let ceremony = take(services, tenant, challenge_id, &["register"]).await?;
    register(
        services,
        tenant,
        ctx,
        claims,
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
    claims: &Claims,
) -> Result<CreationChallengeResponse, Error> {
    crate::domain::otp::check_may_enroll(services, tenant, claims).await?;
    let rp = relying_party(tenant)?;
    let user_id = &claims.sub;
    let handle = match user_handle(services, tenant, user_id).await? {
        Some(h) => h,
        None => Uuid::from_bytes(services.random.bytes::<16>()),
    };
    let exclude = credential_ids_of(services, tenant, user_id).await?;
    let (options, state): (CreationChallengeResponse, SecurityKeyRegistration) = rp
        .start_securitykey_registration(handle, user_id, user_id, Some(exclude), None, None)
        .map_err(|e| Error::Internal(format!("registration start: {e}")))?;
    save_as(
        services,
        tenant,
        bound_id(tenant, claims, "skr"),
        Condition::None,
        Ceremony {
            kind: "sk-register",
            state: to_value(&state)?,
            user_id: Some(user_id.clone()),
            action: Some((claims.act.clone(), claims.idk.clone())),
            extra: json!({ "handle": handle.to_string() }),
        },
    )
    .await?;
    Ok(options)
}

/// `POST /client/user-authenticators/security-key` with the bare registration response.
pub async fn finish_security_key_registration(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
    credential: &RegisterPublicKeyCredential,
) -> Result<(Verified, Value), Error> {
    let ceremony = take(
        services,
        tenant,
        &bound_id(tenant, claims, "skr"),
        &["sk-register"],
    )
    .await?;
    register(
        services,
        tenant,
        ctx,
        claims,
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
    claims: &Claims,
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
    if user_id != claims.sub {
        return Err(Error::Invalid(
            "The challenge belongs to another user.".into(),
        ));
    }
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
    let mut authenticator = Item::new(&pk, format!("AUTH#{aid}"))
        .with("verificationMethod", kind.method())
        .with("createdAt", now.clone())
        .with("verifiedAt", now.clone())
        .with("isDefault", false)
        .with("credentialId", cred_id.clone())
        .with("name", name)
        .with("backupEligible", backup_eligible)
        .with("backedUp", backed_up)
        .with(kind.field(), stored);
    if let Some(a) = aaguid {
        authenticator = authenticator.with("aaguid", a.hyphenated().to_string());
    }
    let view = json!({
        "userAuthenticatorId": aid,
        "userId": user_id,
        "verificationMethod": kind.method(),
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
            item: Item::new(credential_pk(&tenant.id, &cred_id), "CRED")
                .with("userId", user_id.clone())
                .with("authenticatorId", aid.clone()),
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
        None => ops.push(WriteOp::Put {
            item: new_user_item(services, &tenant.id, &user_id)?
                .with("webauthnUserId", handle.clone()),
            condition: Condition::Absent,
        }),
    }
    if let Ok(h) = handle.parse::<Uuid>() {
        ops.push(WriteOp::Put {
            item: Item::new(handle_pk(&tenant.id, &h), "UH").with("userId", user_id.clone()),
            condition: Condition::None,
        });
    }
    let (action_op, code, key) = settle_action(
        services,
        tenant,
        &user_id,
        action,
        "CHALLENGE_SUCCEEDED",
        kind.method(),
    )
    .await?;
    ops.extend(action_op);
    let recovery_codes = crate::domain::otp::first_strong_codes(services, tenant, &user_id)
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
    )
    .await?;
    Ok((
        Verified {
            is_verified: true,
            access_token,
            user_id,
            user_authenticator_id: aid,
            username,
            recovery_codes,
        },
        view,
    ))
}

pub async fn authentication_options(
    services: &Services,
    tenant: &Tenant,
    claims: Option<&Claims>,
    challenge_id: Option<&str>,
) -> Result<(String, RequestChallengeResponse), Error> {
    let rp = relying_party(tenant)?;
    let action = match (claims, challenge_id.filter(|c| !c.is_empty())) {
        (Some(c), _) => Some((c.act.clone(), c.idk.clone())),
        (None, Some(id)) => {
            let named = take(services, tenant, id, &["action"]).await?;
            Some((
                named.str("actionCode").unwrap_or_default().to_owned(),
                String::new(),
            ))
        }
        (None, None) => None,
    };
    // With a token the user is known: their passkeys are offered. Without one the browser
    // offers any discoverable credential for this RP, and the user is learnt at verify.
    let (options, kind, state, user_id) = match claims {
        Some(claims) => {
            let passkeys: Vec<Passkey> = passkeys_of(services, tenant, &claims.sub)
                .await?
                .into_iter()
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
                "authenticate",
                to_value(&state)?,
                Some(claims.sub.clone()),
            )
        }
        None => {
            let (options, state): (RequestChallengeResponse, DiscoverableAuthentication) = rp
                .start_discoverable_authentication()
                .map_err(|e| Error::Internal(format!("authentication start: {e}")))?;
            (options, "discover", to_value(&state)?, None)
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
            extra: Value::Null,
        },
    )
    .await?;
    Ok((id, options))
}

pub async fn verify_authentication(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: Option<&Claims>,
    challenge_id: &str,
    credential: &PublicKeyCredential,
) -> Result<Verified, Error> {
    let ceremony = take(
        services,
        tenant,
        challenge_id,
        &["authenticate", "discover"],
    )
    .await?;
    let action = Some((
        ceremony.str("actionCode").unwrap_or_default().to_owned(),
        ceremony
            .str("idempotencyKey")
            .unwrap_or_default()
            .to_owned(),
    ));
    let rp = relying_party(tenant)?;
    let cred_id = URL_SAFE_NO_PAD.encode::<&[u8]>(credential.raw_id.as_ref());
    let owner = services
        .store
        .get(&credential_pk(&tenant.id, &cred_id), "CRED")
        .await?
        .and_then(|c| c.str("userId").map(str::to_owned));
    // Every refusal is audited, and moves the tracked action (if any) to CHALLENGE_FAILED.
    let refuse = |user: Option<String>, reason: String| {
        let action = action.clone();
        async move {
            record_failure(
                services,
                tenant,
                ctx,
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
    let (user_id, result) = if ceremony.str("kind") == Some("authenticate") {
        let expected = ceremony.str("userId").unwrap_or_default().to_owned();
        if claims.is_some_and(|c| c.sub != expected) || owner.as_deref() != Some(expected.as_str())
        {
            return refuse(
                Some(expected),
                "the credential belongs to another user".into(),
            )
            .await;
        }
        let state: PasskeyAuthentication = from_value(ceremony.attrs.get("state"))?;
        match rp.finish_passkey_authentication(credential, &state) {
            Ok(r) => (expected, r),
            Err(e) => return refuse(Some(expected), e.to_string()).await,
        }
    } else {
        let (handle, _) = match rp.identify_discoverable_authentication(credential) {
            Ok(found) => found,
            Err(e) => return refuse(None, e.to_string()).await,
        };
        let by_handle = services
            .store
            .get(&handle_pk(&tenant.id, &handle), "UH")
            .await?
            .and_then(|h| h.str("userId").map(str::to_owned));
        let (Some(user_id), Some(owner)) = (by_handle, owner) else {
            return refuse(None, "unknown credential".into()).await;
        };
        if user_id != owner {
            return refuse(
                Some(owner),
                "the credential and the user handle belong to different users".into(),
            )
            .await;
        }
        let Some(key) = passkeys_of(services, tenant, &user_id)
            .await?
            .into_iter()
            .map(|(_, p)| p)
            .find(|p| URL_SAFE_NO_PAD.encode::<&[u8]>(p.cred_id().as_ref()) == cred_id)
        else {
            return refuse(Some(user_id), "unknown credential".into()).await;
        };
        let state: DiscoverableAuthentication = from_value(ceremony.attrs.get("state"))?;
        // webauthn-rs refuses a signature counter that did not grow (a possible clone).
        match rp.finish_discoverable_authentication_v2(
            credential,
            state,
            DiscoverableKey::from(&key),
        ) {
            Ok(r) => (user_id, r),
            Err(e) => return refuse(Some(user_id), e.to_string()).await,
        }
    };
    succeed(
        services,
        tenant,
        ctx,
        &user_id,
        &result,
        action,
        Kind::Passkey,
        None,
    )
    .await
}

/// A verified assertion: records the credential's new counter and backup state, settles the
/// action and audits, in one transaction; then issues the access token.
#[allow(clippy::too_many_arguments)]
async fn succeed(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    user_id: &str,
    result: &AuthenticationResult,
    action: Option<(String, String)>,
    kind: Kind,
    scope: Option<String>,
) -> Result<Verified, Error> {
    // webauthn-rs has already refused a counter that did not grow (a possible clone, as its
    // docs advise); record the new values.
    let mut ops = Vec::new();
    let mut authenticator_id = String::new();
    let items = authenticator_items(services, tenant, user_id).await?;
    let cred_id = URL_SAFE_NO_PAD.encode::<&[u8]>(result.cred_id().as_ref());
    if let Some(item) = items
        .into_iter()
        .find(|i| i.str("credentialId") == Some(cred_id.as_str()))
    {
        authenticator_id = item.sk.trim_start_matches("AUTH#").to_owned();
        let updated = match kind {
            Kind::Passkey => from_value::<Passkey>(item.attrs.get(kind.field()))
                .ok()
                .and_then(|mut k| {
                    (k.update_credential(result) == Some(true)).then(|| to_value(&k))
                }),
            Kind::SecurityKey => from_value::<SecurityKey>(item.attrs.get(kind.field()))
                .ok()
                .and_then(|mut k| {
                    (k.update_credential(result) == Some(true)).then(|| to_value(&k))
                }),
        };
        let v = item.version;
        let now = stamp(services)?;
        let mut item = item
            .with("lastVerifiedAt", now)
            .with("backedUp", result.backup_state())
            .with_version(v + 1);
        if let Some(stored) = updated {
            item = item.with(kind.field(), stored?);
        }
        ops.push(WriteOp::Put {
            item,
            condition: Condition::Version(v),
        });
    }
    let (action_op, code, key) = settle_action(
        services,
        tenant,
        user_id,
        action,
        "CHALLENGE_SUCCEEDED",
        kind.method(),
    )
    .await?;
    ops.extend(action_op);
    if ops.is_empty() {
        return Err(Error::Internal(
            "nothing to record for a verified credential".into(),
        ));
    }
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
    commit(services, tenant, ctx, change).await?;
    let access_token = tokens::issue(services, &tenant.id, user_id, &code, &key, scope).await?;
    Ok(Verified {
        is_verified: true,
        access_token,
        user_id: user_id.to_owned(),
        user_authenticator_id: authenticator_id,
        username: None,
        recovery_codes: None,
    })
}

/// `POST /client/user-authenticators/security-key/authentication-options`: the bare options
/// for the token's user's security keys.
pub async fn security_key_authentication_options(
    services: &Services,
    tenant: &Tenant,
    claims: &Claims,
) -> Result<RequestChallengeResponse, Error> {
    let rp = relying_party(tenant)?;
    let keys: Vec<SecurityKey> = keys_of(services, tenant, &claims.sub, Kind::SecurityKey)
        .await?
        .into_iter()
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
        bound_id(tenant, claims, "ska"),
        Condition::None,
        Ceremony {
            kind: "sk-authenticate",
            state: to_value(&state)?,
            user_id: Some(claims.sub.clone()),
            action: Some((claims.act.clone(), claims.idk.clone())),
            extra: Value::Null,
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
    claims: &Claims,
    credential: &PublicKeyCredential,
) -> Result<Verified, Error> {
    let ceremony = take(
        services,
        tenant,
        &bound_id(tenant, claims, "ska"),
        &["sk-authenticate"],
    )
    .await?;
    let action = Some((claims.act.clone(), claims.idk.clone()));
    let user_id = claims.sub.clone();
    let refuse = |reason: String| {
        let action = action.clone();
        let user_id = user_id.clone();
        async move {
            record_failure(
                services,
                tenant,
                ctx,
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
    let cred_id = URL_SAFE_NO_PAD.encode::<&[u8]>(credential.raw_id.as_ref());
    let owner = services
        .store
        .get(&credential_pk(&tenant.id, &cred_id), "CRED")
        .await?
        .and_then(|c| c.str("userId").map(str::to_owned));
    if ceremony.str("userId") != Some(user_id.as_str()) || owner.as_deref() != Some(&user_id) {
        return refuse("the credential belongs to another user".into()).await;
    }
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
        &user_id,
        &result,
        action,
        Kind::SecurityKey,
        claims.scope.clone(),
    )
    .await
}

/// `GET /client/user-authenticators/passkey?credentialIds=`: whether any is registered here.
pub async fn any_registered(
    services: &Services,
    tenant: &Tenant,
    credential_ids: &[String],
) -> Result<bool, Error> {
    for id in credential_ids.iter().take(20) {
        if services
            .store
            .get(&credential_pk(&tenant.id, id), "CRED")
            .await?
            .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}
