//! One-time codes: authenticator-app TOTP, email OTP and recovery codes (API.md §5.1,
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
//! **Constant-time comparison.** Codes are compared with `subtle::ConstantTimeEq` in
//! [`codes_match`] (TOTP: the six submitted digits against each of the three expected codes,
//! all three always computed and compared; email OTP: the 32-byte HMAC of the submitted code
//! against the stored HMAC, under the current and the previous pepper). `ct_eq` on equal-length
//! byte slices examines every byte whatever the contents, so the time taken does not reveal how
//! many leading characters were right. Lengths are public (always 6 digits / 32 bytes), so the
//! early return on a length mismatch reveals nothing secret. Recovery codes are looked up by
//! their keyed hash: the lookup key is an HMAC under a secret pepper, so its timing can tell an
//! attacker nothing about stored codes.
use crate::crypto::FieldContext;
use crate::crypto::keys::{Purpose, PurposeKey, purpose_keys};
use crate::crypto::{hex, unhex};
use crate::domain::Error;
use crate::domain::audit::{AuditContext, Change};
use crate::domain::passkeys::{bound_id, challenge_pk, commit, settle_action};
use crate::domain::tenants::Tenant;
use crate::domain::tokens::{self, Claims};
use crate::domain::users::{audit_ref, get_user, new_user_item, user_pk};
use crate::ports::mailer::Email;
use crate::ports::random::RandomExt as _;
use crate::ports::store::{Condition, Item, Query, WriteOp};
use crate::runtime::Services;
use hmac::{Hmac, Mac as _};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use time::format_description::well_known::Rfc3339;
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

/// `VerifyResponse` (API.md §5.1). A wrong code is a 200 with `isVerified: false`.
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

fn now_epoch(services: &Services) -> i64 {
    services.clock.now().unix_timestamp()
}

fn stamp(services: &Services) -> Result<String, Error> {
    services
        .clock
        .now()
        .format(&Rfc3339)
        .map_err(|e| Error::Internal(e.to_string()))
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

fn keyed_hash(key: &PurposeKey, parts: &[&str]) -> Vec<u8> {
    // HMAC-SHA256 accepts any key length, so `new_from_slice` cannot fail for 32 bytes.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_slice()) else {
        return Vec::new();
    };
    for p in parts {
        mac.update(&(p.len() as u64).to_be_bytes());
        mac.update(p.as_bytes());
    }
    mac.finalize().into_bytes().to_vec()
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

/// Records one failed attempt against challenge `ch_id` (created if absent): the attempt count,
/// the user's hourly failure count, and — on the attempt that exhausts the challenge — the
/// action moved to CHALLENGE_FAILED; all with its audit event in one transaction. Concurrent
/// failures of one user meet on the hourly counter: a lost race re-reads and tries again.
async fn record_failure(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
    ch_id: &str,
    method: &str,
    what: &'static str,
) -> Result<Failure, Error> {
    const ROUNDS: usize = 8;
    let user_id = &claims.sub;
    for round in 0..ROUNDS {
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
                    .with("kind", method)
                    .with("userId", user_id.clone())
                    .with("attempts", attempts)
                    .with("failed", exhausted)
                    .with("expiresAt", now + CODE_SECONDS)
                    .with_ttl(now + CODE_SECONDS + 3600),
                condition: Condition::Absent,
            }),
        }
        if exhausted {
            let action = Some((claims.act.clone(), claims.idk.clone()));
            let (op, _, _) = settle_action(
                services,
                tenant,
                user_id,
                action,
                "CHALLENGE_FAILED",
                method,
            )
            .await?;
            ops.extend(op);
        }
        let change = Change {
            action: what,
            target: audit_ref(services, &tenant.id, user_id).await?,
            summary: json!({ "method": method, "attempt": attempts, "exhausted": exhausted }),
            ops,
        };
        match services.journal.commit(&tenant.id, ctx, change).await {
            Ok(_) => {
                return Ok(if exhausted {
                    Failure::Exhausted
                } else {
                    Failure::Wrong
                });
            }
            Err(crate::domain::audit::CommitError::Condition { .. }) if round + 1 < ROUNDS => {
                let jitter = services.random.below(20 * (round as u64 + 1));
                tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
            }
            Err(crate::domain::audit::CommitError::Condition { .. }) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Conflict("too many concurrent attempts; retry"))
}

