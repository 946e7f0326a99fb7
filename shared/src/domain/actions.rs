//! Actions: track (with the rules engine), get, update, query, and validate.
//!
//! An action lives at `T#{tid}#U#{uid}` / `ACT#{code}#{idempotency key}`. Tracking the same
//! idempotency key again returns the stored action, never a second one (the write is conditional
//! on absence, so racing duplicates resolve to one). The client's IP address and user agent are
//! sealed like other personal data; the device id is kept only as a keyed hash.
//!
//! Validate is replay-safe: a token validates as successful at most once per action. The first
//! validate of a `CHALLENGE_SUCCEEDED` action marks it consumed under a version condition, so of
//! concurrent validations exactly one sees `isValid: true`; every later one (the same token, or
//! another token for the same action) gets `isValid: false`. Validations before the challenge
//! completes consume nothing.
use crate::crypto::FieldContext;
use crate::crypto::keys::{Purpose, PurposeKey, purpose_keys};
use crate::domain::Error;
use crate::domain::Services;
use crate::domain::audit::{AuditContext, Change, CommitError};
use crate::domain::authenticators::of_user;
use crate::domain::keyring;
use crate::domain::machine::{self, ActionState, Event, VerificationMethod};
use crate::domain::rules::Facts;
use crate::domain::tenants::Tenant;
use crate::domain::timestamps::Timestamp as _;
use crate::domain::tokens::{self, TokenError};
use crate::domain::users::{audit_ref, check_user_id, new_user_item, user_pk};
use crate::ports::random::RandomExt as _;
use crate::ports::store::{Condition, Item, Query, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The tracked action as stored at `T#{tid}#U#{uid}` / `ACT#{code}#{key}`: read from and
/// written to its item here, and nowhere else. Its state moves only through
/// [`machine::transition`].
#[derive(Debug, Clone)]
pub struct ActionRecord {
    pub code: String,
    pub idempotency_key: String,
    pub state: ActionState,
    pub verification_method: Option<VerificationMethod>,
    /// Set when validate consumed the success: the action's tokens are spent.
    pub validated_at: Option<String>,
    /// The stored item, so that a write keeps every other attribute.
    pub item: Item,
}

impl ActionRecord {
    pub fn from_item(item: Item) -> Result<Self, Error> {
        let state = item
            .str("state")
            .and_then(ActionState::parse)
            .ok_or_else(|| Error::Internal("stored action has no valid state".into()))?;
        Ok(Self {
            code: item.str("actionCode").unwrap_or_default().to_owned(),
            idempotency_key: item.str("idempotencyKey").unwrap_or_default().to_owned(),
            state,
            verification_method: item
                .str("verificationMethod")
                .and_then(VerificationMethod::parse),
            validated_at: item
                .str("validatedAt")
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
            item,
        })
    }

    /// The write that applies `event` (conditional on the version read), or the machine's
    /// refusal. `None` when the event changes nothing (a Server API self-move).
    pub fn apply(
        &self,
        event: Event,
        method: Option<VerificationMethod>,
        now: &str,
    ) -> Result<Option<WriteOp>, machine::Refused> {
        let Some(set) = transition_fields(self.state, event, method, now)? else {
            return Ok(None);
        };
        let v = self.item.version;
        let mut item = self.item.clone().with_version(v + 1);
        item.attrs.extend(set);
        Ok(Some(WriteOp::Put {
            item,
            condition: Condition::Version(v),
        }))
    }
}

/// The attributes `event` changes on an action in `state`, as the machine allows it; `None`
/// when it changes nothing. Shared by [`ActionRecord::apply`] and [`ActionStamp::apply`].
fn transition_fields(
    state: ActionState,
    event: Event,
    method: Option<VerificationMethod>,
    now: &str,
) -> Result<Option<Map<String, Value>>, machine::Refused> {
    let to = machine::transition(state, event)?;
    if to == state {
        return Ok(None);
    }
    let mut set = Map::new();
    set.insert("state".into(), to.as_str().into());
    set.insert("stateUpdatedAt".into(), now.into());
    set.insert("updatedAt".into(), now.into());
    if let Some(m) = method {
        set.insert("verificationMethod".into(), m.as_str().into());
    }
    Ok(Some(set))
}

/// What an authorization read of an action, kept to write the action later without reading
/// it again (a ceremony carries it from its options to its verify): the action's key, state,
/// whether validate consumed it, and the version the state was read at. A write made from a
/// stamp is conditional on that version, so it goes through only if the action is still as
/// the stamp says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionStamp {
    pub code: String,
    pub idempotency_key: String,
    pub state: ActionState,
    pub validated: bool,
    /// The version the state was read at; `None` when the state was not read but checked by a
    /// write's condition (`authz::Facts::Written`): a later write is then conditional on the
    /// state itself.
    pub version: Option<u64>,
}

