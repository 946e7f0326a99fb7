//! One-time codes: authenticator-app TOTP, email OTP and recovery codes (docs/wire.md §5.1,
//! VerifyResponse), to NIST SP 800-63B §5.1.3/§5.1.4 and OWASP ASVS V2.7/V2.8.
//!
//! - **TOTP** (RFC 6238, SHA-1, 6 digits, 30 s: what Google Authenticator and 1Password accept).
//!   The 160-bit secret comes from the CSPRNG and is sealed with the tenant's data key. Steps
//!   −1, 0 and +1 are accepted; the authenticator remembers the last step it accepted and never
//!   accepts that step or an earlier one again. Enrollment stays pending until the first code.
//! - **Email OTP**: six digits drawn uniformly from the CSPRNG, stored only as an HMAC under the
//!   OTP pepper (bound to tenant and challenge), live ten minutes, single use, at most five
//!   attempts per challenge; re-sending has a cooldown.
//! - **Recovery codes**: ten, issued when a user's first strong authenticator (TOTP, passkey or
//!   security key) is enrolled, returned once, stored as keyed hashes, each usable once,
//!   regenerable.
//! - Every user's failures are throttled: at most [`FAILURES_PER_HOUR`] in any rolling hour.
//!
//! **Constant-time comparison.** TOTP codes are compared with `subtle::ConstantTimeEq` in
//! [`codes_match`]: the six submitted digits against each of the three expected codes, all
//! three always computed and compared. `ct_eq` on equal-length byte slices examines every byte
//! whatever the contents, so the time taken does not reveal how many leading digits were right;
//! lengths are public (always 6), so the early return on a length mismatch reveals nothing.
//! Email codes are checked with [`PurposeKeys::verify`](crate::crypto::keys::PurposeKeys::verify),
//! the HMAC crate's constant-time tag check, under the current and then the previous pepper
//! (which pepper matched is no secret). Recovery codes are looked up by
//! their keyed hash: the lookup key is an HMAC under a secret pepper, so its timing can tell an
//! attacker nothing about stored codes.
use crate::crypto::FieldContext;
use crate::crypto::keys::{Purpose, PurposeKey, purpose_keys};
use crate::crypto::{hex, unhex};
use crate::domain::Error;
use crate::domain::Services;
use crate::domain::audit::{AuditContext, Change};
use crate::domain::authenticators::{AuthenticatorRecord, PENDING_SECONDS, UserAuthenticators};
use crate::domain::authz::{Access, Grant, Proof};
use crate::domain::ceremony::{
    CeremonyKind, bound_id, challenge_pk, commit, now_epoch, settle_enrollment, settle_own_action,
    stamp,
};
use crate::domain::keyring;
use crate::domain::machine::{ActionState, Event, VerificationMethod};
use crate::domain::retry::{self, Backoff};
use crate::domain::tenants::Tenant;
use crate::domain::tokens;
use crate::domain::users::{audit_ref, get_user, new_user_item, user_pk};
use crate::ports::mailer::Email;
use crate::ports::random::RandomExt as _;
use crate::ports::store::{Condition, Item, Query, WriteOp};
use serde::Serialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// How long an emailed code lives.
pub const CODE_SECONDS: i64 = 10 * 60;
/// Wrong codes allowed per challenge; the next attempt fails the challenge.
pub const MAX_ATTEMPTS: i64 = 5;
/// Failed verifications allowed per user in any rolling hour (NIST SP 800-63B §5.2.2: ≤ 100).
pub const FAILURES_PER_HOUR: i64 = 100;
/// Minimum time between two emailed codes for one challenge.
pub const RESEND_COOLDOWN_SECONDS: i64 = 30;
/// Recovery codes issued at once.
pub const RECOVERY_CODES: usize = 10;
/// TOTP parameters.
const TOTP_DIGITS: usize = 6;
const TOTP_STEP: u64 = 30;

