//! The Client API's authorization matrix: one row per route ([`CLIENT_ROUTES`]) naming what a
//! caller needs, and one function ([`token_grants`]) that says what a credential may do. The Client
//! API function builds its router from this table and every handler receives its row's
//! verdict through one extractor, so no handler checks a token by hand.
//!
//! **Credentials.** `Bearer <token>` (from track, or from a successful ceremony) or
//! `Basic <tenant id>` (anyone who knows the public tenant id: usernameless sign-in).
//!
//! **What a token may do** depends on its action, the user, the token's scope and whether the
//! token was returned by a successful ceremony on that action (its *proof*):
//!
//! | the token's action | may |
//! |---|---|
//! | gone, or already validated | nothing: validate consumed the success, so the token is spent |
//! | `BLOCK`, `REVIEW_REQUIRED`, `REVIEW_SUCCEEDED`, `REVIEW_FAILED`, `CHALLENGE_FAILED` | nothing |
//! | `CHALLENGE_REQUIRED` | answer the challenge; look up credentials; enroll (see below) |
//! | `ALLOW` | look up credentials; enroll (see below) |
//! | `CHALLENGE_SUCCEEDED` | look up credentials; enroll (see below) |
//!
//! - **Enroll** (start or complete an enrollment): the user has no verified authenticator yet,
//!   or the token has the `add:authenticators` scope, or the token's proof is fresh (a ceremony
//!   passed on this action in the last [`FRESH_PROOF_SECONDS`]).
//! - **Regenerate recovery codes**: the user has a strong authenticator (passkey, security key,
//!   authenticator app) and either the token's fresh proof is of a strong factor, or the token
//!   has the `add:authenticators` scope.
//! - **`Basic <tenant id>`** may name an action for a sign-in, run a usernameless passkey
//!   sign-in, and look up credentials; nothing else. Those calls are rate-limited per tenant
//!   and client address ([`crate::domain::limits`]).
use crate::domain::Error;
use crate::domain::Services;
use crate::domain::actions::{ActionRecord, ActionStamp, action_ref};
use crate::domain::audit::{AuditContext, Change, CommitError};
use crate::domain::authenticators::{self, UserAuthenticators};
use crate::domain::machine::ActionState;
use crate::domain::tenants::Tenant;
use crate::domain::tokens::Claims;
pub use crate::domain::tokens::Proof;
use crate::domain::users::{audit_ref, user_pk};
use crate::ports::store::{Condition, Item, WriteOp};
use serde_json::json;
use std::fmt::Write as _;

/// How long a successful ceremony's token counts as a fresh proof of a factor.
pub const FRESH_PROOF_SECONDS: i64 = 5 * 60;
/// The scope a tenant's backend grants to let a token manage authenticators (docs/wire.md §7).
pub const ADD_AUTHENTICATORS: &str = "add:authenticators";

/// Something a credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Ask whether credential ids are registered.
    Lookup,
    /// Name the action a usernameless sign-in is for.
    NameAction,
    /// Run a usernameless passkey sign-in.
    Discover,
    /// Answer the token's action's challenge.
    Challenge,
    /// Start or complete an enrollment.
    Enroll,
    /// Replace the user's recovery codes.
    RegenerateRecovery,
}

impl Grant {
    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Grant::Lookup => "look up credentials",
            Grant::NameAction => "name an action",
            Grant::Discover => "usernameless sign-in",
            Grant::Challenge => "answer the challenge",
            Grant::Enroll => "enroll",
            Grant::RegenerateRecovery => "regenerate recovery codes",
        }
    }
}

/// A set of grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grants(u8);

impl Grants {
    pub fn with(self, g: Grant) -> Self {
        Grants(self.0 | g.bit())
    }
    pub fn has(self, g: Grant) -> bool {
        self.0 & g.bit() != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// What a route needs of a Bearer caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// One grant.
    One(Grant),
    /// Either: the route answers a challenge or completes a pending enrollment, and the domain
    /// asks for the specific grant once it knows which (verify TOTP / email OTP).
    Either(Grant, Grant),
}

impl Need {
    fn met(self, g: Grants) -> bool {
        match self {
            Need::One(a) => g.has(a),
            Need::Either(a, b) => g.has(a) || g.has(b),
        }
    }

