//! The KeyVault contract, exercised through the envelope that production uses.
use crate::counting::CountingVault;
use latchkey::crypto::envelope::{Envelope, FieldContext, SealError};
use latchkey::ports::KeyVault;
use latchkey::ports::clock::ManualClock;
use latchkey::ports::keys::{KeyContext, KeyError};
use latchkey::ports::random::OsRandom;
use std::sync::Arc;
use time::Duration;

fn envelope(vault: Arc<dyn KeyVault>, clock: Arc<ManualClock>) -> Envelope {
    Envelope::new(vault, Arc::new(OsRandom), clock, Duration::minutes(5), 100)
}

fn at<'a>(tenant_id: &'a str, item: &'a str, field: &'a str) -> FieldContext<'a> {
    FieldContext {
        tenant_id,
        item,
        field,
    }
}

pub async fn round_trips_and_never_repeats_a_ciphertext(vault: Arc<dyn KeyVault>) {
    let env = envelope(vault, crate::test_clock());
    let key = env.new_tenant_key("t-round").await.unwrap();
    let a = env
        .seal(&key, at("t-round", "U#1", "email"), b"jane@example.com")
        .await
        .unwrap();
    let b = env
        .seal(&key, at("t-round", "U#1", "email"), b"jane@example.com")
        .await
        .unwrap();
    assert_ne!(a, b, "two encryptions of one value must differ");
    assert!(!a.contains("jane"));
    for sealed in [&a, &b] {
        assert_eq!(
            env.open(&key, at("t-round", "U#1", "email"), sealed)
                .await
                .unwrap(),
            b"jane@example.com"
        );
    }
}

pub async fn refuses_the_wrong_tenant_field_or_context(vault: Arc<dyn KeyVault>) {
    let env = envelope(Arc::clone(&vault), crate::test_clock());
    let key = env.new_tenant_key("t-a").await.unwrap();
    let other = env.new_tenant_key("t-b").await.unwrap();
    let sealed = env
        .seal(&key, at("t-a", "U#1", "email"), b"v")
        .await
        .unwrap();
    // Another field, item, or tenant's key.
    assert_eq!(
        env.open(&key, at("t-a", "U#1", "phone"), &sealed).await,
        Err(SealError::Refused)
    );
    assert_eq!(
        env.open(&key, at("t-a", "U#2", "email"), &sealed).await,
        Err(SealError::Refused)
    );
    assert_eq!(
        env.open(&other, at("t-b", "U#1", "email"), &sealed).await,
        Err(SealError::Refused)
    );
    // A tenant's wrapped key presented as another tenant's: the vault refuses the context.
    assert_eq!(
        vault
            .decrypt_data_key(key.kek.as_deref(), &key.bytes, &KeyContext::tenant("t-b"))
            .await
            .map(|_| ()),
        Err(KeyError::Refused)
    );
    // Tenant a's wrapped key copied into tenant b's record: refused even with a warm cache,
    // so nothing new can be sealed for b under a's key.
    let mut forged = key.clone();
    forged.tenant_id = "t-b".into();
    assert!(
        env.open(&forged, at("t-b", "U#1", "email"), &sealed)
            .await
            .is_err()
    );
    assert!(
        env.seal(&forged, at("t-b", "U#1", "email"), b"new")
            .await
            .is_err()
    );
    // A fresh envelope (cold cache) must unwrap through the vault and still refuse.
    let cold = envelope(Arc::clone(&vault), crate::test_clock());
    assert!(
        cold.open(&forged, at("t-b", "U#1", "email"), &sealed)
            .await
            .is_err()
    );
    assert_eq!(
        cold.open(&key, at("t-a", "U#1", "email"), &sealed)
            .await
            .unwrap(),
        b"v"
    );
}

