//! The one fixture of the HTTP tests: services on the embedded adapters with a [`ManualClock`],
//! a tenant with a secret key, the local gateway's router over them, and a client for it.
//!
//! ```text
//! let w = World::setup().tenant("t-otp", settings).eml_outbox().build().await;
//! let t = w.track("jane", "signIn").await;
//! let (status, body) = w.post(&t.bearer, "/v1/client/verify/totp", json!({ ... })).await;
//! ```
//!
//! Everything the world writes (an on-disk store, key and secrets files, `.eml` messages) lives in
//! its own temporary folder, removed when the world is dropped.
use crate::client::{Client, Reply, basic, bearer, tenant_basic};
use axum::Router;
use axum::body::Body;
use http::{Method, Request, StatusCode};
use latchkey::Services;
use latchkey::adapters::local_keys::LocalKeyVault;
use latchkey::adapters::local_secrets::LocalSecrets;
use latchkey::adapters::local_signer::LocalSigner;
use latchkey::adapters::outbox::{MemoryOutbox, Outbox};
use latchkey::adapters::sqlite::SqliteStore;
use latchkey::domain::CachePolicy;
use latchkey::domain::audit::seal::{self, SealPolicy, Sealer};
use latchkey::domain::audit::verify::{self, VerifyReport};
use latchkey::domain::audit::{AuditContext, AuditEvent, EVENT_SK_PREFIX};
use latchkey::domain::limits::AnonymousLimits;
use latchkey::domain::tenants::{TenantSettings, create_api_key, create_tenant};
use latchkey::http::HttpSettings;
use latchkey::ports::Feed;
use latchkey::ports::clock::{Clock as _, ManualClock};
use latchkey::ports::random::OsRandom;
use latchkey::ports::{KeyVault, Mailer, Secrets, Store};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tempfile::TempDir;
use time::Duration;

/// The default tenant's origin, which the world's client sends unless told otherwise.
pub const ORIGIN: &str = "https://example.com";
/// The default tenant's id.
pub const TENANT: &str = "t-test";

/// The default tenant: relying party `example.com`, origin [`ORIGIN`].
pub fn example_settings(name: &str) -> TenantSettings {
    TenantSettings {
        name: name.into(),
        rp_id: "example.com".into(),
        allowed_origins: vec![ORIGIN.into()],
        ..Default::default()
    }
}

type WrapMailer = Box<dyn FnOnce(Arc<MemoryOutbox>) -> Arc<dyn Mailer>>;

/// What differs between worlds. Start from [`World::setup`].
pub struct Setup {
    tenant: Option<(String, TenantSettings)>,
    others: Vec<(String, TenantSettings)>,
    secret_key: Option<String>,
    origin: Option<Option<String>>,
    on_disk: bool,
    eml_outbox: bool,
    wrap_mailer: Option<WrapMailer>,
    limits: AnonymousLimits,
    count_store: bool,
    record_ports: bool,
    rotating: bool,
}

impl Setup {
    /// The world's tenant (in place of [`TENANT`] with [`example_settings`]), with a secret key.
    /// The client sends the first of its origins unless told otherwise.
    pub fn tenant(mut self, id: &str, settings: TenantSettings) -> Self {
        self.tenant = Some((id.into(), settings));
        self
    }

    /// Another tenant with a secret key of its own ([`World::key_of`]).
    pub fn other_tenant(mut self, id: &str, settings: TenantSettings) -> Self {
        self.others.push((id.into(), settings));
        self
    }

    /// No tenant at all: the store starts empty (the test makes what it needs).
    pub fn no_tenant(mut self) -> Self {
        self.tenant = None;
        self.others.clear();
        self
    }

    /// The world's tenant's secret key is `secret` (`lk_<16 hex>_<secret>`), not a random one.
    pub fn secret_key(mut self, secret: &str) -> Self {
        self.secret_key = Some(secret.into());
        self
    }

    /// Requests carry this `Origin` (`None`: no `Origin` header, as a server SDK sends them).
    pub fn origin(mut self, origin: Option<&str>) -> Self {
        self.origin = Some(origin.map(str::to_owned));
        self
    }

    /// The store in a SQLite file (`latchkey.db`, WAL and all), the master key in a key file and
    /// generated secrets in a 0600 file, all in the world's folder: what `latchkey-local` uses.
    /// Otherwise SQLite in memory, a fixed key and a fixed root secret.
    pub fn on_disk(mut self) -> Self {
        self.on_disk = true;
        self
    }

