//! End users of a tenant. Email, phone number, username, display name and custom data are
//! sealed with the tenant's data key (bound to tenant, user and field); the store never holds
//! them in the clear. Finding a user by email goes through a keyed blind index
//! (HMAC-SHA256 of the normalised address under the blind-index purpose key), never plaintext.
use crate::crypto::FieldContext;
use crate::crypto::keys::{Purpose, PurposeKey, mac, purpose_keys};
use crate::domain::Error;
use crate::domain::Services;
use crate::domain::audit::{AuditContext, Change};
use crate::domain::keyring;
use crate::domain::tenants::Tenant;
use crate::domain::timestamps::Timestamp as _;
use crate::ports::store::{Condition, Item, Query, WriteOp};
use serde::Serialize;
use serde_json::{Map, Value, json};

const SEALED: [&str; 5] = ["email", "phoneNumber", "username", "displayName", "custom"];
const FLAGS: [&str; 2] = ["emailVerified", "phoneNumberVerified"];

pub fn user_pk(tenant_id: &str, user_id: &str) -> String {
    format!("T#{tenant_id}#U#{user_id}")
}

/// The record of a WebAuthn credential, `T#{tid}#CRED#{credential id}` / `CRED`, which leads
/// from a credential to its user (`passkeys::credentials`).
pub(crate) fn credential_key(tenant_id: &str, credential_id: &str) -> (String, String) {
    (
        format!("T#{tenant_id}#CRED#{credential_id}"),
        "CRED".to_owned(),
    )
}

/// The user-handle index item, `T#{tid}#UH#{handle}` / `UH`, which leads from a WebAuthn user
/// handle to its user.
pub(crate) fn handle_key(tenant_id: &str, handle: &str) -> (String, String) {
    (format!("T#{tenant_id}#UH#{handle}"), "UH".to_owned())
}

fn index_pk(tenant_id: &str, lookup: Lookup, index: &str) -> String {
    format!("T#{tenant_id}#{}#{index}", lookup.tag())
}

/// How audit events name a user: a keyed hash of the id, because tenants often use email
/// addresses as user ids and the audit log outlives a deleted user.
pub async fn audit_ref(
    services: &Services,
    tenant_id: &str,
    user_id: &str,
) -> Result<String, Error> {
    let keys = purpose_keys(services.secrets.as_ref(), Purpose::BlindIndex).await?;
    let mac = keys.mac(format!("audit\0{tenant_id}\0{user_id}").as_bytes());
    Ok(format!("user:{}", crate::crypto::hex(&mac[..10])))
}

/// User ids come from the tenant: 1–255 characters, no control characters.
pub fn check_user_id(user_id: &str) -> Result<(), Error> {
    if user_id.is_empty() || user_id.len() > 255 || user_id.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "userId must be 1-255 characters without control characters".into(),
        ));
    }
    Ok(())
}

/// A user's attributes as the wire shows them (`UserAttributes`, docs/wire.md §4.4).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAttributes {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub email_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    pub phone_number_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub attributes: UserAttributes,
    pub item: Item,
}

async fn open(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
    item: &Item,
    field: &str,
) -> Result<Option<String>, Error> {
    let Some(sealed) = item.str(field) else {
        return Ok(None);
    };
    let item_key = format!("U#{user_id}");
    let at = FieldContext {
        tenant_id: &tenant.id,
        item: &item_key,
        field,
    };
    let bytes = services.envelope.open(&tenant.data_key, at, sealed).await?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::Internal("sealed field is not text".into()))
}

async fn seal(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
    field: &str,
    value: &str,
) -> Result<String, Error> {
    let item_key = format!("U#{user_id}");
    let at = FieldContext {
        tenant_id: &tenant.id,
        item: &item_key,
        field,
    };
    Ok(services
        .envelope
        .seal(&tenant.data_key, at, value.as_bytes())
        .await?)
}

pub async fn get_user(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
) -> Result<Option<User>, Error> {
    let Some(item) = services
        .store
        .get(&user_pk(&tenant.id, user_id), "USER")
        .await?
    else {
        return Ok(None);
    };
    let custom = match open(services, tenant, user_id, &item, "custom").await? {
        Some(text) => Some(
            serde_json::from_str(&text)
                .map_err(|_| Error::Internal("custom is not JSON".into()))?,
        ),
        None => None,
    };
    let attributes = UserAttributes {
        email: open(services, tenant, user_id, &item, "email").await?,
        email_verified: item
            .attrs
            .get("emailVerified")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        phone_number: open(services, tenant, user_id, &item, "phoneNumber").await?,
        phone_number_verified: item
            .attrs
            .get("phoneNumberVerified")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        username: open(services, tenant, user_id, &item, "username").await?,
        display_name: open(services, tenant, user_id, &item, "displayName").await?,
        custom,
        locale: item.str("locale").map(str::to_owned),
    };
    Ok(Some(User {
        id: user_id.to_owned(),
        attributes,
        item,
    }))
}

