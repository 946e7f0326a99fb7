//! A user's authenticators (verified methods). Contact details and TOTP secrets are sealed
//! with the tenant's data key like every other personal field.
use crate::crypto::FieldContext;
use crate::domain::Error;
use crate::domain::Services;
use crate::domain::machine::VerificationMethod;
use crate::domain::tenants::Tenant;
use crate::domain::users::{check_user_id, user_pk};
use crate::ports::store::{Condition, Item, Query, WriteOp};
use serde::Serialize;
use serde_json::{Value, json};

pub(crate) const PREFIX: &str = "AUTH#";

/// `UserAuthenticator` as the wire shows it (docs/wire.md §8).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Authenticator {
    pub user_authenticator_id: String,
    pub user_id: String,
    pub verification_method: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_verified_at: Option<String>,
    pub is_default: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// Passkeys and security keys: `{credentialId, name, aaguid?, credentialBackedUp,
    /// credentialDeviceType}` (docs/wire.md §8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webauthn_credential: Option<Value>,
}

/// The `webauthnCredential` view of a stored passkey or security key.
pub fn webauthn_view(item: &Item) -> Option<Value> {
    let id = item.str("credentialId")?;
    let flag = |k: &str| item.attrs.get(k).and_then(Value::as_bool).unwrap_or(false);
    let mut v = json!({
        "credentialId": id,
        "name": item.str("name").unwrap_or_default(),
        "credentialBackedUp": flag("backedUp"),
        "credentialDeviceType": if flag("backupEligible") { "multiDevice" } else { "singleDevice" },
    });
    if let Some(a) = item.str("aaguid") {
        v["aaguid"] = json!(a);
    }
    Some(v)
}

pub(crate) fn context<'a>(tenant_id: &'a str, item: &'a str, field: &'a str) -> FieldContext<'a> {
    FieldContext {
        tenant_id,
        item,
        field,
    }
}

pub(crate) async fn read(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
    item: &Item,
) -> Result<Authenticator, Error> {
    let id = item.sk.trim_start_matches(PREFIX).to_owned();
    let item_key = format!("U#{user_id}#{}", item.sk);
    let open = |field: &'static str| {
        let sealed = item.str(field).map(str::to_owned);
        let item_key = item_key.clone();
        async move {
            match sealed {
                None => Ok::<_, Error>(None),
                Some(s) => {
                    let bytes = services
                        .envelope
                        .open(&tenant.data_key, context(&tenant.id, &item_key, field), &s)
                        .await?;
                    Ok(String::from_utf8(bytes).ok())
                }
            }
        }
    };
    let email = open("email").await?;
    let phone_number = open("phoneNumber").await?;
    Ok(Authenticator {
        user_authenticator_id: id,
        user_id: user_id.to_owned(),
        verification_method: item
            .str("verificationMethod")
            .unwrap_or_default()
            .to_owned(),
        created_at: item.str("createdAt").unwrap_or_default().to_owned(),
        verified_at: item.str("verifiedAt").map(str::to_owned),
        last_verified_at: item.str("lastVerifiedAt").map(str::to_owned),
        is_default: item
            .attrs
            .get("isDefault")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        email,
        phone_number,
        webauthn_credential: webauthn_view(item),
    })
}

/// How long a started enrollment (TOTP secret shown, email code sent) may be completed.
pub const PENDING_SECONDS: i64 = 10 * 60;

/// Where an authenticator is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Started, not completed: usable only to complete itself, by the action that started it,
    /// until it expires. Never listed, never counts as enrolled, never answers a challenge.
    Pending {
        expires_at: i64,
        started_by: String,
    },
    Verified,
}

/// One authenticator item (`T#{tid}#U#{uid}` / `AUTH#{id}`), typed. The item is kept so that a
/// write keeps what the kind-specific code stored (sealed fields, webauthn-rs records).
#[derive(Debug, Clone)]
pub struct AuthenticatorRecord {
    pub id: String,
    pub method: VerificationMethod,
    pub status: Status,
    /// The action it was enrolled on: it cannot answer that action's challenge.
    pub enrolled_for: Option<String>,
    pub item: Item,
}

impl AuthenticatorRecord {
    /// `None` for an item of a method this version does not know.
    pub fn from_item(item: Item) -> Option<Self> {
        let method = VerificationMethod::parse(item.str("verificationMethod")?)?;
        let status = if item.str("verifiedAt").is_some() {
            Status::Verified
        } else {
            // Pending items written before expiry was recorded are expired.
            Status::Pending {
                expires_at: item
                    .attrs
                    .get("pendingExpiresAt")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
                started_by: item.str("startedBy").unwrap_or_default().to_owned(),
            }
        };
        Some(Self {
            id: item.sk.trim_start_matches(PREFIX).to_owned(),
            method,
            status,
            enrolled_for: item.str("enrolledFor").map(str::to_owned),
            item,
        })
    }

