//! The management plane's authorization model: who may do what to a tenant under `/v1/admin`.
//!
//! **Callers.** A person signed in with a passkey (a [`Session`] of an [`Account`]), or
//! automation with a management key ([`keys::ManagementKey`], scoped to one tenant and a role).
//!
//! **Permissions.** Every `/v1/admin` route names one [`Perm`] in the admin function's route
//! table; [`authorize`] is the one place that turns (caller, tenant, permission) into the
//! [`Basis`] the request acts on, or a refusal. A test walks every cell of the matrix.
//!
//! | permission | viewer | admin | owner | operator, read grant | operator, configuration grant | key (viewer / admin) |
//! |---|---|---|---|---|---|---|
//! | `Read` (settings, keys' metadata, users, audit log, grants, members) | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ / ✓ |
//! | `Configure` (name, RP id, origins, methods, actions and rules) | | ✓ | ✓ | | ✓ | — / ✓ |
//! | `Keys` (create, rotate, revoke secret keys) | | ✓ | ✓ | | | — / ✓ |
//! | `Users` (delete a user, export a user's data) | | ✓ | ✓ | | | — / ✓ |
//! | `Support` (grant and revoke support access) | | ✓ | ✓ | | | |
//! | `Members` (invite admins and viewers, remove them, mint management keys) | | ✓ | ✓ | | | |
//! | `Recover` (a recovery invite for a member who lost their passkeys) | | ✓ | ✓ | | ✓ | |
//! | `Own` (invite or remove owners, delete the tenant) | | | ✓ | | | |
//!
//! `Support`, `Members`, `Recover` and `Own` are for people only: a management key never holds them, so
//! no automation can hand out support access, make itself more keys, or delete the tenant. An
//! operator holds nothing of a tenant's without a live grant; an operator who is also a member
//! of the tenant acts as that member.
pub mod accounts;
mod credential;
pub mod grants;
pub mod keys;

pub use accounts::{Account, Session};
pub use grants::{Scope, SupportGrant};
pub use keys::ManagementKey;

use crate::domain::Error;
use crate::domain::Services;
use crate::domain::audit::{AuditContext, Change};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A member's role in a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Admin, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Result<Role, Error> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| Error::Invalid("role must be owner, admin or viewer".into()))
    }
}

/// What a route asks of its caller (see the module's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Perm {
    Read,
    Configure,
    Keys,
    Users,
    Support,
    Members,
    Recover,
    Own,
}

impl Perm {
    pub const ALL: [Perm; 8] = [
        Perm::Read,
        Perm::Configure,
        Perm::Keys,
        Perm::Users,
        Perm::Support,
        Perm::Members,
        Perm::Recover,
        Perm::Own,
    ];

    /// Whether only a person (a passkey session) may hold it.
    pub fn people_only(self) -> bool {
        matches!(
            self,
            Perm::Support | Perm::Members | Perm::Recover | Perm::Own
        )
    }

    pub fn describe(self) -> &'static str {
        match self {
            Perm::Read => "read the tenant",
            Perm::Configure => "change the tenant's settings",
            Perm::Keys => "manage secret keys",
            Perm::Users => "delete or export users",
            Perm::Support => "grant support access",
            Perm::Members => "manage members and management keys",
            Perm::Recover => "recover a member's account",
            Perm::Own => "manage owners or delete the tenant",
        }
    }
}

/// Whether a member with `role` holds `perm`.
pub fn role_allows(role: Role, perm: Perm) -> bool {
    match role {
        Role::Owner => true,
        Role::Admin => perm != Perm::Own,
        Role::Viewer => perm == Perm::Read,
    }
}

/// Whether a live support-access grant of `scope` lets an operator do `perm`.
pub fn scope_allows(scope: Scope, perm: Perm) -> bool {
    match scope {
        Scope::Read => perm == Perm::Read,
        // Recovering a member who lost their passkeys is the support a customer asks for
        // most (never an owner's: see the admin function's `may_handle`).
        Scope::Configuration => matches!(perm, Perm::Read | Perm::Configure | Perm::Recover),
    }
}

/// Whether a management key of `role` holds `perm`.
pub fn key_allows(role: Role, perm: Perm) -> bool {
    !perm.people_only() && role_allows(role, perm)
}

/// Who is calling a `/v1/admin` route.
#[derive(Debug, Clone)]
pub enum Caller {
    Session(Session),
    Key(ManagementKey),
}

/// What a request on a tenant acts on: the caller's membership, a support-access grant, or a
/// management key. It names the actor in the tenant's audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basis {
    Member {
        account: String,
        role: Role,
    },
    Support {
        account: String,
        grant: String,
        scope: Scope,
    },
    Key {
        key: String,
        role: Role,
    },
}

impl Basis {
    /// The actor of the audit events this request writes: `admin:{account}`,
    /// `operator:{account}/grant:{grant}` (so every event under a grant names it) or
    /// `mkey:{key}`.
    pub fn actor(&self) -> String {
        match self {
            Basis::Member { account, .. } => format!("admin:{account}"),
            Basis::Support { account, grant, .. } => format!("operator:{account}/grant:{grant}"),
            Basis::Key { key, .. } => format!("mkey:{key}"),
        }
    }

