//! `infra/audit/verify_export.py`, the verifier customers run on an export with nothing of
//! Latchkey, against Rust's own [`verify::check`]: the same report on an intact log (with an
//! event of every awkward JSON the canonical form must agree on), the same break for each kind
//! of tampering done in the store, and unusable input refused. Needs a python3 with the
//! `cryptography` package, named by `LATCHKEY_TEST_PYTHON`: ignored by default, `.ci/run` runs
//! them.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use latchkey::adapters::local_signer::LocalSigner;
use latchkey::crypto::signatures::public_key_pem;
use latchkey::domain::audit::seal::{Checkpoint, HEAD_SK, block_sk, checkpoint_sk, seal_pk};
use latchkey::domain::audit::verify::{self, Evidence};
use latchkey::domain::audit::{event_pk, event_sk};
use latchkey::domain::timestamps::Timestamp as _;
use latchkey::ports::Signer as _;
use latchkey::ports::random::OsRandom;
use latchkey::ports::store::{Condition, Item};
use latchkey_tests::{TENANT, World};
use serde_json::{Map, Value, json};
use std::path::Path;
use std::process::Command;
use time::Duration;

/// A P-384 public key: a key, but not one checkpoints can be signed with.
const P384_PEM: &str = "-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEoZU/Urr4cto2jAvhthQgWtRba+iiJKGF
+MRBEv7yPW/9JW9b7WQbjUgMMi0/aSkv7YOR+GdRvyNNKHEK0070O0WbtxM7Icei
GVkhKRdMvNgJQd6nqV6A7C92XX7ox50F
-----END PUBLIC KEY-----
";

/// What the script answered.
struct Verdict {
    code: i32,
    /// Its stdout as JSON (null when it printed none).
    report: Value,
    stderr: String,
}