    pub fn is_verified(&self) -> bool {
        self.status == Status::Verified
    }

    /// A pending enrollment started by `action` that has not expired.
    pub fn is_pending_for(&self, action: &str, now: i64) -> bool {
        matches!(&self.status, Status::Pending { expires_at, started_by }
            if *expires_at > now && started_by == action)
    }

    /// Whether it may answer the challenge of `action` (`code#key`).
    pub fn answers(&self, action: &str) -> bool {
        self.is_verified() && self.enrolled_for.as_deref() != Some(action)
    }
}

/// A user's authenticators, read with one query: what passkeys, OTP, the Server API and the
/// authorization matrix all read.
#[derive(Debug, Clone, Default)]
pub struct UserAuthenticators {
    pub records: Vec<AuthenticatorRecord>,
}

impl UserAuthenticators {
    pub fn verified(&self) -> impl Iterator<Item = &AuthenticatorRecord> {
        self.records.iter().filter(|r| r.is_verified())
    }

    pub fn has_verified(&self) -> bool {
        self.verified().next().is_some()
    }

    /// A verified passkey, security key or authenticator app.
    pub fn has_strong(&self) -> bool {
        self.verified().any(|r| r.method.is_strong())
    }

    /// The verified authenticators of `method` that may answer `action`'s challenge.
    pub fn challengers(
        &self,
        method: VerificationMethod,
        action: &str,
    ) -> impl Iterator<Item = &AuthenticatorRecord> {
        self.records
            .iter()
            .filter(move |r| r.method == method && r.answers(action))
    }

    /// The live pending enrollment of `method` that `action` started, if any.
    pub fn pending_for(
        &self,
        method: VerificationMethod,
        action: &str,
        now: i64,
    ) -> Option<&AuthenticatorRecord> {
        self.records
            .iter()
            .find(|r| r.method == method && r.is_pending_for(action, now))
    }

    /// Deletes of every pending enrollment but `keep`: written with the verification of
    /// another authenticator (or a new start), so no stale enrollment lingers.
    pub fn drop_pending(&self, keep: Option<&str>) -> Vec<WriteOp> {
        self.records
            .iter()
            .filter(|r| !r.is_verified() && Some(r.id.as_str()) != keep)
            .map(|r| WriteOp::Delete {
                pk: r.item.pk.clone(),
                sk: r.item.sk.clone(),
                condition: Condition::None,
            })
            .collect()
    }

    /// The distinct methods verified, in a stable order.
    pub fn enrolled_methods(&self) -> Vec<String> {
        let mut methods: Vec<String> = self
            .verified()
            .filter_map(|r| r.item.str("verificationMethod").map(str::to_owned))
            .collect();
        methods.sort();
        methods.dedup();
        methods
    }

    /// The verified items, as the Server API lists them.
    pub(crate) fn verified_items(&self) -> Vec<Item> {
        self.verified().map(|r| r.item.clone()).collect()
    }
}

/// Every authenticator of a user, pending ones included (callers filter by status).
pub async fn of_user(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
) -> Result<UserAuthenticators, Error> {
    let items = services
        .store
        .query(
            Query::partition(user_pk(&tenant.id, user_id))
                .prefix(PREFIX)
                .limit(1000),
        )
        .await?
        .items;
    Ok(UserAuthenticators {
        records: items
            .into_iter()
            .filter_map(AuthenticatorRecord::from_item)
            .collect(),
    })
}

/// A user's verified authenticators' items.
async fn items(services: &Services, tenant: &Tenant, user_id: &str) -> Result<Vec<Item>, Error> {
    Ok(of_user(services, tenant, user_id).await?.verified_items())
}

pub async fn list(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
) -> Result<Vec<Authenticator>, Error> {
    check_user_id(user_id)?;
    let mut out = Vec::new();
    for item in items(services, tenant, user_id).await? {
        out.push(read(services, tenant, user_id, &item).await?);
    }
    Ok(out)
}

/// The distinct methods a user has enrolled, in a stable order.
pub async fn enrolled_methods(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
) -> Result<Vec<String>, Error> {
    Ok(of_user(services, tenant, user_id).await?.enrolled_methods())
}
