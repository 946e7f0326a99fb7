//! Checking a tenant's audit log: events ↔ sealed chain ↔ signed checkpoints, naming the first
//! break. [`collect`] reads the evidence from the store, [`check`] judges it without I/O, and
//! [`export_lines`] writes it out for a customer. `infra/audit/verify_export.py` does the same from
//! an export and the public key alone, without this code.
//!
//! What each break means:
//! - `missing-event`: an entry names an event the table no longer holds (deleted after commit).
//! - `altered-event`: the event's attributes no longer hash to the entry's digest.
//! - `moved-event`: the event is there under another sort key (its time changed: reordered).
//! - `inserted-event`: an event no entry covers, older than the grace period (sealing takes
//!   seconds): written around the commit path, or by someone editing the table.
//! - `broken-chain`: an entry is missing, out of order, altered or inserted in the sealed chain
//!   itself, or a checkpoint covers entries that are gone (the chain was cut short).
//! - `forged-checkpoint`: a checkpoint whose signature does not verify under the public key,
//!   that does not chain to the one before, or that names another hash than the chain's.
//! - `missing-checkpoint`: checkpoint numbers skip.
//! - `head-mismatch`: the seal head does not name the last entry.
//!
//! Attributes the format does not name (an extra field on an entry or a checkpoint) are ignored:
//! they are not signed, so they carry no weight. Truncation of the newest entries together with
//! their checkpoints can only be seen against a checkpoint kept elsewhere: exports carry them,
//! and customers should keep their last export.
use super::seal::{
    BLOCK_PREFIX, CHECKPOINT_PREFIX, Checkpoint, GENESIS, HEAD_SK, Head, SealedEntry, seal_pk,
};
use super::{event_digest, event_items};
use crate::crypto::signatures;
use crate::domain::Error;
use crate::domain::timestamps::Timestamp as _;
use crate::ports::signer::ALGORITHM;
use crate::ports::store::{Item, Query, Store};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use time::{Duration, OffsetDateTime};

/// Unsealed events younger than this are pending, not inserted.
pub const GRACE: Duration = Duration::minutes(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreakKind {
    MissingEvent,
    AlteredEvent,
    MovedEvent,
    InsertedEvent,
    BrokenChain,
    ForgedCheckpoint,
    MissingCheckpoint,
    HeadMismatch,
}

/// The first thing that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Break {
    pub kind: BreakKind,
    /// The sealed entry where it breaks, when it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub tenant_id: String,
    /// Event items in the table.
    pub events: u64,
    /// Entries of the sealed chain.
    pub sealed: u64,
    /// The last entry that a checkpoint with a valid signature, in an unbroken run of
    /// checkpoints, signs (it may lie beyond a broken entry: the signature covers the chain as
    /// sealed, not the events as they are now).
    pub signed_through: u64,
    pub checkpoints: u64,
    /// Events not sealed yet, younger than the grace period.
    pub pending: u64,
    pub broken: Option<Break>,
}

/// Everything verification looks at.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub tenant_id: String,
    pub events: Vec<Item>,
    pub entries: Vec<SealedEntry>,
    pub checkpoints: Vec<Checkpoint>,
    pub head: Option<Head>,
}

/// Reads a tenant's events, sealed chain, checkpoints and seal head.
pub async fn collect(store: &dyn Store, tenant_id: &str) -> Result<Evidence, Error> {
    let mut events = Vec::new();
    let mut cursor = None;
    loop {
        let (mut page, next) = event_items(store, tenant_id, 1000, cursor, false).await?;
        events.append(&mut page);
        cursor = next;
        if cursor.is_none() {
            break;
        }
    }
    let pk = seal_pk(tenant_id);
    let mut entries = Vec::new();
    for block in all(store, &pk, BLOCK_PREFIX).await? {
        let list: Vec<SealedEntry> = block
            .attrs
            .get("entries")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| Error::Internal("a sealed block is unreadable".into()))?;
        entries.extend(list);
    }
    let checkpoints = all(store, &pk, CHECKPOINT_PREFIX)
        .await?
        .iter()
        .map(|item| {
            Checkpoint::from_item(item)
                .ok_or_else(|| Error::Internal("a checkpoint is unreadable".into()))
        })
        .collect::<Result<_, _>>()?;
    let head = match store.get(&pk, HEAD_SK).await? {
        Some(item) => Some(
            serde_json::from_value(Value::Object(item.attrs))
                .map_err(|_| Error::Internal("the seal head is unreadable".into()))?,
        ),
        None => None,
    };
    Ok(Evidence {
        tenant_id: tenant_id.to_owned(),
        events,
        entries,
        checkpoints,
        head,
    })
}

