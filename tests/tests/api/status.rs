//! The status page through the local gateway: a scripted incident and maintenance lifecycle on
//! a manual clock, every public JSON document checked against Statuspage's v2 shape at each
//! step, caching, operator auth, the Atom feed read back by feed-rs, the HTML page, and the
//! urgent data-impact notices (once per contact, in both tenants' audit logs, never twice).
use async_trait::async_trait;
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use latchkey::adapters::outbox::MemoryOutbox;
use latchkey::domain::audit::{AuditContext, AuditEvent};
use latchkey::domain::status::PLATFORM_JOURNAL;
use latchkey::domain::status::operators::{create_operator, revoke_operator};
use latchkey::domain::tenants::{AdminContact, TenantSettings, add_admin_contact, create_tenant};
use latchkey::ports::mailer::{Email, MailError, Mailer};
use latchkey_tests::{Reply, World};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use time::Duration;
use time::format_description::well_known::Rfc3339;

/// A mailer that refuses its first `failures` messages (the service is "unavailable"), then
/// delivers to the memory outbox.
struct Flaky {
    failures: AtomicUsize,
    outbox: Arc<MemoryOutbox>,
}

#[async_trait]
impl Mailer for Flaky {
    async fn send(&self, email: &Email) -> Result<String, MailError> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(MailError::Unavailable("test: mail is down".into()));
        }
        self.outbox.send(email).await
    }
}

/// The shared world (on disk, mail through [`Flaky`] into its memory outbox) with three
/// customer tenants, their admin contacts, and an on-call operator's token.
struct Status {
    world: World,
    token: String,
}

impl std::ops::Deref for Status {
    type Target = World;
    fn deref(&self) -> &World {
        &self.world
    }
}

const CONTACTS: [(&str, &str); 4] = [
    ("tenant-a", "ada@a.example"),
    ("tenant-a", "alan@a.example"),
    ("tenant-b", "grace@b.example"),
    ("tenant-c", "carol@c.example"),
];

async fn world(failures: usize) -> Status {
    world_with(failures, false).await
}

/// [`world`], with a root secret the test can rotate when `rotating`.
async fn world_with(failures: usize, rotating: bool) -> Status {
    let mut setup = World::setup().no_tenant().on_disk().mailer(move |outbox| {
        Arc::new(Flaky {
            failures: AtomicUsize::new(failures),
            outbox,
        })
    });
    if rotating {
        setup = setup.rotating_secrets();
    }
    let world = setup.build().await;
    let services = &world.services;
    let ctx = AuditContext::system("test", "setup");
    for tenant in ["tenant-a", "tenant-b", "tenant-c"] {
        create_tenant(
            services,
            &ctx,
            tenant,
            TenantSettings {
                name: format!("Customer {tenant}"),
                ..Default::default()
            },
            vec![],
        )
        .await
        .unwrap();
    }
    for (tenant, email) in CONTACTS {
        add_admin_contact(
            services,
            &ctx,
            tenant,
            AdminContact {
                first_name: "Admin".into(),
                last_name: "Person".into(),
                email: email.into(),
                company: tenant.into(),
            },
        )
        .await
        .unwrap();
    }
    let (_, token) = create_operator(services, &ctx, "on-call", 30)
        .await
        .unwrap();
    Status { world, token }
}

impl Status {
    async fn send(&self, req: Request<Body>) -> Reply {
        self.world.request(req).await
    }

    async fn get(&self, uri: &str) -> Reply {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    async fn write(&self, method: Method, uri: &str, key: Option<&str>, body: Value) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        self.send(req.body(Body::from(body.to_string())).unwrap())
            .await
    }

    async fn ok(&self, method: Method, uri: &str, key: Option<&str>, body: Value) -> Value {
        let r = self.write(method, uri, key, body).await;
        assert!(r.status.is_success(), "{uri}: {} {}", r.status, r.text());
        r.json()
    }

    fn clock_now(&self) -> time::OffsetDateTime {
        use latchkey::ports::Clock as _;
        self.clock.now()
    }
}

// ------------------------------------------------------------------ Statuspage v2 shape checks

const PAGE_KEYS: [&str; 5] = ["id", "name", "url", "time_zone", "updated_at"];
const COMPONENT_KEYS: [&str; 13] = [
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "position",
    "description",
    "showcase",
    "start_date",
    "group_id",
    "page_id",
    "group",
    "only_show_if_degraded",
];
const INCIDENT_KEYS: [&str; 13] = [
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "monitoring_at",
    "resolved_at",
    "impact",
    "shortlink",
    "started_at",
    "page_id",
    "incident_updates",
    "components",
];
const UPDATE_KEYS: [&str; 11] = [
    "id",
    "status",
    "body",
    "incident_id",
    "created_at",
    "updated_at",
    "display_at",
    "affected_components",
    "deliver_notifications",
    "custom_tweet",
    "tweet_id",
];
const COMPONENT_STATUSES: [&str; 5] = [
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
];
const INCIDENT_STATUSES: [&str; 5] = [
    "investigating",
    "identified",
    "monitoring",
    "resolved",
    "postmortem",
];
const MAINTENANCE_STATUSES: [&str; 4] = ["scheduled", "in_progress", "verifying", "completed"];
const IMPACTS: [&str; 5] = ["none", "minor", "major", "critical", "maintenance"];
const INDICATORS: [&str; 4] = ["none", "minor", "major", "critical"];

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn string(v: &Value, what: &str) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"))
        .to_owned()
}