    /// Mail becomes `.eml` files in the world's `outbox/` folder ([`World::eml`]), as
    /// `latchkey-local` writes it, in place of the memory outbox.
    pub fn eml_outbox(mut self) -> Self {
        self.eml_outbox = true;
        self
    }

    /// The services send mail through `wrap(memory outbox)`, e.g. a mailer that fails first and
    /// then delivers to the memory outbox.
    pub fn mailer(
        mut self,
        wrap: impl FnOnce(Arc<MemoryOutbox>) -> Arc<dyn Mailer> + 'static,
    ) -> Self {
        self.wrap_mailer = Some(Box::new(wrap));
        self
    }

    /// Limits on `Basic <tenant id>` calls other than the defaults.
    /// The store behind a [`CountingStore`](crate::counting::CountingStore) ([`World::store_calls`]), to count round trips.
    pub fn count_store_calls(mut self) -> Self {
        self.count_store = true;
        self
    }

    /// Records every store, key-vault and secrets call (`World::store_calls`,
    /// `World::port_calls`).
    pub fn record_port_calls(mut self) -> Self {
        self.count_store = true;
        self.record_ports = true;
        self
    }

    /// The root secret in a [`RotatingSecrets`](crate::rotating::RotatingSecrets) the test
    /// rotates with [`World::rotate_root`] (in place of the fixed or file-held one).
    pub fn rotating_secrets(mut self) -> Self {
        self.rotating = true;
        self
    }

    pub fn limits(mut self, limits: AnonymousLimits) -> Self {
        self.limits = limits;
        self
    }

    pub async fn build(self) -> World {
        let dir = tempfile::tempdir().unwrap();
        let clock = crate::test_clock();
        let random = Arc::new(OsRandom);
        let (sqlite, vault, secrets, db) = embedded(self.on_disk, dir.path(), &random);
        let rotating = self
            .rotating
            .then(|| Arc::new(crate::rotating::RotatingSecrets::new(b"generation 0")));
        let secrets: Arc<dyn Secrets> = match &rotating {
            Some(r) => r.clone(),
            None => secrets,
        };
        let feed: Arc<dyn Feed> = Arc::new(sqlite.feed());
        let store: Arc<dyn Store> = Arc::new(sqlite);
        let counting = self
            .count_store
            .then(|| Arc::new(crate::counting::CountingStore::new(store.clone())));
        let store: Arc<dyn Store> = match &counting {
            Some(c) => c.clone(),
            None => store,
        };
        let port_calls = self
            .record_ports
            .then(|| Arc::new(crate::counting::PortCalls::default()));
        let (vault, secrets): (Arc<dyn KeyVault>, Arc<dyn Secrets>) = match &port_calls {
            Some(calls) => (
                Arc::new(crate::counting::RecordingVault {
                    inner: vault,
                    calls: calls.clone(),
                }),
                Arc::new(crate::counting::RecordingSecrets {
                    inner: secrets,
                    calls: calls.clone(),
                }),
            ),
            None => (vault, secrets),
        };
        let outbox = Arc::new(MemoryOutbox::default());
        let eml = self.eml_outbox.then(|| {
            Arc::new(
                Outbox::new(
                    &dir.path().join("outbox"),
                    "Latchkey <no-reply@localhost>",
                    clock.clone(),
                    random.clone(),
                )
                .unwrap(),
            )
        });
        let mailer: Arc<dyn Mailer> = match (self.wrap_mailer, &eml) {
            (Some(wrap), _) => wrap(outbox.clone()),
            (None, Some(eml)) => eml.clone(),
            (None, None) => outbox.clone(),
        };
        let services = Arc::new(
            Services::new(
                latchkey::domain::Ports {
                    store,
                    vault,
                    secrets,
                    clock: clock.clone(),
                    random,
                    mailer,
                },
                CachePolicy {
                    ttl: Duration::minutes(5),
                    capacity: 100,
                },
                AnonymousLimits::default(),
            )
            .with_limits(self.limits),
        );

        let ctx = AuditContext::system("test", "setup");
        let mut keys = BTreeMap::new();
        let tenants = self.tenant.iter().map(|t| (t, self.secret_key.as_deref()));
        for ((id, settings), chosen) in tenants.chain(self.others.iter().map(|t| (t, None))) {
            create_tenant(&services, &ctx, id, settings.clone(), vec![])
                .await
                .unwrap();
            let (key_id, key) = create_api_key(&services, &ctx, id, chosen).await.unwrap();
            keys.insert(id.clone(), (key_id, key));
        }
        let origin = match self.origin {
            Some(chosen) => chosen,
            None => self
                .tenant
                .as_ref()
                .and_then(|(_, s)| s.allowed_origins.first().cloned()),
        };
        let tenant = self.tenant.map(|(id, _)| id).unwrap_or_default();
        let (key_id, key) = keys.get(&tenant).cloned().unwrap_or_default();
        let signer: Arc<dyn latchkey::ports::signer::Signer> =
            Arc::new(LocalSigner::ephemeral(&OsRandom).unwrap());
        let app =
            latchkey_local::gateway(services.clone(), signer.clone(), HttpSettings::default());
        let sealer = Sealer::new(
            services.store.clone(),
            services.clock.clone(),
            services.random.clone(),
            signer,
            SealPolicy::default(),
        );
        World {
            feed,
            sealer,
            client: Client::new(app.clone()).with_origin(origin.as_deref()),
            app,
            services,
            clock,
            outbox,
            eml,
            tenant,
            key,
            key_id,
            keys,
            origin,
            db,
            dir,
            store_calls: counting,
            port_calls,
            rotating,
        }
    }
}

