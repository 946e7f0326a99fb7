//! What every challenge ceremony shares (passkeys, security keys, one-time codes): where a
//! ceremony's item lives, the id of a ceremony bound to a token, settling the tracked action,
//! and committing a change with its audit event.
use crate::domain::Error;
use crate::domain::Services;
use crate::domain::actions::load;
use crate::domain::audit::{AuditContext, Change, CommitError};
use crate::domain::authz::{Access, Proof};
use crate::domain::machine::{ActionState, Event, VerificationMethod};
use crate::domain::tenants::Tenant;
use crate::domain::timestamps::Timestamp as _;
use crate::domain::tokens::Claims;
use crate::domain::users::user_pk;
use crate::ports::random::RandomExt as _;
use crate::ports::store::{Condition, Item, WriteOp};
use serde_json::json;
use sha2::{Digest as _, Sha256};

/// The action a usernameless sign-in records when the page named none.
pub const DEFAULT_SIGN_IN_ACTION: &str = "signIn";

pub(crate) fn challenge_pk(tenant_id: &str, id: &str) -> String {
    format!("T#{tenant_id}#CH#{id}")
}

/// The ceremony id of a security-key ceremony: bound to the token's tenant, user and action
/// instance, since the wire carries no challenge id. Not secret: only the holder of a token for
/// that user can start or finish it.
pub(crate) fn bound_id(tenant: &Tenant, claims: &Claims, kind: CeremonyKind) -> String {
    let step = kind.bound_prefix();
    let mut h = Sha256::new();
    for part in [&tenant.id, &claims.sub, &claims.act, &claims.idk] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let hex = crate::crypto::hex(&digest[..20]);
    format!("{step}.{hex}")
}

/// The action a ceremony answers: its code and idempotency key (empty for a usernameless
/// sign-in, which has no tracked action yet).
pub(crate) type ActionKey = (String, String);

/// The write that settles the action a ceremony answered, as the state machine allows it:
/// `CHALLENGE_REQUIRED → CHALLENGE_SUCCEEDED | CHALLENGE_FAILED`. A usernameless sign-in (no
/// idempotency key) creates its action directly in `CHALLENGE_SUCCEEDED`. Any other state is
/// refused with [`Error::InvalidState`]: a ceremony never changes `ALLOW`, `BLOCK`, the
/// `REVIEW_*` states, nor a failed or succeeded action. Returns the write (none when a failure
/// has no action to fail) and the action's code and key.
pub(crate) async fn settle_action(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
    action: Option<ActionKey>,
    event: Event,
    method: VerificationMethod,
) -> Result<(Option<WriteOp>, String, String), Error> {
    settle_action_with(services, tenant, user_id, action, event, method, None).await
}

/// [`settle_action`], given the token's action as this request's authorization saw it
/// (its `subject` as read, or the `stamp` its ceremony recorded): no second read. The write is
/// conditional on that read's version, so an action changed since fails the commit as a fresh
/// read would have made it.
pub(crate) async fn settle_action_with(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
    action: Option<ActionKey>,
    event: Event,
    method: VerificationMethod,
    access: Option<&Access>,
) -> Result<(Option<WriteOp>, String, String), Error> {
    let (code, key) = action.unwrap_or_default();
    let code = if code.is_empty() {
        DEFAULT_SIGN_IN_ACTION.to_owned()
    } else {
        code
    };
    let now = stamp(services)?;
    // The token's own action, as the authorization saw it.
    let own = access.filter(|a| a.claims.as_ref().is_some_and(|c| c.sub == user_id));
    if !key.is_empty()
        && let Some(st) = own
            .and_then(|a| a.stamp.as_ref())
            .filter(|st| st.code == code && st.idempotency_key == key)
    {
        let op = st
            .apply(&tenant.id, user_id, event, Some(method), &now)
            .map_err(|r| Error::InvalidState(r.to_string()))?;
        return Ok((op, code, key));
    }
    if !key.is_empty() {
        let known = own
            .and_then(|a| a.subject.as_ref())
            .map(|s| &s.action)
            .filter(|r| {
                r.code == code
                    && r.idempotency_key == key
                    && r.item.pk == user_pk(&tenant.id, user_id)
            })
            .cloned();
        let record = match known {
            Some(r) => Some(r),
            None => load(services, &tenant.id, user_id, &code, &key).await?,
        };
        let Some(record) = record else {
            return Err(Error::Invalid(
                "The token's action no longer exists.".into(),
            ));
        };
        let op = record
            .apply(event, Some(method), &now)
            .map_err(|r| Error::InvalidState(r.to_string()))?;
        return Ok((op, code, key));
    }
    if event != Event::CeremonySucceeded {
        return Ok((None, code, key));
    }
    let key = services.random.hex_id(16);
    let pk = user_pk(&tenant.id, user_id);
    let item = Item::new(&pk, format!("ACT#{code}#{key}"))
        .with("actionCode", code.clone())
        .with("idempotencyKey", key.clone())
        .with("state", ActionState::ChallengeSucceeded.as_str())
        .with("verificationMethod", method.as_str())
        .with("createdAt", now.clone())
        .with("createdEpoch", now_epoch(services))
        .with("updatedAt", now.clone())
        .with("stateUpdatedAt", now)
        .with("ruleIds", Vec::<String>::new())
        .with("output", json!({}));
    Ok((
        Some(WriteOp::Put {
            item,
            condition: Condition::Absent,
        }),
        code,
        key,
    ))
}