/// Commits a verified code — its writes, the settled action and the audit event, in one
/// transaction — and issues the access token. A lost race (a condition failed because another
/// request used the same step, code or challenge first) is a failed verification.
async fn succeed(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
    change: Change,
    (act, key): (&str, &str),
    response: VerifyResponse,
) -> Result<VerifyResponse, Error> {
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
        act,
        key,
        claims.scope.clone(),
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

async fn authenticators_of(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
    method: &str,
) -> Result<Vec<Item>, Error> {
    let mut items: Vec<Item> = services
        .store
        .query(
            Query::partition(user_pk(&tenant.id, user_id))
                .prefix("AUTH#")
                .limit(1000),
        )
        .await?
        .items
        .into_iter()
        .filter(|i| i.str("verificationMethod") == Some(method))
        .collect();
    // Verified first, then pending enrollments.
    items.sort_by_key(|i| i.str("verifiedAt").is_none());
    Ok(items)
}

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

/// Whether the user already has a verified strong authenticator (or recovery codes).
async fn has_strong(services: &Services, tenant: &Tenant, user_id: &str) -> Result<bool, Error> {
    let items = services
        .store
        .query(
            Query::partition(user_pk(&tenant.id, user_id))
                .prefix("AUTH#")
                .limit(1000),
        )
        .await?
        .items;
    Ok(items.iter().any(|i| {
        i.str("verifiedAt").is_some()
            && matches!(
                i.str("verificationMethod"),
                Some("AUTHENTICATOR_APP" | "PASSKEY" | "SECURITY_KEY")
            )
    }))
}

/// Enrolling an authenticator for a user who already has one needs the token's scope to say
/// `add:authenticators` (API.md §7, AuthScope): otherwise a token issued to challenge a user
/// would let whoever holds it (for instance someone who knows only the password) enroll an
/// authenticator of their own and answer the challenge with it.
pub async fn check_may_enroll(
    services: &Services,
    tenant: &Tenant,
    claims: &Claims,
) -> Result<(), Error> {
    let scoped = claims
        .scope
        .as_deref()
        .is_some_and(|s| s.split_whitespace().any(|p| p == "add:authenticators"));
    if scoped {
        return Ok(());
    }
    let enrolled = services
        .store
        .query(
            Query::partition(user_pk(&tenant.id, &claims.sub))
                .prefix("AUTH#")
                .limit(1000),
        )
        .await?
        .items
        .iter()
        .any(|i| i.str("verifiedAt").is_some());
    if enrolled {
        return Err(Error::Forbidden);
    }
    Ok(())
}

/// The writes that make a user's user item exist.
async fn ensure_user(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
) -> Result<Option<WriteOp>, Error> {
    Ok(
        match services
            .store
            .get(&user_pk(&tenant.id, user_id), "USER")
            .await?
        {
            Some(_) => None,
            None => Some(WriteOp::Put {
                item: new_user_item(services, &tenant.id, user_id)?,
                condition: Condition::Absent,
            }),
        },
    )
}

// -------------------------------------------------------------------------------------------
// Recovery codes
// -------------------------------------------------------------------------------------------

const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// Recovery codes as shown: `xxxxx-xxxxx`, 10 characters from a 31-letter alphabet without
/// look-alikes (≈ 49.5 bits each).
fn new_recovery_code(services: &Services) -> String {
    let mut out = String::with_capacity(11);
    for i in 0..10 {
        if i == 5 {
            out.push('-');
        }
        let n = services.random.below(RECOVERY_ALPHABET.len() as u64) as usize;
        out.push(char::from(RECOVERY_ALPHABET[n]));
    }
    out
}

fn normalise_recovery(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn recovery_sk(key: &PurposeKey, tenant: &Tenant, user_id: &str, code: &str) -> String {
    format!(
        "RC#{}",
        hex(keyed_hash(
            key,
            &[&tenant.id, user_id, "recovery", &normalise_recovery(code)]
        ))
    )
}

/// Fresh codes and the writes that replace the user's old ones.
async fn recovery_ops(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
) -> Result<(Vec<String>, Vec<WriteOp>), Error> {
    let pepper = purpose_keys(services.secrets.as_ref(), Purpose::OtpPepper).await?;
    let pk = user_pk(&tenant.id, user_id);
    let mut ops: Vec<WriteOp> = services
        .store
        .query(Query::partition(pk.clone()).prefix("RC#").limit(1000))
        .await?
        .items
        .into_iter()
        .map(|old| WriteOp::Delete {
            pk: old.pk,
            sk: old.sk,
            condition: Condition::None,
        })
        .collect();
    let now = stamp(services)?;
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| new_recovery_code(services))
        .collect();
    for code in &codes {
        ops.push(WriteOp::Put {
            item: Item::new(&pk, recovery_sk(&pepper.current, tenant, user_id, code))
                .with("createdAt", now.clone()),
            condition: Condition::Absent,
        });
    }
    Ok((codes, ops))
}

/// `POST /client/user-authenticators/recovery-codes`: a new set, the old ones void. Only for a
/// user with a strong authenticator.
pub async fn regenerate_recovery_codes(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
) -> Result<Vec<String>, Error> {
    if !has_strong(services, tenant, &claims.sub).await? {
        return Err(Error::Invalid(
            "Recovery codes need a verified authenticator app, passkey or security key.".into(),
        ));
    }
    let (codes, ops) = recovery_ops(services, tenant, &claims.sub).await?;
    let change = Change {
        action: "recovery_codes.regenerate",
        target: audit_ref(services, &tenant.id, &claims.sub).await?,
        summary: json!({ "count": codes.len() }),
        ops,
    };
    commit(services, tenant, ctx, change).await?;
    Ok(codes)
}

/// Recovery codes for a user's first strong authenticator: `Some` (with the writes) only if
/// the user had none before.
pub(crate) async fn first_strong_codes(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
) -> Result<Option<(Vec<String>, Vec<WriteOp>)>, Error> {
    if has_strong(services, tenant, user_id).await? {
        return Ok(None);
    }
    let existing = services
        .store
        .query(
            Query::partition(user_pk(&tenant.id, user_id))
                .prefix("RC#")
                .limit(1),
        )
        .await?
        .items;
    if !existing.is_empty() {
        return Ok(None);
    }
    Ok(Some(recovery_ops(services, tenant, user_id).await?))
}

/// `POST /client/verify/recovery-code {verificationCode}`: uses one code up.
pub async fn verify_recovery_code(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
    code: &str,
) -> Result<VerifyResponse, Error> {
    let user_id = &claims.sub;
    check_throttle(services, tenant, user_id).await?;
    let ch_id = bound_id(tenant, claims, "rc");
    let ch = services
        .store
        .get(&challenge_pk(&tenant.id, &ch_id), "CH")
        .await?;
    if ch
        .as_ref()
        .is_some_and(|c| c.attrs.get("failed") == Some(&Value::Bool(true)))
    {
        return Ok(VerifyResponse::failed(MAX_ATTEMPTS_EXCEEDED));
    }
    let pepper = purpose_keys(services.secrets.as_ref(), Purpose::OtpPepper).await?;
    let pk = user_pk(&tenant.id, user_id);
    let mut found = None;
    if normalise_recovery(code).len() == 10 {
        for key in std::iter::once(&pepper.current).chain(pepper.previous.iter()) {
            let sk = recovery_sk(key, tenant, user_id, code);
            if let Some(item) = services.store.get(&pk, &sk).await? {
                found = Some(item);
                break;
            }
        }
    }
    let Some(item) = found else {
        return Ok(
            match record_failure(
                services,
                tenant,
                ctx,
                claims,
                &ch_id,
                "RECOVERY_CODE",
                "recovery_code.verify.failed",
            )
            .await?
            {
                Failure::Wrong => VerifyResponse::failed(CODE_INVALID_OR_EXPIRED),
                Failure::Exhausted => VerifyResponse::failed(MAX_ATTEMPTS_EXCEEDED),
            },
        );
    };
    let action = Some((claims.act.clone(), claims.idk.clone()));
    let (action_op, code_name, key) = settle_action(
        services,
        tenant,
        user_id,
        action,
        "CHALLENGE_SUCCEEDED",
        "RECOVERY_CODE",
    )
    .await?;
    // Deleting the code under an existence condition makes it single-use, even when raced.
    let mut ops = vec![WriteOp::Delete {
        pk: item.pk,
        sk: item.sk,
        condition: Condition::Exists,
    }];
    ops.extend(action_op);
    let change = Change {
        action: "recovery_code.verify",
        target: audit_ref(services, &tenant.id, user_id).await?,
        summary: json!({ "actionCode": code_name }),
        ops,
    };
    succeed(
        services,
        tenant,
        ctx,
        claims,
        change,
        (&code_name, &key),
        VerifyResponse::default(),
    )
    .await
}

// -------------------------------------------------------------------------------------------
// TOTP
// -------------------------------------------------------------------------------------------

fn totp(secret: Secret, issuer: &str, account: &str) -> Result<Totp, Error> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(TOTP_DIGITS as u8)
        .with_step_duration(TOTP_STEP)
        .with_skew(1)
        .with_secret(secret)
        .with_issuer(Some(issuer))
        .with_account_name(account)
        .build()
        .map_err(|e| Error::Internal(format!("totp: {e}")))
}