/// The store, key vault and secrets of a world, and its SQLite file when on disk.
type Embedded = (
    SqliteStore,
    Arc<dyn KeyVault>,
    Arc<dyn Secrets>,
    Option<PathBuf>,
);

fn embedded(on_disk: bool, dir: &Path, random: &Arc<OsRandom>) -> Embedded {
    if on_disk {
        let db = dir.join("latchkey.db");
        (
            SqliteStore::open(&db).unwrap().with_feed(EVENT_SK_PREFIX),
            Arc::new(LocalKeyVault::open(&dir.join("master.key"), random.clone()).unwrap()),
            Arc::new(LocalSecrets::new(
                BTreeMap::new(),
                Some(dir.join("secrets.json")),
                random.clone(),
            )),
            Some(db),
        )
    } else {
        (
            SqliteStore::in_memory().unwrap().with_feed(EVENT_SK_PREFIX),
            Arc::new(LocalKeyVault::from_key(&[7u8; 32], random.clone()).unwrap()),
            Arc::new(LocalSecrets::with_root(
                b"latchkey-tests world",
                random.clone(),
            )),
            None,
        )
    }
}

/// One tracked action, as `POST /v1/users/{userId}/actions/{action}` answered it.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub token: String,
    /// `Bearer <token>`.
    pub bearer: String,
    pub idempotency_key: String,
    pub state: String,
    /// The whole answer.
    pub body: Value,
}

/// Services on embedded adapters, a tenant, the local gateway over them, and a client. Fields
/// drop in order: the router and services before the folder their files are in.
pub struct World {
    /// The local gateway's router: every function's routes behind the shared middleware.
    pub app: Router,
    pub client: Client,
    pub services: Arc<Services>,
    pub clock: Arc<ManualClock>,
    /// What the services sent, unless [`Setup::eml_outbox`] chose `.eml` files.
    pub outbox: Arc<MemoryOutbox>,
    eml: Option<Arc<Outbox>>,
    /// The world's tenant id (empty with [`Setup::no_tenant`]).
    pub tenant: String,
    /// The tenant's secret key and its key id.
    pub key: String,
    pub key_id: String,
    keys: BTreeMap<String, (String, String)>,
    /// The `Origin` the client sends.
    pub origin: Option<String>,
    /// The SQLite file, with [`Setup::on_disk`].
    pub db: Option<PathBuf>,
    dir: TempDir,
    /// The store's calls, with [`Setup::count_store_calls`].
    pub store_calls: Option<Arc<crate::counting::CountingStore>>,
    /// The vault and secrets calls, when the world was built with `record_port_calls`.
    pub port_calls: Option<Arc<crate::counting::PortCalls>>,
    /// The embedded store's change feed, which [`World::audit`] drains into the sealer.
    pub feed: Arc<dyn Feed>,
    /// The audit sealer, with a signing key of its own.
    pub sealer: Sealer,
    rotating: Option<Arc<crate::rotating::RotatingSecrets>>,
}

impl World {
    /// The default world: [`TENANT`] with [`example_settings`], SQLite in memory, mail in memory.
    pub fn setup() -> Setup {
        Setup {
            tenant: Some((TENANT.into(), example_settings("Example"))),
            others: Vec::new(),
            secret_key: None,
            origin: None,
            on_disk: false,
            eml_outbox: false,
            wrap_mailer: None,
            limits: AnonymousLimits::default(),
            count_store: false,
            record_ports: false,
            rotating: false,
        }
    }