impl ActionStamp {
    pub fn of(record: &ActionRecord) -> Self {
        Self {
            code: record.code.clone(),
            idempotency_key: record.idempotency_key.clone(),
            state: record.state,
            validated: record.validated_at.is_some(),
            version: Some(record.item.version),
        }
    }

    /// The stamp of an action no one read, known to be in `state` because a write committed
    /// on [`ActionStamp::condition`].
    pub fn checked(code: &str, idempotency_key: &str, state: ActionState) -> Self {
        Self {
            code: code.to_owned(),
            idempotency_key: idempotency_key.to_owned(),
            state,
            validated: false,
            version: None,
        }
    }

    /// The condition under which the action is still as this stamp says.
    pub fn condition(&self) -> Condition {
        match self.version {
            Some(v) => Condition::Version(v),
            None => Condition::Equals("state", self.state.as_str()),
        }
    }

    /// A write that changes nothing but holds only while the action is as this stamp says.
    pub fn check(&self, tenant_id: &str, user_id: &str) -> WriteOp {
        WriteOp::Check {
            pk: user_pk(tenant_id, user_id),
            sk: action_sk(&self.code, &self.idempotency_key),
            condition: self.condition(),
        }
    }

    /// [`ActionRecord::apply`] from the stamp: the same transition, written as an update of
    /// the changed attributes under the stamp's condition.
    pub fn apply(
        &self,
        tenant_id: &str,
        user_id: &str,
        event: Event,
        method: Option<VerificationMethod>,
        now: &str,
    ) -> Result<Option<WriteOp>, machine::Refused> {
        let Some(set) = transition_fields(self.state, event, method, now)? else {
            return Ok(None);
        };
        Ok(Some(WriteOp::Update {
            pk: user_pk(tenant_id, user_id),
            sk: action_sk(&self.code, &self.idempotency_key),
            set,
            condition: self.condition(),
        }))
    }
}

/// How a token names its action in other records (pending enrollments, `enrolledFor`).
pub fn action_ref(code: &str, key: &str) -> String {
    format!("{code}#{key}")
}

/// Reads one action.
pub async fn load(
    services: &Services,
    tenant_id: &str,
    user_id: &str,
    code: &str,
    key: &str,
) -> Result<Option<ActionRecord>, Error> {
    match services
        .store
        .get(&user_pk(tenant_id, user_id), &action_sk(code, key))
        .await?
    {
        Some(item) => Ok(Some(ActionRecord::from_item(item)?)),
        None => Ok(None),
    }
}

fn states_list() -> String {
    ActionState::ALL.map(ActionState::as_str).join(", ")
}

fn parse_state(s: &str) -> Result<ActionState, Error> {
    ActionState::parse(s)
        .ok_or_else(|| Error::Invalid(format!("state must be one of {}", states_list())))
}

/// Action codes: `^[a-zA-Z0-9_-]{1,64}$`.
pub fn check_code(code: &str) -> Result<(), Error> {
    let ok = (1..=64).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then_some(())
        .ok_or_else(|| Error::Invalid("action must match ^[a-zA-Z0-9_-]{1,64}$".into()))
}

/// Idempotency keys travel in paths: 1–128 URL-safe characters.
pub fn check_idempotency_key(key: &str) -> Result<(), Error> {
    let ok = (1..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':'));
    ok.then_some(()).ok_or_else(|| {
        Error::Invalid("idempotencyKey must be 1-128 characters of A-Z a-z 0-9 - _ . ~ :".into())
    })
}

fn action_sk(code: &str, key: &str) -> String {
    format!("ACT#{code}#{key}")
}