/// ISO 8601 with an explicit offset, as Statuspage writes them.
fn timestamp(v: &Value, what: &str) {
    let s = string(v, what);
    time::OffsetDateTime::parse(&s, &Rfc3339).unwrap_or_else(|_| panic!("{what}: {s}"));
    assert!(s.ends_with("+00:00"), "{what} has no numeric offset: {s}");
    assert!(s.contains('.'), "{what} has no milliseconds: {s}");
}

fn timestamp_or_null(v: &Value, what: &str) {
    if !v.is_null() {
        timestamp(v, what);
    }
}

fn one_of(v: &Value, allowed: &[&str], what: &str) {
    let s = string(v, what);
    assert!(allowed.contains(&s.as_str()), "{what} = {s}");
}

fn check_page(p: &Value) {
    assert_eq!(keys(p), set(&PAGE_KEYS));
    for k in ["id", "name", "url", "time_zone"] {
        string(&p[k], k);
    }
    timestamp(&p["updated_at"], "page.updated_at");
}

fn check_component(c: &Value) {
    let mut expected = set(&COMPONENT_KEYS);
    if c["group"] == json!(true) {
        expected.insert("components".into());
        for id in c["components"].as_array().unwrap() {
            string(id, "group component id");
        }
    }
    assert_eq!(keys(c), expected, "{c}");
    one_of(&c["status"], &COMPONENT_STATUSES, "component.status");
    timestamp(&c["created_at"], "component.created_at");
    timestamp(&c["updated_at"], "component.updated_at");
    assert!(c["position"].is_u64());
    assert!(c["description"].is_null() || c["description"].is_string());
    assert!(c["showcase"].is_boolean() && c["only_show_if_degraded"].is_boolean());
    assert!(c["group_id"].is_null() || c["group_id"].is_string());
    assert!(c["start_date"].is_null() || c["start_date"].is_string());
    string(&c["page_id"], "component.page_id");
}

fn check_incident(i: &Value, maintenance: bool) {
    let mut expected = set(&INCIDENT_KEYS);
    if maintenance {
        expected.insert("scheduled_for".into());
        expected.insert("scheduled_until".into());
        timestamp(&i["scheduled_for"], "scheduled_for");
        timestamp(&i["scheduled_until"], "scheduled_until");
        one_of(&i["status"], &MAINTENANCE_STATUSES, "maintenance.status");
        assert_eq!(i["impact"], "maintenance");
    } else {
        one_of(&i["status"], &INCIDENT_STATUSES, "incident.status");
        one_of(&i["impact"], &IMPACTS[..4], "incident.impact");
    }
    assert_eq!(keys(i), expected, "{i}");
    for k in ["created_at", "updated_at", "started_at"] {
        timestamp(&i[k], k);
    }
    timestamp_or_null(&i["monitoring_at"], "monitoring_at");
    timestamp_or_null(&i["resolved_at"], "resolved_at");
    string(&i["shortlink"], "shortlink");
    string(&i["page_id"], "incident.page_id");
    let updates = i["incident_updates"].as_array().unwrap();
    assert!(!updates.is_empty());
    let mut previous: Option<String> = None;
    for u in updates {
        assert_eq!(keys(u), set(&UPDATE_KEYS), "{u}");
        assert_eq!(u["incident_id"], i["id"]);
        one_of(
            &u["status"],
            if maintenance {
                &MAINTENANCE_STATUSES
            } else {
                &INCIDENT_STATUSES
            },
            "update.status",
        );
        for k in ["created_at", "updated_at", "display_at"] {
            timestamp(&u[k], k);
        }
        string(&u["body"], "update.body");
        assert!(u["deliver_notifications"].is_boolean());
        assert!(u["custom_tweet"].is_null() && u["tweet_id"].is_null());
        for a in u["affected_components"].as_array().unwrap() {
            assert_eq!(keys(a), set(&["code", "name", "old_status", "new_status"]));
            one_of(&a["old_status"], &COMPONENT_STATUSES, "old_status");
            one_of(&a["new_status"], &COMPONENT_STATUSES, "new_status");
        }
        // Newest first.
        let created = string(&u["created_at"], "created_at");
        if let Some(p) = &previous {
            assert!(created <= *p, "updates are not newest first");
        }
        previous = Some(created);
    }
    for c in i["components"].as_array().unwrap() {
        check_component(c);
    }
}

