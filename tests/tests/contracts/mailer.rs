//! The Mailer contract on the `.eml` outbox (`latchkey-local`'s mailer) and on the memory
//! outbox (the tests' and benches'); SES runs it in the `aws` binary.
use async_trait::async_trait;
use latchkey::adapters::outbox::{MemoryOutbox, Outbox};
use latchkey::ports::Mailer;
use latchkey::ports::random::OsRandom;
use latchkey_tests::contract::mailer::{Delivered, MailerFixture, read_raw};
use std::sync::Arc;

const FROM: &str = "Latchkey <no-reply@localhost>";

/// An outbox folder in a temporary folder, removed after the test.
struct EmlOutbox {
    outbox: Arc<Outbox>,
    _dir: tempfile::TempDir,
}

async fn fresh_eml() -> EmlOutbox {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::new(
        &dir.path().join("outbox"),
        FROM,
        latchkey_tests::test_clock(),
        Arc::new(OsRandom),
    )
    .unwrap();
    EmlOutbox {
        outbox: Arc::new(outbox),
        _dir: dir,
    }
}

#[async_trait]
impl MailerFixture for EmlOutbox {
    fn mailer(&self) -> Arc<dyn Mailer> {
        self.outbox.clone()
    }

    fn from(&self) -> Option<String> {
        Some(FROM.into())
    }

    async fn delivered(&self) -> Vec<Delivered> {
        self.outbox
            .messages()
            .unwrap()
            .iter()
            .map(|path| read_raw(&std::fs::read_to_string(path).unwrap()))
            .collect()
    }
}

struct Memory(Arc<MemoryOutbox>);

async fn fresh_memory() -> Memory {
    Memory(Arc::new(MemoryOutbox::default()))
}

#[async_trait]
impl MailerFixture for Memory {
    fn mailer(&self) -> Arc<dyn Mailer> {
        self.0.clone()
    }

    fn from(&self) -> Option<String> {
        None
    }

    async fn delivered(&self) -> Vec<Delivered> {
        self.0
            .sent()
            .iter()
            .map(|e| Delivered {
                from: None,
                to: e.to.clone(),
                subject: e.subject.clone(),
                text: e.text.clone(),
                html: e.html.clone(),
                urgent: e.urgent,
            })
            .collect()
    }
}

mod eml {
    use super::*;
    latchkey_tests::mailer_contract_tests!(fresh_eml);
}

mod memory {
    use super::*;
    latchkey_tests::mailer_contract_tests!(fresh_memory);
}