    fn describe(self) -> String {
        match self {
            Need::One(a) => a.describe().to_owned(),
            Need::Either(a, b) => format!("{} or {}", a.describe(), b.describe()),
        }
    }
}

/// Every Client API route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteId {
    PasskeyRegistrationOptions,
    PasskeyRegistrationOptionsWeb,
    AddPasskey,
    PasskeyAvailable,
    NameAction,
    NameActionWeb,
    PasskeyAuthenticationOptions,
    PasskeyAuthenticationOptionsWeb,
    VerifyPasskey,
    SecurityKeyRegistrationOptions,
    AddSecurityKey,
    SecurityKeyAuthenticationOptions,
    VerifySecurityKey,
    EnrollTotp,
    VerifyTotp,
    EnrollEmailOtp,
    ChallengeEmailOtp,
    VerifyEmailOtp,
    VerifyRecoveryCode,
    RegenerateRecoveryCodes,
}

/// One row of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRule {
    pub id: RouteId,
    pub method: &'static str,
    pub path: &'static str,
    /// What a `Bearer` caller needs; `None`: tokens are not accepted.
    pub token: Option<Need>,
    /// What a `Basic <tenant id>` caller needs; `None`: a tenant id alone is not enough (401).
    pub tenant: Option<Grant>,
    /// Where a Bearer caller's facts come from.
    pub facts: Facts,
}

/// Where the facts a Bearer caller is judged on come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facts {
    /// Read before the handler runs: the token's action and the user's authenticators.
    Store,
    /// From the ceremony the request finishes, which recorded them when its options were
    /// given (after the same reads, on a route whose row needs the same grant): the decision
    /// is made on them once the handler has opened the ceremony ([`Access::settle`]), and the
    /// commit writes the action only at the version they were read at, so an action changed
    /// since is refused as a fresh read would refuse it ([`Access::confirm`]). Two store
    /// round trips fewer per passkey sign-in.
    Ceremony,
    /// Checked by the write the route makes: its transaction holds a condition that the
    /// token's action is `CHALLENGE_REQUIRED` (the one state in which a token has
    /// [`Grant::Challenge`]; such an action is never validated), so the route commits only if
    /// a read would have allowed it. Only for rows that need exactly that grant (a test walks
    /// the table). A write refused by that condition, or any other error before it, is judged
    /// afresh ([`Access::confirm`]) so a refusal is told as on any row. One round trip fewer
    /// per options call.
    Written,
}

impl RouteRule {
    /// This row, judged on the facts its ceremony carries.
    const fn judged_on_its_ceremony(self) -> Self {
        Self {
            facts: Facts::Ceremony,
            ..self
        }
    }

    /// This row, checked by the condition of its own write.
    const fn judged_by_its_write(self) -> Self {
        Self {
            facts: Facts::Written,
            ..self
        }
    }
}

const fn row(
    id: RouteId,
    method: &'static str,
    path: &'static str,
    token: Option<Need>,
    tenant: Option<Grant>,
) -> RouteRule {
    RouteRule {
        id,
        method,
        path,
        token,
        tenant,
        facts: Facts::Store,
    }
}

const ENROLL: Option<Need> = Some(Need::One(Grant::Enroll));
const CHALLENGE: Option<Need> = Some(Need::One(Grant::Challenge));
const CHALLENGE_OR_ENROLL: Option<Need> = Some(Need::Either(Grant::Challenge, Grant::Enroll));