/// The item for a user seen for the first time (no attributes yet).
pub fn new_user_item(services: &Services, tenant_id: &str, user_id: &str) -> Result<Item, Error> {
    let now = services.clock.now().rfc3339()?;
    Ok(Item::new(user_pk(tenant_id, user_id), "USER")
        .with("createdAt", now.clone())
        .with("updatedAt", now)
        .with("listed", true))
}

/// The tenant's user list, for listing users without a filter (`GET /v1/users`): one entry
/// per user, `U#{uid}`, written with the user record (which then says `listed`) and deleted
/// with it. One partition per tenant: about 1,000 new users a second per tenant on DynamoDB.
pub fn user_list_pk(tenant_id: &str) -> String {
    format!("T#{tenant_id}#USERS")
}

/// The write that puts a new user on the tenant's user list; every write of a new user record
/// ([`new_user_item`]) comes with it.
pub fn listed(tenant_id: &str, user_id: &str) -> WriteOp {
    WriteOp::Put {
        item: Item::new(user_list_pk(tenant_id), format!("U#{user_id}")).with("userId", user_id),
        condition: Condition::None,
    }
}

/// Up to `limit` of the tenant's user ids in id order, after `after`; and whether more follow.
pub async fn list_user_ids(
    services: &Services,
    tenant: &Tenant,
    limit: usize,
    after: Option<&str>,
) -> Result<(Vec<String>, bool), Error> {
    let mut q = Query::partition(user_list_pk(&tenant.id)).limit(limit as u32 + 1);
    if let Some(after) = after {
        let resume = q.cursor_after(&format!("U#{after}"));
        q = q.after(Some(resume));
    }
    let page = services.store.query(q).await?;
    let mut ids: Vec<String> = page
        .items
        .iter()
        .filter_map(|i| i.str("userId").map(str::to_owned))
        .collect();
    let more = ids.len() > limit;
    ids.truncate(limit);
    Ok((ids, more))
}

/// The attributes a tenant's backend finds users by (`GET /v1/users?email=&phoneNumber=&
/// username=`), each through a blind index: an item `T#{tid}#{tag}#{hmac of the value}`,
/// sort key `U#{uid}`, per user, and the user record's attribute naming it. Values match
/// case-insensitively, trimmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Email,
    PhoneNumber,
    Username,
}

impl Lookup {
    pub const ALL: [Lookup; 3] = [Lookup::Email, Lookup::PhoneNumber, Lookup::Username];

    /// The user attribute looked up.
    pub fn field(self) -> &'static str {
        match self {
            Lookup::Email => "email",
            Lookup::PhoneNumber => "phoneNumber",
            Lookup::Username => "username",
        }
    }

    /// The user record's attribute holding the index value.
    fn attr(self) -> &'static str {
        match self {
            Lookup::Email => "emailIndex",
            Lookup::PhoneNumber => "phoneNumberIndex",
            Lookup::Username => "usernameIndex",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Lookup::Email => "EMAIL",
            Lookup::PhoneNumber => "PHONE",
            Lookup::Username => "USERNAME",
        }
    }

    fn of(field: &str) -> Option<Lookup> {
        Lookup::ALL.into_iter().find(|l| l.field() == field)
    }
}

async fn blind_index(
    services: &Services,
    tenant_id: &str,
    lookup: Lookup,
    value: &str,
) -> Result<String, Error> {
    let keys = purpose_keys(services.secrets.as_ref(), Purpose::BlindIndex).await?;
    Ok(blind_index_under(&keys.current, tenant_id, lookup, value))
}

fn blind_index_under(key: &PurposeKey, tenant_id: &str, lookup: Lookup, value: &str) -> String {
    let normalised = value.trim().to_lowercase();
    let data = match lookup {
        // The email index's input from before the other lookups, kept so its entries match.
        Lookup::Email => format!("{tenant_id}\0{normalised}"),
        other => format!("{tenant_id}\0{}\0{normalised}", other.field()),
    };
    crate::crypto::hex(mac(key, data.as_bytes()))
}

fn text(
    patch: &Map<String, Value>,
    name: &str,
    max: usize,
) -> Result<Option<Option<String>>, Error> {
    match patch.get(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if s.chars().count() <= max => {
            Ok(Some(if s.is_empty() { None } else { Some(s.clone()) }))
        }
        Some(_) => Err(Error::Invalid(format!(
            "{name} must be a string of at most {max} characters"
        ))),
    }
}

