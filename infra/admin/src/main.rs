//! `latchkey-admin`: arguments and environment in, one command run, its output out. No logic
//! here (see `lib.rs`).
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Pairs that are not UTF-8 are left out (`std::env::vars` would panic on them); a
    // `LATCHKEY_*` name among them is refused, as the server refuses it.
    let mut vars = std::collections::BTreeMap::new();
    for (k, v) in std::env::vars_os() {
        match (k.to_str(), v.to_str()) {
            (Some(k), Some(v)) => {
                vars.insert(k.to_owned(), v.to_owned());
            }
            _ if k.to_string_lossy().starts_with("LATCHKEY_") => {
                eprintln!("configuration: {}: is not valid UTF-8", k.to_string_lossy());
                return ExitCode::FAILURE;
            }
            _ => {}
        }
    }
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
