//! The ports the domain depends on. Each is a small trait; adapters live in [`crate::adapters`].
pub mod backup;
pub mod clock;
pub mod feed;
pub mod keys;
pub mod mailer;
pub mod random;
pub mod secrets;
pub mod signer;
pub mod store;

pub use clock::Clock;
pub use feed::Feed;
pub use keys::KeyVault;
pub use mailer::Mailer;
pub use random::Random;
pub use secrets::Secrets;
pub use signer::Signer;
pub use store::Store;
