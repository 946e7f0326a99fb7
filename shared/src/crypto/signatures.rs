//! Checks the audit checkpoints' signatures: ECDSA P-256 over SHA-256, DER signature, public
//! key as DER SubjectPublicKeyInfo (what KMS's GetPublicKey returns), with RustCrypto `p256`.
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{DerSignature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey as _, EncodePublicKey as _, LineEnding};

/// A parsed public key, or `None` if `spki_der` is not a P-256 SubjectPublicKeyInfo.
pub fn public_key(spki_der: &[u8]) -> Option<VerifyingKey> {
    VerifyingKey::from_public_key_der(spki_der).ok()
}

/// The same key as PEM (`-----BEGIN PUBLIC KEY-----`), for export.
pub fn public_key_pem(spki_der: &[u8]) -> Option<String> {
    public_key(spki_der)?.to_public_key_pem(LineEnding::LF).ok()
}

/// Whether `signature` (DER) is `key`'s signature of `message`.
pub fn verify(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    match DerSignature::from_bytes(signature) {
        Ok(sig) => key.verify(message, &sig).is_ok(),
        Err(_) => false,
    }
}
