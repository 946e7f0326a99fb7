//! The audit journal's contract, on any store.
use latchkey::domain::audit::{AuditContext, Change, CommitError, Journal};
use latchkey::ports::clock::SystemClock;
use latchkey::ports::random::OsRandom;
use latchkey::ports::store::{Condition, Item, Store, WriteOp};
use serde_json::json;
use std::sync::Arc;

fn journal(store: Arc<dyn Store>) -> Journal {
    Journal::new(store, Arc::new(SystemClock), Arc::new(OsRandom))
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
        summary: json!({ "fields": ["name"], "task": task }),
        ops: vec![WriteOp::Put {
            item: Item::new(format!("T#{tenant}#THING"), format!("{task}-{i}")),
            condition: Condition::Absent,
        }],
    }
}

/// `tasks` × `each` concurrent mutations on one tenant give a chain that verifies, with every
/// change written beside its event.
pub async fn concurrent_commits_form_one_verified_chain(
    store: Arc<dyn Store>,
    tenant: &str,
    tasks: usize,
    each: usize,
) {
    let j = journal(Arc::clone(&store));
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
    let report = j.verify(tenant).await.unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(report.events as usize, tasks * each);
    assert_eq!(report.head_seq as usize, tasks * each);

    let (events, _) = j.events(tenant, 1000, None, false).await.unwrap();
    assert_eq!(events.len(), tasks * each);
    assert!(
        events
            .iter()
            .all(|e| e.source_ip.as_deref() == Some("192.0.2.1"))
    );
    for t in 0..tasks {
        for i in 0..each {
            assert!(
                store
                    .get(&format!("T#{tenant}#THING"), &format!("{t}-{i}"))
                    .await
                    .unwrap()
                    .is_some()
            );
        }
    }
}

/// Editing one stored event by hand makes the verifier name it; so does removing one.
pub async fn tampering_is_named(store: Arc<dyn Store>, tenant: &str) {
    let j = journal(Arc::clone(&store));
    for i in 0..20 {
        j.commit(tenant, &ctx(0), thing(tenant, 0, i))
            .await
            .unwrap();
    }
    assert_eq!(j.verify(tenant).await.unwrap().broken, None);

    let pk = format!("T#{tenant}#LOG");
    let sk = format!("E#{:020}", 13);
    let original = store.get(&pk, &sk).await.unwrap().unwrap();
    let mut edited = original.clone();
    edited
        .attrs
        .insert("actor".into(), json!("apikey:someone-else"));
    store.put(edited, Condition::None).await.unwrap();
    let report = j.verify(tenant).await.unwrap();
    let broken = report.broken.expect("an edited event must be found");
    assert_eq!(broken.seq, 13);
    assert_eq!(broken.reason, "event contents do not match its hash");

    // Restored, then removed outright.
    store.put(original, Condition::None).await.unwrap();
    assert_eq!(j.verify(tenant).await.unwrap().broken, None);
    store
        .delete(&pk, &format!("E#{:020}", 7), Condition::Exists)
        .await
        .unwrap();
    assert_eq!(j.verify(tenant).await.unwrap().broken.unwrap().seq, 7);
}

/// A change whose own condition fails writes neither the change nor an event.
pub async fn failed_change_leaves_no_event(store: Arc<dyn Store>, tenant: &str) {
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
    let report = j.verify(tenant).await.unwrap();
    assert_eq!((report.events, report.broken), (1, None));
    assert!(
        store
            .get(&format!("T#{tenant}#THING"), "extra")
            .await
            .unwrap()
            .is_none()
    );
}

/// Runs the audit journal's contract on fresh stores from `fresh` (an async fn returning a
/// [`crate::Fresh`]`<Arc<dyn Store>>`), with the given attributes on every test.
#[macro_export]
macro_rules! audit_contract_tests {
    ($fresh:expr $(, #[$attr:meta])*) => {
        mod audit_contract {
            use super::*;
            use latchkey_tests::contract::audit as c;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)] $(#[$attr])*
            async fn two_hundred_mutations_from_four_tasks_verify() {
                let fresh = $fresh().await;
                c::concurrent_commits_form_one_verified_chain(fresh.adapter(), "t-chain", 4, 50).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)] $(#[$attr])*
            async fn tampering_is_named() {
                let fresh = $fresh().await;
                c::tampering_is_named(fresh.adapter(), "t-tamper").await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)] $(#[$attr])*
            async fn failed_change_leaves_no_event() {
                let fresh = $fresh().await;
                c::failed_change_leaves_no_event(fresh.adapter(), "t-fail").await
            }
        }
    };
}
