//! Outgoing email: one-time codes, urgent incident notices. Adapters: Amazon SES
//! ([`crate::adapters::ses`]) and a local outbox of `.eml` files ([`crate::adapters::outbox`]).
use async_trait::async_trait;

/// One message, already written. Both parts say the same thing; the HTML part is optional
/// reading for clients that show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Sent with `Importance: high` / `X-Priority: 1` (incident notices).
    pub urgent: bool,
}

impl std::fmt::Debug for Email {
    // The recipient is personal data and the body may hold a code: neither is printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("to", &"<redacted>")
            .field("subject", &self.subject)
            .field("urgent", &self.urgent)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MailError {
    /// The message itself is unacceptable (bad address); retrying will not help.
    #[error("the message was refused: {0}")]
    Rejected(String),
    /// The service did not take it; a retry may help.
    #[error("mail unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Mailer: Send + Sync {
    /// Hands the message over for delivery; returns the provider's message id.
    async fn send(&self, email: &Email) -> Result<String, MailError>;
}