pub const CODE_INVALID_OR_EXPIRED: &str = "CODE_INVALID_OR_EXPIRED";
pub const MAX_ATTEMPTS_EXCEEDED: &str = "MAX_ATTEMPTS_EXCEEDED";

/// `VerifyResponse` (docs/wire.md §5.1). A wrong code is a 200 with `isVerified: false`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    pub is_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_authenticator: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

impl VerifyResponse {
    fn failed(reason: &'static str) -> Self {
        Self {
            failure_reason: Some(reason),
            ..Self::default()
        }
    }
}

/// `POST /client/user-authenticators/totp`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TotpEnrollment {
    pub user_authenticator_id: String,
    pub user_id: String,
    pub uri: String,
    pub secret: String,
}

/// `POST /client/user-authenticators/email-otp`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailEnrollment {
    pub user_authenticator_id: String,
    pub user_id: String,
}

fn field<'a>(tenant: &'a Tenant, item_key: &'a str, name: &'a str) -> FieldContext<'a> {
    FieldContext {
        tenant_id: &tenant.id,
        item: item_key,
        field: name,
    }
}

fn auth_item_key(user_id: &str, aid: &str) -> String {
    format!("U#{user_id}#AUTH#{aid}")
}

async fn seal(
    services: &Services,
    tenant: &Tenant,
    item_key: &str,
    name: &str,
    value: &str,
) -> Result<String, Error> {
    Ok(services
        .envelope
        .seal(
            &tenant.data_key,
            field(tenant, item_key, name),
            value.as_bytes(),
        )
        .await?)
}

async fn open(
    services: &Services,
    tenant: &Tenant,
    item_key: &str,
    item: &Item,
    name: &str,
) -> Result<Option<String>, Error> {
    let Some(sealed) = item.str(name) else {
        return Ok(None);
    };
    let bytes = services
        .envelope
        .open(&tenant.data_key, field(tenant, item_key, name), sealed)
        .await?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::Internal("sealed field is not text".into()))
}

/// The constant-time comparison every code check goes through (see the module docs).
pub fn codes_match(expected: &[u8], given: &[u8]) -> bool {
    expected.len() == given.len() && bool::from(expected.ct_eq(given))
}

/// `parts`, each prefixed with its length, so that no two lists frame to the same bytes.
fn framed(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&(p.len() as u64).to_be_bytes());
        out.extend_from_slice(p.as_bytes());
    }
    out
}

fn keyed_hash(key: &PurposeKey, parts: &[&str]) -> [u8; 32] {
    crate::crypto::keys::mac(key, &framed(parts))
}

/// A six-digit code, uniform over 000000–999999 (`below` rejects the biased tail).
fn new_code(services: &Services) -> String {
    format!("{:06}", services.random.below(1_000_000))
}