/// The Client API, route by route (docs/wire.md §5.1). The router is built from this table.
#[rustfmt::skip]
pub const CLIENT_ROUTES: &[RouteRule] = {
    use Grant::{Discover, Lookup, RegenerateRecovery};
    use RouteId::*;
    const P: &str = "/v1/client/user-authenticators/passkey";
    &[
        row(PasskeyRegistrationOptions, "POST", "/v1/client/user-authenticators/passkey/registration-options", ENROLL, None),
        row(PasskeyRegistrationOptionsWeb, "POST", "/v1/client/user-authenticators/passkey/registration-options/web", ENROLL, None),
        row(AddPasskey, "POST", P, ENROLL, None),
        row(PasskeyAvailable, "GET", P, Some(Need::One(Lookup)), Some(Lookup)),
        row(RouteId::NameAction, "POST", "/v1/client/challenge", None, Some(Grant::NameAction)),
        row(NameActionWeb, "POST", "/v1/client/challenge/web", None, Some(Grant::NameAction)),
        row(PasskeyAuthenticationOptions, "POST", "/v1/client/user-authenticators/passkey/authentication-options", CHALLENGE, Some(Discover)).judged_by_its_write(),
        row(PasskeyAuthenticationOptionsWeb, "POST", "/v1/client/user-authenticators/passkey/authentication-options/web", CHALLENGE, Some(Discover)).judged_by_its_write(),
        row(VerifyPasskey, "POST", "/v1/client/verify/passkey", CHALLENGE, Some(Discover)).judged_on_its_ceremony(),
        row(SecurityKeyRegistrationOptions, "POST", "/v1/client/user-authenticators/security-key/registration-options", ENROLL, None),
        row(AddSecurityKey, "POST", "/v1/client/user-authenticators/security-key", ENROLL, None),
        row(SecurityKeyAuthenticationOptions, "POST", "/v1/client/user-authenticators/security-key/authentication-options", CHALLENGE, None),
        row(VerifySecurityKey, "POST", "/v1/client/verify/security-key", CHALLENGE, None),
        row(EnrollTotp, "POST", "/v1/client/user-authenticators/totp", ENROLL, None),
        row(VerifyTotp, "POST", "/v1/client/verify/totp", CHALLENGE_OR_ENROLL, None),
        row(EnrollEmailOtp, "POST", "/v1/client/user-authenticators/email-otp", ENROLL, None),
        row(ChallengeEmailOtp, "POST", "/v1/client/challenge/email-otp", CHALLENGE, None),
        row(VerifyEmailOtp, "POST", "/v1/client/verify/email-otp", CHALLENGE_OR_ENROLL, None),
        row(VerifyRecoveryCode, "POST", "/v1/client/verify/recovery-code", CHALLENGE, None),
        row(RegenerateRecoveryCodes, "POST", "/v1/client/user-authenticators/recovery-codes", Some(Need::One(RegenerateRecovery)), None),
    ]
};

pub fn rule(id: RouteId) -> Option<&'static RouteRule> {
    CLIENT_ROUTES.iter().find(|r| r.id == id)
}

/// What the matrix looks at for a Bearer caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenFacts {
    /// The token's action: `None` when it no longer exists.
    pub action: Option<(ActionState, bool)>,
    pub scoped: bool,
    pub proof: Option<Proof>,
    pub has_verified: bool,
    pub has_strong: bool,
    pub now: i64,
}

/// Why a credential may do nothing at all with its action, if so.
fn dead(facts: &TokenFacts) -> Option<String> {
    match facts.action {
        None => Some("The token's action no longer exists.".into()),
        Some((_, true)) => Some(
            "The token's action was already validated: the token is spent; track a new action."
                .into(),
        ),
        Some((state, false)) => match state {
            ActionState::ChallengeRequired
            | ActionState::ChallengeSucceeded
            | ActionState::Allow => None,
            other => Some(format!(
                "The token's action is {other}: it authorizes nothing."
            )),
        },
    }
}

/// What a token may do (the table in the module docs).
pub fn token_grants(f: &TokenFacts) -> Grants {
    let mut g = Grants::default();
    let Some((state, _)) = f.action else {
        return g;
    };
    if dead(f).is_some() {
        return g;
    }
    let fresh = f
        .proof
        .filter(|p| p.at <= f.now && f.now - p.at <= FRESH_PROOF_SECONDS);
    g = g.with(Grant::Lookup);
    if state == ActionState::ChallengeRequired {
        g = g.with(Grant::Challenge);
    }
    let proven = state == ActionState::ChallengeSucceeded && fresh.is_some();
    if !f.has_verified || f.scoped || proven {
        g = g.with(Grant::Enroll);
    }
    let strong_proof = proven && fresh.is_some_and(|p| p.method.is_strong());
    if f.has_strong && (strong_proof || f.scoped) {
        g = g.with(Grant::RegenerateRecovery);
    }
    g
}

/// What a `Basic <tenant id>` caller may do.
pub fn tenant_grants() -> Grants {
    Grants::default()
        .with(Grant::Lookup)
        .with(Grant::NameAction)
        .with(Grant::Discover)
}

/// The verdict on one request: allowed (with what the caller may do), or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed(Grants),
    /// 401: this kind of credential is not accepted here.
    Unauthorized,
    /// 403: the credential is good but does not authorize this; the reason is safe to show.
    Refused(String),
}

/// The caller as the matrix sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Tenant,
    Token(TokenFacts),
}