/// What the user sees the account as in their app: their email, username, or id; `:` is the
/// label separator of the otpauth URI, so it is replaced.
async fn account_label(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
) -> Result<String, Error> {
    let user = get_user(services, tenant, user_id).await?;
    let label = user
        .and_then(|u| u.attributes.email.or(u.attributes.username))
        .unwrap_or_else(|| user_id.to_owned());
    Ok(label.replace(':', "_"))
}

/// `POST /client/user-authenticators/totp`: a new pending authenticator-app enrollment (any
/// earlier pending one is replaced). Complete once a code from it verifies.
pub async fn enroll_totp(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
) -> Result<TotpEnrollment, Error> {
    check_may_enroll(services, tenant, claims).await?;
    let user_id = &claims.sub;
    let issuer = if tenant.settings.name.is_empty() {
        tenant.id.replace(':', "_")
    } else {
        tenant.settings.name.replace(':', "_")
    };
    let account = account_label(services, tenant, user_id).await?;
    // 160 bits, the length RFC 4226 §4 recommends for HMAC-SHA-1.
    let t = totp(
        Secret::from(services.random.bytes::<20>()),
        &issuer,
        &account,
    )?;
    let secret_b32 = t.secret().to_base32();
    let uri = t
        .to_url()
        .map_err(|e| Error::Internal(format!("totp uri: {e}")))?;
    let aid = services.random.hex_id(16);
    let item_key = auth_item_key(user_id, &aid);
    let mut item = Item::new(user_pk(&tenant.id, user_id), format!("AUTH#{aid}"))
        .with("verificationMethod", "AUTHENTICATOR_APP")
        .with("createdAt", stamp(services)?)
        .with("isDefault", false)
        .with("pending", true)
        .with("lastStep", -1);
    for (name, value) in [
        ("otpSecret", secret_b32.as_str()),
        ("otpAlgorithm", "SHA1"),
        ("otpDigits", "6"),
        ("otpStep", "30"),
    ] {
        let sealed = seal(services, tenant, &item_key, name, value).await?;
        item = item.with(name, sealed);
    }
    let mut ops = vec![WriteOp::Put {
        item,
        condition: Condition::Absent,
    }];
    for old in authenticators_of(services, tenant, user_id, "AUTHENTICATOR_APP").await? {
        if old.str("verifiedAt").is_none() {
            ops.push(WriteOp::Delete {
                pk: old.pk,
                sk: old.sk,
                condition: Condition::None,
            });
        }
    }
    ops.extend(ensure_user(services, tenant, user_id).await?);
    let change = Change {
        action: "totp.enroll.start",
        target: audit_ref(services, &tenant.id, user_id).await?,
        summary: json!({ "authenticatorId": aid }),
        ops,
    };
    commit(services, tenant, ctx, change).await?;
    Ok(TotpEnrollment {
        user_authenticator_id: aid,
        user_id: user_id.clone(),
        uri,
        secret: secret_b32,
    })
}

