//! Names for authenticators, from the AAGUID in a registration's authenticator data.
//!
//! The AAGUID names the make of an authenticator (a password manager, a platform, a security
//! key model). It is shown to users so they can tell their passkeys apart; it is **not** a
//! security signal (with `attestation: none` nothing vouches for it), and nothing here trusts it.
//!
//! The table holds providers from the community list at
//! `github.com/passkeydeveloper/passkey-authenticator-aaguids` (`aaguid.json`). It is a small
//! static subset on purpose: fetching the list at run time would add an outbound dependency to
//! every registration, and unknown AAGUIDs simply get the generic name.
use std::collections::BTreeMap;
use uuid::Uuid;

/// Known AAGUIDs and the names their makers use.
const KNOWN: &[(&str, &str)] = &[
    (
        "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4",
        "Google Password Manager",
    ),
    ("adce0002-35bc-c60a-648b-0b25f1f05503", "Chrome on Mac"),
    ("08987058-cadc-4b81-b6e1-30de50dcbe96", "Windows Hello"),
    ("9ddd1817-af5a-4672-a2b9-3e3dd95000a9", "Windows Hello"),
    ("6028b017-b1d4-4c02-b4b3-afcdafc96bb2", "Windows Hello"),
    ("fbfc3007-154e-4ecc-8c0b-6e020557d7bd", "iCloud Keychain"),
    (
        "dd4ec289-e01d-41c9-bb89-70fa845d4bf2",
        "iCloud Keychain (Managed)",
    ),
    ("bada5566-a7aa-401f-bd96-45619a55120d", "1Password"),
    ("d548826e-79b4-db40-a3d8-11116f7e8349", "Bitwarden"),
    ("531126d6-e717-415c-9320-3d9aa6981239", "Dashlane"),
    ("b84e4048-15dc-4dd0-8640-f4f60813c8af", "NordPass"),
    ("0ea242b4-43c4-4a1b-8b17-dd6d0b6baec6", "Keeper"),
    ("53414d53-554e-4700-0000-000000000000", "Samsung Pass"),
    ("771b48fd-d3d4-4f74-9232-fc157ab0507a", "Edge on Mac"),
    ("fdb141b2-5d84-443e-8a35-4698c205a502", "KeePassXC"),
    ("50726f74-6f6e-5061-7373-50726f746f6e", "Proton Pass"),
    ("cb69481e-8ff7-4039-93ec-0a2729a154a8", "YubiKey 5 Series"),
    ("ee882879-721c-4913-9775-3dfcce97072a", "YubiKey 5 Series"),
    (
        "fa2b99dc-9e39-4257-8f92-4a30d23c4118",
        "YubiKey 5 Series with NFC",
    ),
    (
        "2fc0579f-8113-47ea-b116-bb5a8db9202a",
        "YubiKey 5 Series with NFC",
    ),
    (
        "149a2021-8ef6-4133-96b8-81f8d5b7f1f5",
        "Security Key by Yubico with NFC",
    ),
    (
        "a4e9fc6d-4cbe-4758-b8ba-37598bb5bbaa",
        "Security Key NFC by Yubico",
    ),
];

/// The name shown when the AAGUID is zero (as some authenticators and browsers send it) or
/// not in the table.
pub fn generic_name(security_key: bool) -> &'static str {
    if security_key {
        "Security key"
    } else {
        "Passkey"
    }
}

/// The provider's name for `aaguid`, if it is a known one.
pub fn name_of(aaguid: &Uuid) -> Option<&'static str> {
    let text = aaguid.hyphenated().to_string();
    KNOWN.iter().find(|(id, _)| *id == text).map(|(_, n)| *n)
}