async fn all(store: &dyn Store, pk: &str, prefix: &str) -> Result<Vec<Item>, Error> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .query(
                Query::partition(pk)
                    .prefix(prefix)
                    .limit(1000)
                    .after(cursor),
            )
            .await?;
        out.extend(page.items);
        cursor = page.cursor;
        if cursor.is_none() {
            return Ok(out);
        }
    }
}

fn event_time_ms(sk: &str) -> Option<i128> {
    sk.strip_prefix(super::EVENT_SK_PREFIX)?
        .split('#')
        .next()?
        .parse()
        .ok()
}

/// Judges `evidence` against the public key (DER SubjectPublicKeyInfo) at `now`.
pub fn check(evidence: &Evidence, public_key: &[u8], now: OffsetDateTime) -> VerifyReport {
    let mut report = VerifyReport {
        tenant_id: evidence.tenant_id.clone(),
        events: evidence.events.len() as u64,
        sealed: evidence.entries.len() as u64,
        signed_through: 0,
        checkpoints: evidence.checkpoints.len() as u64,
        pending: 0,
        broken: None,
    };
    // Breaks found, keyed by the entry they concern (u64::MAX: after every entry).
    let mut breaks: Vec<(u64, Break)> = Vec::new();
    let brk = |kind, seq: Option<u64>, reason: String| Break {
        kind,
        seq,
        checkpoint: None,
        event_id: None,
        reason,
    };

    let by_id: HashMap<&str, &Item> = evidence
        .events
        .iter()
        .filter_map(|item| Some((item.str("id")?, item)))
        .collect();
    let mut hashes = Vec::with_capacity(evidence.entries.len());
    let mut prev = GENESIS.to_owned();
    for (i, entry) in evidence.entries.iter().enumerate() {
        let seq = i as u64 + 1;
        let chain_break = if entry.seq != seq {
            Some("an entry is missing, inserted or out of order in the sealed chain")
        } else if entry.prev != prev {
            Some("the entry does not link to the one before it")
        } else if entry.compute_hash() != entry.hash {
            Some("the sealed entry was altered")
        } else {
            None
        };
        if let Some(reason) = chain_break {
            breaks.push((seq, brk(BreakKind::BrokenChain, Some(seq), reason.into())));
            break;
        }
        prev = entry.hash.clone();
        hashes.push(entry.hash.clone());
        let event = by_id.get(entry.id.as_str());
        let event_break = match event {
            None => Some((
                BreakKind::MissingEvent,
                "the event was deleted from the log",
            )),
            Some(item) if item.sk != entry.sk => Some((
                BreakKind::MovedEvent,
                "the event's time or order was changed after sealing",
            )),
            Some(item) if event_digest(&item.attrs) != entry.digest => Some((
                BreakKind::AlteredEvent,
                "the event's contents were changed after sealing",
            )),
            Some(_) => None,
        };
        if let Some((kind, reason)) = event_break {
            let mut b = brk(kind, Some(seq), reason.into());
            b.event_id = Some(entry.id.clone());
            breaks.push((seq, b));
            break;
        }
    }

    let key = signatures::public_key(public_key);
    let mut prev_hash = GENESIS.to_owned();
    let mut prev_last = 0u64;
    for (i, cp) in evidence.checkpoints.iter().enumerate() {
        let number = i as u64 + 1;
        let b = &cp.body;
        let signed = cp.body.algorithm == ALGORITHM
            && b.tenant_id == evidence.tenant_id
            && key.as_ref().is_some_and(|k| {
                STANDARD
                    .decode(&cp.signature)
                    .is_ok_and(|sig| signatures::verify(k, &b.message(), &sig))
            });
        let problem = if b.number != number {
            Some((BreakKind::MissingCheckpoint, "checkpoint numbers skip"))
        } else if !signed {
            Some((
                BreakKind::ForgedCheckpoint,
                "the checkpoint's signature does not verify under the public key",
            ))
        } else if b.previous != prev_hash || b.first_seq != prev_last + 1 {
            Some((
                BreakKind::ForgedCheckpoint,
                "the checkpoint does not follow the one before it",
            ))
        } else if b.last_seq as usize > hashes.len() && breaks.is_empty() {
            Some((
                BreakKind::BrokenChain,
                "a checkpoint signs entries that are no longer in the sealed chain",
            ))
        } else if hashes
            .get((b.last_seq as usize).wrapping_sub(1))
            .is_some_and(|h| *h != b.last_hash)
        {
            Some((
                BreakKind::ForgedCheckpoint,
                "the checkpoint signs another chain than the stored one",
            ))
        } else {
            None
        };
        if let Some((kind, reason)) = problem {
            let at = if kind == BreakKind::BrokenChain {
                hashes.len() as u64 + 1
            } else {
                b.first_seq.max(1)
            };
            let mut brk = brk(kind, Some(at), reason.into());
            brk.checkpoint = Some(number);
            breaks.push((at, brk));
            break;
        }
        report.signed_through = b.last_seq;
        prev_hash = cp.hash();
        prev_last = b.last_seq;
    }

    let sealed: std::collections::HashSet<&str> =
        evidence.entries.iter().map(|e| e.id.as_str()).collect();
    let cutoff = (now - GRACE).unix_timestamp_nanos() / 1_000_000;
    for item in &evidence.events {
        let Some(id) = item.str("id") else { continue };
        if sealed.contains(id) {
            continue;
        }
        match event_time_ms(&item.sk) {
            Some(ms) if ms >= cutoff => report.pending += 1,
            _ => {
                if !breaks.iter().any(|(at, _)| *at == u64::MAX) {
                    let mut b = brk(
                        BreakKind::InsertedEvent,
                        None,
                        "an event older than the grace period that no seal covers".into(),
                    );
                    b.event_id = Some(id.to_owned());
                    breaks.push((u64::MAX, b));
                }
            }
        }
    }

    if breaks.is_empty() {
        let (seq, hash) = evidence
            .head
            .as_ref()
            .map_or((0, GENESIS), |h| (h.seq, h.hash.as_str()));
        let last = hashes.last().map_or(GENESIS, String::as_str);
        if seq != hashes.len() as u64 || hash != last {
            breaks.push((
                u64::MAX,
                brk(
                    BreakKind::HeadMismatch,
                    None,
                    "the seal head does not name the last sealed entry".into(),
                ),
            ));
        }
    }
    report.broken = breaks.into_iter().min_by_key(|(at, _)| *at).map(|(_, b)| b);
    report
}

