//! `latchkey-admin`: arguments and environment in, one command run, its output out. No logic
//! here (see `lib.rs`).
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let vars = std::env::vars().collect();
    match latchkey_admin::main_with(&args, &vars).await {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