/// Applies a `UserAttributes` patch (fields present are set; `null` or `""` clears), creating
/// the user when new. Returns the attributes after the update.
pub async fn update_user(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    user_id: &str,
    patch: &Map<String, Value>,
) -> Result<UserAttributes, Error> {
    check_user_id(user_id)?;
    let mut updates: Vec<(&str, Option<String>)> = Vec::new();
    for (name, max) in [
        ("email", 320),
        ("phoneNumber", 32),
        ("username", 256),
        ("displayName", 256),
        ("locale", 35),
    ] {
        if let Some(v) = text(patch, name, max)? {
            updates.push((name, v));
        }
    }
    if let Some(Some(email)) = updates.iter().find(|(n, _)| *n == "email").map(|(_, v)| v)
        && !email.contains('@')
    {
        return Err(Error::Invalid("email must be an email address".into()));
    }
    if let Some(Some(phone)) = updates
        .iter()
        .find(|(n, _)| *n == "phoneNumber")
        .map(|(_, v)| v)
        && !(phone.starts_with('+')
            && phone.len() >= 8
            && phone[1..].bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(Error::Invalid(
            "phoneNumber must be in E.164 form, e.g. +64211234567".into(),
        ));
    }
    let custom = match patch.get("custom") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::Object(map)) => Some(Some(Value::Object(map.clone()).to_string())),
        Some(_) => return Err(Error::Invalid("custom must be an object".into())),
    };
    let mut flags: Vec<(&str, bool)> = Vec::new();
    for name in FLAGS {
        match patch.get(name) {
            None => {}
            Some(Value::Bool(b)) => flags.push((name, *b)),
            Some(_) => return Err(Error::Invalid(format!("{name} must be a boolean"))),
        }
    }

    let existing = services
        .store
        .get(&user_pk(&tenant.id, user_id), "USER")
        .await?;
    let (mut item, condition) = match existing {
        Some(item) => {
            let v = item.version;
            (item.with_version(v + 1), Condition::Version(v))
        }
        None => (
            new_user_item(services, &tenant.id, user_id)?,
            Condition::Absent,
        ),
    };
    let mut ops = Vec::new();
    if condition == Condition::Absent {
        ops.push(listed(&tenant.id, user_id));
    }
    let mut changed: Vec<&str> = Vec::new();
    for (name, value) in updates
        .iter()
        .map(|(n, v)| (*n, v.clone()))
        .chain(custom.map(|c| ("custom", c)))
    {
        changed.push(name);
        if let Some(lookup) = Lookup::of(name) {
            if let Some(old) = item
                .attrs
                .remove(lookup.attr())
                .and_then(|v| v.as_str().map(str::to_owned))
            {
                ops.push(WriteOp::Delete {
                    pk: index_pk(&tenant.id, lookup, &old),
                    sk: format!("U#{user_id}"),
                    condition: Condition::None,
                });
            }
            if let Some(v) = &value {
                let index = blind_index(services, &tenant.id, lookup, v).await?;
                let pk = index_pk(&tenant.id, lookup, &index);
                let sk = format!("U#{user_id}");
                ops.retain(|op| op.key() != (pk.as_str(), sk.as_str()));
                ops.push(WriteOp::Put {
                    item: Item::new(pk, sk).with("userId", user_id),
                    condition: Condition::None,
                });
                item.attrs
                    .insert(lookup.attr().into(), Value::String(index));
            }
        }
        match value {
            None => {
                item.attrs.remove(name);
            }
            Some(v) if SEALED.contains(&name) => {
                let sealed = seal(services, tenant, user_id, name, &v).await?;
                item.attrs.insert(name.into(), Value::String(sealed));
            }
            Some(v) => {
                item.attrs.insert(name.into(), Value::String(v));
            }
        }
    }
    for (name, value) in flags {
        changed.push(name);
        item.attrs.insert(name.into(), Value::Bool(value));
    }
    let now = services.clock.now().rfc3339()?;
    item.attrs.insert("updatedAt".into(), Value::String(now));
    ops.insert(0, WriteOp::Put { item, condition });
    let change = Change {
        action: "user.update",
        target: audit_ref(services, &tenant.id, user_id).await?,
        summary: json!({ "fields": changed }),
        ops,
    };
    services.journal.commit(&tenant.id, ctx, change).await?;
    let user = get_user(services, tenant, user_id)
        .await?
        .ok_or(Error::Internal("user vanished after update".into()))?;
    Ok(user.attributes)
}

