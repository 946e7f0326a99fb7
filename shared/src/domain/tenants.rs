//! Tenants and their secret API keys (the parts the foundation needs: creating them; the rest of
//! the lifecycle lives with the Server and Management APIs).
//!
//! A secret key reads `lk_{key id}_{secret}`. The key id makes lookup one read of
//! `KEY#{key id}`; the store holds only HMAC-SHA256(API-key pepper, whole secret), never the
//! secret, and the secret is shown once, at creation.
use crate::crypto::envelope::WrappedKey;
use crate::crypto::keys::{Purpose, purpose_keys};
use crate::crypto::{hex, unhex};
use crate::domain::Error;
use crate::domain::Services;
use crate::domain::audit::{AuditContext, Change, CommitError};
use crate::domain::keyring;
use crate::domain::rules::ActionConfig;
use crate::domain::timestamps::Timestamp as _;
use crate::ports::random::RandomExt as _;
use crate::ports::store::{Condition, Item, WriteOp};
use serde_json::json;
use std::collections::BTreeMap;

use crate::ids::KEY_ID_LEN;
pub use crate::ids::{KEY_PREFIX, key_id_of, valid_tenant_id};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TenantSettings {
    pub name: String,
    /// The WebAuthn relying-party id (a registrable domain, or `localhost`).
    pub rp_id: String,
    /// Origins allowed to run ceremonies; `http://localhost:*` allows any localhost port.
    pub allowed_origins: Vec<String>,
    /// Per action code; codes without one get [`ActionConfig::default`] (challenge).
    pub actions: BTreeMap<String, ActionConfig>,
    /// Verification methods users may use; empty means [`DEFAULT_METHODS`].
    pub allowed_methods: Vec<String>,
}

/// Checks one allowed origin as a browser would send it in `Origin`: `https://host[:port]`
/// exactly as the URL standard serialises it (lower-case host, no default port, no path, query,
/// user or trailing slash); `http://` only for `localhost` (`http://localhost`,
/// `http://localhost:PORT`, or `http://localhost:*` for any port). `*`, `null`,
/// `javascript:…` and look-alikes such as `http://localhost.evil.example` are refused.
pub fn validate_origin(origin: &str) -> Result<(), &'static str> {
    if matches!(origin, "http://localhost" | "http://localhost:*") {
        return Ok(());
    }
    if let Some(port) = origin.strip_prefix("http://localhost:") {
        return match port.parse::<u16>() {
            Ok(p) if p > 0 && p.to_string() == port => Ok(()),
            _ => Err("has no valid port"),
        };
    }
    if !origin.starts_with("https://") {
        return Err("must be https:// (http:// only for localhost)");
    }
    let url = url::Url::parse(origin).map_err(|_| "is not a URL")?;
    if url
        .host_str()
        .is_none_or(|h| h.is_empty() || h.contains('*'))
    {
        return Err("has no host");
    }
    if url.origin().ascii_serialization() != origin {
        return Err(
            "is not an origin as browsers send it: scheme, lower-case host and port \
                    only (no default port, path, query, user or trailing slash)",
        );
    }
    Ok(())
}

/// Checks every allowed origin ([`validate_origin`]); none is fine (a tenant using only the
/// Server API). The error names the origin by its position, not its text (configuration errors
/// never echo values).
pub fn validate_origins(origins: &[String]) -> Result<(), String> {
    if origins.len() > MAX_ORIGINS {
        return Err(format!("at most {MAX_ORIGINS} allowed origins"));
    }
    for (i, o) in origins.iter().enumerate() {
        validate_origin(o).map_err(|why| format!("allowed origin {} {why}", i + 1))?;
    }
    Ok(())
}

/// Most origins one tenant may allow: each is an index item written with the tenant, in one
/// transaction (DynamoDB takes 100 operations).
pub const MAX_ORIGINS: usize = 25;

/// The origin index: one item per (origin, tenant), so that a CORS preflight, which carries no
/// credential, can ask whether any tenant of the deployment allows its `Origin`.
pub fn origin_pk(origin: &str) -> String {
    format!("ORIGIN#{origin}")
}

fn origin_index_ops(tenant_id: &str, origins: &[String]) -> Vec<WriteOp> {
    origins
        .iter()
        .map(|origin| WriteOp::Put {
            item: Item::new(origin_pk(origin), tenant_pk(tenant_id)),
            condition: Condition::None,
        })
        .collect()
}