/// The step (of −1, 0, +1 around now) whose code matches, if any. All three are computed and
/// compared in constant time, whichever matches.
fn matching_step(t: &Totp, now: u64, code: &str) -> Option<i64> {
    let step = now / TOTP_STEP;
    let mut found = None;
    for s in [step.saturating_sub(1), step, step + 1] {
        let expected = t.generate(s * TOTP_STEP).to_string();
        if codes_match(expected.as_bytes(), code.as_bytes()) && found.is_none() {
            found = i64::try_from(s).ok();
        }
    }
    found
}

/// `POST /client/verify/totp {verificationCode}`: completes a pending enrollment or answers a
/// challenge for the token's action.
pub async fn verify_totp(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
    code: &str,
) -> Result<VerifyResponse, Error> {
    let user_id = &claims.sub;
    check_throttle(services, tenant, user_id).await?;
    let ch_id = bound_id(tenant, claims, "totp");
    let ch = services
        .store
        .get(&challenge_pk(&tenant.id, &ch_id), "CH")
        .await?;
    if ch
        .as_ref()
        .is_some_and(|c| c.attrs.get("failed") == Some(&Value::Bool(true)))
    {
        return Ok(VerifyResponse::failed(MAX_ATTEMPTS_EXCEEDED));
    }
    let candidates = authenticators_of(services, tenant, user_id, "AUTHENTICATOR_APP").await?;
    if candidates.is_empty() {
        return Err(Error::Invalid("The user has no authenticator app.".into()));
    }
    let now = u64::try_from(now_epoch(services)).unwrap_or(0);
    let mut matched = None;
    if well_formed(code) {
        for item in candidates {
            let aid = aid_of(&item);
            let item_key = auth_item_key(user_id, &aid);
            let Some(secret) = open(services, tenant, &item_key, &item, "otpSecret").await? else {
                continue;
            };
            let bytes = Secret::try_from_base32(&secret)
                .map_err(|_| Error::Internal("stored TOTP secret is not base32".into()))?;
            // Authenticators enrolled through the Server API may name other parameters.
            let digits = open(services, tenant, &item_key, &item, "otpDigits")
                .await?
                .and_then(|d| d.parse().ok())
                .unwrap_or(TOTP_DIGITS);
            if digits != TOTP_DIGITS {
                continue;
            }
            let t = totp(bytes, "Latchkey", "user")?;
            let last = item
                .attrs
                .get("lastStep")
                .and_then(Value::as_i64)
                .unwrap_or(-1);
            if let Some(step) = matching_step(&t, now, code) {
                // A step once accepted is never accepted again (RFC 6238 §5.2).
                if step > last {
                    matched = Some((item, step));
                    break;
                }
            }
        }
    }
    let Some((item, step)) = matched else {
        return Ok(
            match record_failure(
                services,
                tenant,
                ctx,
                claims,
                &ch_id,
                "AUTHENTICATOR_APP",
                "totp.verify.failed",
            )
            .await?
            {
                Failure::Wrong => VerifyResponse::failed(CODE_INVALID_OR_EXPIRED),
                Failure::Exhausted => VerifyResponse::failed(MAX_ATTEMPTS_EXCEEDED),
            },
        );
    };
    let now_text = stamp(services)?;
    let enrolling = item.str("verifiedAt").is_none();
    let recovery = if enrolling {
        first_strong_codes(services, tenant, user_id).await?
    } else {
        None
    };
    let v = item.version;
    let mut updated = item
        .clone()
        .with("lastStep", step)
        .with("lastVerifiedAt", now_text.clone())
        .with_version(v + 1);
    let verified_at = item.str("verifiedAt").unwrap_or(&now_text).to_owned();
    if enrolling {
        updated.attrs.remove("pending");
        updated = updated.with("verifiedAt", now_text.clone());
    }
    // The version condition makes a step single-use even when two requests race with it.
    let mut ops = vec![WriteOp::Put {
        item: updated,
        condition: Condition::Version(v),
    }];
    let action = Some((claims.act.clone(), claims.idk.clone()));
    let (action_op, act, key) = settle_action(
        services,
        tenant,
        user_id,
        action,
        "CHALLENGE_SUCCEEDED",
        "AUTHENTICATOR_APP",
    )
    .await?;
    ops.extend(action_op);
    let codes = recovery.map(|(codes, more)| {
        ops.extend(more);
        codes
    });
    if let Some(c) = ch {
        ops.push(WriteOp::Delete {
            pk: c.pk,
            sk: c.sk,
            condition: Condition::None,
        });
    }
    let change = Change {
        action: if enrolling {
            "totp.enroll"
        } else {
            "totp.verify"
        },
        target: audit_ref(services, &tenant.id, user_id).await?,
        summary: json!({ "authenticatorId": aid_of(&item), "actionCode": act, "recoveryCodesIssued": codes.is_some() }),
        ops,
    };
    // A lost race (another request used this step first) fails the verification.
    succeed(
        services,
        tenant,
        ctx,
        claims,
        change,
        (&act, &key),
        VerifyResponse {
            user_authenticator: enrolling.then(|| view(&item, user_id, &verified_at)),
            recovery_codes: codes,
            ..VerifyResponse::default()
        },
    )
    .await
}