pub fn decide(rule: &RouteRule, caller: &Caller) -> Verdict {
    match caller {
        Caller::Tenant => match rule.tenant {
            Some(g) => Verdict::Allowed(tenant_grants().with(g)),
            None => Verdict::Unauthorized,
        },
        Caller::Token(facts) => {
            let Some(need) = rule.token else {
                return Verdict::Unauthorized;
            };
            if let Some(why) = dead(facts) {
                return Verdict::Refused(why);
            }
            let g = token_grants(facts);
            if need.met(g) {
                Verdict::Allowed(g)
            } else {
                Verdict::Refused(refusal(need, facts))
            }
        }
    }
}

fn refusal(need: Need, f: &TokenFacts) -> String {
    let state = f.action.map(|(s, _)| s.as_str()).unwrap_or("gone");
    match need {
        Need::One(Grant::Enroll) => "Enrolling another authenticator needs the \
            add:authenticators scope or a challenge passed on this action in the last 5 minutes."
            .into(),
        Need::One(Grant::RegenerateRecovery) => "Regenerating recovery codes needs a passkey, \
            security key or authenticator app verified on this action in the last 5 minutes, \
            or the add:authenticators scope for a user who has one."
            .into(),
        Need::One(Grant::Challenge) | Need::Either(Grant::Challenge, _) => format!(
            "The token's action is {state}: there is no challenge to answer; track a new action."
        ),
        other => format!("The token may not {}.", other.describe()),
    }
}

/// The verdict and what it was decided on, for the handler and the domain.
#[derive(Debug, Clone)]
pub struct Access {
    pub claims: Option<Claims>,
    pub grants: Grants,
    /// The token's action and the user's authenticators, as read to decide (Bearer only).
    pub subject: Option<Subject>,
    /// The token's action as a decision made without reading it saw it (from a ceremony:
    /// [`Facts::Ceremony`]); `None` when `subject` holds the action as read.
    pub stamp: Option<ActionStamp>,
    /// A Bearer caller on a [`Facts::Ceremony`] or [`Facts::Written`] row, before the domain
    /// judges it: no grants yet.
    pub pending: Option<RouteRule>,
}

/// The facts a ceremony carries from its options to its verify ([`Facts::Ceremony`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CeremonyFacts {
    pub action: ActionStamp,
    pub has_verified: bool,
    pub has_strong: bool,
}

#[derive(Debug, Clone)]
pub struct Subject {
    pub action: ActionRecord,
    pub authenticators: UserAuthenticators,
}

impl Access {
    /// Refuses unless the caller holds `g` (for routes whose row says `Either`).
    pub fn require(&self, g: Grant) -> Result<(), Error> {
        if self.grants.has(g) {
            Ok(())
        } else {
            Err(Error::Refused(match g {
                Grant::Enroll => {
                    "Completing an enrollment needs the same right as starting one: the \
                     add:authenticators scope, a first authenticator, or a fresh challenge."
                        .into()
                }
                Grant::Challenge => "The token's action has no challenge to answer.".into(),
                other => format!("The token may not {}.", other.describe()),
            }))
        }
    }

    /// The user's authenticators as the decision read them (Bearer callers only).
    pub fn authenticators(&self) -> Result<&UserAuthenticators, Error> {
        self.subject
            .as_ref()
            .map(|s| &s.authenticators)
            .ok_or(Error::Unauthorized)
    }

    /// The state of the token's action as the decision saw it, read or recorded.
    pub fn action_state(&self) -> Option<ActionState> {
        match (&self.subject, &self.stamp) {
            (Some(s), _) => Some(s.action.state),
            (None, Some(st)) => Some(st.state),
            (None, None) => None,
        }
    }

    /// The claims of a Bearer caller (routes whose row accepts only tokens).
    pub fn claims(&self) -> Result<&Claims, Error> {
        self.claims.as_ref().ok_or(Error::Unauthorized)
    }

    pub fn action_ref(&self) -> Option<String> {
        self.claims.as_ref().map(|c| action_ref(&c.act, &c.idk))
    }

    /// What a ceremony started under this access records for its finish (Bearer callers whose
    /// facts were read).
    pub fn ceremony_facts(&self) -> Option<CeremonyFacts> {
        self.subject.as_ref().map(|s| CeremonyFacts {
            action: ActionStamp::of(&s.action),
            has_verified: s.authenticators.has_verified(),
            has_strong: s.authenticators.has_strong(),
        })
    }

