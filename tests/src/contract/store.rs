//! The Store contract.
use latchkey::ports::store::{Condition, Item, Query, Store, StoreError, WriteOp};
use serde_json::json;
use std::sync::Arc;

pub async fn round_trips_items(store: Arc<dyn Store>) {
    let mut item = Item::new("P#1", "S#1")
        .with("name", "thing")
        .with("count", 42)
        .with("ratio", 0.5)
        .with("flag", true)
        .with("nothing", serde_json::Value::Null)
        .with("list", json!(["a", 1, {"b": [true]}]))
        .with("nested", json!({"x": {"y": "z"}, "n": -7}))
        .with_ttl(1_900_000_000)
        .with_version(3);
    item.gsi1 = Some(("G#1".into(), "GS#1".into()));
    store.put(item.clone(), Condition::None).await.unwrap();
    assert_eq!(store.get("P#1", "S#1").await.unwrap(), Some(item));
    assert_eq!(store.get("P#1", "S#2").await.unwrap(), None);
    assert_eq!(store.get("P#2", "S#1").await.unwrap(), None);
}

pub async fn conditional_put_conflicts(store: Arc<dyn Store>) {
    let item = Item::new("P#c", "S").with("n", 1);
    store.put(item.clone(), Condition::Absent).await.unwrap();
    let again = store
        .put(item.clone().with("n", 2), Condition::Absent)
        .await;
    assert_eq!(
        again,
        Err(StoreError::ConditionFailed {
            pk: "P#c".into(),
            sk: "S".into()
        })
    );
    assert_eq!(
        store.get("P#c", "S").await.unwrap().unwrap().u64("n"),
        Some(1)
    );

    let stale = store
        .put(
            item.clone().with("n", 3).with_version(2),
            Condition::Version(7),
        )
        .await;
    assert!(matches!(stale, Err(StoreError::ConditionFailed { .. })));
    store
        .put(
            item.clone().with("n", 4).with_version(2),
            Condition::Version(1),
        )
        .await
        .unwrap();
    let stored = store.get("P#c", "S").await.unwrap().unwrap();
    assert_eq!((stored.version, stored.u64("n")), (2, Some(4)));

    let missing = store.put(Item::new("P#none", "S"), Condition::Exists).await;
    assert!(matches!(missing, Err(StoreError::ConditionFailed { .. })));
    assert_eq!(store.get("P#none", "S").await.unwrap(), None);
}

pub async fn refuses_bad_items(store: Arc<dyn Store>) {
    let reserved = Item::new("P", "S").with("pk", "x");
    assert!(matches!(
        store.put(reserved, Condition::None).await,
        Err(StoreError::InvalidItem(_))
    ));
    assert!(matches!(
        store.put(Item::new("", "S"), Condition::None).await,
        Err(StoreError::InvalidItem(_))
    ));
}

/// Of 8 tasks deleting the same item under `Exists`, exactly one gets it.
pub async fn delete_returning_old_is_single_use(store: Arc<dyn Store>) {
    let item = Item::new("P#race", "CH").with("state", "ceremony");
    store.put(item.clone(), Condition::Absent).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store.delete("P#race", "CH", Condition::Exists).await
        }));
    }
    let mut won = Vec::new();
    let mut lost = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(Some(old)) => won.push(old),
            Err(StoreError::ConditionFailed { .. }) => lost += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, vec![item]);
    assert_eq!(lost, 7);
    assert_eq!(store.get("P#race", "CH").await.unwrap(), None);
    // Without a condition, deleting nothing returns nothing.
    assert_eq!(
        store.delete("P#race", "CH", Condition::None).await.unwrap(),
        None
    );
}

