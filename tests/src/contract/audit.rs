//! The audit log's contract, on any store with its change source: commits never wait on each
//! other, the sealer chains and signs what the store's feed (or DynamoDB stream) delivered, and
//! verification names every kind of tampering.
use crate::streams::StreamReader;
use async_trait::async_trait;
use latchkey::adapters::dynamodb::item_from_image;
use latchkey::adapters::local_signer::LocalSigner;
use latchkey::domain::audit::seal::{SealPolicy, Sealer, block_sk, checkpoint_sk, seal_pk};
use latchkey::domain::audit::verify::{self, BreakKind, VerifyReport};
use latchkey::domain::audit::{
    AuditContext, Change, CommitError, EVENT_SK_PREFIX, Journal, event_items, event_sk,
};
use latchkey::ports::clock::{Clock as _, SystemClock};
use latchkey::ports::random::OsRandom;
use latchkey::ports::store::{Condition, Item, Store, WriteOp};
use latchkey::ports::{Feed, Signer as _};
use serde_json::{Value, json};
use std::sync::Arc;
use time::Duration;

/// What the store reports as inserted since the last call: the sealer's input.
#[async_trait]
pub trait Inserted: Send + Sync {
    async fn take(&self) -> Vec<Item>;
}

/// The embedded store's feed, read to the end and acknowledged.
pub struct FeedSource(pub Arc<dyn Feed>);

#[async_trait]
impl Inserted for FeedSource {
    async fn take(&self) -> Vec<Item> {
        let mut out = Vec::new();
        loop {
            let records = self.0.read(1000).await.unwrap();
            let Some(last) = records.last().map(|r| r.position) else {
                return out;
            };
            out.extend(records.into_iter().map(|r| r.item));
            self.0.ack(last).await.unwrap();
        }
    }
}

/// A DynamoDB table's stream, read over the wire; inserts of event items, as the sealer
/// function's event source mapping filters them.
pub struct StreamSource(pub StreamReader);