    /// For a pending access on a [`Facts::Written`] row: the facts its write will check (the
    /// action in `CHALLENGE_REQUIRED`), with the user's authenticators as the route read them,
    /// and the check itself, for the route's transaction.
    pub fn written_facts(
        &self,
        tenant: &Tenant,
        authenticators: &UserAuthenticators,
    ) -> Option<(CeremonyFacts, WriteOp)> {
        self.pending.filter(|r| r.facts == Facts::Written)?;
        let claims = self.claims.as_ref()?;
        let stamp = ActionStamp::checked(&claims.act, &claims.idk, ActionState::ChallengeRequired);
        let check = stamp.check(&tenant.id, &claims.sub);
        Some((
            CeremonyFacts {
                action: stamp,
                has_verified: authenticators.has_verified(),
                has_strong: authenticators.has_strong(),
            },
            check,
        ))
    }

    /// Decides a pending access ([`Facts::Ceremony`]) on the facts its ceremony recorded; any
    /// other access is returned as it is. Facts that are missing, or that would refuse, are
    /// read afresh and judged as on any other route ([`Access::confirm`]), so a refusal is
    /// told (and audited) exactly as a [`Facts::Store`] row tells it.
    pub async fn settle(
        &self,
        services: &Services,
        tenant: &Tenant,
        ctx: &AuditContext,
        facts: Option<&serde_json::Value>,
    ) -> Result<Access, Error> {
        let (Some(rule), Some(claims)) = (self.pending, self.claims.as_ref()) else {
            return Ok(self.clone());
        };
        if rule.facts != Facts::Ceremony {
            return self.confirm(services, tenant, ctx).await;
        }
        let recorded = facts
            .and_then(|v| serde_json::from_value::<CeremonyFacts>(v.clone()).ok())
            .filter(|f| f.action.code == claims.act && f.action.idempotency_key == claims.idk);
        if let Some(f) = recorded {
            let token = token_facts(
                services,
                claims,
                Some((f.action.state, f.action.validated)),
                f.has_verified,
                f.has_strong,
            );
            if let Verdict::Allowed(grants) = decide(&rule, &Caller::Token(token)) {
                return Ok(Access {
                    claims: Some(claims.clone()),
                    grants,
                    subject: None,
                    stamp: Some(f.action),
                    pending: None,
                });
            }
        }
        self.confirm(services, tenant, ctx).await
    }

    /// For a pending access: reads the facts and decides as a [`Facts::Store`] row would,
    /// refusing (and auditing the refusal) when they do not allow the route. A handler calls it
    /// before telling a pending caller of any other error, so that a caller the route refuses
    /// always learns that first. Any other access is returned as it is.
    pub async fn confirm(
        &self,
        services: &Services,
        tenant: &Tenant,
        ctx: &AuditContext,
    ) -> Result<Access, Error> {
        match (self.pending, &self.claims) {
            (Some(rule), Some(claims)) => {
                let rule = RouteRule {
                    facts: Facts::Store,
                    ..rule
                };
                authorize(services, tenant, ctx, &rule, Some(claims.clone())).await
            }
            _ => Ok(self.clone()),
        }
    }
}

fn token_facts(
    services: &Services,
    claims: &Claims,
    action: Option<(ActionState, bool)>,
    has_verified: bool,
    has_strong: bool,
) -> TokenFacts {
    TokenFacts {
        action,
        scoped: claims
            .scope
            .as_deref()
            .is_some_and(|s| s.split_whitespace().any(|p| p == ADD_AUTHENTICATORS)),
        proof: claims.proof(),
        has_verified,
        has_strong,
        now: services.clock.now().unix_timestamp(),
    }
}