pub async fn paginates_one_partition_by_prefix(store: Arc<dyn Store>) {
    for i in 0..25 {
        store
            .put(
                Item::new("P#page", format!("A#{i:03}")).with("i", i),
                Condition::Absent,
            )
            .await
            .unwrap();
    }
    for i in 0..5 {
        store
            .put(Item::new("P#page", format!("B#{i:03}")), Condition::Absent)
            .await
            .unwrap();
        store
            .put(Item::new("P#other", format!("A#{i:03}")), Condition::Absent)
            .await
            .unwrap();
    }
    let query = Query::partition("P#page").prefix("A#").limit(10);
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut cursor = None;
    loop {
        let page = store.query(query.clone().after(cursor)).await.unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(|i| i.u64("i").unwrap()));
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (0..25).collect::<Vec<u64>>());

    let first = store.query(query.clone().descending()).await.unwrap();
    assert_eq!(first.items.first().unwrap().sk, "A#024");
    let second = store
        .query(query.clone().descending().after(first.cursor.clone()))
        .await
        .unwrap();
    assert_eq!(second.items.first().unwrap().sk, "A#014");

    let whole = store
        .query(Query::partition("P#page").limit(100))
        .await
        .unwrap();
    assert_eq!((whole.items.len(), whole.cursor), (30, None));

    // A cursor belongs to its query.
    let page = store.query(query.clone()).await.unwrap();
    let foreign = Query::partition("P#other")
        .prefix("A#")
        .after(page.cursor.clone());
    assert_eq!(store.query(foreign).await, Err(StoreError::InvalidCursor));
    let garbage = query.clone().after(Some("not-a-cursor".into()));
    assert_eq!(store.query(garbage).await, Err(StoreError::InvalidCursor));
}

/// A transaction whose second condition fails writes nothing and names that condition.
pub async fn failed_transaction_writes_nothing_and_names_the_condition(store: Arc<dyn Store>) {
    store
        .put(Item::new("P#tx", "Y"), Condition::Absent)
        .await
        .unwrap();
    store
        .put(Item::new("P#tx", "Z"), Condition::Absent)
        .await
        .unwrap();
    let ops = vec![
        WriteOp::Put {
            item: Item::new("P#tx", "X").with("new", true),
            condition: Condition::Absent,
        },
        WriteOp::Put {
            item: Item::new("P#tx", "Y").with("new", true),
            condition: Condition::Absent,
        },
        WriteOp::Delete {
            pk: "P#tx".into(),
            sk: "Z".into(),
            condition: Condition::None,
        },
    ];
    assert_eq!(
        store.transact(ops).await,
        Err(StoreError::TransactionConditionFailed {
            index: 1,
            pk: "P#tx".into(),
            sk: "Y".into()
        })
    );
    assert_eq!(store.get("P#tx", "X").await.unwrap(), None);
    assert_eq!(
        store
            .get("P#tx", "Y")
            .await
            .unwrap()
            .unwrap()
            .attrs
            .get("new"),
        None
    );
    assert!(store.get("P#tx", "Z").await.unwrap().is_some());

    // A failing check alone stops the others too.
    let ops = vec![
        WriteOp::Delete {
            pk: "P#tx".into(),
            sk: "Z".into(),
            condition: Condition::Exists,
        },
        WriteOp::Check {
            pk: "P#tx".into(),
            sk: "Y".into(),
            condition: Condition::Version(9),
        },
    ];
    assert!(matches!(
        store.transact(ops).await,
        Err(StoreError::TransactionConditionFailed { index: 1, .. })
    ));
    assert!(store.get("P#tx", "Z").await.unwrap().is_some());
}

pub async fn transaction_applies_every_write(store: Arc<dyn Store>) {
    store
        .put(Item::new("P#ok", "old"), Condition::Absent)
        .await
        .unwrap();
    store
        .put(Item::new("P#ok", "keep"), Condition::Absent)
        .await
        .unwrap();
    let ops = vec![
        WriteOp::Put {
            item: Item::new("P#ok", "new").with("v2", 1),
            condition: Condition::Absent,
        },
        WriteOp::Delete {
            pk: "P#ok".into(),
            sk: "old".into(),
            condition: Condition::Version(1),
        },
        WriteOp::Check {
            pk: "P#ok".into(),
            sk: "keep".into(),
            condition: Condition::Exists,
        },
    ];
    store.transact(ops).await.unwrap();
    assert!(store.get("P#ok", "new").await.unwrap().is_some());
    assert_eq!(store.get("P#ok", "old").await.unwrap(), None);

    let too_many: Vec<WriteOp> = (0..101)
        .map(|i| WriteOp::Put {
            item: Item::new("P#many", format!("{i}")),
            condition: Condition::None,
        })
        .collect();
    assert!(matches!(
        store.transact(too_many).await,
        Err(StoreError::InvalidItem(_))
    ));
    let twice = vec![
        WriteOp::Put {
            item: Item::new("P#dup", "a"),
            condition: Condition::None,
        },
        WriteOp::Delete {
            pk: "P#dup".into(),
            sk: "a".into(),
            condition: Condition::None,
        },
    ];
    assert!(matches!(
        store.transact(twice).await,
        Err(StoreError::InvalidItem(_))
    ));
}

