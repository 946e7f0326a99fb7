//! Idempotency keys of the writes that add an update: the key's hash and the request's
//! fingerprint are stored (`IDEM#…`, created only if absent) in the write's own transaction, so
//! a retry finds what the first request made, and another request under the key is refused.
use super::*;

const IDEM_PREFIX: &str = "IDEM#";

pub(super) fn idem_sk(key: &str) -> String {
    format!("{IDEM_PREFIX}{}", hex(Sha256::digest(key.as_bytes())))
}

/// What identifies a request under its key: the operation and its body.
pub(super) fn fingerprint<T: Serialize>(operation: &str, body: &T) -> String {
    let text = serde_json::to_string(body).unwrap_or_default();
    hex(Sha256::digest(format!("{operation}\0{text}").as_bytes()))
}

pub(super) fn check_key(key: &str) -> Result<(), Error> {
    let ok = (8..=128).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(
            "Idempotency-Key must be 8-128 visible ASCII characters".into(),
        ))
    }
}

/// The earlier result for `key`, if the key was used; a different request under the same key
/// is a conflict.
pub(super) async fn replay(
    services: &Services,
    key: &str,
    print: &str,
) -> Result<Option<Recorded>, Error> {
    let Some(item) = services.store.get(PARTITION, &idem_sk(key)).await? else {
        return Ok(None);
    };
    if item.str("fingerprint") != Some(print) {
        return Err(Error::Conflict(
            "this Idempotency-Key was used for a different request",
        ));
    }
    let id = item.str("incidentId").unwrap_or_default();
    let seq = item
        .u64("seq")
        .and_then(|s| u32::try_from(s).ok())
        .unwrap_or(0);
    let incident = get_incident(services, id)
        .await?
        .ok_or_else(|| Error::Internal("idempotency record names a missing incident".into()))?;
    Ok(Some(Recorded {
        incident,
        seq,
        replayed: true,
    }))
}

pub(super) fn idem_op(key: &str, print: &str, incident_id: &str, seq: u32) -> WriteOp {
    WriteOp::Put {
        item: Item::new(PARTITION, idem_sk(key))
            .with("fingerprint", print)
            .with("incidentId", incident_id)
            .with("seq", seq),
        condition: Condition::Absent,
    }
}
