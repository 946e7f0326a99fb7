//! `cargo run -p latchkey-local`: the whole API on 127.0.0.1:8787 (or `LATCHKEY_LISTEN`).
use latchkey::{Config, wiring};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env()?;
    latchkey::logging::init(&config.log_filter);
    let built = wiring::build(&config).await?;
    let services = built.services;
    if let Some(store) = built.embedded {
        latchkey_local::spawn_sweeper(
            store,
            services.clock.clone(),
            std::time::Duration::from_secs(60),
        );
    }
    let signer = wiring::signer(&config, &services).await?;
    if let Some(feed) = built.feed {
        let sealer = latchkey::domain::audit::seal::Sealer::new(
            services.store.clone(),
            services.clock.clone(),
            services.random.clone(),
            signer.clone(),
            latchkey::domain::audit::seal::SealPolicy::default(),
        );
        latchkey_local::spawn_sealer(feed, sealer, std::time::Duration::from_secs(1));
    }
    latchkey_local::spawn_purger(services.clone(), std::time::Duration::from_secs(60));
    let dev = latchkey_local::bootstrap(&services, &config).await?;
    let invite = latchkey_local::bootstrap_console(&services, &dev).await?;
    let listener = tokio::net::TcpListener::bind(config.local.listen).await?;
    // What this development server serves on, printed for the person running it.
    let base = format!("http://{}", listener.local_addr()?); // plain-http: our own listener, not outbound
    println!("Latchkey is listening on {base}");
    println!("  base URL:   {base}/v1");
    println!("  tenant id:  {}", dev.tenant_id);
    match &dev.new_secret_key {
        Some(key) => println!("  secret key: {key}  (shown once)"),
        None => {
            println!("  secret key: (made on first start; set LATCHKEY_DEV_SECRET_KEY to fix one)")
        }
    }
    println!(
        "  demo page:  http://localhost:{}/demo",
        listener.local_addr()?.port()
    );
    let port = listener.local_addr()?.port();
    if let Some(invite) = &invite {
        // The invite rides in the fragment, which the browser never sends to a server (no
        // access log, no Referer holds it).
        println!(
            "  console owner invite (one-time, 72 h; open it to register your passkey):\n    http://localhost:{port}/console#/accept/{invite}"
        );
    }
    // Last line of the banner (the run test reads up to it).
    println!("  console:    http://localhost:{port}/console");
    let mut settings = wiring::http_settings(&config);
    settings.request_timeout = Some(config.local.request_timeout);
    if config.public_url.is_none() {
        // The port actually bound (LATCHKEY_LISTEN may name port 0).
        settings.public_base = latchkey::http::PublicBase::local(listener.local_addr()?.port());
    }
    let app = latchkey_local::gateway_with_demo(
        services,
        signer,
        settings,
        config.security_txt.clone(),
        dev.tenant_id.clone(),
    );
    latchkey_local::serve(listener, app, config.local.header_timeout, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
