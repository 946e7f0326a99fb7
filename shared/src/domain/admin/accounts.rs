//! Accounts of the management plane, their invites and their sessions.
//!
//! **No password path.** An account is a user of the *console tenant*, an ordinary Latchkey
//! tenant the deployment creates for its own staff and customers' admins (`latchkey-admin
//! console init`): its passkeys are registered and checked by Latchkey's own Client API
//! ceremonies (user verification required), exactly as a customer's users' are. The admin
//! function is that tenant's backend: it tracks the console's actions ([`SIGN_IN`], [`ENROLL`],
//! [`REAUTH`]) and validates the tokens those ceremonies return, in process.
//!
//! **Invites.** An invite (`lki_…`, single use, at most [`MAX_INVITE_HOURS`]) names a tenant and
//! a role, or the operator role on the platform. Accepting one gives a fresh account id and a
//! Client API token to register a passkey with; the account (with its membership) is created
//! only when a passkey ceremony on that token succeeded, in the same transaction that spends the
//! invite and opens the session. A signed-in person accepting an invite gains the membership at
//! once.
//!
//! **Sessions.** A cookie value `lks_…` (256 random bits, stored as a keyed hash), idle expiry
//! [`IDLE_MINUTES`], absolute expiry [`ABSOLUTE_HOURS`], revocable server-side (sign-out, or the
//! account's removal). The cookie's attributes are the admin function's business.
//!
//! Items: `PLATFORM#CONSOLE` / `CONSOLE` (the console tenant's id); `ADMIN#ACCOUNT#{id}` /
//! `ACCOUNT` (operator flag, memberships); `T#{tenant}#MEMBERS` / `M#{account}` (the tenant's
//! member list); `ADMIN#INVITE#{id}` / `INVITE`; `ADMIN#SESSION#{id}` / `SESSION`.
use super::Role;
use super::credential::{self, INVITE, SESSION};
use crate::domain::Error;
use crate::domain::Services;
use crate::domain::actions::{self, TrackAttributes};
use crate::domain::audit::Change;
use crate::domain::audit::{AuditContext, CommitError, PLATFORM_JOURNAL};
use crate::domain::tenants::{self, Tenant, TenantSettings};
use crate::domain::timestamps::Timestamp as _;
use crate::ports::random::RandomExt as _;
use crate::ports::store::{Condition, Item, Query, WriteOp};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The console's usernameless sign-in.
pub const SIGN_IN: &str = "admin-sign-in";
/// Registering an invited person's first passkey.
pub const ENROLL: &str = "admin-enroll";
/// A fresh passkey check before a grave step (deleting a tenant), or before adding another
/// passkey (the Client API lets a fresh proof enroll).
pub const REAUTH: &str = "admin-reauth";

pub const IDLE_MINUTES: i64 = 30;
pub const ABSOLUTE_HOURS: i64 = 12;
pub const MAX_INVITE_HOURS: i64 = 72;
/// A session's last-seen time is written at most this often (not on every request).
pub const TOUCH_SECONDS: i64 = 60;
/// How long a passkey check counts for a grave step.
pub const REAUTH_SECONDS: i64 = 5 * 60;

use crate::domain::tenants::CONSOLE_PK;
/// The session cookie's name on a localhost console (the admin function sets it; the status
/// function reads it too). Elsewhere it is [`SESSION_COOKIE_HOST`].
pub const SESSION_COOKIE: &str = "lk_session";
/// The session cookie's name on an https console: the `__Host-` prefix makes the browser
/// refuse it unless Secure, for `/`, without a Domain, so a sibling subdomain cannot plant one.
pub const SESSION_COOKIE_HOST: &str = "__Host-lk_session";

/// The cookie name for this console: `__Host-lk_session`, or `lk_session` when the console is
/// on localhost (plain http, where no Secure cookie is kept).
pub fn cookie_name(console: &Tenant) -> &'static str {
    if console.settings.rp_id == "localhost" {
        SESSION_COOKIE
    } else {
        SESSION_COOKIE_HOST
    }
}

/// The session cookie's value among a request's `Cookie` headers, under the console's name.
pub fn session_cookie<'a>(
    console: &Tenant,
    cookies: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let name = cookie_name(console);
    cookies
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

fn account_pk(id: &str) -> String {
    format!("ADMIN#ACCOUNT#{id}")
}

fn invite_pk(id: &str) -> String {
    format!("ADMIN#INVITE#{id}")
}

fn session_pk(id: &str) -> String {
    format!("ADMIN#SESSION#{id}")
}

pub fn members_pk(tenant_id: &str) -> String {
    format!("T#{tenant_id}#MEMBERS")
}