/// Reads what the matrix needs and decides. `claims` is `None` for a `Basic` caller.
///
/// A token refused for its action is an audited failure (`client.refused`), once per action
/// and route: the holder of a token may retry as often as they like, but the tenant's log
/// grows by at most one event per route for each action its backend tracked.
pub async fn authorize(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    rule: &RouteRule,
    claims: Option<Claims>,
) -> Result<Access, Error> {
    let Some(claims) = claims else {
        return match decide(rule, &Caller::Tenant) {
            Verdict::Allowed(grants) => Ok(Access {
                claims: None,
                grants,
                subject: None,
                stamp: None,
                pending: None,
            }),
            Verdict::Unauthorized => Err(Error::Unauthorized),
            Verdict::Refused(why) => Err(Error::Refused(why)),
        };
    };
    if rule.token.is_none() {
        return Err(Error::Unauthorized);
    }
    if rule.facts != Facts::Store {
        return Ok(Access {
            claims: Some(claims),
            grants: Grants::default(),
            subject: None,
            stamp: None,
            pending: Some(*rule),
        });
    }
    let action =
        crate::domain::actions::load(services, &tenant.id, &claims.sub, &claims.act, &claims.idk)
            .await?;
    let auths = authenticators::of_user(services, tenant, &claims.sub).await?;
    let facts = token_facts(
        services,
        &claims,
        action.as_ref().map(|a| (a.state, a.validated_at.is_some())),
        auths.has_verified(),
        auths.has_strong(),
    );
    match decide(rule, &Caller::Token(facts)) {
        Verdict::Allowed(grants) => Ok(Access {
            claims: Some(claims),
            grants,
            stamp: None,
            subject: action.map(|action| Subject {
                action,
                authenticators: auths,
            }),
            pending: None,
        }),
        Verdict::Unauthorized => Err(Error::Unauthorized),
        Verdict::Refused(why) => {
            if let Some(a) = &action {
                record_refusal(services, tenant, ctx, &claims, a, rule, &why).await?;
            }
            Err(Error::Refused(why))
        }
    }
}