#[async_trait]
impl Inserted for StreamSource {
    async fn take(&self) -> Vec<Item> {
        let records = tokio::task::block_in_place(|| self.0.records());
        let event = self.0.lambda_event(records);
        event["Records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["eventName"] == "INSERT")
            .filter(|r| {
                r["dynamodb"]["Keys"]["sk"]["S"]
                    .as_str()
                    .is_some_and(|sk| sk.starts_with(EVENT_SK_PREFIX))
            })
            .map(|r| item_from_image(&r["dynamodb"]["NewImage"]).unwrap())
            .collect()
    }
}

/// A store and where its inserts can be read back.
#[derive(Clone)]
pub struct Rig {
    pub store: Arc<dyn Store>,
    pub source: Arc<dyn Inserted>,
}

fn journal(store: Arc<dyn Store>) -> Journal {
    Journal::new(
        store,
        Arc::new(SystemClock),
        Arc::new(OsRandom),
        Arc::new(latchkey::adapters::local_secrets::LocalSecrets::with_root(
            b"audit",
            Arc::new(OsRandom),
        )),
    )
}

fn sealer(store: Arc<dyn Store>) -> Sealer {
    Sealer::new(
        store,
        Arc::new(SystemClock),
        Arc::new(OsRandom),
        Arc::new(LocalSigner::ephemeral(&OsRandom).unwrap()),
        SealPolicy {
            checkpoint_every: 8,
            checkpoint_after: Duration::minutes(5),
        },
    )
}

fn ctx(n: usize) -> AuditContext {
    AuditContext {
        actor: format!("apikey:k{n}"),
        request_id: format!("req-{n}"),
        source_ip: Some("192.0.2.1".into()),
    }
}

fn thing(tenant: &str, task: usize, i: usize) -> Change {
    Change {
        action: "thing.create",
        target: format!("thing:{task}-{i}"),
        summary: json!({ "fields": ["name"], "task": task, "deep": { "n": i, "none": null } }),
        ops: vec![WriteOp::Put {
            item: Item::new(format!("T#{tenant}#THING"), format!("{task}-{i}")),
            condition: Condition::Absent,
        }],
    }
}

async fn seal_all(rig: &Rig, sealer: &Sealer, tenant: &str) {
    let items = rig.source.take().await;
    sealer.seal_items(items).await.unwrap();
    sealer.flush(tenant, true).await.unwrap();
}

async fn report(store: &dyn Store, sealer: &Sealer, tenant: &str) -> VerifyReport {
    let evidence = verify::collect(store, tenant).await.unwrap();
    let key = sealer.signer().public_key().await.unwrap();
    verify::check(&evidence, &key, SystemClock.now())
}

/// `tasks` × `each` concurrent mutations on one tenant all commit, each change beside its
/// event; sealed from the store's own feed, they verify as one signed chain.
pub async fn concurrent_commits_seal_into_one_verified_chain(
    rig: Rig,
    tenant: &str,
    tasks: usize,
    each: usize,
) {
    let j = journal(Arc::clone(&rig.store));
    let mut handles = Vec::new();
    for t in 0..tasks {
        let j = j.clone();
        let tenant = tenant.to_owned();
        handles.push(tokio::spawn(async move {
            for i in 0..each {
                j.commit(&tenant, &ctx(t), thing(&tenant, t, i))
                    .await
                    .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let n = tasks * each;
    let (events, cursor) = j.events(tenant, 1000, None, false).await.unwrap();
    assert_eq!((events.len(), cursor), (n, None));
    // Every event names the one caller address by its keyed hash, never the address itself.
    let source = j.source_ref(tenant, "192.0.2.1").await.unwrap();
    assert!(source.starts_with("ip:") && !source.contains("192.0.2.1"));
    assert!(
        events
            .iter()
            .all(|e| e.source_ref.as_deref() == Some(&*source))
    );
    assert_ne!(
        j.source_ref("another-tenant", "192.0.2.1").await.unwrap(),
        source
    );
    assert_ne!(j.source_ref(tenant, "192.0.2.2").await.unwrap(), source);
    // Pages of 7 cover the same events in the same order.
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let (page, next) = j.events(tenant, 7, cursor, false).await.unwrap();
        paged.extend(page.into_iter().map(|e| e.id));
        cursor = next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(
        paged,
        events.iter().map(|e| e.id.clone()).collect::<Vec<_>>()
    );
    for t in 0..tasks {
        for i in 0..each {
            let (pk, sk) = (format!("T#{tenant}#THING"), format!("{t}-{i}"));
            assert!(rig.store.get(&pk, &sk).await.unwrap().is_some());
        }
    }

    let s = sealer(Arc::clone(&rig.store));
    let before = report(&*rig.store, &s, tenant).await;
    assert_eq!(
        (before.pending, before.sealed, before.broken),
        (n as u64, 0, None)
    );
    seal_all(&rig, &s, tenant).await;
    let after = report(&*rig.store, &s, tenant).await;
    assert_eq!(after.broken, None, "{after:?}");
    assert_eq!(
        (
            after.events,
            after.sealed,
            after.signed_through,
            after.pending
        ),
        (n as u64, n as u64, n as u64, 0)
    );
    assert!(after.checkpoints >= (n / 8) as u64, "{after:?}");
}

/// Each kind of tampering after sealing is named by verification, at the right place.
pub async fn tampering_is_named(rig: Rig, tenant: &str) {
    let store = Arc::clone(&rig.store);
    let j = journal(Arc::clone(&store));
    for i in 0..20 {
        j.commit(tenant, &ctx(0), thing(tenant, 0, i))
            .await
            .unwrap();
    }
    let s = sealer(Arc::clone(&store));
    seal_all(&rig, &s, tenant).await;
    assert_eq!(report(&*store, &s, tenant).await.broken, None);
    let (items, _) = event_items(&*store, tenant, 1000, None, false)
        .await
        .unwrap();
    let nth = |seq: usize| items[seq - 1].clone();
    let named = |r: VerifyReport| r.broken.map(|b| (b.kind, b.seq));

    // An event altered.
    let mut edited = nth(13);
    edited
        .attrs
        .insert("actor".into(), json!("apikey:someone-else"));
    store.put(edited, Condition::None).await.unwrap();
    assert_eq!(
        named(report(&*store, &s, tenant).await),
        Some((BreakKind::AlteredEvent, Some(13)))
    );
    store.put(nth(13), Condition::None).await.unwrap();
    assert_eq!(report(&*store, &s, tenant).await.broken, None);

    // An event deleted.
    let gone = nth(7);
    store
        .delete(&gone.pk, &gone.sk, Condition::Exists)
        .await
        .unwrap();
    assert_eq!(
        named(report(&*store, &s, tenant).await),
        Some((BreakKind::MissingEvent, Some(7)))
    );
    store.put(gone, Condition::Absent).await.unwrap();

    // An event moved later: its time, and so its order, changed.
    let moved = nth(5);
    store
        .delete(&moved.pk, &moved.sk, Condition::Exists)
        .await
        .unwrap();
    let id = moved.str("id").unwrap().to_owned();
    let later = Item {
        sk: event_sk(
            (SystemClock.now() + Duration::minutes(1)).unix_timestamp_nanos() / 1_000_000,
            &id,
        ),
        ..moved.clone()
    };
    store.put(later.clone(), Condition::Absent).await.unwrap();
    assert_eq!(
        named(report(&*store, &s, tenant).await),
        Some((BreakKind::MovedEvent, Some(5)))
    );
    store
        .delete(&later.pk, &later.sk, Condition::Exists)
        .await
        .unwrap();
    store.put(moved, Condition::Absent).await.unwrap();
    assert_eq!(report(&*store, &s, tenant).await.broken, None);

    // An event inserted around the commit path, dated an hour ago.
    let forged_id = "f".repeat(32);
    let mut forged = nth(3);
    forged.attrs.insert("id".into(), json!(forged_id));
    forged.pk = latchkey::domain::audit::event_pk(tenant, &forged_id);
    forged.sk = event_sk(
        (SystemClock.now() - Duration::hours(1)).unix_timestamp_nanos() / 1_000_000,
        &forged_id,
    );
    store.put(forged.clone(), Condition::Absent).await.unwrap();
    let r = report(&*store, &s, tenant).await;
    assert_eq!(named(r.clone()), Some((BreakKind::InsertedEvent, None)));
    assert_eq!(
        r.broken.unwrap().event_id.as_deref(),
        Some(forged_id.as_str())
    );
    store
        .delete(&forged.pk, &forged.sk, Condition::Exists)
        .await
        .unwrap();
    assert_eq!(report(&*store, &s, tenant).await.broken, None);

    // Two sealed entries swapped (the chain reordered).
    let pk = seal_pk(tenant);
    let block = store.get(&pk, &block_sk(1)).await.unwrap().unwrap();
    let mut swapped = block.clone();
    let entries = swapped
        .attrs
        .get_mut("entries")
        .unwrap()
        .as_array_mut()
        .unwrap();
    entries.swap(9, 10);
    store.put(swapped, Condition::None).await.unwrap();
    assert_eq!(
        named(report(&*store, &s, tenant).await),
        Some((BreakKind::BrokenChain, Some(10)))
    );
    store.put(block, Condition::None).await.unwrap();

    // A checkpoint altered, then one re-signed with another key.
    let cp = store.get(&pk, &checkpoint_sk(2)).await.unwrap().unwrap();
    let mut altered = cp.clone();
    altered.attrs.insert("lastSeq".into(), json!(15));
    store.put(altered, Condition::None).await.unwrap();
    let r = report(&*store, &s, tenant).await;
    assert_eq!(
        r.broken.as_ref().map(|b| (b.kind, b.checkpoint)),
        Some((BreakKind::ForgedCheckpoint, Some(2))),
        "{r:?}"
    );
    let other = LocalSigner::ephemeral(&OsRandom).unwrap();
    let mut body: latchkey::domain::audit::seal::Checkpoint =
        serde_json::from_value(Value::Object(cp.attrs.clone())).unwrap();
    let sig = other.sign(&body.body.message()).await.unwrap();
    use base64::Engine as _;
    body.signature = base64::engine::general_purpose::STANDARD.encode(sig);
    let mut forged_cp = cp.clone();
    forged_cp.attrs = match serde_json::to_value(&body).unwrap() {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    store.put(forged_cp, Condition::None).await.unwrap();
    assert_eq!(
        report(&*store, &s, tenant)
            .await
            .broken
            .map(|b| (b.kind, b.checkpoint)),
        Some((BreakKind::ForgedCheckpoint, Some(2)))
    );
    store.put(cp, Condition::None).await.unwrap();
    assert_eq!(report(&*store, &s, tenant).await.broken, None);
}

/// An event deleted before the sealer ran is still sealed (from what the feed delivered), so
/// its absence is named.
pub async fn an_event_deleted_before_sealing_is_still_missed(rig: Rig, tenant: &str) {
    let store = Arc::clone(&rig.store);
    let j = journal(Arc::clone(&store));
    for i in 0..3 {
        j.commit(tenant, &ctx(0), thing(tenant, 0, i))
            .await
            .unwrap();
    }
    let (items, _) = event_items(&*store, tenant, 1000, None, false)
        .await
        .unwrap();
    store
        .delete(&items[1].pk, &items[1].sk, Condition::Exists)
        .await
        .unwrap();
    let s = sealer(Arc::clone(&store));
    seal_all(&rig, &s, tenant).await;
    let r = report(&*store, &s, tenant).await;
    assert_eq!(
        r.broken.map(|b| (b.kind, b.seq)),
        Some((BreakKind::MissingEvent, Some(2)))
    );
}

/// A change whose own condition fails writes neither the change nor an event.
pub async fn failed_change_leaves_no_event(rig: Rig, tenant: &str) {
    let store = Arc::clone(&rig.store);
    let j = journal(Arc::clone(&store));
    j.commit(tenant, &ctx(0), thing(tenant, 0, 0))
        .await
        .unwrap();
    let mut dup = thing(tenant, 0, 0);
    dup.ops.push(WriteOp::Put {
        item: Item::new(format!("T#{tenant}#THING"), "extra"),
        condition: Condition::None,
    });
    match j.commit(tenant, &ctx(0), dup).await {
        Err(CommitError::Condition { index: 0, .. }) => {}
        other => panic!("expected condition 0 to fail, got {other:?}"),
    }
    let (events, _) = j.events(tenant, 100, None, false).await.unwrap();
    assert_eq!(events.len(), 1);
    assert!(
        store
            .get(&format!("T#{tenant}#THING"), "extra")
            .await
            .unwrap()
            .is_none()
    );
}

/// Runs the audit log's contract on fresh rigs from `fresh` (an async fn returning a
/// [`crate::Fresh`]`<Rig>`), with the given attributes on every test.
#[macro_export]
macro_rules! audit_contract_tests {
    ($fresh:expr $(, #[$attr:meta])*) => {
        mod audit_contract {
            use super::*;
            use latchkey_tests::contract::audit as c;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)] $(#[$attr])*
            async fn two_hundred_mutations_from_four_tasks_seal_and_verify() {
                let fresh = $fresh().await;
                c::concurrent_commits_seal_into_one_verified_chain(fresh.adapter(), "t-chain", 4, 50).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)] $(#[$attr])*
            async fn tampering_is_named() {
                let fresh = $fresh().await;
                c::tampering_is_named(fresh.adapter(), "t-tamper").await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)] $(#[$attr])*
            async fn an_event_deleted_before_sealing_is_still_missed() {
                let fresh = $fresh().await;
                c::an_event_deleted_before_sealing_is_still_missed(fresh.adapter(), "t-gone").await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)] $(#[$attr])*
            async fn failed_change_leaves_no_event() {
                let fresh = $fresh().await;
                c::failed_change_leaves_no_event(fresh.adapter(), "t-fail").await
            }
        }
    };
}