/// What a completed enrollment does to the action it was made on: the user's first
/// authenticator answers a `CHALLENGE_REQUIRED` action (signing up is the challenge); any
/// later one leaves the action as it is, so that enrolling a factor never passes a challenge
/// by itself.
pub(crate) async fn settle_enrollment(
    services: &Services,
    tenant: &Tenant,
    access: &Access,
    method: VerificationMethod,
) -> Result<(Option<WriteOp>, Option<Proof>), Error> {
    let claims = access.claims()?;
    let now = now_epoch(services);
    let first = access
        .subject
        .as_ref()
        .is_some_and(|s| !s.authenticators.has_verified());
    let challenged = access
        .subject
        .as_ref()
        .is_some_and(|s| s.action.state == ActionState::ChallengeRequired);
    if !(first && challenged) {
        return Ok((None, claims.proof()));
    }
    let op = settle_own_action(services, tenant, access, Event::CeremonySucceeded, method).await?;
    Ok((op, Some(Proof { method, at: now })))
}

/// [`settle_action`] for the action of the caller's own token.
pub(crate) async fn settle_own_action(
    services: &Services,
    tenant: &Tenant,
    access: &Access,
    event: Event,
    method: VerificationMethod,
) -> Result<Option<WriteOp>, Error> {
    let claims = access.claims()?;
    let action = Some((claims.act.clone(), claims.idk.clone()));
    let (op, _, _) = settle_action(services, tenant, &claims.sub, action, event, method).await?;
    Ok(op)
}

/// The kinds of ceremony item (`T#{tid}#CH#{id}` / `CH`), with the strings they are stored as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    /// The action named for a usernameless sign-in (`POST /client/challenge`).
    NamedAction,
    PasskeyRegister,
    /// Passkey sign-in with a token: the user is known.
    PasskeyAuthenticate,
    /// Usernameless passkey sign-in.
    PasskeyDiscover,
    SecurityKeyRegister,
    SecurityKeyAuthenticate,
    Totp,
    EmailOtp,
    RecoveryCode,
}

impl CeremonyKind {
    pub const ALL: [CeremonyKind; 9] = [
        CeremonyKind::NamedAction,
        CeremonyKind::PasskeyRegister,
        CeremonyKind::PasskeyAuthenticate,
        CeremonyKind::PasskeyDiscover,
        CeremonyKind::SecurityKeyRegister,
        CeremonyKind::SecurityKeyAuthenticate,
        CeremonyKind::Totp,
        CeremonyKind::EmailOtp,
        CeremonyKind::RecoveryCode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::NamedAction => "action",
            CeremonyKind::PasskeyRegister => "register",
            CeremonyKind::PasskeyAuthenticate => "authenticate",
            CeremonyKind::PasskeyDiscover => "discover",
            CeremonyKind::SecurityKeyRegister => "sk-register",
            CeremonyKind::SecurityKeyAuthenticate => "sk-authenticate",
            CeremonyKind::Totp => "AUTHENTICATOR_APP",
            CeremonyKind::EmailOtp => "EMAIL_OTP",
            CeremonyKind::RecoveryCode => "RECOVERY_CODE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The prefix of a token-bound ceremony id of this kind.
    pub fn bound_prefix(self) -> &'static str {
        match self {
            CeremonyKind::SecurityKeyRegister => "skr",
            CeremonyKind::SecurityKeyAuthenticate => "ska",
            CeremonyKind::Totp => "totp",
            CeremonyKind::EmailOtp => "eotp",
            CeremonyKind::RecoveryCode => "rc",
            _ => "ch",
        }
    }

    /// The kind of a one-time-code challenge item, by its method.
    pub fn of_code_method(m: VerificationMethod) -> Self {
        match m {
            VerificationMethod::EmailOtp => CeremonyKind::EmailOtp,
            VerificationMethod::RecoveryCode => CeremonyKind::RecoveryCode,
            _ => CeremonyKind::Totp,
        }
    }
}

pub(crate) async fn commit(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    change: Change,
) -> Result<(), Error> {
    match services.journal.commit(&tenant.id, ctx, change).await {
        Ok(_) => Ok(()),
        Err(CommitError::Condition { .. }) => Err(Error::Conflict("the user changed; retry")),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn now_epoch(services: &Services) -> i64 {
    services.clock.now().unix_timestamp()
}

pub(crate) fn stamp(services: &Services) -> Result<String, Error> {
    services.clock.now().rfc3339()
}
