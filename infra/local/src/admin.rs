//! `latchkey-admin`: the operator's command for tenants and secret keys, on whatever adapters
//! the environment names (embedded by default; DynamoDB, KMS and Secrets Manager when
//! `LATCHKEY_TABLE`, `LATCHKEY_KMS_KEY_ID` and `LATCHKEY_SECRET_ID` are set).
//!
//! ```text
//! latchkey-admin tenant create --id ID --name NAME --rp-id DOMAIN --origin https://... [--origin ...]
//!                              [--actions FILE.json] [--methods PASSKEY,EMAIL_OTP]
//! latchkey-admin tenant show --id ID
//! latchkey-admin tenant add-contact --id ID --first-name F --last-name L --email E --company C
//! latchkey-admin key create --tenant ID
//! latchkey-admin key revoke --key-id KEY_ID
//! latchkey-admin audit verify --tenant ID
//! latchkey-admin backup run
//! latchkey-admin backup drill
//! latchkey-admin operator create --name NAME
//! latchkey-admin operator revoke --id OPERATOR_ID
//! ```
//!
//! `backup run` and `backup drill` do what the backup function does on its schedules, on the
//! configured store: on the embedded one, copies go to `<data dir>/backups/`.
use latchkey::domain::Error;
use latchkey::domain::audit::AuditContext;
use latchkey::domain::backups::{BackupPolicy, run_backup, run_drill};
use latchkey::domain::rules::ActionConfig;
use latchkey::domain::status::operators::{create_operator, revoke_operator};
use latchkey::domain::tenants::{
    AdminContact, TenantSettings, add_admin_contact, admin_contacts, create_api_key, create_tenant,
    get_tenant, revoke_api_key,
};
use latchkey::ports::random::RandomExt as _;
use latchkey::{Config, Services};
use std::collections::BTreeMap;

#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    pub words: Vec<String>,
    pub flags: BTreeMap<String, Vec<String>>,
}

/// `a b --k v --k w --x=y` → words [a, b], flags {k: [v, w], x: [y]}.
pub fn parse(args: &[String]) -> Result<Args, String> {
    let mut words = Vec::new();
    let mut flags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(flag) = a.strip_prefix("--") {
            let (name, value) = match flag.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None => (
                    flag.to_owned(),
                    it.next().ok_or(format!("--{flag} needs a value"))?.clone(),
                ),
            };
            flags.entry(name).or_default().push(value);
        } else {
            words.push(a.clone());
        }
    }
    Ok(Args { words, flags })
}

impl Args {
    fn one(&self, name: &str) -> Result<&str, String> {
        match self.flags.get(name).map(Vec::as_slice) {
            Some([v]) => Ok(v),
            Some(_) => Err(format!("--{name} given more than once")),
            None => Err(format!("--{name} is required")),
        }
    }

    fn many(&self, name: &str) -> Vec<String> {
        self.flags.get(name).cloned().unwrap_or_default()
    }
}

pub const USAGE: &str = "usage:
  latchkey-admin tenant create --id ID --name NAME --rp-id DOMAIN --origin URL [--origin URL]
                               [--actions FILE.json] [--methods PASSKEY,AUTHENTICATOR_APP,EMAIL_OTP]
  latchkey-admin tenant show --id ID
  latchkey-admin tenant add-contact --id ID --first-name F --last-name L --email E --company C
  latchkey-admin key create --tenant ID
  latchkey-admin key revoke --key-id KEY_ID
  latchkey-admin audit verify --tenant ID
  latchkey-admin backup run
  latchkey-admin backup drill
  latchkey-admin operator create --name NAME
  latchkey-admin operator revoke --id OPERATOR_ID";

