//! Randomness is a parameter. Production uses the operating system's CSPRNG for every secret;
//! tests may use a seeded generator to make runs repeatable.
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::sync::Mutex;

pub trait Random: Send + Sync {
    /// Fills `dest` with bytes fit for keys, nonces and identifiers.
    fn fill(&self, dest: &mut [u8]);
}

/// Helpers every caller wants; implemented for all [`Random`]s.
pub trait RandomExt: Random {
    fn bytes<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        self.fill(&mut out);
        out
    }

    /// An URL-safe identifier carrying `bytes` bytes of entropy.
    fn token(&self, bytes: usize) -> String {
        let mut out = vec![0u8; bytes];
        self.fill(&mut out);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// A lowercase hexadecimal identifier carrying `bytes` bytes of entropy.
    fn hex_id(&self, bytes: usize) -> String {
        let mut out = vec![0u8; bytes];
        self.fill(&mut out);
        hex::encode(out)
    }

    /// A value in `0..bound` without modulo bias (`bound` > 0).
    fn below(&self, bound: u64) -> u64 {
        if bound <= 1 {
            return 0;
        }
        let zone = u64::MAX - (u64::MAX % bound);
        loop {
            let v = u64::from_le_bytes(self.bytes::<8>());
            if v < zone {
                return v % bound;
            }
        }
    }
}

impl<R: Random + ?Sized> RandomExt for R {}

/// The operating system's CSPRNG (getrandom).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, dest: &mut [u8]) {
        rand::rngs::OsRng.fill_bytes(dest);
    }
}

/// ChaCha20 from a fixed seed: repeatable, for tests only (never for secrets in production).
#[derive(Debug)]
pub struct SeededRandom(Mutex<ChaCha20Rng>);

impl SeededRandom {
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(ChaCha20Rng::seed_from_u64(seed)))
    }
}

impl Random for SeededRandom {
    fn fill(&self, dest: &mut [u8]) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fill_bytes(dest);
    }
}
