//! The per-request costs of the foundation, on the embedded adapters:
//! `cargo bench -p latchkey --bench core`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use latchkey::adapters::local_keys::LocalKeyVault;
use latchkey::adapters::sqlite::SqliteStore;
use latchkey::crypto::envelope::{Envelope, FieldContext};
use latchkey::domain::audit::{AuditContext, Change, Journal};
use latchkey::ports::Store;
use latchkey::ports::clock::SystemClock;
use latchkey::ports::random::OsRandom;
use latchkey::ports::store::{Condition, Item, WriteOp};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let vault = Arc::new(LocalKeyVault::from_key(&[5u8; 32], Arc::new(OsRandom)).unwrap());
    let envelope = Envelope::new(
        vault,
        Arc::new(OsRandom),
        Arc::new(SystemClock),
        time::Duration::minutes(5),
        100,
    );
    let key = rt.block_on(envelope.new_tenant_key("t-bench")).unwrap();
    let at = FieldContext {
        tenant_id: "t-bench",
        item: "U#user-1",
        field: "email",
    };
    let sealed = rt
        .block_on(envelope.seal(&key, at, b"jane.doe@example.com"))
        .unwrap();
    c.bench_function("field seal (warm data key)", |b| {
        b.iter(|| {
            rt.block_on(envelope.seal(&key, at, b"jane.doe@example.com"))
                .unwrap()
        })
    });
    c.bench_function("field open (warm data key)", |b| {
        b.iter(|| rt.block_on(envelope.open(&key, at, &sealed)).unwrap())
    });

    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).unwrap());
    rt.block_on(store.put(Item::new("P#bench", "S").with("x", 1), Condition::None))
        .unwrap();
    c.bench_function("sqlite get", |b| {
        b.iter(|| rt.block_on(store.get("P#bench", "S")).unwrap())
    });
    let n = AtomicU64::new(0);
    c.bench_function("sqlite conditional put", |b| {
        b.iter(|| {
            let i = n.fetch_add(1, Ordering::Relaxed);
            rt.block_on(store.put(Item::new("P#bench", format!("I#{i}")), Condition::Absent))
                .unwrap()
        })
    });
    let journal = Journal::new(
        Arc::clone(&store),
        Arc::new(SystemClock),
        Arc::new(OsRandom),
        Arc::new(latchkey::adapters::local_secrets::LocalSecrets::with_root(
            b"audit",
            Arc::new(OsRandom),
        )),
    );
    let ctx = AuditContext::system("bench", "r");
    c.bench_function("audited change (sqlite, one put + event + head)", |b| {
        b.iter(|| {
            let i = n.fetch_add(1, Ordering::Relaxed);
            let change = Change {
                action: "thing.create",
                target: format!("thing:{i}"),
                summary: serde_json::json!({}),
                ops: vec![WriteOp::Put {
                    item: Item::new("P#bench", format!("A#{i}")),
                    condition: Condition::Absent,
                }],
            };
            rt.block_on(journal.commit("t-bench", &ctx, change))
                .unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
