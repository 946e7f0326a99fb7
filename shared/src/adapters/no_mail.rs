//! The mailer of a Lambda function built without SES (latchkey feature `ses`): the functions
//! that never send mail (auth, backup, sealer), whose IAM policies have no `ses:SendEmail`
//! either. The stack's shared environment still says `LATCHKEY_SES=1`, so `wiring` gives them
//! this instead of refusing to start; a send that reaches it is a bug, and says so.
use crate::ports::mailer::{Email, MailError, Mailer};
use async_trait::async_trait;

#[derive(Debug, Default)]
pub struct NoMail;

#[async_trait]
impl Mailer for NoMail {
    async fn send(&self, _: &Email) -> Result<String, MailError> {
        Err(MailError::Unavailable(
            "this function is built without a mailer (latchkey feature `ses`); it sends no mail"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn refuses_every_message_naming_the_feature() {
        let email = Email {
            to: "ops@example.com".into(),
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
            urgent: false,
        };
        let err = NoMail.send(&email).await.unwrap_err();
        assert!(matches!(&err, MailError::Unavailable(m) if m.contains("`ses`")));
    }
}