/// The export format, one JSON object a line: a header, then every event, sealed entry and
/// checkpoint. With the public key it is all `infra/audit/verify_export.py` needs.
pub fn export_lines(evidence: &Evidence, key_id: &str, now: OffsetDateTime) -> Vec<String> {
    let mut lines = vec![
        json!({
            "type": "export",
            "tenantId": evidence.tenant_id,
            "exportedAt": now.iso_millis(),
            "keyId": key_id,
            "algorithm": ALGORITHM,
            "graceSeconds": GRACE.whole_seconds(),
        })
        .to_string(),
    ];
    for item in &evidence.events {
        lines.push(
            json!({ "type": "event", "pk": item.pk, "sk": item.sk, "attrs": item.attrs })
                .to_string(),
        );
    }
    for entry in &evidence.entries {
        let mut v = serde_json::to_value(entry).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut v {
            map.insert("type".into(), json!("entry"));
        }
        lines.push(v.to_string());
    }
    for cp in &evidence.checkpoints {
        let mut v = serde_json::to_value(cp).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut v {
            map.insert("type".into(), json!("checkpoint"));
        }
        lines.push(v.to_string());
    }
    if let Some(head) = &evidence.head {
        lines.push(json!({ "type": "head", "seq": head.seq, "hash": head.hash }).to_string());
    }
    lines
}