/// Counts: made when absent (with the TTL), bounded, atomic under racing writers, refused
/// past the bound like any condition (naming the operation), and all-or-nothing with the
/// rest of a transaction.
pub async fn counts_atomically_up_to_a_bound(store: Arc<dyn Store>) {
    let count = |below: i64| WriteOp::Count {
        pk: "P#n".into(),
        sk: "W#1".into(),
        attr: "hits".into(),
        below,
        ttl: 1_900_000_000,
    };
    store.transact(vec![count(3)]).await.unwrap();
    let item = store.get("P#n", "W#1").await.unwrap().unwrap();
    assert_eq!((item.u64("hits"), item.ttl), (Some(1), Some(1_900_000_000)));
    // Twenty racing counts under a bound of 12: exactly 11 more succeed, no retries needed.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store.transact(vec![count(12)]).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::TransactionConditionFailed { index: 0, .. }) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    let hits = store.get("P#n", "W#1").await.unwrap().unwrap().u64("hits");
    assert_eq!(hits, Some(1 + ok), "every success counted once");
    assert_eq!(ok, 11, "exactly up to the bound");
    // Past the bound: refused, and the other writes of its transaction with it.
    let full = store
        .transact(vec![
            WriteOp::Put {
                item: Item::new("P#n", "other").with("x", 1),
                condition: Condition::None,
            },
            count(hits.unwrap() as i64),
        ])
        .await;
    assert!(
        matches!(
            full,
            Err(StoreError::TransactionConditionFailed { index: 1, .. })
        ),
        "{full:?}"
    );
    assert_eq!(store.get("P#n", "other").await.unwrap(), None);
    assert_eq!(
        store.get("P#n", "W#1").await.unwrap().unwrap().u64("hits"),
        hits
    );
}

/// Updates: set some attributes of an existing item, keep the rest (TTL included), add one to
/// the version, only when the condition holds and the item exists; all-or-nothing with the
/// rest of a transaction, naming the operation that failed; `Absent` and reserved names are
/// refused as invalid.
pub async fn updates_existing_items_in_place(store: Arc<dyn Store>) {
    let update = |condition: Condition, set: serde_json::Value| WriteOp::Update {
        pk: "P#u".into(),
        sk: "A".into(),
        set: set.as_object().unwrap().clone(),
        condition,
    };
    // Absent: a failed condition, nothing made.
    let missing = store
        .transact(vec![update(Condition::Exists, serde_json::json!({"x": 1}))])
        .await;
    assert!(
        matches!(
            missing,
            Err(StoreError::TransactionConditionFailed { index: 0, .. })
        ),
        "{missing:?}"
    );
    assert_eq!(store.get("P#u", "A").await.unwrap(), None);
    let missing = store
        .transact(vec![update(Condition::None, serde_json::json!({"x": 1}))])
        .await;
    assert!(matches!(
        missing,
        Err(StoreError::TransactionConditionFailed { index: 0, .. })
    ));
    assert_eq!(store.get("P#u", "A").await.unwrap(), None);

    let original = Item::new("P#u", "A")
        .with("keep", "me")
        .with("x", 1)
        .with("nested", serde_json::json!({"a": [1, 2]}))
        .with_ttl(1_900_000_000);
    store.put(original, Condition::Absent).await.unwrap();
    store
        .transact(vec![update(
            Condition::Version(1),
            serde_json::json!({"x": 2, "nested": {"b": true}, "new": "y"}),
        )])
        .await
        .unwrap();
    let item = store.get("P#u", "A").await.unwrap().unwrap();
    assert_eq!(item.version, 2);
    assert_eq!(item.ttl, Some(1_900_000_000));
    assert_eq!(item.str("keep"), Some("me"));
    assert_eq!(item.u64("x"), Some(2));
    assert_eq!(item.attrs["nested"], serde_json::json!({"b": true}));
    assert_eq!(item.str("new"), Some("y"));

    // A stale version fails, and takes the other writes of its transaction with it.
    let stale = store
        .transact(vec![
            WriteOp::Put {
                item: Item::new("P#u", "other").with("x", 1),
                condition: Condition::None,
            },
            update(Condition::Version(1), serde_json::json!({"x": 3})),
        ])
        .await;
    assert!(
        matches!(
            stale,
            Err(StoreError::TransactionConditionFailed { index: 1, .. })
        ),
        "{stale:?}"
    );
    assert_eq!(store.get("P#u", "other").await.unwrap(), None);
    assert_eq!(
        store.get("P#u", "A").await.unwrap().unwrap().u64("x"),
        Some(2)
    );
    // Exists holds; the version moves on again.
    store
        .transact(vec![update(Condition::Exists, serde_json::json!({"x": 4}))])
        .await
        .unwrap();
    let item = store.get("P#u", "A").await.unwrap().unwrap();
    assert_eq!((item.version, item.u64("x")), (3, Some(4)));

    for bad in [
        update(Condition::Absent, serde_json::json!({"x": 1})),
        update(Condition::None, serde_json::json!({})),
        update(Condition::None, serde_json::json!({"v": 9})),
        update(Condition::None, serde_json::json!({"ttl": 9})),
    ] {
        let r = store.transact(vec![bad]).await;
        assert!(matches!(r, Err(StoreError::InvalidItem(_))), "{r:?}");
    }
    let item = store.get("P#u", "A").await.unwrap().unwrap();
    assert_eq!((item.version, item.ttl), (3, Some(1_900_000_000)));
}

