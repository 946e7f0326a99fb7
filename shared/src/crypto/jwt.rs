//! jsonwebtoken's cryptography for the one algorithm Latchkey's tokens use, HS256, on RustCrypto's
//! `hmac` and `sha2` (already linked), through jsonwebtoken's own extension point
//! ([`CryptoProvider`]).
//!
//! Why not one of jsonwebtoken's two backends: `aws_lc_rs` links AWS-LC, 2.6 MB of C in every
//! Lambda bootstrap for one HMAC (README "Lambda builds"); `rust_crypto` needs `rsa` 0.10, which
//! cannot share a build with the `rsa` 0.10 release candidate webauthn-rs's crypto-glue pins.
//! This provider is the HMAC half of jsonwebtoken's `rust_crypto` backend; every other algorithm
//! is refused, so a token naming RS256, ES256 or `none` never verifies.
use hmac::{Hmac, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{Error as SignatureError, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use sha2::Sha256;

static HS256_ONLY: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    // JWKs are not used: tokens carry a `kid` of our own (tokens.rs).
    key_utils: KeyUtils::new_unimplemented(),
};

/// Makes this provider jsonwebtoken's process default, once; later calls are a load.
pub fn install() {
    if CryptoProvider::try_get_default().is_none() {
        // Another thread may win the race; either way this provider is the one installed, as
        // no other is in this build.
        let _ = HS256_ONLY.install_default();
    }
}

struct Hs256(Hmac<Sha256>);

impl Hs256 {
    fn new(secret: &[u8]) -> Result<Self> {
        Hmac::<Sha256>::new_from_slice(secret)
            .map(Self)
            .map_err(|_| ErrorKind::InvalidKeyFormat.into())
    }
}

impl Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, SignatureError> {
        let mut mac = self.0.clone();
        mac.update(msg);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), SignatureError> {
        let mut mac = self.0.clone();
        mac.update(msg);
        // `verify_slice` compares in constant time.
        mac.verify_slice(signature)
            .map_err(|_| SignatureError::new())
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

fn signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    if *algorithm != Algorithm::HS256 || key.family() != AlgorithmFamily::Hmac {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    Ok(Box::new(Hs256::new(key.as_bytes())?))
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if *algorithm != Algorithm::HS256 || key.family() != AlgorithmFamily::Hmac {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    Ok(Box::new(Hs256::new(key.try_get_as_bytes()?)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use jsonwebtoken::{Header, Validation, decode, encode};
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Claims {
        sub: String,
        exp: u64,
    }

    fn claims() -> Claims {
        Claims {
            sub: "u".into(),
            exp: 4_000_000_000,
        }
    }

    #[test]
    fn signs_and_verifies_hs256_as_rfc_7515_says() {
        install();
        // RFC 7515 A.1: its key, its signing input and the signature it gives.
        use base64::Engine as _;
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap();
        let signature = jsonwebtoken::crypto::sign(
            b"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
            &EncodingKey::from_secret(&secret).unwrap(),
            Algorithm::HS256,
        )
        .unwrap();
        assert_eq!(signature, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");

        let token = encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(b"k").unwrap(),
        )
        .unwrap();
        let decoded = decode::<Claims>(
            &token,
            &DecodingKey::from_secret(b"k").unwrap(),
            &Validation::new(Algorithm::HS256),
        )
        .unwrap();
        assert_eq!(decoded.claims, claims());
        assert!(
            decode::<Claims>(
                &token,
                &DecodingKey::from_secret(b"other").unwrap(),
                &Validation::new(Algorithm::HS256)
            )
            .is_err()
        );
    }

    #[test]
    fn refuses_every_other_algorithm() {
        install();
        let secret = EncodingKey::from_secret(b"k").unwrap();
        for alg in [
            Algorithm::HS384,
            Algorithm::HS512,
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ] {
            assert!(
                encode(&Header::new(alg), &claims(), &secret).is_err(),
                "{alg:?}"
            );
        }
        // A token whose header says HS384, checked as HS384, with the right secret: refused.
        let token = encode(&Header::new(Algorithm::HS256), &claims(), &secret).unwrap();
        let mut validation = Validation::new(Algorithm::HS384);
        validation.algorithms = vec![Algorithm::HS384];
        assert!(
            decode::<Claims>(
                &token,
                &DecodingKey::from_secret(b"k").unwrap(),
                &validation
            )
            .is_err()
        );
    }
}
