//! RFC 5322 / MIME rendering of an [`Email`], shared by the outbox and SES (which sends the
//! same bytes as a raw message). Built with lettre's message builder: multipart/alternative,
//! plain text first, then HTML, each quoted-printable or base64 as lettre decides.
use crate::ports::mailer::{Email, MailError};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};

/// The message as bytes, from `from`, stamped with `date` (the injected clock's time).
pub fn render(
    from: &str,
    email: &Email,
    date: std::time::SystemTime,
) -> Result<Vec<u8>, MailError> {
    let from: Mailbox = from
        .parse()
        .map_err(|_| MailError::Rejected("the sender address is not valid".into()))?;
    let to: Mailbox = email
        .to
        .parse()
        .map_err(|_| MailError::Rejected("the recipient address is not valid".into()))?;
    let mut builder = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(email.subject.clone())
        .date(date);
    if email.urgent {
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Importance"),
                "high".to_owned(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Priority"),
                "1".to_owned(),
            ));
    }
    let message = builder
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .map_err(|e| MailError::Rejected(format!("the message could not be built: {e}")))?;
    Ok(message.formatted())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn renders_both_parts_and_urgency() {
        let email = Email {
            to: "ops@example.com".into(),
            subject: "Your code".into(),
            text: "Code: 123456".into(),
            html: "<p>Code: <b>123456</b></p>".into(),
            urgent: true,
        };
        let bytes = render(
            "Latchkey <no-reply@example.com>",
            &email,
            std::time::UNIX_EPOCH,
        )
        .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("To: ops@example.com"));
        assert!(text.contains("Subject: Your code"));
        assert!(text.contains("multipart/alternative"));
        assert!(text.contains("text/plain") && text.contains("text/html"));
        assert!(text.contains("Importance: high"));
        assert!(text.contains("Date: Thu, 01 Jan 1970 00:00:00"));
        let bad = Email {
            to: "not an address".into(),
            ..email
        };
        assert!(matches!(
            render("a@example.com", &bad, std::time::UNIX_EPOCH),
            Err(MailError::Rejected(_))
        ));
    }
}