/// Only digits, exactly six: anything else is wrong without looking further.
fn well_formed(code: &str) -> bool {
    code.len() == TOTP_DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

// -------------------------------------------------------------------------------------------
// Throttling and per-challenge attempts
// -------------------------------------------------------------------------------------------

fn throttle_sk(hour: i64) -> String {
    format!("THROTTLE#{hour}")
}

/// Failures in the current and the previous hour bucket. Requiring their sum to stay below the
/// limit bounds the failures in any rolling 60 minutes (which always lie within two buckets).
async fn recent_failures(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
) -> Result<(i64, Option<Item>), Error> {
    let hour = now_epoch(services).div_euclid(3600);
    let pk = user_pk(&tenant.id, user_id);
    let current = services.store.get(&pk, &throttle_sk(hour)).await?;
    let previous = services.store.get(&pk, &throttle_sk(hour - 1)).await?;
    let count = |i: &Option<Item>| {
        i.as_ref()
            .and_then(|i| i.attrs.get("failures"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    Ok((count(&current) + count(&previous), current))
}

/// The write that counts one more failure in this hour's bucket.
fn count_failure(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
    current: Option<Item>,
) -> WriteOp {
    let hour = now_epoch(services).div_euclid(3600);
    match current {
        Some(item) => {
            let v = item.version;
            let n = item
                .attrs
                .get("failures")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            WriteOp::Put {
                item: item.with("failures", n + 1).with_version(v + 1),
                condition: Condition::Version(v),
            }
        }
        None => WriteOp::Put {
            item: Item::new(user_pk(&tenant.id, user_id), throttle_sk(hour))
                .with("failures", 1)
                .with_ttl((hour + 3) * 3600),
            condition: Condition::Absent,
        },
    }
}

/// What a failed attempt did.
enum Failure {
    /// Wrong code; more attempts remain.
    Wrong,
    /// The challenge has had its attempts: it is failed, and so is its action.
    Exhausted,
}

/// Failures of one user racing on the hourly counter: 8 tries, waits below 20, 40, 80, then
/// 160 ms.
const FAILURE_BACKOFF: Backoff = Backoff {
    attempts: 8,
    base_ms: 20,
    cap_ms: 160,
};

/// Records one failed attempt against challenge `ch_id` (created if absent): the attempt count,
/// the user's hourly failure count, and — on the attempt that exhausts the challenge — the
/// action moved to CHALLENGE_FAILED; all with its audit event in one transaction. Concurrent
/// failures of one user meet on the hourly counter: a lost race re-reads and tries again.
async fn record_failure(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    access: &Access,
    ch_id: &str,
    method: VerificationMethod,
    what: &'static str,
) -> Result<Failure, Error> {
    let claims = access.claims()?;
    let user_id = &claims.sub;
    // Only an action waiting for a challenge fails with the challenge; completing an
    // enrollment on an ALLOW action with wrong codes leaves the action as it is.
    let challenged = access
        .subject
        .as_ref()
        .is_some_and(|s| s.action.state == ActionState::ChallengeRequired);
    let contended = retry::contended(&FAILURE_BACKOFF, &*services.random, |_| async move {
        let ch = services
            .store
            .get(&challenge_pk(&tenant.id, ch_id), "CH")
            .await?;
        let (_, current) = recent_failures(services, tenant, user_id).await?;
        let now = now_epoch(services);
        let mut ops = vec![count_failure(services, tenant, user_id, current)];
        let attempts = ch
            .as_ref()
            .and_then(|c| c.attrs.get("attempts"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
            + 1;
        let exhausted = attempts >= MAX_ATTEMPTS;
        match ch {
            Some(item) => {
                let v = item.version;
                ops.push(WriteOp::Put {
                    item: item
                        .with("attempts", attempts)
                        .with("failed", exhausted)
                        .with_version(v + 1),
                    condition: Condition::Version(v),
                });
            }
            None => ops.push(WriteOp::Put {
                item: Item::new(challenge_pk(&tenant.id, ch_id), "CH")
                    .with("kind", CeremonyKind::of_code_method(method).as_str())
                    .with("userId", user_id.clone())
                    .with("attempts", attempts)
                    .with("failed", exhausted)
                    .with("expiresAt", now + CODE_SECONDS)
                    .with_ttl(now + CODE_SECONDS + 3600),
                condition: Condition::Absent,
            }),
        }
        if exhausted && challenged {
            ops.extend(
                settle_own_action(services, tenant, access, Event::CeremonyFailed, method).await?,
            );
        }
        let change = Change {
            action: what,
            target: audit_ref(services, &tenant.id, user_id).await?,
            summary: json!({ "method": method, "attempt": attempts, "exhausted": exhausted }),
            ops,
        };
        match services.journal.commit(&tenant.id, ctx, change).await {
            Ok(_) => Ok::<_, Error>(Some(if exhausted {
                Failure::Exhausted
            } else {
                Failure::Wrong
            })),
            Err(crate::domain::audit::CommitError::Condition { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    contended.ok_or(Error::Conflict("too many concurrent attempts; retry"))
}

/// Commits a verified code — its writes, the settled action and the audit event, in one
/// transaction — and issues the access token. A lost race (a condition failed because another
/// request used the same step, code or challenge first) is a failed verification.
async fn succeed(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    access: &Access,
    change: Change,
    proof: Option<Proof>,
    response: VerifyResponse,
) -> Result<VerifyResponse, Error> {
    let claims = access.claims()?;
    match services.journal.commit(&tenant.id, ctx, change).await {
        Ok(_) => {}
        Err(crate::domain::audit::CommitError::Condition { .. }) => {
            return Ok(VerifyResponse::failed(CODE_INVALID_OR_EXPIRED));
        }
        Err(e) => return Err(e.into()),
    }
    let access_token = tokens::issue(
        services,
        &tenant.id,
        &claims.sub,
        &claims.act,
        &claims.idk,
        claims.scope.clone(),
        proof,
    )
    .await?;
    Ok(VerifyResponse {
        is_verified: true,
        access_token: Some(access_token),
        ..response
    })
}

/// Refuses before any code is looked at when the user is over the hourly limit.
async fn check_throttle(services: &Services, tenant: &Tenant, user_id: &str) -> Result<(), Error> {
    let (failures, _) = recent_failures(services, tenant, user_id).await?;
    if failures >= FAILURES_PER_HOUR {
        return Err(Error::TooManyRequests);
    }
    Ok(())
}

// -------------------------------------------------------------------------------------------
// Authenticator items
// -------------------------------------------------------------------------------------------

fn aid_of(item: &Item) -> String {
    item.sk.trim_start_matches("AUTH#").to_owned()
}

/// The wire view of an authenticator this module verified.
fn view(item: &Item, user_id: &str, verified_at: &str) -> Value {
    json!({
        "userAuthenticatorId": aid_of(item),
        "userId": user_id,
        "verificationMethod": item.str("verificationMethod").unwrap_or_default(),
        "createdAt": item.str("createdAt").unwrap_or_default(),
        "verifiedAt": verified_at,
        "isDefault": item.attrs.get("isDefault").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// A new pending enrollment of `method`: bound to the action that started it, expiring in
/// [`PENDING_SECONDS`].
fn pending_item(
    services: &Services,
    tenant: &Tenant,
    access: &Access,
    aid: &str,
    method: VerificationMethod,
) -> Result<Item, Error> {
    let claims = access.claims()?;
    let expires = now_epoch(services) + PENDING_SECONDS;
    Ok(
        Item::new(user_pk(&tenant.id, &claims.sub), format!("AUTH#{aid}"))
            .with("verificationMethod", method.as_str())
            .with("createdAt", stamp(services)?)
            .with("isDefault", false)
            .with("pending", true)
            .with("pendingExpiresAt", expires)
            .with("startedBy", access.action_ref().unwrap_or_default())
            .with_ttl(expires + 86_400),
    )
}

/// Stores a pending enrollment `item` (replacing every earlier pending one of that method,
/// and creating the user if new), with its audit event `what`, in one transaction.
async fn start_enrollment(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    access: &Access,
    what: &'static str,
    item: Item,
) -> Result<(), Error> {
    let claims = access.claims()?;
    let user_id = &claims.sub;
    let aid = aid_of(&item);
    let method = item
        .str("verificationMethod")
        .unwrap_or_default()
        .to_owned();
    let mut ops = vec![WriteOp::Put {
        item,
        condition: Condition::Absent,
    }];
    for old in &access.authenticators()?.records {
        if !old.is_verified() && old.method.as_str() == method {
            ops.push(WriteOp::Delete {
                pk: old.item.pk.clone(),
                sk: old.item.sk.clone(),
                condition: Condition::None,
            });
        }
    }
    ops.extend(ensure_user(services, tenant, user_id).await?);
    let change = Change {
        action: what,
        target: audit_ref(services, &tenant.id, user_id).await?,
        summary: json!({ "authenticatorId": aid }),
        ops,
    };
    commit(services, tenant, ctx, change).await
}

/// What a verified code does to its authenticator: a challenge answered (`Verified`) or an
/// enrollment completed (`Pending`, with the matrix's enroll right re-checked).
fn completes(record: &AuthenticatorRecord, access: &Access, now: i64) -> Result<bool, Error> {
    let this = access.action_ref().unwrap_or_default();
    if record.is_verified() {
        access.require(Grant::Challenge)?;
        if !record.answers(&this) {
            return Err(Error::Refused(
                "An authenticator cannot answer the challenge of the action it was enrolled on."
                    .into(),
            ));
        }
        Ok(false)
    } else if record.is_pending_for(&this, now) {
        access.require(Grant::Enroll)?;
        Ok(true)
    } else {
        Err(Error::Invalid(
            "The enrollment has expired or belongs to another action; start it again.".into(),
        ))
    }
}

/// The writes and the token proof of a verified code. For a completed enrollment: the item
/// becomes verified (recording the action it was enrolled on), every other pending enrollment
/// goes, and the action is answered if this is the user's first authenticator. For an
/// answered challenge: the action moves to CHALLENGE_SUCCEEDED.
async fn settle_code(
    services: &Services,
    tenant: &Tenant,
    access: &Access,
    updated: &mut Item,
    enrolling: bool,
    method: VerificationMethod,
) -> Result<(Vec<WriteOp>, Option<Proof>), Error> {
    let now_text = stamp(services)?;
    if enrolling {
        updated.attrs.remove("pending");
        updated.attrs.remove("pendingExpiresAt");
        updated.attrs.remove("startedBy");
        updated.ttl = None;
        updated
            .attrs
            .insert("verifiedAt".into(), Value::String(now_text));
        updated.attrs.insert(
            "enrolledFor".into(),
            Value::String(access.action_ref().unwrap_or_default()),
        );
        let keep = aid_of(updated);
        let mut ops = access.authenticators()?.drop_pending(Some(&keep));
        let (op, proof) = settle_enrollment(services, tenant, access, method).await?;
        ops.extend(op);
        return Ok((ops, proof));
    }
    let op = settle_own_action(services, tenant, access, Event::CeremonySucceeded, method).await?;
    Ok((
        op.into_iter().collect(),
        Some(Proof {
            method,
            at: now_epoch(services),
        }),
    ))
}

/// The writes that make a user's user item exist.
async fn ensure_user(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
) -> Result<Vec<WriteOp>, Error> {
    Ok(
        match services
            .store
            .get(&user_pk(&tenant.id, user_id), "USER")
            .await?
        {
            Some(_) => Vec::new(),
            None => vec![
                WriteOp::Put {
                    item: new_user_item(services, &tenant.id, user_id)?,
                    condition: Condition::Absent,
                },
                crate::domain::users::listed(&tenant.id, user_id),
            ],
        },
    )
}

mod email;
mod recovery;
mod totp;

pub use email::{challenge_email, enroll_email, verify_email};
pub(crate) use recovery::first_strong_codes;
pub use recovery::{regenerate_recovery_codes, verify_recovery_code};
pub use totp::{TotpParams, enroll_totp, verify_totp};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::recovery::normalise_recovery;
    use super::*;

    #[test]
    fn constant_time_match_needs_equal_length_and_bytes() {
        assert!(codes_match(b"123456", b"123456"));
        assert!(!codes_match(b"123456", b"123457"));
        assert!(!codes_match(b"123456", b"12345"));
        assert!(!codes_match(b"", b"1"));
    }

    #[test]
    fn recovery_codes_normalise_case_and_separators() {
        assert_eq!(normalise_recovery("AbCde-FgHjK"), "abcdefghjk");
        assert_eq!(normalise_recovery(" abcde fghjk "), "abcdefghjk");
    }

    #[test]
    fn only_six_digits_are_well_formed() {
        assert!(well_formed("012345"));
        assert!(!well_formed("12345"));
        assert!(!well_formed("1234567"));
        assert!(!well_formed("12345a"));
        assert!(!well_formed("１２３４５６"));
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(unhex(&hex([0, 1, 254, 255])), Some(vec![0, 1, 254, 255]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
