//! The operator's command against the embedded store, with a running gateway using what it
//! made: create a tenant and a key, call the API with it, revoke it, and be refused.
use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `latchkey-admin` in this process, as `main` does, on the data folder `data`.
fn admin(data: &Path, args: &[&str]) -> (bool, String, String) {
    let vars = BTreeMap::from([
        ("LATCHKEY_DATA_DIR".to_owned(), data.display().to_string()),
        ("USER".to_owned(), "test-operator".to_owned()),
    ]);
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let outcome = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(latchkey_admin::main_with(&args, &vars));
    match outcome {
        Ok(out) => (true, out, String::new()),
        Err(err) => (false, String::new(), err),
    }
}

fn get(addr: &str, path: &str, secret: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{secret}:"));
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {b64}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn operator_creates_and_revokes_keys_that_the_api_honours() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (ok, out, err) = admin(
        data,
        &[
            "tenant",
            "create",
            "--id",
            "acme",
            "--name",
            "Acme",
            "--rp-id",
            "acme.example",
            "--origin",
            "https://acme.example",
        ],
    );
    assert!(ok, "{out}{err}");
    let (ok, _, err) = admin(
        data,
        &[
            "tenant",
            "create",
            "--id",
            "acme",
            "--name",
            "Acme",
            "--rp-id",
            "acme.example",
            "--origin",
            "https://acme.example",
        ],
    );
    assert!(!ok && err.contains("exists"), "{err}");
    let (ok, out, err) = admin(
        data,
        &[
            "tenant",
            "add-contact",
            "--id",
            "acme",
            "--first-name",
            "Ada",
            "--last-name",
            "Admin",
            "--email",
            "ada.admin@acme.example",
            "--company",
            "Acme",
        ],
    );
    assert!(ok, "{out}{err}");
    let (ok, out, _) = admin(data, &["tenant", "show", "--id", "acme"]);
    assert!(
        ok && out.contains("ada.admin@acme.example") && out.contains("\"rpId\": \"acme.example\""),
        "{out}"
    );
    let rules = data.join("rules.json");
    std::fs::write(
        &rules,
        r#"{"withdraw": {"defaultOutcome": "BLOCK", "rules": []}}"#,
    )
    .unwrap();
    let (ok, out, err) = admin(
        data,
        &[
            "tenant",
            "update",
            "--id",
            "acme",
            "--name",
            "Acme Ltd",
            "--actions",
            rules.to_str().unwrap(),
        ],
    );
    assert!(ok && out.contains("settings version 2"), "{out}{err}");
    let (ok, _, err) = admin(
        data,
        &["tenant", "update", "--id", "acme", "--origin", "null"],
    );
    assert!(!ok && err.contains("origin"), "{err}");
    let (ok, out, _) = admin(data, &["tenant", "show", "--id", "acme"]);
    assert!(
        ok && out.contains("\"name\": \"Acme Ltd\"") && out.contains("BLOCK"),
        "{out}"
    );
    let (ok, out, err) = admin(data, &["key", "create", "--tenant", "acme"]);
    assert!(ok, "{err}");
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("secret key: "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let key_id = out
        .lines()
        .find_map(|l| l.strip_prefix("key id:"))
        .unwrap()
        .trim()
        .to_owned();
    let (ok, out, err) = admin(data, &["key", "list", "--tenant", "acme"]);
    assert!(
        ok && out.contains(&key_id) && out.contains("\"state\": \"active\""),
        "{out}{err}"
    );
    assert!(!out.contains(&secret), "the list never shows a secret");
    let (ok, _, err) = admin(
        data,
        &["user", "export", "--tenant", "acme", "--user", "nobody"],
    );
    assert!(!ok && err.contains("not found"), "{err}");
    let (ok, _, err) = admin(data, &["key", "create", "--tenant", "nobody"]);
    assert!(!ok && err.contains("not found"), "{err}");
    let (ok, _, err) = admin(data, &["frobnicate"]);
    assert!(!ok && err.contains("Usage"), "{err}");

    let mut server = Command::new(env!("CARGO_BIN_EXE_latchkey-local"))
        .env("LATCHKEY_DATA_DIR", data)
        .env("LATCHKEY_LISTEN", "127.0.0.1:0")
        .env("LATCHKEY_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first.rsplit("http://").next().unwrap().trim().to_owned();
    std::thread::sleep(Duration::from_millis(50));
    let before = get(&addr, "/v1/users/someone", &secret);
    let (ok, _, err) = admin(data, &["key", "revoke", "--key-id", &key_id]);
    let after = get(&addr, "/v1/users/someone", &secret);
    let _ = server.kill();
    let _ = server.wait();
    assert!(before.starts_with("HTTP/1.1 200"), "{before}");
    assert!(ok, "{err}");
    assert!(after.starts_with("HTTP/1.1 401"), "{after}");

    let (ok, out, err) = admin(data, &["audit", "verify", "--tenant", "acme"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("\"events\": 5"),
        "tenant, contact, settings, key, revoke: {out}"
    );
    let (ok, out, err) = admin(
        data,
        &[
            "audit", "list", "--tenant", "acme", "--action", "api_key.", "--limit", "1",
        ],
    );
    assert!(ok, "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["events"][0]["action"], "api_key.revoke", "{out}");
    assert!(listed["cursor"].is_string(), "{out}");

    let mut store = std::fs::read(data.join("latchkey.db")).unwrap();
    store.extend(std::fs::read(data.join("latchkey.db-wal")).unwrap_or_default());
    let text = String::from_utf8_lossy(&store);
    assert!(
        !text.contains("ada.admin") && !text.contains(&secret),
        "contact or secret in the store"
    );
}

/// An operator on a laptop makes a backup of the embedded store and drills it.
#[test]
fn operator_runs_a_backup_and_a_restore_drill_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (ok, _, err) = admin(data, &["backup", "drill"]);
    assert!(
        !ok && err.contains("no_copy"),
        "nothing to drill yet: {err}"
    );
    let (ok, out, err) = admin(
        data,
        &[
            "tenant",
            "create",
            "--id",
            "acme",
            "--name",
            "Acme",
            "--rp-id",
            "acme.example",
            "--origin",
            "https://acme.example",
        ],
    );
    assert!(ok, "{out}{err}");
    let (ok, out, err) = admin(data, &["backup", "run"]);
    assert!(ok, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let copy = std::path::PathBuf::from(report["backupId"].as_str().unwrap());
    assert_eq!(copy.parent().unwrap(), data.join("backups"));
    assert!(copy.is_file());
    assert_eq!(report["pitrBefore"], "not_applicable");
    let (ok, out, err) = admin(data, &["backup", "drill"]);
    assert!(ok, "{out}{err}");
    let drill: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(drill["backupName"], report["backupName"]);
    assert!(drill["restoredItems"].as_u64().unwrap() > 0);
    assert_eq!(drill["scratchDropped"], true);
    let (ok, _, err) = admin(data, &["backup", "sideways"]);
    assert!(!ok && err.contains("unrecognized subcommand"), "{err}");
}

/// `secrets rekey` on the embedded store after a rotation of the local secrets file: the
/// previous root joins the keyring, and a second run has nothing to add.
#[test]
fn secrets_rekey_keeps_the_previous_generation_after_a_rotation_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (ok, out, err) = admin(
        data,
        &[
            "tenant",
            "create",
            "--id",
            "acme",
            "--name",
            "Acme",
            "--rp-id",
            "acme.example",
            "--origin",
            "https://acme.example",
        ],
    );
    assert!(ok, "{out}{err}");
    let (ok, out, err) = admin(data, &["secrets", "rekey"]);
    assert!(
        ok && out.contains("added to the keyring:    none"),
        "{out}{err}"
    );

    // Rotate as an operator would edit the 0600 file: the current value becomes previous.
    let file = data.join("secrets.json");
    let mut secrets: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let old = secrets["root"]["current"].clone();
    secrets["root"]["previous"] = old;
    secrets["root"]["current"] = serde_json::json!("bmV3IHJvb3QgZ2VuZXJhdGlvbg==");
    std::fs::write(&file, secrets.to_string()).unwrap();
    let (ok, out, err) = admin(data, &["secrets", "rekey"]);
    assert!(ok, "{err}");
    assert!(!out.contains("added to the keyring:    none"), "{out}");
    assert!(out.contains("older generations kept:  1"), "{out}");
    let (ok, out, err) = admin(data, &["secrets", "rekey"]);
    assert!(
        ok && out.contains("added to the keyring:    none"),
        "{out}{err}"
    );
}