/// `Equals`: a write whose precondition is an attribute's value, on a single put or delete, a
/// condition check, and an update in a transaction; an absent item never meets it.
pub async fn conditions_on_an_attribute_value(store: Arc<dyn Store>) {
    let is = |v: &'static str| Condition::Equals("state", v);
    // Absent: never equal.
    let r = store
        .put(Item::new("P#e", "A").with("state", "x"), is("x"))
        .await;
    assert!(
        matches!(r, Err(StoreError::ConditionFailed { .. })),
        "{r:?}"
    );
    store
        .put(
            Item::new("P#e", "A").with("state", "open").with("n", 1),
            Condition::Absent,
        )
        .await
        .unwrap();
    let r = store
        .put(Item::new("P#e", "A").with("state", "x"), is("shut"))
        .await;
    assert!(
        matches!(r, Err(StoreError::ConditionFailed { .. })),
        "{r:?}"
    );
    store
        .put(
            Item::new("P#e", "A").with("state", "open").with("n", 2),
            is("open"),
        )
        .await
        .unwrap();
    assert_eq!(
        store.get("P#e", "A").await.unwrap().unwrap().u64("n"),
        Some(2)
    );

    // In a transaction: a check and an update, each naming its index when it fails.
    let check = |v: &'static str| WriteOp::Check {
        pk: "P#e".into(),
        sk: "A".into(),
        condition: is(v),
    };
    let put_b = WriteOp::Put {
        item: Item::new("P#e", "B").with("x", 1),
        condition: Condition::None,
    };
    let r = store.transact(vec![put_b.clone(), check("shut")]).await;
    assert!(
        matches!(
            r,
            Err(StoreError::TransactionConditionFailed { index: 1, .. })
        ),
        "{r:?}"
    );
    assert_eq!(store.get("P#e", "B").await.unwrap(), None);
    store.transact(vec![put_b, check("open")]).await.unwrap();
    assert!(store.get("P#e", "B").await.unwrap().is_some());
    let close = |from: &'static str| WriteOp::Update {
        pk: "P#e".into(),
        sk: "A".into(),
        set: serde_json::json!({"state": "shut"})
            .as_object()
            .unwrap()
            .clone(),
        condition: is(from),
    };
    store.transact(vec![close("open")]).await.unwrap();
    // Exactly once: the state it needed is gone.
    let r = store.transact(vec![close("open")]).await;
    assert!(
        matches!(
            r,
            Err(StoreError::TransactionConditionFailed { index: 0, .. })
        ),
        "{r:?}"
    );
    let item = store.get("P#e", "A").await.unwrap().unwrap();
    assert_eq!((item.str("state"), item.u64("n")), (Some("shut"), Some(2)));
    // A delete under it.
    let r = store.delete("P#e", "A", is("open")).await;
    assert!(
        matches!(r, Err(StoreError::ConditionFailed { .. })),
        "{r:?}"
    );
    let old = store.delete("P#e", "A", is("shut")).await.unwrap();
    assert_eq!(old.unwrap().str("state"), Some("shut"));
}