/// A write's answer is the public view of the incident plus what happened to its notices.
fn without_notices(v: &Value) -> Value {
    let mut v = v.clone();
    assert!(
        v.as_object_mut()
            .unwrap()
            .remove("notices")
            .unwrap()
            .is_array()
    );
    v
}

fn check_status(s: &Value) {
    assert_eq!(keys(s), set(&["indicator", "description"]));
    one_of(&s["indicator"], &INDICATORS, "indicator");
    string(&s["description"], "description");
}

/// Fetches every JSON document, checks each against the v2 shape, returns them by name.
async fn documents(w: &Status) -> BTreeMap<&'static str, Value> {
    let mut docs = BTreeMap::new();
    for (name, top) in [
        (
            "summary.json",
            &[
                "page",
                "components",
                "incidents",
                "scheduled_maintenances",
                "status",
            ][..],
        ),
        ("status.json", &["page", "status"][..]),
        ("components.json", &["page", "components"][..]),
        ("incidents.json", &["page", "incidents"][..]),
        ("incidents/unresolved.json", &["page", "incidents"][..]),
        (
            "scheduled-maintenances.json",
            &["page", "scheduled_maintenances"][..],
        ),
        (
            "scheduled-maintenances/upcoming.json",
            &["page", "scheduled_maintenances"][..],
        ),
        (
            "scheduled-maintenances/active.json",
            &["page", "scheduled_maintenances"][..],
        ),
    ] {
        let r = w.get(&format!("/status/api/v2/{name}")).await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        assert_eq!(r.headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(r.headers[header::CACHE_CONTROL], "public, max-age=30");
        assert_eq!(r.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let doc = r.json();
        assert_eq!(keys(&doc), set(top), "{name}");
        check_page(&doc["page"]);
        if doc.get("status").is_some() {
            check_status(&doc["status"]);
        }
        for c in doc
            .get("components")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            check_component(c);
        }
        for i in doc
            .get("incidents")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            check_incident(i, false);
        }
        for m in doc
            .get("scheduled_maintenances")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            check_incident(m, true);
        }
        docs.insert(name, doc);
    }
    docs
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| string(&v["id"], "id"))
        .collect()
}

fn component<'a>(docs: &'a BTreeMap<&str, Value>, id: &str) -> &'a Value {
    docs["components.json"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap()
}

// ------------------------------------------------------------------------------- the tests

