//! The re-key job: after a rotation of the root secret, keep the previous generation in the
//! keyring ([`crate::domain::keyring`]), re-seal the keyring under the current root, and
//! rewrite under the current key the keyed hashes that can be recomputed (the users' lookup indexes);
//! report the ones only their next use can re-key. `latchkey-admin secrets rekey`, and hourly
//! on AWS (the backup function's `{"task":"rekey"}`).
use crate::crypto::envelope::seal_with;
use crate::crypto::keys::{ROOT_SECRET, generation_id};
use crate::domain::audit::{AuditContext, Change, CommitError, PLATFORM_JOURNAL};
use crate::domain::keyring::{Generation, KEYRING_PK, KEYRING_SK, at, open, seal_key};
use crate::domain::timestamps::Timestamp as _;
use crate::domain::{Error, Services};
use crate::ports::random::RandomExt as _;
use crate::ports::store::{Condition, Item, WriteOp};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What one run of the re-key job did and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rekeyed {
    /// The current root's generation.
    pub current: String,
    /// The generation this run added to the keyring, if any.
    pub captured: Option<String>,
    /// Older generations the keyring holds after the run.
    pub kept: usize,
    /// Users whose lookup index entries (email, phone number, username) were rewritten under
    /// the current key, or written for the first time.
    pub users_reindexed: usize,
    /// Secret keys made before keys were listed per tenant, added to their tenant's list.
    pub keys_listed: usize,
    /// Records still under an older (or an unrecorded) generation that only their next use
    /// can re-key, by kind: `secret_key`, `operator_token`, `recovery_code`.
    pub awaiting_use: BTreeMap<&'static str, usize>,
}

/// Runs the re-key job once. Safe to run at any time and again.
pub async fn rekey(services: &Services, ctx: &AuditContext) -> Result<Rekeyed, Error> {
    let root = services.secrets.get(ROOT_SECRET).await?;
    let current = generation_id(&root.current);
    let item = services.store.get(KEYRING_PK, KEYRING_SK).await?;
    let mut kept = match &item {
        Some(item) => open(item, &root)?,
        None => Vec::new(),
    };
    let mut captured = None;
    if let Some(previous) = &root.previous {
        let id = generation_id(previous);
        if id != current && !kept.iter().any(|g| g.id == id) {
            kept.insert(
                0,
                Generation {
                    id: id.clone(),
                    root: previous.clone(),
                },
            );
            captured = Some(id);
        }
    }
    let before = kept.len();
    kept.retain(|g| g.id != current);
    let sealed_under = item.as_ref().and_then(|i| i.str("sealedUnder"));
    if captured.is_some() || before != kept.len() || sealed_under != Some(current.as_str()) {
        let key = seal_key(&root.current);
        let entries: Vec<Value> = kept
            .iter()
            .map(|g| {
                json!({
                    "id": g.id,
                    "sealed": seal_with(&key, &services.random.bytes::<12>(), at(&g.id), &g.root),
                })
            })
            .collect();
        let now = services.clock.now().rfc3339()?;
        let (condition, version) = match &item {
            Some(i) => (Condition::Version(i.version), i.version + 1),
            None => (Condition::Absent, 0),
        };
        let next = Item::new(KEYRING_PK, KEYRING_SK)
            .with("generations", Value::Array(entries))
            .with("sealedUnder", current.clone())
            .with("updatedAt", now)
            .with_version(version);
        let change = Change {
            action: "keyring.update",
            target: "keyring".into(),
            summary: json!({
                "current": current,
                "captured": captured,
                "kept": kept.iter().map(|g| g.id.clone()).collect::<Vec<_>>(),
            }),
            ops: vec![WriteOp::Put {
                item: next,
                condition,
            }],
        };
        services
            .journal
            .commit(PLATFORM_JOURNAL, ctx, change)
            .await
            .map_err(|e| match e {
                CommitError::Condition { .. } => {
                    Error::Conflict("the keyring changed; run the re-key job again")
                }
                other => other.into(),
            })?;
    }
    services.keyring.clear();
    let mut report = Rekeyed {
        current: current.clone(),
        captured,
        kept: kept.len(),
        ..Rekeyed::default()
    };
    let mut cursor = None;
    loop {
        let page = services.store.scan(cursor, 500).await?;
        for item in &page.items {
            let kind = match item.sk.as_str() {
                "USER" => {
                    if crate::domain::users::rekey_indexes(services, ctx, item).await? {
                        report.users_reindexed += 1;
                    }
                    continue;
                }
                "KEY" if item.pk.starts_with("KEY#") => {
                    if crate::domain::tenants::list_key_if_missing(services, ctx, item).await? {
                        report.keys_listed += 1;
                    }
                    "secret_key"
                }
                "OPERATOR" => "operator_token",
                sk if sk.starts_with("RC#") => "recovery_code",
                _ => continue,
            };
            if item.attrs.get("revokedAt").is_some_and(|v| !v.is_null()) {
                continue;
            }
            if item.str("gen") != Some(current.as_str()) {
                *report.awaiting_use.entry(kind).or_default() += 1;
            }
        }
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    Ok(report)
}
