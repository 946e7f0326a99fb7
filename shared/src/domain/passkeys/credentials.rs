//! The credential record, `T#{tid}#CRED#{credential id}` / `CRED`: one item per registered
//! WebAuthn credential holding everything a sign-in needs to check an assertion — the owner,
//! the authenticator it belongs to, its kind, the user handle it was made with, the name it was
//! registered under, and webauthn-rs's credential record (public key, counter, backup flags).
//!
//! A sign-in reads this one item (by the credential id the assertion names) instead of the
//! user-handle index, the user's authenticators and the user's attributes: with the ceremony
//! and the commit, three store round trips per passkey verify. The user's authenticator item
//! (`AUTH#…`, what listings show) holds the same credential record; both are written at
//! registration, both on each sign-in (this item under its version, the authenticator item
//! updated in place on condition that it still exists, so a deleted authenticator cannot sign
//! in even if this item lingered), and both deleted with the authenticator or the user.
use super::{Kind, credential_pk, from_value};
use crate::domain::Error;
use crate::domain::Services;
use crate::domain::tenants::Tenant;
use crate::domain::users::user_pk;
use crate::ports::store::{Condition, Item, WriteOp};
use serde_json::{Map, Value};

pub(crate) const CRED_SK: &str = "CRED";

/// One credential record, as read.
#[derive(Debug, Clone)]
pub(crate) struct CredentialRecord {
    pub item: Item,
    pub user_id: String,
    pub authenticator_id: String,
    pub kind: Kind,
    /// The WebAuthn user handle the credential was made for (passkeys); `None` on records
    /// written before records carried it, which are checked against the `UH#` index instead.
    pub handle: Option<String>,
    /// The name the credential was registered under (what the authenticator shows).
    pub user_name: Option<String>,
    /// webauthn-rs's `Passkey` / `SecurityKey`, as JSON.
    pub key: Value,
}

/// The record registration writes (under an absence condition: credential ids are unique per
/// tenant).
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_item(
    tenant_id: &str,
    credential_id: &str,
    user_id: &str,
    authenticator_id: &str,
    kind: Kind,
    handle: Option<&str>,
    user_name: &str,
    key: Value,
) -> Item {
    let mut item = Item::new(credential_pk(tenant_id, credential_id), CRED_SK)
        .with("userId", user_id)
        .with("authenticatorId", authenticator_id)
        .with("kind", kind.field())
        .with("userName", user_name)
        .with(kind.field(), key);
    if let Some(h) = handle {
        item = item.with("userHandle", h);
    }
    item
}

fn kind_of(s: &str) -> Option<Kind> {
    [Kind::Passkey, Kind::SecurityKey]
        .into_iter()
        .find(|k| k.field() == s || k.method().as_str() == s)
}

/// The record of `credential_id`, if one is registered. A record written before records held
/// the credential itself is completed from the authenticator item it points at (one more
/// read, for those only).
pub(crate) async fn load(
    services: &Services,
    tenant: &Tenant,
    credential_id: &str,
) -> Result<Option<CredentialRecord>, Error> {
    if credential_id.is_empty() || credential_id.len() > 1024 {
        return Ok(None);
    }
    let Some(item) = services
        .store
        .get(&credential_pk(&tenant.id, credential_id), CRED_SK)
        .await?
    else {
        return Ok(None);
    };
    let (Some(user_id), Some(authenticator_id)) = (
        item.str("userId").map(str::to_owned),
        item.str("authenticatorId").map(str::to_owned),
    ) else {
        return Ok(None);
    };
    let complete = item.str("kind").and_then(kind_of).and_then(|k| {
        let key = item.attrs.get(k.field())?.clone();
        Some((k, key, item.str("userName").map(str::to_owned)))
    });
    let (kind, key, user_name) = match complete {
        Some(parts) => parts,
        None => {
            let Some(auth) = services
                .store
                .get(
                    &user_pk(&tenant.id, &user_id),
                    &format!(
                        "{}{authenticator_id}",
                        crate::domain::authenticators::PREFIX
                    ),
                )
                .await?
            else {
                return Ok(None);
            };
            let Some(kind) = auth.str("verificationMethod").and_then(kind_of) else {
                return Ok(None);
            };
            let Some(key) = auth.attrs.get(kind.field()).cloned() else {
                return Ok(None);
            };
            (kind, key, auth.str("userName").map(str::to_owned))
        }
    };
    Ok(Some(CredentialRecord {
        handle: item.str("userHandle").map(str::to_owned),
        item,
        user_id,
        authenticator_id,
        kind,
        user_name,
        key,
    }))
}

impl CredentialRecord {
    /// webauthn-rs's credential, typed.
    pub fn key<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        from_value(Some(&self.key))
    }

    /// The key of the user's authenticator item this record belongs to.
    pub fn authenticator_key(&self, tenant_id: &str) -> (String, String) {
        (
            user_pk(tenant_id, &self.user_id),
            format!(
                "{}{}",
                crate::domain::authenticators::PREFIX,
                self.authenticator_id
            ),
        )
    }

    /// The writes that record a verified assertion: this record under the version read (two
    /// racing sign-ins with one credential: one commits, the other retries), and the same
    /// fields on the authenticator item, which must still exist. `key` is the credential
    /// record after webauthn-rs's `update_credential`, when it changed.
    pub fn verified_ops(
        &self,
        tenant_id: &str,
        key: Option<Value>,
        backed_up: bool,
        now: &str,
    ) -> Vec<WriteOp> {
        let mut set = Map::new();
        set.insert("lastVerifiedAt".into(), now.into());
        set.insert("backedUp".into(), backed_up.into());
        if let Some(k) = key {
            set.insert(self.kind.field().into(), k);
        }
        let v = self.item.version;
        // A record completed from its authenticator item is rewritten whole, so the next
        // sign-in reads one item.
        let mut record = self
            .item
            .clone()
            .with_version(v + 1)
            .with("kind", self.kind.field())
            .with(self.kind.field(), self.key.clone());
        record.attrs.extend(set.clone());
        if let Some(name) = &self.user_name {
            record = record.with("userName", name.clone());
        }
        let (pk, sk) = self.authenticator_key(tenant_id);
        vec![
            WriteOp::Put {
                item: record,
                condition: Condition::Version(v),
            },
            WriteOp::Update {
                pk,
                sk,
                set,
                condition: Condition::Exists,
            },
        ]
    }
}