/// Runs one command and returns what to print.
pub async fn run(services: &Services, args: &Args) -> Result<String, String> {
    let ctx = AuditContext {
        actor: format!(
            "operator:{}",
            std::env::var("USER").unwrap_or_else(|_| "admin".into())
        ),
        request_id: services.random.hex_id(16),
        source_ip: None,
    };
    let words: Vec<&str> = args.words.iter().map(String::as_str).collect();
    let err = |e: Error| e.to_string();
    match words.as_slice() {
        ["tenant", "create"] => {
            let origins = args.many("origin");
            if origins.is_empty() {
                return Err("--origin is required (at least one)".into());
            }
            let actions: BTreeMap<String, ActionConfig> = match args.flags.get("actions") {
                Some(files) => {
                    let file = files.first().ok_or("--actions needs a file")?;
                    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
                    serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))?
                }
                None => BTreeMap::new(),
            };
            let methods = args
                .many("methods")
                .iter()
                .flat_map(|m| m.split(','))
                .map(|m| m.trim().to_owned())
                .filter(|m| !m.is_empty())
                .collect();
            let settings = TenantSettings {
                name: args.one("name")?.to_owned(),
                rp_id: args.one("rp-id")?.to_owned(),
                allowed_origins: origins,
                actions,
                allowed_methods: methods,
            };
            let id = args.one("id")?;
            create_tenant(services, &ctx, id, settings, vec![])
                .await
                .map_err(err)?;
            Ok(format!("created tenant {id}"))
        }
        ["tenant", "show"] => {
            let id = args.one("id")?;
            let tenant = get_tenant(services, id)
                .await
                .map_err(err)?
                .ok_or("no such tenant")?;
            let contacts = admin_contacts(services, &tenant).await.map_err(err)?;
            let s = &tenant.settings;
            Ok(serde_json::to_string_pretty(&serde_json::json!({
                "id": tenant.id,
                "name": s.name,
                "rpId": s.rp_id,
                "allowedOrigins": s.allowed_origins,
                "allowedMethods": s.methods(),
                "actions": s.actions,
                "contacts": contacts,
            }))
            .unwrap_or_default())
        }
        ["tenant", "add-contact"] => {
            let contact = AdminContact {
                first_name: args.one("first-name")?.to_owned(),
                last_name: args.one("last-name")?.to_owned(),
                email: args.one("email")?.to_owned(),
                company: args.one("company")?.to_owned(),
            };
            add_admin_contact(services, &ctx, args.one("id")?, contact)
                .await
                .map_err(err)?;
            Ok("contact added".into())
        }
        ["key", "create"] => {
            let tenant = args.one("tenant")?;
            let (key_id, secret) = create_api_key(services, &ctx, tenant, None)
                .await
                .map_err(err)?;
            Ok(format!(
                "key id:     {key_id}\nsecret key: {secret}  (shown once)"
            ))
        }
        ["key", "revoke"] => {
            let key_id = args.one("key-id")?;
            revoke_api_key(services, &ctx, key_id).await.map_err(err)?;
            Ok(format!("revoked key {key_id}"))
        }
        ["audit", "verify"] => {
            let tenant = args.one("tenant")?;
            let report = services
                .journal
                .verify(tenant)
                .await
                .map_err(|e| e.to_string())?;
            let text = serde_json::to_string_pretty(&report).unwrap_or_default();
            match report.broken {
                None => Ok(text),
                Some(_) => Err(text),
            }
        }
        ["backup", task @ ("run" | "drill")] => {
            let config = Config::from_env().map_err(|e| e.to_string())?;
            let target = latchkey::runtime::backup_target(&config)
                .await
                .map_err(|e| e.to_string())?;
            let policy = BackupPolicy::from(&config.backup);
            let (text, ok) = if *task == "run" {
                let report = run_backup(services, target.as_ref(), &policy).await;
                (serde_json::to_string_pretty(&report), report.succeeded())
            } else {
                let report = run_drill(services, target.as_ref(), &policy).await;
                (
                    serde_json::to_string_pretty(&report),
                    report.passed() && report.kind().is_none(),
                )
            };
            let text = text.unwrap_or_default();
            if ok { Ok(text) } else { Err(text) }
        }
        ["operator", "create"] => {
            let (id, token) = create_operator(services, &ctx, args.one("name")?)
                .await
                .map_err(err)?;
            Ok(format!(
                "operator id: {id}\ntoken:       {token}  (shown once; send as Authorization: Bearer)"
            ))
        }
        ["operator", "revoke"] => {
            let id = args.one("id")?;
            revoke_operator(services, &ctx, id).await.map_err(err)?;
            Ok(format!("revoked operator {id}"))
        }
        _ => Err(USAGE.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_words_and_repeated_flags() {
        let a = parse(&s(&[
            "tenant",
            "create",
            "--origin",
            "https://a",
            "--origin=https://b",
            "--id",
            "x",
        ]))
        .unwrap();
        assert_eq!(a.words, s(&["tenant", "create"]));
        assert_eq!(a.many("origin"), s(&["https://a", "https://b"]));
        assert_eq!(a.one("id").unwrap(), "x");
        assert!(a.one("origin").is_err());
        assert!(a.one("name").is_err());
        assert!(parse(&s(&["--id"])).is_err());
    }
}