/// A scan in pages of 7 gives every item of the store exactly once (several partitions, keys
/// that sort across partition boundaries); a bad cursor or limit is refused.
pub async fn scans_every_item_once_in_pages(store: Arc<dyn Store>) {
    let mut want = std::collections::BTreeSet::new();
    for p in 0..5 {
        for i in 0..(p * 3 + 1) {
            let (pk, sk) = (format!("SCAN#{p}"), format!("S#{i:03}"));
            store
                .put(Item::new(&pk, &sk).with("n", i), Condition::Absent)
                .await
                .unwrap();
            want.insert((pk, sk));
        }
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store.scan(cursor, 7).await.unwrap();
        assert!(page.items.len() <= 7);
        seen.extend(page.items.into_iter().map(|i| (i.pk, i.sk)));
        pages += 1;
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
        assert!(pages < 100, "the scan never ends");
    }
    let got: std::collections::BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(got.len(), seen.len(), "an item came twice");
    assert_eq!(got, want);
    assert_eq!(
        store
            .scan(Some("not a cursor".into()), 7)
            .await
            .unwrap_err(),
        StoreError::InvalidCursor
    );
    assert!(store.scan(None, 0).await.is_err());
}

/// Runs every store contract, each on a fresh store from `fresh` (an async fn returning a
/// [`crate::Fresh`]`<Arc<dyn Store>>`), with the given attributes on every test.
#[macro_export]
macro_rules! store_contract_tests {
    ($fresh:expr $(, #[$attr:meta])*) => {
        mod store_contract {
            use super::*;
            use latchkey_tests::contract::store as c;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)] $(#[$attr])*
            async fn round_trips_items() { let fresh = $fresh().await; c::round_trips_items(fresh.adapter()).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)] $(#[$attr])*
            async fn conditional_put_conflicts() { let fresh = $fresh().await; c::conditional_put_conflicts(fresh.adapter()).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)] $(#[$attr])*
            async fn refuses_bad_items() { let fresh = $fresh().await; c::refuses_bad_items(fresh.adapter()).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)] $(#[$attr])*
            async fn delete_returning_old_is_single_use() { let fresh = $fresh().await; c::delete_returning_old_is_single_use(fresh.adapter()).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)] $(#[$attr])*
            async fn paginates_one_partition_by_prefix() { let fresh = $fresh().await; c::paginates_one_partition_by_prefix(fresh.adapter()).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)] $(#[$attr])*
            async fn failed_transaction_writes_nothing_and_names_the_condition() { let fresh = $fresh().await; c::failed_transaction_writes_nothing_and_names_the_condition(fresh.adapter()).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)] $(#[$attr])*
            async fn transaction_applies_every_write() { let fresh = $fresh().await; c::transaction_applies_every_write(fresh.adapter()).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)] $(#[$attr])*
            async fn counts_atomically_up_to_a_bound() { let fresh = $fresh().await; c::counts_atomically_up_to_a_bound(fresh.adapter()).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)] $(#[$attr])*
            async fn updates_existing_items_in_place() { let fresh = $fresh().await; c::updates_existing_items_in_place(fresh.adapter()).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)] $(#[$attr])*
            async fn conditions_on_an_attribute_value() { let fresh = $fresh().await; c::conditions_on_an_attribute_value(fresh.adapter()).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)] $(#[$attr])*
            async fn scans_every_item_once_in_pages() { let fresh = $fresh().await; c::scans_every_item_once_in_pages(fresh.adapter()).await }
        }
    };
}