/// `TrackAttributes` (docs/wire.md §4.1); unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackAttributes {
    #[serde(default)]
    pub idempotency_key: Option<String>,
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
    #[serde(default)]
    pub device_id: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub custom: Option<Map<String, Value>>,
    #[serde(default)]
    pub redirect_url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackResult {
    pub state: String,
    pub idempotency_key: String,
    pub token: String,
    pub is_enrolled: bool,
    pub enrolled_verification_methods: Vec<String>,
    pub allowed_verification_methods: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_verification_method: Option<String>,
    pub rule_ids: Vec<String>,
}

/// One action as get/update/query show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionView {
    pub action_code: String,
    pub idempotency_key: String,
    pub state: String,
    pub created_at: String,
    pub updated_at: String,
    pub state_updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_method: Option<String>,
    pub rule_ids: Vec<String>,
    pub rules: Vec<Value>,
    pub output: Value,
}

fn view(item: &Item) -> ActionView {
    let s = |n: &str| item.str(n).unwrap_or_default().to_owned();
    let rule_ids: Vec<String> = item
        .attrs
        .get("ruleIds")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ActionView {
        action_code: s("actionCode"),
        idempotency_key: s("idempotencyKey"),
        state: s("state"),
        created_at: s("createdAt"),
        updated_at: s("updatedAt"),
        state_updated_at: s("stateUpdatedAt"),
        verification_method: item.str("verificationMethod").map(str::to_owned),
        rule_ids,
        rules: item
            .attrs
            .get("rules")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        output: item
            .attrs
            .get("output")
            .cloned()
            .unwrap_or_else(|| json!({})),
    }
}

async fn device_ref(
    services: &Services,
    tenant_id: &str,
    device_id: &str,
) -> Result<String, Error> {
    let keys = purpose_keys(services.secrets.as_ref(), Purpose::BlindIndex).await?;
    Ok(device_ref_under(&keys.current, tenant_id, device_id))
}

fn device_ref_under(key: &PurposeKey, tenant_id: &str, device_id: &str) -> String {
    let mac = crate::crypto::keys::mac(key, format!("device\0{tenant_id}\0{device_id}").as_bytes());
    crate::crypto::hex(&mac[..16])
}

async fn seal(
    services: &Services,
    tenant: &Tenant,
    item_key: &str,
    field: &str,
    value: &str,
) -> Result<String, Error> {
    let at = FieldContext {
        tenant_id: &tenant.id,
        item: item_key,
        field,
    };
    Ok(services
        .envelope
        .seal(&tenant.data_key, at, value.as_bytes())
        .await?)
}

