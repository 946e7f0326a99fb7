//! The configuration alone picks the AWS adapters (`LATCHKEY_TABLE`, `LATCHKEY_KMS_KEY_ID`,
//! `LATCHKEY_SECRET_ID`), and what they store together is what the security page promises.
use super::{aws, new_kms_key, secret_deleted, tables_dropped, unique};
use latchkey::adapters::dynamodb::DynamoStore;
use latchkey::ports::Store as _;

/// The configuration picks the AWS adapters and they work together: a tenant and its key are
/// created through DynamoDB, KMS and Secrets Manager, and the audit chain verifies.
#[tokio::test]
#[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]
async fn configuration_wires_the_aws_adapters_end_to_end() {
    use latchkey::domain::audit::AuditContext;
    use latchkey::domain::tenants::{TenantSettings, create_api_key, create_tenant, get_tenant};
    let config = aws().await;
    let table = unique("lk-wired");
    let _table = tables_dropped(&table);
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), &table)
        .create_table()
        .await
        .unwrap();
    let (key_id, _key) = new_kms_key(&aws_sdk_kms::Client::new(&config)).await;
    let secret_id = unique("lk-wired-secret");
    let _secret = secret_deleted(&secret_id);
    aws_sdk_secretsmanager::Client::new(&config)
        .create_secret()
        .name(&secret_id)
        .secret_string(r#"{"root":"wired-root-0123456789abcdef"}"#)
        .send()
        .await
        .unwrap();
    let vars = std::collections::BTreeMap::from([
        ("LATCHKEY_TABLE".to_owned(), table.clone()),
        ("LATCHKEY_KMS_KEY_ID".to_owned(), key_id),
        ("LATCHKEY_SECRET_ID".to_owned(), secret_id),
    ]);
    let cfg = latchkey::Config::from_vars(&vars).unwrap();
    assert!(cfg.uses_aws());
    let services = latchkey::wiring::services(&cfg).await.unwrap();

    let ctx = AuditContext::system("test", "r-wired");
    let settings = TenantSettings {
        name: "Acme".into(),
        rp_id: "acme.example".into(),
        allowed_origins: vec!["https://acme.example".into()],
        ..Default::default()
    };
    create_tenant(&services, &ctx, "t-wired", settings.clone(), vec![])
        .await
        .unwrap();
    let (key, secret) = create_api_key(&services, &ctx, "t-wired", None)
        .await
        .unwrap();
    let tenant = get_tenant(&services, "t-wired").await.unwrap().unwrap();
    assert_eq!(tenant.settings, settings);

    // What DynamoDB holds: a KMS-wrapped data key, and a keyed hash of the secret, never it.
    let raw = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), &table);
    let key_item = raw
        .get(&format!("KEY#{key}"), "KEY")
        .await
        .unwrap()
        .unwrap();
    let stored = serde_json::to_string(&key_item.attrs).unwrap();
    assert!(!stored.contains(&secret) && !stored.contains(secret.rsplit('_').next().unwrap()));
    assert_eq!(key_item.str("hash").unwrap().len(), 64);
    let field = latchkey::crypto::FieldContext {
        tenant_id: "t-wired",
        item: "U#1",
        field: "email",
    };
    let sealed = services
        .envelope
        .seal(&tenant.data_key, field, b"jane@example.com")
        .await
        .unwrap();
    assert_eq!(
        services
            .envelope
            .open(&tenant.data_key, field, &sealed)
            .await
            .unwrap(),
        b"jane@example.com"
    );

    let (events, _) = services
        .journal
        .events("t-wired", 100, None, false)
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
}

/// A table, key and secret that do not exist: `/health` names each as misconfigured (not as an
/// outage that may pass), and a Server API request answers the wire 503.
#[tokio::test]
#[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]
async fn a_missing_table_key_and_secret_are_reported_as_misconfiguration() {
    use http::{Request, StatusCode, header};
    use std::sync::Arc;
    // The adapters as wiring makes them, on this suite's client (moto answers one request at a
    // time; see `aws()`): what is tested is how each tells a missing resource from an outage.
    let config = aws().await;
    let clock = latchkey_tests::test_clock();
    let random = Arc::new(latchkey::ports::random::OsRandom);
    let services = Arc::new(latchkey::Services::new(
        latchkey::domain::Ports {
            store: Arc::new(DynamoStore::new(
                aws_sdk_dynamodb::Client::new(&config),
                unique("lk-absent"),
            )),
            vault: Arc::new(latchkey::adapters::kms::KmsKeyVault::new(
                aws_sdk_kms::Client::new(&config),
                "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000",
            )),
            secrets: Arc::new(
                latchkey::adapters::secrets_manager::SecretsManagerSecrets::new(
                    aws_sdk_secretsmanager::Client::new(&config),
                    unique("lk-absent-secret"),
                    time::Duration::minutes(5),
                    clock.clone(),
                ),
            ),
            clock,
            random,
            mailer: Arc::new(latchkey::adapters::no_mail::NoMail),
        },
        latchkey::domain::CachePolicy {
            ttl: time::Duration::minutes(5),
            capacity: 10,
        },
        latchkey::domain::limits::AnonymousLimits::default(),
    ));
    let app = latchkey_auth::app(services, latchkey::http::HttpSettings::default());

    let health = latchkey_tests::Client::new(app.clone())
        .request(
            Request::get("/health")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    let body = health.json();
    assert_eq!(body["status"], "misconfigured", "{body}");
    for check in ["store", "keys", "secrets"] {
        assert_eq!(body["checks"][check], "misconfigured", "{check}: {body}");
    }
    assert!(
        !body.to_string().contains("lk-absent"),
        "no names in a public body"
    );

    let req = Request::post("/v1/users/u1/actions/signIn")
        .header(
            header::AUTHORIZATION,
            "Basic bGtfMDAxMTIyMzM0NDU1NjY3N194Og==",
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from("{}"))
        .unwrap();
    let r = latchkey_tests::Client::new(app).request(req).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["error"], "service_unavailable");
}