/// A person of the management plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    pub operator: bool,
    pub memberships: BTreeMap<String, Role>,
    /// Sessions opened before this instant (Unix ms) are refused: a recovery cuts off whoever
    /// held the lost passkeys.
    #[serde(skip)]
    pub sessions_after: i64,
    /// When the account was made (kept by every later write of the record).
    #[serde(skip)]
    pub created_at: String,
    #[serde(skip)]
    pub version: u64,
}

impl Account {
    fn from_item(item: &Item) -> Option<Account> {
        let id = item.pk.strip_prefix("ADMIN#ACCOUNT#")?.to_owned();
        let memberships = item
            .attrs
            .get("memberships")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(t, r)| Some((t.clone(), Role::parse(r.as_str()?).ok()?)))
                    .collect()
            })
            .unwrap_or_default();
        Some(Account {
            id,
            operator: item.attrs.get("operator").and_then(Value::as_bool) == Some(true),
            memberships,
            sessions_after: item
                .attrs
                .get("sessionsAfter")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            created_at: item.str("createdAt").unwrap_or_default().to_owned(),
            version: item.version,
        })
    }

    /// The record; `now` is its creation time when it has none yet.
    fn item(&self, now: &str) -> Item {
        let created_at = if self.created_at.is_empty() {
            now
        } else {
            self.created_at.as_str()
        };
        let memberships: serde_json::Map<String, Value> = self
            .memberships
            .iter()
            .map(|(t, r)| (t.clone(), json!(r.as_str())))
            .collect();
        Item::new(account_pk(&self.id), "ACCOUNT")
            .with("operator", self.operator)
            .with("memberships", Value::Object(memberships))
            .with("sessionsAfter", self.sessions_after)
            .with("createdAt", created_at)
    }
}

/// A signed-in person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    #[serde(skip)]
    pub id: String,
    pub account: Account,
    /// When the session ends whatever happens (RFC 3339).
    pub expires_at: String,
    /// When it ends if unused.
    pub idle_expires_at: String,
}

/// What an invite is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invitee {
    Member {
        tenant_id: String,
        role: Role,
    },
    Operator,
    /// A member who lost their passkeys: accepting retires the old ones and registers a new
    /// one for the same account. Made by another owner or admin of the account's one tenant,
    /// or by an operator under a configuration grant ([`create_invite`] says for whom).
    Recovery {
        tenant_id: String,
        account_id: String,
    },
}

/// An invite that is live.
#[derive(Debug, Clone)]
struct Invite {
    id: String,
    for_: Invitee,
    item: Item,
}

/// An invite as its maker sees it (the token is shown once, at creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteInfo {
    pub invite_id: String,
    pub tenant_id: Option<String>,
    pub role: String,
    pub expires_at: String,
}

/// A tenant's open invites: `T#{tenant}#INVITES` / `I#{invite id}`.
pub fn invites_pk(tenant_id: &str) -> String {
    format!("T#{tenant_id}#INVITES")
}

/// The writes that spend an invite: its record (on its version: spent once) and its entry on
/// the tenant's list.
fn spend(invite: &Invite) -> Vec<WriteOp> {
    let mut ops = vec![WriteOp::Delete {
        pk: invite.item.pk.clone(),
        sk: invite.item.sk.clone(),
        condition: Condition::Version(invite.item.version),
    }];
    if let Some(t) = invite.item.str("tenantId") {
        ops.push(WriteOp::Delete {
            pk: invites_pk(t),
            sk: format!("I#{}", invite.id),
            condition: Condition::None,
        });
    }
    ops
}

/// One open invite as the tenant's people see it (never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenInvite {
    pub invite_id: String,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    pub created_by: String,
    pub expires_at: String,
}

/// The tenant's invites not yet accepted nor expired.
pub async fn list_invites(services: &Services, tenant_id: &str) -> Result<Vec<OpenInvite>, Error> {
    let now = services.clock.now().unix_timestamp();
    let page = services
        .store
        .query(
            Query::partition(invites_pk(tenant_id))
                .prefix("I#")
                .limit(1000),
        )
        .await?;
    Ok(page
        .items
        .iter()
        .filter(|i| i.ttl.is_none_or(|t| t > now))
        .filter_map(|i| {
            Some(OpenInvite {
                invite_id: i.sk.strip_prefix("I#")?.to_owned(),
                role: i.str("role")?.to_owned(),
                account_id: i.str("accountId").map(str::to_owned),
                created_by: i.str("createdBy").unwrap_or_default().to_owned(),
                expires_at: i.str("expiresAt").unwrap_or_default().to_owned(),
            })
        })
        .collect())
}

/// Revokes an open invite of `tenant_id`; returns the role it was for (owner invites are the
/// owners' to revoke: the caller checks).
pub async fn invite_role(
    services: &Services,
    tenant_id: &str,
    invite_id: &str,
) -> Result<String, Error> {
    services
        .store
        .get(&invites_pk(tenant_id), &format!("I#{invite_id}"))
        .await?
        .and_then(|i| i.str("role").map(str::to_owned))
        .ok_or(Error::NotFound("invite"))
}