    /// Rotates the root secret to `root` (needs [`Setup::rotating_secrets`]), as Secrets
    /// Manager does: the current value becomes the previous one, the one before is gone.
    pub fn rotate_root(&self, root: &[u8]) {
        self.rotating
            .as_ref()
            .expect("the world was set up with rotating_secrets()")
            .rotate(root);
    }

    pub async fn new() -> World {
        Self::setup().build().await
    }

    /// The world's own temporary folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The `.eml` outbox ([`Setup::eml_outbox`]).
    pub fn eml(&self) -> &Outbox {
        self.eml.as_deref().expect("World::setup().eml_outbox()")
    }

    /// The SQLite file ([`Setup::on_disk`]).
    pub fn db(&self) -> &Path {
        self.db.as_deref().expect("World::setup().on_disk()")
    }

    /// The secret key of `tenant` ([`Setup::other_tenant`]).
    pub fn key_of(&self, tenant: &str) -> &str {
        &self.keys[tenant].1
    }

    /// `Basic` with the world's tenant's secret key.
    pub fn server(&self) -> String {
        basic(&self.key)
    }

    /// `Basic <tenant id>` of the world's tenant.
    pub fn tenant_basic(&self) -> String {
        tenant_basic(&self.tenant)
    }

    /// The clock's time in Unix seconds.
    pub fn now(&self) -> u64 {
        u64::try_from(self.clock.now().unix_timestamp()).unwrap()
    }

    pub async fn request(&self, req: Request<Body>) -> Reply {
        self.client.request(req).await
    }

    pub async fn reply(
        &self,
        method: Method,
        auth: Option<&str>,
        uri: &str,
        body: Option<Value>,
    ) -> Reply {
        self.client.reply(method, auth, uri, body).await
    }

    pub async fn send(
        &self,
        method: Method,
        auth: Option<&str>,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.client.send(method, auth, uri, body).await
    }

    /// `POST` with `auth`; `body` is sent as JSON (`None`: no body).
    pub async fn post(
        &self,
        auth: &str,
        uri: &str,
        body: impl Into<Option<Value>>,
    ) -> (StatusCode, Value) {
        self.send(Method::POST, Some(auth), uri, body.into()).await
    }

    pub async fn get(&self, auth: &str, uri: &str) -> (StatusCode, Value) {
        self.send(Method::GET, Some(auth), uri, None).await
    }

    /// Tracks `action` for `user` with the Server API; the answer must be 200.
    pub async fn track(&self, user: &str, action: &str) -> Tracked {
        self.track_with(user, action, json!({})).await
    }

    /// Tracks with scope `add:authenticators`, which enrolling another authenticator needs.
    pub async fn track_to_add(&self, user: &str, action: &str) -> Tracked {
        self.track_with(user, action, json!({ "scope": "add:authenticators" }))
            .await
    }

    /// Tracks with `body` as the track attributes.
    pub async fn track_with(&self, user: &str, action: &str, body: Value) -> Tracked {
        let (status, t) = self
            .post(
                &self.server(),
                &format!("/v1/users/{user}/actions/{action}"),
                body,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{t}");
        let token = t["token"].as_str().unwrap().to_owned();
        Tracked {
            bearer: bearer(&token),
            token,
            idempotency_key: t["idempotencyKey"].as_str().unwrap().to_owned(),
            state: t["state"].as_str().unwrap().to_owned(),
            body: t,
        }
    }

    /// `POST /v1/validate` of a token (bare or `Bearer …`); the answer's body.
    pub async fn validate(&self, token: &str) -> Value {
        let token = token.trim_start_matches("Bearer ");
        self.post(&self.server(), "/v1/validate", json!({ "token": token }))
            .await
            .1
    }

    /// Seals every committed event (as `latchkey-local`'s background task does), signs each
    /// tenant's tail, and verifies `tenant`'s log: events, sealed chain, checkpoints.
    pub async fn audit(&self, tenant: &str) -> VerifyReport {
        seal::drain(&*self.feed, &self.sealer).await.unwrap();
        self.sealer.flush(tenant, true).await.unwrap();
        self.verify_log(tenant).await
    }

    /// Verifies `tenant`'s log as it stands, sealing nothing.
    pub async fn verify_log(&self, tenant: &str) -> VerifyReport {
        let evidence = verify::collect(&*self.services.store, tenant)
            .await
            .unwrap();
        let key = self.sealer.signer().public_key().await.unwrap();
        verify::check(&evidence, &key, self.services.clock.now())
    }

    /// The audit events of `tenant`, oldest first.
    pub async fn events(&self, tenant: &str) -> Vec<AuditEvent> {
        self.services
            .journal
            .events(tenant, 1000, None, false)
            .await
            .unwrap()
            .0
    }
}
