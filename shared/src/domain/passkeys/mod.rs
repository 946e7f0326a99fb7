//! WebAuthn ceremonies with webauthn-rs: passkey registration, sign-in with a token,
//! usernameless (discoverable) sign-in, and security keys (second factor, bare wire objects).
//!
//! Ceremony state stays server-side: a challenge item under a random id, with an expiry checked
//! in code (DynamoDB's TTL deletion lags). Finishing deletes the item under an existence
//! condition, so a ceremony finishes at most once, however many requests race for it. The
//! relying party is the tenant's: its RP id and allowed origins, matched exactly (webauthn-rs
//! does no suffix matching unless told to), with user verification required for passkeys.
//!
//! Security keys (docs/wire.md §5.1) carry no challenge id on the wire: their ceremony is stored under
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
    CeremonyKind, bound_id, challenge_pk, commit, now_epoch, settle_action_with, settle_enrollment,
    stamp,
};
use crate::domain::limits;
use crate::domain::machine::{Event, VerificationMethod};
use crate::domain::tenants::Tenant;
use crate::domain::tokens;
use crate::domain::users::{audit_ref, new_user_item, user_pk};
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

mod authentication;
pub(crate) mod credentials;
mod registration;

pub use authentication::{
    authentication_options, security_key_authentication_options, verify_authentication,
    verify_security_key,
};
pub use registration::{
    finish_registration, finish_security_key_registration, registration_options,
    security_key_registration_options,
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

pub(crate) fn credential_pk(tenant_id: &str, credential_id: &str) -> String {
    crate::domain::users::credential_key(tenant_id, credential_id).0
}

pub(crate) fn handle_pk(tenant_id: &str, handle: &Uuid) -> String {
    crate::domain::users::handle_key(tenant_id, &handle.to_string()).0
}

/// The tenant's relying party. Origins are matched exactly; `http://localhost:*` allows any
/// port on localhost, for development.
pub fn relying_party(tenant: &Tenant) -> Result<Webauthn, Error> {
    let s = &tenant.settings;
    let mut any_port = false;
    let mut origins = Vec::new();
    // Origins are checked when stored (tenants::validate_origin); one stored before that check
    // that fails it could never match a browser's `Origin`, and is left out rather than failing
    // every ceremony of the tenant.
    for o in s
        .allowed_origins
        .iter()
        .filter(|o| crate::domain::tenants::validate_origin(o).is_ok())
    {
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
        .ok_or_else(|| Error::Invalid("the tenant has no valid allowed origins".into()))?;
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
    /// Conditions the ceremony is stored under, in the same transaction (the token's action
    /// still as the authorization needs it: `authz::Facts::Written`).
    checks: Vec<WriteOp>,
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
        None if c.checks.is_empty() => services.store.put(item, condition).await?,
        None => {
            let mut ops = vec![WriteOp::Put { item, condition }];
            ops.extend(c.checks);
            match services.store.transact(ops).await {
                Ok(()) => {}
                Err(crate::ports::store::StoreError::TransactionConditionFailed {
                    index, ..
                }) if index > 0 => {
                    return Err(Error::Conflict("the token's action changed; retry"));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(id)
}

fn gone() -> Error {
    Error::Invalid("The challenge is unknown, expired or already used.".into())
}

/// Takes a ceremony out of the store: at most one caller ever gets it.
async fn take(
    services: &Services,
    tenant: &Tenant,
    id: &str,
    kinds: &[CeremonyKind],
) -> Result<Item, Error> {
    let item = open(services, tenant, id, kinds).await?;
    consume(services, &item).await?;
    Ok(item)
}

/// Reads a live ceremony of one of `kinds` without taking it: the caller takes it with
/// [`consume`], or with [`consume_op`] inside the transaction that records its outcome (one
/// round trip fewer). Either way the delete is conditional on the version read here, so of any
/// number of racing finishes exactly one takes it, and the others get the same error as for
/// an unknown id.
async fn open(
    services: &Services,
    tenant: &Tenant,
    id: &str,
    kinds: &[CeremonyKind],
) -> Result<Item, Error> {
    if id.is_empty() || id.len() > 64 {
        return Err(gone());
    }
    // Read and check the kind before any delete: a caller naming an item of another kind (the
    // one-time-code challenges share this key space, under ids anyone holding the token can
    // compute) must not be able to delete it, and with it its attempt count.
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
    // An expired ceremony is left to the store's expiry: no one can finish it any more.
    if expires <= now_epoch(services) {
        return Err(gone());
    }
    Ok(item)
}

/// Takes an [`open`]ed ceremony on its own (the paths that record no outcome with it).
async fn consume(services: &Services, ceremony: &Item) -> Result<(), Error> {
    match services
        .store
        .delete(
            &ceremony.pk,
            &ceremony.sk,
            Condition::Version(ceremony.version),
        )
        .await
    {
        Ok(Some(_)) => Ok(()),
        Ok(None) | Err(crate::ports::store::StoreError::ConditionFailed { .. }) => Err(gone()),
        Err(e) => Err(e.into()),
    }
}

/// The delete that takes an [`open`]ed ceremony, for the transaction that records its outcome.
fn consume_op(ceremony: &Item) -> WriteOp {
    WriteOp::Delete {
        pk: ceremony.pk.clone(),
        sk: ceremony.sk.clone(),
        condition: Condition::Version(ceremony.version),
    }
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
            checks: Vec::new(),
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
    let challenged =
        access.action_state() == Some(crate::domain::machine::ActionState::ChallengeRequired);
    if challenged && action.as_ref().is_some_and(|(_, k)| !k.is_empty()) {
        let (op, _, _) = settle_action_with(
            services,
            tenant,
            u,
            action,
            Event::CeremonyFailed,
            kind.method(),
            Some(access),
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
