//! SES (v2) on moto: the Mailer contract, with messages read back from what moto recorded, and
//! the identity restriction (the IAM policy allows sending from `MailIdentity` only; SES itself
//! refuses an identity that is not verified).
use super::{NEEDS_MOTO, aws, identity_deleted, unique};
use async_trait::async_trait;
use latchkey::adapters::ses::SesMailer;
use latchkey::ports::Mailer;
use latchkey_tests::OnDrop;
use latchkey_tests::contract::mailer::{Delivered, MailerFixture, read_raw};
use std::sync::Arc;

/// The raw messages moto's SES has recorded (its `/moto-api/data.json` model dump).
fn ses_raw_messages() -> Vec<serde_json::Value> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect(NEEDS_MOTO);
    let out = std::process::Command::new("curl")
        .args(["-sf", &format!("{endpoint}/moto-api/data.json")])
        .output()
        .expect("curl");
    let data: serde_json::Value = serde_json::from_slice(&out.stdout).expect("moto data.json");
    data["ses"]["RawMessage"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]
async fn ses_sends_from_the_verified_identity_and_refuses_others() {
    use latchkey::ports::mailer::{Email, MailError};
    let client = aws_sdk_sesv2::Client::new(&aws().await);
    let domain = format!("{}.example.com", unique("lk"));
    let _identity = identity_deleted(&domain);
    client
        .create_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .unwrap();
    let clock = latchkey_tests::test_clock();
    let email = Email {
        to: "customer@example.org".into(),
        subject: "Your Example verification code".into(),
        text: "Your code is 123456.".into(),
        html: "<p>Your code is <b>123456</b>.</p>".into(),
        urgent: false,
    };
    let sent_from = |domain: &str| {
        ses_raw_messages()
            .into_iter()
            .filter(|m| m["raw_data"].as_str().unwrap_or_default().contains(domain))
            .collect::<Vec<_>>()
    };
    let mailer = SesMailer::new(
        client.clone(),
        &format!("Example Sign-in <no-reply@{domain}>"),
        clock.clone(),
    );
    let id = mailer.send(&email).await.unwrap();
    assert!(!id.is_empty());
    let sent = sent_from(&domain);
    assert_eq!(sent.len(), 1, "moto recorded exactly one message");
    let raw = sent[0]["raw_data"].as_str().unwrap();
    assert!(raw.contains("To: customer@example.org"));
    assert!(raw.contains("text/plain") && raw.contains("text/html"));

    let stranger = SesMailer::new(client, "someone@not-verified.example.net", clock);
    assert!(matches!(
        stranger.send(&email).await,
        Err(MailError::Rejected(_))
    ));
    assert!(sent_from("not-verified.example.net").is_empty());
}

/// An SES identity of its own (a domain), and a mailer sending from it.
struct Ses {
    domain: String,
    from: String,
    mailer: Arc<SesMailer>,
    _identity: OnDrop,
}

async fn fresh() -> Ses {
    let client = aws_sdk_sesv2::Client::new(&aws().await);
    let domain = format!("{}.example.com", unique("lk"));
    let identity = identity_deleted(&domain);
    client
        .create_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .unwrap();
    let from = format!("Example Sign-in <no-reply@{domain}>");
    Ses {
        mailer: Arc::new(SesMailer::new(client, &from, latchkey_tests::test_clock())),
        domain,
        from,
        _identity: identity,
    }
}

#[async_trait]
impl MailerFixture for Ses {
    fn mailer(&self) -> Arc<dyn Mailer> {
        self.mailer.clone()
    }

    fn from(&self) -> Option<String> {
        Some(self.from.clone())
    }

    async fn delivered(&self) -> Vec<Delivered> {
        let sender = format!("no-reply@{}", self.domain);
        ses_raw_messages()
            .iter()
            .filter_map(|m| m["raw_data"].as_str())
            .map(read_raw)
            .filter(|d| d.from.as_deref() == Some(sender.as_str()))
            .collect()
    }
}

latchkey_tests::mailer_contract_tests!(fresh, #[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]);