/// Ids of the users whose email is `email` (through the blind index).
pub async fn find_by_email(
    services: &Services,
    tenant: &Tenant,
    email: &str,
) -> Result<Vec<String>, Error> {
    find_by(services, tenant, Lookup::Email, email).await
}

/// Ids of the users whose `lookup` attribute is `value` (through its blind index), at most
/// 100.
pub async fn find_by(
    services: &Services,
    tenant: &Tenant,
    lookup: Lookup,
    value: &str,
) -> Result<Vec<String>, Error> {
    // Under the current key, else (after a rotation the re-key job has not caught up with)
    // under each older generation's.
    let mut search = keyring::Search::new(services, Purpose::BlindIndex).await?;
    while let Some((key, _)) = search.next().await? {
        let index = blind_index_under(&key, &tenant.id, lookup, value);
        let page = services
            .store
            .query(Query::partition(index_pk(&tenant.id, lookup, &index)).limit(100))
            .await?;
        let ids: Vec<String> = page
            .items
            .iter()
            .filter_map(|i| i.str("userId").map(str::to_owned))
            .collect();
        if !ids.is_empty() {
            return Ok(ids);
        }
    }
    Ok(Vec::new())
}

/// The re-key job's step for one user record (`sk = USER`): each lookup index entry made
/// under an older key (or missing, for a user whose phone number or username was set before
/// those were indexed) is written under the current key, in one audited transaction with the
/// record's new index attributes. `true` when anything moved.
pub(crate) async fn rekey_indexes(
    services: &Services,
    ctx: &AuditContext,
    user: &Item,
) -> Result<bool, Error> {
    let Some((tenant_id, user_id)) = user
        .pk
        .strip_prefix("T#")
        .and_then(|rest| rest.split_once("#U#"))
    else {
        return Ok(false);
    };
    let unlisted = user.attrs.get("listed").and_then(Value::as_bool) != Some(true);
    if !unlisted
        && !Lookup::ALL
            .iter()
            .any(|l| user.attrs.contains_key(l.field()))
    {
        return Ok(false);
    }
    let Some(tenant) = crate::domain::tenants::get_tenant(services, tenant_id).await? else {
        return Ok(false);
    };
    let sk = format!("U#{user_id}");
    let mut next = user.clone();
    let mut ops = Vec::new();
    let mut moved = Vec::new();
    if unlisted {
        ops.push(listed(tenant_id, user_id));
        next.attrs.insert("listed".into(), Value::Bool(true));
        moved.push("listed");
    }
    for lookup in Lookup::ALL {
        let Some(value) = open(services, &tenant, user_id, user, lookup.field()).await? else {
            continue;
        };
        let index = blind_index(services, tenant_id, lookup, &value).await?;
        let old = user.str(lookup.attr());
        if old == Some(index.as_str()) {
            continue;
        }
        if let Some(old) = old {
            ops.push(WriteOp::Delete {
                pk: index_pk(tenant_id, lookup, old),
                sk: sk.clone(),
                condition: Condition::None,
            });
        }
        ops.push(WriteOp::Put {
            item: Item::new(index_pk(tenant_id, lookup, &index), sk.clone())
                .with("userId", user_id),
            condition: Condition::None,
        });
        next.attrs
            .insert(lookup.attr().into(), Value::String(index));
        moved.push(lookup.attr());
    }
    if ops.is_empty() {
        return Ok(false);
    }
    ops.insert(
        0,
        WriteOp::Put {
            item: next.with_version(user.version + 1),
            condition: Condition::Version(user.version),
        },
    );
    let change = Change {
        action: "user.index.rekey",
        target: audit_ref(services, tenant_id, user_id).await?,
        summary: json!({ "fields": moved }),
        ops,
    };
    match services.journal.commit(tenant_id, ctx, change).await {
        Ok(_) => Ok(true),
        // The user changed meanwhile (and so was indexed under the current key) or is gone.
        Err(crate::domain::audit::CommitError::Condition { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Deletes a user, their authenticators, devices and lookup index entries, and with
/// `with_actions` their action history too. Runs in audited batches (a store transaction holds
/// at most 100 writes); the user record itself goes in the first batch, so a user half-deleted
/// by a crash reads as deleted and a retry finishes the job.
pub async fn delete_user(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    user_id: &str,
    with_actions: bool,
) -> Result<(), Error> {
    check_user_id(user_id)?;
    let pk = user_pk(&tenant.id, user_id);
    let mut keys: Vec<(String, String)> = Vec::new();
    // Kept action history loses what identified the person: IP address, user agent, device.
    let mut scrubbed: Vec<Item> = Vec::new();
    let mut cursor = None;
    loop {
        let page = services
            .store
            .query(Query::partition(&pk).limit(1000).after(cursor))
            .await?;
        for item in page.items {
            if item.sk.starts_with("ACT#") && !with_actions {
                if ["ipAddress", "userAgent", "deviceRef"]
                    .iter()
                    .any(|f| item.attrs.contains_key(*f))
                {
                    let mut kept = item;
                    for f in ["ipAddress", "userAgent", "deviceRef"] {
                        kept.attrs.remove(f);
                    }
                    scrubbed.push(kept);
                }
                continue;
            }
            if item.sk == "USER" {
                keys.push((user_list_pk(&tenant.id), format!("U#{user_id}")));
                for lookup in Lookup::ALL {
                    if let Some(index) = item.str(lookup.attr()) {
                        keys.push((index_pk(&tenant.id, lookup, index), format!("U#{user_id}")));
                    }
                }
            }
            // The indexes that lead from a user handle or a credential (on each authenticator
            // item that holds one) to this user.
            if item.sk == "USER"
                && let Some(handle) = item
                    .str("webauthnUserId")
                    .and_then(|h| h.parse::<webauthn_rs::prelude::Uuid>().ok())
            {
                keys.push(handle_key(&tenant.id, &handle.to_string()));
            }
            if let Some(credential_id) = item.str("credentialId") {
                keys.push(credential_key(&tenant.id, credential_id));
            }
            keys.push((item.pk.clone(), item.sk.clone()));
        }
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    keys.sort_by_key(|(_, sk)| if sk == "USER" { 0 } else { 1 });
    let mut writes: Vec<WriteOp> = keys
        .iter()
        .map(|(pk, sk)| WriteOp::Delete {
            pk: pk.clone(),
            sk: sk.clone(),
            condition: Condition::None,
        })
        .collect();
    writes.extend(scrubbed.into_iter().map(|item| {
        let v = item.version;
        WriteOp::Put {
            item: item.with_version(v + 1),
            condition: Condition::None,
        }
    }));
    let total = writes.len();
    let target = audit_ref(services, &tenant.id, user_id).await?;
    for batch in writes.chunks(90) {
        let ops = batch.to_vec();
        let change = Change {
            action: "user.delete",
            target: target.clone(),
            summary: json!({ "items": batch.len(), "total": total, "actions": with_actions }),
            ops,
        };
        services.journal.commit(&tenant.id, ctx, change).await?;
    }
    Ok(())
}

/// One page of a tenant's users as the Server API's `queryUsers` answers it: those matching
/// every filter (each through its blind index), or with none every user of the tenant, in
/// user-id order, `limit` after `after`; with the last id when more follow.
pub async fn search(
    services: &Services,
    tenant: &Tenant,
    filters: Vec<(Lookup, &str)>,
    limit: usize,
    after: &str,
) -> Result<(Vec<Value>, Option<String>), Error> {
    let (page, more) = if filters.is_empty() {
        list_user_ids(
            services,
            tenant,
            limit,
            (!after.is_empty()).then_some(after),
        )
        .await?
    } else {
        matching(services, tenant, filters, limit, after).await?
    };
    let mut found = Vec::new();
    for id in &page {
        if let Some(u) = get_user(services, tenant, id).await? {
            let a = u.attributes;
            found.push(json!({
                "userId": id,
                "email": a.email,
                "emailVerified": a.email_verified,
                "phoneNumber": a.phone_number,
                "phoneNumberVerified": a.phone_number_verified,
                "username": a.username,
            }));
        }
    }
    let last = if more { page.last().cloned() } else { None };
    Ok((found, last))
}

/// The ids matching every filter, in id order, `limit` after `after`; and whether more follow.
async fn matching(
    services: &Services,
    tenant: &Tenant,
    filters: Vec<(Lookup, &str)>,
    limit: usize,
    after: &str,
) -> Result<(Vec<String>, bool), Error> {
    let mut ids: Option<std::collections::BTreeSet<String>> = None;
    for (lookup, value) in filters {
        let matched: std::collections::BTreeSet<String> = find_by(services, tenant, lookup, value)
            .await?
            .into_iter()
            .collect();
        ids = Some(match ids {
            None => matched,
            Some(so_far) => so_far.intersection(&matched).cloned().collect(),
        });
    }
    let mut rest = ids
        .unwrap_or_default()
        .into_iter()
        .filter(|id| after.is_empty() || id.as_str() > after);
    let page: Vec<String> = rest.by_ref().take(limit).collect();
    let more = rest.next().is_some();
    Ok((page, more))
}
