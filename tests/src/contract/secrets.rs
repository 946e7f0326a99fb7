//! The Secrets contract (`shared/src/ports/secrets.rs`), on any backend: a named secret's
//! current value, the value before the last rotation while the backend keeps it (so that what
//! was signed or hashed under it still verifies), no call to the backend per `get` once warm,
//! errors that name what is wrong but never hold a value, and a `Debug` form that redacts.
//!
//! Adapters differ in one documented way, which the fixture states: a name the backend does not
//! hold is [`SecretsError::NotFound`] naming it (Secrets Manager), or is made on first use as 32
//! random bytes that every later reader sees (the local secrets file, so a first start needs no
//! set-up).
use async_trait::async_trait;
use latchkey::crypto::keys::{Purpose, purpose_keys};
use latchkey::ports::Secrets;
use latchkey::ports::secrets::SecretsError;
use std::sync::Arc;

/// One backend under test, seeded with `root` = [`ROOT`] and `other` = [`OTHER`] before the
/// first call.
#[async_trait]
pub trait SecretsFixture: Send + Sync {
    /// The adapter under test; the same (warm) one until [`SecretsFixture::refresh`].
    fn secrets(&self) -> Arc<dyn Secrets>;
    /// Rotates `name` to `value` in the backend, the way its operator would (the value before
    /// becomes the previous one), behind the adapter's back.
    async fn rotate(&self, name: &str, value: &str);
    /// Replaces what the backend holds with `garbage`, which is not a valid secret document.
    async fn corrupt(&self, garbage: &str);
    /// What makes backend changes visible: a restart (a new adapter on the same file) or the
    /// cache's time to live passing.
    async fn refresh(&mut self);
    /// Whether a name the backend does not hold is made on first use (else it is `NotFound`).
    fn makes_missing_names(&self) -> bool;
}

pub const ROOT: &str = "first-root-value-0123456789";
pub const OTHER: &str = "other-secret-value-abcdefgh";

/// Before any rotation: the current values as stored, and no previous one.
pub async fn reads_current_values_with_no_previous_before_a_rotation(f: &mut dyn SecretsFixture) {
    let secrets = f.secrets();
    let root = secrets.get("root").await.unwrap();
    assert_eq!(root.current.as_slice(), ROOT.as_bytes());
    assert!(root.previous.is_none());
    assert_eq!(root.candidates().count(), 1);
    let other = secrets.get("other").await.unwrap();
    assert_eq!(other.current.as_slice(), OTHER.as_bytes());
    // Read again, warm: the same.
    assert_eq!(
        secrets.get("root").await.unwrap().current.as_slice(),
        ROOT.as_bytes()
    );
}

/// After a rotation the new value is current and the old one previous, so a keyed hash made
/// before still verifies while new ones use the new value. A warm adapter keeps serving what it
/// read until the backend's refresh (no backend call per request).
pub async fn rotation_keeps_the_previous_version_valid(f: &mut dyn SecretsFixture) {
    let before = f.secrets();
    let old_tag = purpose_keys(before.as_ref(), Purpose::ApiKeyPepper)
        .await
        .unwrap()
        .mac(b"lk_secret");

    f.rotate("root", "second-root-value-9876543210").await;
    assert_eq!(
        before.get("root").await.unwrap().current.as_slice(),
        ROOT.as_bytes(),
        "a warm adapter serves what it read, without asking the backend again"
    );

    f.refresh().await;
    let secrets = f.secrets();
    let after = secrets.get("root").await.unwrap();
    assert_eq!(after.current.as_slice(), b"second-root-value-9876543210");
    assert_eq!(
        after.previous.as_deref().map(|p| p.as_slice()),
        Some(ROOT.as_bytes())
    );
    assert_eq!(
        after.candidates().collect::<Vec<_>>(),
        vec![&b"second-root-value-9876543210"[..], ROOT.as_bytes()],
        "current first, then previous"
    );
    let keys = purpose_keys(secrets.as_ref(), Purpose::ApiKeyPepper)
        .await
        .unwrap();
    assert!(
        keys.verify(b"lk_secret", &old_tag),
        "previous version must still verify"
    );
    assert_ne!(
        keys.mac(b"lk_secret"),
        old_tag,
        "new hashes use the new version"
    );
    // The names not rotated keep their value (a backend that versions the whole document, as
    // Secrets Manager does, has the same value as the previous one).
    let other = secrets.get("other").await.unwrap();
    assert!(other.candidates().all(|c| c == OTHER.as_bytes()));
}

