//! `latchkey-load`: Server API throughput and latency against latchkey-local on loopback.
//! See `latchkey-load --help`; the logic lives in the library.
use latchkey_load::{MAX_ERROR_PERCENT, parse_args, run};
use std::io::Write;
use std::process::ExitCode;

/// Writes without panicking when the reader has gone away (`| head`).
fn write(mut to: impl Write, text: &str) {
    let _ = to.write_all(text.as_bytes()).and_then(|()| to.flush());
}

#[tokio::main]
async fn main() -> ExitCode {
    let (stdout, stderr) = (std::io::stdout, std::io::stderr);
    let opts = match parse_args(std::env::args_os(), |name| std::env::var(name).ok()) {
        Ok(opts) => opts,
        // Help and version go to stdout with 0; bad arguments to stderr with 2.
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    write(
        stderr(),
        &format!(
            "latchkey-load: {} (concurrency {}, {} requests + {} warmup per scenario)\n",
            opts.base_url, opts.concurrency, opts.requests, opts.warmup
        ),
    );
    let report = match run(&opts).await {
        Ok(report) => report,
        Err(e) => {
            write(stderr(), &format!("latchkey-load: {e}\n"));
            return ExitCode::from(2);
        }
    };
    write(stdout(), &format!("\n{}", report.summary()));
    write(stderr(), &report.problems());
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        write(
            stderr(),
            &format!(
                "latchkey-load: FAILED (more than {MAX_ERROR_PERCENT}% of a scenario's requests \
                 failed, or a scenario could not run)\n"
            ),
        );
        ExitCode::FAILURE
    }
}
