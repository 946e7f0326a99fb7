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
use crate::domain::Services;
use crate::domain::aaguid;
use crate::domain::actions::check_code;
use crate::domain::audit::{AuditContext, Change};
use crate::domain::authenticators::UserAuthenticators;
use crate::domain::authz::{Access, Proof};
use crate::domain::ceremony::{
    CeremonyKind, bound_id, challenge_pk, commit, now_epoch, settle_action, settle_enrollment,
    stamp,
};
use crate::domain::limits;
use crate::domain::machine::{Event, VerificationMethod};
use crate::domain::tenants::Tenant;
use crate::domain::tokens;
use crate::domain::users::{audit_ref, get_user, new_user_item, user_pk};
use crate::ports::random::RandomExt as _;
use crate::ports::store::{Condition, Item, WriteOp};
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
    fn method(self) -> VerificationMethod {
        match self {
            Kind::Passkey => VerificationMethod::Passkey,
            Kind::SecurityKey => VerificationMethod::SecurityKey,
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
    kind: CeremonyKind,
    state: Value,
    user_id: Option<String>,
    action: Option<(String, String)>,
    extra: Value,
    /// For a ceremony made for a `Basic <tenant id>` caller: the caller's address, counted
    /// against the anonymous limits in the same transaction as the ceremony item.
    anonymous: Option<Option<String>>,
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
    // Ceremonies anyone can start with a tenant id alone are removed soon after they expire.
    let linger = match c.kind {
        CeremonyKind::NamedAction | CeremonyKind::PasskeyDiscover => 60,
        _ => 3600,
    };
    let mut item = Item::new(challenge_pk(&tenant.id, &id), "CH")
        .with("kind", c.kind.as_str())
        .with("state", c.state)
        .with("expiresAt", expires)
        .with("extra", c.extra)
        .with_ttl(expires + linger);
    if let Some(u) = c.user_id {
        item = item.with("userId", u);
    }
    if let Some((code, key)) = c.action {
        item = item.with("actionCode", code).with("idempotencyKey", key);
    }
    match c.anonymous {
        Some(client) => {
            let op = WriteOp::Put { item, condition };
            limits::commit_anonymous(services, &tenant.id, client.as_deref(), vec![op]).await?;
        }
        None => services.store.put(item, condition).await?,
    }
    Ok(id)
}

/// Takes a ceremony out of the store: at most one caller ever gets it.
async fn take(
    services: &Services,
    tenant: &Tenant,
    id: &str,
    kinds: &[CeremonyKind],
) -> Result<Item, Error> {
    let gone = || Error::Invalid("The challenge is unknown, expired or already used.".into());
    if id.is_empty() || id.len() > 64 {
        return Err(gone());
    }
    // Read, check, then delete under the version read: a caller naming an item of another
    // kind (the one-time-code challenges share this key space, under ids anyone holding the
    // token can compute) must not be able to delete it, and with it its attempt count.
    let pk = challenge_pk(&tenant.id, id);
    let Some(item) = services.store.get(&pk, "CH").await? else {
        return Err(gone());
    };
    let expires = item
        .attrs
        .get("expiresAt")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let kind = item.str("kind").and_then(CeremonyKind::parse);
    if !kind.is_some_and(|k| kinds.contains(&k)) {
        return Err(gone());
    }
    match services
        .store
        .delete(&pk, "CH", Condition::Version(item.version))
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) | Err(crate::ports::store::StoreError::ConditionFailed { .. }) => {
            return Err(gone());
        }
        Err(e) => return Err(e.into()),
    }
    if expires <= now_epoch(services) {
        return Err(gone());
    }
    Ok(item)
}

/// `POST /client/challenge {action}`: remembers which action a usernameless sign-in is for.
pub async fn challenge_for_action(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    action: &str,
) -> Result<String, Error> {
    check_code(action)?;
    save(
        services,
        tenant,
        Ceremony {
            kind: CeremonyKind::NamedAction,
            state: Value::Null,
            user_id: None,
            action: Some((action.to_owned(), String::new())),
            extra: Value::Null,
            anonymous: Some(ctx.source_ip.clone()),
        },
    )
    .await
}

/// A user's verified credentials of one kind, with the items that hold them.
fn keys_of<T: serde::de::DeserializeOwned>(
    auths: &UserAuthenticators,
    kind: Kind,
) -> Vec<(Item, T)> {
    auths
        .verified()
        .filter(|r| r.method == kind.method())
        .filter_map(|r| {
            let v = r.item.attrs.get(kind.field())?;
            let key = serde_json::from_value::<T>(v.clone()).ok()?;
            Some((r.item.clone(), key))
        })
        .collect()
}