// -------------------------------------------------------------------------------------------
// Email OTP
// -------------------------------------------------------------------------------------------

fn code_hash(key: &PurposeKey, tenant: &Tenant, ch_id: &str, code: &str) -> Vec<u8> {
    keyed_hash(key, &[&tenant.id, ch_id, "email-otp", code])
}

fn message(tenant: &Tenant, code: &str) -> (String, String, String) {
    let name = if tenant.settings.name.is_empty() {
        tenant.id.clone()
    } else {
        tenant.settings.name.clone()
    };
    let subject = format!("Your {name} verification code");
    let text = format!(
        "Your {name} verification code is {code}.\n\nIt expires in 10 minutes and works once. \
         If you did not ask for it, ignore this email: nobody can sign in with it without your \
         device.\n"
    );
    let escaped = html_escape(&name);
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><p>Your {escaped} \
         verification code is</p><p style=\"font-size:28px;letter-spacing:4px\"><b>{code}</b></p>\
         <p>It expires in 10 minutes and works once. If you did not ask for it, ignore this \
         email.</p></body></html>"
    );
    (subject, text, html)
}

/// Minimal escaping for the tenant's name in the HTML part (the code is digits only).
fn html_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// Sends a fresh code for the token's email challenge, to the authenticator `item`. The
/// challenge item is written before the email goes out, so a code that was sent always has a
/// hash to be checked against.
async fn send_code(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
    item: &Item,
) -> Result<String, Error> {
    let user_id = &claims.sub;
    let ch_id = bound_id(tenant, claims, "eotp");
    let pk = challenge_pk(&tenant.id, &ch_id);
    let now = now_epoch(services);
    let existing = services.store.get(&pk, "CH").await?;
    if let Some(e) = &existing {
        let sent = e.attrs.get("sentAt").and_then(Value::as_i64).unwrap_or(0);
        if now - sent < RESEND_COOLDOWN_SECONDS {
            return Err(Error::TooManyRequests);
        }
        if e.attrs.get("failed") == Some(&Value::Bool(true)) {
            return Err(Error::Invalid(
                "This challenge has failed; track a new action.".into(),
            ));
        }
    }
    let aid = aid_of(item);
    let email = open(
        services,
        tenant,
        &auth_item_key(user_id, &aid),
        item,
        "email",
    )
    .await?
    .ok_or_else(|| Error::Internal("email authenticator without an email".into()))?;
    let code = new_code(services);
    let pepper = purpose_keys(services.secrets.as_ref(), Purpose::OtpPepper).await?;
    let ch = Item::new(&pk, "CH")
        .with("kind", "EMAIL_OTP")
        .with("userId", user_id.clone())
        .with("authenticatorId", aid.clone())
        .with(
            "codeHash",
            hex(code_hash(&pepper.current, tenant, &ch_id, &code)),
        )
        .with(
            "attempts",
            existing
                .as_ref()
                .and_then(|e| e.attrs.get("attempts"))
                .and_then(Value::as_i64)
                .unwrap_or(0),
        )
        .with("sentAt", now)
        .with("expiresAt", now + CODE_SECONDS)
        .with_ttl(now + CODE_SECONDS + 3600);
    let (ch, condition) = match existing {
        Some(e) => {
            let v = e.version;
            (ch.with_version(v + 1), Condition::Version(v))
        }
        None => (ch, Condition::Absent),
    };
    let change = Change {
        action: "email_otp.send",
        target: audit_ref(services, &tenant.id, user_id).await?,
        summary: json!({ "authenticatorId": aid }),
        ops: vec![WriteOp::Put {
            item: ch,
            condition,
        }],
    };
    commit(services, tenant, ctx, change).await?;
    let (subject, text, html) = message(tenant, &code);
    services
        .mailer
        .send(&Email {
            to: email,
            subject,
            text,
            html,
            urgent: false,
        })
        .await
        .map_err(|e| match e {
            crate::ports::mailer::MailError::Rejected(m) => {
                Error::Invalid(format!("The email could not be sent: {m}"))
            }
            crate::ports::mailer::MailError::Unavailable(m) => Error::Unavailable(m),
        })?;
    Ok(ch_id)
}