async fn record_refusal(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    claims: &Claims,
    action: &ActionRecord,
    rule: &RouteRule,
    why: &str,
) -> Result<(), Error> {
    let marker = Item::new(
        user_pk(&tenant.id, &claims.sub),
        format!("REFUSED#{}#{}#{:?}", claims.act, claims.idk, rule.id),
    )
    .with_ttl(claims.exp + 86_400);
    let change = Change {
        action: "client.refused",
        target: audit_ref(services, &tenant.id, &claims.sub).await?,
        summary: json!({
            "route": format!("{} {}", rule.method, rule.path),
            "actionCode": claims.act,
            "idempotencyKey": claims.idk,
            "state": action.state,
            "reason": why,
        }),
        ops: vec![WriteOp::Put {
            item: marker,
            condition: Condition::Absent,
        }],
    };
    match services.journal.commit(&tenant.id, ctx, change).await {
        // Refused on this route before: already in the log.
        Ok(_) | Err(CommitError::Condition { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The matrix as the README shows it (a test keeps the README's copy equal to this).
pub fn markdown() -> String {
    let mut out = String::from("| route | Bearer token needs | Basic tenant id |\n|---|---|---|\n");
    for r in CLIENT_ROUTES {
        let token = r
            .token
            .map_or("not accepted (401)".to_owned(), Need::describe);
        let tenant = r
            .tenant
            .map_or("not accepted (401)".to_owned(), |g| g.describe().to_owned());
        let _ = writeln!(
            out,
            "| `{} {}` | {token} | {tenant} |",
            r.method,
            r.path.trim_start_matches("/v1")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::machine::VerificationMethod;
    use ActionState::*;

    /// A row checked by its write's condition (the action in `CHALLENGE_REQUIRED`) must need
    /// exactly the grant that state gives, and that state must be the only one giving it.
    #[test]
    fn rows_checked_by_their_write_need_exactly_what_the_condition_proves() {
        let written: Vec<_> = CLIENT_ROUTES
            .iter()
            .filter(|r| r.facts == Facts::Written)
            .collect();
        assert!(!written.is_empty());
        for r in written {
            assert_eq!(r.token, Some(Need::One(Grant::Challenge)), "{r:?}");
        }
        for state in ActionState::ALL {
            for validated in [false, true] {
                let f = TokenFacts {
                    action: Some((state, validated)),
                    ..facts(state)
                };
                let challenge = token_grants(&f).has(Grant::Challenge);
                assert_eq!(
                    challenge,
                    state == ChallengeRequired && !validated,
                    "{state:?} validated {validated}"
                );
            }
        }
    }

    fn facts(state: ActionState) -> TokenFacts {
        TokenFacts {
            action: Some((state, false)),
            scoped: false,
            proof: None,
            has_verified: true,
            has_strong: true,
            now: 1_000_000,
        }
    }

    #[test]
    fn every_route_has_one_row_and_paths_are_client_paths() {
        let mut seen = std::collections::HashSet::new();
        for r in CLIENT_ROUTES {
            assert!(seen.insert(r.id), "{:?} twice", r.id);
            assert!(seen.len() <= CLIENT_ROUTES.len());
            assert!(r.path.starts_with("/v1/client/"), "{}", r.path);
            assert!(
                r.token.is_some() || r.tenant.is_some(),
                "{:?} accepts nothing",
                r.id
            );
        }
        let mut keys = std::collections::HashSet::new();
        for r in CLIENT_ROUTES {
            assert!(
                keys.insert((r.method, r.path)),
                "{} {} twice",
                r.method,
                r.path
            );
        }
    }

    #[test]
    fn dead_actions_authorize_nothing_on_any_route() {
        let mut dead_states = vec![];
        for s in ActionState::ALL {
            if !matches!(s, ChallengeRequired | ChallengeSucceeded | Allow) {
                dead_states.push(facts(s));
            }
        }
        dead_states.push(TokenFacts {
            action: None,
            ..facts(ChallengeRequired)
        });
        dead_states.push(TokenFacts {
            action: Some((ChallengeSucceeded, true)),
            proof: Some(Proof {
                method: VerificationMethod::Passkey,
                at: 1_000_000,
            }),
            scoped: true,
            ..facts(ChallengeSucceeded)
        });
        for f in dead_states {
            assert!(token_grants(&f).is_empty(), "{f:?}");
            for r in CLIENT_ROUTES {
                assert!(
                    !matches!(decide(r, &Caller::Token(f)), Verdict::Allowed(_)),
                    "{:?} {f:?}",
                    r.id
                );
            }
        }
    }

    #[test]
    fn proofs_are_fresh_for_five_minutes_and_only_strong_ones_regenerate_codes() {
        let at = |dt: i64, m| TokenFacts {
            proof: Some(Proof {
                method: m,
                at: 1_000_000 - dt,
            }),
            ..facts(ChallengeSucceeded)
        };
        let totp = VerificationMethod::AuthenticatorApp;
        assert!(token_grants(&at(0, totp)).has(Grant::RegenerateRecovery));
        assert!(token_grants(&at(300, totp)).has(Grant::RegenerateRecovery));
        assert!(!token_grants(&at(301, totp)).has(Grant::RegenerateRecovery));
        assert!(!token_grants(&at(301, totp)).has(Grant::Enroll));
        assert!(
            !token_grants(&at(-5, totp)).has(Grant::Enroll),
            "future proof"
        );
        let email = at(0, VerificationMethod::EmailOtp);
        assert!(token_grants(&email).has(Grant::Enroll));
        assert!(!token_grants(&email).has(Grant::RegenerateRecovery));
        let rc = at(0, VerificationMethod::RecoveryCode);
        assert!(!token_grants(&rc).has(Grant::RegenerateRecovery));
        // A proof on an action that is not (or no longer) succeeded proves nothing.
        let stale = TokenFacts {
            action: Some((ChallengeRequired, false)),
            ..at(0, totp)
        };
        assert!(!token_grants(&stale).has(Grant::RegenerateRecovery));
        assert!(!token_grants(&stale).has(Grant::Enroll));
    }

    #[test]
    fn a_bare_track_token_cannot_regenerate_or_enroll_for_an_enrolled_user() {
        let g = token_grants(&facts(ChallengeRequired));
        assert!(g.has(Grant::Challenge));
        assert!(!g.has(Grant::Enroll));
        assert!(!g.has(Grant::RegenerateRecovery));
        let first = TokenFacts {
            has_verified: false,
            has_strong: false,
            ..facts(ChallengeRequired)
        };
        assert!(token_grants(&first).has(Grant::Enroll));
        assert!(!token_grants(&first).has(Grant::RegenerateRecovery));
    }

    #[test]
    fn basic_callers_get_only_their_column() {
        for r in CLIENT_ROUTES {
            let v = decide(r, &Caller::Tenant);
            assert_eq!(
                matches!(v, Verdict::Allowed(_)),
                r.tenant.is_some(),
                "{:?}",
                r.id
            );
        }
    }

    #[test]
    fn the_markdown_has_a_line_per_route() {
        let md = markdown();
        assert_eq!(md.lines().count(), CLIENT_ROUTES.len() + 2);
        assert!(md.contains("| `POST /client/user-authenticators/recovery-codes` | regenerate recovery codes | not accepted (401) |"));
    }
}