/// Revokes an open invite of `tenant_id`, in one audited transaction.
pub async fn revoke_invite(
    services: &Services,
    ctx: &AuditContext,
    tenant_id: &str,
    invite_id: &str,
) -> Result<(), Error> {
    let record = services
        .store
        .get(&invite_pk(invite_id), "INVITE")
        .await?
        .filter(|i| i.str("tenantId") == Some(tenant_id))
        .ok_or(Error::NotFound("invite"))?;
    let change = Change {
        action: "admin.invite.revoke",
        target: format!("invite:{invite_id}"),
        summary: json!({ "role": record.str("role") }),
        ops: vec![
            WriteOp::Delete {
                pk: record.pk.clone(),
                sk: record.sk.clone(),
                condition: Condition::Version(record.version),
            },
            WriteOp::Delete {
                pk: invites_pk(tenant_id),
                sk: format!("I#{invite_id}"),
                condition: Condition::None,
            },
        ],
    };
    match services.journal.commit(tenant_id, ctx, change).await {
        Ok(_) => Ok(()),
        Err(CommitError::Condition { .. }) => Err(Error::NotFound("invite")),
        Err(e) => Err(e.into()),
    }
}

/// The console tenant.
pub async fn console(services: &Services) -> Result<Tenant, Error> {
    // Read on every request with a session cookie: through the record cache.
    let item = tenants::cached_record(services, CONSOLE_PK, "CONSOLE")
        .await?
        .ok_or_else(|| {
            Error::Misconfigured(
                "no console tenant: run `latchkey-admin console init --origin <console origin>`"
                    .into(),
            )
        })?;
    let id = item
        .str("tenantId")
        .ok_or_else(|| Error::Internal("console record".into()))?;
    tenants::get_tenant(services, id)
        .await?
        .ok_or_else(|| Error::Misconfigured("the console tenant is gone".into()))
}