/// Whether some tenant allows `origin` ([`origin_allowed`](crate::http::extract::origin_allowed)
/// semantics: an `http://localhost:PORT` origin is also allowed by `http://localhost:*`). One
/// query, two for a localhost origin with a port.
pub async fn origin_known(services: &Services, origin: &str) -> Result<bool, Error> {
    use crate::ports::store::Query;
    if validate_origin(origin).is_err() || origin == "http://localhost:*" {
        return Ok(false);
    }
    let mut candidates = vec![origin.to_owned()];
    if origin.starts_with("http://localhost:") {
        candidates.push("http://localhost:*".to_owned());
    }
    for candidate in candidates {
        let page = services
            .store
            .query(Query::partition(origin_pk(&candidate)).limit(1))
            .await?;
        if !page.items.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod origin_tests {
    use super::*;

    #[test]
    fn origins_are_https_origins_or_localhost() {
        for ok in [
            "https://example.com",
            "https://app.example.com:8443",
            "https://xn--bcher-kva.example",
            "https://192.0.2.1",
            "http://localhost",
            "http://localhost:3000",
            "http://localhost:*",
        ] {
            assert_eq!(validate_origin(ok), Ok(()), "{ok}");
        }
        for bad in [
            "*",
            "null",
            "",
            "javascript:alert(1)",
            "http://example.com",
            "http://localhost.evil.example",
            "http://localhost:0",
            "http://localhost:99999",
            "http://localhost:*1",
            "https://example.com/",
            "https://example.com/path",
            "https://example.com:443",
            "https://Example.com",
            "https://user@example.com",
            "https://example.com?q=1",
            "https://*.example.com",
            "https://",
            "ftp://example.com",
            "example.com",
        ] {
            assert!(validate_origin(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(validate_origins(&[]), Ok(()));
        let err = validate_origins(&["https://a.example".into(), "*".into()]).unwrap_err();
        assert_eq!(
            err,
            "allowed origin 2 must be https:// (http:// only for localhost)"
        );
    }
}

/// The methods Latchkey offers when a tenant has not narrowed them.
pub const DEFAULT_METHODS: [&str; 3] = ["PASSKEY", "AUTHENTICATOR_APP", "EMAIL_OTP"];

impl TenantSettings {
    pub fn action(&self, code: &str) -> ActionConfig {
        self.actions.get(code).cloned().unwrap_or_default()
    }

    pub fn methods(&self) -> Vec<String> {
        if self.allowed_methods.is_empty() {
            DEFAULT_METHODS.iter().map(|m| (*m).to_owned()).collect()
        } else {
            self.allowed_methods.clone()
        }
    }
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub settings: TenantSettings,
    pub data_key: WrappedKey,
}

pub fn tenant_pk(tenant_id: &str) -> String {
    format!("T#{tenant_id}")
}

pub fn key_pk(key_id: &str) -> String {
    format!("KEY#{key_id}")
}

/// A tenant record, from the cache while fresh, else from the store.
pub(crate) async fn cached_record(
    services: &Services,
    pk: &str,
    sk: &str,
) -> Result<Option<Item>, Error> {
    let now = services.clock.now().unix_timestamp();
    if let Some(item) = services.records.fresh(pk, sk, now) {
        return Ok(Some(item));
    }
    let item = services.store.get(pk, sk).await?;
    if let Some(item) = &item {
        services.records.keep(item, now);
    }
    Ok(item)
}

/// The tenant, as read at most [`RECORD_CACHE_SECONDS`](crate::domain::services::RECORD_CACHE_SECONDS) ago.
pub async fn get_tenant(services: &Services, tenant_id: &str) -> Result<Option<Tenant>, Error> {
    match cached_record(services, &tenant_pk(tenant_id), "TENANT").await? {
        // A deleted tenant leaves a tombstone (its id is never reused): no tenant.
        Some(item) if item.attrs.contains_key("deletedAt") => Ok(None),
        Some(item) => tenant_from_item(tenant_id, &item).map(Some),
        None => Ok(None),
    }
}

/// The tenant a tenant record describes.
fn tenant_from_item(tenant_id: &str, item: &Item) -> Result<Tenant, Error> {
    let data_key = WrappedKey::decode(
        tenant_id,
        item.str("dataKey").unwrap_or_default(),
        item.str("dataKeyKek"),
    )?;
    let allowed_origins = item
        .attrs
        .get("allowedOrigins")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let actions = item
        .attrs
        .get("actions")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| Error::Internal(format!("tenant actions: {e}")))?
        .unwrap_or_default();
    let allowed_methods = item
        .attrs
        .get("allowedMethods")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok(Tenant {
        id: tenant_id.to_owned(),
        settings: TenantSettings {
            name: item.str("name").unwrap_or_default().to_owned(),
            rp_id: item.str("rpId").unwrap_or_default().to_owned(),
            allowed_origins,
            actions,
            allowed_methods,
        },
        data_key,
    })
}

/// Creates a tenant with a fresh data key. `extra` operations (a marker, say) commit with it.
pub async fn create_tenant(
    services: &Services,
    ctx: &AuditContext,
    tenant_id: &str,
    settings: TenantSettings,
    extra: Vec<WriteOp>,
) -> Result<Tenant, Error> {
    if !valid_tenant_id(tenant_id) {
        return Err(Error::Invalid(
            "tenant id must be 3-64 characters of A-Z, a-z, 0-9, '-' and '_', not starting with '_'".into(),
        ));
    }
    validate_origins(&settings.allowed_origins).map_err(Error::Invalid)?;
    for config in settings.actions.values() {
        config.validate().map_err(Error::Invalid)?;
    }
    let data_key = services.envelope.new_tenant_key(tenant_id).await?;
    let now = services.clock.now().rfc3339()?;
    let item = Item::new(tenant_pk(tenant_id), "TENANT")
        .with("name", settings.name.clone())
        .with("rpId", settings.rp_id.clone())
        .with("allowedOrigins", settings.allowed_origins.clone())
        .with("allowedMethods", settings.allowed_methods.clone())
        .with(
            "actions",
            serde_json::to_value(&settings.actions).map_err(|e| Error::Internal(e.to_string()))?,
        )
        .with("dataKey", data_key.encoded())
        .with("dataKeyKek", data_key.kek.clone())
        .with("createdAt", now);
    let mut ops = vec![WriteOp::Put {
        item,
        condition: Condition::Absent,
    }];
    ops.extend(origin_index_ops(tenant_id, &settings.allowed_origins));
    ops.extend(extra);
    let change = Change {
        action: "tenant.create",
        target: format!("tenant:{tenant_id}"),
        summary: json!({ "rpId": settings.rp_id, "origins": settings.allowed_origins.len() }),
        ops,
    };
    services.records.forget(&tenant_pk(tenant_id), "TENANT");
    match services.journal.commit(tenant_id, ctx, change).await {
        Ok(_) => Ok(Tenant {
            id: tenant_id.to_owned(),
            settings,
            data_key,
        }),
        Err(CommitError::Condition { index: 0, .. }) => Err(Error::Conflict("tenant exists")),
        Err(e) => Err(e.into()),
    }
}

/// The console tenant's marker (`PLATFORM#CONSOLE` / `CONSOLE`, its `tenantId`): the tenant
/// whose users are the management plane's accounts (`domain::admin::accounts`).
pub const CONSOLE_PK: &str = "PLATFORM#CONSOLE";

/// The console tenant has no secret key, member or management key: a Server API key there
/// could track and update the console's own actions (the management plane's sign-in).
pub async fn refuse_console(services: &Services, tenant_id: &str) -> Result<(), Error> {
    let console = services.store.get(CONSOLE_PK, "CONSOLE").await?;
    if console.as_ref().and_then(|i| i.str("tenantId")) == Some(tenant_id) {
        return Err(Error::Refused(
            "the console tenant takes no secret key, member or management key".into(),
        ));
    }
    Ok(())
}

/// Creates a secret key for `tenant_id` and returns it; it is not recoverable afterwards.
/// `chosen` fixes the secret (it must have the shape `lk_{16 hex}_{22+ chars}`), for scripts.
pub async fn create_api_key(
    services: &Services,
    ctx: &AuditContext,
    tenant_id: &str,
    chosen: Option<&str>,
) -> Result<(String, String), Error> {
    refuse_console(services, tenant_id).await?;
    let secret = match chosen {
        Some(s) => s.to_owned(),
        None => format!(
            "{KEY_PREFIX}{}_{}",
            services.random.hex_id(KEY_ID_LEN / 2),
            services.random.token(32)
        ),
    };
    let (key_id, key_ops) = new_key_ops(services, tenant_id, &secret).await?;
    let mut ops = vec![WriteOp::Check {
        pk: tenant_pk(tenant_id),
        sk: "TENANT".into(),
        condition: Condition::Exists,
    }];
    ops.extend(key_ops);
    let change = Change {
        action: "api_key.create",
        target: format!("api_key:{key_id}"),
        summary: json!({}),
        ops,
    };
    match services.journal.commit(tenant_id, ctx, change).await {
        Ok(_) => Ok((key_id, secret)),
        Err(CommitError::Condition { index: 0, .. }) => Err(Error::NotFound("tenant")),
        Err(CommitError::Condition { .. }) => Err(Error::Conflict("api key exists")),
        Err(e) => Err(e.into()),
    }
}

/// A tenant's list of its secret keys: one entry per key, for listing (the key records are
/// keyed by key id alone, for the lookup every request makes).
pub fn key_list_pk(tenant_id: &str) -> String {
    format!("T#{tenant_id}#KEYS")
}

/// The writes of a new secret key: its record (a keyed hash, never the secret) and its entry
/// in the tenant's key list, both only if absent.
async fn new_key_ops(
    services: &Services,
    tenant_id: &str,
    secret: &str,
) -> Result<(String, Vec<WriteOp>), Error> {
    let key_id = key_id_of(secret)
        .ok_or_else(|| Error::Invalid("secret key must look like lk_<16 hex>_<secret>".into()))?
        .to_owned();
    let pepper = purpose_keys(services.secrets.as_ref(), Purpose::ApiKeyPepper).await?;
    let hash = hex(pepper.mac(secret.as_bytes()));
    let now = services.clock.now().rfc3339()?;
    let item = Item::new(key_pk(&key_id), "KEY")
        .with("tenantId", tenant_id)
        .with("hash", hash)
        .with("gen", keyring::current_generation(services).await?)
        .with("createdAt", now.clone())
        .with("listed", true);
    let listed = Item::new(key_list_pk(tenant_id), key_pk(&key_id))
        .with("keyId", key_id.clone())
        .with("createdAt", now);
    Ok((
        key_id,
        vec![
            WriteOp::Put {
                item,
                condition: Condition::Absent,
            },
            WriteOp::Put {
                item: listed,
                condition: Condition::Absent,
            },
        ],
    ))
}

/// One secret key as its tenant sees it: never the secret nor its hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyInfo {
    pub key_id: String,
    /// How the secret begins (`lk_<key id>_`), to tell keys apart.
    pub prefix: String,
    pub created_at: String,
    /// When a rotation's overlap ends (the key stops working then).
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    /// `active`, `expiring` (rotated, still in its overlap), `expired` or `revoked`.
    pub state: &'static str,
}

/// Whether the key record's rotation overlap has ended at `now` (Unix seconds).
fn key_expired(item: &Item, now: i64) -> bool {
    item.attrs
        .get("expiresEpoch")
        .and_then(|v| v.as_i64())
        .is_some_and(|at| at <= now)
}

/// The tenant's secret keys, newest first.
pub async fn list_api_keys(services: &Services, tenant_id: &str) -> Result<Vec<ApiKeyInfo>, Error> {
    use crate::ports::store::Query;
    let now = services.clock.now().unix_timestamp();
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = services
            .store
            .query(
                Query::partition(key_list_pk(tenant_id))
                    .limit(1000)
                    .after(cursor),
            )
            .await?;
        for entry in &page.items {
            let Some(key_id) = entry.str("keyId") else {
                continue;
            };
            let Some(item) = services.store.get(&key_pk(key_id), "KEY").await? else {
                continue;
            };
            if item.str("tenantId") != Some(tenant_id) {
                continue;
            }
            let text = |name: &str| item.str(name).map(str::to_owned);
            let revoked_at = text("revokedAt");
            let expires_at = text("expiresAt");
            let state = if revoked_at.is_some() {
                "revoked"
            } else if key_expired(&item, now) {
                "expired"
            } else if expires_at.is_some() {
                "expiring"
            } else {
                "active"
            };
            out.push(ApiKeyInfo {
                key_id: key_id.to_owned(),
                prefix: format!("{KEY_PREFIX}{key_id}_"),
                created_at: text("createdAt").unwrap_or_default(),
                expires_at,
                revoked_at,
                state,
            });
        }
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    out.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then(a.key_id.cmp(&b.key_id))
    });
    Ok(out)
}

/// The longest overlap a rotation may give the key it replaces.
pub const MAX_ROTATION_OVERLAP: time::Duration = time::Duration::days(7);

/// Rotates a secret key: a new key for the same tenant, and the old one working only until
/// `overlap` has passed (so the backend can switch over), in one audited transaction. Returns
/// the new key's id and secret (shown once).
pub async fn rotate_api_key(
    services: &Services,
    ctx: &AuditContext,
    key_id: &str,
    overlap: time::Duration,
) -> Result<(String, String), Error> {
    if overlap.is_negative() || overlap > MAX_ROTATION_OVERLAP {
        return Err(Error::Invalid(
            "the overlap must be from 0 to 7 days".into(),
        ));
    }
    let item = services
        .store
        .get(&key_pk(key_id), "KEY")
        .await?
        .ok_or(Error::NotFound("api key"))?;
    let now = services.clock.now();
    if item.attrs.get("revokedAt").is_some_and(|v| !v.is_null())
        || key_expired(&item, now.unix_timestamp())
    {
        return Err(Error::Conflict("the key is revoked or expired"));
    }
    if item.attrs.contains_key("expiresAt") {
        return Err(Error::Conflict("the key was rotated already"));
    }
    let tenant_id = item.str("tenantId").unwrap_or_default().to_owned();
    let secret = format!(
        "{KEY_PREFIX}{}_{}",
        services.random.hex_id(KEY_ID_LEN / 2),
        services.random.token(32)
    );
    let (new_id, key_ops) = new_key_ops(services, &tenant_id, &secret).await?;
    let ends = now + overlap;
    let version = item.version;
    let expiring = item
        .with("expiresAt", ends.rfc3339()?)
        .with("expiresEpoch", ends.unix_timestamp())
        .with("rotatedTo", new_id.clone())
        .with_version(version + 1);
    let mut ops = vec![WriteOp::Put {
        item: expiring,
        condition: Condition::Version(version),
    }];
    ops.extend(key_ops);
    let change = Change {
        action: "api_key.rotate",
        target: format!("api_key:{key_id}"),
        summary: json!({ "newKeyId": new_id, "overlapSeconds": overlap.whole_seconds() }),
        ops,
    };
    match services.journal.commit(&tenant_id, ctx, change).await {
        Ok(_) => Ok((new_id, secret)),
        Err(CommitError::Condition { .. }) => Err(Error::Conflict("the key changed meanwhile")),
        Err(e) => Err(e.into()),
    }
}

/// The re-key job's step for a key record made before keys were listed per tenant: its entry
/// in the tenant's key list, and `listed` on the record (so later runs read nothing more), in
/// one audited transaction. `true` when it was missing.
pub(crate) async fn list_key_if_missing(
    services: &Services,
    ctx: &AuditContext,
    item: &Item,
) -> Result<bool, Error> {
    if item.attrs.get("listed").and_then(|v| v.as_bool()) == Some(true) {
        return Ok(false);
    }
    let (Some(key_id), Some(tenant_id)) = (item.pk.strip_prefix("KEY#"), item.str("tenantId"))
    else {
        return Ok(false);
    };
    let entry = Item::new(key_list_pk(tenant_id), item.pk.clone())
        .with("keyId", key_id)
        .with("createdAt", item.str("createdAt").unwrap_or_default());
    let marked = item
        .clone()
        .with("listed", true)
        .with_version(item.version + 1);
    let change = Change {
        action: "api_key.listed",
        target: format!("api_key:{key_id}"),
        summary: json!({}),
        ops: vec![
            WriteOp::Put {
                item: marked,
                condition: Condition::Version(item.version),
            },
            WriteOp::Put {
                item: entry,
                condition: Condition::None,
            },
        ],
    };
    match services.journal.commit(tenant_id, ctx, change).await {
        Ok(_) => Ok(true),
        // The key changed meanwhile (a rotation, a re-hash); the next run lists it.
        Err(CommitError::Condition { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// What the local gateway prints on start.
#[derive(Debug, Clone)]
pub struct DevTenant {
    pub tenant_id: String,
    /// The secret key, only when it was made on this start.
    pub new_secret_key: Option<String>,
}

const DEV_MARKER_PK: &str = "DEV";

/// Makes sure the development tenant exists, creating it (and a secret key) on first start.
/// `fixed_id` and `fixed_secret` pin them, for scripts.
pub async fn ensure_dev_tenant(
    services: &Services,
    settings: TenantSettings,
    fixed_id: Option<&str>,
    fixed_secret: Option<&str>,
) -> Result<DevTenant, Error> {
    let ctx = AuditContext::system("local-bootstrap", services.random.hex_id(8));
    let marker = services.store.get(DEV_MARKER_PK, "TENANT").await?;
    let tenant_id = match (fixed_id, marker.as_ref().and_then(|m| m.str("tenantId"))) {
        (Some(id), _) => id.to_owned(),
        (None, Some(id)) => id.to_owned(),
        (None, None) => format!("dev-{}", services.random.hex_id(6)),
    };
    let mut created = false;
    if let Some(existing) = get_tenant(services, &tenant_id).await? {
        index_missing_origins(services, &ctx, &existing).await?;
    } else {
        let marker = Item::new(DEV_MARKER_PK, "TENANT").with("tenantId", tenant_id.clone());
        create_tenant(
            services,
            &ctx,
            &tenant_id,
            settings,
            vec![WriteOp::Put {
                item: marker,
                condition: Condition::None,
            }],
        )
        .await?;
        created = true;
    }
    let new_secret_key = match fixed_secret {
        Some(secret) => {
            let key_id = key_id_of(secret).ok_or_else(|| {
                Error::Invalid("LATCHKEY_DEV_SECRET_KEY must look like lk_<16 hex>_<secret>".into())
            })?;
            match services.store.get(&key_pk(key_id), "KEY").await? {
                Some(existing) if existing.str("tenantId") == Some(tenant_id.as_str()) => None,
                Some(_) => return Err(Error::Conflict("that key id belongs to another tenant")),
                None => Some(
                    create_api_key(services, &ctx, &tenant_id, Some(secret))
                        .await?
                        .1,
                ),
            }
        }
        None if created => Some(create_api_key(services, &ctx, &tenant_id, None).await?.1),
        None => None,
    };
    Ok(DevTenant {
        tenant_id,
        new_secret_key,
    })
}

/// Writes the origin-index items a tenant created before the index lacks (a store made by an
/// earlier version), with their audit event; nothing when all are there.
async fn index_missing_origins(
    services: &Services,
    ctx: &AuditContext,
    tenant: &Tenant,
) -> Result<(), Error> {
    let mut missing = Vec::new();
    for origin in &tenant.settings.allowed_origins {
        if validate_origin(origin).is_ok()
            && services
                .store
                .get(&origin_pk(origin), &tenant_pk(&tenant.id))
                .await?
                .is_none()
        {
            missing.push(origin.clone());
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let change = Change {
        action: "tenant.origins_indexed",
        target: format!("tenant:{}", tenant.id),
        summary: json!({ "origins": missing.len() }),
        ops: origin_index_ops(&tenant.id, &missing),
    };
    services.journal.commit(&tenant.id, ctx, change).await?;
    Ok(())
}

/// Who is calling the Server API: a live secret key of one tenant.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: Tenant,
    pub key_id: String,
}

impl Principal {
    pub fn audit(&self, request_id: &str, source_ip: Option<String>) -> AuditContext {
        AuditContext {
            actor: format!("apikey:{}", self.key_id),
            request_id: request_id.to_owned(),
            source_ip,
        }
    }
}

/// Checks a secret key: one read by its key id, then the keyed hash compared in constant time
/// under the current pepper and, during a rotation, the previous one. Every failure is the same
/// `Unauthorized`, so a caller learns nothing about which part was wrong. The key record is
/// read on every request, never cached: a key revoked by any process (`latchkey-admin`,
/// another function instance) is refused by the next request everywhere.
pub async fn authenticate(services: &Services, secret: &str) -> Result<Principal, Error> {
    let key_id = key_id_of(secret).ok_or(Error::Unauthorized)?;
    let item = services
        .store
        .get(&key_pk(key_id), "KEY")
        .await?
        .ok_or(Error::Unauthorized)?;
    if item.attrs.get("revokedAt").is_some_and(|v| !v.is_null())
        || key_expired(&item, services.clock.now().unix_timestamp())
    {
        return Err(Error::Unauthorized);
    }
    let stored = item
        .str("hash")
        .and_then(unhex)
        .ok_or(Error::Unauthorized)?;
    // HMAC's own constant-time check, under the current pepper, the previous one, then the
    // keyring's older generations.
    let Some(under) =
        keyring::verify(services, Purpose::ApiKeyPepper, secret.as_bytes(), &stored).await?
    else {
        return Err(Error::Unauthorized);
    };
    let tenant_id = item.str("tenantId").ok_or(Error::Unauthorized)?.to_owned();
    if under == keyring::Under::Older {
        rehash_key(services, &item, key_id, secret).await;
    }
    let tenant_id = tenant_id.as_str();
    let tenant = get_tenant(services, tenant_id)
        .await?
        .ok_or(Error::Unauthorized)?;
    Ok(Principal {
        tenant,
        key_id: key_id.to_owned(),
    })
}

/// A secret key that verified under an older root generation is hashed again under the
/// current one (the re-key job cannot: only the key's holder knows it), in one audited write
/// conditional on the record's version. A failure leaves the old hash, which still verifies,
/// and is only logged: the request it came with goes on.
async fn rehash_key(services: &Services, item: &Item, key_id: &str, secret: &str) {
    let rehashed = async {
        let pepper = purpose_keys(services.secrets.as_ref(), Purpose::ApiKeyPepper).await?;
        let next = item
            .clone()
            .with("hash", hex(pepper.mac(secret.as_bytes())))
            .with("gen", keyring::current_generation(services).await?)
            .with_version(item.version + 1);
        let tenant_id = item.str("tenantId").unwrap_or_default().to_owned();
        let change = Change {
            action: "api_key.rekey",
            target: format!("api_key:{key_id}"),
            summary: json!({ "fields": ["hash"] }),
            ops: vec![WriteOp::Put {
                item: next,
                condition: Condition::Version(item.version),
            }],
        };
        let ctx = AuditContext::system("rekey", format!("rekey-{key_id}"));
        services.journal.commit(&tenant_id, &ctx, change).await?;
        Ok::<(), Error>(())
    }
    .await;
    if let Err(e) = rehashed {
        tracing::warn!(key_id, error = %e, "secret key not re-hashed under the current root");
    }
}

/// Revokes a secret key. It stops working at once for this process; a function instance that
/// checked it in the last [`RECORD_CACHE_SECONDS`](crate::domain::services::RECORD_CACHE_SECONDS) accepts it until its cached copy goes stale.
pub async fn revoke_api_key(
    services: &Services,
    ctx: &AuditContext,
    key_id: &str,
) -> Result<(), Error> {
    let item = services
        .store
        .get(&key_pk(key_id), "KEY")
        .await?
        .ok_or(Error::NotFound("api key"))?;
    let tenant_id = item.str("tenantId").unwrap_or_default().to_owned();
    let now = services.clock.now().rfc3339()?;
    let version = item.version;
    let revoked = item.with("revokedAt", now).with_version(version + 1);
    let change = Change {
        action: "api_key.revoke",
        target: format!("api_key:{key_id}"),
        summary: json!({}),
        ops: vec![WriteOp::Put {
            item: revoked,
            condition: Condition::Version(version),
        }],
    };
    services.journal.commit(&tenant_id, ctx, change).await?;
    Ok(())
}

/// A person at the customer to reach about their tenant: the only personal data Latchkey holds
/// about its customers. Stored sealed with the tenant's data key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminContact {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub company: String,
}

/// Adds an admin contact to a tenant.
pub async fn add_admin_contact(
    services: &Services,
    ctx: &AuditContext,
    tenant_id: &str,
    contact: AdminContact,
) -> Result<(), Error> {
    if !contact.email.contains('@') || contact.email.len() > 320 {
        return Err(Error::Invalid(
            "contact email must be an email address".into(),
        ));
    }
    let tenant = get_tenant(services, tenant_id)
        .await?
        .ok_or(Error::NotFound("tenant"))?;
    let mut contacts = admin_contacts(services, &tenant).await?;
    contacts.push(contact);
    let item = services
        .store
        .get(&tenant_pk(tenant_id), "TENANT")
        .await?
        .ok_or(Error::NotFound("tenant"))?;
    let plain = serde_json::to_vec(&contacts).map_err(|e| Error::Internal(e.to_string()))?;
    let sealed = services
        .envelope
        .seal(&tenant.data_key, contacts_field(tenant_id), &plain)
        .await?;
    let version = item.version;
    services.records.forget(&tenant_pk(tenant_id), "TENANT");
    let change = Change {
        action: "tenant.contact.add",
        target: format!("tenant:{tenant_id}"),
        summary: json!({ "contacts": contacts.len() }),
        ops: vec![WriteOp::Put {
            item: item.with("contacts", sealed).with_version(version + 1),
            condition: Condition::Version(version),
        }],
    };
    services.journal.commit(tenant_id, ctx, change).await?;
    Ok(())
}

fn contacts_field(tenant_id: &str) -> crate::crypto::FieldContext<'_> {
    crate::crypto::FieldContext {
        tenant_id,
        item: "TENANT",
        field: "contacts",
    }
}

pub async fn admin_contacts(
    services: &Services,
    tenant: &Tenant,
) -> Result<Vec<AdminContact>, Error> {
    let Some(item) = services.store.get(&tenant_pk(&tenant.id), "TENANT").await? else {
        return Ok(Vec::new());
    };
    let Some(sealed) = item.str("contacts") else {
        return Ok(Vec::new());
    };
    let plain = services
        .envelope
        .open(&tenant.data_key, contacts_field(&tenant.id), sealed)
        .await?;
    serde_json::from_slice(&plain).map_err(|e| Error::Internal(format!("contacts: {e}")))
}

/// A change to a tenant's settings: each field given replaces the current one; each action
/// code maps to its new configuration, or to `None` to delete it (the code then gets the
/// default, challenge).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsChange {
    pub name: Option<String>,
    pub rp_id: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub allowed_methods: Option<Vec<String>>,
    pub actions: BTreeMap<String, Option<ActionConfig>>,
}

/// The history of a tenant's settings: one item per version after the first (the first is
/// the tenant's creation), holding the settings as that version left them.
pub fn settings_history_pk(tenant_id: &str) -> String {
    format!("T#{tenant_id}#SETTINGS")
}

/// Applies `change` to the tenant's settings as one new version: the tenant record (which the
/// rules engine reads on the next track), a history item with the version's settings, the
/// origin index, and an audit event naming the fields that changed (names only: no values),
/// in one transaction under the record's version. Returns the new version number.
pub async fn update_settings(
    services: &Services,
    ctx: &AuditContext,
    tenant_id: &str,
    change: SettingsChange,
) -> Result<u64, Error> {
    let pk = tenant_pk(tenant_id);
    let Some(item) = services.store.get(&pk, "TENANT").await? else {
        return Err(Error::NotFound("tenant"));
    };
    let current = tenant_from_item(tenant_id, &item)?;
    let mut next = current.settings.clone();
    let mut fields: Vec<String> = Vec::new();
    if let Some(name) = change.name
        && name != next.name
    {
        if name.trim().is_empty() || name.chars().count() > 200 {
            return Err(Error::Invalid("name must be 1 to 200 characters".into()));
        }
        next.name = name;
        fields.push("name".into());
    }
    if let Some(rp_id) = change.rp_id
        && rp_id != next.rp_id
    {
        if rp_id.is_empty() || rp_id.contains(['/', ':', ' ']) {
            return Err(Error::Invalid(
                "rpId must be a domain name (no scheme, port or path)".into(),
            ));
        }
        next.rp_id = rp_id;
        fields.push("rpId".into());
    }
    if let Some(origins) = change.allowed_origins
        && origins != next.allowed_origins
    {
        validate_origins(&origins).map_err(Error::Invalid)?;
        next.allowed_origins = origins;
        fields.push("allowedOrigins".into());
    }
    if let Some(methods) = change.allowed_methods
        && methods != next.allowed_methods
    {
        next.allowed_methods = methods;
        fields.push("allowedMethods".into());
    }
    for (code, config) in change.actions {
        if code.is_empty() || code.len() > 64 || code.contains(['#', '/']) {
            return Err(Error::Invalid(format!(
                "action code {code:?} must be 1-64 characters without '#' or '/'"
            )));
        }
        let before = next.actions.get(&code).cloned();
        match config {
            Some(config) => {
                config.validate().map_err(Error::Invalid)?;
                if before.as_ref() != Some(&config) {
                    next.actions.insert(code.clone(), config);
                    fields.push(format!("actions.{code}"));
                }
            }
            None => {
                if next.actions.remove(&code).is_some() {
                    fields.push(format!("actions.{code}"));
                }
            }
        }
    }
    let version = item
        .attrs
        .get("settingsVersion")
        .and_then(|v| v.as_u64())
        .unwrap_or(1);
    if fields.is_empty() {
        return Ok(version);
    }
    let next_version = version + 1;
    let now = services.clock.now().rfc3339()?;
    let actions =
        serde_json::to_value(&next.actions).map_err(|e| Error::Internal(e.to_string()))?;
    let record = item
        .clone()
        .with("name", next.name.clone())
        .with("rpId", next.rp_id.clone())
        .with("allowedOrigins", next.allowed_origins.clone())
        .with("allowedMethods", next.allowed_methods.clone())
        .with("actions", actions.clone())
        .with("settingsVersion", next_version)
        .with("updatedAt", now.clone())
        .with_version(item.version + 1);
    let history = Item::new(
        settings_history_pk(tenant_id),
        format!("V#{next_version:010}"),
    )
    .with("version", next_version)
    .with("name", next.name.clone())
    .with("rpId", next.rp_id.clone())
    .with("allowedOrigins", next.allowed_origins.clone())
    .with("allowedMethods", next.allowed_methods.clone())
    .with("actions", actions)
    .with("fields", fields.clone())
    .with("actor", ctx.actor.clone())
    .with("changedAt", now);
    let mut ops = vec![
        WriteOp::Put {
            item: record,
            condition: Condition::Version(item.version),
        },
        WriteOp::Put {
            item: history,
            condition: Condition::Absent,
        },
    ];
    for gone in current
        .settings
        .allowed_origins
        .iter()
        .filter(|o| !next.allowed_origins.contains(o))
    {
        ops.push(WriteOp::Delete {
            pk: origin_pk(gone),
            sk: tenant_pk(tenant_id),
            condition: Condition::None,
        });
    }
    let added: Vec<String> = next
        .allowed_origins
        .iter()
        .filter(|o| !current.settings.allowed_origins.contains(o))
        .cloned()
        .collect();
    ops.extend(origin_index_ops(tenant_id, &added));
    let change = Change {
        action: "tenant.settings.update",
        target: format!("tenant:{tenant_id}"),
        summary: json!({ "version": next_version, "fields": fields }),
        ops,
    };
    services.records.forget(&pk, "TENANT");
    match services.journal.commit(tenant_id, ctx, change).await {
        Ok(_) => Ok(next_version),
        Err(CommitError::Condition { .. }) => Err(Error::Conflict("tenant settings changed")),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_cannot_take_latchkeys_own_journal_names() {
        assert!(valid_tenant_id("acme_corp-1"));
        assert!(!valid_tenant_id("_platform"));
        assert!(!valid_tenant_id("_x1"));
        assert!(!valid_tenant_id("ab"));
        assert!(!valid_tenant_id("a b"));
    }
}