#[tokio::test]
async fn scripted_lifecycle_keeps_every_document_in_statuspage_v2_shape() {
    let w = world(0).await;
    let docs = documents(&w).await;
    assert_eq!(docs["status.json"]["status"]["indicator"], "none");
    assert_eq!(
        docs["status.json"]["status"]["description"],
        "All Systems Operational"
    );

    // Components: a group with two members, and one on its own.
    let core = w
        .ok(
            Method::POST,
            "/status/manage/components",
            None,
            json!({"name": "Core", "group": true}),
        )
        .await;
    let core_id = string(&core["id"], "id");
    let api = w
        .ok(
            Method::POST,
            "/status/manage/components",
            None,
            json!({"name": "Server API", "group_id": core_id, "description": "track, validate"}),
        )
        .await;
    let api_id = string(&api["id"], "id");
    let passkeys = w
        .ok(
            Method::POST,
            "/status/manage/components",
            None,
            json!({"name": "Passkeys", "group_id": core_id}),
        )
        .await;
    let passkeys_id = string(&passkeys["id"], "id");
    let mail = w
        .ok(
            Method::POST,
            "/status/manage/components",
            None,
            json!({"name": "Email delivery", "start_date": "2026-01-01"}),
        )
        .await;
    let mail_id = string(&mail["id"], "id");
    let docs = documents(&w).await;
    assert_eq!(
        docs["components.json"]["components"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        component(&docs, &core_id)["components"],
        json!([api_id, passkeys_id])
    );

    // Investigating: a major incident takes the API to a partial outage.
    w.clock.advance(Duration::minutes(5));
    let created = w
        .ok(
            Method::POST,
            "/status/manage/incidents",
            Some("incident-1-open"),
            json!({
                "name": "Elevated API errors",
                "impact": "major",
                "body": "We are investigating errors on track and validate.",
                "components": {api_id.clone(): "partial_outage"}
            }),
        )
        .await;
    check_incident(&without_notices(&created), false);
    let incident_id = string(&created["id"], "id");
    assert_eq!(created["status"], "investigating");
    assert_eq!(
        created["incident_updates"][0]["affected_components"],
        json!([{"code": api_id, "name": "Server API", "old_status": "operational", "new_status": "partial_outage"}])
    );
    let docs = documents(&w).await;
    assert_eq!(docs["status.json"]["status"]["indicator"], "major");
    assert_eq!(
        docs["status.json"]["status"]["description"],
        "Partial System Outage"
    );
    assert_eq!(
        ids(&docs["incidents/unresolved.json"]["incidents"]),
        vec![incident_id.clone()]
    );
    assert_eq!(
        ids(&docs["summary.json"]["incidents"]),
        vec![incident_id.clone()]
    );
    assert_eq!(component(&docs, &api_id)["status"], "partial_outage");
    assert_eq!(component(&docs, &core_id)["status"], "partial_outage");

    // Identified, then monitoring (degraded), then resolved (operational).
    let mut statuses = vec!["investigating"];
    for (step, (status, comp)) in [
        ("identified", None),
        ("monitoring", Some("degraded_performance")),
        ("resolved", Some("operational")),
    ]
    .into_iter()
    .enumerate()
    {
        w.clock.advance(Duration::minutes(20));
        let mut body = json!({"status": status, "body": format!("Now {status}.")});
        if let Some(c) = comp {
            body["components"] = json!({api_id.clone(): c});
        }
        let updated = w
            .ok(
                Method::POST,
                &format!("/status/manage/incidents/{incident_id}/updates"),
                Some(&format!("incident-1-step-{step}")),
                body,
            )
            .await;
        check_incident(&without_notices(&updated), false);
        statuses.push(status);
        let docs = documents(&w).await;
        let listed = &docs["incidents.json"]["incidents"][0];
        assert_eq!(listed["id"], incident_id.as_str());
        assert_eq!(listed["status"], status);
        let timeline: Vec<&str> = listed["incident_updates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["status"].as_str().unwrap())
            .collect();
        let mut expected = statuses.clone();
        expected.reverse();
        assert_eq!(timeline, expected);
        match status {
            "identified" => assert!(listed["monitoring_at"].is_null()),
            "monitoring" => {
                timestamp(&listed["monitoring_at"], "monitoring_at");
                assert!(listed["resolved_at"].is_null());
                assert_eq!(docs["status.json"]["status"]["indicator"], "major");
            }
            _ => {
                timestamp(&listed["resolved_at"], "resolved_at");
                assert_eq!(docs["status.json"]["status"]["indicator"], "none");
                assert!(
                    docs["incidents/unresolved.json"]["incidents"]
                        .as_array()
                        .unwrap()
                        .is_empty()
                );
                assert_eq!(component(&docs, &api_id)["status"], "operational");
            }
        }
    }

    // The lifecycle is enforced: a resolved incident takes a postmortem, not a reopening.
    let reopen = w
        .write(
            Method::POST,
            &format!("/status/manage/incidents/{incident_id}/updates"),
            Some("incident-1-reopen"),
            json!({"status": "investigating", "body": "again"}),
        )
        .await;
    assert_eq!(reopen.status, StatusCode::BAD_REQUEST, "{}", reopen.text());
    assert_eq!(reopen.json()["errorCode"], "invalid_request");
    w.clock.advance(Duration::days(1));
    let pm = w
        .ok(
            Method::POST,
            &format!("/status/manage/incidents/{incident_id}/updates"),
            Some("incident-1-postmortem"),
            json!({"status": "postmortem", "body": "A bad deploy; we added a canary."}),
        )
        .await;
    assert_eq!(pm["status"], "postmortem");

    // A maintenance: scheduled, in progress (its component goes under maintenance),
    // verifying, completed (back to operational).
    let start = w.clock_now() + Duration::days(2);
    let m = w
        .ok(
            Method::POST,
            "/status/manage/maintenances",
            Some("maintenance-1"),
            json!({
                "name": "Mail provider migration",
                "body": "Email OTP may be delayed by up to a minute.",
                "scheduled_for": start.format(&Rfc3339).unwrap(),
                "scheduled_until": (start + Duration::hours(2)).format(&Rfc3339).unwrap(),
                "components": [mail_id.clone()]
            }),
        )
        .await;
    check_incident(&without_notices(&m), true);
    let maintenance_id = string(&m["id"], "id");
    let docs = documents(&w).await;
    assert_eq!(
        ids(&docs["scheduled-maintenances/upcoming.json"]["scheduled_maintenances"]),
        vec![maintenance_id.clone()]
    );
    assert!(
        docs["scheduled-maintenances/active.json"]["scheduled_maintenances"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(&docs["summary.json"]["scheduled_maintenances"]),
        vec![maintenance_id.clone()]
    );

    w.clock.advance(Duration::days(2));
    for (n, status) in ["in_progress", "verifying", "completed"].iter().enumerate() {
        w.ok(
            Method::POST,
            &format!("/status/manage/maintenances/{maintenance_id}/updates"),
            Some(&format!("maintenance-1-{n}")),
            json!({"status": status, "body": format!("Maintenance {status}.")}),
        )
        .await;
        w.clock.advance(Duration::minutes(30));
        let docs = documents(&w).await;
        let active = ids(&docs["scheduled-maintenances/active.json"]["scheduled_maintenances"]);
        match *status {
            "in_progress" => {
                assert_eq!(active, vec![maintenance_id.clone()]);
                assert_eq!(component(&docs, &mail_id)["status"], "under_maintenance");
                assert_eq!(docs["status.json"]["status"]["indicator"], "none");
                assert_eq!(
                    docs["status.json"]["status"]["description"],
                    "Service Under Maintenance"
                );
            }
            "verifying" => assert_eq!(active, vec![maintenance_id.clone()]),
            _ => {
                assert!(active.is_empty());
                assert_eq!(component(&docs, &mail_id)["status"], "operational");
                assert_eq!(
                    docs["status.json"]["status"]["description"],
                    "All Systems Operational"
                );
                let all = &docs["scheduled-maintenances.json"]["scheduled_maintenances"][0];
                assert_eq!(all["status"], "completed");
                timestamp(&all["resolved_at"], "resolved_at");
            }
        }
    }
    // A maintenance status cannot be posted to an incident, nor the other way round.
    let wrong = w
        .write(
            Method::POST,
            &format!("/status/manage/incidents/{incident_id}/updates"),
            Some("incident-1-wrong-kind"),
            json!({"status": "in_progress", "body": "x"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);

    // Every write is in the platform journal, and the chain holds.
    let actions: Vec<String> = w
        .events(PLATFORM_JOURNAL)
        .await
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.starts_with("status.component.create"))
            .count(),
        4
    );
    assert!(actions.contains(&"status.incident.create".to_owned()));
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "status.incident.post_update")
            .count(),
        4
    );
    assert!(actions.contains(&"status.maintenance.create".to_owned()));
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "status.maintenance.post_update")
            .count(),
        3
    );
    let report = w.audit(PLATFORM_JOURNAL).await;
    assert!(report.broken.is_none(), "{report:?}");
}