/// Whether `origin` is one of the console tenant's (`http://localhost:*` allows any port): a
/// state-changing request made with the session cookie must come from there.
pub fn console_allows(console: &Tenant, origin: &str) -> bool {
    console.settings.allowed_origins.iter().any(|o| {
        o == origin
            || (o == "http://localhost:*"
                && origin
                    .strip_prefix("http://localhost:")
                    .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
    })
}

/// The console's tenant id, if the console was set up.
pub async fn console_id(services: &Services) -> Result<Option<String>, Error> {
    Ok(tenants::cached_record(services, CONSOLE_PK, "CONSOLE")
        .await?
        .and_then(|i| i.str("tenantId").map(str::to_owned)))
}

/// Sets up the console tenant (passkeys only, RP id the host of the first origin) and records
/// it, or, when there is one, sets its origins. Returns the tenant.
pub async fn init_console(
    services: &Services,
    ctx: &AuditContext,
    tenant_id: &str,
    origins: Vec<String>,
) -> Result<Tenant, Error> {
    let first = origins
        .first()
        .ok_or_else(|| Error::Invalid("the console needs at least one origin".into()))?;
    tenants::validate_origins(&origins).map_err(Error::Invalid)?;
    let rp_id = first
        .split_once("://")
        .map(|(_, host)| host.split(':').next().unwrap_or(host).to_owned())
        .ok_or_else(|| Error::Invalid("origin must be scheme://host".into()))?;
    if let Some(existing) = console_id(services).await? {
        let change = tenants::SettingsChange {
            rp_id: Some(rp_id),
            allowed_origins: Some(origins),
            ..Default::default()
        };
        tenants::update_settings(services, ctx, &existing, change).await?;
        return tenants::get_tenant(services, &existing)
            .await?
            .ok_or(Error::NotFound("tenant"));
    }
    let settings = TenantSettings {
        name: "Latchkey console".into(),
        rp_id,
        allowed_origins: origins,
        actions: BTreeMap::new(),
        allowed_methods: vec!["PASSKEY".into()],
    };
    let marker = Item::new(CONSOLE_PK, "CONSOLE").with("tenantId", tenant_id);
    tenants::create_tenant(
        services,
        ctx,
        tenant_id,
        settings,
        vec![WriteOp::Put {
            item: marker,
            condition: Condition::Absent,
        }],
    )
    .await
}

pub async fn get_account(services: &Services, id: &str) -> Result<Option<Account>, Error> {
    Ok(services
        .store
        .get(&account_pk(id), "ACCOUNT")
        .await?
        .as_ref()
        .and_then(Account::from_item))
}

/// Makes an invite; returns it and its token (shown once). Member invites are audited in the
/// tenant's log, operator invites in the platform's.
pub async fn create_invite(
    services: &Services,
    ctx: &AuditContext,
    invitee: Invitee,
    hours: i64,
) -> Result<(InviteInfo, String), Error> {
    if !(1..=MAX_INVITE_HOURS).contains(&hours) {
        return Err(Error::Invalid(format!(
            "hours must be from 1 to {MAX_INVITE_HOURS}"
        )));
    }
    let (journal, tenant_id, role) = match &invitee {
        Invitee::Member { tenant_id, role } => {
            if tenants::get_tenant(services, tenant_id).await?.is_none() {
                return Err(Error::NotFound("tenant"));
            }
            tenants::refuse_console(services, tenant_id).await?;
            (tenant_id.clone(), Some(tenant_id.clone()), role.as_str())
        }
        Invitee::Operator => (PLATFORM_JOURNAL.to_owned(), None, "operator"),
        Invitee::Recovery {
            tenant_id,
            account_id,
        } => {
            // Only an account of this one tenant: recovering an account that is also another
            // tenant's member (or an operator) from here would hand this tenant's admins the
            // other tenant too.
            let account = get_account(services, account_id)
                .await?
                .ok_or(Error::NotFound("member"))?;
            if !recoverable(&account, tenant_id, None) {
                return Err(Error::Refused(
                    "the account belongs to other tenants or is an operator: it is recovered by Latchkey's operators with each tenant's grant, not from one tenant".into(),
                ));
            }
            (tenant_id.clone(), Some(tenant_id.clone()), "recovery")
        }
    };
    let minted = credential::mint(services, INVITE).await?;
    let now = services.clock.now();
    let expires = now + time::Duration::hours(hours);
    let mut item = Item::new(invite_pk(&minted.id), "INVITE")
        .with("role", role)
        .with("hash", minted.hash)
        .with("gen", minted.generation)
        .with("createdBy", ctx.actor.clone())
        .with("createdAt", now.rfc3339()?)
        .with("expiresAt", expires.rfc3339()?)
        .with("expiresEpoch", expires.unix_timestamp())
        .with_ttl(expires.unix_timestamp());
    if let Some(t) = &tenant_id {
        item = item.with("tenantId", t.clone());
    }
    let mut summary = json!({ "role": role, "hours": hours });
    if let Invitee::Recovery {
        account_id,
        tenant_id,
    } = &invitee
    {
        let held = get_account(services, account_id)
            .await?
            .and_then(|a| a.memberships.get(tenant_id).copied())
            .ok_or(Error::NotFound("member"))?;
        item = item
            .with("accountId", account_id.clone())
            .with("memberRole", held.as_str());
        summary["account"] = json!(account_id);
    }
    let mut ops = Vec::new();
    if let Some(t) = &tenant_id {
        // The tenant's list of open invites, for its people to see and revoke.
        let entry = Item::new(invites_pk(t), format!("I#{}", minted.id))
            .with("role", role)
            .with("createdBy", ctx.actor.clone())
            .with("expiresAt", expires.rfc3339()?)
            .with_ttl(expires.unix_timestamp());
        let entry = match &invitee {
            Invitee::Recovery { account_id, .. } => entry.with("accountId", account_id.clone()),
            _ => entry,
        };
        ops.push(WriteOp::Put {
            item: entry,
            condition: Condition::Absent,
        });
    }
    ops.push(WriteOp::Put {
        item,
        condition: Condition::Absent,
    });
    let change = Change {
        action: "admin.invite",
        target: format!("invite:{}", minted.id),
        summary,
        ops,
    };
    services.journal.commit(&journal, ctx, change).await?;
    Ok((
        InviteInfo {
            invite_id: minted.id,
            tenant_id,
            role: role.to_owned(),
            expires_at: expires.rfc3339()?,
        },
        minted.token,
    ))
}

/// A live invite, or `Unauthorized` (unknown, spent, expired, or not this token).
async fn live_invite(services: &Services, token: &str) -> Result<Invite, Error> {
    let id = credential::id_of(INVITE, token).ok_or(Error::Unauthorized)?;
    let item = services
        .store
        .get(&invite_pk(id), "INVITE")
        .await?
        .ok_or(Error::Unauthorized)?;
    let now = services.clock.now().unix_timestamp();
    let live = item
        .attrs
        .get("expiresEpoch")
        .and_then(Value::as_i64)
        .is_some_and(|at| at > now);
    if !live || !credential::matches(services, &item, token).await? {
        return Err(Error::Unauthorized);
    }
    let for_ = match (item.str("role"), item.str("tenantId")) {
        (Some("operator"), None) => Invitee::Operator,
        (Some("recovery"), Some(tenant_id)) => Invitee::Recovery {
            tenant_id: tenant_id.to_owned(),
            account_id: item.str("accountId").ok_or(Error::Unauthorized)?.to_owned(),
        },
        (Some(role), Some(tenant_id)) => Invitee::Member {
            tenant_id: tenant_id.to_owned(),
            role: Role::parse(role)?,
        },
        _ => return Err(Error::Unauthorized),
    };
    Ok(Invite {
        id: id.to_owned(),
        for_,
        item,
    })
}

/// What accepting an invite gives someone not signed in: the account id their passkey will be
/// registered for, and a console token (Client API, `Bearer`) to register it with.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrollment {
    pub account_id: String,
    pub console_tenant_id: String,
    pub token: String,
}