/// A warm envelope makes no vault call per value; the cache expires with its TTL.
pub async fn warm_cache_makes_no_vault_calls(vault: Arc<dyn KeyVault>) {
    let counting = Arc::new(CountingVault::new(vault));
    let clock = crate::test_clock();
    let writer = envelope(counting.clone(), Arc::clone(&clock));
    let key = writer.new_tenant_key("t-warm").await.unwrap();
    assert_eq!(counting.calls(), 1);

    // A new process (cold cache) unwraps once, then never again while warm.
    let reader = envelope(counting.clone(), Arc::clone(&clock));
    let sealed = reader
        .seal(&key, at("t-warm", "U#1", "email"), b"x")
        .await
        .unwrap();
    assert_eq!(counting.calls(), 2);
    for i in 0..100 {
        let item = format!("U#{i}");
        let s = reader
            .seal(&key, at("t-warm", &item, "email"), b"x")
            .await
            .unwrap();
        reader
            .open(&key, at("t-warm", &item, "email"), &s)
            .await
            .unwrap();
    }
    reader
        .open(&key, at("t-warm", "U#1", "email"), &sealed)
        .await
        .unwrap();
    assert_eq!(
        counting.calls(),
        2,
        "a warm cache must make zero vault calls"
    );

    clock.advance(Duration::minutes(6));
    reader
        .open(&key, at("t-warm", "U#1", "email"), &sealed)
        .await
        .unwrap();
    assert_eq!(counting.calls(), 3, "an expired entry is unwrapped again");
}

/// Crypto-shredding: once a tenant's own key is destroyed, its wrapped data key opens neither
/// in the envelope that destroyed it nor in a cold one (another process, a restored backup),
/// while another tenant's keys go on working; destroying it again is harmless.
///
/// Not in [`crate::key_contract_tests`]: moto's KMS decrypts under a disabled key (real KMS answers
/// `DisabledException`, `KMSInvalidStateException` once deletion is scheduled), so on moto
/// `tests/tests/aws/kms.rs` checks the key's state instead.
pub async fn a_destroyed_tenant_key_opens_nothing(vault: Arc<dyn KeyVault>) {
    let env = envelope(Arc::clone(&vault), crate::test_clock());
    let doomed = env.new_tenant_key("t-doomed").await.unwrap();
    let kept = env.new_tenant_key("t-kept").await.unwrap();
    assert!(doomed.kek.is_some(), "a new tenant has a key of its own");
    assert_ne!(doomed.kek, kept.kek);
    let sealed = env
        .seal(&doomed, at("t-doomed", "U#1", "email"), b"jane@example.com")
        .await
        .unwrap();
    let other = env
        .seal(&kept, at("t-kept", "U#1", "email"), b"joe@example.com")
        .await
        .unwrap();
    assert!(env.shred(&doomed).await.unwrap());
    let cold = envelope(Arc::clone(&vault), crate::test_clock());
    for e in [&env, &cold] {
        assert!(
            e.open(&doomed, at("t-doomed", "U#1", "email"), &sealed)
                .await
                .is_err()
        );
        assert_eq!(
            e.open(&kept, at("t-kept", "U#1", "email"), &other)
                .await
                .unwrap(),
            b"joe@example.com"
        );
    }
    assert_eq!(
        vault
            .decrypt_data_key(
                doomed.kek.as_deref(),
                &doomed.bytes,
                &KeyContext::tenant("t-doomed")
            )
            .await
            .map(|_| ()),
        Err(KeyError::Refused)
    );
    assert!(env.shred(&doomed).await.unwrap(), "again: as good");
}

/// Runs every key-vault contract, each on a fresh vault from `fresh` (an async fn returning a
/// [`crate::Fresh`]`<Arc<dyn KeyVault>>`), with the given attributes on every test.
#[macro_export]
macro_rules! key_contract_tests {
    ($fresh:expr $(, #[$attr:meta])*) => {
        mod key_contract {
            use super::*;
            use latchkey_tests::contract::keys as c;

            #[tokio::test] $(#[$attr])*
            async fn round_trips_and_never_repeats_a_ciphertext() { let fresh = $fresh().await; c::round_trips_and_never_repeats_a_ciphertext(fresh.adapter()).await }
            #[tokio::test] $(#[$attr])*
            async fn refuses_the_wrong_tenant_field_or_context() { let fresh = $fresh().await; c::refuses_the_wrong_tenant_field_or_context(fresh.adapter()).await }
            #[tokio::test] $(#[$attr])*
            async fn warm_cache_makes_no_vault_calls() { let fresh = $fresh().await; c::warm_cache_makes_no_vault_calls(fresh.adapter()).await }
        }
    };
}