pub async fn track(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    user_id: &str,
    code: &str,
    attrs: TrackAttributes,
) -> Result<TrackResult, Error> {
    check_user_id(user_id)?;
    check_code(code)?;
    let key = match attrs.idempotency_key.clone() {
        Some(k) => {
            check_idempotency_key(&k)?;
            k
        }
        None => services.random.hex_id(16),
    };
    for (name, value, max) in [
        ("ipAddress", &attrs.ip_address, 64),
        ("userAgent", &attrs.user_agent, 1024),
        ("deviceId", &attrs.device_id, 256),
    ] {
        if value.as_ref().is_some_and(|v| v.len() > max) {
            return Err(Error::Invalid(format!(
                "{name} is longer than {max} characters"
            )));
        }
    }
    let ip = match &attrs.ip_address {
        Some(raw) => Some(crate::domain::rules::canonical_ip(raw.parse().map_err(
            |_| Error::Invalid("ipAddress must be an IPv4 or IPv6 address".into()),
        )?)),
        None => None,
    };
    let pk = user_pk(&tenant.id, user_id);
    let sk = action_sk(code, &key);
    let auths = of_user(services, tenant, user_id).await?;
    let enrolled = auths.enrolled_methods();
    // Every authenticator item is written with (or after) its user's item, and deleting a user
    // removes the user's item with the rest: a user with one has an item already, and track
    // need not read it to know.
    let user_known = !auths.records.is_empty();
    let allowed = tenant.settings.methods();
    let config = tenant.settings.action(code);
    // Up to three rounds: a racing track with the same key, or a user created meanwhile, makes
    // a round's conditional write fail, and the next round sees what the other writer stored.
    // The action is written under an absence condition rather than read first: a replayed
    // idempotency key (rare) costs a failed write and a read, a new one (the rule) no read.
    let mut round = 0;
    let stored = loop {
        round += 1;
        if round > 3 {
            return Err(Error::Conflict("the user changed; retry"));
        }
        {
            let now = services.clock.now();
            let earlier = if config.counts_earlier_actions() {
                services
                    .store
                    .query(
                        Query::partition(&pk)
                            .prefix(format!("ACT#{code}#"))
                            .limit(1000)
                            .descending(),
                    )
                    .await?
                    .items
                    .iter()
                    .filter_map(|i| i.attrs.get("createdEpoch").and_then(Value::as_i64))
                    .collect()
            } else {
                Vec::new()
            };
            let device = match &attrs.device_id {
                Some(d) => Some(device_ref(services, &tenant.id, d).await?),
                None => None,
            };
            // A device recorded before a rotation is still known: its reference is looked up
            // under the current key, then each older generation's (this track records it
            // under the current one).
            let device_seen = match &attrs.device_id {
                Some(d) if config.asks_new_device() => {
                    let mut search = keyring::Search::new(services, Purpose::BlindIndex).await?;
                    let mut seen = false;
                    while let Some((key, _)) = search.next().await? {
                        let r = device_ref_under(&key, &tenant.id, d);
                        if services
                            .store
                            .get(&pk, &format!("DEV#{r}"))
                            .await?
                            .is_some()
                        {
                            seen = true;
                            break;
                        }
                    }
                    seen
                }
                _ => true,
            };
            let facts = Facts {
                ip,
                user_agent: attrs.user_agent.clone(),
                custom: attrs.custom.clone().unwrap_or_default(),
                enrolled: !enrolled.is_empty(),
                new_device: !device_seen,
                now: now.unix_timestamp(),
                earlier_actions: earlier,
            };
            let (outcome, rule_ids) = config.evaluate(&facts);
            let rules: Vec<Value> = config
                .rules
                .iter()
                .filter(|r| rule_ids.contains(&r.id))
                .map(|r| json!({"ruleId": r.id, "name": r.name, "description": r.description}))
                .collect();
            let stamp = now.rfc3339()?;
            let item_key = format!("U#{user_id}#{sk}");
            let mut item = Item::new(&pk, &sk)
                .with("actionCode", code)
                .with("idempotencyKey", key.clone())
                .with("state", outcome.state())
                .with("createdAt", stamp.clone())
                .with("createdEpoch", now.unix_timestamp())
                .with("updatedAt", stamp.clone())
                .with("stateUpdatedAt", stamp.clone())
                .with("ruleIds", rule_ids.clone())
                .with("rules", rules)
                .with("output", json!({}));
            if let Some(v) = &attrs.ip_address {
                item = item.with(
                    "ipAddress",
                    seal(services, tenant, &item_key, "ipAddress", v).await?,
                );
            }
            if let Some(v) = &attrs.user_agent {
                item = item.with(
                    "userAgent",
                    seal(services, tenant, &item_key, "userAgent", v).await?,
                );
            }
            if let Some(d) = &device {
                item = item.with("deviceRef", d.clone());
            }
            let mut ops = vec![WriteOp::Put {
                item: item.clone(),
                condition: Condition::Absent,
            }];
            if !user_known && services.store.get(&pk, "USER").await?.is_none() {
                ops.push(WriteOp::Put {
                    item: new_user_item(services, &tenant.id, user_id)?,
                    condition: Condition::Absent,
                });
                ops.push(crate::domain::users::listed(&tenant.id, user_id));
            }
            if let Some(d) = &device {
                ops.push(WriteOp::Put {
                    item: Item::new(&pk, format!("DEV#{d}")).with("lastSeen", stamp),
                    condition: Condition::None,
                });
            }
            let change = Change {
                action: "action.track",
                target: audit_ref(services, &tenant.id, user_id).await?,
                summary: json!({ "actionCode": code, "idempotencyKey": key, "state": outcome.state(), "ruleIds": rule_ids }),
                ops,
            };
            match services.journal.commit(&tenant.id, ctx, change).await {
                Ok(_) => break item,
                // The idempotency key was tracked before (or meanwhile): that action stands.
                Err(CommitError::Condition { index: 0, .. }) => {
                    if let Some(existing) = services.store.get(&pk, &sk).await? {
                        break existing;
                    }
                }
                Err(CommitError::Condition { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    };
    let token = tokens::issue(services, &tenant.id, user_id, code, &key, attrs.scope, None).await?;
    Ok(TrackResult {
        state: stored.str("state").unwrap_or_default().to_owned(),
        idempotency_key: key,
        token,
        is_enrolled: !enrolled.is_empty(),
        default_verification_method: enrolled.first().cloned(),
        enrolled_verification_methods: enrolled,
        allowed_verification_methods: allowed,
        rule_ids: view(&stored).rule_ids,
    })
}

pub async fn get(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
    code: &str,
    key: &str,
) -> Result<ActionView, Error> {
    check_user_id(user_id)?;
    check_code(code)?;
    check_idempotency_key(key)?;
    services
        .store
        .get(&user_pk(&tenant.id, user_id), &action_sk(code, key))
        .await?
        .map(|i| view(&i))
        .ok_or(Error::NotFound("action"))
}

pub async fn update_state(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    user_id: &str,
    code: &str,
    key: &str,
    state: &str,
) -> Result<ActionView, Error> {
    check_user_id(user_id)?;
    check_code(code)?;
    check_idempotency_key(key)?;
    let to = parse_state(state)?;
    let record = load(services, &tenant.id, user_id, code, key)
        .await?
        .ok_or(Error::NotFound("action"))?;
    let stamp = services.clock.now().rfc3339()?;
    let target = audit_ref(services, &tenant.id, user_id).await?;
    let op = match record.apply(Event::ServerUpdate(to), None, &stamp) {
        Ok(Some(op)) => op,
        Ok(None) => return Ok(view(&record.item)),
        Err(refused) => {
            // The refusal is audited too: the tenant's log shows every attempted move.
            let change = Change {
                action: "action.update.refused",
                target,
                summary: json!({ "actionCode": code, "idempotencyKey": key, "from": record.state, "to": to }),
                ops: Vec::new(),
            };
            services.journal.commit(&tenant.id, ctx, change).await?;
            return Err(Error::InvalidState(refused.to_string()));
        }
    };
    let updated = match &op {
        WriteOp::Put { item, .. } => item.clone(),
        _ => record.item.clone(),
    };
    let change = Change {
        action: "action.update",
        target,
        summary: json!({ "actionCode": code, "idempotencyKey": key, "from": record.state, "to": to }),
        ops: vec![op],
    };
    match services.journal.commit(&tenant.id, ctx, change).await {
        Ok(_) => Ok(view(&updated)),
        Err(CommitError::Condition { .. }) => Err(Error::Conflict("the action changed; retry")),
        Err(e) => Err(e.into()),
    }
}

/// `GET /users/{userId}/actions?fromDate=&codes=&state=`, newest first, at most 1000.
pub async fn query(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
    from_date: Option<&str>,
    codes: &[String],
    state: Option<&str>,
) -> Result<Vec<ActionView>, Error> {
    check_user_id(user_id)?;
    for code in codes {
        check_code(code)?;
    }
    let from = match from_date {
        Some(d) => Some(
            OffsetDateTime::parse(d, &Rfc3339)
                .map_err(|_| Error::Invalid("fromDate must be an ISO-8601 date-time".into()))?
                .unix_timestamp(),
        ),
        None => None,
    };
    if let Some(s) = state {
        parse_state(s)?;
    }
    let page = services
        .store
        .query(
            Query::partition(user_pk(&tenant.id, user_id))
                .prefix("ACT#")
                .limit(1000),
        )
        .await?;
    let mut items: Vec<&Item> = page
        .items
        .iter()
        .filter(|i| {
            codes.is_empty()
                || i.str("actionCode")
                    .is_some_and(|c| codes.iter().any(|x| x == c))
        })
        .filter(|i| state.is_none_or(|s| i.str("state") == Some(s)))
        .filter(|i| {
            from.is_none_or(|f| {
                i.attrs
                    .get("createdEpoch")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    >= f
            })
        })
        .collect();
    items.sort_by_key(|i| {
        std::cmp::Reverse(
            i.attrs
                .get("createdEpoch")
                .and_then(Value::as_i64)
                .unwrap_or(0),
        )
    });
    Ok(items.into_iter().map(view).collect())
}

/// Every action of a user with what it recorded of the caller, opened (for the user's data
/// export, [`crate::domain::export`]): the [`ActionView`] fields plus `ipAddress` and
/// `userAgent` where the action kept them. Newest first.
pub async fn export(
    services: &Services,
    tenant: &Tenant,
    user_id: &str,
) -> Result<Vec<Value>, Error> {
    check_user_id(user_id)?;
    let mut out: Vec<(i64, Value)> = Vec::new();
    let mut cursor = None;
    loop {
        let page = services
            .store
            .query(
                Query::partition(user_pk(&tenant.id, user_id))
                    .prefix("ACT#")
                    .limit(1000)
                    .after(cursor),
            )
            .await?;
        for item in &page.items {
            let mut v = serde_json::to_value(view(item))
                .map_err(|e| Error::Internal(format!("action view: {e}")))?;
            let item_key = format!("U#{user_id}#{}", item.sk);
            for field in ["ipAddress", "userAgent"] {
                let Some(sealed) = item.str(field) else {
                    continue;
                };
                let at = FieldContext {
                    tenant_id: &tenant.id,
                    item: &item_key,
                    field,
                };
                let bytes = services.envelope.open(&tenant.data_key, at, sealed).await?;
                v[field] = Value::String(String::from_utf8_lossy(&bytes).into_owned());
            }
            let epoch = item
                .attrs
                .get("createdEpoch")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            out.push((epoch, v));
        }
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    out.sort_by_key(|(epoch, _)| std::cmp::Reverse(*epoch));
    Ok(out.into_iter().map(|(_, v)| v).collect())
}

#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    pub is_valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_updated_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub async fn validate(
    services: &Services,
    tenant: &Tenant,
    ctx: &AuditContext,
    token: &str,
    user_id: Option<&str>,
    action: Option<&str>,
) -> Result<Validation, Error> {
    let claims = match tokens::verify(services, &tenant.id, token).await? {
        Ok(c) => c,
        Err(TokenError::Invalid) => return Err(Error::Invalid("The token is not valid.".into())),
        Err(TokenError::Expired) => {
            return Ok(Validation {
                error: Some("The token has expired.".into()),
                ..Validation::default()
            });
        }
    };
    if user_id.is_some_and(|u| u != claims.sub) || action.is_some_and(|a| a != claims.act) {
        return Err(Error::Invalid(
            "The token does not match the given userId or action.".into(),
        ));
    }
    let pk = user_pk(&tenant.id, &claims.sub);
    let sk = action_sk(&claims.act, &claims.idk);
    let base = |item: &Item| Validation {
        is_valid: false,
        state: item.str("state").map(str::to_owned),
        state_updated_at: item.str("stateUpdatedAt").map(str::to_owned),
        user_id: Some(claims.sub.clone()),
        action: Some(claims.act.clone()),
        action_code: Some(claims.act.clone()),
        idempotency_key: Some(claims.idk.clone()),
        verification_method: item.str("verificationMethod").map(str::to_owned),
        error: None,
    };
    let Some(item) = services.store.get(&pk, &sk).await? else {
        return Ok(Validation {
            error: Some("The action no longer exists.".into()),
            ..Validation::default()
        });
    };
    let record = ActionRecord::from_item(item.clone())?;
    if record.state != ActionState::ChallengeSucceeded {
        return Ok(base(&item));
    }
    if record.validated_at.is_some() {
        return Ok(Validation {
            error: Some("The token was already validated.".into()),
            ..base(&item)
        });
    }
    let version = item.version;
    let consumed = item
        .clone()
        .with("validatedAt", services.clock.now().rfc3339()?)
        .with_version(version + 1);
    let change = Change {
        action: "action.validate",
        target: audit_ref(services, &tenant.id, &claims.sub).await?,
        summary: json!({ "actionCode": claims.act, "idempotencyKey": claims.idk }),
        ops: vec![WriteOp::Put {
            item: consumed,
            condition: Condition::Version(version),
        }],
    };
    match services.journal.commit(&tenant.id, ctx, change).await {
        Ok(_) => Ok(Validation {
            is_valid: true,
            ..base(&item)
        }),
        // Another validation (or an update) got there first.
        Err(CommitError::Condition { .. }) => Ok(Validation {
            error: Some("The token was already validated.".into()),
            ..base(&item)
        }),
        Err(e) => Err(e.into()),
    }
}