/// `POST /client/user-authenticators/email-otp {email}`: a pending email authenticator, and a
/// code sent to it. Enrollment completes when the code verifies.
pub async fn enroll_email(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
    email: &str,
) -> Result<EmailEnrollment, Error> {
    check_may_enroll(services, tenant, claims).await?;
    let email = email.trim();
    if email.len() > 320 || email.parse::<lettre::Address>().is_err() {
        return Err(Error::Invalid("email is not a valid address.".into()));
    }
    let user_id = &claims.sub;
    let aid = services.random.hex_id(16);
    let item_key = auth_item_key(user_id, &aid);
    let item = Item::new(user_pk(&tenant.id, user_id), format!("AUTH#{aid}"))
        .with("verificationMethod", "EMAIL_OTP")
        .with("createdAt", stamp(services)?)
        .with("isDefault", false)
        .with("pending", true)
        .with(
            "email",
            seal(services, tenant, &item_key, "email", email).await?,
        );
    let mut ops = vec![WriteOp::Put {
        item: item.clone(),
        condition: Condition::Absent,
    }];
    for old in authenticators_of(services, tenant, user_id, "EMAIL_OTP").await? {
        if old.str("verifiedAt").is_none() {
            ops.push(WriteOp::Delete {
                pk: old.pk,
                sk: old.sk,
                condition: Condition::None,
            });
        }
    }
    ops.extend(ensure_user(services, tenant, user_id).await?);
    let change = Change {
        action: "email_otp.enroll.start",
        target: audit_ref(services, &tenant.id, user_id).await?,
        summary: json!({ "authenticatorId": aid }),
        ops,
    };
    commit(services, tenant, ctx, change).await?;
    send_code(services, tenant, ctx, claims, &item).await?;
    Ok(EmailEnrollment {
        user_authenticator_id: aid,
        user_id: user_id.clone(),
    })
}