/// A name the backend does not hold: `NotFound` naming it, or (backends that make secrets on
/// first use) 32 fresh random bytes that stay the same for this reader and the next.
pub async fn a_missing_name_is_not_found_or_made_once(f: &mut dyn SecretsFixture) {
    let got = f.secrets().get("missing-name").await;
    if f.makes_missing_names() {
        let made = got.unwrap();
        assert_eq!(made.current.len(), 32);
        assert!(made.previous.is_none());
        assert_ne!(made.current.as_slice(), ROOT.as_bytes());
        assert_eq!(
            f.secrets().get("missing-name").await.unwrap().current,
            made.current
        );
        f.refresh().await;
        assert_eq!(
            f.secrets().get("missing-name").await.unwrap().current,
            made.current,
            "made once: a restarted reader sees the same value"
        );
    } else {
        assert_eq!(
            got.map(|_| ()),
            Err(SecretsError::NotFound("missing-name".into()))
        );
    }
    // The names it does hold are untouched.
    assert_eq!(
        f.secrets().get("root").await.unwrap().current.as_slice(),
        ROOT.as_bytes()
    );
}

/// A backend document that is not valid is `Malformed`, and neither the error nor its text
/// holds what the document said.
pub async fn a_malformed_backend_is_malformed_and_never_echoed(f: &mut dyn SecretsFixture) {
    let garbage = "hunter2-not-a-secret-document";
    f.corrupt(garbage).await;
    f.refresh().await;
    let err = f.secrets().get("root").await.unwrap_err();
    assert!(matches!(err, SecretsError::Malformed(_)), "{err:?}");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains(ROOT), "{text}");
    }
}

/// What a `get` returns never shows its values when printed.
pub async fn values_are_redacted_when_printed(f: &mut dyn SecretsFixture) {
    f.rotate("root", "second-root-value-9876543210").await;
    f.refresh().await;
    let versions = f.secrets().get("root").await.unwrap();
    let printed = format!("{versions:?}");
    assert!(printed.contains("<redacted>"), "{printed}");
    assert!(!printed.contains("root-value"), "{printed}");
}

/// Runs the Secrets contract, each test on a fresh fixture from `fresh` (an async fn returning
/// the fixture by value; it cleans up after itself when dropped), with the given attributes.
#[macro_export]
macro_rules! secrets_contract_tests {
    ($fresh:path $(, #[$attr:meta])*) => {
        mod secrets_contract {
            use super::*;
            use latchkey_tests::contract::secrets as c;

            #[tokio::test] $(#[$attr])*
            async fn reads_current_values_with_no_previous_before_a_rotation() {
                c::reads_current_values_with_no_previous_before_a_rotation(&mut $fresh().await).await
            }
            #[tokio::test] $(#[$attr])*
            async fn rotation_keeps_the_previous_version_valid() {
                c::rotation_keeps_the_previous_version_valid(&mut $fresh().await).await
            }
            #[tokio::test] $(#[$attr])*
            async fn a_missing_name_is_not_found_or_made_once() {
                c::a_missing_name_is_not_found_or_made_once(&mut $fresh().await).await
            }
            #[tokio::test] $(#[$attr])*
            async fn a_malformed_backend_is_malformed_and_never_echoed() {
                c::a_malformed_backend_is_malformed_and_never_echoed(&mut $fresh().await).await
            }
            #[tokio::test] $(#[$attr])*
            async fn values_are_redacted_when_printed() {
                c::values_are_redacted_when_printed(&mut $fresh().await).await
            }
        }
    };
}
