//! The management plane's bearer credentials, one shape for all three: `{prefix}{16 hex id}_{43
//! chars}` — session cookies `lks_`, invites `lki_`, management keys `lkm_`. The id makes the
//! lookup one read; the store holds only HMAC-SHA256(admin-credential pepper, whole token),
//! compared in constant time under the current root and then older generations (the keyring),
//! as secret keys and operator tokens are. 256 bits of CSPRNG output in each.
use crate::crypto::keys::{Purpose, purpose_keys};
use crate::crypto::{hex, unhex};
use crate::domain::Error;
use crate::domain::Services;
use crate::domain::keyring;
use crate::ports::random::RandomExt as _;
use crate::ports::store::Item;

pub const SESSION: &str = "lks_";
pub const INVITE: &str = "lki_";
pub const MANAGEMENT_KEY: &str = "lkm_";
const ID_LEN: usize = 16;

/// A new credential: its id, the token (shown once) and what the record stores.
pub struct Minted {
    pub id: String,
    pub token: String,
    pub hash: String,
    pub generation: String,
}

pub async fn mint(services: &Services, prefix: &str) -> Result<Minted, Error> {
    let id = services.random.hex_id(ID_LEN / 2);
    let token = format!("{prefix}{id}_{}", services.random.token(32));
    let pepper = purpose_keys(services.secrets.as_ref(), Purpose::AdminCredentialPepper).await?;
    Ok(Minted {
        hash: hex(pepper.mac(token.as_bytes())),
        generation: keyring::current_generation(services).await?,
        id,
        token,
    })
}

/// The id of a token of this kind, if it has the shape of one.
pub fn id_of<'a>(prefix: &str, token: &'a str) -> Option<&'a str> {
    let rest = token.strip_prefix(prefix)?;
    let (id, tail) = rest.split_at_checked(ID_LEN)?;
    let secret = tail.strip_prefix('_')?;
    let id_ok = id
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    (id_ok && secret.len() >= 32).then_some(id)
}

/// Whether `token` is the one whose keyed hash `item` holds (`hash`).
pub async fn matches(services: &Services, item: &Item, token: &str) -> Result<bool, Error> {
    let Some(stored) = item.str("hash").and_then(unhex) else {
        return Ok(false);
    };
    Ok(keyring::verify(
        services,
        Purpose::AdminCredentialPepper,
        token.as_bytes(),
        &stored,
    )
    .await?
    .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_only_from_well_formed_tokens() {
        let secret = "a".repeat(43);
        assert_eq!(
            id_of(SESSION, &format!("lks_0123456789abcdef_{secret}")),
            Some("0123456789abcdef")
        );
        assert_eq!(
            id_of(INVITE, &format!("lks_0123456789abcdef_{secret}")),
            None
        );
        assert_eq!(
            id_of(SESSION, &format!("lks_0123456789ABCDEF_{secret}")),
            None
        );
        assert_eq!(id_of(SESSION, "lks_0123456789abcdef_short"), None);
        assert_eq!(id_of(SESSION, "lks_"), None);
    }
}