    pub fn audit(&self, request_id: &str, source_ip: Option<String>) -> AuditContext {
        AuditContext {
            actor: self.actor(),
            request_id: request_id.to_owned(),
            source_ip,
        }
    }

    /// The account of a person (member or operator), none for a key.
    pub fn account(&self) -> Option<&str> {
        match self {
            Basis::Member { account, .. } | Basis::Support { account, .. } => Some(account),
            Basis::Key { .. } => None,
        }
    }

    /// The role the caller acts with in the tenant (an operator under a grant: none).
    pub fn role(&self) -> Option<Role> {
        match self {
            Basis::Member { role, .. } | Basis::Key { role, .. } => Some(*role),
            Basis::Support { .. } => None,
        }
    }
}

/// Decides whether `caller` may do `perm` on `tenant_id`, and on what basis. An operator's
/// request under a grant is written to the tenant's own audit log (`support.access`, naming the
/// grant and the route) before it runs, so the customer sees every read as well as every
/// change; one the live grants do not cover is written as `support.refused`; `route` is the route's pattern (`GET /v1/admin/tenants/{tenantId}/users`), never a
/// value from the request.
///
/// Refusals: [`Error::Forbidden`] when the caller has nothing to do with the tenant (another
/// tenant's member or key; an operator without any live grant), [`Error::Refused`] naming what
/// is missing when the caller's role or grant is too narrow.
pub async fn authorize(
    services: &Services,
    caller: &Caller,
    tenant_id: &str,
    perm: Perm,
    route: &str,
    ctx: &AuditContext,
) -> Result<Basis, Error> {
    match caller {
        Caller::Key(key) => {
            if key.tenant_id != tenant_id {
                return Err(Error::Forbidden);
            }
            if key_allows(key.role, perm) {
                Ok(Basis::Key {
                    key: key.id.clone(),
                    role: key.role,
                })
            } else {
                Err(Error::Refused(format!(
                    "a management key with the {} role may not {}",
                    key.role.as_str(),
                    perm.describe()
                )))
            }
        }
        Caller::Session(session) => {
            let account = &session.account;
            if let Some(role) = account.memberships.get(tenant_id) {
                return if role_allows(*role, perm) {
                    Ok(Basis::Member {
                        account: account.id.clone(),
                        role: *role,
                    })
                } else {
                    Err(Error::Refused(format!(
                        "the {} role may not {}",
                        role.as_str(),
                        perm.describe()
                    )))
                };
            }
            if !account.operator {
                return Err(Error::Forbidden);
            }
            let live = grants::live(services, tenant_id).await?;
            if live.is_empty() {
                return Err(Error::Forbidden);
            }
            // A deleted tenant's grants wait for the purge: nothing is logged or served.
            if crate::domain::tenants::get_tenant(services, tenant_id)
                .await?
                .is_none()
            {
                return Err(Error::NotFound("tenant"));
            }
            // The narrowest live grant that allows it (a read under a configuration grant
            // and a read grant names the read grant), the one expiring last among equals.
            let chosen = live
                .iter()
                .filter(|g| scope_allows(g.scope, perm))
                .min_by_key(|g| (g.scope, std::cmp::Reverse(g.expires_epoch)));
            let Some(grant) = chosen else {
                // Refused under the tenant's live grants: the customer sees the attempt too.
                let attempt = AuditContext {
                    actor: format!("operator:{}", account.id),
                    ..ctx.clone()
                };
                let change = Change {
                    action: "support.refused",
                    target: format!("tenant:{tenant_id}"),
                    summary: json!({
                        "route": route,
                        "grants": live.iter().map(|g| g.id.clone()).collect::<Vec<_>>(),
                    }),
                    ops: Vec::new(),
                };
                services.journal.commit(tenant_id, &attempt, change).await?;
                return Err(Error::Refused(format!(
                    "no live support-access grant lets an operator {}",
                    perm.describe()
                )));
            };
            let basis = Basis::Support {
                account: account.id.clone(),
                grant: grant.id.clone(),
                scope: grant.scope,
            };
            let access = AuditContext {
                actor: basis.actor(),
                ..ctx.clone()
            };
            let change = Change {
                action: "support.access",
                target: format!("grant:{}", grant.id),
                summary: json!({ "route": route, "scope": grant.scope }),
                ops: Vec::new(),
            };
            services.journal.commit(tenant_id, &access, change).await?;
            Ok(basis)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_hold_what_only_people_may() {
        for role in Role::ALL {
            for perm in Perm::ALL {
                if perm.people_only() {
                    assert!(!key_allows(role, perm), "{role:?} {perm:?}");
                }
            }
        }
    }

    #[test]
    fn roles_are_nested() {
        for perm in Perm::ALL {
            assert!(!role_allows(Role::Viewer, perm) || role_allows(Role::Admin, perm));
            assert!(!role_allows(Role::Admin, perm) || role_allows(Role::Owner, perm));
            assert!(!scope_allows(Scope::Read, perm) || scope_allows(Scope::Configuration, perm));
        }
    }
}
