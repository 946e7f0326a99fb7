//! The README's run command, as a user runs it: start the binary on a fresh data folder, read
//! what it prints, call `GET /health` over TCP, restart it, and check what the first start left.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The operator's command, with a running gateway using what it made.
mod admin;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Running {
    child: Child,
    base: String,
    tenant_id: String,
    secret_line: String,
    /// The console's address.
    console: String,
    /// The one-time invite link for the development tenant's first owner, when printed.
    invite_link: Option<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data_dir: &Path, extra: &[(&str, &str)]) -> Running {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey-local"));
    for (k, _) in std::env::vars() {
        if k.starts_with("LATCHKEY_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("LATCHKEY_DATA_DIR", data_dir)
        .env("LATCHKEY_LISTEN", "127.0.0.1:0")
        .env("LATCHKEY_LOG", "warn")
        .envs(extra.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Drains the output for as long as the server runs, after the test stops listening
        // too: a closed pipe would make the server's next line fail to print.
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    // The banner ends with the console's address.
    let mut lines: Vec<String> = Vec::new();
    while !lines
        .last()
        .is_some_and(|l| l.trim().starts_with("console:"))
    {
        lines.push(
            rx.recv_timeout(Duration::from_secs(60))
                .expect("the banner within 60 s"),
        );
    }
    let field = |prefix: &str| {
        lines
            .iter()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {lines:?}"))
            .trim()
            .to_owned()
    };
    Running {
        base: field("Latchkey is listening on"),
        tenant_id: field("tenant id:"),
        secret_line: field("secret key:"),
        console: field("console:"),
        invite_link: lines
            .iter()
            .map(|l| l.trim())
            .find(|l| l.contains("/console#/accept/"))
            .map(str::to_owned),
        child,
    }
}

fn http_get(base: &str, path: &str) -> String {
    let addr = base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn run_command_serves_health_and_creates_the_dev_tenant_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = start(dir.path(), &[]);
    assert!(first.base.starts_with("http://127.0.0.1:"));
    let response = http_get(&first.base, "/health");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"status\":\"ok\""));
    assert!(
        response
            .to_ascii_lowercase()
            .contains("content-type: application/json\r\n")
    );
    assert!(first.tenant_id.starts_with("dev-"));
    assert!(
        first.secret_line.starts_with("lk_"),
        "{}",
        first.secret_line
    );
    assert!(first.secret_line.ends_with("(shown once)"));
    // The console, and its first owner's one-time invite link (a fragment: never sent to a
    // server, so never in an access log).
    let port = first.base.rsplit(':').next().unwrap().to_owned();
    assert_eq!(first.console, format!("http://localhost:{port}/console"));
    let link = first
        .invite_link
        .clone()
        .expect("an invite link on first start");
    assert!(
        link.starts_with(&format!("http://localhost:{port}/console#/accept/lki_")),
        "{link}"
    );
    let page = http_get(&first.base, "/console");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'")
    );
    drop(first);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for file in ["master.key", "secrets.json"] {
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    let second = start(dir.path(), &[]);
    assert!(
        !second.secret_line.starts_with("lk_"),
        "the secret is shown once only"
    );
    assert_eq!(second.invite_link, None, "the invite is made once only");
    assert!(http_get(&second.base, "/health").starts_with("HTTP/1.1 200"));
}

#[test]
fn fixed_dev_tenant_and_key_are_used_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "lk_00112233aabbccdd_scripted-secret-for-tests-0001";
    let env = [
        ("LATCHKEY_DEV_TENANT_ID", "scripted-tenant"),
        ("LATCHKEY_DEV_SECRET_KEY", secret),
    ];
    let first = start(dir.path(), &env);
    assert_eq!(first.tenant_id, "scripted-tenant");
    assert!(first.secret_line.starts_with(secret));
    drop(first);
    let again = start(dir.path(), &env);
    assert_eq!(again.tenant_id, "scripted-tenant");
    assert!(!again.secret_line.starts_with("lk_"));
}

#[test]
fn a_bad_setting_stops_the_start_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey-local"))
        .env("LATCHKEY_DATA_DIR", dir.path())
        .env("LATCHKEY_MAX_BODY_BYTES", "lots")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("LATCHKEY_MAX_BODY_BYTES"), "{err}");
}

/// Reads until the peer closes the connection; how long that took, and what came.
fn read_until_closed(stream: &mut TcpStream) -> (Duration, Vec<u8>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "still open after {:?} ({e}); read {:?}",
                started.elapsed(),
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (started.elapsed(), got)
}

#[test]
fn slow_and_idle_connections_are_closed_and_a_slow_body_is_answered_408() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(
        dir.path(),
        &[
            ("LATCHKEY_LISTEN_HEADER_TIMEOUT_SECS", "1"),
            ("LATCHKEY_LISTEN_REQUEST_TIMEOUT_SECS", "2"),
        ],
    );
    let addr = running.base.strip_prefix("http://").unwrap().to_owned();

    // Headers that never finish (slowloris): closed after the header timeout.
    let mut slow = TcpStream::connect(&addr).unwrap();
    write!(slow, "GET /health HTTP/1.1\r\nHost: {addr}\r\n").unwrap();
    let (waited, _) = read_until_closed(&mut slow);
    assert!(waited < Duration::from_secs(6), "closed after {waited:?}");

    // A keep-alive connection answered once and then left idle: closed too.
    let mut idle = TcpStream::connect(&addr).unwrap();
    write!(idle, "GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let (waited, got) = read_until_closed(&mut idle);
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(waited < Duration::from_secs(6), "closed after {waited:?}");

    // A body that stops arriving: 408 in the wire format once the request timeout passes.
    let mut stalled = TcpStream::connect(&addr).unwrap();
    write!(
        stalled,
        "POST /health HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"partial\":"
    )
    .unwrap();
    let (waited, got) = read_until_closed(&mut stalled);
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("\"error\":\"request_timeout\""), "{got}");
    assert!(got.to_ascii_lowercase().contains("x-request-id:"), "{got}");
    assert!(waited < Duration::from_secs(8), "answered after {waited:?}");

    // The server still serves.
    assert!(http_get(&running.base, "/health").starts_with("HTTP/1.1 200"));
}