/// Starts accepting an invite: checks it is live, and tracks [`ENROLL`] for a new account id
/// on the console tenant. The invite is spent only by [`sign_in`] with the token that
/// ceremony returns.
pub async fn begin_enrollment(services: &Services, invite: &str) -> Result<Enrollment, Error> {
    let invite = live_invite(services, invite).await?;
    let console = console(services).await?;
    // A recovery retires the account's lost passkeys first: the account then registers a new
    // one exactly as a new account registers its first (the ceremony that settles the console
    // action), and nothing lost or stolen signs in again.
    let account_id = match &invite.for_ {
        Invitee::Recovery {
            tenant_id,
            account_id,
        } => {
            claim_recovery(services, &invite, tenant_id, account_id).await?;
            account_id.clone()
        }
        _ => format!("acct_{}", services.random.hex_id(12)),
    };
    let ctx = AuditContext::system("console", format!("enroll-{account_id}"));
    let tracked = actions::track(
        services,
        &console,
        &ctx,
        &account_id,
        ENROLL,
        TrackAttributes::default(),
    )
    .await?;
    Ok(Enrollment {
        account_id,
        console_tenant_id: console.id,
        token: tracked.token,
    })
}

/// A console token for a signed-in account's fresh passkey check ([`REAUTH`]).
pub async fn begin_reauth(services: &Services, session: &Session) -> Result<String, Error> {
    let console = console(services).await?;
    let ctx = AuditContext::system("console", format!("reauth-{}", session.id));
    Ok(actions::track(
        services,
        &console,
        &ctx,
        &session.account.id,
        REAUTH,
        TrackAttributes::default(),
    )
    .await?
    .token)
}

/// Validates a console token in process (spending it, as a backend's validate does): it must
/// be for `action`, valid, and proven by a passkey. Returns the account id (the token's user).
async fn passkey_proof(
    services: &Services,
    ctx: &AuditContext,
    token: &str,
    actions_allowed: &[&str],
    max_age: Option<i64>,
) -> Result<String, Error> {
    let console = console(services).await?;
    let ctx = AuditContext {
        actor: "system:console".into(),
        ..ctx.clone()
    };
    let v = actions::validate(services, &console, &ctx, token, None, None)
        .await
        .map_err(|e| match e {
            Error::Invalid(_) => Error::Unauthorized,
            other => other,
        })?;
    let proven = v.is_valid
        && v.action
            .as_deref()
            .is_some_and(|a| actions_allowed.contains(&a))
        && v.state.as_deref() == Some("CHALLENGE_SUCCEEDED")
        && v.verification_method.as_deref() == Some("PASSKEY");
    let fresh = match (max_age, v.state_updated_at.as_deref()) {
        (None, _) => true,
        (Some(max), Some(at)) => {
            time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                .is_ok_and(|t| (services.clock.now() - t).whole_seconds() <= max)
        }
        (Some(_), None) => false,
    };
    match (proven && fresh, v.user_id) {
        (true, Some(user)) => Ok(user),
        _ => Err(Error::Unauthorized),
    }
}

/// Checks a fresh passkey proof ([`REAUTH`], at most [`REAUTH_SECONDS`] old) of the session's
/// own account, for a grave step.
pub async fn check_reauth(
    services: &Services,
    ctx: &AuditContext,
    session: &Session,
    token: &str,
) -> Result<(), Error> {
    let who = passkey_proof(services, ctx, token, &[REAUTH], Some(REAUTH_SECONDS))
        .await
        .map_err(|_| {
            Error::Refused("a fresh passkey check of your own account is required".into())
        })?;
    if who != session.account.id {
        return Err(Error::Refused(
            "a fresh passkey check of your own account is required".into(),
        ));
    }
    Ok(())
}

fn membership_entry(tenant_id: &str, account: &str, role: Role, since: &str) -> Item {
    Item::new(members_pk(tenant_id), format!("M#{account}"))
        .with("role", role.as_str())
        .with("since", since)
}