/// Every WebAuthn credential the user has, of either kind: excluded at registration so one
/// authenticator is not registered twice.
fn credential_ids_of(auths: &UserAuthenticators) -> Vec<CredentialID> {
    auths
        .records
        .iter()
        .filter_map(|r| r.item.str("credentialId"))
        .filter_map(|c| URL_SAFE_NO_PAD.decode(c).ok())
        .collect()
}

/// Refuses an assertion made in a cross-origin iframe (`crossOrigin: true` in its client
/// data): webauthn-rs 0.6 checks this on registration only. A page embedding the tenant's in
/// a frame must not be able to run its sign-in.
fn cross_origin(client_data_json: &[u8]) -> bool {
    serde_json::from_slice::<Value>(client_data_json)
        .ok()
        .and_then(|v| v.get("crossOrigin").and_then(Value::as_bool))
        .unwrap_or(false)
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_display_name: Option<String>,
    /// Recovery codes, when this registration was the user's first strong authenticator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

/// Records a failed ceremony: the action (if any, and if it is waiting for a challenge) moves
/// to CHALLENGE_FAILED, with its event. A failure with no known user (usernameless sign-in
/// with an unknown or broken credential) is counted per tenant and hour instead, and audited
/// only on the 1st, 10th, 100th … of each hour: anyone who knows the tenant id can cause one,
/// and must not be able to grow the tenant's audit log without bound.
#[allow(clippy::too_many_arguments)]
async fn record_failure(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    access: &Access,
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
    let Some(u) = user_id else {
        return record_anonymous_failure(services, tenant, ctx, what, reason).await;
    };
    let mut ops = Vec::new();
    let challenged = access
        .subject
        .as_ref()
        .is_some_and(|s| s.action.state == crate::domain::machine::ActionState::ChallengeRequired);
    if challenged && action.as_ref().is_some_and(|(_, k)| !k.is_empty()) {
        let (op, _, _) = settle_action(
            services,
            tenant,
            u,
            action,
            Event::CeremonyFailed,
            kind.method(),
        )
        .await?;
        ops.extend(op);
    }
    let change = Change {
        action: what,
        target: audit_ref(services, &tenant.id, u).await?,
        summary: json!({ "reason": reason }),
        ops,
    };
    commit(services, tenant, ctx, change).await
}

fn is_power_of_ten(n: u64) -> bool {
    let mut m = n;
    while m >= 10 && m.is_multiple_of(10) {
        m /= 10;
    }
    m == 1
}

async fn record_anonymous_failure(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    what: &'static str,
    reason: &str,
) -> Result<(), Error> {
    let hour = now_epoch(services).div_euclid(3600);
    let pk = format!("T#{}#FAIL", tenant.id);
    let sk = format!("H#{hour}");
    for _ in 0..4 {
        let current = services.store.get(&pk, &sk).await?;
        let (n, op) = match current {
            Some(item) => {
                let v = item.version;
                let n = item.u64("count").unwrap_or(0) + 1;
                (
                    n,
                    WriteOp::Put {
                        item: item.with("count", n).with_version(v + 1),
                        condition: Condition::Version(v),
                    },
                )
            }
            None => (
                1,
                WriteOp::Put {
                    item: Item::new(&pk, &sk)
                        .with("count", 1)
                        .with_ttl((hour + 1) * 3600 + 7 * 86_400),
                    condition: Condition::Absent,
                },
            ),
        };
        let audited = is_power_of_ten(n);
        let result = if audited {
            let change = Change {
                action: what,
                target: "user:unknown".to_owned(),
                summary: json!({ "reason": reason, "anonymousFailuresThisHour": n }),
                ops: vec![op],
            };
            services
                .journal
                .commit(&tenant.id, ctx, change)
                .await
                .map(|_| ())
                .map_err(|e| match e {
                    crate::domain::audit::CommitError::Condition { .. } => None,
                    other => Some(Error::from(other)),
                })
        } else {
            services
                .store
                .transact(vec![op])
                .await
                .map_err(|e| match e {
                    crate::ports::store::StoreError::ConditionFailed { .. }
                    | crate::ports::store::StoreError::TransactionConditionFailed { .. } => None,
                    other => Some(Error::from(other)),
                })
        };
        match result {
            Ok(()) => return Ok(()),
            Err(None) => continue,
            Err(Some(e)) => return Err(e),
        }
    }
    Err(Error::Conflict("too many concurrent failures; retry"))
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
        .with(
            "userName",
            username.clone().unwrap_or_else(|| user_id.clone()),
        )
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

pub async fn authentication_options(
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
    let (options, kind, state, user_id) = match claims {
        Some(claims) => {
            let this = access.action_ref().unwrap_or_default();
            let passkeys: Vec<Passkey> =
                keys_of::<Passkey>(access.authenticators()?, Kind::Passkey)
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
            extra: Value::Null,
            // Counted (with the ceremony item, in one transaction) when anyone with the tenant
            // id could have asked.
            anonymous: claims.is_none().then(|| ctx.source_ip.clone()),
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
    let claims = access.claims.as_ref();
    // A token finishes only the ceremony it started; a tenant id only a usernameless one.
    // (Not rate-limited: only a counted options call hands out a ceremony id, and each id
    // finishes at most once.)
    let kinds: &[CeremonyKind] = match claims {
        Some(_) => &[CeremonyKind::PasskeyAuthenticate],
        None => &[CeremonyKind::PasskeyDiscover],
    };
    let ceremony = take(services, tenant, challenge_id, kinds).await?;
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
    let (user_id, result, auths) = if let Some(claims) = claims {
        let expected = ceremony.str("userId").unwrap_or_default().to_owned();
        // The ceremony was started for this token's action, not another of the same user's.
        let same_action = action.as_ref() == Some(&(claims.act.clone(), claims.idk.clone()));
        if !same_action {
            return Err(Error::Invalid(
                "The challenge belongs to another action.".into(),
            ));
        }
        if claims.sub != expected || owner.as_deref() != Some(expected.as_str()) {
            return refuse(
                Some(expected),
                "the credential belongs to another user".into(),
            )
            .await;
        }
        let state: PasskeyAuthentication = from_value(ceremony.attrs.get("state"))?;
        match rp.finish_passkey_authentication(credential, &state) {
            Ok(r) => (expected, r, access.authenticators()?.clone()),
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
        let auths = crate::domain::authenticators::of_user(services, tenant, &user_id).await?;
        let Some(key) = keys_of::<Passkey>(&auths, Kind::Passkey)
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
            Ok(r) => (user_id, r, auths),
            Err(e) => return refuse(Some(user_id), e.to_string()).await,
        }
    };
    succeed(
        services,
        tenant,
        ctx,
        (&user_id, &auths),
        &result,
        action,
        Kind::Passkey,
        claims.and_then(|c| c.scope.clone()),
    )
    .await
}

/// A verified assertion: records the credential's new counter and backup state, settles the
/// action and audits, in one transaction; then issues the access token, which carries the
/// proof of this ceremony.
#[allow(clippy::too_many_arguments)]
async fn succeed(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    (user_id, auths): (&str, &UserAuthenticators),
    result: &AuthenticationResult,
    action: Option<(String, String)>,
    kind: Kind,
    scope: Option<String>,
) -> Result<Verified, Error> {
    // webauthn-rs has already refused a counter that did not grow (a possible clone, as its
    // docs advise); record the new values.
    let mut ops = Vec::new();
    let mut authenticator_id = String::new();
    let mut registered_name = None;
    let cred_id = URL_SAFE_NO_PAD.encode::<&[u8]>(result.cred_id().as_ref());
    if let Some(record) = auths
        .verified()
        .find(|r| r.item.str("credentialId") == Some(cred_id.as_str()))
    {
        let item = record.item.clone();
        authenticator_id = record.id.clone();
        registered_name = item.str("userName").map(str::to_owned);
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
        Event::CeremonySucceeded,
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
    // What the browser SDK shows as `username` / `displayName`: the user's own attributes,
    // else the name the credential was registered under.
    let attributes = get_user(services, tenant, user_id)
        .await?
        .map(|u| u.attributes)
        .unwrap_or_default();
    let username = attributes
        .username
        .or(registered_name)
        .unwrap_or_else(|| user_id.to_owned());
    Ok(Verified {
        is_verified: true,
        access_token,
        user_id: user_id.to_owned(),
        user_authenticator_id: authenticator_id,
        user_display_name: Some(attributes.display_name.unwrap_or_else(|| username.clone())),
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
    let ceremony = take(
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
        async move {
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
        (&user_id, access.authenticators()?),
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
