//! `latchkey-admin`: tenants and secret keys, from the operator's shell (see `admin.rs`).
use latchkey::{Config, Services};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = async {
        let args = latchkey_local::admin::parse(&args)?;
        let config = Config::from_env().map_err(|e| e.to_string())?;
        let services = Services::from_config(&config)
            .await
            .map_err(|e| e.to_string())?;
        latchkey_local::admin::run(&services, &args).await
    }
    .await;
    match outcome {
        Ok(out) => {
            println!("{out}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
