//! A user as the Server API's `getUser` and the management API's user detail show them: the
//! user's attributes with their authenticators' summary (its own module: users must not
//! import authenticators, which import users).
use crate::domain::tenants::Tenant;
use crate::domain::{Error, Services, authenticators, users};
use serde_json::{Value, json};

/// A user as the Server API's `getUser` answers it: attributes (or the empty defaults of a
/// user never stored), enrollment state and the tenant's allowed methods.
pub async fn profile(services: &Services, tenant: &Tenant, user_id: &str) -> Result<Value, Error> {
    users::check_user_id(user_id)?;
    let user = users::get_user(services, tenant, user_id).await?;
    let enrolled = authenticators::enrolled_methods(services, tenant, user_id).await?;
    let mut body = match user {
        Some(u) => serde_json::to_value(&u.attributes).unwrap_or_else(|_| json!({})),
        None => json!({ "emailVerified": false, "phoneNumberVerified": false }),
    };
    if let Value::Object(map) = &mut body {
        map.insert("userId".into(), json!(user_id));
        map.insert("isEnrolled".into(), json!(!enrolled.is_empty()));
        if let Some(first) = enrolled.first() {
            map.insert("defaultVerificationMethod".into(), json!(first));
        }
        map.insert("enrolledVerificationMethods".into(), json!(enrolled));
        map.insert(
            "allowedVerificationMethods".into(),
            json!(tenant.settings.methods()),
        );
    }
    Ok(body)
}
