//! The Mailer contract (`shared/src/ports/mailer.rs`), on any mailer: each `send` hands over one
//! message and returns the provider's message id (non-empty, one per message); what is delivered
//! is the message as written, to its recipient, from the mailer's sender, with both parts and the
//! urgency marks; a message that cannot be sent as it is (a bad address) is `Rejected`, nothing
//! is delivered, and the error names neither the recipient nor the body.
use async_trait::async_trait;
use latchkey::ports::Mailer;
use latchkey::ports::mailer::{Email, MailError};
use std::sync::Arc;

/// A message as the fixture found it delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The address in the `From` the recipient sees; `None` for mailers that have no sender
    /// (in memory).
    pub from: Option<String>,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub urgent: bool,
}

/// One mailer under test.
#[async_trait]
pub trait MailerFixture: Send + Sync {
    fn mailer(&self) -> Arc<dyn Mailer>;
    /// The sender the mailer was configured with (`None`: it has none).
    fn from(&self) -> Option<String>;
    /// Every message delivered so far, in any order.
    async fn delivered(&self) -> Vec<Delivered>;
}

/// What `f` delivered, by subject (the port promises no order; the outbox's file names sort by
/// a time the test clock does not move).
async fn delivered(f: &dyn MailerFixture) -> Vec<Delivered> {
    let mut all = f.delivered().await;
    all.sort_by(|a, b| a.subject.cmp(&b.subject));
    all
}

/// The address of a mailbox (`Name <a@b>` or `a@b`).
pub fn address(mailbox: &str) -> String {
    match (mailbox.rfind('<'), mailbox.rfind('>')) {
        (Some(start), Some(end)) if start < end => mailbox[start + 1..end].to_owned(),
        _ => mailbox.trim().to_owned(),
    }
}

/// The raw RFC 5322 message `raw`, read as a person's mail client would show it (the parts'
/// bodies as written: the contract's messages are short ASCII lines, sent 7bit).
pub fn read_raw(raw: &str) -> Delivered {
    let raw = raw.replace("\r\n", "\n");
    let header = |name: &str| {
        raw.lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::to_owned)
    };
    let part = |content_type: &str| {
        let at = raw
            .find(&format!("Content-Type: {content_type}"))
            .unwrap_or_else(|| panic!("no {content_type} part:\n{raw}"));
        let body = &raw[at..];
        let start = body.find("\n\n").map_or(body.len(), |i| i + 2);
        let end = body[start..].find("\n--").map_or(body.len(), |i| start + i);
        body[start..end].trim_end().to_owned()
    };
    Delivered {
        from: header("From").map(|f| address(&f)),
        to: header("To").unwrap_or_default(),
        subject: header("Subject").unwrap_or_default(),
        text: part("text/plain"),
        html: part("text/html"),
        urgent: header("Importance").as_deref() == Some("high")
            && header("X-Priority").as_deref() == Some("1"),
    }
}

fn email(subject: &str, urgent: bool) -> Email {
    Email {
        to: "customer@example.org".into(),
        subject: subject.into(),
        text: "Your code is 123456.".into(),
        html: "<p>Your code is <b>123456</b>.</p>".into(),
        urgent,
    }
}

fn as_delivered(from: Option<String>, e: &Email) -> Delivered {
    Delivered {
        from: from.as_deref().map(address),
        to: e.to.clone(),
        subject: e.subject.clone(),
        text: e.text.clone(),
        html: e.html.clone(),
        urgent: e.urgent,
    }
}

/// Two sends: two messages delivered, as written, each with an id of its own.
pub async fn delivers_each_message_as_written_with_an_id_of_its_own(f: &dyn MailerFixture) {
    let mailer = f.mailer();
    let first = email("A: your Example verification code", false);
    let second = email("B: your second code", false);
    let a = mailer.send(&first).await.unwrap();
    let b = mailer.send(&second).await.unwrap();
    assert!(!a.is_empty() && !b.is_empty(), "message ids: {a:?} {b:?}");
    assert_ne!(a, b, "one id per message");
    assert_eq!(
        delivered(f).await,
        vec![
            as_delivered(f.from(), &first),
            as_delivered(f.from(), &second)
        ]
    );
}

/// An urgent message (an incident notice) is delivered marked as such; others are not.
pub async fn urgent_messages_are_marked_urgent(f: &dyn MailerFixture) {
    let mailer = f.mailer();
    mailer.send(&email("Incident", true)).await.unwrap();
    mailer.send(&email("Routine", false)).await.unwrap();
    assert_eq!(
        delivered(f)
            .await
            .iter()
            .map(|d| (d.subject.as_str(), d.urgent))
            .collect::<Vec<_>>(),
        vec![("Incident", true), ("Routine", false)]
    );
}

/// A recipient that is not an address: `Rejected` (a retry will not help), nothing delivered,
/// and the error says neither the recipient nor the code in the body.
pub async fn a_bad_recipient_is_rejected_without_naming_it(f: &dyn MailerFixture) {
    let bad = Email {
        to: "jane.doe at example.org".into(),
        ..email("Your code", false)
    };
    let err = f.mailer().send(&bad).await.unwrap_err();
    assert!(matches!(err, MailError::Rejected(_)), "{err:?}");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("jane.doe"), "{text}");
        assert!(!text.contains("123456"), "{text}");
    }
    assert!(delivered(f).await.is_empty(), "nothing was delivered");
}

/// Runs the Mailer contract, each test on a fresh fixture from `fresh` (an async fn returning
/// the fixture by value; it cleans up after itself when dropped), with the given attributes on
/// every test.
#[macro_export]
macro_rules! mailer_contract_tests {
    ($fresh:path $(, #[$attr:meta])*) => {
        mod mailer_contract {
            use super::*;
            use latchkey_tests::contract::mailer as c;

            #[tokio::test] $(#[$attr])*
            async fn delivers_each_message_as_written_with_an_id_of_its_own() {
                c::delivers_each_message_as_written_with_an_id_of_its_own(&$fresh().await).await
            }
            #[tokio::test] $(#[$attr])*
            async fn urgent_messages_are_marked_urgent() {
                c::urgent_messages_are_marked_urgent(&$fresh().await).await
            }
            #[tokio::test] $(#[$attr])*
            async fn a_bad_recipient_is_rejected_without_naming_it() {
                c::a_bad_recipient_is_rejected_without_naming_it(&$fresh().await).await
            }
        }
    };
}
