//! `latchkey-local`: every function's routes on one socket, on whatever adapters the
//! configuration names (the embedded ones by default), so a laptop runs the code that ships.
use axum::Router;
use latchkey::Services;
use latchkey::config::Config;
use latchkey::domain::status::disclosure::SecurityTxt;
use latchkey::domain::tenants::{DevTenant, TenantSettings, ensure_dev_tenant};
use latchkey::http::HttpSettings;
use latchkey::ports::signer::Signer;
use std::sync::Arc;

pub mod demo;

pub const NAME: &str = "latchkey-local";

/// The routes of every HTTP function, behind the shared layers. `signer` is the audit
/// checkpoints' key, whose public key the management API verifies tenants' logs with.
pub fn gateway(services: Arc<Services>, signer: Arc<dyn Signer>, settings: HttpSettings) -> Router {
    latchkey::http::service(
        function_routes(&services, signer, None),
        &services,
        settings,
        NAME,
    )
}

/// [`gateway`] plus the configured `/.well-known/security.txt` and the demo page for the
/// development tenant: what `latchkey-local` serves.
pub fn gateway_with_demo(
    services: Arc<Services>,
    signer: Arc<dyn Signer>,
    settings: HttpSettings,
    security_txt: Option<SecurityTxt>,
    dev_tenant_id: String,
) -> Router {
    let routes = function_routes(&services, signer, security_txt)
        .merge(demo::routes(Arc::clone(&services), dev_tenant_id));
    latchkey::http::service(routes, &services, settings, NAME)
}

fn function_routes(
    services: &Arc<Services>,
    signer: Arc<dyn Signer>,
    security_txt: Option<SecurityTxt>,
) -> Router {
    Router::new()
        .merge(latchkey_auth::routes(services))
        .merge(latchkey_admin_api::routes(services, signer))
        .merge(latchkey_client::routes(services))
        .merge(latchkey_status::routes_configured(services, security_txt))
}

/// Creates the development tenant on first start (see `ensure_dev_tenant`).
pub async fn bootstrap(
    services: &Services,
    config: &Config,
) -> Result<DevTenant, latchkey::domain::Error> {
    let settings = TenantSettings {
        name: "Development".to_owned(),
        rp_id: "localhost".to_owned(),
        allowed_origins: config.local.dev_origins.clone(),
        ..Default::default()
    };
    ensure_dev_tenant(
        services,
        settings,
        config.local.dev_tenant_id.as_deref(),
        config.local.dev_secret_key.as_ref().map(|s| s.as_str()),
    )
    .await
}

/// The console tenant (passkeys for the management API) on first start, for any localhost
/// origin; and, when the development tenant was made on this start, a one-time invite for its
/// first owner. Returns the invite's token, if one was made.
pub async fn bootstrap_console(
    services: &Services,
    dev: &DevTenant,
) -> Result<Option<String>, latchkey::domain::Error> {
    use latchkey::domain::admin::{Role, accounts};
    let ctx = latchkey::domain::audit::AuditContext::system("latchkey-local", "bootstrap");
    if accounts::console_id(services).await?.is_none() {
        accounts::init_console(
            services,
            &ctx,
            "latchkey-console",
            vec!["http://localhost:*".to_owned()],
        )
        .await?;
    }
    if dev.new_secret_key.is_none() {
        return Ok(None);
    }
    let invitee = accounts::Invitee::Member {
        tenant_id: dev.tenant_id.clone(),
        role: Role::Owner,
    };
    let (_, token) = accounts::create_invite(services, &ctx, invitee, 72).await?;
    Ok(Some(token))
}

/// Runs `pass` every `every` (a missed tick waits, never bursts) for as long as the process
/// lives; a failed pass is logged as `what` and tried again at the next tick.
fn spawn_every<F, Fut, T, E>(
    every: std::time::Duration,
    what: &'static str,
    mut pass: F,
) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, E>> + Send,
    E: std::fmt::Display,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = pass().await {
                tracing::warn!(error = %e, "{what} failed; retrying");
            }
        }
    })
}

/// Purges deleted tenants' items every `every` (`latchkey::domain::shred::purge`), as the
/// backup function's hourly `purge` task does on AWS.
pub fn spawn_purger(
    services: Arc<Services>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    spawn_every(every, "purge of deleted tenants", move || {
        let services = Arc::clone(&services);
        async move {
            let ctx = latchkey::domain::audit::AuditContext::system("purge", "local");
            latchkey::domain::shred::purge(&services, &ctx).await
        }
    })
}

/// The embedded store's audit sealer: every `every`, seals what the store's feed delivered and
/// signs the tails that are due (`latchkey::domain::audit::seal::drain`), as the sealer function
/// does on AWS from the table's stream. The feed keeps what a failed pass did not acknowledge.
pub fn spawn_sealer(
    feed: Arc<dyn latchkey::ports::Feed>,
    sealer: latchkey::domain::audit::seal::Sealer,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    let sealer = Arc::new(sealer);
    spawn_every(every, "audit sealing pass", move || {
        let (feed, sealer) = (Arc::clone(&feed), Arc::clone(&sealer));
        async move { latchkey::domain::audit::seal::drain(&*feed, &sealer).await }
    })
}

/// The embedded store's expiry: every `every`, deletes the items whose `ttl` has passed on
/// `clock` (`SqliteStore::sweep_expired`), as DynamoDB's TTL does on AWS.
pub fn spawn_sweeper(
    store: latchkey::adapters::sqlite::SqliteStore,
    clock: Arc<dyn latchkey::ports::Clock>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    spawn_every(every, "expiry sweep", move || {
        let (store, now) = (store.clone(), clock.now().unix_timestamp());
        async move { store.sweep_expired(now).await }
    })
}

/// Serves `app` on `listener` until `shutdown` resolves, over HTTP/1.1 with a header-read
/// timeout: a connection that takes longer than `header_timeout` to send a request's headers,
/// counted from when it opened or its previous answer was written, is closed. That one timer
/// is also the idle keep-alive limit (hyper starts it whenever the connection waits for a
/// request). The request timeout (body included) is the HTTP layer's
/// ([`latchkey::http::HttpSettings::request_timeout`]).
///
/// Written here rather than with `axum::serve`, which sets no timer and so keeps slow and idle
/// connections open for ever.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    header_timeout: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    use axum::extract::ConnectInfo;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service =
            app.clone()
                .map_request(move |mut req: http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(remote));
                    req
                });
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            hyper_util::service::TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that resets or times out ends its own connection; nothing to report.
            let _ = connection.await;
        });
    }
    // Answers in flight get a few seconds to finish; idle connections close at once.
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
    }
    Ok(())
}
