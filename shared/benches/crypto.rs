//! One ECDSA P-256 / SHA-256 signature check, the CPU floor of a passkey sign-in, through the two
//! backends in the tree: RustCrypto `p256` (what webauthn-rs 0.6 verifies with) and *ring* (there
//! through rustls, the AWS SDK's TLS). `cargo bench -p latchkey --bench crypto`.
//!
//! The message is shaped like a WebAuthn assertion's signed data: 37 bytes of authenticator data
//! and the 32-byte SHA-256 of the client data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, Signature, SigningKey};
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

fn verify(c: &mut Criterion) {
    let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
    let message: Vec<u8> = (0..69u8).collect();
    let signature: Signature = key.sign(&message);
    let der = signature.to_der();
    let point = key.verifying_key().to_sec1_point(false);

    // Both must accept the same signature, and refuse a changed message, or the bench is moot.
    let vk = *key.verifying_key();
    let der_sig = DerSignature::from_bytes(der.as_bytes()).unwrap();
    assert!(vk.verify(&message, &der_sig).is_ok());
    let ring = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point.as_bytes());
    assert!(ring.verify(&message, der.as_bytes()).is_ok());
    assert!(ring.verify(b"other", der.as_bytes()).is_err());

    let mut group = c.benchmark_group("ecdsa p256 sha256 verify");
    group.bench_function("p256 (RustCrypto, webauthn-rs's backend)", |b| {
        b.iter(|| {
            let sig = DerSignature::from_bytes(der.as_bytes()).unwrap();
            vk.verify(std::hint::black_box(&message), &sig).unwrap()
        })
    });
    group.bench_function("ring", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point.as_bytes())
                .verify(std::hint::black_box(&message), der.as_bytes())
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