/// Runs the script on this export and public key (PEM), from files in a folder of its own.
fn run_script(export: &str, pem: &str, args: &[&str]) -> Verdict {
    let python = std::env::var("LATCHKEY_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "LATCHKEY_TEST_PYTHON must name a python3 with the cryptography package \
             (.ci/run uses .venv-moto/bin/python)"
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let (export_file, key_file) = (dir.path().join("export.ndjson"), dir.path().join("key.pem"));
    std::fs::write(&export_file, export).unwrap();
    std::fs::write(&key_file, pem).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/audit/verify_export.py");
    let out = Command::new(&python)
        .arg(script)
        .arg(&export_file)
        .arg(&key_file)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {python}: {e}"));
    Verdict {
        code: out.status.code().unwrap_or(-1),
        report: serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn evidence(w: &World) -> Evidence {
    verify::collect(&*w.services.store, TENANT).await.unwrap()
}

async fn pem(w: &World) -> String {
    public_key_pem(&w.sealer.signer().public_key().await.unwrap()).unwrap()
}

/// The tenant's log as `latchkey-admin audit export` prints it now.
async fn export(w: &World) -> String {
    let now = w.services.clock.now();
    let lines = verify::export_lines(&evidence(w).await, w.sealer.signer().key_id(), now);
    lines.join("\n") + "\n"
}

/// Exports the tenant's log as it stands and checks that the script's report is Rust's, and
/// that it exits 1 exactly when something is broken; returns the report.
async fn agrees(w: &World) -> Value {
    let key = w.sealer.signer().public_key().await.unwrap();
    let rust = verify::check(&evidence(w).await, &key, w.services.clock.now());
    let rust = serde_json::to_value(rust).unwrap();
    let v = run_script(&export(w).await, &pem(w).await, &[]);
    assert_eq!(
        v.report["broken"], rust["broken"],
        "the script's break is not Rust's; stderr: {}",
        v.stderr
    );
    assert_eq!(v.report, rust, "stderr: {}", v.stderr);
    let broken = !rust["broken"].is_null();
    assert_eq!(v.code, i32::from(broken), "stderr: {}", v.stderr);
    rust
}

/// The break's kind, seq and checkpoint.
fn named(report: &Value) -> (&str, Option<u64>, Option<u64>) {
    let b = &report["broken"];
    (
        b["kind"].as_str().unwrap_or("none"),
        b["seq"].as_u64(),
        b["checkpoint"].as_u64(),
    )
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

/// An event no journal would write, sealed like any other: every kind of JSON where Python's
/// and serde_json's canonical forms could part (key order beyond ASCII, escapes, big integers).
fn awkward_event(w: &World) -> Item {
    let id = "0123456789abcdef0123456789abcdef";
    let now = w.services.clock.now();
    let summary = json!({
        "zeta": 1, "Zeta": 2, "é": "é", "e\u{301}": "combining", "\u{e000}": "private use",
        "\u{ffff}": "last of the BMP", "\u{1f600}": "astral", "\u{10ffff}": "last of all",
        "a\u{0}b": "\u{0}\u{1f}\u{7f}\"\\\u{8}\u{c}\n\r\t/</script>",
        "separators": "\u{2028}\u{2029}\u{feff}\u{85}",
        "nested": { "b": [3, { "y": null, "x": true, "": [] }], "a": false, "A": {} },
        "big": u64::MAX, "small": i64::MIN, "zero": 0, "minus": -1,
    });
    Item {
        attrs: object(json!({
            "tenantId": TENANT, "id": id, "time": "2026-11-29T12:00:00.000Z",
            "actor": "system:test", "action": "test.awkward", "target": "thing:awkward",
            "requestId": "req-awkward", "sourceRef": null, "summary": summary,
        })),
        ..Item::new(
            event_pk(TENANT, id),
            event_sk(now.unix_timestamp_nanos() / 1_000_000, id),
        )
    }
}

/// A world whose tenant's log has two signed checkpoints over its setup, tracked actions and
/// the awkward event, and one tracked action not sealed yet (pending).
async fn world() -> World {
    let w = World::new().await;
    for user in ["ann", "bob"] {
        w.track(user, "signIn").await;
    }
    assert_eq!(w.audit(TENANT).await.broken, None);
    w.services
        .store
        .put(awkward_event(&w), Condition::Absent)
        .await
        .unwrap();
    for user in ["cat", "dan", "eve"] {
        w.track(user, "signIn").await;
    }
    let sealed = w.audit(TENANT).await;
    assert_eq!((&sealed.broken, sealed.checkpoints), (&None, 2));
    w.track("fay", "signIn").await;
    w
}

#[tokio::test]
#[ignore = "needs python3 with the cryptography package (LATCHKEY_TEST_PYTHON); run by .ci/run"]
async fn an_intact_export_gets_rusts_report() {
    let w = world().await;
    let report = agrees(&w).await;
    assert!(report["broken"].is_null(), "{report}");
    assert!(report["sealed"].as_u64().unwrap() >= 8, "{report}");
    assert_eq!(report["checkpoints"], 2);
    assert_eq!(report["signedThrough"], report["sealed"]);
    assert!(report["pending"].as_u64().unwrap() >= 1, "{report}");
    assert!(
        report["events"].as_u64().unwrap()
            == report["sealed"].as_u64().unwrap() + report["pending"].as_u64().unwrap()
    );

    // An hour on (--now), the event not sealed yet is older than the grace period: inserted.
    let later = w.services.clock.now() + Duration::hours(1);
    let key = w.sealer.signer().public_key().await.unwrap();
    let rust = serde_json::to_value(verify::check(&evidence(&w).await, &key, later)).unwrap();
    assert_eq!(rust["broken"]["kind"], "inserted-event");
    let now = later.rfc3339().unwrap();
    let v = run_script(&export(&w).await, &pem(&w).await, &["--now", &now]);
    assert_eq!((v.code, &v.report), (1, &rust), "{}", v.stderr);
}

#[tokio::test]
#[ignore = "needs python3 with the cryptography package (LATCHKEY_TEST_PYTHON); run by .ci/run"]
async fn each_tampering_in_the_store_is_named_as_rust_names_it() {
    let w = world().await;
    let store = &w.services.store;
    let ev = evidence(&w).await;
    // The event item that sealed entry `seq` names.
    let item_of = |seq: usize| {
        let sk = &ev.entries[seq - 1].sk;
        ev.events.iter().find(|i| &i.sk == sk).unwrap().clone()
    };
    let intact = async || assert!(agrees(&w).await["broken"].is_null());

    // An event altered.
    let original = item_of(3);
    let mut edited = original.clone();
    edited
        .attrs
        .insert("actor".into(), json!("apikey:someone-else"));
    store.put(edited, Condition::None).await.unwrap();
    assert_eq!(named(&agrees(&w).await), ("altered-event", Some(3), None));
    store.put(original, Condition::None).await.unwrap();
    intact().await;

    // An event deleted.
    let gone = item_of(2);
    store
        .delete(&gone.pk, &gone.sk, Condition::Exists)
        .await
        .unwrap();
    assert_eq!(named(&agrees(&w).await), ("missing-event", Some(2), None));
    store.put(gone, Condition::Absent).await.unwrap();
    intact().await;

    // An event moved: its time, and so its sort key, changed.
    let moved = item_of(4);
    let id = moved.str("id").unwrap().to_owned();
    let later = Item {
        sk: event_sk(
            (w.services.clock.now() + Duration::minutes(1)).unix_timestamp_nanos() / 1_000_000,
            &id,
        ),
        ..moved.clone()
    };
    store
        .delete(&moved.pk, &moved.sk, Condition::Exists)
        .await
        .unwrap();
    store.put(later.clone(), Condition::Absent).await.unwrap();
    assert_eq!(named(&agrees(&w).await), ("moved-event", Some(4), None));
    store
        .delete(&later.pk, &later.sk, Condition::Exists)
        .await
        .unwrap();
    store.put(moved, Condition::Absent).await.unwrap();
    intact().await;

    // An event inserted around the commit path, dated an hour ago, never sealed.
    let forged_id = "f".repeat(32);
    let mut forged = item_of(1);
    forged.attrs.insert("id".into(), json!(forged_id));
    forged.pk = event_pk(TENANT, &forged_id);
    forged.sk = event_sk(
        (w.services.clock.now() - Duration::hours(1)).unix_timestamp_nanos() / 1_000_000,
        &forged_id,
    );
    store.put(forged.clone(), Condition::Absent).await.unwrap();
    let r = agrees(&w).await;
    assert_eq!(named(&r), ("inserted-event", None, None));
    assert_eq!(r["broken"]["eventId"], json!(forged_id));
    store
        .delete(&forged.pk, &forged.sk, Condition::Exists)
        .await
        .unwrap();
    intact().await;

    // Two sealed entries of a block swapped.
    let pk = seal_pk(TENANT);
    let block = store.get(&pk, &block_sk(1)).await.unwrap().unwrap();
    let mut swapped = block.clone();
    let entries = swapped.attrs.get_mut("entries").unwrap();
    entries.as_array_mut().unwrap().swap(1, 2);
    store.put(swapped, Condition::None).await.unwrap();
    assert_eq!(named(&agrees(&w).await), ("broken-chain", Some(2), None));
    store.put(block, Condition::None).await.unwrap();
    intact().await;

    // A checkpoint's field altered.
    let cp = store.get(&pk, &checkpoint_sk(2)).await.unwrap().unwrap();
    let first = cp.u64("firstSeq").unwrap();
    let mut altered = cp.clone();
    altered
        .attrs
        .insert("lastSeq".into(), json!(cp.u64("lastSeq").unwrap() - 1));
    store.put(altered, Condition::None).await.unwrap();
    let r = agrees(&w).await;
    assert_eq!(named(&r), ("forged-checkpoint", Some(first), Some(2)));
    store.put(cp.clone(), Condition::None).await.unwrap();
    intact().await;

    // The same checkpoint re-signed with another key.
    let other = LocalSigner::ephemeral(&OsRandom).unwrap();
    let mut resigned: Checkpoint = serde_json::from_value(Value::Object(cp.attrs.clone())).unwrap();
    resigned.signature = STANDARD.encode(other.sign(&resigned.body.message()).await.unwrap());
    let mut forged_cp = cp.clone();
    forged_cp.attrs = object(serde_json::to_value(&resigned).unwrap());
    store.put(forged_cp, Condition::None).await.unwrap();
    let r = agrees(&w).await;
    assert_eq!(named(&r), ("forged-checkpoint", Some(first), Some(2)));
    store.put(cp, Condition::None).await.unwrap();
    intact().await;

    // The first checkpoint deleted.
    let cp1 = store.get(&pk, &checkpoint_sk(1)).await.unwrap().unwrap();
    store
        .delete(&pk, &checkpoint_sk(1), Condition::Exists)
        .await
        .unwrap();
    assert_eq!(
        named(&agrees(&w).await),
        ("missing-checkpoint", Some(first), Some(1))
    );
    store.put(cp1, Condition::Absent).await.unwrap();
    intact().await;

    // The seal head set back one entry.
    let head = store.get(&pk, HEAD_SK).await.unwrap().unwrap();
    let mut back = head.clone();
    back.attrs
        .insert("seq".into(), json!(head.u64("seq").unwrap() - 1));
    store.put(back, Condition::None).await.unwrap();
    assert_eq!(named(&agrees(&w).await), ("head-mismatch", None, None));
    store.put(head, Condition::None).await.unwrap();
    intact().await;
}

#[tokio::test]
#[ignore = "needs python3 with the cryptography package (LATCHKEY_TEST_PYTHON); run by .ci/run"]
async fn a_key_or_export_it_cannot_use_is_refused_with_exit_2() {
    let w = world().await;
    let export = export(&w).await;
    for bad_key in [P384_PEM, "not a key\n", ""] {
        let v = run_script(&export, bad_key, &[]);
        assert_eq!((v.code, &v.report), (2, &Value::Null), "{}", v.stderr);
        assert!(v.stderr.contains("unusable input"), "{}", v.stderr);
    }
    let pem = pem(&w).await;
    let header_last = {
        let mut lines: Vec<&str> = export.lines().collect();
        lines.rotate_left(1);
        lines.join("\n")
    };
    let no_seq = export.replacen("\"seq\":1,", "\"seq\":\"1\",", 1);
    assert_ne!(no_seq, export);
    for bad_export in ["", "{not json\n", "[1]\n", &header_last, &no_seq] {
        let v = run_script(bad_export, &pem, &[]);
        assert_eq!(v.code, 2, "{bad_export:.80}: {}", v.stderr);
    }
}
