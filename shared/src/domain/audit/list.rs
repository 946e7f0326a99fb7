//! A tenant's audit log as the customer reads it: newest first, filtered by actor, action,
//! target and time, a page at a time (`latchkey-admin audit list`; the admin API's list).
use super::{AuditEvent, EVENT_SK_PREFIX, event_items};
use crate::domain::Error;
use crate::ports::store::Store;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

/// Which events to list; every filter given must match. `action` ending in `.` matches every
/// action under it (`user.` lists `user.update`, `user.delete`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    /// Events at or after this instant.
    pub since: Option<OffsetDateTime>,
    /// Events before this instant.
    pub until: Option<OffsetDateTime>,
}

impl EventFilter {
    fn matches(&self, e: &AuditEvent) -> bool {
        self.actor.as_ref().is_none_or(|a| &e.actor == a)
            && self.target.as_ref().is_none_or(|t| &e.target == t)
            && self
                .action
                .as_ref()
                .is_none_or(|a| match a.strip_suffix('.') {
                    Some(prefix) => e.action.starts_with(&format!("{prefix}.")),
                    None => &e.action == a,
                })
    }
}

/// The event's commit time in Unix milliseconds, from its sort key.
fn sk_millis(sk: &str) -> Option<i128> {
    sk.strip_prefix(EVENT_SK_PREFIX)?
        .split('#')
        .next()?
        .parse()
        .ok()
}

/// Up to `limit` (1–1000) events matching `filter`, newest first, after `cursor` (the previous
/// page's); the cursor of the next page when one may follow.
pub async fn list(
    store: &dyn Store,
    tenant_id: &str,
    filter: &EventFilter,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<AuditEvent>, Option<String>), Error> {
    if !(1..=1000).contains(&limit) {
        return Err(Error::Invalid("limit must be from 1 to 1000".into()));
    }
    let since = filter.since.map(|t| t.unix_timestamp_nanos() / 1_000_000);
    let until = filter.until.map(|t| t.unix_timestamp_nanos() / 1_000_000);
    let mut out = Vec::new();
    let mut cursor = cursor;
    loop {
        let (items, next) = event_items(store, tenant_id, 500, cursor, true).await?;
        for item in &items {
            let at = sk_millis(&item.sk).unwrap_or_default();
            if until.is_some_and(|u| at >= u) {
                continue;
            }
            if since.is_some_and(|s| at < s) {
                // Newest first: nothing older can match.
                return Ok((out, None));
            }
            let Some(event) = AuditEvent::from_item(item) else {
                continue;
            };
            if filter.matches(&event) {
                out.push(event);
                if out.len() == limit {
                    return Ok((out, Some(URL_SAFE_NO_PAD.encode(item.sk.as_bytes()))));
                }
            }
        }
        match next {
            Some(c) => cursor = Some(c),
            None => return Ok((out, None)),
        }
    }
}