/// The AAGUID in a registration's `attestationObject`: CBOR `{fmt, attStmt, authData}`, whose
/// `authData` is rpIdHash (32) ‖ flags (1) ‖ signCount (4) ‖ attested credential data, which
/// starts with the 16-byte AAGUID when flag AT (0x40) is set (WebAuthn §6.1, §6.5.1).
///
/// webauthn-rs keeps the AAGUID only for attested registrations (its `AttestationMetadata`),
/// and Latchkey asks for `attestation: none`; so it is read here. Any malformed input gives
/// `None`: webauthn-rs has already verified the registration, this is only for display.
pub fn aaguid_of(attestation_object: &[u8]) -> Option<Uuid> {
    let map: BTreeMap<String, serde_cbor_2::Value> =
        serde_cbor_2::from_slice(attestation_object).ok()?;
    let serde_cbor_2::Value::Bytes(auth_data) = map.get("authData")? else {
        return None;
    };
    let flags = *auth_data.get(32)?;
    if flags & 0x40 == 0 {
        return None;
    }
    let bytes: [u8; 16] = auth_data.get(37..53)?.try_into().ok()?;
    Some(Uuid::from_bytes(bytes))
}

/// What to call a newly registered authenticator.
pub fn display_name(attestation_object: &[u8], security_key: bool) -> (Option<Uuid>, String) {
    let aaguid = aaguid_of(attestation_object).filter(|a| !a.is_nil());
    let name = aaguid
        .as_ref()
        .and_then(name_of)
        .unwrap_or(generic_name(security_key));
    (aaguid, name.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn attestation_object(flags: u8, aaguid: &[u8; 16]) -> Vec<u8> {
        let mut auth_data = vec![0u8; 32];
        auth_data.push(flags);
        auth_data.extend_from_slice(&[0, 0, 0, 1]);
        auth_data.extend_from_slice(aaguid);
        auth_data.extend_from_slice(&[0, 2, 0xAB, 0xCD]);
        let mut map = BTreeMap::new();
        map.insert(
            "fmt".to_owned(),
            serde_cbor_2::Value::Text("none".to_owned()),
        );
        map.insert(
            "attStmt".to_owned(),
            serde_cbor_2::Value::Map(BTreeMap::new()),
        );
        map.insert("authData".to_owned(), serde_cbor_2::Value::Bytes(auth_data));
        serde_cbor_2::to_vec(&map).unwrap()
    }

    #[test]
    fn known_aaguids_are_named() {
        let icloud: Uuid = "fbfc3007-154e-4ecc-8c0b-6e020557d7bd".parse().unwrap();
        let obj = attestation_object(0x45, icloud.as_bytes());
        assert_eq!(aaguid_of(&obj), Some(icloud));
        assert_eq!(display_name(&obj, false).1, "iCloud Keychain");
        let yubikey: Uuid = "cb69481e-8ff7-4039-93ec-0a2729a154a8".parse().unwrap();
        let obj = attestation_object(0x41, yubikey.as_bytes());
        assert_eq!(display_name(&obj, true).1, "YubiKey 5 Series");
    }

    #[test]
    fn zero_unknown_or_malformed_get_the_generic_name() {
        let obj = attestation_object(0x45, &[0; 16]);
        assert_eq!(display_name(&obj, false), (None, "Passkey".to_owned()));
        let obj = attestation_object(0x45, &[7; 16]);
        assert_eq!(
            display_name(&obj, true),
            (Some(Uuid::from_bytes([7; 16])), "Security key".to_owned())
        );
        // No attested credential data (AT clear), truncated, not CBOR.
        assert_eq!(aaguid_of(&attestation_object(0x05, &[1; 16])), None);
        assert_eq!(aaguid_of(&[0xa0]), None);
        assert_eq!(aaguid_of(b"not cbor at all"), None);
    }

    #[test]
    fn table_entries_are_lowercase_uuids() {
        for (id, name) in KNOWN {
            let parsed: Uuid = id.parse().unwrap();
            assert_eq!(parsed.hyphenated().to_string(), *id);
            assert!(!name.is_empty());
        }
    }
}
