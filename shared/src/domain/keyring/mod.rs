//! The keyring: older generations of the root secret, kept so that every keyed hash made
//! under one keeps verifying after any number of rotations (`docs/architecture.md` §4).
//!
//! Secrets Manager (and the local secrets file) holds two versions of the root, current and
//! previous; a second rotation drops the one before them, and with it every keyed hash still
//! made under it: secret keys and operator tokens (hashes of secrets Latchkey never keeps),
//! recovery codes, the email index, device references. The keyring item keeps those
//! generations, sealed with AES-256-GCM under a key derived from the current root, and names
//! the generation it is sealed under.
//!
//! The re-key job ([`crate::domain::rekey`]: `latchkey-admin secrets rekey`, and hourly on AWS) runs after
//! each rotation. It adds the previous generation to the keyring, re-seals the keyring under
//! the current root, and rewrites under the current key what it can recompute: the email
//! index (the address is sealed in the user's record). What it cannot recompute, a hash of a
//! secret only its holder knows, is rewritten under the current key at its next successful
//! use, and until then verifies under its own generation. Lookups and checks try the current
//! key first, then the previous, and read the keyring only when neither matched.
//!
//! Two rotations with no re-key between them would leave the keyring sealed under a root no
//! longer held; the job and every lookup then fail loudly, and the README's rotation steps
//! say to re-key after every rotation.
use crate::crypto::FieldContext;
use crate::crypto::envelope::open_with;
use crate::crypto::keys::{
    Purpose, PurposeKey, ROOT_SECRET, derive, generation_id, purpose_keys, tag_matches,
};
use crate::domain::{Error, Services};
use crate::ports::secrets::SecretVersions;
use crate::ports::store::Item;
use serde_json::Value;
use zeroize::Zeroizing;

pub const KEYRING_PK: &str = "PLATFORM#KEYRING";
pub const KEYRING_SK: &str = "KEYRING";
/// The error when the keyring cannot be opened: retrying will not help, an operator must put
/// the root it is sealed under back as the previous version and re-key.
pub const SEALED_UNDER_A_LOST_ROOT: &str = "the keyring is sealed under a root generation no \
     longer held (two rotations without a re-key between them)";

pub mod cache;

pub(crate) use cache::Generation;
pub use cache::KeyringCache;

/// Where a probe matched: under the current key, or an older one (previous or kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Under {
    Current,
    Older,
}

/// The keys of one purpose to try, in order: under the current root, the previous root, then
/// (read only when asked for, one store read at most a minute) each generation the keyring
/// keeps, newest first. For lookups: `while let Some((key, under)) = search.next().await? {}`.
pub struct Search<'a> {
    services: &'a Services,
    purpose: Purpose,
    queue: std::collections::VecDeque<(PurposeKey, Under)>,
    kept_loaded: bool,
}

impl<'a> Search<'a> {
    pub async fn new(services: &'a Services, purpose: Purpose) -> Result<Self, Error> {
        let keys = purpose_keys(services.secrets.as_ref(), purpose).await?;
        let mut queue = std::collections::VecDeque::new();
        queue.push_back((keys.current, Under::Current));
        if let Some(previous) = keys.previous {
            queue.push_back((previous, Under::Older));
        }
        Ok(Self {
            services,
            purpose,
            queue,
            // Token signing never reaches past the previous root.
            kept_loaded: !purpose.keys_stored_hashes(),
        })
    }

    pub async fn next(&mut self) -> Result<Option<(PurposeKey, Under)>, Error> {
        if self.queue.is_empty() && !self.kept_loaded {
            self.kept_loaded = true;
            let root = self.services.secrets.get(ROOT_SECRET).await?;
            let held: Vec<String> = root.candidates().map(generation_id).collect();
            for generation in generations(self.services, &root).await? {
                if !held.contains(&generation.id) {
                    self.queue
                        .push_back((derive(&generation.root, self.purpose), Under::Older));
                }
            }
        }
        Ok(self.queue.pop_front())
    }
}

/// Whether `tag` is the keyed hash of `data` under any generation's key for `purpose`, and
/// under which.
pub async fn verify(
    services: &Services,
    purpose: Purpose,
    data: &[u8],
    tag: &[u8],
) -> Result<Option<Under>, Error> {
    let mut search = Search::new(services, purpose).await?;
    while let Some((key, under)) = search.next().await? {
        if tag_matches(&key, data, tag) {
            return Ok(Some(under));
        }
    }
    Ok(None)
}

/// The generation id of the current root: records made under it carry it as `gen`.
pub async fn current_generation(services: &Services) -> Result<String, Error> {
    let root = services.secrets.get(ROOT_SECRET).await?;
    Ok(generation_id(&root.current))
}

pub(crate) fn seal_key(root: &[u8]) -> PurposeKey {
    derive(&Zeroizing::new(root.to_vec()), Purpose::KeyringSeal)
}

pub(crate) fn at(id: &str) -> FieldContext<'_> {
    FieldContext {
        tenant_id: "",
        item: "KEYRING",
        field: id,
    }
}

/// The keyring's generations (cached), opened with whichever held root it is sealed under.
async fn generations(services: &Services, root: &SecretVersions) -> Result<Vec<Generation>, Error> {
    let current = generation_id(&root.current);
    let now = services.clock.now();
    if let Some(cached) = services.keyring.get(&current, now) {
        return Ok(cached);
    }
    let item = services.store.get(KEYRING_PK, KEYRING_SK).await?;
    let generations = match &item {
        Some(item) => open(item, root)?,
        None => Vec::new(),
    };
    services.keyring.put(current, now, generations.clone());
    Ok(generations)
}

pub(crate) fn open(item: &Item, root: &SecretVersions) -> Result<Vec<Generation>, Error> {
    let under = item.str("sealedUnder").unwrap_or_default();
    let Some(sealer) = root.candidates().find(|r| generation_id(r) == under) else {
        return Err(Error::Unavailable(SEALED_UNDER_A_LOST_ROOT.into()));
    };
    let key = seal_key(sealer);
    let mut out = Vec::new();
    for entry in item
        .attrs
        .get("generations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(id), Some(sealed)) = (
            entry.get("id").and_then(Value::as_str),
            entry.get("sealed").and_then(Value::as_str),
        ) else {
            return Err(Error::Unavailable("the keyring is malformed".into()));
        };
        let root = open_with(&key, at(id), sealed)
            .map_err(|_| Error::Unavailable("the keyring does not open".into()))?;
        if generation_id(&root) != id {
            return Err(Error::Unavailable("the keyring is malformed".into()));
        }
        out.push(Generation {
            id: id.to_owned(),
            root: Zeroizing::new(root),
        });
    }
    Ok(out)
}

/// Whether the root secret can be read (the health check): every keyed hash and token needs it.
pub async fn root_readable(secrets: &dyn crate::ports::Secrets) -> Result<(), Error> {
    secrets.get(ROOT_SECRET).await.map(drop).map_err(Into::into)
}