/// Signs in with a console token whose passkey ceremony succeeded: [`SIGN_IN`] for an existing
/// account, or [`ENROLL`] with the invite it was begun for (which this spends, creating the
/// account and its membership). Returns the session and its cookie value (shown once).
pub async fn sign_in(
    services: &Services,
    ctx: &AuditContext,
    token: &str,
    invite: Option<&str>,
) -> Result<(Session, String), Error> {
    // With an invite: the passkey registered on accepting it. Without: a sign-in, or the
    // passkey a recovery registered (an ENROLL token for an account that exists comes only
    // from a claimed recovery: member invites always make new accounts).
    let actions: &[&str] = if invite.is_some() {
        &[ENROLL]
    } else {
        &[SIGN_IN, ENROLL]
    };
    // The invite is checked before the token is spent, so a wrong invite costs no ceremony.
    let invite = match invite {
        Some(t) => Some(live_invite(services, t).await?),
        None => None,
    };
    let account_id = passkey_proof(services, ctx, token, actions, None).await?;
    let existing = get_account(services, &account_id).await?;
    let now = services.clock.now();
    let now_text = now.rfc3339()?;
    let mut ops = Vec::new();
    let (account, journal, change_action, summary, target) = match invite {
        None => {
            let account = existing.ok_or(Error::Unauthorized)?;
            (
                account,
                PLATFORM_JOURNAL.to_owned(),
                "admin.sign_in",
                json!({}),
                String::new(),
            )
        }
        Some(invite) => {
            let mut account = existing.clone().unwrap_or(Account {
                id: account_id.clone(),
                operator: false,
                memberships: BTreeMap::new(),
                sessions_after: 0,
                created_at: String::new(),
                version: 0,
            });
            let journal = accept_into(&mut account, &invite, &now_text, &mut ops)?;
            let summary = json!({ "role": invite.item.str("role") });
            ops.extend(spend(&invite));
            (
                account,
                journal,
                "admin.join",
                summary,
                format!("invite:{}", invite.id),
            )
        }
    };
    let minted = credential::mint(services, SESSION).await?;
    let absolute = now + time::Duration::hours(ABSOLUTE_HOURS);
    let idle = now + time::Duration::minutes(IDLE_MINUTES);
    let session_item = Item::new(session_pk(&minted.id), "SESSION")
        .with("accountId", account.id.clone())
        .with("hash", minted.hash)
        .with("gen", minted.generation)
        .with("createdAt", now_text.clone())
        .with(
            "createdMs",
            i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX),
        )
        .with("expiresEpoch", absolute.unix_timestamp())
        .with("lastSeenEpoch", now.unix_timestamp())
        .with_ttl(absolute.unix_timestamp());
    ops.push(WriteOp::Put {
        item: session_item,
        condition: Condition::Absent,
    });
    let target = if target.is_empty() {
        format!("account:{}", account.id)
    } else {
        target
    };
    let change = Change {
        action: change_action,
        target,
        summary: json!({ "account": account.id, "detail": summary }),
        ops,
    };
    match services.journal.commit(&journal, ctx, change).await {
        Ok(_) => {}
        Err(CommitError::Condition { .. }) => {
            return Err(Error::Conflict(
                "the invite or account changed; sign in again",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    // The account as written (its version moved on if it was).
    let account = get_account(services, &account.id)
        .await?
        .ok_or(Error::Unauthorized)?;
    Ok((
        Session {
            id: minted.id,
            account,
            expires_at: absolute.rfc3339()?,
            idle_expires_at: idle.rfc3339()?,
        },
        minted.token,
    ))
}

/// Whether `account` may be recovered from `tenant_id`: a member of that tenant alone (with the
/// role the invite recorded, when given), and no operator. Checked when the invite is made and
/// again, under the account's version, when it is claimed: an account that joined another
/// tenant or became an operator meanwhile is not handed over by this tenant's people.
fn recoverable(account: &Account, tenant_id: &str, role: Option<&str>) -> bool {
    account.memberships.len() == 1
        && account
            .memberships
            .get(tenant_id)
            .is_some_and(|r| role.is_none_or(|want| r.as_str() == want))
        && !account.operator
}

/// Claims a recovery invite, in one audited transaction in the tenant's log
/// (`admin.recover`, naming the account): the invite is spent, and every session of the
/// account opened before now is cut off, on condition that the account is unchanged since it
/// was checked. Then the account's passkeys are retired (each audited in the console's log),
/// and the claimer registers a new one with the console token [`begin_enrollment`] answers.
async fn claim_recovery(
    services: &Services,
    invite: &Invite,
    tenant_id: &str,
    account_id: &str,
) -> Result<(), Error> {
    let ctx = AuditContext::system("console", format!("recover-{account_id}"));
    let mut account = get_account(services, account_id)
        .await?
        .ok_or(Error::Unauthorized)?;
    if !recoverable(&account, tenant_id, invite.item.str("memberRole")) {
        return Err(Error::Refused(
            "the account changed since the recovery invite was made; ask for a new one".into(),
        ));
    }
    let now = services.clock.now();
    account.sessions_after = i64::try_from(now.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| Error::Internal("clock".into()))?;
    let version = account.version;
    let change = Change {
        action: "admin.recover",
        target: format!("account:{account_id}"),
        summary: json!({ "invite": invite.id }),
        ops: spend(invite)
            .into_iter()
            .chain([WriteOp::Put {
                item: account.item(&now.rfc3339()?).with_version(version + 1),
                condition: Condition::Version(version),
            }])
            .collect(),
    };
    match services.journal.commit(tenant_id, &ctx, change).await {
        Ok(_) => {}
        Err(CommitError::Condition { .. }) => {
            return Err(Error::Conflict("the invite or account changed; try again"));
        }
        Err(e) => return Err(e.into()),
    }
    retire_passkeys(services, &ctx, account_id).await
}

/// A recovery's first step: every passkey of the account is removed (lost, or in someone
/// else's hands), each audited in the console tenant's log.
async fn retire_passkeys(
    services: &Services,
    ctx: &AuditContext,
    account_id: &str,
) -> Result<(), Error> {
    let console = console(services).await?;
    for old in crate::domain::authenticators::list(services, &console, account_id).await? {
        crate::domain::enrollment::delete(
            services,
            &console,
            ctx,
            account_id,
            &old.user_authenticator_id,
        )
        .await?;
    }
    Ok(())
}

/// Adds what `invite` gives to `account` as write operations (the account record under its
/// version, the tenant's member entry), and returns the journal the change belongs to. A
/// person already in the tenant is refused: an invite never changes a role (a viewer's invite
/// accepted by an owner would demote them).
fn accept_into(
    account: &mut Account,
    invite: &Invite,
    now: &str,
    ops: &mut Vec<WriteOp>,
) -> Result<String, Error> {
    let journal = match &invite.for_ {
        Invitee::Recovery { .. } => {
            return Err(Error::Invalid(
                "a recovery invite is accepted signed out, with a new passkey".into(),
            ));
        }
        Invitee::Operator => {
            account.operator = true;
            PLATFORM_JOURNAL.to_owned()
        }
        Invitee::Member { tenant_id, role } => {
            if account.memberships.contains_key(tenant_id) {
                return Err(Error::Invalid(
                    "you are a member of this tenant already".into(),
                ));
            }
            account.memberships.insert(tenant_id.clone(), *role);
            ops.push(WriteOp::Put {
                item: membership_entry(tenant_id, &account.id, *role, now),
                condition: Condition::None,
            });
            tenant_id.clone()
        }
    };
    let condition = if account.version == 0 {
        Condition::Absent
    } else {
        Condition::Version(account.version)
    };
    ops.push(WriteOp::Put {
        item: account.item(now).with_version(account.version + 1),
        condition,
    });
    Ok(journal)
}

/// A signed-in person accepts another invite: the membership (or operator role) is theirs at
/// once, and the invite is spent.
pub async fn accept_signed_in(
    services: &Services,
    ctx: &AuditContext,
    session: &Session,
    invite: &str,
) -> Result<Account, Error> {
    let invite = live_invite(services, invite).await?;
    let mut account = session.account.clone();
    let now = services.clock.now().rfc3339()?;
    let mut ops = Vec::new();
    let journal = accept_into(&mut account, &invite, &now, &mut ops)?;
    ops.extend(spend(&invite));
    let change = Change {
        action: "admin.join",
        target: format!("invite:{}", invite.id),
        summary: json!({ "account": account.id, "detail": { "role": invite.item.str("role") } }),
        ops,
    };
    match services.journal.commit(&journal, ctx, change).await {
        Ok(_) => {}
        Err(CommitError::Condition { .. }) => {
            return Err(Error::Conflict("the invite or account changed; try again"));
        }
        Err(e) => return Err(e.into()),
    }
    get_account(services, &account.id)
        .await?
        .ok_or(Error::Unauthorized)
}

/// Checks a session cookie value: one read of the session and one of its account; refuses an
/// unknown, revoked, idle or expired session alike. Records use at most every
/// [`TOUCH_SECONDS`] (the idle clock), with a conditional write that is not audited: it
/// changes no one's data, only when the session would lapse.
pub async fn authenticate(services: &Services, token: &str) -> Result<Session, Error> {
    let id = credential::id_of(SESSION, token).ok_or(Error::Unauthorized)?;
    let item = services
        .store
        .get(&session_pk(id), "SESSION")
        .await?
        .ok_or(Error::Unauthorized)?;
    let now = services.clock.now();
    let at = now.unix_timestamp();
    let absolute = item
        .attrs
        .get("expiresEpoch")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let last_seen = item
        .attrs
        .get("lastSeenEpoch")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if item.str("revokedAt").is_some()
        || absolute <= at
        || last_seen + IDLE_MINUTES * 60 <= at
        || !credential::matches(services, &item, token).await?
    {
        return Err(Error::Unauthorized);
    }
    let account_id = item.str("accountId").ok_or(Error::Unauthorized)?;
    let account = get_account(services, account_id)
        .await?
        .ok_or(Error::Unauthorized)?;
    let created_ms = item
        .attrs
        .get("createdMs")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if created_ms < account.sessions_after {
        return Err(Error::Unauthorized);
    }
    if at - last_seen >= TOUCH_SECONDS {
        let version = item.version;
        let touched = item
            .clone()
            .with("lastSeenEpoch", at)
            .with_version(version + 1);
        // A concurrent request touched it first: as good.
        let _ = services
            .store
            .put(touched, Condition::Version(version))
            .await;
    }
    let last = if at - last_seen >= TOUCH_SECONDS {
        at
    } else {
        last_seen
    };
    Ok(Session {
        id: id.to_owned(),
        account,
        expires_at: time::OffsetDateTime::from_unix_timestamp(absolute)
            .map_err(|e| Error::Internal(e.to_string()))?
            .rfc3339()?,
        idle_expires_at: time::OffsetDateTime::from_unix_timestamp(last + IDLE_MINUTES * 60)
            .map_err(|e| Error::Internal(e.to_string()))?
            .rfc3339()?,
    })
}

/// Ends a session server-side: its cookie is refused from now on.
pub async fn sign_out(
    services: &Services,
    ctx: &AuditContext,
    session: &Session,
) -> Result<(), Error> {
    let change = Change {
        action: "admin.sign_out",
        target: format!("account:{}", session.account.id),
        summary: json!({}),
        ops: vec![WriteOp::Delete {
            pk: session_pk(&session.id),
            sk: "SESSION".into(),
            condition: Condition::None,
        }],
    };
    services
        .journal
        .commit(PLATFORM_JOURNAL, ctx, change)
        .await?;
    Ok(())
}

/// One member of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub account_id: String,
    pub role: Role,
    pub since: String,
}

/// The tenant's members.
pub async fn members(services: &Services, tenant_id: &str) -> Result<Vec<Member>, Error> {
    let items = crate::ports::store::query_all(
        &*services.store,
        Query::partition(members_pk(tenant_id))
            .prefix("M#")
            .limit(100),
    )
    .await?;
    Ok(items
        .iter()
        .filter_map(|i| {
            Some(Member {
                account_id: i.sk.strip_prefix("M#")?.to_owned(),
                role: Role::parse(i.str("role")?).ok()?,
                since: i.str("since").unwrap_or_default().to_owned(),
            })
        })
        .collect())
}

/// Removes a member from a tenant (their account keeps its other memberships). The last
/// owner cannot be removed: a tenant always has someone who can recover it.
pub async fn remove_member(
    services: &Services,
    ctx: &AuditContext,
    tenant_id: &str,
    account_id: &str,
) -> Result<(), Error> {
    let mut account = get_account(services, account_id)
        .await?
        .ok_or(Error::NotFound("member"))?;
    let Some(role) = account.memberships.remove(tenant_id) else {
        return Err(Error::NotFound("member"));
    };
    // Removing an owner: the other owners' entries must still be there when it commits, so two
    // owners removing each other at once cannot leave the tenant without one.
    let mut other_owners = Vec::new();
    if role == Role::Owner {
        other_owners = members(services, tenant_id)
            .await?
            .into_iter()
            .filter(|m| m.role == Role::Owner && m.account_id != account_id)
            .map(|m| WriteOp::Check {
                pk: members_pk(tenant_id),
                sk: format!("M#{}", m.account_id),
                condition: Condition::Exists,
            })
            .collect();
        if other_owners.is_empty() {
            return Err(Error::Invalid(
                "the tenant's last owner cannot be removed".into(),
            ));
        }
    }
    let now = services.clock.now().rfc3339()?;
    let version = account.version;
    let mut ops = vec![
        WriteOp::Put {
            item: account.item(&now).with_version(version + 1),
            condition: Condition::Version(version),
        },
        WriteOp::Delete {
            pk: members_pk(tenant_id),
            sk: format!("M#{account_id}"),
            condition: Condition::Exists,
        },
    ];
    ops.extend(other_owners);
    let change = Change {
        action: "admin.remove",
        target: format!("account:{account_id}"),
        summary: json!({ "role": role }),
        ops,
    };
    match services.journal.commit(tenant_id, ctx, change).await {
        Ok(_) => Ok(()),
        Err(CommitError::Condition { .. }) => Err(Error::Conflict(
            "the tenant's members changed meanwhile; try again",
        )),
        Err(e) => Err(e.into()),
    }
}

/// The role a member holds in a tenant, read afresh (for owner-only checks on a member).
pub async fn role_of(
    services: &Services,
    tenant_id: &str,
    account_id: &str,
) -> Result<Option<Role>, Error> {
    Ok(services
        .store
        .get(&members_pk(tenant_id), &format!("M#{account_id}"))
        .await?
        .and_then(|i| i.str("role").and_then(|r| Role::parse(r).ok())))
}
