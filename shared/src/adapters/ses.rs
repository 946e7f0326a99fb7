//! Amazon SES (v2) behind the [`Mailer`] port. The message is rendered once (the same MIME the
//! outbox writes) and sent raw from the configured identity, which the IAM policy in
//! `template.yaml` is restricted to.
use crate::adapters::mime::render;
use crate::ports::Clock;
use crate::ports::mailer::{Email, MailError, Mailer};
use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use std::sync::Arc;

pub struct SesMailer {
    client: Client,
    /// The verified identity's address, optionally with a display name.
    from: String,
    clock: Arc<dyn Clock>,
}

impl SesMailer {
    pub fn new(client: Client, from: &str, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            from: from.to_owned(),
            clock,
        }
    }
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &Email) -> Result<String, MailError> {
        let bytes = render(&self.from, email, self.clock.now().into())?;
        let raw = RawMessage::builder()
            .data(Blob::new(bytes))
            .build()
            .map_err(|e| MailError::Rejected(e.to_string()))?;
        let out = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&email.to).build())
            .content(EmailContent::builder().raw(raw).build())
            .send()
            .await
            .map_err(|e| {
                let service = e.as_service_error();
                let rejected = service.is_some_and(|s| {
                    s.is_message_rejected()
                        || s.is_mail_from_domain_not_verified_exception()
                        || s.is_bad_request_exception()
                        || s.is_account_suspended_exception()
                        || s.is_sending_paused_exception()
                });
                // The provider's message, never the recipient or the body.
                let what = service
                    .and_then(|s| s.meta().code().map(str::to_owned))
                    .unwrap_or_else(|| "no response".to_owned());
                if rejected {
                    MailError::Rejected(format!("SES refused the message ({what})"))
                } else {
                    MailError::Unavailable(format!("SES did not answer ({what})"))
                }
            })?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}