/// `POST /client/challenge/email-otp`: a code to the user's email authenticator (a pending
/// enrollment if that is all there is).
pub async fn challenge_email(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
) -> Result<String, Error> {
    let item = authenticators_of(services, tenant, &claims.sub, "EMAIL_OTP")
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Invalid("The user has no email authenticator.".into()))?;
    send_code(services, tenant, ctx, claims, &item).await
}

/// `POST /client/verify/email-otp {verificationCode}`.
pub async fn verify_email(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
    code: &str,
) -> Result<VerifyResponse, Error> {
    let user_id = &claims.sub;
    check_throttle(services, tenant, user_id).await?;
    let ch_id = bound_id(tenant, claims, "eotp");
    let Some(ch) = services
        .store
        .get(&challenge_pk(&tenant.id, &ch_id), "CH")
        .await?
    else {
        return Ok(VerifyResponse::failed(CODE_INVALID_OR_EXPIRED));
    };
    if ch.attrs.get("failed") == Some(&Value::Bool(true))
        || ch
            .attrs
            .get("attempts")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            >= MAX_ATTEMPTS
    {
        return Ok(VerifyResponse::failed(MAX_ATTEMPTS_EXCEEDED));
    }
    let expired = ch
        .attrs
        .get("expiresAt")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        <= now_epoch(services);
    let stored = ch.str("codeHash").and_then(unhex).unwrap_or_default();
    let pepper = purpose_keys(services.secrets.as_ref(), Purpose::OtpPepper).await?;
    // Compute under every pepper and compare each, so timing does not depend on which matched.
    let mut right = false;
    for key in std::iter::once(&pepper.current).chain(pepper.previous.iter()) {
        right |= codes_match(&stored, &code_hash(key, tenant, &ch_id, code));
    }
    if !right || expired || !well_formed(code) {
        return Ok(
            match record_failure(
                services,
                tenant,
                ctx,
                claims,
                &ch_id,
                "EMAIL_OTP",
                "email_otp.verify.failed",
            )
            .await?
            {
                Failure::Wrong => VerifyResponse::failed(CODE_INVALID_OR_EXPIRED),
                Failure::Exhausted => VerifyResponse::failed(MAX_ATTEMPTS_EXCEEDED),
            },
        );
    }
    let aid = ch.str("authenticatorId").unwrap_or_default().to_owned();
    let pk = user_pk(&tenant.id, user_id);
    let item = services
        .store
        .get(&pk, &format!("AUTH#{aid}"))
        .await?
        .ok_or_else(|| Error::Invalid("The email authenticator was removed.".into()))?;
    let now_text = stamp(services)?;
    let enrolling = item.str("verifiedAt").is_none();
    let verified_at = item.str("verifiedAt").unwrap_or(&now_text).to_owned();
    let v = item.version;
    let mut updated = item
        .clone()
        .with("lastVerifiedAt", now_text.clone())
        .with_version(v + 1);
    if enrolling {
        updated.attrs.remove("pending");
        updated = updated.with("verifiedAt", now_text.clone());
    }
    // Deleting the challenge under its version makes the code single-use, even when raced.
    let mut ops = vec![
        WriteOp::Delete {
            pk: ch.pk.clone(),
            sk: ch.sk.clone(),
            condition: Condition::Version(ch.version),
        },
        WriteOp::Put {
            item: updated,
            condition: Condition::Version(v),
        },
    ];
    let action = Some((claims.act.clone(), claims.idk.clone()));
    let (action_op, act, key) = settle_action(
        services,
        tenant,
        user_id,
        action,
        "CHALLENGE_SUCCEEDED",
        "EMAIL_OTP",
    )
    .await?;
    ops.extend(action_op);
    let change = Change {
        action: if enrolling {
            "email_otp.enroll"
        } else {
            "email_otp.verify"
        },
        target: audit_ref(services, &tenant.id, user_id).await?,
        summary: json!({ "authenticatorId": aid, "actionCode": act }),
        ops,
    };
    succeed(
        services,
        tenant,
        ctx,
        claims,
        change,
        (&act, &key),
        VerifyResponse {
            user_authenticator: enrolling.then(|| view(&item, user_id, &verified_at)),
            ..VerifyResponse::default()
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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
