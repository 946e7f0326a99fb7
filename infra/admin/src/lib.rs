//! `latchkey-admin`: the operator's command for tenants, secret keys, the audit log, backups and
//! status-page operators, on whatever adapters the environment names (embedded by default;
//! DynamoDB, KMS and Secrets Manager when `LATCHKEY_TABLE`, `LATCHKEY_KMS_KEY_ID` and
//! `LATCHKEY_SECRET_ID` are set). It reads the server's own configuration because it works on
//! the server's store; `latchkey-admin --help` lists the commands.
//!
//! `backup run` and `backup drill` do what the backup function does on its schedules, on the
//! configured store: on the embedded one, copies go to `<data dir>/backups/`.
use clap::{Parser, Subcommand};
use latchkey::crypto::signatures;
use latchkey::domain::Error;
use latchkey::domain::audit::AuditContext;
use latchkey::domain::audit::{seal, verify};
use latchkey::domain::backups::{run_backup, run_drill};
use latchkey::domain::rekey::rekey;
use latchkey::domain::rules::ActionConfig;
use latchkey::domain::status::operators::{create_operator, revoke_operator};
use latchkey::domain::tenants::{
    AdminContact, SettingsChange, TenantSettings, add_admin_contact, admin_contacts,
    create_api_key, create_tenant, get_tenant, list_api_keys, revoke_api_key, rotate_api_key,
    update_settings,
};
use latchkey::ports::random::RandomExt as _;
use latchkey::{Config, Services, wiring};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "latchkey-admin",
    version,
    about = "Operate a Latchkey deployment"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tenants and their administrative contacts.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// A tenant's secret API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// A tenant's audit chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Backups and restore drills of the configured store.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Status-page operators.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// The root secret's generations (run `secrets rekey` after every rotation).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// A tenant's end users.
    #[command(subcommand)]
    User(UserCommand),
    /// The management console's own tenant (its admins' and operators' passkeys).
    #[command(subcommand)]
    Console(ConsoleCommand),
    /// One-time invites to the management plane: a tenant's first owner, or an operator.
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Management keys: `/v1/admin` for a tenant's automation (Bearer lkm_…).
    #[command(subcommand)]
    ManagementKey(ManagementKeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum ManagementKeyCommand {
    /// Mints a management key for one tenant and prints it (shown once).
    Create {
        #[arg(long)]
        tenant: String,
        /// admin or viewer.
        #[arg(long, default_value = "viewer")]
        role: String,
        #[arg(long)]
        name: String,
        /// Days until it expires (1-365).
        #[arg(long, default_value_t = 90)]
        days: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConsoleCommand {
    /// Creates the console tenant (passkeys only; RP id the first origin's host), or sets the
    /// origins of the one there is.
    Init {
        /// The console tenant's id (on first run).
        #[arg(long, default_value = "latchkey-console")]
        tenant_id: String,
        /// Origins the console is served from, e.g. `https://admin.example.com` (repeatable).
        #[arg(long = "origin", required = true)]
        origins: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// Prints a one-time invite (single use, expiring) for a tenant member or an operator.
    Create {
        /// The tenant the invite is to (omit with --operator).
        #[arg(long, required_unless_present = "operator")]
        tenant: Option<String>,
        /// owner, admin or viewer.
        #[arg(long, default_value = "owner")]
        role: String,
        /// An operator of the platform instead of a tenant member.
        #[arg(long, conflicts_with = "tenant")]
        operator: bool,
        /// Hours until it expires (1-72).
        #[arg(long, default_value_t = 24)]
        hours: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Prints everything kept about one user as JSON (an access request), audited.
    Export {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Keeps the previous root generation in the keyring, re-seals it under the current root,
    /// moves the users' lookup indexes under the current key, and counts what only its next use re-keys.
    Rekey,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Creates a tenant.
    Create {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// The WebAuthn relying-party id (a registrable domain, or `localhost`).
        #[arg(long = "rp-id")]
        rp_id: String,
        /// An origin allowed to run ceremonies; repeat for several.
        #[arg(long = "origin", required = true)]
        origins: Vec<String>,
        /// A JSON file of action configurations, by action code.
        #[arg(long)]
        actions: Option<PathBuf>,
        /// Allowed verification methods, comma-separated (PASSKEY,AUTHENTICATOR_APP,EMAIL_OTP).
        #[arg(long, value_delimiter = ',')]
        methods: Vec<String>,
    },
    /// Changes a tenant's settings as one new version (audited, kept in the settings history):
    /// only what is given changes.
    Update {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "rp-id")]
        rp_id: Option<String>,
        /// The allowed origins, replacing the current ones; repeat for several.
        #[arg(long = "origin")]
        origins: Vec<String>,
        /// A JSON file of action configurations by action code; `null` deletes a code's.
        #[arg(long)]
        actions: Option<PathBuf>,
        /// Allowed verification methods, comma-separated, replacing the current ones.
        #[arg(long, value_delimiter = ',')]
        methods: Vec<String>,
    },
    /// Prints a tenant's settings and contacts.
    Show {
        #[arg(long)]
        id: String,
    },
    /// Adds an administrative contact (told of incidents that affect the tenant).
    AddContact {
        #[arg(long)]
        id: String,
        #[arg(long = "first-name")]
        first_name: String,
        #[arg(long = "last-name")]
        last_name: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        company: String,
    },
    /// Deletes the items of deleted tenants (an operator's run of the hourly purge job).
    Purge,
    /// Deletes a tenant by crypto-shredding: its own key is destroyed first, the record
    /// becomes a tombstone, and the purge job deletes its items.
    Delete {
        #[arg(long)]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Creates a secret key (shown once).
    Create {
        #[arg(long)]
        tenant: String,
    },
    /// Revokes a secret key.
    Revoke {
        #[arg(long = "key-id")]
        key_id: String,
    },
    /// Lists a tenant's secret keys (never a secret).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Replaces a secret key with a new one (shown once); the old one keeps working for the
    /// overlap, then stops.
    Rotate {
        #[arg(long = "key-id")]
        key_id: String,
        /// Hours the old key keeps working (0 to 168).
        #[arg(long = "overlap-hours", default_value_t = 24)]
        overlap_hours: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verifies a tenant's audit log (events, sealed chain, signed checkpoints); fails and names
    /// the first break when it does not hold.
    Verify {
        #[arg(long)]
        tenant: String,
    },
    /// Seals what is waiting: on the embedded store, the feed's new events (as latchkey-local
    /// does in the background); then signs every due tail, or this tenant's tail now.
    Seal {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Prints a tenant's audit log as NDJSON (events, sealed entries, checkpoints, the seal head), for
    /// `infra/audit/verify_export.py`.
    Export {
        #[arg(long)]
        tenant: String,
    },
    /// Prints the public key that checkpoints verify under (PEM).
    PublicKey,
    /// Lists a tenant's audit events, newest first, filtered, a page at a time (JSON: `events`,
    /// and `cursor` when more may follow).
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        actor: Option<String>,
        /// An action, or a prefix ending in `.` (`user.`).
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        target: Option<String>,
        /// RFC 3339: events at or after.
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339: events before.
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        cursor: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Makes a backup and applies retention.
    Run,
    /// Restores the newest backup into a scratch copy and compares it.
    Drill,
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Creates a status-page operator token for automation and prints it (shown once).
    /// People sign in with a passkey instead (`invite create --operator`).
    Create {
        #[arg(long)]
        name: String,
        /// Days until the token expires (1-365).
        #[arg(long, default_value_t = 90)]
        days: i64,
    },
    /// Revokes a status-page operator.
    Revoke {
        #[arg(long)]
        id: String,
    },
}

/// The whole tool: parses `args` (without the program name), reads the configuration from
/// `vars` (the process environment in `main`), runs the command, and returns what to print on
/// success (stdout) or failure (stderr). Help and version are a success.
pub async fn main_with(args: &[String], vars: &BTreeMap<String, String>) -> Result<String, String> {
    let cli = match Cli::try_parse_from(
        std::iter::once("latchkey-admin".to_owned()).chain(args.iter().cloned()),
    ) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => return Ok(e.to_string()),
        Err(e) => return Err(e.to_string()),
    };
    // The server's settings only: `Config` refuses any other `LATCHKEY_*` name, as the server does.
    let settings: BTreeMap<String, String> = vars
        .iter()
        .filter(|(k, _)| k.starts_with("LATCHKEY_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let config = Config::from_vars(&settings).map_err(|e| e.to_string())?;
    let built = wiring::build(&config).await.map_err(|e| e.to_string())?;
    let operator = vars.get("USER").map_or("admin", String::as_str);
    match cli.command {
        Command::Audit(audit) => audit_command(&built, &config, audit).await,
        command => run(&built.services, &config, operator, command).await,
    }
}

/// The audit commands: they need the sealer's key and, on the embedded store, its feed.
pub async fn audit_command(
    built: &wiring::Built,
    config: &Config,
    command: AuditCommand,
) -> Result<String, String> {
    let services = &built.services;
    let sealer = wiring::sealer(config, services)
        .await
        .map_err(|e| e.to_string())?;
    let public_key = || async {
        sealer
            .signer()
            .public_key()
            .await
            .map_err(|e| e.to_string())
    };
    match command {
        AuditCommand::Verify { tenant } => {
            let evidence = verify::collect(&*services.store, &tenant)
                .await
                .map_err(|e| e.to_string())?;
            let report = verify::check(&evidence, &public_key().await?, services.clock.now());
            let text = pretty(&report)?;
            match report.broken {
                None => Ok(text),
                Some(_) => Err(text),
            }
        }
        AuditCommand::Seal { tenant } => {
            let mut done = match &built.feed {
                Some(feed) => seal::drain(&**feed, &sealer).await,
                None => sealer.flush_due().await,
            }
            .map_err(|e| e.to_string())?;
            if let Some(tenant) = tenant {
                done.checkpoints += sealer
                    .flush(&tenant, true)
                    .await
                    .map_err(|e| e.to_string())?
                    .checkpoints;
            }
            pretty(&done)
        }
        AuditCommand::Export { tenant } => {
            let evidence = verify::collect(&*services.store, &tenant)
                .await
                .map_err(|e| e.to_string())?;
            let lines =
                verify::export_lines(&evidence, sealer.signer().key_id(), services.clock.now());
            Ok(lines.join("\n"))
        }
        AuditCommand::List {
            tenant,
            actor,
            action,
            target,
            since,
            until,
            limit,
            cursor,
        } => {
            let instant = |name: &str, v: Option<String>| -> Result<_, String> {
                v.map(|v| {
                    time::OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339)
                        .map_err(|_| format!("--{name} must be an RFC 3339 time"))
                })
                .transpose()
            };
            let filter = latchkey::domain::audit::list::EventFilter {
                actor,
                action,
                target,
                since: instant("since", since)?,
                until: instant("until", until)?,
            };
            let (events, cursor) = latchkey::domain::audit::list::list(
                &*services.store,
                &tenant,
                &filter,
                limit,
                cursor,
            )
            .await
            .map_err(|e| e.to_string())?;
            pretty(&serde_json::json!({ "events": events, "cursor": cursor }))
        }
        AuditCommand::PublicKey => signatures::public_key_pem(&public_key().await?)
            .map(|pem| pem.trim_end().to_owned())
            .ok_or_else(|| "the signing key's public key is not P-256".to_owned()),
    }
}

/// Runs one command as `operator` and returns what to print.
pub async fn run(
    services: &Services,
    config: &Config,
    operator: &str,
    command: Command,
) -> Result<String, String> {
    let ctx = AuditContext {
        actor: format!("operator:{operator}"),
        request_id: services.random.hex_id(16),
        source_ip: None,
    };
    let err = |e: Error| e.to_string();
    match command {
        Command::Tenant(TenantCommand::Create {
            id,
            name,
            rp_id,
            origins,
            actions,
            methods,
        }) => {
            let actions: BTreeMap<String, ActionConfig> = match actions {
                Some(file) => json_file(&file)?,
                None => BTreeMap::new(),
            };
            let settings = TenantSettings {
                name,
                rp_id,
                allowed_origins: origins,
                actions,
                allowed_methods: methods
                    .iter()
                    .map(|m| m.trim().to_owned())
                    .filter(|m| !m.is_empty())
                    .collect(),
            };
            create_tenant(services, &ctx, &id, settings, vec![])
                .await
                .map_err(err)?;
            Ok(format!("created tenant {id}"))
        }
        Command::Tenant(TenantCommand::Update {
            id,
            name,
            rp_id,
            origins,
            actions,
            methods,
        }) => {
            let actions: BTreeMap<String, Option<ActionConfig>> = match actions {
                Some(file) => json_file(&file)?,
                None => BTreeMap::new(),
            };
            let methods: Vec<String> = methods
                .iter()
                .map(|m| m.trim().to_owned())
                .filter(|m| !m.is_empty())
                .collect();
            let change = SettingsChange {
                name,
                rp_id,
                allowed_origins: (!origins.is_empty()).then_some(origins),
                allowed_methods: (!methods.is_empty()).then_some(methods),
                actions,
            };
            let version = update_settings(services, &ctx, &id, change)
                .await
                .map_err(err)?;
            Ok(format!("tenant {id}: settings version {version}"))
        }
        Command::Tenant(TenantCommand::Show { id }) => {
            let tenant = get_tenant(services, &id)
                .await
                .map_err(err)?
                .ok_or("no such tenant")?;
            let contacts = admin_contacts(services, &tenant).await.map_err(err)?;
            let s = &tenant.settings;
            pretty(&serde_json::json!({
                "id": tenant.id,
                "name": s.name,
                "rpId": s.rp_id,
                "allowedOrigins": s.allowed_origins,
                "allowedMethods": s.methods(),
                "actions": s.actions,
                "contacts": contacts,
            }))
        }
        Command::Tenant(TenantCommand::AddContact {
            id,
            first_name,
            last_name,
            email,
            company,
        }) => {
            let contact = AdminContact {
                first_name,
                last_name,
                email,
                company,
            };
            add_admin_contact(services, &ctx, &id, contact)
                .await
                .map_err(err)?;
            Ok("contact added".into())
        }
        Command::Key(KeyCommand::Create { tenant }) => {
            let (key_id, secret) = create_api_key(services, &ctx, &tenant, None)
                .await
                .map_err(err)?;
            Ok(format!(
                "key id:     {key_id}\nsecret key: {secret}  (shown once)"
            ))
        }
        Command::Key(KeyCommand::Revoke { key_id }) => {
            revoke_api_key(services, &ctx, &key_id).await.map_err(err)?;
            Ok(format!("revoked key {key_id}"))
        }
        Command::User(UserCommand::Export { tenant, user }) => {
            let tenant = get_tenant(services, &tenant)
                .await
                .map_err(err)?
                .ok_or("no such tenant")?;
            pretty(
                &latchkey::domain::export::export_user(services, &ctx, &tenant, &user)
                    .await
                    .map_err(err)?,
            )
        }
        Command::Key(KeyCommand::List { tenant }) => {
            pretty(&list_api_keys(services, &tenant).await.map_err(err)?)
        }
        Command::Key(KeyCommand::Rotate {
            key_id,
            overlap_hours,
        }) => {
            let overlap = time::Duration::hours(overlap_hours);
            let (new_id, secret) = rotate_api_key(services, &ctx, &key_id, overlap)
                .await
                .map_err(err)?;
            Ok(format!(
                "key id:     {new_id}\nsecret key: {secret}  (shown once)\n{key_id} stops working in {overlap_hours} h"
            ))
        }
        Command::Audit(_) => Err("audit commands run through main_with".into()),
        Command::Backup(task) => {
            let target = wiring::backup_target(config)
                .await
                .map_err(|e| e.to_string())?;
            let policy = wiring::backup_policy(config);
            let (text, ok) = match task {
                BackupCommand::Run => {
                    let report = run_backup(services, target.as_ref(), &policy).await;
                    (pretty(&report)?, report.succeeded())
                }
                BackupCommand::Drill => {
                    let report = run_drill(services, target.as_ref(), &policy).await;
                    (pretty(&report)?, report.passed() && report.kind().is_none())
                }
            };
            if ok { Ok(text) } else { Err(text) }
        }
        Command::Operator(OperatorCommand::Create { name, days }) => {
            let (id, token) = create_operator(services, &ctx, &name, days)
                .await
                .map_err(err)?;
            Ok(format!(
                "operator id: {id}\ntoken:       {token}  (shown once; send as Authorization: Bearer)"
            ))
        }
        Command::Tenant(TenantCommand::Purge) => {
            let r = latchkey::domain::shred::purge(services, &ctx)
                .await
                .map_err(err)?;
            Ok(format!(
                "purged {} items of {} deleted tenants",
                r.items,
                r.tenants.len()
            ))
        }
        Command::Tenant(TenantCommand::Delete { id }) => {
            let receipt = latchkey::domain::shred::delete_tenant(services, &ctx, &id)
                .await
                .map_err(err)?;
            pretty(&receipt)
        }
        Command::ManagementKey(ManagementKeyCommand::Create {
            tenant,
            role,
            name,
            days,
        }) => {
            use latchkey::domain::admin::{Role, keys};
            let role = Role::parse(&role).map_err(err)?;
            let (info, secret) = keys::create(services, &ctx, &tenant, role, &name, days)
                .await
                .map_err(err)?;
            Ok(format!(
                "management key: {secret}  (shown once; send as Authorization: Bearer)\nrole:           {}\nexpires:        {}",
                info.role.as_str(),
                info.expires_at
            ))
        }
        Command::Console(ConsoleCommand::Init { tenant_id, origins }) => {
            let tenant = latchkey::domain::admin::accounts::init_console(
                services, &ctx, &tenant_id, origins,
            )
            .await
            .map_err(err)?;
            Ok(format!(
                "console tenant: {}\nrp id:          {}\norigins:        {}",
                tenant.id,
                tenant.settings.rp_id,
                tenant.settings.allowed_origins.join(", ")
            ))
        }
        Command::Invite(InviteCommand::Create {
            tenant,
            role,
            operator,
            hours,
        }) => {
            use latchkey::domain::admin::{Role, accounts};
            let invitee = match (tenant, operator) {
                (_, true) => accounts::Invitee::Operator,
                (Some(tenant_id), false) => accounts::Invitee::Member {
                    tenant_id,
                    role: Role::parse(&role).map_err(err)?,
                },
                (None, false) => return Err("--tenant or --operator is required".into()),
            };
            let (info, token) = accounts::create_invite(services, &ctx, invitee, hours)
                .await
                .map_err(err)?;
            Ok(format!(
                "invite:  {token}  (shown once; single use)\nrole:    {}\nexpires: {}\naccept:  POST /v1/admin/invites/accept {{\"invite\": \"...\"}}, register a passkey, then POST /v1/admin/session",
                info.role, info.expires_at
            ))
        }
        Command::Operator(OperatorCommand::Revoke { id }) => {
            revoke_operator(services, &ctx, &id).await.map_err(err)?;
            Ok(format!("revoked operator {id}"))
        }
        Command::Secrets(SecretsCommand::Rekey) => {
            let r = rekey(services, &ctx).await.map_err(err)?;
            let mut text = format!(
                "current root generation: {}
added to the keyring:    {}
older generations kept:  {}
users re-indexed:        {}",
                r.current,
                r.captured.as_deref().unwrap_or("none"),
                r.kept,
                r.users_reindexed,
            );
            for (kind, n) in &r.awaiting_use {
                text.push_str(&format!(
                    "
under an older generation until next used: {n} {kind}"
                ));
            }
            Ok(text)
        }
    }
}

/// A JSON file read as `T`; errors name the file.
fn json_file<T: serde::de::DeserializeOwned>(file: &std::path::Path) -> Result<T, String> {
    let shown = file.display();
    let text = std::fs::read_to_string(file).map_err(|e| format!("{shown}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{shown}: {e}"))
}

fn pretty(value: &impl serde::Serialize) -> Result<String, String> {
    serde_json::to_string_pretty(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_repeated_origins_and_comma_separated_methods() {
        let cli = Cli::try_parse_from([
            "latchkey-admin",
            "tenant",
            "create",
            "--origin",
            "https://a",
            "--origin=https://b",
            "--id",
            "x",
            "--name",
            "X",
            "--rp-id",
            "a",
            "--methods",
            "PASSKEY,EMAIL_OTP",
        ])
        .unwrap();
        let Command::Tenant(TenantCommand::Create {
            origins, methods, ..
        }) = cli.command
        else {
            panic!("not tenant create");
        };
        assert_eq!(origins, ["https://a", "https://b"]);
        assert_eq!(methods, ["PASSKEY", "EMAIL_OTP"]);
    }

    #[test]
    fn refuses_missing_and_unknown_arguments() {
        for args in [
            &[
                "tenant", "create", "--id", "x", "--name", "X", "--rp-id", "a",
            ][..],
            &["key", "create"],
            &["frobnicate"],
            &["backup", "sideways"],
            &["tenant", "show", "--id"],
        ] {
            let argv = std::iter::once("latchkey-admin").chain(args.iter().copied());
            assert!(Cli::try_parse_from(argv).is_err(), "{args:?}");
        }
    }
}
