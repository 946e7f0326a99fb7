//! One user's data, as a tenant answers an access request (GDPR art. 15): everything Latchkey
//! holds about the user, opened, in one JSON document, and an audit event saying who exported
//! it. Secrets stay out: no TOTP secret, no code or recovery-code hash, no credential public
//! key; what is listed of an authenticator is what the Server API shows of it.
use crate::domain::audit::{AuditContext, Change};
use crate::domain::tenants::Tenant;
use crate::domain::{Error, Services, actions, authenticators, users};
use serde_json::{Value, json};

/// The export of `user_id`: `{userId, exportedAt, attributes, authenticators, actions}`.
/// Audited as `user.export` (naming the user by its keyed reference, as every user event does).
pub async fn export_user(
    services: &Services,
    ctx: &AuditContext,
    tenant: &Tenant,
    user_id: &str,
) -> Result<Value, Error> {
    let user = users::get_user(services, tenant, user_id)
        .await?
        .ok_or(Error::NotFound("user"))?;
    let authenticators = authenticators::list(services, tenant, user_id).await?;
    let actions = actions::export(services, tenant, user_id).await?;
    let change = Change {
        action: "user.export",
        target: users::audit_ref(services, &tenant.id, user_id).await?,
        summary: json!({
            "authenticators": authenticators.len(),
            "actions": actions.len(),
        }),
        ops: vec![],
    };
    let event = services.journal.commit(&tenant.id, ctx, change).await?;
    Ok(json!({
        "userId": user_id,
        "tenantId": tenant.id,
        "exportedAt": event.time,
        "attributes": user.attributes,
        "authenticators": authenticators,
        "actions": actions,
    }))
}