#[tokio::test]
async fn public_documents_are_cacheable_and_writes_are_not() {
    let w = world(0).await;
    let first = w.get("/status/api/v2/status.json").await;
    let tag = first.headers[header::ETAG].to_str().unwrap().to_owned();
    assert!(tag.starts_with('"') && !tag.starts_with("W/"), "{tag}");

    let again = w
        .send(
            Request::get("/status/api/v2/status.json")
                .header(header::IF_NONE_MATCH, &tag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.headers[header::ETAG], tag.as_str());
    assert_eq!(again.headers[header::CACHE_CONTROL], "public, max-age=30");

    for uri in ["/status", "/status/feed.atom"] {
        let r = w.get(uri).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers[header::CACHE_CONTROL], "public, max-age=30");
        assert!(r.headers.contains_key(header::ETAG));
    }

    w.clock.advance(Duration::minutes(1));
    let created = w
        .write(
            Method::POST,
            "/status/manage/components",
            None,
            json!({"name": "Server API"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.headers[header::CACHE_CONTROL], "no-store");
    let changed = w
        .send(
            Request::get("/status/api/v2/status.json")
                .header(header::IF_NONE_MATCH, &tag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "the page changed");
    assert_ne!(changed.headers[header::ETAG], tag.as_str());
}

#[tokio::test]
async fn writes_need_a_live_operator_token_and_an_idempotency_key() {
    let w = world(0).await;
    let body = json!({"name": "X", "body": "y"});
    for auth in [
        None,
        Some("Bearer lko_0123456789abcdef_0000000000000000000000000000000000000000000"),
        Some("Basic bGtvXzA6"),
    ] {
        let mut req = Request::post("/status/manage/incidents")
            .header("idempotency-key", "key-000001")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let r = w
            .send(req.body(Body::from(body.to_string())).unwrap())
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(r.json()["errorCode"], "unauthorized");
    }
    let missing_key = w
        .write(Method::POST, "/status/manage/incidents", None, body.clone())
        .await;
    assert_eq!(missing_key.status, StatusCode::BAD_REQUEST);

    let me = w
        .send(
            Request::get("/status/manage/whoami")
                .header(header::AUTHORIZATION, format!("Bearer {}", w.token))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(me.status, StatusCode::OK);
    let operator_id = string(&me.json()["operator_id"], "operator_id");
    revoke_operator(
        &w.services,
        &AuditContext::system("test", "revoke"),
        &operator_id,
    )
    .await
    .unwrap();
    let revoked = w
        .write(
            Method::POST,
            "/status/manage/incidents",
            Some("key-000002"),
            body,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED);
    let mut kinds: Vec<String> = w
        .events(PLATFORM_JOURNAL)
        .await
        .into_iter()
        .map(|e| e.action)
        .collect();
    // The test clock stands still: events of one millisecond list in id order.
    kinds.sort();
    assert_eq!(kinds, ["operator.create", "operator.revoke"]);
}

#[tokio::test]
async fn atom_feed_parses_and_holds_the_updates_in_order() {
    let w = world(0).await;
    let incident = w
        .ok(
            Method::POST,
            "/status/manage/incidents",
            Some("feed-incident"),
            json!({"name": "Passkey sign-in <failing> & slow", "impact": "minor", "body": "First: investigating."}),
        )
        .await;
    let id = string(&incident["id"], "id");
    for (n, (status, body)) in [
        ("identified", "Second: a stale cache."),
        ("resolved", "Third: fixed."),
    ]
    .into_iter()
    .enumerate()
    {
        w.clock.advance(Duration::minutes(15));
        w.ok(
            Method::POST,
            &format!("/status/manage/incidents/{id}/updates"),
            Some(&format!("feed-update-{n}")),
            json!({"status": status, "body": body}),
        )
        .await;
    }
    w.clock.advance(Duration::minutes(15));
    let start = w.clock_now() + Duration::days(3);
    w.ok(
        Method::POST,
        "/status/manage/maintenances",
        Some("feed-maintenance"),
        json!({"name": "Database upgrade", "body": "Brief read-only window.",
               "scheduled_for": start.format(&Rfc3339).unwrap(),
               "scheduled_until": (start + Duration::hours(1)).format(&Rfc3339).unwrap()}),
    )
    .await;

    let r = w.get("/status/feed.atom").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/atom+xml");
    let feed = feed_rs::parser::parse(&r.body[..]).unwrap();
    assert_eq!(feed.feed_type, feed_rs::model::FeedType::Atom);
    assert_eq!(feed.title.unwrap().content, "Latchkey status");
    assert_eq!(feed.entries.len(), 2);
    // Most recently updated first: the maintenance, then the incident.
    assert_eq!(
        feed.entries[0].title.as_ref().unwrap().content,
        "Database upgrade"
    );
    let entry = &feed.entries[1];
    assert_eq!(
        entry.title.as_ref().unwrap().content,
        "Passkey sign-in <failing> & slow"
    );
    assert!(entry.updated.is_some() && entry.published.is_some());
    assert!(entry.links[0].href.ends_with(&format!("#incident-{id}")));
    let html = entry.content.as_ref().unwrap().body.clone().unwrap();
    let positions: Vec<usize> = [
        "Third: fixed.",
        "Second: a stale cache.",
        "First: investigating.",
    ]
    .iter()
    .map(|b| {
        html.find(b)
            .unwrap_or_else(|| panic!("{b} missing from {html}"))
    })
    .collect();
    assert!(
        positions.windows(2).all(|p| p[0] < p[1]),
        "updates are not newest first: {html}"
    );
    for status in ["Resolved", "Identified", "Investigating"] {
        assert!(html.contains(status), "{status} missing");
    }
}

#[tokio::test]
async fn html_page_shows_the_status_escaped_without_scripts() {
    let w = world(0).await;
    let empty = w.get("/status").await;
    assert!(empty.text().contains("All Systems Operational"));
    w.ok(
        Method::POST,
        "/status/manage/incidents",
        Some("html-incident"),
        json!({"name": "Login <script>alert(1)</script> errors", "impact": "critical",
               "body": "Investigating <b>now</b> & later."}),
    )
    .await;
    let r = w.get("/status").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("style-src 'sha256-"));
    let html = r.text();
    assert!(html.contains(r#"name="viewport""#));
    assert!(html.contains(r#"<p class="overall ind-critical">Major System Outage</p>"#));
    assert!(html.contains(r#"<article class="card impact-critical" id="incident-"#));
    assert!(html.contains("Login &lt;script&gt;alert(1)&lt;/script&gt; errors"));
    assert!(html.contains("Investigating &lt;b&gt;now&lt;/b&gt; &amp; later."));
    assert!(
        !html.contains("<script"),
        "no script tag may reach the page"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );
    assert_eq!(
        html.matches(r#"<span class="d-"#).count(),
        90,
        "90 days of history"
    );
}

#[tokio::test]
async fn data_impact_notice_reaches_each_admin_contact_once_and_both_audit_logs() {
    let w = world(0).await;
    let request = json!({
        "name": "Unauthorised read of audit exports",
        "impact": "critical",
        "body": "Audit exports of two customers were readable by another account.",
        "data_impact_tenants": ["tenant-a", "tenant-b"]
    });
    let first = w
        .write(
            Method::POST,
            "/status/manage/incidents",
            Some("breach-1"),
            request.clone(),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    let body = first.json();
    let id = string(&body["id"], "id");
    assert_eq!(
        body["notices"],
        json!([
            {"tenant_id": "tenant-a", "contacts": 2, "sent": 2, "already_sent": 0, "pending": 0, "failed": 0},
            {"tenant_id": "tenant-b", "contacts": 1, "sent": 1, "already_sent": 0, "pending": 0, "failed": 0}
        ])
    );
    let sent = w.outbox.sent();
    let mut to: Vec<&str> = sent.iter().map(|e| e.to.as_str()).collect();
    to.sort();
    assert_eq!(to, ["ada@a.example", "alan@a.example", "grace@b.example"]);
    for e in &sent {
        assert!(e.urgent);
        assert!(e.subject.starts_with("[Urgent]"), "{}", e.subject);
        assert!(e.text.contains("Unauthorised read of audit exports"));
        assert!(e.text.contains(&format!("#incident-{id}")));
    }
    assert!(
        sent.iter()
            .any(|e| e.text.contains("\"Customer tenant-a\" (tenant-a)"))
    );

    // Both tenants' logs record the notice and each delivery; the third tenant's does not.
    for (tenant, contacts) in [("tenant-a", 2), ("tenant-b", 1)] {
        let events = w.events(tenant).await;
        let notice: Vec<&AuditEvent> = events
            .iter()
            .filter(|e| e.action == "status.notice")
            .collect();
        assert_eq!(notice.len(), 1, "{tenant}");
        assert_eq!(notice[0].target, format!("incident:{id}"));
        assert_eq!(notice[0].summary["contacts"], contacts);
        assert_eq!(
            events
                .iter()
                .filter(|e| e.action == "status.notice.sent")
                .count(),
            contacts
        );
        let text = serde_json::to_string(&events).unwrap();
        assert!(
            !text.contains(&format!("@{}.example", &tenant[7..])),
            "no address in {tenant}'s log"
        );
        assert!(w.audit(tenant).await.broken.is_none());
    }
    assert!(
        !w.events("tenant-c")
            .await
            .iter()
            .any(|e| e.action.starts_with("status."))
    );

    // The same request again: the same incident, no second update, nothing sent.
    let retry = w
        .write(
            Method::POST,
            "/status/manage/incidents",
            Some("breach-1"),
            request.clone(),
        )
        .await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text());
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    assert_eq!(retry.json()["id"], id.as_str());
    assert_eq!(retry.json()["notices"][0]["already_sent"], 2);
    assert_eq!(w.outbox.sent().len(), 3);
    assert_eq!(
        w.events("tenant-a")
            .await
            .iter()
            .filter(|e| e.action == "status.notice")
            .count(),
        1
    );
    // The same key for another request is refused.
    let mut other = request.clone();
    other["name"] = json!("Something else");
    let clash = w
        .write(
            Method::POST,
            "/status/manage/incidents",
            Some("breach-1"),
            other,
        )
        .await;
    assert_eq!(clash.status, StatusCode::CONFLICT);

    // A later update marked for one tenant notifies that tenant's contacts, once.
    w.clock.advance(Duration::hours(1));
    let update = json!({"status": "identified", "body": "Access was revoked; exports rotated.",
                        "data_impact_tenants": ["tenant-a"]});
    let uri = format!("/status/manage/incidents/{id}/updates");
    let r = w
        .write(Method::POST, &uri, Some("breach-1-u2"), update.clone())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(w.outbox.sent().len(), 5);
    assert!(w.outbox.sent()[3].subject.contains("Update"));
    let r = w
        .write(Method::POST, &uri, Some("breach-1-u2"), update)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(w.outbox.sent().len(), 5);
    // An update not marked for anyone sends nothing.
    w.ok(
        Method::POST,
        &uri,
        Some("breach-1-u3"),
        json!({"status": "resolved", "body": "Resolved."}),
    )
    .await;
    assert_eq!(w.outbox.sent().len(), 5);
    let notices = w
        .events("tenant-a")
        .await
        .into_iter()
        .filter(|e| e.action == "status.notice")
        .count();
    assert_eq!(notices, 2);

    // Unknown tenants are refused before anything is written.
    let unknown = w
        .write(
            Method::POST,
            "/status/manage/incidents",
            Some("breach-2"),
            json!({"name": "x", "body": "y", "data_impact_tenants": ["no-such-tenant"]}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn notice_that_could_not_be_sent_stays_pending_and_a_retry_sends_it_once() {
    let w = world(1).await;
    let request = json!({"name": "Token signing key exposure", "impact": "critical",
                         "body": "A signing key was logged.", "data_impact_tenants": ["tenant-b"]});
    let first = w
        .write(
            Method::POST,
            "/status/manage/incidents",
            Some("exposure-1"),
            request.clone(),
        )
        .await;
    assert_eq!(first.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        first.json()["errorDescription"]
            .as_str()
            .unwrap()
            .contains("same Idempotency-Key")
    );
    assert!(w.outbox.sent().is_empty());
    // The incident is public and the notice recorded, but not marked sent.
    let docs = documents(&w).await;
    assert_eq!(
        docs["incidents/unresolved.json"]["incidents"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let events = w.events("tenant-b").await;
    assert!(events.iter().any(|e| e.action == "status.notice"));
    assert!(!events.iter().any(|e| e.action == "status.notice.sent"));

    let retry = w
        .write(
            Method::POST,
            "/status/manage/incidents",
            Some("exposure-1"),
            request.clone(),
        )
        .await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text());
    assert_eq!(retry.json()["notices"][0]["sent"], 1);
    assert_eq!(w.outbox.sent().len(), 1);
    assert_eq!(w.outbox.sent()[0].to, "grace@b.example");

    let again = w
        .write(
            Method::POST,
            "/status/manage/incidents",
            Some("exposure-1"),
            request,
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(w.outbox.sent().len(), 1);
    let events = w.events("tenant-b").await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "status.notice.sent")
            .count(),
        1
    );
}

#[tokio::test]
async fn every_declared_route_is_served_and_writes_need_an_operator() {
    let w = world(0).await;
    for (method, path, access) in latchkey_status::ROUTES {
        let uri = path.replace("{id}", "0000");
        let r = w
            .send(
                Request::builder()
                    .method(method)
                    .uri(&uri)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        let expected = match access {
            // This world configures none (security_txt_is_served_from_configuration has one).
            _ if path == "/.well-known/security.txt" => StatusCode::NOT_FOUND,
            latchkey_status::Access::Public => StatusCode::OK,
            latchkey_status::Access::Operator => StatusCode::UNAUTHORIZED,
        };
        assert_eq!(r.status, expected, "{method} {uri}");
    }
}

/// `/.well-known/security.txt` (RFC 9116) is served from the deployment's configuration, as
/// latchkey-local and the status function wire it, cacheable like the rest of the public side;
/// with none configured it is a 404 in the wire format, not a file with made-up contacts.
#[tokio::test]
async fn security_txt_is_served_from_configuration() {
    use latchkey::config::Config;
    use tower::ServiceExt as _;

    let w = world(0).await;
    let unconfigured = w.get("/.well-known/security.txt").await;
    assert_eq!(unconfigured.status, StatusCode::NOT_FOUND);
    let body: Value = serde_json::from_slice(&unconfigured.body).unwrap();
    assert_eq!(body["error"], "not_found", "{body}");

    let vars: BTreeMap<String, String> = [
        ("LATCHKEY_SECURITY_CONTACT", "mailto:security@example.com"),
        ("LATCHKEY_SECURITY_EXPIRES", "2027-06-01T00:00:00Z"),
        ("LATCHKEY_SECURITY_POLICY", "https://example.com/disclosure"),
        ("LATCHKEY_PUBLIC_URL", "https://auth.example.com"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = Config::from_vars(&vars).unwrap();
    let app = latchkey_local::gateway_with_demo(
        w.services.clone(),
        w.sealer.signer().clone(),
        Default::default(),
        config.security_txt.clone(),
        w.tenant.clone(),
    );
    let res = app
        .oneshot(
            Request::get("/.well-known/security.txt")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    assert_eq!(res.headers()[header::CACHE_CONTROL], "public, max-age=30");
    let text = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    assert_eq!(
        std::str::from_utf8(&text).unwrap(),
        "Contact: mailto:security@example.com\n\
         Expires: 2027-06-01T00:00:00Z\n\
         Policy: https://example.com/disclosure\n\
         Canonical: https://auth.example.com/.well-known/security.txt\n\
         Preferred-Languages: en\n"
    );

    // A contact without an expiry (RFC 9116 requires both) stops the process at start.
    let half: BTreeMap<String, String> = [(
        "LATCHKEY_SECURITY_CONTACT".to_owned(),
        "mailto:s@example.com".to_owned(),
    )]
    .into();
    assert_eq!(
        Config::from_vars(&half).unwrap_err().var,
        "LATCHKEY_SECURITY_EXPIRES"
    );
}

/// A notice recorded, but not sent, before a rotation of the root secret is sent once by the
/// retry after it: the recorded contact reference (a keyed hash) is matched under the older
/// root, where the current one alone would call the contact removed and never send.
#[tokio::test]
async fn a_notice_left_unsent_before_a_root_rotation_is_sent_once_by_the_retry() {
    let w = world_with(1, true).await;
    let request = json!({"name": "Key exposure", "impact": "critical",
                         "body": "A signing key was logged.", "data_impact_tenants": ["tenant-b"]});
    let first = w
        .write(
            Method::POST,
            "/status/manage/incidents",
            Some("rotated-1"),
            request.clone(),
        )
        .await;
    assert_eq!(first.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(w.outbox.sent().is_empty());

    w.rotate_root(b"generation 1");
    let retry = w
        .write(
            Method::POST,
            "/status/manage/incidents",
            Some("rotated-1"),
            request.clone(),
        )
        .await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text());
    assert_eq!(retry.json()["notices"][0]["sent"], 1, "{}", retry.text());
    assert_eq!(retry.json()["notices"][0]["failed"], 0);
    assert_eq!(w.outbox.sent().len(), 1);
    assert_eq!(w.outbox.sent()[0].to, "grace@b.example");
}
